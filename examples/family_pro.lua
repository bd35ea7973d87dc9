#!/usr/bin/env lua5.4
-- examples/family_pro.lua: the Pro model: the family's base recipe, a
-- later hardware revision, and a second namespace for the features only
-- the Pro has.
--
--   lua5.4 examples/family_pro.lua --serial-range 1000-1999 --outdir out/family_pro
-- This file's folder, also when the script is loaded by another one.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")
local base = recipe.load(here .. "/family/base.lua")

return recipe.run(base:extend{
  name = "pro-%d.bin",
  params = { model = "pro", hw_rev = 3 },
  -- Runs after the base recipe's unit function, in the same partition.
  unit = function(u)
    u:namespace("features")
    u:u8("Sensors", 4)
    u:u8("Display", 1)
    u:u16("MaxRateHz", 400)
  end,
})
