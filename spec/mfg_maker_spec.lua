--- The C maker of mfg_gen's plain rows (core.mfg_maker, used by nvsgen.mfg)
-- against the general Lua code: the same command lines give the same files,
-- output and messages with it and without it (nvsgen.mfg.use_maker), for
-- every kind of row it takes and every row it must leave to Lua.
local h = require("spec.support.helper")
local lfs = require("lfs")
local crypto = require("nvsgen.crypto")
local mfg = require("nvsgen.mfg")

local CLI = "nvsgen.cli.mfg_gen"

local dir
before_each(function() dir = h.tmpdir() end)
after_each(function()
  mfg.use_maker = true
  h.cleanup(dir)
end)

--- Every file under `path`, by its path below it: { name = bytes }.
local function files(path, prefix, out)
  out = out or {}
  for name in lfs.dir(path) do
    if name ~= "." and name ~= ".." then
      local full = path .. "/" .. name
      local shown = (prefix or "") .. name
      if lfs.attributes(full, "mode") == "directory" then
        files(full, shown .. "/", out)
      else
        out[shown] = h.read(full)
      end
    end
  end
  return out
end

--- Runs `argv` (its outdir "OUT") with and without the maker, in two
-- output folders; returns both results { status, out, err, files }.
local function both(argv)
  local results = {}
  for i, use in ipairs({ true, false }) do
    mfg.use_maker = use
    local outdir = use and "c" or "lua"
    h.cleanup(dir .. "/" .. outdir)
    local args = {}
    for k, word in ipairs(argv) do args[k] = word == "OUT" and outdir or word end
    local status, out, err = h.run(CLI, args, dir)
    local written = lfs.attributes(dir .. "/" .. outdir) and files(dir .. "/" .. outdir) or {}
    local function shown(text)
      return (text:gsub(outdir .. "/", "OUT/"):gsub("in " .. outdir .. " ", "in OUT "))
    end
    results[i] = { status = status, out = shown(out), err = shown(err), files = written }
  end
  mfg.use_maker = true
  return results[1], results[2]
end

--- Runs `argv` with the maker; returns its status and how many units the
-- Lua code built (checked and written: each unit it makes counts twice).
local function lua_builds(argv)
  local build_unit, count = mfg.build_unit, 0
  mfg.build_unit = function(...)
    count = count + 1
    return build_unit(...)
  end
  local ok, status = pcall(h.run, CLI, argv, dir)
  mfg.build_unit = build_unit
  assert(ok, status)
  return status, count
end

local function same(argv, status)
  local c, lua = both(argv)
  assert.are.equal(status or 0, c.status, c.err)
  assert.are.equal(lua.err, c.err)
  assert.are.equal(lua.status, c.status)
  assert.are.equal(lua.out, c.out)
  assert.are.same(lua.files, c.files)
  return c
end

local function inputs(config, values)
  h.write(dir .. "/config.csv", config)
  h.write(dir .. "/values.csv", values)
end

local CONFIG = table.concat({
  "ns,namespace,",
  "s,data,string",
  "h,data,hex2bin",
  "b,data,base64",
  "raw,data,binary",
  "a,data,u8", "b2,data,i8", "c,data,u16", "d,data,u32", "e,data,i32", "f,data,u64", "g,data,i64",
  "cert,file,binary",
  "other,namespace,",
  "t,data,string",
  "", }, "\n")
local HEADER = "id,s,h,b,raw,a,b2,c,d,e,f,g,cert,t\n"

--- A values row of CONFIG, with `over` replacing fields by name.
local function row(over)
  local fields = { id = "1", s = "text", h = "00ff10", b = "aGVsbG8=", raw = "bytes", a = "255", b2 = "-128",
    c = "65535", d = "4294967295", e = "-2147483648", f = "18446744073709551615",
    g = "-9223372036854775808", cert = "cert.der", t = "" }
  for k, v in pairs(over or {}) do fields[k] = v end
  local out = {}
  for name in HEADER:gmatch("[^,\n]+") do out[#out + 1] = fields[name] end
  return table.concat(out, ",") .. "\n"
end

describe("the C maker of mfg_gen's plain rows", function()
  it("is used for every kind of row it takes", function()
    inputs(CONFIG, HEADER .. row())
    local header, first, plain = mfg.read_head(dir .. "/values.csv")
    local config = assert(mfg.read_config(dir .. "/config.csv", dir .. "/values.csv", header))
    local job = assert(mfg.job{ conf = "c", values = dir .. "/values.csv", header = header, first = first,
      first_plain = plain, config = config, size = 0x6000, version = 2, prefix = "P", outdir = dir })
    assert.are.equal("userdata", type(job.maker))
    h.write(dir .. "/cert.der", "abc")
    local status, count = lua_builds({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "o" })
    assert.are.equal(0, status)
    assert.are.equal(0, count)
    -- A quoted row goes to the Lua code, checked and written.
    inputs(CONFIG, HEADER .. row() .. row({ id = "2", s = '"a,b"' }) .. row({ id = "3" }))
    status, count = lua_builds({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "o2" })
    assert.are.equal(0, status)
    assert.are.equal(2, count)
  end)

  it("makes the same files as the Lua code, each kind of value at its limits", function()
    h.write(dir .. "/cert.der", ("\48\130\4\172"):rep(300))
    h.write(dir .. "/small.der", "\1\2\3")
    local rows = {}
    for i = 1, 40 do
      rows[i] = row({ id = tostring(i), s = ("x"):rep(i * 37 % 200), h = ("a5"):rep(i), a = tostring(i),
        d = tostring(i * 1000003), cert = i % 3 == 0 and "small.der" or "cert.der", t = "é" .. i })
    end
    inputs(CONFIG, HEADER .. table.concat(rows))
    same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT" })
    same({ "generate", "config.csv", "values.csv", "P", "0x8000", "--outdir", "OUT", "--version", "1" })
    same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT", "--fileid", "d" })
    same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT", "--prefix_num", "-3", "4" })
  end)

  it("leaves to Lua the rows it must, with the same result", function()
    h.write(dir .. "/cert.der", "abc")
    local rows = {
      row({ id = "1" }),
      row({ id = "2", s = '"quoted, value"' }),
      row({ id = "3", a = "007" }),
      row({ id = "4", a = "1_0" }),
      row({ id = "5", b2 = "-0" }),
      row({ id = "6", h = " 00ff " }),
      row({ id = "7", a = "+5" }),
      "\n",
      "   \n",
      row({ id = "8", b = "aGVs bG8=" }),
      row({ id = "9.bin" }),
      row({ id = "10", cert = "./cert.der" }),
      row({ id = "11" }):gsub("\n$", ""),
    }
    inputs(CONFIG, HEADER .. table.concat(rows))
    h.write(dir .. "/hmac.bin", h.read(h.VECTORS .. "/mfg-samples/testdata/sample_hmac_key.bin"))
    same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT" })
    same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT", "--fileid", "id",
      "--keygen", "--key_protect_hmac", "--kp_hmac_inputkey", "hmac.bin" })
  end)

  for _, case in ipairs({
    { "a u8 out of range", { a = "256" } },
    { "an i8 out of range", { b2 = "-129" } },
    { "a u64 out of range", { f = "18446744073709551616" } },
    { "a negative unsigned", { c = "-1" } },
    { "a hex2bin value of odd length", { h = "abc" } },
    { "a hex2bin value that is not hex", { h = "zz" } },
    { "a base64 value cut short", { b = "aGVsbG8" } },
    { "a missing file", { cert = "nothere.der" } },
    { "a folder as a file", { cert = "." } },
    { "a string too long", { s = ("x"):rep(4001) } },
    { "an empty integer", { e = "" } },
  }) do
    it("fails as the Lua code does on " .. case[1] .. " deep in the file, writing nothing", function()
      h.write(dir .. "/cert.der", "abc")
      local rows = {}
      for i = 1, 30 do rows[i] = row({ id = tostring(i) }) end
      case[2].id = "31"
      rows[31] = row(case[2])
      inputs(CONFIG, HEADER .. table.concat(rows))
      local c = same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT" }, 1)
      assert.are.same({}, c.files)
      assert.matches("^mfg_gen: values.csv:32: key '", c.err)
    end)
  end

  it("fails as the Lua code does when the partition is full, and on ids used twice", function()
    h.write(dir .. "/cert.der", ("z"):rep(9000))
    inputs(CONFIG, HEADER .. row({ id = "1" }) .. row({ id = "2" }))
    local c = same({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "OUT" }, 1)
    assert.are.equal("mfg_gen: values.csv:2: key 'cert': does not fit, partition of 0x3000 bytes is full\n", c.err)
    -- The check builds a row only when its lengths differ from the last
    -- one built: a longer value late in the file is still found too long.
    h.write(dir .. "/small.der", "abc")
    inputs(CONFIG, HEADER .. row({ id = "1", cert = "small.der" }) .. row({ id = "2", cert = "small.der" })
      .. row({ id = "3", cert = "cert.der" }) .. row({ id = "4", cert = "small.der" }))
    c = same({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "OUT" }, 1)
    assert.are.equal("mfg_gen: values.csv:4: key 'cert': does not fit, partition of 0x3000 bytes is full\n", c.err)
    assert.are.same({}, c.files)
    inputs(CONFIG, HEADER .. row({ id = "1" }) .. row({ id = "2", d = "1" }) .. row({ id = "1", d = "2" }))
    c = same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT", "--fileid", "id" }, 1)
    assert.are.equal("mfg_gen: values.csv:4: --fileid id: '1' names the files of line 2 too"
      .. " (each unit needs its own)\n", c.err)
  end)

  it("fills REPEAT values, and keeps rows the CSV reader drops as comments", function()
    inputs("ns,namespace,\n#skip,namespace,\nk,data,u32,REPEAT\n#c,data,string\nv,data,string\n",
      "k,#c,v\n7,x,a\n,y,b\n,z,c\n")
    same({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "OUT" })
  end)

  it("reads a values file of many chunks, its lines ending in CRLF", function()
    local rows = {}
    for i = 1, 600 do rows[i] = row({ id = tostring(i), s = ("v"):rep(i % 50) }):gsub("\n", "\r\n") end
    h.write(dir .. "/cert.der", "abc")
    inputs(CONFIG, HEADER .. table.concat(rows))
    same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT" })
    -- The maker takes the rows on either side of a chunk's end too.
    local status, count = lua_builds({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "o" })
    assert.are.equal(0, status)
    assert.are.equal(0, count)
  end)

  it("encrypts as the Lua code does with --inputkey, and with --keygen writes keys that open the images", function()
    h.write(dir .. "/cert.der", "abc")
    local rows = {}
    for i = 1, 5 do rows[i] = row({ id = tostring(i) }) end
    inputs(CONFIG, HEADER .. table.concat(rows))
    h.write(dir .. "/k.bin", h.read(h.VECTORS .. "/mfg-samples/testdata/sample_encryption_keys.bin"))
    same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT", "--inputkey", "k.bin" })
    h.write(dir .. "/hmac.bin", h.read(h.VECTORS .. "/mfg-samples/testdata/sample_hmac_key.bin"))
    same({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT", "--keygen",
      "--key_protect_hmac", "--kp_hmac_inputkey", "hmac.bin" })
    local c, lua = both({ "generate", "config.csv", "values.csv", "P", "0x6000", "--outdir", "OUT", "--keygen" })
    assert.are.equal("", c.err)
    assert.are.equal(lua.out, c.out)
    assert.are.equal(0, c.status)
    for i = 1, 5 do
      local key = assert(crypto.read_keys(dir .. "/c/keys/keys-P-" .. i .. ".bin"))
      assert.are.equal("rw-------", lfs.attributes(dir .. "/c/keys/keys-P-" .. i .. ".bin", "permissions"))
      local lua_key = assert(crypto.read_keys(dir .. "/lua/keys/keys-P-" .. i .. ".bin"))
      assert.are.equal(assert(crypto.decrypt_image(lua.files["bin/P-" .. i .. ".bin"], lua_key)),
        assert(crypto.decrypt_image(c.files["bin/P-" .. i .. ".bin"], key)))
      assert.are.equal(lua.files["csv/P-" .. i .. ".csv"], c.files["csv/P-" .. i .. ".csv"])
    end
  end)
end)
