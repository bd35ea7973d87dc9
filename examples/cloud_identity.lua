#!/usr/bin/env lua5.4
-- examples/cloud_identity.lua: a key and a certificate per unit, signed by
-- the factory CA in cloud/ (a test CA: see scripts/make-test-pki.lua), CN = the
-- unit's node id; the manifest's certificate column (PEM) is what a cloud
-- registers in bulk. With --values, the certificates a remote CA signed
-- for the requests of cloud_identity_csr.lua come back into the batch
-- (see cloud/base.lua and the README).
--
--   lua5.4 examples/cloud_identity.lua --serial-range 1-100 --outdir out/cloud_identity
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")

return recipe.run(recipe.load(here .. "/cloud/base.lua"))
