--- nvsgen.crypto: keys, keys partitions, hashes, decryption with a wrong
-- key, key files; and encrypted partitions from nvsgen.partition.
local h = require("spec.support.helper")
local lfs = require("lfs")
local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")
local core = require("nvsgen.core")

local HMAC_DIR = h.VECTORS .. "/idf-samples/hmac-generate-key"
local SAMPLE_KEYS = h.VECTORS .. "/idf-samples/multipage-v2-encrypted/testdata/sample_encryption_keys.bin"

local function hex(s) return nvsgen.hex_encode(s) end

describe("nvsgen.crypto keys", function()
  it("generate_key gives 64 bytes whose halves differ, new each time", function()
    local a, b = crypto.generate_key(), crypto.generate_key()
    assert.are.equal(64, #a)
    assert.are_not.equal(a:sub(1, 32), a:sub(33))
    assert.are_not.equal(a, b)
  end)

  it("random_hex gives n lowercase hex digits, different each time", function()
    assert.equal("", core.random_hex(0))
    for _, n in ipairs({ 1, 7, 32, 511, 513, 1001 }) do
      local digits = core.random_hex(n)
      assert.equal(n, #digits)
      assert.is_nil(digits:find("[^0-9a-f]"))
    end
    assert.are_not.equal(core.random_hex(32), core.random_hex(32))
    assert.has_error(function() core.random_hex(-1) end)
  end)

  it("random_bytes gives n bytes", function()
    assert.are.equal(0, #crypto.random_bytes(0))
    assert.are.equal(1000, #crypto.random_bytes(1000))
    assert.has_error(function() crypto.random_bytes(-1) end)
  end)

  it("keys_partition lays out key, CRC and 0xFF padding", function()
    local key = ("\1"):rep(32) .. ("\2"):rep(32)
    local part = crypto.keys_partition(key)
    assert.are.equal(4096, #part)
    assert.are.equal(key, part:sub(1, 64))
    assert.are.equal(core.crc32(key), string.unpack("<I4", part, 65))
    assert.are.equal(("\255"):rep(4096 - 68), part:sub(69))
    assert.are.equal(key, crypto.parse_keys_partition(part))
  end)

  it("keys_partition refuses a key that is not 64 bytes", function()
    assert.are.same({ nil, "key is 63 bytes long, 64 are needed" },
      { crypto.keys_partition(("k"):rep(63)) })
  end)

  it("parse_keys_partition reads the reference's keys file", function()
    local key = assert(crypto.read_keys(SAMPLE_KEYS))
    assert.are.equal(h.read(SAMPLE_KEYS):sub(1, 64), key)
  end)

  it("parse_keys_partition refuses a bad CRC", function()
    local part = h.read(SAMPLE_KEYS)
    local bad = part:sub(1, 9) .. string.char(part:byte(10) ~ 1) .. part:sub(11)
    assert.are.same({ nil, "keys partition crc mismatch" }, { crypto.parse_keys_partition(bad) })
  end)

  it("parse_keys_partition refuses a wrong size", function()
    local part = h.read(SAMPLE_KEYS)
    assert.are.same({ nil, "keys partition is 4095 bytes long, 4096 are needed" },
      { crypto.parse_keys_partition(part:sub(1, 4095)) })
    assert.are.same({ nil, "keys partition is 64 bytes long, 4096 are needed" },
      { crypto.parse_keys_partition(part:sub(1, 64)) })
  end)

  it("key_from_hmac derives the reference's keys", function()
    local key = assert(crypto.key_from_hmac(h.read(HMAC_DIR .. "/hmac_key.bin")))
    assert.are.equal(h.read(HMAC_DIR .. "/expected_keys.bin"), crypto.keys_partition(key))
  end)

  it("key_from_hmac refuses an HMAC key that is not 32 bytes", function()
    assert.are.same({ nil, "hmac key is 31 bytes long, 32 are needed" },
      { crypto.key_from_hmac(("h"):rep(31)) })
    assert.are.same({ nil, "hmac key is 0 bytes long, 32 are needed" },
      { crypto.key_from_hmac("") })
  end)
end)

describe("nvsgen.crypto hashes", function()
  it("sha256 raw and hex", function()
    local digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert.are.equal(digest, crypto.sha256_hex("abc"))
    assert.are.equal(digest, hex(crypto.sha256("abc")))
    assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      crypto.sha256_hex(""))
  end)

  it("pbkdf2_sha1 gives the RFC 6070 values", function()
    assert.are.equal("0c60c80f961f0e71f3a9b524af6012062fe037a6",
      hex(crypto.pbkdf2_sha1("password", "salt", 1, 20)))
    assert.are.equal("4b007901b765489abead49d926f721d065a429c1",
      hex(crypto.pbkdf2_sha1("password", "salt", 4096, 20)))
    assert.are.equal(32, #crypto.pbkdf2_sha1("passphrase", "ssid", 4096, 32))
    assert.has_error(function() crypto.pbkdf2_sha1("p", "s", 0, 32) end)
  end)
end)

describe("nvsgen.crypto key files", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  it("write_keys writes mode 0600 and read_keys reads it back", function()
    local key = crypto.generate_key()
    assert.is_true(crypto.write_keys(dir .. "/k.bin", key))
    assert.are.equal("rw-------", lfs.attributes(dir .. "/k.bin", "permissions"))
    assert.are.equal(key, crypto.read_keys(dir .. "/k.bin"))
    assert.are.equal(crypto.keys_partition(key), h.read(dir .. "/k.bin"))
    assert.are.same({ nil, dir .. "/k2.bin: key is 3 bytes long, 64 are needed" },
      { crypto.write_keys(dir .. "/k2.bin", "abc") })
    assert.is_nil(lfs.attributes(dir .. "/k2.bin"))
  end)

  it("the core writes a keys file by name in a folder opened once, naming its path", function()
    local key = crypto.generate_key()
    local folder = assert(core.folder(dir))
    assert.is_true(core.write_keys("k.bin", key, "direct", folder))
    assert.are.equal("rw-------", lfs.attributes(dir .. "/k.bin", "permissions"))
    assert.are.equal(crypto.keys_partition(key), h.read(dir .. "/k.bin"))
    assert.are.same({ nil, dir .. "/k2.bin: key is 3 bytes long, 64 are needed" },
      { core.write_keys("k2.bin", "abc", "direct", folder) })
    assert.are.same({ nil, dir .. "/k.bin: already exists", 17 }, { core.write_keys("k.bin", key, "new", folder) })
    assert.is_true(core.write_keys("k3.bin", key, "atomic_new", folder))
    assert.are.equal("rw-------", lfs.attributes(dir .. "/k3.bin", "permissions"))
    assert.are.same({ nil, dir .. "/k3.bin: already exists", 17 },
      { core.write_keys("k3.bin", key, "atomic_new", folder) })
    folder:close()
    assert.is_nil(lfs.attributes(dir .. "/k2.bin"))
  end)

  it("write_keys refuses to overwrite unless asked", function()
    local first, second = crypto.generate_key(), crypto.generate_key()
    assert(crypto.write_keys(dir .. "/k.bin", first))
    local ok, err = crypto.write_keys(dir .. "/k.bin", second)
    assert.is_nil(ok)
    assert.are.equal(dir .. "/k.bin: already exists", err)
    assert.are.equal(first, crypto.read_keys(dir .. "/k.bin"))
    assert.is_true(crypto.write_keys(dir .. "/k.bin", second, { replace = true }))
    assert.are.equal(second, crypto.read_keys(dir .. "/k.bin"))
  end)

  it("write_keys refuses options it does not know, at the caller's line, writing nothing", function()
    local first, second = crypto.generate_key(), crypto.generate_key()
    assert(crypto.write_keys(dir .. "/k.bin", first))
    local function raises(opts, message)
      local ok, err = pcall(function() crypto.write_keys(dir .. "/k.bin", second, opts) end)
      assert.is_false(ok)
      assert.are.equal("crypto_spec.lua", err:match("([^/]+):%d+: "))
      assert.are.equal(message, (err:gsub("^[^:]+:%d+: ", "")))
    end
    raises({ replce = true }, "crypto.write_keys: unknown option 'replce'")
    raises({ replace = 1 }, "crypto.write_keys: option 'replace' must be a boolean, got number")
    raises(true, "crypto.write_keys: options table expected, got boolean")
    assert.are.equal(first, crypto.read_keys(dir .. "/k.bin"))
    assert.are.same({ nil, dir .. "/k.bin: already exists", nvsgen.EEXIST },
      { crypto.write_keys(dir .. "/k.bin", second, { replace = false }) })
    assert.are.equal(first, crypto.read_keys(dir .. "/k.bin"))
  end)

  it("read_keys names the file in its messages", function()
    h.write(dir .. "/short.bin", ("x"):rep(100))
    assert.are.same({ nil, dir .. "/short.bin: keys partition is 100 bytes long, 4096 are needed" },
      { crypto.read_keys(dir .. "/short.bin") })
    assert.are.same({ nil, dir .. "/none.bin: No such file or directory" },
      { crypto.read_keys(dir .. "/none.bin") })
  end)
end)

describe("nvsgen.crypto decrypt_image", function()
  local function sample()
    local p = nvsgen.partition{ size = 0x4000 }
    p:namespace("ns"):u32("a", 7):string("s", ("x"):rep(200)):blob("b", ("\1"):rep(5000))
    return p
  end

  it("decrypts what a keyed partition encrypted", function()
    local p = sample()
    local plain = p:image()
    local key = crypto.generate_key()
    local encrypted = p:set_key(key):image()
    assert.are.equal(plain, crypto.decrypt_image(encrypted, key))
  end)

  it("detects a wrong key by the item CRCs", function()
    local p = sample()
    local encrypted = p:set_key(crypto.generate_key()):image()
    local plain, err = crypto.decrypt_image(encrypted, crypto.generate_key())
    assert.is_nil(plain)
    local failed, checked = err:match("^wrong key: (%d+) of (%d+) entries fail their CRC check$")
    assert.is_truthy(failed)
    assert.are.equal(failed, checked)
    assert.are.same({ 0, 6 }, { crypto.check_items(p:set_key(nil):image()) })
  end)

  it("refuses an image that is not whole pages, or a bad key", function()
    local key = crypto.generate_key()
    assert.are.same({ nil, "image size is not a multiple of 4096" },
      { crypto.decrypt_image(("\255"):rep(100), key) })
    assert.are.same({ nil, "key is 3 bytes long, 64 are needed" },
      { crypto.decrypt_image(("\255"):rep(4096), "abc") })
    assert.are.same({ nil, "xts key rejected: encryption key and tweak key are equal" },
      { crypto.decrypt_image(("\255"):rep(4096), ("k"):rep(64)) })
  end)

  it("an xts context encrypts strings and encoders alike", function()
    local p = sample()
    local key = crypto.generate_key()
    local xts = assert(crypto.xts(key))
    assert.are.equal(xts:encrypt(p:image()), xts:encrypt(p.encoder))
    assert.are.equal(p:image(), xts:decrypt(xts:encrypt(p.encoder)))
    assert.are.equal(crypto.encrypt_image(key, p:image()), xts:encrypt(p:image()))
    assert.has_error(function() xts:encrypt(42) end)
  end)
end)

describe("nvsgen.partition with a key", function()
  it("takes key or keyfile and encrypts image() and write()", function()
    local key = assert(crypto.read_keys(SAMPLE_KEYS))
    local a = nvsgen.partition{ size = 0x3000, key = key }
    local b = nvsgen.partition{ size = 0x3000, keyfile = SAMPLE_KEYS }
    local plain = nvsgen.partition{ size = 0x3000 }
    for _, p in ipairs({ a, b, plain }) do p:namespace("n"):u8("x", 1) end
    assert.are.equal(a:image(), b:image())
    assert.are_not.equal(plain:image(), a:image())
    assert.are.equal(plain:image(), crypto.decrypt_image(a:image(), key))
    local dir = h.tmpdir()
    assert.is_true(a:write(dir .. "/a.bin"))
    assert.are.equal(a:image(), h.read(dir .. "/a.bin"))
    h.cleanup(dir)
  end)

  it("raises at the caller's line on a bad key option", function()
    local function raises(opts, message)
      local ok, err = pcall(function() local p = nvsgen.partition(opts); return p end)
      assert.is_false(ok)
      assert.matches("crypto_spec.lua:%d+: " .. message:gsub("%p", "%%%0"), err)
    end
    raises({ size = 0x3000, key = "short" }, "nvsgen.partition: key is 5 bytes long, 64 are needed")
    raises({ size = 0x3000, key = 42 }, "nvsgen.partition: key must be a string, got number")
    raises({ size = 0x3000, key = ("k"):rep(64), keyfile = SAMPLE_KEYS },
      "nvsgen.partition: key and keyfile are mutually exclusive")
    raises({ size = 0x3000, keyfile = "/nonexistent/k.bin" },
      "nvsgen.partition: /nonexistent/k.bin: No such file or directory")
    raises({ size = 0x3000, keys = "x" }, "nvsgen.partition: unknown option 'keys'")
    local dir = h.tmpdir()
    assert(crypto.write_keys(dir .. "/same.bin", ("k"):rep(64)))
    raises({ size = 0x3000, keyfile = dir .. "/same.bin" },
      "nvsgen.partition: xts key rejected: encryption key and tweak key are equal")
    h.cleanup(dir)
  end)

  it("set_key raises on a bad key and nil makes it plain again", function()
    local p = nvsgen.partition{ size = 0x3000 }:namespace("n"):u8("x", 1)
    local plain = p:image()
    local ok, err = pcall(function() p:set_key(("k"):rep(64)) end)
    assert.is_false(ok)
    assert.matches("crypto_spec.lua:%d+: xts key rejected", err)
    p:set_key(crypto.generate_key())
    assert.are_not.equal(plain, p:image())
    assert.are.equal(plain, p:set_key(nil):image())
  end)

  it("set_key on an encrypted partition encrypts as a partition made with that key", function()
    local k1, k2 = ("a"):rep(32) .. ("b"):rep(32), ("c"):rep(32) .. ("d"):rep(32)
    local function fresh(key)
      return nvsgen.partition{ size = 0x3000, key = key }:namespace("n"):u8("x", 1):image()
    end
    local p = nvsgen.partition{ size = 0x3000, key = k1 }:namespace("n"):u8("x", 1)
    assert.are.equal(fresh(k1), p:image())
    assert.are.equal(fresh(k2), p:set_key(k2):image())
    -- A refused key leaves the one set before.
    local ok, err = pcall(function() p:set_key(("k"):rep(64)) end)
    assert.is_false(ok)
    assert.matches("crypto_spec.lua:%d+: xts key rejected: encryption key and tweak key are equal", err)
    assert.are.equal(fresh(k2), p:image())
    ok, err = pcall(function() p:set_key("short") end)
    assert.is_false(ok)
    assert.matches("crypto_spec.lua:%d+: key is 5 bytes long, 64 are needed", err)
    assert.are.equal(fresh(k2), p:image())
    assert.are.equal(fresh(k1), p:set_key(k1):image())
  end)
end)
