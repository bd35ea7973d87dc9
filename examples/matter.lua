#!/usr/bin/env lua5.4
-- examples/matter.lua: Matter factory data, made per unit in one pass:
-- namespace chip-factory with the keys, types and encodings esp-matter's
-- firmware reads (as esp-matter-mfg-tool writes them), a P-256 DAC signed
-- by the PAI in matter/ (a test PAI: see scripts/make-test-pki.lua), the SPAKE2+
-- verifier of a passcode drawn from the OS CSPRNG, and the onboarding
-- codes. The manifest holds what goes on the label and to the cloud:
-- passcode, discriminator, qr_code, manual_code, dac_cert (PEM); the DAC
-- key exists only in the unit's image (and its keys file with --encrypt).
--
--   lua5.4 examples/matter.lua --serial-range 1-100 --outdir out/matter --encrypt --keygen
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local recipe = require("nvsgen.recipe")
local identity = require("nvsgen.identity")
local matter = require("nvsgen.matter")
local core = require("nvsgen.core")

local b64 = core.base64_encode

-- Made once per batch, at the first unit, from the files the params name.
local pai_der, declaration, pai_checked

-- The value, or an error naming the key it was for (at the caller's line).
local function must(key, value, err)
  if value == nil then error(("key '%s': %s"):format(key, err), 2) end
  return value
end

return recipe.run{
  description = "Matter factory data (chip-factory) with a DAC per unit signed by a PAI.",
  size = 0x6000,
  name = "matter-%d.bin",
  exports = { "passcode", "discriminator", "qr_code", "manual_code", "dac_cert" },
  params = {
    vendor_id = 0xFFF1, product_id = 0x8001,
    vendor_name = "nvsgen test vendor", product_name = "nvsgen test light",
    hardware_version = 1, hardware_version_string = "1.0",
    iterations = 1000,                  -- the specification's minimum
    discovery = matter.DISCOVERY.ble, flow = matter.FLOW.standard,
    -- from the recipe's folder (a recipe extending this one: from its own)
    pai_cert = "matter/pai-cert.pem", pai_key = "matter/pai-key.pem",
    certification_declaration = "matter/cd-test.der",
  },
  unit = function(u)
    local p = u.params
    local pai = u:ca(p.pai_cert, p.pai_key)
    if not pai_checked then
      local problem = matter.pai_problem(pai, p.vendor_id, p.product_id)
      if problem then must("dac-cert", nil, problem) end
      pai_checked = true
    end
    pai_der = pai_der or pai.cert:der()
    declaration = declaration or u:file(p.certification_declaration)

    local passcode = matter.random_passcode(function(lo, hi) return u:random_int(lo, hi) end)
    local discriminator = matter.random_discriminator(function(lo, hi) return u:random_int(lo, hi) end)
    local salt = u:random_bytes(32)
    local verifier = must("verifier", matter.verifier(passcode, salt, p.iterations))
    local qr, manual = matter.codes{
      vendor_id = p.vendor_id, product_id = p.product_id, discriminator = discriminator,
      passcode = passcode, discovery = p.discovery, flow = p.flow,
    }
    must("qr_code", qr, manual)

    local dac_key = must("dac-key", identity.generate_key("p256"))
    local dac = must("dac-cert", pai:issue{
      key = dac_key, not_after = identity.NO_EXPIRY,
      subject = matter.subject(u:uuid(), p.vendor_id, p.product_id),
    })

    u:namespace("chip-factory")
    u:u32("discriminator", discriminator)
    u:u32("iteration-count", p.iterations)
    u:string("salt", b64(salt))
    u:u32("vendor-id", p.vendor_id)
    u:string("vendor-name", p.vendor_name)
    u:u32("product-id", p.product_id)
    u:string("product-name", p.product_name)
    u:u32("hardware-ver", p.hardware_version)
    u:string("hw-ver-str", p.hardware_version_string)
    u:blob("rd-id-uid", u:random_bytes(16))
    u:string("serial-num", ("SN%08d"):format(u.serial))
    u:blob("dac-cert", dac:der())
    u:blob("dac-key", dac_key:private_raw())
    u:blob("dac-pub-key", dac_key:public_raw())
    u:blob("pai-cert", pai_der)
    u:string("verifier", b64(verifier))
    u:blob("cert-dclrn", declaration)

    u:export("passcode", passcode)
    u:export("discriminator", discriminator)
    u:export("qr_code", qr)
    u:export("manual_code", manual)
    u:export("dac_cert", dac:pem())
  end,
}
