-- The identity examples (examples/matter.lua, cloud_identity.lua and
-- cloud_identity_csr.lua) run into a temporary folder; every unit is then
-- checked from its image alone: certificate chains with `openssl verify`,
-- the key in the image against its certificate, the verifier and the
-- onboarding codes recomputed, and the manifest's columns.
local helper = require("spec.support.helper")
local recipes = require("spec.support.recipes")
local ossl = require("spec.support.openssl")
local nvsgen = require("nvsgen")
local identity = require("nvsgen.identity")
local matter = require("nvsgen.matter")
local core = require("nvsgen.core")

local EXAMPLES = helper.ROOT .. "/examples"

-- A P-256 key from its raw scalar: an ECPrivateKey without the public
-- point, which OpenSSL computes from the scalar.
local function key_from_scalar(d)
  return assert(identity.parse_key("\48\49\2\1\1\4\32" .. d
    .. "\160\10\6\8\42\134\72\206\61\3\1\7"))
end

local function run(script, argv)
  local status, out, err = recipes.run(EXAMPLES .. "/" .. script, argv)
  assert.equal(0, status, err)
  assert.matches("written", out)
end

describe("identity examples", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  it("matter.lua: chip-factory data that checks out from the image alone, encrypted", function()
    run("matter.lua", { "--serial-range", "1-4", "--outdir", tmp, "--encrypt", "--keygen" })
    local rows = recipes.manifest(tmp .. "/manifest.csv")
    assert.equal(4, #rows)
    local paa = helper.read(EXAMPLES .. "/matter/paa-cert.pem")
    local pai_pem = helper.read(EXAMPLES .. "/matter/pai-cert.pem")
    local pai = assert(identity.parse_cert(pai_pem))
    local seen = {}
    for _, row in ipairs(rows) do
      local keys = {}
      for k in pairs(row) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.same({ "dac_cert", "discriminator", "image", "keys", "manual_code", "passcode",
                    "qr_code", "serial", "sha256", "size" }, keys)
      local read = assert(nvsgen.read(tmp .. "/" .. row.image, tmp .. "/" .. row.keys))
      assert.same({}, read.problems)
      local f = read.namespaces["chip-factory"]
      local types = {}
      for _, item in ipairs(read.items) do types[item.key] = item.type end
      assert.same({
        ["cert-dclrn"] = "blob", ["dac-cert"] = "blob", ["dac-key"] = "blob",
        ["dac-pub-key"] = "blob", discriminator = "u32", ["hardware-ver"] = "u32",
        ["hw-ver-str"] = "string", ["iteration-count"] = "u32", ["pai-cert"] = "blob",
        ["product-id"] = "u32", ["product-name"] = "string", ["rd-id-uid"] = "blob",
        salt = "string", ["serial-num"] = "string", ["vendor-id"] = "u32",
        ["vendor-name"] = "string", verifier = "string",
      }, types)
      -- the DAC: chain to the PAA through the PAI, key and public key in the image
      local dac = assert(identity.parse_cert(f["dac-cert"]))
      local ok, out = ossl.verify(tmp, dac:pem(), paa, pai_pem)
      assert.is_true(ok, out)
      assert.equal(pai:der(), f["pai-cert"])
      assert.equal(32, #f["dac-key"])
      assert.is_true(key_from_scalar(f["dac-key"]):matches(dac))
      assert.equal(dac:public_key():public_raw(), f["dac-pub-key"])
      assert.equal(row.dac_cert, dac:pem())
      assert.matches("^CN=%x+%-%x+%-4%x+%-%x+%-%x+,1%.3%.6%.1%.4%.1%.37244%.2%.1=FFF1,"
        .. "1%.3%.6%.1%.4%.1%.37244%.2%.2=8001$", (dac:subject():gsub("^(.-),(.-),(.-)$", "%3,%2,%1")))
      -- commissioning data recomputed
      local passcode, discriminator = tonumber(row.passcode), tonumber(row.discriminator)
      assert.is_true(matter.passcode_valid(passcode))
      assert.equal(discriminator, f.discriminator)
      assert.equal(1000, f["iteration-count"])
      local salt = core.base64_decode(f.salt)
      assert.equal(32, #salt)
      assert.equal(core.base64_encode(assert(matter.verifier(passcode, salt, 1000))), f.verifier)
      assert.same({ row.qr_code, row.manual_code }, { matter.codes{ vendor_id = f["vendor-id"],
        product_id = f["product-id"], discriminator = discriminator, passcode = passcode } })
      assert.equal(("SN%08d"):format(tonumber(row.serial)), f["serial-num"])
      assert.equal(EXAMPLES and helper.read(EXAMPLES .. "/matter/cd-test.der"), f["cert-dclrn"])
      assert.is_nil(seen[f["dac-key"]])
      seen[f["dac-key"]] = true
    end
  end)

  it("cloud_identity.lua: a certificate per unit from the factory CA, its key beside it", function()
    run("cloud_identity.lua", { "--serial-range", "7-9", "--outdir", tmp })
    local ca_pem = helper.read(EXAMPLES .. "/cloud/factory-ca.pem")
    for _, row in ipairs(recipes.manifest(tmp .. "/manifest.csv")) do
      local ns = assert(nvsgen.read(tmp .. "/" .. row.image)).namespaces.rmaker_creds
      assert.equal(("acme-node-%06d"):format(tonumber(row.serial)), ns.node_id)
      assert.equal(row.node_id, ns.node_id)
      assert.equal(row.certificate, ns.client_cert)
      local cert = assert(identity.parse_cert(ns.client_cert))
      local ok, out = ossl.verify(tmp, cert:pem(), ca_pem)
      assert.is_true(ok, out)
      assert.equal("CN=" .. ns.node_id .. ",O=ACME Devices", cert:subject())
      assert.is_true(assert(identity.parse_key(ns.client_key)):matches(cert))
    end
  end)

  it("cloud_identity_csr.lua then cloud_identity.lua --values: requests out, signed certificates back in", function()
    local csr_dir, final_dir = tmp .. "/csr", tmp .. "/final"
    run("cloud_identity_csr.lua", { "--serial-range", "1-2", "--outdir", csr_dir, "--encrypt", "--keygen" })
    local rows = recipes.manifest(csr_dir .. "/manifest.csv")
    local ca = EXAMPLES .. "/cloud/factory-ca.pem"
    local values = { "serial,image,keys,certificate" }
    for _, row in ipairs(rows) do
      assert.equal("", row.certificate)
      local req = csr_dir .. "/" .. row.serial .. ".csr"
      helper.write(req, row.csr)
      local ok, out = ossl.run({ "req", "-in", req, "-verify", "-noout" })
      assert.is_true(ok, out)
      -- the remote CA signs the request
      ok, out = ossl.run({ "x509", "-req", "-in", req, "-CA", ca, "-CAkey",
        EXAMPLES .. "/cloud/factory-ca-key.pem", "-set_serial", "7", "-days", "30",
        "-out", csr_dir .. "/" .. row.serial .. ".crt" })
      assert.is_true(ok, out)
      values[#values + 1] = ("%s,csr/%s,csr/%s,csr/%s.crt"):format(row.serial, row.image, row.keys, row.serial)
    end
    helper.write(tmp .. "/signed.csv", table.concat(values, "\n") .. "\n")
    local status, _, err = recipes.run(EXAMPLES .. "/cloud_identity.lua",
      { "--serial-range", "1-2", "--outdir", "final", "--values", "signed.csv" }, tmp)
    assert.equal(0, status, err)
    for _, row in ipairs(recipes.manifest(final_dir .. "/manifest.csv")) do
      local ns = assert(nvsgen.read(final_dir .. "/" .. row.image)).namespaces.rmaker_creds
      local cert = assert(identity.parse_cert(ns.client_cert))
      assert.equal(row.certificate, ns.client_cert)
      assert.is_true(assert(identity.parse_key(ns.client_key)):matches(cert))
      local ok, out = ossl.verify(tmp, cert:pem(), helper.read(ca))
      assert.is_true(ok, out)
    end
    -- a certificate that is not the unit's own stops the batch
    helper.write(tmp .. "/swapped.csv", values[1] .. "\n" .. values[2]:gsub("1%.crt$", "2.crt") .. "\n")
    status, _, err = recipes.run(EXAMPLES .. "/cloud_identity.lua",
      { "--serial-range", "1", "--outdir", "bad", "--values", "swapped.csv" }, tmp)
    assert.equal(1, status)
    assert.equal("recipe: unit 1: csr/2.crt: certificate does not match the unit's key\n", err)
    assert.is_nil(helper.exists(tmp .. "/bad/node-1.bin") or nil)
  end)

  it("a CA key that is not the CA certificate's stops the batch at its first unit", function()
    local recipe = require("nvsgen.recipe")
    local r = recipe.load(EXAMPLES .. "/cloud_identity.lua"):extend{
      params = { ca_cert = EXAMPLES .. "/cloud/factory-ca.pem", ca_key = EXAMPLES .. "/matter/pai-key.pem" } }
    local status, _, err = recipes.run(r, { "--serial-range", "1005-1006", "--outdir", tmp })
    assert.equal(1, status)
    assert.matches("^recipe: unit 1005: [^\n]*base%.lua:%d+: CA key does not match CA certificate %("
      .. EXAMPLES:gsub("%p", "%%%0") .. "/matter/pai%-key%.pem, " .. EXAMPLES:gsub("%p", "%%%0")
      .. "/cloud/factory%-ca%.pem%)\n$", err)
  end)

  it("matter.lua: a bad parameter stops the batch with the unit and the key", function()
    local recipe = require("nvsgen.recipe")
    local pki = { pai_cert = EXAMPLES .. "/matter/pai-cert.pem", pai_key = EXAMPLES .. "/matter/pai-key.pem",
      certification_declaration = EXAMPLES .. "/matter/cd-test.der", iterations = 999 }
    local r = recipe.load(EXAMPLES .. "/matter.lua"):extend{ params = pki }
    local status, _, err = recipes.run(r, { "--serial-range", "3-4", "--outdir", tmp })
    assert.equal(1, status)
    assert.matches("^recipe: unit 3: [^\n]*matter%.lua:%d+: key 'verifier': iterations must be 1000 to 100000\n$", err)
    pki.iterations, pki.pai_key = 1000, EXAMPLES .. "/cloud/factory-ca-key.pem"
    r = recipe.load(EXAMPLES .. "/matter.lua"):extend{ params = pki }
    status, _, err = recipes.run(r, { "--serial-range", "3-4", "--outdir", tmp .. "/b" })
    assert.equal(1, status)
    assert.matches("^recipe: unit 3: [^\n]*matter%.lua:%d+: CA key does not match CA certificate %([^\n]*"
      .. "cloud/factory%-ca%-key%.pem, [^\n]*matter/pai%-cert%.pem%)\n$", err)
  end)
end)
