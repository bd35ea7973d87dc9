-- nvsgen: ESP-IDF NVS partition images for factories, in Lua with a C core.
-- Install from a checkout with: luarocks --lua-version=5.4 make
rockspec_format = "3.0"
package = "nvsgen"
version = "scm-1"

source = {
  url = "git+file://.",
}

description = {
  summary = "Build ESP-IDF NVS partition images per unit from Lua recipes or CSV",
  detailed = [[
    A C core that writes (and reads) ESP-IDF NVS partition images, exposed as
    the Lua 5.4 module nvsgen, with command lines compatible with Espressif's
    nvs_partition_gen.py, mfg_gen.py and nvs_tool.py.
  ]],
  license = "MIT",
}

-- Lua libraries come from Debian's packages (lua-filesystem, lua-term,
-- lua-dkjson, lua-system), which scripts/ensure-deps installs; luarocks
-- does not see them. luasystem is declared as well: without it the batch's
-- clock is CPU time and its wait for a locked folder cannot sleep.
dependencies = {
  "lua >= 5.4",
  "luasystem",
}

external_dependencies = {
  ZLIB = { header = "zlib.h" },
  OPENSSL = { header = "openssl/evp.h" },
}

build = {
  type = "builtin",
  modules = {
    ["nvsgen.core"] = {
      sources = {
        "csrc/nvs_format.c", "csrc/nvs_encoder.c", "csrc/nvs_codec.c", "csrc/nvs_file.c", "csrc/nvs_proc.c",
        "csrc/nvs_crypto.c", "csrc/nvs_reader.c", "csrc/nvs_csv.c",
        "csrc/lnvsgen.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "z", "crypto", "pthread" },
      incdirs = { "$(ZLIB_INCDIR)", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(ZLIB_LIBDIR)", "$(OPENSSL_LIBDIR)" },
    },
    ["nvsgen"] = "lua/nvsgen/init.lua",
    ["nvsgen.csv"] = "lua/nvsgen/csv.lua",
    ["nvsgen.files"] = "lua/nvsgen/files.lua",
    ["nvsgen.crypto"] = "lua/nvsgen/crypto.lua",
    ["nvsgen.reader"] = "lua/nvsgen/reader.lua",
    ["nvsgen.csvgen"] = "lua/nvsgen/csvgen.lua",
    ["nvsgen.pytext"] = "lua/nvsgen/pytext.lua",
    ["nvsgen.values"] = "lua/nvsgen/values.lua",
    ["nvsgen.wifi"] = "lua/nvsgen/wifi.lua",
    ["nvsgen.cli.args"] = "lua/nvsgen/cli/args.lua",
    ["nvsgen.cli.common"] = "lua/nvsgen/cli/common.lua",
    ["nvsgen.cli.partition_gen"] = "lua/nvsgen/cli/partition_gen.lua",
    ["nvsgen.cli.nvs_tool"] = "lua/nvsgen/cli/nvs_tool.lua",
    ["nvsgen.cli.mfg_gen"] = "lua/nvsgen/cli/mfg_gen.lua",
    ["nvsgen.cli.recipe"] = "lua/nvsgen/cli/recipe.lua",
    ["nvsgen.recipe"] = "lua/nvsgen/recipe.lua",
    ["nvsgen.batch"] = "lua/nvsgen/batch.lua",
    ["nvsgen.chunks"] = "lua/nvsgen/chunks.lua",
    ["nvsgen.serials"] = "lua/nvsgen/serials.lua",
    ["nvsgen.manifest"] = "lua/nvsgen/manifest.lua",
    ["nvsgen.staging"] = "lua/nvsgen/staging.lua",
    ["nvsgen.workers"] = "lua/nvsgen/workers.lua",
    ["nvsgen.unit"] = "lua/nvsgen/unit.lua",
    ["nvsgen.unit_csv"] = "lua/nvsgen/unit_csv.lua",
    ["nvsgen.outdir"] = "lua/nvsgen/outdir.lua",
    ["nvsgen.partition_table"] = "lua/nvsgen/partition_table.lua",
    ["nvsgen.flash_files"] = "lua/nvsgen/flash_files.lua",
    ["nvsgen.unit_layout"] = "lua/nvsgen/unit_layout.lua",
  },
  install = {
    bin = {
      nvs_partition_gen = "bin/nvs_partition_gen.lua",
      nvs_tool = "bin/nvs_tool.lua",
      mfg_gen = "bin/mfg_gen.lua",
      ["nvsgen-gen"] = "gen.lua",
    },
  },
}

test = {
  type = "busted",
}
