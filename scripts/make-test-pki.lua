#!/usr/bin/env lua5.4
-- scripts/make-test-pki.lua: makes the test certificates and keys the
-- identity examples sign with, under examples/matter and examples/cloud
-- (already in the checkout; run again to replace them): a Matter PAA (certificate only: its key is dropped), a
-- PAI signed by it (certificate and key), a certification declaration
-- stand-in, and a factory CA for cloud_identity.lua. For tests and
-- development only: nothing made here may sign real products.
--
--   lua5.4 scripts/make-test-pki.lua
local root = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
local here = root .. "/examples"

local identity = require("nvsgen.identity")
local matter = require("nvsgen.matter")
local core = require("nvsgen.core")

local VID, PID = 0xFFF1, 0x8001

local function write(path, data, mode)
  local ok, err = core.write_file(here .. "/" .. path, data, mode or 420, true)
  if not ok then error(err, 0) end
end

-- Matter: PAA (root) -> PAI (intermediate, signs the DACs).
local paa_key = assert(identity.generate_key("p256"))
local paa = assert(identity.self_signed_ca{
  key = paa_key, path_len = 1, not_before = "2024-01-01", not_after = identity.NO_EXPIRY,
  subject = matter.subject("nvsgen Test PAA", VID),
})
local pai_key = assert(identity.generate_key("p256"))
local pai = assert(identity.issue{
  key = pai_key, ca = { cert = paa, key = paa_key },
  not_before = "2024-01-01", not_after = identity.NO_EXPIRY,
  subject = matter.subject("nvsgen Test PAI", VID, PID),
  extensions = { basic_constraints = "critical,CA:TRUE,pathlen:0",
                 key_usage = "critical,keyCertSign,cRLSign" },
})
write("matter/paa-cert.pem", paa:pem())
write("matter/pai-cert.pem", pai:pem())
write("matter/pai-key.pem", pai_key:private_pem(), 384)
-- A real certification declaration is a CMS message signed by the CSA;
-- this stand-in only fills the entry the firmware reads.
write("matter/cd-test.der", "nvsgen test certification declaration: not CMS-signed, for tests only\n")

-- A factory CA for cloud device certificates.
local ca_key = assert(identity.generate_key("p256"))
local ca = assert(identity.self_signed_ca{
  key = ca_key, not_before = "2024-01-01", days = 36500,
  subject = { O = "ACME Devices (test)", CN = "ACME Test Factory CA" },
})
write("cloud/factory-ca.pem", ca:pem())
write("cloud/factory-ca-key.pem", ca_key:private_pem(), 384)
print("test PKI written under " .. here .. "/matter and " .. here .. "/cloud")
