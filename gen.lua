#!/usr/bin/env lua5.4
-- gen.lua: the default recipe, the seed's mass-production partition.
--
--   lua gen.lua --serial-range 1000-1999 --outdir out/gen
--
-- Each unit gets namespace mass_prod with the product's ID, a device name
-- made from its serial and a random 32-hex-digit secret, which goes to the
-- manifest for the cloud side to register. Run with --help for the options.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lua/?.lua;" .. here .. "/lua/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")

return recipe.run{
  description = "The default recipe: mass_prod with ProductID, DeviceName and DeviceSecret.",
  size = 0x6000,
  name = "unit-%d.bin",
  exports = { "DeviceSecret" },
  params = { product = "NVSGEN-DEMO" },
  unit = function(u)
    u:namespace("mass_prod")
    u:string("ProductID", u.params.product)
    u:string("DeviceName", ("%s-%06d"):format(u.params.product, u.serial))
    u:string("DeviceSecret", u:export("DeviceSecret", u:random_hex(32)))
  end,
}
