#!/usr/bin/env lua5.4
-- examples/two_partitions.lua: a whole unit, ready to flash. The unit's
-- identity goes to its `fctry` partition and its factory-default settings
-- to `nvs`; both are encrypted with the unit's own key, written as the
-- unit's `nvs_keys` partition. Sizes and offsets come from
-- two_partitions.csv beside this script. Per unit: unit-N-fctry.bin,
-- unit-N-nvs.bin, unit-N-nvs_keys.bin and unit-N.flash_args (with --merged
-- unit-N.merged.bin, with --hex unit-N.hex).
--
--   lua5.4 examples/two_partitions.lua --serial-range 1000-1009 --outdir out/two_partitions --merged --hex
-- and then, to flash unit 1000: esptool.py write_flash @out/two_partitions/unit-1000.flash_args
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")

return recipe.run{
  description = "Identity in fctry, defaults in nvs, both encrypted with the unit's nvs_keys.",
  partition_table = "two_partitions.csv",
  partitions = {
    { label = "fctry", encrypt = true },
    { label = "nvs", encrypt = true },
  },
  keys = "nvs_keys",
  exports = { "DeviceSecret" },
  unit = function(u)
    u:partition("fctry")
    u:namespace("identity")
    u:u32("Serial", u.serial)
    u:string("DeviceName", ("acme-%06d"):format(u.serial))
    u:string("DeviceSecret", u:export("DeviceSecret", u:random_hex(32)))
    u:partition("nvs")
    u:namespace("settings")
    u:u8("Volume", 5)
    u:string("Language", "en")
    u:u32("SleepSeconds", 600)
  end,
}
