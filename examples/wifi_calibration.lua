#!/usr/bin/env lua5.4
-- examples/wifi_calibration.lua: identity in mass_prod, the Wi-Fi
-- defaults the firmware starts with in a second namespace, and each unit's
-- calibration read from a table of per-unit values (calibration.csv, one
-- row per serial; --values other.csv uses another table).
--
--   lua5.4 examples/wifi_calibration.lua --serial-range 1000-1004 --outdir out/wifi_calibration
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")

-- Defaults for every unit; the field service changes them later.
local WIFI = {
  ssid = "ACME-Setup",
  password = "factory-default",
  country = "DE",
  channel = 6,
}

return recipe.run{
  description = "Wi-Fi defaults and per-unit calibration from calibration.csv.",
  size = 0x6000,
  name = "wifi-cal-%d.bin",
  values = "calibration.csv",
  unit = function(u)
    u:namespace("mass_prod")
    u:string("ProductID", "ACME-WIFI")
    u:u32("Serial", u.serial)

    u:namespace("wifi")
    u:string("ssid", WIFI.ssid)
    u:string("password", WIFI.password)
    u:string("country", WIFI.country)
    u:u8("channel", WIFI.channel)

    u:namespace("calibration")
    u:i16("gain", tonumber(u:value("gain")))
    u:i16("offset", tonumber(u:value("offset")))
    u:u8("rf_power", tonumber(u:value("rf_power")))
  end,
}
