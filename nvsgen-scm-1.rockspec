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

-- The Lua libraries the code uses. On Debian, scripts/ensure-deps installs
-- them as packages (lua-filesystem, lua-system, lua-term), which luarocks
-- does not see: install there with `luarocks --lua-version=5.4 make
-- --deps-mode=none` so that it does not try to fetch them again.
dependencies = {
  "lua >= 5.4",
  "luafilesystem >= 1.8",  -- folders and file attributes
  "luasystem >= 0.2",      -- the batch's wall clock and sleeps
  "lua-term >= 0.07",      -- is the output a terminal (progress bars)
}

-- What the specs use besides: busted runs them, dkjson reads nvs_tool's JSON.
test_dependencies = {
  "busted",
  "dkjson",
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
        "csrc/nvs_crypto.c", "csrc/nvs_reader.c", "csrc/nvs_csv.c", "csrc/nvs_keymap.c",
        "csrc/nvs_identity.c", "csrc/nvs_matter.c", "csrc/nvs_mfg.c", "csrc/nvs_stage.c",
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
    ["nvsgen.identity"] = "lua/nvsgen/identity.lua",
    ["nvsgen.matter"] = "lua/nvsgen/matter.lua",
    ["nvsgen.reader"] = "lua/nvsgen/reader.lua",
    ["nvsgen.pages"] = "lua/nvsgen/pages.lua",
    ["nvsgen.dumps"] = "lua/nvsgen/dumps.lua",
    ["nvsgen.checks"] = "lua/nvsgen/checks.lua",
    ["nvsgen.textout"] = "lua/nvsgen/textout.lua",
    ["nvsgen.json"] = "lua/nvsgen/json.lua",
    ["nvsgen.report"] = "lua/nvsgen/report.lua",
    ["nvsgen.options"] = "lua/nvsgen/options.lua",
    ["nvsgen.export"] = "lua/nvsgen/export.lua",
    ["nvsgen.edit"] = "lua/nvsgen/edit.lua",
    ["nvsgen.flash"] = "lua/nvsgen/flash.lua",
    ["nvsgen.verify"] = "lua/nvsgen/verify.lua",
    ["nvsgen.verify_whole"] = "lua/nvsgen/verify_whole.lua",
    ["nvsgen.csvgen"] = "lua/nvsgen/csvgen.lua",
    ["nvsgen.pytext"] = "lua/nvsgen/pytext.lua",
    ["nvsgen.values"] = "lua/nvsgen/values.lua",
    ["nvsgen.wifi"] = "lua/nvsgen/wifi.lua",
    ["nvsgen.pypath"] = "lua/nvsgen/pypath.lua",
    ["nvsgen.keyplan"] = "lua/nvsgen/keyplan.lua",
    ["nvsgen.mfg"] = "lua/nvsgen/mfg.lua",
    ["nvsgen.cli.args"] = "lua/nvsgen/cli/args.lua",
    ["nvsgen.cli.common"] = "lua/nvsgen/cli/common.lua",
    ["nvsgen.cli.partition_gen"] = "lua/nvsgen/cli/partition_gen.lua",
    ["nvsgen.cli.nvs_tool"] = "lua/nvsgen/cli/nvs_tool.lua",
    ["nvsgen.cli.mfg_gen"] = "lua/nvsgen/cli/mfg_gen.lua",
    ["nvsgen.cli.recipe"] = "lua/nvsgen/cli/recipe.lua",
    ["nvsgen.cli.legacy_partition_gen"] = "lua/nvsgen/cli/legacy_partition_gen.lua",
    ["nvsgen.lua54"] = "lua/nvsgen/lua54.lua",
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
