--- nvsgen.identity: per-unit keys, X.509 certificates signed by a CA and
-- certificate requests, all made by OpenSSL.
--
--     local identity = require("nvsgen.identity")
--     local ca = assert(identity.load_ca{ cert = "ca.pem", key = "ca-key.pem" })
--     local key = identity.generate_key("p256")
--     local cert = assert(identity.issue{
--       key = key, ca = ca, days = 3650,
--       subject = { CN = "unit-1000", O = "ACME" },
--     })
--     u:blob("cert", cert:der()); u:blob("key", key:private_der())
--
-- Keys (`nvsgen.key`) give `private_der()` (PKCS#8), `private_sec1()` (EC),
-- `private_pem()`, `private_raw()` (the EC scalar, the Ed25519 seed),
-- `public_der()` (SubjectPublicKeyInfo), `public_pem()`, `public_raw()`
-- (the uncompressed EC point), `type()`, `matches(key_or_cert)`. A CA's
-- key is sealed: it gives out no private encoding at all. Certificates
-- (`nvsgen.cert`) give `der()`, `pem()`, `subject()`, `issuer()`,
-- `serial()`, `public_key()`, `is_ca()`, `validity()`, `key_id()` and
-- `verify(roots [, chain [, at]])`
-- (OpenSSL's X509_verify_cert). Bad data gives nil and a message; a wrong
-- argument raises.

local files = require("nvsgen.files")
local core = require("nvsgen.core")

local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error
local format, sort = string.format, table.sort
local math_type = math.type

local M = {}

M.KEY_TYPES = { "p256", "p384", "ed25519", "rsa2048", "rsa3072" }

--- A new key of `kind` (default "p256"): key, or nil and a message.
function M.generate_key(kind)
  return core.key_generate(kind or "p256")
end

--- The private key in `data` (PEM or DER: PKCS#8, SEC1, PKCS#1).
function M.parse_key(data)
  if type(data) ~= "string" then error("parse_key: a string expected", 2) end
  return core.key_load(data)
end

--- The public key in `data` (PEM or DER SubjectPublicKeyInfo).
function M.parse_public_key(data)
  if type(data) ~= "string" then error("parse_public_key: a string expected", 2) end
  return core.key_load(data, true)
end

--- The certificate in `data` (PEM or DER).
function M.parse_cert(data)
  if type(data) ~= "string" then error("parse_cert: a string expected", 2) end
  return core.cert_load(data)
end

--- The certificate in the file at `path`: cert, or nil and "path: message".
function M.read_cert(path)
  local data, err = files.read(path)
  if not data then return nil, err end
  local cert
  cert, err = core.cert_load(data)
  if not cert then return nil, path .. ": " .. err end
  return cert
end

--- The private key in the file at `path`: key, or nil and "path: message".
function M.read_key(path)
  if type(path) ~= "string" then error("read_key: a path expected", 2) end
  return core.key_read(path)
end

---------------------------------------------------------------------------
-- Time: validity dates as seconds since 1970 (UTC)
---------------------------------------------------------------------------

-- Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- The instants an X.509 time can hold: 0001-01-01 to 9999-12-31 23:59:59.
local TIME_MIN, TIME_MAX = -62135596800, 253402300799

local function days_in_month(y, m)
  if m == 2 then return (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

--- Seconds since 1970 (UTC) of an integer (returned as is) or a string
-- "YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DDTHH:MM:SSZ", years 1
-- to 9999: number, or nil and a message.
function M.time(value)
  if math_type(value) == "integer" then
    if value < TIME_MIN or value > TIME_MAX then
      return nil, format("%d is outside 0001-01-01 to 9999-12-31 23:59:59 UTC", value)
    end
    return value
  end
  if type(value) ~= "string" then
    return nil, format("a date expected (integer or \"YYYY-MM-DD[ HH:MM:SS]\"), got %s", type(value))
  end
  local y, mo, d, rest = value:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  local h, mi, s = 0, 0, 0
  if y and rest ~= "" then
    h, mi, s = rest:match("^[ T](%d%d):(%d%d):(%d%d)Z?$")
    if not h then y = nil end
  end
  y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s)
  -- a day the month does not have is a typing error, not the next month
  if not y or y < 1 or mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo)
      or h > 23 or mi > 59 or s > 59 then
    return nil, format("'%s' is not a date (YYYY-MM-DD[ HH:MM:SS], UTC)", value)
  end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
end

-- Matter's and RFC 5280's "no well-defined expiration date".
M.NO_EXPIRY = "9999-12-31 23:59:59"

local function validity(opts, what)
  local nb, err = M.time(opts.not_before or os.time())
  if not nb then return nil, format("%s: not_before: %s", what, err) end
  local na
  if opts.not_after ~= nil then
    na, err = M.time(opts.not_after)
    if not na then return nil, format("%s: not_after: %s", what, err) end
  elseif opts.days ~= nil then
    if math_type(opts.days) ~= "integer" or opts.days < 1 then
      return nil, format("%s: days must be a positive integer", what)
    end
    na = nb + opts.days * 86400
  else
    return nil, format("%s: give not_after or days", what)
  end
  if na < nb then return nil, format("%s: not_after is before not_before", what) end
  return nb, na
end

---------------------------------------------------------------------------
-- Subjects and extensions
---------------------------------------------------------------------------

-- Named subject fields come in this order; other names (dotted OIDs
-- included) follow in sorted order. A list of {name, value} pairs keeps
-- the order it is given in.
local NAME_ORDER = { "C", "ST", "L", "O", "OU", "CN", "serialNumber" }

-- Flattens a subject table into {name1, value1, ...}; nil, message when a
-- value is not a string.
local function flat_subject(subject, what)
  if type(subject) ~= "table" then
    return nil, format("%s: subject must be a table", what)
  end
  local flat = {}
  local function add(name, value)
    if type(value) ~= "string" or value == "" then
      return format("%s: subject field '%s' must be a non-empty string", what, tostring(name))
    end
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  for i, pair in ipairs(subject) do
    if type(pair) ~= "table" or type(pair[1]) ~= "string" then
      return nil, format("%s: subject[%d] must be a {name, value} pair", what, i)
    end
    local err = add(pair[1], pair[2])
    if err then return nil, err end
  end
  local seen, rest = {}, {}
  for _, name in ipairs(NAME_ORDER) do
    if subject[name] ~= nil then
      seen[name] = true
      local err = add(name, subject[name])
      if err then return nil, err end
    end
  end
  for name in pairs(subject) do
    if type(name) == "string" and not seen[name] then rest[#rest + 1] = name end
  end
  sort(rest)
  for _, name in ipairs(rest) do
    local err = add(name, subject[name])
    if err then return nil, err end
  end
  return flat
end

-- Extension fields of the option tables and OpenSSL's names for them, in
-- the order they are added (the subject key identifier before the
-- authority's: a self-signed certificate's AKI is made from its SKI).
local EXTENSIONS = {
  { "basic_constraints", "basicConstraints" },
  { "key_usage", "keyUsage" },
  { "ext_key_usage", "extendedKeyUsage" },
  { "subject_key_id", "subjectKeyIdentifier", "hash" },
  { "authority_key_id", "authorityKeyIdentifier", "keyid:always" },
  { "subject_alt_name", "subjectAltName" },
}
local EXTENSION_FIELD = {}
for _, e in ipairs(EXTENSIONS) do EXTENSION_FIELD[e[1]] = e end

-- Flattens an extensions table: values are OpenSSL's configuration syntax
-- ("critical,CA:FALSE", "DNS:a.example,IP:10.0.0.1"); the key identifiers
-- also take `true`; `false` leaves a default out.
local function flat_extensions(exts, what)
  if exts == nil then return {} end
  if type(exts) ~= "table" then return nil, format("%s: extensions must be a table", what) end
  for name in pairs(exts) do
    if not EXTENSION_FIELD[name] then
      return nil, format("%s: unknown extension '%s'", what, tostring(name))
    end
  end
  local flat, names = {}, {}
  for _, e in ipairs(EXTENSIONS) do
    local v = exts[e[1]]
    if v == true and e[3] then v = e[3] end
    if v ~= nil and v ~= false then
      if type(v) ~= "string" then
        return nil, format("%s: extension '%s' must be a string", what, e[1])
      end
      flat[#flat + 1] = e[2]
      flat[#flat + 1] = v
      names[#names + 1] = e[1]
    end
  end
  return flat, names
end

local END_ENTITY = {
  basic_constraints = "critical,CA:FALSE",
  key_usage = "critical,digitalSignature",
  subject_key_id = true,
  authority_key_id = true,
}

local CA_DEFAULTS = {
  basic_constraints = "critical,CA:TRUE",
  key_usage = "critical,keyCertSign,cRLSign",
  subject_key_id = true,
  authority_key_id = true,
}

-- `defaults` with the fields of `given` laid over them.
local function merged(defaults, given)
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(given or {}) do out[k] = v end
  return out
end

-- The message for a subject or extension the core refused (`index`, the
-- pair's place in the flat lists).
local function refused(what, err, index, flat_subj, ext_names)
  if index and err == "subject field refused" then
    return format("%s: subject field '%s' refused (an unknown name or a value it cannot hold)",
      what, flat_subj[2 * index - 1])
  elseif index and err == "extension refused" then
    return format("%s: extension '%s' refused", what, ext_names[index])
  end
  return format("%s: %s", what, err)
end

local OPTIONS = {
  key = true, ca = true, subject = true, extensions = true, not_before = true,
  not_after = true, days = true,
}

local function check_options(opts, what, allowed)
  if type(opts) ~= "table" then error(format("%s: table expected, got %s", what, type(opts)), 3) end
  for k in pairs(opts) do
    if not allowed[k] then error(format("%s: unknown field '%s'", what, tostring(k)), 3) end
  end
end

---------------------------------------------------------------------------
-- CAs, certificates, requests
---------------------------------------------------------------------------

local CA = {}
CA.__index = CA
CA.__name = "nvsgen.identity.ca"

--- Loads a CA once for a batch: `cert` and `key` are paths (PEM or DER),
-- or `cert_data` and `key_data` the files' bytes. Checks that the
-- certificate is a CA's and that the key is its key. The key is sealed:
-- nothing can write it anywhere. Returns the CA, or nil and a message.
function M.load_ca(opts)
  check_options(opts, "load_ca", { cert = true, key = true, cert_data = true, key_data = true })
  local cert_data, key_data = opts.cert_data, opts.key_data
  local err
  local cert_name = opts.cert or "CA certificate"
  local key_name = opts.key or "CA key"
  if not cert_data then
    if type(opts.cert) ~= "string" then error("load_ca: field 'cert' (a path) is required", 2) end
    cert_data, err = files.read(opts.cert)
    if not cert_data then return nil, err end
  end
  if not key_data and type(opts.key) ~= "string" then
    error("load_ca: field 'key' (a path) is required", 2)
  end
  local cert
  cert, err = core.cert_load(cert_data)
  if not cert then return nil, format("%s: %s", cert_name, err) end
  -- From a path, the key's bytes stay in C, wiped once parsed.
  local key
  if key_data then
    key, err = core.key_load(key_data)
    if not key then return nil, format("%s: %s", key_name, err) end
  else
    key, err = core.key_read(opts.key)
    if not key then return nil, err end
  end
  key:seal()
  if not cert:is_ca() then
    return nil, format("%s: certificate is not a CA certificate", cert_name)
  end
  -- What it signs would never verify: refused before the first unit.
  local nb, na = cert:validity()
  if not nb then return nil, format("%s: %s", cert_name, na) end
  local now = os.time()
  if (M.time(nb) or now) > now then
    return nil, format("%s: CA certificate is not valid before %s UTC", cert_name, nb)
  elseif (M.time(na) or now) < now then
    return nil, format("%s: CA certificate expired on %s UTC", cert_name, na)
  end
  -- Each certificate's authority key identifier is the CA's subject key
  -- identifier (Matter's DAC profile requires it; chain builders match on it).
  if not cert:key_id() then
    return nil, format("%s: CA certificate has no subject key identifier"
      .. " (its certificates' authority key identifier names it)", cert_name)
  end
  if not key:matches(cert) then
    return nil, format("CA key does not match CA certificate (%s, %s)", key_name, cert_name)
  end
  return setmetatable({ cert = cert, key = key }, CA)
end

--- A self-signed CA certificate for development: `key` (its own key),
-- `subject`, validity (`days` or `not_after`, `not_before`), `path_len`
-- (basicConstraints pathlen), `extensions` over the CA defaults. Returns
-- the certificate, or nil and a message.
function M.self_signed_ca(opts)
  check_options(opts, "self_signed_ca", {
    key = true, subject = true, extensions = true, not_before = true, not_after = true,
    days = true, path_len = true,
  })
  local what = "self_signed_ca"
  if getmetatable(opts.key) == nil or type(opts.key.type) ~= "function" then
    error("self_signed_ca: field 'key' (a key) is required", 2)
  end
  local exts = merged(CA_DEFAULTS, opts.extensions)
  if opts.path_len ~= nil then
    if math_type(opts.path_len) ~= "integer" or opts.path_len < 0 then
      error("self_signed_ca: path_len must be a non-negative integer", 2)
    end
    exts.basic_constraints = "critical,CA:TRUE,pathlen:" .. opts.path_len
  end
  local subj, err = flat_subject(opts.subject, what)
  if not subj then return nil, err end
  local ext_flat, ext_names = flat_extensions(exts, what)
  if not ext_flat then return nil, ext_names end
  local nb, na = validity(opts, what)
  if not nb then return nil, na end
  local cert, cerr, index = core.cert_issue(subj, ext_flat, nb, na, opts.key, nil, opts.key)
  if not cert then return nil, refused(what, cerr, index, subj, ext_names) end
  return cert
end

--- Issues a certificate for `key`'s public key signed by `ca` (from
-- load_ca, or `{ cert = cert, key = key }` of objects): `subject` (named
-- fields, or a list of {name, value} pairs whose order is kept; names
-- are OpenSSL's short names or dotted OIDs), validity (`days` or
-- `not_after`, and `not_before`, default now), `extensions` over the
-- end-entity defaults (basicConstraints CA:FALSE, keyUsage
-- digitalSignature, both critical; subject and authority key
-- identifiers): `basic_constraints`, `key_usage`, `ext_key_usage`,
-- `subject_key_id`, `authority_key_id`, `subject_alt_name`. The serial
-- number is 16 random bytes. Returns the certificate, or nil and a message.
function M.issue(opts)
  check_options(opts, "issue", OPTIONS)
  local what = "issue"
  local ca = opts.ca
  if type(ca) ~= "table" or ca.cert == nil or ca.key == nil then
    error("issue: field 'ca' (from identity.load_ca) is required", 2)
  end
  if opts.key == nil then error("issue: field 'key' is required", 2) end
  local subj, err = flat_subject(opts.subject or {}, what)
  if not subj then return nil, err end
  local ext_flat, ext_names = flat_extensions(merged(END_ENTITY, opts.extensions), what)
  if not ext_flat then return nil, ext_names end
  local nb, na = validity(opts, what)
  if not nb then return nil, na end
  local cert, cerr, index = core.cert_issue(subj, ext_flat, nb, na, opts.key, ca.cert, ca.key)
  if not cert then return nil, refused(what, cerr, index, subj, ext_names) end
  return cert
end

CA.issue = function(self, opts)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.ca = self
  return M.issue(o)
end

--- A PKCS#10 request signed by `key`: `subject`, and `extensions`
-- (usually only `subject_alt_name`; none by default). Returns the
-- request (`der()`, `pem()`, `subject()`), or nil and a message.
function M.csr(opts)
  check_options(opts, "csr", { key = true, subject = true, extensions = true })
  local what = "csr"
  if opts.key == nil then error("csr: field 'key' is required", 2) end
  local subj, err = flat_subject(opts.subject or {}, what)
  if not subj then return nil, err end
  local ext_flat, ext_names = flat_extensions(opts.extensions, what)
  if not ext_flat then return nil, ext_names end
  local req, rerr, index = core.csr_make(subj, ext_flat, opts.key)
  if not req then return nil, refused(what, rerr, index, subj, ext_names) end
  return req
end

M.CA = CA

return M
