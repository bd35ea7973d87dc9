-- What a CA must be before it signs anything (identity.load_ca), dates a
-- certificate can really hold, and the Matter example's PAI checks.
local helper = require("spec.support.helper")
local recipes = require("spec.support.recipes")
local ossl = require("spec.support.openssl")
local identity = require("nvsgen.identity")

local EXAMPLES = helper.ROOT .. "/examples"

-- A self-signed development CA with `opts` over a P-256 key, written as
-- PEM files into dir; returns their paths.
local function ca_files(dir, name, opts, kind)
  local key = assert(identity.generate_key(kind or "p256"))
  local o = { key = key, subject = { CN = name }, days = 30 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local cert = assert(identity.self_signed_ca(o))
  local cert_path, key_path = dir .. "/" .. name .. ".pem", dir .. "/" .. name .. "-key.pem"
  helper.write(cert_path, cert:pem())
  helper.write(key_path, assert(key:private_pem()))
  return cert_path, key_path
end

describe("identity.load_ca", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  it("refuses a CA certificate that has expired or is not valid yet", function()
    local cert, key = ca_files(tmp, "old", { not_before = "2000-01-01", not_after = "2001-01-01 12:00:00" })
    assert.same({ nil, cert .. ": CA certificate expired on 2001-01-01 12:00:00 UTC" },
      { identity.load_ca{ cert = cert, key = key } })
    cert, key = ca_files(tmp, "new", { not_before = "2100-01-01", not_after = "2101-01-01" })
    assert.same({ nil, cert .. ": CA certificate is not valid before 2100-01-01 00:00:00 UTC" },
      { identity.load_ca{ cert = cert, key = key } })
  end)

  it("refuses a certificate without basicConstraints CA:TRUE, even one with keyCertSign", function()
    local cert, key = ca_files(tmp, "ku", { extensions = { basic_constraints = false } })
    assert.same({ nil, cert .. ": certificate is not a CA certificate" },
      { identity.load_ca{ cert = cert, key = key } })
    assert.is_false(assert(identity.read_cert(cert)):is_ca())
  end)

  it("refuses a CA certificate without a subject key identifier, which issued certificates name", function()
    local cert, key = ca_files(tmp, "noski", { extensions = { subject_key_id = false, authority_key_id = false } })
    assert.same({ nil, cert .. ": CA certificate has no subject key identifier"
      .. " (its certificates' authority key identifier names it)" },
      { identity.load_ca{ cert = cert, key = key } })
  end)

  it("reads a key file in C (read_key, load_ca): its bytes never become a Lua string", function()
    local key = assert(identity.generate_key("p256"))
    local path = tmp .. "/k.pem"
    helper.write(path, assert(key:private_pem()))
    assert.is_true(assert(identity.read_key(path)):matches(key))
    assert.same({ nil, tmp .. "/none.pem: No such file or directory" }, { identity.read_key(tmp .. "/none.pem") })
    helper.write(tmp .. "/bad.pem", "garbage")
    assert.same({ nil, tmp .. "/bad.pem: not a private key in PEM or DER" }, { identity.read_key(tmp .. "/bad.pem") })
    local cert = ca_files(tmp, "ca")
    assert.same({ nil, tmp .. "/none.pem: No such file or directory" },
      { identity.load_ca{ cert = cert, key = tmp .. "/none.pem" } })
  end)

  it("says a key is encrypted rather than not a key", function()
    local key = assert(identity.generate_key("p256"))
    local path = tmp .. "/k.pem"
    helper.write(path, assert(key:private_pem()))
    local ok = os.execute(("openssl pkcs8 -topk8 -in %s -out %s.enc -passout pass:secret 2>/dev/null")
      :format(path, path))
    assert.is_true(ok)
    assert.same({ nil, "an encrypted private key (decrypt it first: no passphrase is asked for)" },
      { identity.parse_key(helper.read(path .. ".enc")) })
    ok = os.execute(("openssl ec -in %s -aes256 -passout pass:secret -out %s.trad 2>/dev/null"):format(path, path))
    assert.is_true(ok)
    assert.same({ nil, "an encrypted private key (decrypt it first: no passphrase is asked for)" },
      { identity.parse_key(helper.read(path .. ".trad")) })
  end)
end)

describe("certificate dates and key identifiers", function()
  it("gives the validity dates and the subject key identifier an issued certificate's AKI repeats", function()
    local tmp = helper.tmpdir()
    local cert_path, key_path = ca_files(tmp, "ca",
      { not_before = "2020-02-29 01:02:03", not_after = identity.NO_EXPIRY })
    local ca = assert(identity.load_ca{ cert = cert_path, key = key_path })
    assert.same({ "2020-02-29 01:02:03", "9999-12-31 23:59:59" }, { ca.cert:validity() })
    local ski = assert(ca.cert:key_id())
    assert.equal(20, #ski)
    local cert = assert(ca:issue{ key = assert(identity.generate_key("p256")), subject = { CN = "u" }, days = 1 })
    local text = ossl.x509(tmp, cert:pem(), { "-ext", "authorityKeyIdentifier" })
    local hex = ski:gsub(".", function(c) return ("%02X:"):format(c:byte()) end):sub(1, -2)
    assert.matches(hex, text, 1, true)
    assert.is_nil(assert(identity.self_signed_ca{ key = assert(identity.generate_key("p256")), subject = { CN = "n" },
      days = 1, extensions = { subject_key_id = false, authority_key_id = false } }):key_id())
    helper.cleanup(tmp)
  end)
end)

describe("identity.time", function()
  it("refuses days a month does not have", function()
    assert.same({ nil, "'2024-02-30' is not a date (YYYY-MM-DD[ HH:MM:SS], UTC)" }, { identity.time("2024-02-30") })
    assert.same({ nil, "'2023-02-29' is not a date (YYYY-MM-DD[ HH:MM:SS], UTC)" }, { identity.time("2023-02-29") })
    assert.same({ nil, "'2024-04-31' is not a date (YYYY-MM-DD[ HH:MM:SS], UTC)" }, { identity.time("2024-04-31") })
    assert.same({ nil, "'0000-01-01' is not a date (YYYY-MM-DD[ HH:MM:SS], UTC)" }, { identity.time("0000-01-01") })
    assert.equal(1709164800, identity.time("2024-02-29"))
    assert.equal(951782400, identity.time("2000-02-29"))
    assert.equal(-62135596800, identity.time("0001-01-01"))
    assert.equal(253402300799, identity.time(identity.NO_EXPIRY))
  end)

  it("refuses seconds outside the years 1 to 9999 a certificate can hold", function()
    assert.same({ nil, "-62135596801 is outside 0001-01-01 to 9999-12-31 23:59:59 UTC" },
      { identity.time(-62135596801) })
    assert.same({ nil, "253402300800 is outside 0001-01-01 to 9999-12-31 23:59:59 UTC" },
      { identity.time(253402300800) })
    local key = assert(identity.generate_key("p256"))
    assert.same({ nil, "self_signed_ca: not_before: -62167219201 is outside 0001-01-01 to 9999-12-31 23:59:59 UTC" },
      { identity.self_signed_ca{ key = key, subject = { CN = "x" }, not_before = -62167219201, days = 1 } })
  end)
end)

describe("examples/matter.lua's PAI", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  local function run_with(cert, key)
    local recipe = require("nvsgen.recipe")
    local r = recipe.load(EXAMPLES .. "/matter.lua"):extend{ params = {
      pai_cert = cert, pai_key = key, certification_declaration = EXAMPLES .. "/matter/cd-test.der" } }
    return recipes.run(r, { "--serial-range", "3-4", "--outdir", tmp .. "/out" })
  end

  it("must be a P-256 CA: a DAC is signed with ecdsa-with-SHA256", function()
    for _, kind in ipairs({ "p384", "rsa2048" }) do
      local cert, key = ca_files(tmp, kind, { subject = { { "CN", "PAI" },
        { "1.3.6.1.4.1.37244.2.1", "FFF1" } } }, kind)
      local status, _, err = run_with(cert, key)
      assert.equal(1, status)
      assert.matches("^recipe: unit 3: [^\n]*matter%.lua:%d+: key 'dac%-cert': the PAI's key is "
        .. kind .. ", not p256 %(a DAC is signed with ecdsa%-with%-SHA256%)\n$", err)
      assert.is_nil(helper.exists(tmp .. "/out/matter-3.bin") or nil)
    end
  end)

  it("must carry the recipe's vendor ID (and its product ID if it names one)", function()
    local cert, key = ca_files(tmp, "other", { subject = { { "CN", "PAI" },
      { "1.3.6.1.4.1.37244.2.1", "FFF2" } } })
    local status, _, err = run_with(cert, key)
    assert.equal(1, status)
    assert.matches("^recipe: unit 3: [^\n]*matter%.lua:%d+: key 'dac%-cert': the PAI's vendor ID is FFF2,"
      .. " the recipe's vendor_id FFF1\n$", err)
    cert, key = ca_files(tmp, "otherpid", { subject = { { "CN", "PAI" },
      { "1.3.6.1.4.1.37244.2.1", "FFF1" }, { "1.3.6.1.4.1.37244.2.2", "8002" } } })
    status, _, err = run_with(cert, key)
    assert.equal(1, status)
    assert.matches("^recipe: unit 3: [^\n]*matter%.lua:%d+: key 'dac%-cert': the PAI's product ID is 8002,"
      .. " the recipe's product_id 8001\n$", err)
    cert, key = ca_files(tmp, "vidonly", { subject = { { "CN", "PAI" },
      { "1.3.6.1.4.1.37244.2.1", "FFF1" } } })
    status = run_with(cert, key)
    assert.equal(0, status)
    assert.is_true(helper.exists(tmp .. "/out/matter-3.bin") ~= nil)
  end)
end)

describe("the process holding private keys", function()
  it("makes no core dump once a private key exists", function()
    assert(identity.generate_key("p256"))
    local f = assert(io.open("/proc/self/limits"))
    local limits = f:read("a")
    f:close()
    assert.matches("\nMax core file size +0 +", limits)
  end)
end)

describe("a unit's CSV (--csv)", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  it("is readable by its owner only: it holds every value in clear, private keys included", function()
    local lfs = require("lfs")
    local status, _, err = recipes.run(EXAMPLES .. "/matter.lua",
      { "--serial-range", "1", "--outdir", tmp, "--encrypt", "--keygen", "--csv" })
    assert.equal(0, status, err)
    assert.matches("\ndac%-key,data,hex2bin,%x+\r?\n", helper.read(tmp .. "/matter-1.csv"))
    assert.equal("rw-------", lfs.attributes(tmp .. "/matter-1.csv", "permissions"))
    assert.equal("rw-------", lfs.attributes(tmp .. "/matter-1-keys.bin", "permissions"))
  end)
end)
