--- The mass-production guide's example: its aligned CSV, and the option-only
-- command line of nvs_partition_gen.py up to ESP-IDF v4.0, beside today's
-- subcommands.
local h = require("spec.support.helper")
local lfs = require("lfs")
local crypto = require("nvsgen.crypto")
local legacy = require("nvsgen.cli.legacy_partition_gen")

local CLI = "nvsgen.cli.partition_gen"
local FIXTURES = h.ROOT .. "/spec/fixtures/mass_prod"
-- The image of the guide's CSV without its padding (mass_prod_unpadded.csv).
local EXPECTED = h.read(FIXTURES .. "/expected.bin")
local SAMPLE_KEYS = h.VECTORS .. "/idf-samples/multipage-v2-encrypted/testdata/sample_encryption_keys.bin"

local dir
before_each(function()
  dir = h.tmpdir()
  h.write(dir .. "/mass_prod.csv", h.read(FIXTURES .. "/mass_prod.csv"))
  h.write(dir .. "/k.bin", h.read(SAMPLE_KEYS))
end)
after_each(function() h.cleanup(dir) end)

local function run(argv) return h.run(CLI, argv, dir) end

local BANNER = "Creating NVS binary with version: V2 - Multipage Blob Support Enabled\n"

describe("the guide's aligned mass_prod.csv", function()
  it("gives the image of the same CSV without padding, through generate", function()
    local st, out, err = run({ "generate", "mass_prod.csv", "mass_prod.bin", "0x6000" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal(BANNER .. "Created NVS binary: ===> mass_prod.bin\n", out)
    assert.is_true(h.read(dir .. "/mass_prod.bin") == EXPECTED)
  end)

  it("gives the same image through the old --input/--output/--size command line", function()
    local st, out, err = run({ "--input", "mass_prod.csv", "--output", "mass_prod.bin", "--size", "0x6000" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal(BANNER .. "Created NVS binary: ===> mass_prod.bin\n", out)
    assert.is_true(h.read(dir .. "/mass_prod.bin") == EXPECTED)
  end)

  it("holds the three strings in namespace mass_prod", function()
    local r = assert(require("nvsgen").read(FIXTURES .. "/expected.bin"))
    assert.are.same({ mass_prod = { ProductID = "12345", DeviceName = "123456789012",
      DeviceSecret = "12345678901234567890123456789012" } }, r.namespaces)
  end)
end)

describe("the old nvs_partition_gen command line", function()
  it("turns into today's subcommands", function()
    assert.are.same({ "generate", "a.csv", "b.bin", "0x3000", "--version", "1", "--outdir", "o" },
      legacy.translate({ "--input", "a.csv", "--output", "b.bin", "--size", "0x3000",
        "--version", "v1", "--outdir", "o" }))
    assert.are.same({ "generate", "a.csv", "b.bin", "0x3000" },
      legacy.translate({ "--input=a.csv", "--output=b.bin", "--size=0x3000", "--encrypt", "False" }))
    assert.are.same({ "encrypt", "a.csv", "b.bin", "0x3000", "--inputkey", "k.bin" },
      legacy.translate({ "--input", "a.csv", "--output", "b.bin", "--size", "0x3000",
        "--encrypt", "true", "--keyfile", "k.bin" }))
    assert.are.same({ "encrypt", "a.csv", "b.bin", "0x3000", "--keygen", "--keyfile", "u.bin" },
      legacy.translate({ "--input", "a.csv", "--output", "b.bin", "--size", "0x3000",
        "--encrypt", "TRUE", "--keygen", "true", "--keyfile", "u.bin" }))
    assert.are.same({ "generate-key", "--outdir", "o" }, legacy.translate({ "--keygen", "true", "--outdir", "o" }))
    assert.is_true(legacy.is_legacy({ "--size", "0x3000" }))
    assert.is_false(legacy.is_legacy({ "generate", "--input" }))
    assert.is_false(legacy.is_legacy({}))
  end)

  it("encrypts with --keyfile as encrypt --inputkey does", function()
    local st, _, err = run({ "--input", "mass_prod.csv", "--output", "old.bin", "--size", "0x6000",
      "--encrypt", "true", "--keyfile", "k.bin" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    st, _, err = run({ "encrypt", "mass_prod.csv", "new.bin", "0x6000", "--inputkey", "k.bin" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.is_true(h.read(dir .. "/old.bin") == h.read(dir .. "/new.bin"))
    local plain = assert(crypto.decrypt_image(h.read(dir .. "/old.bin"), assert(crypto.read_keys(dir .. "/k.bin"))))
    assert.is_true(plain == EXPECTED)
  end)

  it("with --encrypt true --keygen true writes the keys file (0600) and an image it decrypts", function()
    local st, out, err = run({ "--input", "mass_prod.csv", "--output", "enc.bin", "--size", "0x6000",
      "--encrypt", "true", "--keygen", "true", "--keyfile", "unit.bin", "--outdir", "o" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal("Created encryption keys: ===>  o/keys/unit.bin\n" .. BANNER
      .. "Created NVS binary: ===> o/enc.bin\n", out)
    assert.are.equal("rw-------", lfs.attributes(dir .. "/o/keys/unit.bin", "permissions"))
    local key = assert(crypto.read_keys(dir .. "/o/keys/unit.bin"))
    assert.is_true(assert(crypto.decrypt_image(h.read(dir .. "/o/enc.bin"), key)) == EXPECTED)
  end)

  it("with --keygen true alone writes only a keys file", function()
    local st, out, err = run({ "--keygen", "true", "--keyfile", "only.bin" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal("Created encryption keys: ===>  keys/only.bin\n", out)
    assert.are.same({ "k.bin", "keys/", "keys/only.bin", "mass_prod.csv" }, h.listing(dir))
  end)

  local function refuses(argv, message)
    local st, out, err = run(argv)
    assert.are.equal(2, st)
    assert.are.equal("", out)
    local last = err:match("([^\n]*)\n$")
    assert.are.equal("nvs_partition_gen: " .. message, last)
    assert.are.same({ "k.bin", "mass_prod.csv" }, h.listing(dir))
  end

  it("refuses what the old tool refused, with one line and no file", function()
    refuses({ "--input", "mass_prod.csv" }, "the following arguments are required: --output, --size")
    refuses({ "--input", "mass_prod.csv", "--output", "x.bin", "--size", "0x6000", "--encrypt", "true" },
      "--encrypt true needs --keygen true or --keyfile FILE")
    refuses({ "--input", "mass_prod.csv", "--output", "x.bin", "--size", "0x6000", "--keygen", "true" },
      "--keygen true and --keyfile need --encrypt true")
    refuses({ "--input", "mass_prod.csv", "--output", "x.bin", "--size", "0x6000", "--encrypt", "yes" },
      "argument --encrypt: invalid choice: 'yes' (choose from 'true', 'false')")
    refuses({ "--input", "mass_prod.csv", "--output", "x.bin", "--size", "0x6000", "--version", "2" },
      "argument --version: invalid choice: '2' (choose from 'v1', 'v2')")
    refuses({ "--input", "mass_prod.csv", "--output", "x.bin", "--size", "0x6000", "--bogus", "1" },
      "unrecognized argument: --bogus")
    refuses({ "--input", "mass_prod.csv", "--output" }, "argument --output: expected one argument")
  end)

  it("is shown by -h beside the subcommands", function()
    local st, out = run({ "-h" })
    assert.are.equal(0, st)
    local usage = table.concat({
      "usage: nvs_partition_gen {generate,encrypt,decrypt,generate-key} ...",
      "       nvs_partition_gen --input IN.csv --output OUT.bin --size SIZE [--version v1|v2] [--outdir DIR]",
      "                         [--encrypt true|false] [--keygen true|false] [--keyfile FILE]",
      "", "" }, "\n")
    assert.are.equal(usage, out:sub(1, #usage))
    assert.is_truthy(out:find("The second form is the command line of nvs_partition_gen.py up to ESP-IDF v4.0",
      1, true))
  end)

  it("shows the help for -h after other options too, as argparse does, and writes nothing", function()
    local _, top = run({ "-h" })
    for _, argv in ipairs({ { "--input", "mass_prod.csv", "-h" }, { "--size", "0x6000", "--help", "--bogus" } }) do
      local st, out, err = run(argv)
      assert.are.equal("", err)
      assert.are.equal(0, st)
      assert.are.equal(top, out)
    end
    assert.is_nil(lfs.attributes(dir .. "/keys"))
  end)

  it("takes the beginning of an option's name and a repeated option's last value, as argparse does", function()
    assert.are.same({ "generate", "a.csv", "b.bin", "0x3000", "--version", "1" },
      legacy.translate({ "--in", "a.csv", "--outp=b.bin", "--si", "0x3000", "--vers", "v2", "--version", "v1" }))
    assert.are.same({ "encrypt", "a.csv", "b.bin", "0x3000", "--keygen", "--keyfile", "k.bin" },
      legacy.translate({ "--input", "a.csv", "--output", "b.bin", "--size", "0x3000", "--e", "true",
        "--keyg", "true", "--keyf", "k.bin" }))
    refuses({ "--input", "mass_prod.csv", "--output", "x.bin", "--size", "0x6000", "--k", "true" },
      "ambiguous option: --k could match --keyfile, --keygen")
    local st, out, err = run({ "--in", "mass_prod.csv", "--outp", "a.bin", "--size", "0x3000", "--size", "0x6000" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal(BANNER .. "Created NVS binary: ===> a.bin\n", out)
    assert.is_true(h.read(dir .. "/a.bin") == EXPECTED)
  end)

  it("takes --version in capitals, as the old tool lowered it", function()
    local st, out, err = run({ "--input", "mass_prod.csv", "--output", "v1.bin", "--size", "0x6000",
      "--version", "V1" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal("Creating NVS binary with version: V1 - Multipage Blob Support Disabled\n"
      .. "Created NVS binary: ===> v1.bin\n", out)
    st = run({ "generate", "mass_prod.csv", "v1b.bin", "0x6000", "--version", "1" })
    assert.are.equal(0, st)
    assert.is_true(h.read(dir .. "/v1.bin") == h.read(dir .. "/v1b.bin"))
  end)
end)
