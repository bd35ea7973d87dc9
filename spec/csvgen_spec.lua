--- nvsgen.csvgen: the fast form of a fixed row (fast_row) against the
-- compiler's general path (Compiler:row): the same bytes when it succeeds,
-- nothing changed when it fails (so the general path can word the refusal).
local nvsgen = require("nvsgen")
local csvgen = require("nvsgen.csvgen")
local h = require("spec.support.helper")

local dir

-- Values for each encoding: accepted ones and ones the general path refuses.
local CASES = {
  u8 = { "0", "255", " 7 ", "+007", "1_0", "256", "-1", "", "x", "0x10" },
  i8 = { "-128", "127", "128", "-0" },
  u16 = { "65535", "65536" },
  i16 = { "-32768", "32768" },
  u32 = { "4294967295", "4294967296", "12" },
  i32 = { "-2147483648", "2147483648" },
  u64 = { "18446744073709551615", "18446744073709551616" },
  i64 = { "-9223372036854775808", "9223372036854775808" },
  string = { "", "plain", ("s"):rep(3000), ("s"):rep(4001) },
  binary = { "", "\0\1\2", ("b"):rep(3000) },
  hex2bin = { "00ff", " AB ", "abc", "zz", "" },
  base64 = { "AAEC", "AAE", "QUJD\nREVG", "" },
}

local function row(key, kind, encoding, value)
  return { key = key, type = kind, encoding = encoding, value = value }
end

-- Adds `value` through the fast form (falling back to the general path as
-- mfg_gen does) and through the general path alone; both partitions start
-- with the same rows. Returns the two images and the general path's result.
local function both(kind, encoding, value, prefill)
  local fast_p = nvsgen.partition{ size = 0x3000 }
  local slow_p = nvsgen.partition{ size = 0x3000 }
  for _, p in ipairs({ fast_p, slow_p }) do
    p:namespace("ns")
    if prefill then p:blob("fill", ("f"):rep(prefill)) end
  end
  local put = assert(csvgen.fast_row(fast_p, "k", kind, encoding))
  local fast_ok = put(value)
  local fast_image = fast_p:image()
  local ok, err = csvgen.compiler(slow_p):row(row("k", kind, encoding, value))
  if not fast_ok then
    -- A refusal must leave the partition as it was.
    local before = nvsgen.partition{ size = 0x3000 }
    before:namespace("ns")
    if prefill then before:blob("fill", ("f"):rep(prefill)) end
    assert.is_true(fast_image == before:image())
    local again, again_err = csvgen.compiler(fast_p):row(row("k", kind, encoding, value))
    assert.are.same({ ok, err }, { again, again_err })
    fast_image = fast_p:image()
  end
  return fast_ok, fast_image, slow_p:image(), ok, err
end

describe("csvgen.fast_row", function()
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  it("adds every value as the general path does, and refuses the same ones", function()
    local refused = {}
    for encoding, values in pairs(CASES) do
      for _, value in ipairs(values) do
        local fast_ok, fast_image, slow_image, ok = both("data", encoding, value)
        local case = encoding .. " '" .. value:sub(1, 12) .. "'"
        assert.are.equal(ok == true, fast_ok, case)
        assert.is_true(fast_image == slow_image, case)
        if not ok then refused[#refused + 1] = case end
      end
    end
    -- The cases hold refusals of every kind, not only successes.
    table.sort(refused)
    assert.are.same({ "base64 'AAE'", "hex2bin 'abc'", "hex2bin 'zz'", "i16 '32768'", "i32 '2147483648'",
      "i64 '922337203685'", "i8 '128'", "string 'ssssssssssss'", "u16 '65536'", "u32 '4294967296'",
      "u64 '184467440737'", "u8 ''", "u8 '-1'", "u8 '0x10'", "u8 '256'", "u8 'x'" }, refused)
  end)

  it("leaves a full partition unchanged, and the general path says why", function()
    local fast_ok, fast_image, slow_image, ok, err = both("data", "binary", ("x"):rep(2000), 2 * 4000 - 500)
    assert.is_false(fast_ok)
    assert.is_nil(ok)
    assert.are.equal("key 'k': does not fit, partition of 0x3000 bytes is full", err)
    assert.is_true(fast_image == slow_image)
  end)

  it("reads binary files, and leaves a missing one to the general path", function()
    h.write(dir .. "/cert.der", "\48\130\0\1")
    local fast_ok, fast_image, slow_image = both("file", "binary", dir .. "/cert.der")
    assert.is_true(fast_ok)
    assert.is_true(fast_image == slow_image)
    local ok, err
    fast_ok, fast_image, slow_image, ok, err = both("file", "binary", dir .. "/none.der")
    assert.is_false(fast_ok)
    assert.is_true(fast_image == slow_image)
    assert.is_nil(ok)
    assert.are.equal(("key 'k': cannot read file '%s/none.der': No such file or directory"):format(dir), err)
  end)

  it("has no fast form for rows that need the general path", function()
    local p = nvsgen.partition{ size = 0x3000 }
    assert.is_nil(csvgen.fast_row(p, "sta.ssid", "data", "string"))
    assert.is_nil(csvgen.fast_row(p, "ap.authmode", "data", "u8"))
    assert.is_nil(csvgen.fast_row(p, "k", "file", "string"))
    assert.is_nil(csvgen.fast_row(p, "k", "data", "float"))
    assert.is_nil(csvgen.fast_row(p, "k", "data", "blob_fill(8;0x00)"))
    assert.is_nil(csvgen.fast_row(p, "", "data", "u8"))
    assert.is_nil(csvgen.fast_row(p, ("k"):rep(16), "data", "u8"))
    assert.is_nil(csvgen.fast_row(p, "k", "other", "u8"))
    assert.is_function(csvgen.fast_row(p, "ns", "namespace", ""))
  end)
end)
