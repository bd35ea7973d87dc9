#!/usr/bin/env lua5.4
-- examples/family_lite.lua: the Lite model of the family, the base recipe
-- as it is, with its own model name and image names.
--
--   lua5.4 examples/family_lite.lua --serial-range 1000-1999 --outdir out/family_lite
-- This file's folder, also when the script is loaded by another one.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")
local base = recipe.load(here .. "/family/base.lua")

return recipe.run(base:extend{
  name = "lite-%d.bin",
  params = { model = "lite" },
})
