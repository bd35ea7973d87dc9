--- nvsgen.matter: a Matter device's commissioning data: passcodes and
-- discriminators from the CSPRNG, the SPAKE2+ verifier, the QR code text
-- and the manual pairing code, and the DAC subject's vendor and product IDs.
--
--     local matter = require("nvsgen.matter")
--     local passcode = matter.random_passcode()           -- never a forbidden one
--     local salt = crypto.random_bytes(32)
--     local verifier = assert(matter.verifier(passcode, salt, 1000))  -- 97 bytes
--     local qr, manual = assert(matter.codes{ vendor_id = 0xFFF1, product_id = 0x8001,
--       discriminator = 3840, passcode = 20202021, discovery = 4 })
--     -- "MT:-24J0AFN00KA0648G00", "34970112332"
--
-- Bad data gives nil and a message; a wrong argument type raises.

local core = require("nvsgen.core")

local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local format = string.format
local math_type = math.type

local M = {}

M.PASSCODE_MAX = 99999998
M.DISCRIMINATOR_MAX = 0xFFF
M.ITERATIONS_MIN, M.ITERATIONS_MAX = 1000, 100000
M.SALT_MIN, M.SALT_MAX = 16, 32

-- Commissioning flows and discovery capabilities of the onboarding payload.
M.FLOW = { standard = 0, user_intent = 1, custom = 2 }
M.DISCOVERY = { soft_ap = 1, ble = 2, on_network = 4 }

-- The DAC and PAI subject attributes holding the vendor and product IDs
-- (each as 4 uppercase hex digits in a UTF8String).
M.VID_OID = "1.3.6.1.4.1.37244.2.1"
M.PID_OID = "1.3.6.1.4.1.37244.2.2"

--- True if `passcode` may be used: 1 to 99999998, and none of 11111111,
-- 22222222, ... 99999999, 12345678, 87654321.
function M.passcode_valid(passcode)
  if math_type(passcode) ~= "integer" then return false end
  return core.matter_passcode_valid(passcode)
end

--- A passcode drawn uniformly from the valid ones: `random_int(lo, hi)`
-- (default: the CSPRNG's, as u:random_int) is drawn again while it gives
-- a forbidden value, so no valid value is more likely than another.
function M.random_passcode(random_int)
  random_int = random_int or core.random_int
  while true do
    local p = random_int(1, M.PASSCODE_MAX)
    if M.passcode_valid(p) then return p end
  end
end

--- A discriminator, 12 bits, uniform.
function M.random_discriminator(random_int)
  return (random_int or core.random_int)(0, M.DISCRIMINATOR_MAX)
end

--- The SPAKE2+ verifier (97 bytes: w0, then L uncompressed) of `passcode`
-- with `salt` (16 to 32 bytes) and `iterations` (1000 to 100000), or nil
-- and a message.
function M.verifier(passcode, salt, iterations)
  if math_type(passcode) ~= "integer" then error("verifier: passcode must be an integer", 2) end
  if type(salt) ~= "string" then error("verifier: salt must be a string", 2) end
  if math_type(iterations) ~= "integer" then error("verifier: iterations must be an integer", 2) end
  return core.matter_verifier(passcode, salt, iterations)
end

local PAYLOAD_FIELDS = {
  vendor_id = true, product_id = true, discriminator = true, passcode = true,
  flow = true, discovery = true, version = true,
}

--- The QR code text ("MT:" and base-38) and the manual pairing code (11
-- digits; 21 with vendor and product IDs when the flow is not standard)
-- of an onboarding payload: `vendor_id`, `product_id`, `discriminator`,
-- `passcode`, `flow` (default 0, standard), `discovery` (default 2, BLE).
-- Returns qr, manual, or nil and a message.
function M.codes(payload)
  if type(payload) ~= "table" then error("codes: table expected", 2) end
  for k, v in pairs(payload) do
    if not PAYLOAD_FIELDS[k] then error(format("codes: unknown field '%s'", tostring(k)), 2) end
    if math_type(v) ~= "integer" then error(format("codes: field '%s' must be an integer", k), 2) end
  end
  for _, k in ipairs({ "vendor_id", "product_id", "discriminator", "passcode" }) do
    if payload[k] == nil then error(format("codes: field '%s' is required", k), 2) end
  end
  return core.matter_codes(payload)
end

--- Base-38 text of `bytes` (the QR code's alphabet).
M.base38 = core.base38_encode

--- The Verhoeff check digit (an integer) of a string of decimal digits,
-- or nil if it holds anything else.
M.verhoeff = core.verhoeff

--- The Matter attributes of a DAC or PAI subject, as {name, value} pairs
-- after a common name `cn`: the vendor ID and, if given, the product ID.
function M.subject(cn, vendor_id, product_id)
  local s = { { "CN", cn }, { M.VID_OID, format("%04X", vendor_id) } }
  if product_id then s[3] = { M.PID_OID, format("%04X", product_id) } end
  return s
end

-- An attribute's value in a subject line as cert:subject() gives it
-- (RFC 2253: pairs joined by ',' or '+', the OID itself as the name).
local function attribute(line, oid)
  local pattern = "%f[^,+]" .. oid:gsub("%.", "%%.") .. "=([^,+]*)"
  return (("," .. line):match(pattern))
end

--- The vendor and product IDs (text, as the subject holds them; nil
-- where absent) of a DAC, PAI or PAA certificate.
function M.cert_ids(cert)
  local line = cert:subject()
  return attribute(line, M.VID_OID), attribute(line, M.PID_OID)
end

--- Nil if the PAI `ca` (from u:ca or identity.load_ca) can sign DACs of
-- `vendor_id` and `product_id`, else why not: its key must be P-256 (a
-- DAC is signed with ecdsa-with-SHA256) and the IDs in its subject must be
-- these (a PAI without a product ID serves all of the vendor's products).
function M.pai_problem(ca, vendor_id, product_id)
  local kind = ca.key:type()
  if kind ~= "p256" then
    return format("the PAI's key is %s, not p256 (a DAC is signed with ecdsa-with-SHA256)",
      tostring(kind or "of another type"))
  end
  local vid, pid = M.cert_ids(ca.cert)
  if vid ~= format("%04X", vendor_id) then
    return format("the PAI's vendor ID is %s, the recipe's vendor_id %04X", vid or "missing", vendor_id)
  end
  if pid and pid ~= format("%04X", product_id) then
    return format("the PAI's product ID is %s, the recipe's product_id %04X", pid, product_id)
  end
end

return M
