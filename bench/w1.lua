#!/usr/bin/env lua5.4
-- bench/w1.lua: workload W1 of the benchmark as a recipe: namespace
-- mass_prod with ProductID, DeviceName, DeviceSecret (32 hex digits),
-- Serial (u32), MAC (6-byte blob), HwRev (u8) and Cert (1,200-byte blob).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")

-- A fixed 1,200-byte certificate stands for the per-unit one.
local CERT = ("\48\130\4\172"):rep(300)
local pack = string.pack

return recipe.run{
  description = "Benchmark workload W1.",
  size = 0x6000,
  exports = { "DeviceSecret" },
  unit = function(u)
    local serial = u.serial
    u:namespace("mass_prod")
    u:string("ProductID", "ACME-W1")
    u:string("DeviceName", "acme-" .. serial)
    u:string("DeviceSecret", u:export("DeviceSecret", u:random_hex(32)))
    u:u32("Serial", serial)
    u:blob("MAC", pack(">I2I4", 0x240a, serial))
    u:u8("HwRev", 3)
    u:blob("Cert", CERT)
  end,
}
