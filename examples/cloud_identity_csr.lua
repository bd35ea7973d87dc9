#!/usr/bin/env lua5.4
-- examples/cloud_identity_csr.lua: the remote-CA variant of
-- cloud_identity.lua: each image holds the unit's new key (encrypt it:
-- --encrypt --keygen) and the manifest's csr column its request (PEM) for
-- the CA to sign; cloud_identity.lua --values then writes the final images.
--
--   lua5.4 examples/cloud_identity_csr.lua --serial-range 1-100 --outdir out/cloud_identity_csr --encrypt --keygen
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")

return recipe.run(recipe.load(here .. "/cloud/base.lua"):extend{
  name = "node-%d-csr.bin",
  params = { mode = "csr" },
  exports = { "csr" },
})
