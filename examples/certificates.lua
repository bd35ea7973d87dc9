#!/usr/bin/env lua5.4
-- examples/certificates.lua: each unit's certificate from its own file,
-- certs/<serial>.der beside this recipe (the files here are fakes for
-- serials 1000-1004). A unit without its file stops the batch with a
-- message naming the unit and the path.
--
--   lua5.4 examples/certificates.lua --serial-range 1000-1004 --outdir out/certificates
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")

return recipe.run{
  description = "Per-unit device certificates from certs/<serial>.der.",
  size = 0x6000,
  name = "cert-unit-%d.bin",
  exports = { "CertSHA256" },
  unit = function(u)
    local cert = u:file(("certs/%d.der"):format(u.serial))
    u:namespace("mass_prod")
    u:string("ProductID", "ACME-CERT")
    u:u32("Serial", u.serial)
    u:blob("Cert", cert)
    -- The cloud side pins the certificate by its digest.
    u:export("CertSHA256", require("nvsgen.crypto").sha256_hex(cert))
  end,
}
