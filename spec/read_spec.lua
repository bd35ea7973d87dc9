--- Specs for nvsgen.read: random partitions built with the Lua API read back
-- exactly, plain and encrypted, both versions; every vector reads clean.
local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")
local h = require("spec.support.helper")
local lfs = require("lfs")

local pack, unpack = string.pack, string.unpack

-- A fixed seed per run keeps failures reproducible; NVSGEN_SEED changes it.
local SEED = tonumber(os.getenv("NVSGEN_SEED") or "20261124")

local INT_LIMITS = {
  u8 = { 0, 255 }, i8 = { -128, 127 }, u16 = { 0, 65535 }, i16 = { -32768, 32767 },
  u32 = { 0, 4294967295 }, i32 = { -2147483648, 2147483647 },
  i64 = { math.mininteger, math.maxinteger },
}

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

local function random_key(used)
  local chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
  while true do
    local t = {}
    for i = 1, math.random(1, 15) do
      local k = math.random(#chars)
      t[i] = chars:sub(k, k)
    end
    local key = table.concat(t)
    if not used[key] then
      used[key] = true
      return key
    end
  end
end

local function random_int(kind)
  local lim = INT_LIMITS[kind]
  local r = math.random(1, 5)
  if r == 1 then return lim[1] elseif r == 2 then return lim[2] elseif r == 3 then return 0 end
  if kind == "i64" then return math.random(math.mininteger, math.maxinteger) end
  return math.random(lim[1], lim[2])
end

local U64_EXTREMES = { 0, 1, math.maxinteger, "9223372036854775808", "18446744073709551615",
  "12345678901234567890" }

local function random_value(kind, version)
  if INT_LIMITS[kind] then return random_int(kind) end
  if kind == "u64" then
    if math.random(2) == 1 then return U64_EXTREMES[math.random(#U64_EXTREMES)] end
    return math.random(0, math.maxinteger)
  end
  if kind == "float" then
    local specials = { 0.0, -0.0, math.huge, -math.huge, 3.4028234663852886e38, 1.401298464324817e-45 }
    if math.random(3) == 1 then return specials[math.random(#specials)] end
    while true do
      local v = unpack("<f", random_bytes(4))
      if v == v then return v end
    end
  end
  if kind == "double" then
    local specials = { 0.0, -0.0, math.huge, -math.huge, 1.7976931348623157e308, 4.9e-324, math.pi }
    if math.random(3) == 1 then return specials[math.random(#specials)] end
    while true do
      local v = unpack("<d", random_bytes(8))
      if v == v then return v end
    end
  end
  local max = version == 1 and (kind == "string" and 1983 or 1984) or (kind == "string" and 3999 or 9000)
  local sizes = { 0, 1, 7, 8, 31, 32, 33, math.random(0, 200), math.random(0, max), max }
  local n = sizes[math.random(#sizes)]
  if kind == "string" then
    local t = {}
    for i = 1, n do t[i] = string.char(math.random(1, 255)) end
    return table.concat(t)
  end
  return random_bytes(n)
end

--- A random partition and what was put in it: { [ns] = { [key] = {kind, value} } }.
local function random_partition(version, key)
  local pages = math.random(3, 10)
  local p = nvsgen.partition{ size = pages * 4096, version = version, key = key }
  local expected = {}
  local used_ns = {}
  local full = false
  for _ = 1, math.random(1, 4) do
    if full then break end
    local ns = random_key(used_ns)
    local ok, err = pcall(p.namespace, p, ns)
    if not ok then
      assert(tostring(err):find("does not fit", 1, true), err)
      break
    end
    expected[ns] = {}
    local used = {}
    for _ = 1, math.random(0, 25) do
      local kind = nvsgen.KINDS[math.random(#nvsgen.KINDS)]
      local k = random_key(used)
      local value = random_value(kind, version)
      local put_ok, put_err = p:put(kind, k, value)
      if not put_ok then
        assert(put_err:find("does not fit", 1, true), put_err)
        full = true
        break
      end
      expected[ns][k] = { kind, value }
    end
  end
  return p, expected
end

local function same_value(kind, want, got)
  if kind == "float" then return math.type(got) == "float" and pack("<f", want) == pack("<f", got) end
  if kind == "double" then return math.type(got) == "float" and pack("<d", want) == pack("<d", got) end
  if kind == "u64" and type(want) == "string" then
    if math.type(got) == "integer" then return tostring(got) == want end
    return got == want
  end
  if kind == "string" or kind == "blob" then return got == want end
  return math.type(got) == "integer" and got == want
end

--- Checks a read result against what was put in; returns a message or nil.
local function compare(r, expected)
  if #r.problems > 0 then
    local p = r.problems[1]
    return ("problem at page %s entry %s: %s"):format(p.page, p.entry, p.reason)
  end
  local count = 0
  for ns, keys in pairs(expected) do
    if not r.namespaces[ns] then return "namespace " .. ns .. " missing" end
    for k, kv in pairs(keys) do
      count = count + 1
      local got = r.namespaces[ns][k]
      if not same_value(kv[1], kv[2], got) then
        return ("%s/%s (%s): put %q, read %q"):format(ns, k, kv[1], tostring(kv[2]), tostring(got))
      end
    end
  end
  for ns in pairs(r.namespaces) do
    if not expected[ns] then return "namespace " .. ns .. " not put" end
  end
  if #r.items ~= count then return ("%d items read, %d put"):format(#r.items, count) end
  for _, item in ipairs(r.items) do
    local kind = expected[item.namespace][item.key][1]
    if item.type ~= kind then
      return ("%s/%s: put as %s, read as %s"):format(item.namespace, item.key, kind, item.type)
    end
  end
end

describe("nvsgen.read", function()
  setup(function() math.randomseed(SEED) end)

  for _, version in ipairs({ 1, 2 }) do
    it("reads back 60 random version " .. version .. " partitions exactly", function()
      for i = 1, 60 do
        local p, expected = random_partition(version)
        local r = assert(nvsgen.read(p:image()))
        local problem = compare(r, expected)
        assert(problem == nil, ("seed %d, partition %d: %s"):format(SEED, i, tostring(problem)))
        assert.equal(version, r.pages[1].version)
      end
    end)

    it("reads back 25 random encrypted version " .. version .. " partitions exactly", function()
      for i = 1, 25 do
        local key = crypto.generate_key()
        local p, expected = random_partition(version, key)
        local image = p:image()
        local r = assert(nvsgen.read(image, key))
        local problem = compare(r, expected)
        assert(problem == nil, ("seed %d, partition %d: %s"):format(SEED, i, tostring(problem)))
        assert.is_true(r.encrypted)
      end
    end)
  end

  it("gives items in order with their type, place and raw type", function()
    local p = nvsgen.partition{ size = 0x4000, version = 2 }
    p:namespace("one"):u8("a", 1):string("s", "hi"):blob("b", ("x"):rep(5000))
    p:namespace("two"):u64("big", "18446744073709551615"):i64("neg", math.mininteger)
    local r = assert(nvsgen.read(p:image()))
    assert.same({ "a", "s", "b", "big", "neg" },
      { r.items[1].key, r.items[2].key, r.items[3].key, r.items[4].key, r.items[5].key })
    assert.same({ page = 0, entry = 2, namespace = "one", ns_index = 1, key = "s", type = "string",
      nvs_type = "string", span = 2, value = "hi", size = 3 }, r.items[2])
    local b = r.items[3]
    assert.equal("blob", b.type)
    assert.equal("blob_index", b.nvs_type)
    assert.equal(2, b.blob_version)
    assert.equal(2, #b.chunks)
    assert.equal(5000, b.chunks[1].size + b.chunks[2].size)
    assert.equal("18446744073709551615", r.namespaces.two.big)
    assert.equal(math.mininteger, r.namespaces.two.neg)
    assert.same({}, r.problems)
    assert.equal(4, #r.pages)
    assert.same({ "full", "active", "empty", "empty" },
      { r.pages[1].state, r.pages[2].state, r.pages[3].state, r.pages[4].state })
  end)

  it("reads a path and a keys file as well as bytes and a key", function()
    local dir = h.tmpdir()
    finally(function() h.cleanup(dir) end)
    local key = crypto.generate_key()
    assert(crypto.write_keys(dir .. "/keys.bin", key))
    local p = nvsgen.partition{ size = 0x3000, key = key }
    p:namespace("ns"):u32("n", 7)
    assert(p:write(dir .. "/image.bin"))
    assert.equal(7, assert(nvsgen.read(dir .. "/image.bin", dir .. "/keys.bin")).namespaces.ns.n)
    assert.equal(7, assert(nvsgen.read(p:image(), crypto.keys_partition(key))).namespaces.ns.n)
  end)

  it("refuses unreadable input with a message", function()
    local r, err = nvsgen.read("/nonexistent/image.bin")
    assert.is_nil(r)
    assert.equal("/nonexistent/image.bin: No such file or directory", err)
    local p = nvsgen.partition{ size = 0x3000, key = crypto.generate_key() }
    p:namespace("ns"):u32("n", 7):string("s", "x")
    r, err = nvsgen.read(p:image(), crypto.generate_key())
    assert.is_nil(r)
    assert.equal("wrong key: 4 of 4 entries fail their CRC check", err)
    r, err = nvsgen.read(p:image(), "/nonexistent/keys.bin")
    assert.is_nil(r)
    assert.equal("/nonexistent/keys.bin: No such file or directory", err)
  end)

  it("raises on a wrong argument at the caller's line", function()
    assert.has_error(function() nvsgen.read(42) end, "nvsgen.read: image or path expected, got number")
    assert.has_error(function() nvsgen.read("x", {}) end, "nvsgen.read: keys must be a string, got table")
    assert.has_error(function() nvsgen.read("x", nil, { readonly = true }) end,
      "nvsgen.read: unknown option 'readonly'")
  end)

  it("reports a truncated image and an empty one as image problems", function()
    local p = nvsgen.partition{ size = 0x3000 }
    p:namespace("ns"):u8("a", 1)
    local r = assert(nvsgen.read(p:image():sub(1, 5000)))
    assert.same({ severity = "error", code = 1, reason = "image size 5000 is not a multiple of 4096" },
      r.problems[1])
    assert.equal(1, r.namespaces.ns.a)
    r = assert(nvsgen.read(""))
    assert.equal("image holds no page", r.problems[#r.problems].reason)
  end)

  it("has a core.read that takes an encoder and says where pages stand", function()
    local core = require("nvsgen.core")
    local ok, err = pcall(core.read, 42)
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #1 to '[%w.]*read' %(string or encoder expected, got number%)"), err)
    local e = core.encoder(0x3000, 2)
    e:namespace("a")
    e:put("u8", "k", 1)
    local r = core.read(e)
    assert.equal(1, r.items[1].value)
    assert.same({ used_entries = 2, free_entries = 376, total_entries = 378, available_entries = 250,
      namespace_count = 1 }, r.stats)
    assert.same({ index = 0, state = "active", state_word = 0xFFFFFFFE, seq = 0, version = 2,
      version_byte = 0xFE, blank = false, header_ok = true, loaded = true,
      crc_stored = r.pages[1].crc_computed, crc_computed = r.pages[1].crc_computed,
      bitmap = { empty = 124, written = 2, erased = 0, illegal = 0 }, used = 2, erased = 0, free = 124 },
      r.pages[1])
    assert.same({ { index = 1, name = "a", page = 0, entry = 0 } }, r.namespaces)
    assert.is_false(r.read_only)
    assert.equal(0, r.errors + r.warnings)
    -- two blank pages: a read-only partition, nothing wrong with it
    r = core.read(("\255"):rep(8192))
    assert.is_true(r.read_only)
    assert.same({}, r.problems)
    assert.equal("empty", r.pages[2].state)
  end)

  it("reads every plain vector image with no problem", function()
    local count = 0
    for _, group in ipairs({ "random", "idf-samples" }) do
      local base = h.VECTORS .. "/" .. group
      for name in lfs.dir(base) do
        local dir = base .. "/" .. name
        local args = h.exists(dir .. "/args.txt") and h.read(dir .. "/args.txt") or ""
        local bin = dir .. "/expected.bin"
        if h.exists(bin) and args:match("^generate\n") then
          local r = assert(nvsgen.read(bin))
          local p = r.problems[1]
          assert(p == nil, ("%s: page %s entry %s: %s"):format(name, tostring(p and p.page),
            tostring(p and p.entry), p and p.reason))
          count = count + 1
        end
      end
    end
    assert.is_true(count > 20)
  end)
end)
