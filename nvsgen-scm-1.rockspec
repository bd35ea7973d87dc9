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
-- lua-dkjson), which luarocks does not see: scripts/ensure-deps installs
-- them, so only Lua itself is declared here.
dependencies = {
  "lua >= 5.4",
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
        "csrc/nvs_format.c", "csrc/nvs_encoder.c", "csrc/nvs_codec.c", "csrc/nvs_file.c",
        "csrc/nvs_crypto.c", "csrc/nvs_reader.c", "csrc/nvs_csv.c", "csrc/nvs_signal.c",
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
    ["nvsgen.pypath"] = "lua/nvsgen/pypath.lua",
    ["nvsgen.jobs"] = "lua/nvsgen/jobs.lua",
    ["nvsgen.keyplan"] = "lua/nvsgen/keyplan.lua",
    ["nvsgen.mfg"] = "lua/nvsgen/mfg.lua",
    ["nvsgen.cli.args"] = "lua/nvsgen/cli/args.lua",
    ["nvsgen.cli.common"] = "lua/nvsgen/cli/common.lua",
    ["nvsgen.cli.partition_gen"] = "lua/nvsgen/cli/partition_gen.lua",
    ["nvsgen.cli.nvs_tool"] = "lua/nvsgen/cli/nvs_tool.lua",
    ["nvsgen.cli.mfg_gen"] = "lua/nvsgen/cli/mfg_gen.lua",
    ["nvsgen.cli.recipe"] = "lua/nvsgen/cli/recipe.lua",
    ["nvsgen.recipe"] = "lua/nvsgen/recipe.lua",
    ["nvsgen.batch"] = "lua/nvsgen/batch.lua",
    ["nvsgen.chunks"] = "lua/nvsgen/chunks.lua",
    ["nvsgen.partition_table"] = "lua/nvsgen/partition_table.lua",
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
