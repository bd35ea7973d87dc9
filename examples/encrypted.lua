#!/usr/bin/env lua5.4
-- examples/encrypted.lua: an encrypted batch. Each unit gets its own
-- random NVS encryption key, written beside its image as a keys partition
-- (unit-N-keys.bin, mode 0600, listed in manifest.csv) to be flashed into
-- the unit's nvs_keys partition. --inputkey KEYS.bin uses one key instead.
--
--   lua5.4 examples/encrypted.lua --serial-range 1000-1999 --outdir out/encrypted
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")

return recipe.run{
  description = "Encrypted images, a key per unit (or --inputkey).",
  size = 0x6000,
  name = "secure-%d.bin",
  encrypt = "keygen",
  exports = { "DeviceSecret", "ClaimCode" },
  unit = function(u)
    u:namespace("mass_prod")
    u:string("ProductID", "ACME-SECURE")
    u:string("DeviceName", ("acme-secure-%06d"):format(u.serial))
    u:string("DeviceSecret", u:export("DeviceSecret", u:random_hex(32)))
    u:string("ClaimCode", u:export("ClaimCode", u:random_hex(8):upper()))
    u:u32("Serial", u.serial)
  end,
}
