--- `nvs_partition_gen encrypt`, `decrypt` and `generate-key` beyond the
-- vectors: generated keys, and every refusal: one line on stderr, a
-- non-zero exit, and no file left behind (neither image nor keys).
local h = require("spec.support.helper")
local lfs = require("lfs")
local crypto = require("nvsgen.crypto")

local CLI = "nvsgen.cli.partition_gen"
local CSV = "key,type,encoding,value\nns,namespace,,\na,data,u8,1\ns,data,string,hello\n"
local SAMPLE_KEYS = h.VECTORS .. "/idf-samples/multipage-v2-encrypted/testdata/sample_encryption_keys.bin"

local dir
before_each(function()
  dir = h.tmpdir()
  h.write(dir .. "/in.csv", CSV)
  h.write(dir .. "/k.bin", h.read(SAMPLE_KEYS))
end)
after_each(function() h.cleanup(dir) end)

local function run(argv) return h.run(CLI, argv, dir) end

--- Runs argv and checks the refusal: status, the one stderr line, nothing
-- on stdout, and the folder holding only `files` afterwards.
local function refuses(argv, message, status, files)
  local st, out, err = run(argv)
  assert.are.equal("nvs_partition_gen: " .. message .. "\n", err)
  assert.are.equal(status or 1, st)
  assert.are.equal("", out)
  assert.are.same(files or { "in.csv", "k.bin" }, h.listing(dir))
end

describe("nvs_partition_gen encrypt", function()
  it("with --keygen writes the keys and an image they decrypt", function()
    local st, out, err = run({ "encrypt", "in.csv", "out.bin", "0x3000", "--keygen",
      "--keyfile", "unit.bin" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal("Created encryption keys: ===>  keys/unit.bin\n"
      .. "Creating NVS binary with version: V2 - Multipage Blob Support Enabled\n"
      .. "Created NVS binary: ===> out.bin\n", out)
    assert.are.equal("rw-------", lfs.attributes(dir .. "/keys/unit.bin", "permissions"))
    local key = assert(crypto.read_keys(dir .. "/keys/unit.bin"))
    assert.is_truthy(crypto.decrypt_image(h.read(dir .. "/out.bin"), key))
  end)

  it("with --keygen and --key_protect_hmac --kp_hmac_keygen writes both keys", function()
    local st, _, err = run({ "encrypt", "in.csv", "out.bin", "0x3000", "--keygen",
      "--keyfile", "u", "--key_protect_hmac", "--kp_hmac_keygen", "--outdir", "o" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.same({ "in.csv", "k.bin", "o/", "o/keys/", "o/keys/hmac-u.bin", "o/keys/u.bin",
      "o/out.bin" }, h.listing(dir))
    local hmac = h.read(dir .. "/o/keys/hmac-u.bin")
    assert.are.equal(32, #hmac)
    assert.are.equal("rw-------", lfs.attributes(dir .. "/o/keys/hmac-u.bin", "permissions"))
    assert.are.equal(crypto.key_from_hmac(hmac), crypto.read_keys(dir .. "/o/keys/u.bin"))
  end)

  it("needs --keygen or --inputkey, not both", function()
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000" },
      "encrypt: --keygen or --inputkey is needed", 2)
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000", "--keygen", "--inputkey", "k.bin" },
      "encrypt: --keygen and --inputkey are mutually exclusive", 2)
  end)

  it("checks the --inputkey file", function()
    local good = h.read(dir .. "/k.bin")
    h.write(dir .. "/k.bin", good:sub(1, 9) .. string.char(good:byte(10) ~ 0x80) .. good:sub(11))
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000", "--inputkey", "k.bin" },
      "k.bin: keys partition crc mismatch")
    h.write(dir .. "/k.bin", good:sub(1, 64))
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000", "--inputkey", "k.bin" },
      "k.bin: keys partition is 64 bytes long, 4096 are needed")
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000", "--inputkey", "none.bin" },
      "none.bin: No such file or directory")
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000", "--inputkey", "k.txt" },
      "k.txt: only the .bin extension is allowed")
  end)

  it("refuses an output name without the .bin extension", function()
    refuses({ "encrypt", "in.csv", "out", "0x3000", "--inputkey", "k.bin" },
      "out: only the .bin extension is allowed")
  end)

  it("refuses an HMAC key that is not 32 bytes, or none", function()
    h.write(dir .. "/h.bin", ("h"):rep(10))
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000", "--keygen", "--key_protect_hmac",
      "--kp_hmac_inputkey", "h.bin" }, "h.bin: hmac key is 10 bytes long, 32 are needed", 1,
      { "h.bin", "in.csv", "k.bin" })
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000", "--keygen", "--key_protect_hmac" },
      "--key_protect_hmac needs --kp_hmac_keygen or --kp_hmac_inputkey", 2,
      { "h.bin", "in.csv", "k.bin" })
  end)

  it("leaves neither image nor keys when the CSV is bad", function()
    h.write(dir .. "/in.csv", CSV .. "b,data,u8,300\n")
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000", "--keygen", "--key_protect_hmac",
      "--kp_hmac_keygen" }, "in.csv:5: key 'b': 300 out of range for u8 (0 to 255)")
  end)

  it("never overwrites a keys file, and then writes nothing", function()
    assert(lfs.mkdir(dir .. "/keys"))
    h.write(dir .. "/keys/unit.bin", "old")
    refuses({ "encrypt", "in.csv", "out.bin", "0x3000", "--keygen", "--keyfile", "unit.bin",
      "--key_protect_hmac", "--kp_hmac_keygen" }, "keys/unit.bin: already exists", 1,
      { "in.csv", "k.bin", "keys/", "keys/unit.bin" })
    assert.are.equal("old", h.read(dir .. "/keys/unit.bin"))
  end)

  it("removes the keys it wrote when the image cannot be written", function()
    assert(lfs.mkdir(dir .. "/out.bin"))
    local st, out, err = run({ "encrypt", "in.csv", "out.bin", "0x3000", "--keygen",
      "--key_protect_hmac", "--kp_hmac_keygen" })
    assert.are.equal(1, st)
    assert.are.equal("", out)
    assert.matches("^nvs_partition_gen: out%.bin: [^\n]+\n$", err)
    assert.are.same({ "in.csv", "k.bin", "out.bin/" }, h.listing(dir))
  end)
end)

describe("nvs_partition_gen decrypt", function()
  local function encrypted()
    assert.are.equal(0, (run({ "encrypt", "in.csv", "enc.bin", "0x3000", "--inputkey", "k.bin" })))
  end

  it("refuses a wrong key and writes nothing", function()
    encrypted()
    h.write(dir .. "/other.bin", crypto.keys_partition(crypto.generate_key()))
    refuses({ "decrypt", "enc.bin", "other.bin", "out.bin" },
      "enc.bin: wrong key: 4 of 4 entries fail their CRC check", 1,
      { "enc.bin", "in.csv", "k.bin", "other.bin" })
  end)

  it("checks the keys file and the names", function()
    encrypted()
    h.write(dir .. "/other.bin", ("\0"):rep(4096))
    local files = { "enc.bin", "in.csv", "k.bin", "other.bin" }
    refuses({ "decrypt", "enc.bin", "other.bin", "out.bin" },
      "other.bin: keys partition crc mismatch", 1, files)
    refuses({ "decrypt", "enc.csv", "k.bin", "out.bin" },
      "enc.csv: only the .bin extension is allowed", 1, files)
    refuses({ "decrypt", "enc.bin", "k", "out.bin" }, "k: only the .bin extension is allowed", 1,
      files)
    refuses({ "decrypt", "enc.bin", "k.bin", "out.txt" },
      "out.txt: only the .bin extension is allowed", 1, files)
    refuses({ "decrypt", "none.bin", "k.bin", "out.bin" }, "none.bin: No such file or directory", 1,
      files)
  end)

  it("refuses an image that is not whole pages", function()
    h.write(dir .. "/enc.bin", ("\255"):rep(5000))
    refuses({ "decrypt", "enc.bin", "k.bin", "out.bin" },
      "enc.bin: image size is not a multiple of 4096", 1, { "enc.bin", "in.csv", "k.bin" })
  end)
end)

describe("nvs_partition_gen generate-key", function()
  it("names the keys file after the time by default", function()
    local st, out, err = run({ "generate-key" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    local name = out:match("^Created encryption keys: ===>  keys/(keys%-%d%d%-%d%d_%d%d%-%d%d%.bin)\n$")
    assert.is_truthy(name)
    assert.are.equal("rw-------", lfs.attributes(dir .. "/keys/" .. name, "permissions"))
    assert.are.equal(64, #crypto.read_keys(dir .. "/keys/" .. name))
  end)

  it("gives two runs in the same minute each their own keys file, mfg_gen's too", function()
    local pattern = "keys/(keys%-%d%d%-%d%d_%d%d%-%d%d%-?%d*%.bin)\n"
    local names = {}
    local runs = { { "generate-key" }, { "generate-key" }, { "encrypt", "in.csv", "e.bin", "0x3000", "--keygen" } }
    for i, argv in ipairs(runs) do
      local st, out, err = run(argv)
      assert.are.equal("", err)
      assert.are.equal(0, st)
      names[i] = out:match("^Created encryption keys: ===>  " .. pattern)
      assert.is_truthy(names[i], out)
    end
    for _ = 1, 2 do
      local st, out, err = h.run("nvsgen.cli.mfg_gen", { "generate-key", "--outdir", "." }, dir)
      assert.are.equal("", err)
      assert.are.equal(0, st)
      names[#names + 1] = out:match("===>  .-/?" .. pattern .. "$")
      assert.is_truthy(names[#names], out)
    end
    local seen = {}
    for _, name in ipairs(names) do
      assert.is_nil(seen[name], name .. " given twice")
      seen[name] = true
      assert.are.equal("rw-------", lfs.attributes(dir .. "/keys/" .. name, "permissions"))
      assert.are.equal(64, #crypto.read_keys(dir .. "/keys/" .. name))
    end
  end)

  it("numbers the default name past the keys files (and HMAC keys) the folder holds", function()
    local common = require("nvsgen.cli.common")
    assert(lfs.mkdir(dir .. "/keys"))
    local stem, name
    repeat  -- again if the minute turned meanwhile
      stem = os.date("keys-%m-%d_%H-%M")
      for _, file in ipairs({ stem .. ".bin", stem .. "-2.bin", "hmac-" .. stem .. "-3.bin" }) do
        h.write(dir .. "/keys/" .. file, "x")
      end
      name = common.default_keys_name(dir .. "/keys")
    until os.date("keys-%m-%d_%H-%M") == stem
    assert.are.equal(stem .. "-4.bin", name)
    assert.are.equal(os.date("keys-%m-%d_%H-%M") .. ".bin", common.default_keys_name(dir .. "/none"))
  end)

  it("writes the generated HMAC key next to the keys", function()
    local st, out = run({ "generate-key", "--keyfile", "a", "--key_protect_hmac",
      "--kp_hmac_keygen", "--kp_hmac_keyfile", "h.bin" })
    assert.are.equal(0, st)
    assert.are.equal("Created encryption keys: ===>  keys/a.bin\n", out)
    assert.are.equal(crypto.key_from_hmac(h.read(dir .. "/keys/h.bin")),
      crypto.read_keys(dir .. "/keys/a.bin"))
  end)

  it("never overwrites, and removes the HMAC key it made", function()
    assert(lfs.mkdir(dir .. "/keys"))
    h.write(dir .. "/keys/a.bin", "old")
    refuses({ "generate-key", "--keyfile", "a.bin", "--key_protect_hmac", "--kp_hmac_keygen" },
      "keys/a.bin: already exists", 1, { "in.csv", "k.bin", "keys/", "keys/a.bin" })
  end)

  it("refuses an HMAC key that is not 32 bytes", function()
    h.write(dir .. "/h.bin", ("h"):rep(33))
    refuses({ "generate-key", "--key_protect_hmac", "--kp_hmac_inputkey", "h.bin" },
      "h.bin: hmac key is 33 bytes long, 32 are needed", 1, { "h.bin", "in.csv", "k.bin" })
  end)
end)
