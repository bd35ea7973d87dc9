--- Every `encrypt`, `decrypt` and `generate-key` case of the reference
-- vectors, byte for byte, and encrypt/decrypt round trips over the vectors
-- and over random partitions built with the Lua API.
local h = require("spec.support.helper")
local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")

local CLI = "nvsgen.cli.partition_gen"

--- The value of option `name` in argv.
local function option(argv, name)
  for i, a in ipairs(argv) do
    if a == name then return argv[i + 1] end
  end
end

describe("nvs_partition_gen encrypt reproduces the reference vectors", function()
  for _, case in ipairs(h.cases("encrypt")) do
    it(case.name, function()
      h.assert_reproduces(CLI, case)
    end)
  end
end)

describe("nvs_partition_gen decrypt reproduces the reference vectors", function()
  for _, case in ipairs(h.cases("decrypt")) do
    it(case.name, function()
      local out = h.tmpdir()
      local argv = h.redirect(case.argv, out)
      local status, stdout, err = h.run(CLI, argv, case.dir)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.are.equal("Created NVS decrypted binary: ===> " .. out .. "/out.bin\n", stdout)
      assert.is_true(h.read(out .. "/out.bin") == h.read(case.dir .. "/expected.bin"),
        "image differs from expected.bin")
      h.cleanup(out)
    end)
  end
end)

describe("nvs_partition_gen generate-key reproduces the reference vectors", function()
  for _, case in ipairs(h.cases("generate-key")) do
    it(case.name, function()
      local out = h.tmpdir()
      local argv = table.move(case.argv, 1, #case.argv, 1, {})
      argv[#argv + 1] = "--outdir"
      argv[#argv + 1] = out
      local status, stdout, err = h.run(CLI, argv, case.dir)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      local keyfile = out .. "/keys/" .. option(case.argv, "--keyfile")
      assert.are.equal("Created encryption keys: ===>  " .. keyfile .. "\n", stdout)
      assert.is_true(h.read(keyfile) == h.read(case.dir .. "/expected_keys.bin"),
        "keys differ from expected_keys.bin")
      h.cleanup(out)
    end)
  end
end)

describe("encrypt and decrypt round trip", function()
  for _, case in ipairs(h.cases("encrypt")) do
    if case.ref_exit == 0 then
      it("over " .. case.name, function()
        local keys_path = case.dir .. "/" .. option(case.argv, "--inputkey")
        local key = assert(crypto.read_keys(keys_path))
        local encrypted = h.read(case.dir .. "/expected.bin")
        -- The same command line without a key gives the plain image.
        local out = h.tmpdir()
        local argv = h.redirect(case.argv, out)
        argv[1] = "generate"
        for i = #argv, 1, -1 do
          if argv[i] == "--inputkey" then table.remove(argv, i); table.remove(argv, i) end
        end
        assert.are.equal(0, (h.run(CLI, argv, case.dir)))
        local plain = h.read(out .. "/out.bin")
        assert.is_true(crypto.decrypt_image(encrypted, key) == plain, "decrypted differs")
        assert.is_true(crypto.encrypt_image(key, plain) == encrypted, "re-encrypted differs")
        -- And through the command line.
        local status = h.run(CLI, { "decrypt", "expected.bin", keys_path, out .. "/plain.bin" },
          case.dir)
        assert.are.equal(0, status)
        assert.is_true(h.read(out .. "/plain.bin") == plain, "CLI decrypt differs")
        h.cleanup(out)
      end)
    end
  end

  --- A partition of random items; returns it (plain).
  local function random_partition(version, seed)
    math.randomseed(seed)
    local pages = math.random(3, 12)
    local p = nvsgen.partition{ size = pages * 4096, version = version }
    local kinds = { "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "string", "blob" }
    local limits = { u8 = 255, i8 = 127, u16 = 65535, i16 = 32767, u32 = 1 << 30, i32 = 1 << 30,
      u64 = 1 << 40, i64 = 1 << 40 }
    for n = 1, math.random(1, 3) do
      p:namespace("ns" .. n)
      for k = 1, math.random(1, 25) do
        local kind = kinds[math.random(#kinds)]
        local value
        if kind == "string" then
          value = ("s"):rep(math.random(0, 300))
        elseif kind == "blob" then
          value = crypto.random_bytes(math.random(1, version == 1 and 500 or 3000))
        else
          value = math.random(0, limits[kind])
        end
        if not p:put(kind, "k" .. k, value) then return p end -- full: enough
      end
    end
    return p
  end

  for _, version in ipairs({ 1, 2 }) do
    it("over random partitions, version " .. version, function()
      for seed = 1, 40 do
        local p = random_partition(version, seed * 7 + version)
        local plain = p:image()
        local key = crypto.generate_key()
        p:set_key(key)
        local encrypted = p:image()
        assert.are.equal(#plain, #encrypted)
        assert.is_false(encrypted == plain)
        assert.is_true(crypto.decrypt_image(encrypted, key) == plain, "seed " .. seed)
        local wrong = crypto.generate_key()
        local none, err = crypto.decrypt_image(encrypted, wrong)
        assert.is_nil(none)
        assert.matches("^wrong key: %d+ of %d+ entries fail their CRC check$", err)
        p:set_key(nil)
        assert.is_true(p:image() == plain)
      end
    end)
  end
end)
