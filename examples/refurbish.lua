#!/usr/bin/env lua5.4
-- examples/refurbish.lua: the new image of a returned unit, made from the
-- image read back from it (examples/returned/mass-prod-N.bin, written by
-- mass_prod.lua, or an `esptool read_flash` of its NVS partition): its
-- identity (ProductID, Serial, MAC, Cert) stays as it was, the hardware
-- revision moves to the refurbished board's, the calibration is reset to
-- the new defaults, and a note records the refurbishment.
--
--   lua5.4 examples/refurbish.lua --serial-range 1000-1001 --outdir out
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local nvsgen = require("nvsgen")
local recipe = require("nvsgen.recipe")

-- What changes; every other item of the old image is copied as it was.
local CHANGED = {
  mass_prod = { HwRev = { "u8", 4 } },
  calibration = { Gain = { "i16", -10 } },
}

return recipe.run{
  description = "Refurbished units: the old image's items, with the new board's revision.",
  size = 0x6000,
  name = "refurbished-%d.bin",
  unit = function(u)
    local old = assert(nvsgen.read(u:file(("returned/mass-prod-%d.bin"):format(u.serial))))
    if old.errors > 0 then
      error(("unit %d: the returned image is damaged (%d errors)"):format(u.serial, old.errors))
    end
    local current
    for _, item in ipairs(old.items) do   -- in the order the firmware finds them
      if item.namespace ~= current then
        u:namespace(item.namespace)
        current = item.namespace
      end
      local change = (CHANGED[item.namespace] or {})[item.key]
      if change then
        u[change[1]](u, item.key, change[2])
      else
        u[item.type](u, item.key, item.value)
      end
    end
    u:namespace("mass_prod")
    u:string("Refurbished", "2026-12")
  end,
}
