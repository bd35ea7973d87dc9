-- nvsgen.identity: keys, certificates, requests and CAs, checked with
-- OpenSSL's own command line; crypto's KDFs and HMAC against published
-- vectors; the unit's random_int, uuid and ca helpers.
local helper = require("spec.support.helper")
local ossl = require("spec.support.openssl")
local identity = require("nvsgen.identity")
local crypto = require("nvsgen.crypto")
local core = require("nvsgen.core")

local hex = core.hex_encode
local unhex = core.hex_decode

describe("identity keys", function()
  it("makes each key type with its encodings", function()
    local sizes = {
      p256 = { raw = 32, pub = 65 }, p384 = { raw = 48, pub = 97 },
      ed25519 = { raw = 32, pub = 32 },
    }
    for _, kind in ipairs(identity.KEY_TYPES) do
      local key = assert(identity.generate_key(kind))
      assert.equal(kind, key:type())
      for _, form in ipairs({ "private_der", "private_pem", "public_der" }) do
        local data = assert(key[form](key))
        local again = form == "public_der" and assert(identity.parse_public_key(data))
          or assert(identity.parse_key(data))
        assert.is_true(again:matches(key), kind .. " " .. form)
      end
      assert.matches("^%-%-%-%-%-BEGIN PRIVATE KEY%-%-%-%-%-\n", key:private_pem())
      assert.matches("^%-%-%-%-%-BEGIN PUBLIC KEY%-%-%-%-%-\n", key:public_pem())
      if sizes[kind] then
        assert.equal(sizes[kind].raw, #key:private_raw())
        assert.equal(sizes[kind].pub, #key:public_raw())
      else
        assert.same({ nil, "encoding not available for this key type" }, { key:private_raw() })
        assert.same({ nil, "encoding not available for this key type" }, { key:public_raw() })
      end
    end
  end)

  it("gives the EC scalar and point that its SEC1 encoding holds", function()
    local key = assert(identity.generate_key("p256"))
    local sec1 = assert(key:private_sec1())
    -- ECPrivateKey: 30 77 02 01 01 04 20 <scalar> a0 0a <curve OID> a1 44 03 42 00 <point>
    assert.equal("307702010104", hex(sec1:sub(1, 6)))
    assert.equal(key:private_raw(), sec1:sub(8, 39))
    assert.equal(key:public_raw(), sec1:sub(-65))
    assert.equal(4, key:public_raw():byte(1))
    assert.is_true(assert(identity.parse_key(sec1)):matches(key))
    local other = assert(identity.generate_key("p256"))
    assert.is_false(other:matches(key))
  end)

  it("refuses what is not a key, and unknown types", function()
    assert.same({ nil, "not a private key in PEM or DER" }, { identity.parse_key("garbage") })
    assert.same({ nil, "not a private key in PEM or DER" },
      { identity.parse_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") })
    assert.same({ nil, "unknown key type 'p521' (p256, p384, ed25519, rsa2048, rsa3072)" },
      { identity.generate_key("p521") })
    local ed = assert(identity.generate_key("ed25519"))
    assert.same({ nil, "encoding not available for this key type" }, { ed:private_sec1() })
    local pub = assert(identity.parse_public_key(ed:public_der()))
    assert.same({ nil, "key holds no private part" }, { pub:private_der() })
  end)
end)

describe("identity certificates", function()
  local tmp, ca_key, ca_cert, ca
  before_each(function()
    tmp = helper.tmpdir()
    ca_key = assert(identity.generate_key("p256"))
    ca_cert = assert(identity.self_signed_ca{
      key = ca_key, days = 30, subject = { O = "Test", CN = "Test CA" },
    })
    ca = { cert = ca_cert, key = ca_key }
  end)
  after_each(function() helper.cleanup(tmp) end)

  it("makes a self-signed CA that OpenSSL verifies", function()
    assert.is_true(ca_cert:is_ca())
    assert.equal("CN=Test CA,O=Test", ca_cert:subject())
    assert.equal(ca_cert:subject(), ca_cert:issuer())
    assert.is_true(ca_cert:verify({ ca_cert }))
    local ok, out = ossl.verify(tmp, ca_cert:pem(), ca_cert:pem())
    assert.is_true(ok, out)
    assert.equal("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,Certificate Sign, CRL Sign\n",
      ossl.x509(tmp, ca_cert:pem(), { "-ext", "basicConstraints,keyUsage", "-certopt", "no_header" })
        :gsub("X509v3 Basic Constraints: critical\n%s*", "basicConstraints=critical,")
        :gsub("X509v3 Key Usage: critical\n%s*", "keyUsage=critical,"))
  end)

  it("issues a certificate that verifies against its CA, with the subject, OIDs, validity and extensions", function()
    local key = assert(identity.generate_key("p256"))
    local cert = assert(identity.issue{
      key = key, ca = ca, not_before = "2025-01-02 03:04:05", not_after = identity.NO_EXPIRY,
      subject = { { "CN", "unit-1000" }, { "1.3.6.1.4.1.37244.2.1", "FFF1" }, { "serialNumber", "1000" } },
      extensions = { ext_key_usage = "clientAuth,serverAuth", subject_alt_name = "DNS:unit-1000.example" },
    })
    assert.is_true(cert:verify({ ca_cert }, nil, os.time() + 3600))
    local ok, out = ossl.verify(tmp, cert:pem(), ca_cert:pem())
    assert.is_true(ok, out)
    assert.equal(tmp .. "/v-cert.pem: OK\n", out)
    assert.is_true(key:matches(cert))
    assert.is_false(ca_key:matches(cert))
    assert.equal("serialNumber=1000,1.3.6.1.4.1.37244.2.1=FFF1,CN=unit-1000", cert:subject())
    assert.equal("CN=Test CA,O=Test", cert:issuer())
    -- the vendor ID as a UTF8String (tag 0x0C) of 4 hex digits, as Matter has it
    assert.truthy(cert:der():find("\6\10\43\6\1\4\1\130\162\124\2\1\12\4FFF1", 1, true))
    assert.equal("notBefore=Jan  2 03:04:05 2025 GMT\nnotAfter=Dec 31 23:59:59 9999 GMT\n",
      ossl.x509(tmp, cert:pem(), { "-dates" }))
    local serial = cert:serial()
    assert.equal(16, #serial)
    assert.is_true(serial:byte(1) >= 0x40 and serial:byte(1) <= 0x7f)
    assert.not_equal(serial, assert(identity.issue{ key = key, ca = ca, days = 1 }):serial())
    local ext = ossl.x509(tmp, cert:pem(), { "-ext",
      "basicConstraints,keyUsage,extendedKeyUsage,subjectAltName" })
    assert.equal(table.concat({
      "X509v3 Basic Constraints: critical", "    CA:FALSE",
      "X509v3 Key Usage: critical", "    Digital Signature",
      "X509v3 Extended Key Usage: ", "    TLS Web Client Authentication, TLS Web Server Authentication",
      "X509v3 Subject Alternative Name: ", "    DNS:unit-1000.example", "" }, "\n"), ext)
    -- the authority key identifier is the CA's subject key identifier
    local function ids(pem, name)
      return (ossl.x509(tmp, pem, { "-ext", name }):match("\n%s*([%x:]+)"))
    end
    assert.equal(ids(ca_cert:pem(), "subjectKeyIdentifier"), ids(cert:pem(), "authorityKeyIdentifier"))
    assert.equal(cert:der(), assert(identity.parse_cert(cert:pem())):der())
  end)

  it("signs with each key type", function()
    for _, kind in ipairs({ "p384", "ed25519", "rsa2048" }) do
      local k = assert(identity.generate_key(kind))
      local own = assert(identity.self_signed_ca{ key = k, days = 2, subject = { CN = kind } })
      local unit = assert(identity.generate_key("p256"))
      local cert = assert(identity.issue{ key = unit, ca = { cert = own, key = k }, days = 1 })
      local ok, out = ossl.verify(tmp, cert:pem(), own:pem())
      assert.is_true(ok, kind .. ": " .. out)
    end
  end)

  it("fails verification against another CA", function()
    local other_key = assert(identity.generate_key("p256"))
    local other = assert(identity.self_signed_ca{ key = other_key, days = 2, subject = { CN = "Test CA", O = "Test" } })
    local cert = assert(identity.issue{ key = assert(identity.generate_key("p256")), ca = ca, days = 1 })
    assert.same({ nil, "unable to get local issuer certificate" }, { cert:verify({ other }) })
    assert.is_false((ossl.verify(tmp, cert:pem(), other:pem())))
  end)

  it("makes a request that OpenSSL verifies", function()
    local key = assert(identity.generate_key("p256"))
    local req = assert(identity.csr{ key = key, subject = { CN = "node-1", O = "ACME" },
      extensions = { subject_alt_name = "DNS:node-1.example" } })
    assert.equal("CN=node-1,O=ACME", req:subject())
    helper.write(tmp .. "/r.pem", req:pem())
    local ok, out = ossl.run({ "req", "-in", tmp .. "/r.pem", "-verify", "-noout" })
    assert.is_true(ok, out)
    assert.equal("Certificate request self-signature verify OK\n", out)
    helper.write(tmp .. "/r.der", req:der())
    ok, out = ossl.run({ "req", "-inform", "DER", "-in", tmp .. "/r.der", "-noout", "-pubkey" })
    assert.is_true(ok, out)
    assert.equal(key:public_pem(), out)
  end)

  it("refuses bad subjects, extensions and validity with a message naming them", function()
    local key = assert(identity.generate_key("p256"))
    assert.same({ nil, "issue: subject field 'XX' refused (an unknown name or a value it cannot hold)" },
      { identity.issue{ key = key, ca = ca, days = 1, subject = { { "XX", "a" } } } })
    assert.same({ nil, "issue: extension 'key_usage' refused" },
      { identity.issue{ key = key, ca = ca, days = 1, extensions = { key_usage = "bogus" } } })
    assert.same({ nil, "issue: unknown extension 'name_constraints'" },
      { identity.issue{ key = key, ca = ca, days = 1, extensions = { name_constraints = "x" } } })
    assert.same({ nil, "issue: not_after is before not_before" },
      { identity.issue{ key = key, ca = ca, not_before = "2030-01-01", not_after = "2029-12-31" } })
    assert.same({ nil, "issue: not_before: '2030-13-01' is not a date (YYYY-MM-DD[ HH:MM:SS], UTC)" },
      { identity.issue{ key = key, ca = ca, not_before = "2030-13-01", days = 1 } })
    assert.same({ nil, "issue: give not_after or days" }, { identity.issue{ key = key, ca = ca } })
    assert.has_error(function() identity.issue{ key = key, ca = ca, dayz = 1 } end,
      "issue: unknown field 'dayz'")
  end)

  it("reads dates as UTC", function()
    assert.equal(0, identity.time("1970-01-01"))
    assert.equal(951782400, identity.time("2000-02-29"))
    assert.equal(253402300799, identity.time(identity.NO_EXPIRY))
    assert.equal(1735787045, identity.time("2025-01-02T03:04:05Z"))
  end)
end)

describe("identity.load_ca", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  local function make_ca(name)
    local key = assert(identity.generate_key("p256"))
    local cert = assert(identity.self_signed_ca{ key = key, days = 2, subject = { CN = name } })
    helper.write(tmp .. "/" .. name .. ".pem", cert:pem())
    helper.write(tmp .. "/" .. name .. "-key.der", key:private_der())
    return cert, key
  end

  it("loads a CA whose key never leaves", function()
    make_ca("a")
    local ca = assert(identity.load_ca{ cert = tmp .. "/a.pem", key = tmp .. "/a-key.der" })
    assert.same({ nil, "the private key of a CA is never exported" }, { ca.key:private_der() })
    assert.same({ nil, "the private key of a CA is never exported" }, { ca.key:private_raw() })
    assert.is_false(ca.key:has_private())
    local cert = assert(ca:issue{ key = assert(identity.generate_key("p256")), days = 1 })
    assert.is_true(cert:verify({ ca.cert }))
  end)

  it("refuses a key that is not the certificate's, a non-CA certificate, garbage and missing files", function()
    make_ca("a")
    make_ca("b")
    assert.same({ nil, ("CA key does not match CA certificate (%s/b-key.der, %s/a.pem)"):format(tmp, tmp) },
      { identity.load_ca{ cert = tmp .. "/a.pem", key = tmp .. "/b-key.der" } })
    helper.write(tmp .. "/junk.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert.same({ nil, tmp .. "/junk.pem: not an X.509 certificate in PEM or DER" },
      { identity.load_ca{ cert = tmp .. "/junk.pem", key = tmp .. "/a-key.der" } })
    assert.same({ nil, tmp .. "/junk.pem: not a private key in PEM or DER" },
      { identity.load_ca{ cert = tmp .. "/a.pem", key = tmp .. "/junk.pem" } })
    assert.same({ nil, tmp .. "/none.pem: No such file or directory" },
      { identity.load_ca{ cert = tmp .. "/none.pem", key = tmp .. "/a-key.der" } })
    local ca = assert(identity.load_ca{ cert = tmp .. "/a.pem", key = tmp .. "/a-key.der" })
    local leaf_key = assert(identity.generate_key("p256"))
    helper.write(tmp .. "/leaf.pem", assert(ca:issue{ key = leaf_key, days = 1 }):pem())
    helper.write(tmp .. "/leaf-key.pem", leaf_key:private_pem())
    assert.same({ nil, tmp .. "/leaf.pem: certificate is not a CA certificate" },
      { identity.load_ca{ cert = tmp .. "/leaf.pem", key = tmp .. "/leaf-key.pem" } })
  end)
end)

describe("crypto KDFs and MACs", function()
  it("match published and independently computed values", function()
    -- RFC 4231 test case 1
    assert.equal("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      hex(crypto.hmac(("\11"):rep(20), "Hi There")))
    -- RFC 5869 test case 1
    assert.equal("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
      hex(crypto.hkdf(("\11"):rep(22), unhex("000102030405060708090a0b0c"),
        unhex("f0f1f2f3f4f5f6f7f8f9"), 42)))
    -- Python's hashlib.pbkdf2_hmac
    assert.equal("c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
      hex(crypto.pbkdf2_sha256("password", "salt", 4096, 32)))
    assert.equal("e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53c"
      .. "f76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e",
      hex(crypto.pbkdf2_sha512("password", "salt", 2, 64)))
    assert.equal("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
      .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", hex(crypto.sha512("abc")))
    assert.same({ nil, "unknown digest" }, { crypto.hmac("k", "d", "MD5") })
  end)
end)

describe("unit identity helpers", function()
  local recipe = require("nvsgen.recipe")
  local nvsgen = require("nvsgen")
  local function unit()
    local r = recipe.define{ unit = function() end }
    local u = recipe.unit_context(r, nvsgen.partition{ size = 0x3000 }, core.random_bytes)
    u:begin(1, 1)
    return u
  end

  it("random_int draws every value of a small range, and only those", function()
    local u = unit()
    local seen = {}
    for _ = 1, 3000 do
      local v = u:random_int(-2, 3)
      assert.is_true(v >= -2 and v <= 3)
      seen[v] = (seen[v] or 0) + 1
    end
    for v = -2, 3 do assert.is_true(seen[v] > 350, "value " .. v) end
    assert.equal(7, u:random_int(7, 7))
    local big = u:random_int(math.mininteger, math.maxinteger)
    assert.equal("integer", math.type(big))
    assert.has_error(function() u:random_int(3, 2) end, "random_int: empty interval [3, 2]")
    assert.has_error(function() u:random_int(1.5, 2) end, "random_int: integer bounds expected")
  end)

  it("uuid gives version-4 UUIDs", function()
    local u = unit()
    local a, b = u:uuid(), u:uuid()
    assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", a)
    assert.not_equal(a, b)
  end)
end)
