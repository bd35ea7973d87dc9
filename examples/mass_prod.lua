#!/usr/bin/env lua5.4
-- examples/mass_prod.lua: the seed's mass-production partition
-- (examples/sample.csv) as a recipe: the values that were fixed in the CSV
-- are now computed for each unit from its serial.
--
--   lua5.4 examples/mass_prod.lua --serial-range 1000-1999 --outdir out/mass_prod
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")

-- The MAC block the factory owns: units get consecutive addresses.
local OUI = "\x24\x0a\xc4"
local FIRST_SERIAL = 1000

return recipe.run{
  description = "Mass production: identity in mass_prod, calibration defaults in calibration.",
  size = 0x6000,
  name = "mass-prod-%d.bin",
  exports = { "MAC" },
  unit = function(u)
    local n = u.serial - FIRST_SERIAL + 1
    local mac = OUI .. string.pack(">I3", n)
    u:namespace("mass_prod")
    u:string("ProductID", "NVSGEN-DEMO")
    u:u32("Serial", u.serial)
    u:u8("HwRev", 3)
    u:blob("MAC", mac)
    u:export("MAC", (("%02x"):rep(6, ":")):format(mac:byte(1, 6)))
    u:blob("Cert", u:file("data/cert.der"))
    u:namespace("calibration")
    u:i16("Gain", -12)
    u:blob("Offsets", "\0\1\2\3\4\5\6\7")
  end,
}
