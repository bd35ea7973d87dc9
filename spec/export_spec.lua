--- nvsgen.to_csv and `nvs_tool -f csv`: an image read back as the
-- reference CSV rebuilds the same bytes with nvs_partition_gen, over every
-- reference vector (plain and encrypted) and random partitions.
local h = require("spec.support.helper")
local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")
local lfs = require("lfs")

local CLI = "nvsgen.cli.partition_gen"

--- The value of option `name` in argv.
local function option(argv, name)
  for i, a in ipairs(argv) do
    if a == name then return argv[i + 1] end
  end
end

--- Rebuilds the image from `text` (a CSV from to_csv) as its first line
-- says, in folder `dir` (where its file rows point), with keys file
-- `keys` for an encrypted one. Returns the image bytes.
local function rebuild(text, dir, keys)
  local first = text:match("^[^\n]*")
  local cmd, size, version, rest = first:match(
    "^# nvs_partition_gen (%a+) IN%.csv OUT%.bin (0x%x+) %-%-version ([12])(.*)$")
  assert(cmd, "first line: " .. first)
  h.write(dir .. "/in.csv", text)
  local argv = { cmd, "in.csv", "out.bin", size, "--version", version }
  if cmd == "encrypt" then
    assert.are.equal(" --inputkey KEYS.bin", rest)
    h.write(dir .. "/keys.bin", crypto.keys_partition(keys))
    argv[#argv + 1] = "--inputkey"
    argv[#argv + 1] = "keys.bin"
  else
    assert.are.equal("", rest)
  end
  local status, _, err = h.run(CLI, argv, dir)
  assert.are.equal("", err)
  assert.are.equal(0, status)
  return h.read(dir .. "/out.bin")
end

--- The image's round trip, inline and with every blob in a file (the
-- file rows name them relative to the folder the CSV is rebuilt in).
local function assert_round_trip(image, key, label)
  for _, file_min in ipairs({ false, 1 }) do
    local dir = h.tmpdir()
    local r = assert(nvsgen.read(image, key))
    local text
    if file_min then
      local here = lfs.currentdir()
      assert(lfs.chdir(dir))
      assert(lfs.mkdir("blobs"))
      text = assert(nvsgen.to_csv(r, { outdir = "blobs", file_min = file_min }))
      lfs.chdir(here)
    else
      text = assert(nvsgen.to_csv(r))
    end
    assert.is_nil(text:find("\n# left out", 1, true), label)
    local out = rebuild(text, dir, key and crypto.parse_keys_partition(h.read(key)) or nil)
    assert.is_true(out == image, label .. ": rebuilt image differs" .. (file_min and " (files)" or ""))
    h.cleanup(dir)
  end
end

describe("nvsgen.to_csv rebuilds every reference vector byte for byte", function()
  for _, command in ipairs({ "generate", "encrypt" }) do
    for _, case in ipairs(h.cases(command)) do
      local expected = case.dir .. "/expected.bin"
      if case.ref_exit == 0 and h.read(expected) then
        it(case.name, function()
          local keys = option(case.argv, "--inputkey")
          assert_round_trip(h.read(expected), keys and case.dir .. "/" .. keys, case.name)
        end)
      end
    end
  end
  it("idf-samples/multipage-v2-decrypt (the encrypted input)", function()
    local dir = h.VECTORS .. "/idf-samples/multipage-v2-decrypt"
    assert_round_trip(h.read(dir .. "/encrypted.bin"), dir .. "/keys.bin", "decrypt")
  end)
  for n = 1, 3 do
    it("mfg-samples Sample-" .. n, function()
      assert_round_trip(h.read(("%s/mfg-samples/expected/bin/Sample-%d.bin"):format(h.VECTORS, n)), nil, "mfg")
    end)
  end
end)

-- ---- random partitions -------------------------------------------------------

--- `n` characters (UTF-8 ones, whole) drawn from `alphabet`.
local function random_text(rng, n, alphabet)
  local chars = {}
  for _, c in utf8.codes(alphabet) do chars[#chars + 1] = utf8.char(c) end
  local t = {}
  for i = 1, n do t[i] = chars[rng(1, #chars)] end
  return table.concat(t)
end

local TRICKY = "ab,\"\n' #xyz;\t\\é"
local KEY_CHARS = "abcdefghijklmnopqrstuvwxyz,\"# ._"

--- A partition of random items, every kind, namespaces visited again.
local function random_partition(seed, version)
  math.randomseed(seed)
  local rng = math.random
  local pages = rng(4, 40)
  local p = nvsgen.partition{ size = pages * 4096, version = version }
  local names = {}
  for i = 1, rng(1, 4) do names[i] = "ns" .. i .. random_text(rng, rng(0, 5), KEY_CHARS) end
  local used = {}
  for _ = 1, rng(5, 60) do
    if rng() < 0.2 then p:namespace(names[rng(1, #names)]) end
    local ns = p.encoder
    local key = random_text(rng, rng(1, 15), KEY_CHARS)
    if key:sub(1, 1) == "#" or used[key] then goto continue end
    if key:find("^sta%.") or key:find("^ap%.") then goto continue end
    do
      local kind = nvsgen.KINDS[rng(1, #nvsgen.KINDS)]
      local value
      if kind == "u8" then value = rng(0, 255)
      elseif kind == "i8" then value = rng(-128, 127)
      elseif kind == "u16" then value = rng(0, 65535)
      elseif kind == "i16" then value = rng(-32768, 32767)
      elseif kind == "u32" then value = rng(0, 0xFFFFFFFF)
      elseif kind == "i32" then value = rng(-0x80000000, 0x7FFFFFFF)
      elseif kind == "u64" then value = ("%d"):format(rng(0, math.maxinteger))
      elseif kind == "i64" then value = rng(math.mininteger, math.maxinteger)
      elseif kind == "float" then
        value = string.unpack("<f", string.pack("<I4", rng(0, 0x7F7FFFFF) | (rng(0, 1) << 31)))
      elseif kind == "double" then
        value = string.unpack("<d", string.pack("<i8", rng(math.mininteger, math.maxinteger) & ~(0x7FF << 52)))
        if rng() < 0.1 then value = rng() < 0.5 and -0.0 or math.huge end
      elseif kind == "string" then value = random_text(rng, rng(0, version == 1 and 300 or 600), TRICKY)
      else
        local n = rng() < 0.8 and rng(0, 200) or rng(0, version == 1 and 1984 or 9000)
        value = ("\0\1\255abc"):rep(n // 6 + 1):sub(rng(1, 6), -1):sub(1, n)
      end
      if p:put(kind, key, value) then used[key] = true end
    end
    ::continue::
    local _ = ns
  end
  return p
end

describe("nvsgen.to_csv rebuilds random partitions byte for byte", function()
  for _, version in ipairs({ 1, 2 }) do
    it("version " .. version .. ", plain and encrypted", function()
      for seed = 1, 25 do
        local p = random_partition(seed * 31 + version, version)
        local text = assert(nvsgen.to_csv(assert(nvsgen.read(p:image()))))
        -- strings with a '#' line or CR must go to files; plain text here
        if not text:find("\n# left out", 1, true) then
          assert_round_trip(p:image(), nil, "seed " .. seed)
        end
        local dir = h.tmpdir()
        local key = crypto.generate_key()
        h.write(dir .. "/k.bin", crypto.keys_partition(key))
        p:set_key(key)
        local here = lfs.currentdir()
        lfs.chdir(dir)
        local r = assert(nvsgen.read(p:image(), key))
        lfs.mkdir("f")
        local t = assert(nvsgen.to_csv(r, { outdir = "f", file_min = 64 }))
        lfs.chdir(here)
        assert.is_nil(t:find("\n# left out", 1, true), "seed " .. seed)
        assert.is_true(rebuild(t, dir, key) == p:image(), "encrypted seed " .. seed)
        h.cleanup(dir)
      end
    end)
  end
end)

describe("nvsgen.to_csv", function()
  local function image_of(build, opts)
    local p = nvsgen.partition(opts or { size = 0x4000 })
    build(p)
    return p:image()
  end

  it("keeps every value, quoting what needs it", function()
    local img = image_of(function(p)
      p:namespace("a,b"):u8("x", 255):i8("y", -128):u64("big", "18446744073709551615")
      p:i64("min", math.mininteger):float("f", 0.1):double("d", -0.0):double("inf", -math.huge)
      p:string("q", 'say "hi", then\nbye'):string("#h", "# not a comment"):string("e", "")
      p:blob("b", "\0\1\2"):blob("e2", "")
    end)
    local text = assert(nvsgen.to_csv(assert(nvsgen.read(img))))
    assert.are.equal("# nvs_partition_gen generate IN.csv OUT.bin 0x4000 --version 2\n"
      .. "key,type,encoding,value\n"
      .. '"a,b",namespace,,\n'
      .. "x,data,u8,255\ny,data,i8,-128\nbig,data,u64,18446744073709551615\n"
      .. "min,data,i64,-9223372036854775808\nf,data,float,0.10000000149011612\n"
      .. "d,data,double,-0.0\ninf,data,double,-inf\n"
      .. 'q,data,string,"say ""hi"", then\nbye"\n'
      .. '"#h",data,string,"# not a comment"\n'
      .. "e,data,string,\n"
      .. "b,data,hex2bin,000102\ne2,data,hex2bin,\n", text)
    local dir = h.tmpdir()
    assert.is_true(rebuild(text, dir) == img)
    h.cleanup(dir)
  end)

  it("leaves out what the CSV cannot hold, with a # line each", function()
    local img = image_of(function(p)
      p:namespace("n"):string("bad", "\255\254"):string("cr", "a\r\nb"):string("hash", "x\n#y"):u8("ok", 1)
    end)
    local text = assert(nvsgen.to_csv(assert(nvsgen.read(img))))
    assert.are.equal("# nvs_partition_gen generate IN.csv OUT.bin 0x4000 --version 2\n"
      .. "# left out: namespace 'n', key 'bad' at page 0, entry 001: string is not UTF-8 text,"
      .. " which the CSV cannot hold (hex fffe)\n"
      .. "# left out: namespace 'n', key 'cr' at page 0, entry 003: string holds CR or a line starting"
      .. " with '#', which a CSV field cannot hold (hex 610d0a62; --outdir keeps it in a file)\n"
      .. "# left out: namespace 'n', key 'hash' at page 0, entry 005: string holds CR or a line starting"
      .. " with '#', which a CSV field cannot hold (hex 780a2379; --outdir keeps it in a file)\n"
      .. "key,type,encoding,value\nn,namespace,,\nok,data,u8,1\n", text)
  end)

  it("keeps its # lines UTF-8 text when a key or namespace is not", function()
    local img = image_of(function(p) p:namespace("\255ns"):u8("k\255", 1):namespace("ok"):u8("a", 2) end)
    local text = assert(nvsgen.to_csv(assert(nvsgen.read(img))))
    assert.are.equal("# nvs_partition_gen generate IN.csv OUT.bin 0x4000 --version 2\n"
      .. "# left out: namespace '\\xffns' at page 0, entry 000: its name cannot be a CSV field\n"
      .. "# left out: namespace '\\xffns', key 'k\\xff' at page 0, entry 001: its key or namespace cannot"
      .. " be a CSV field\n"
      .. "key,type,encoding,value\nok,namespace,,\na,data,u8,2\n", text)
  end)

  it("notes erased entries and entries the firmware drops", function()
    local img = image_of(function(p) p:namespace("n"):u8("a", 1):u8("b", 2) end)
    -- erase entry 1 (a) in the bitmap, and spoil entry 2's CRC
    local bitmap = string.byte(img, 33) & ~(3 << 2)
    img = img:sub(1, 32) .. string.char(bitmap) .. img:sub(34, 64 + 64 + 4)
      .. "\0" .. img:sub(64 + 64 + 6)
    local text = assert(nvsgen.to_csv(assert(nvsgen.read(img))))
    assert.are.equal("# nvs_partition_gen generate IN.csv OUT.bin 0x4000 --version 2\n"
      .. "# left out: Page 0, entry 002: error: entry crc mismatch\n"
      .. "# left out: page 0: 1 erased entry\n"
      .. "key,type,encoding,value\nn,namespace,,\n", text)
  end)

  it("leaves the Wi-Fi driver's entries to the generator", function()
    local dir = h.tmpdir()
    h.write(dir .. "/w.csv", "key,type,encoding,value\nwifi,namespace,,\nsta.ssid,data,string,home\n"
      .. "ap.ssid,data,string,myap\nap.passwd,data,string,secret12\nap.authmode,data,u8,3\nz,data,u8,1\n")
    assert.are.equal(0, (h.run(CLI, { "generate", "w.csv", "w.bin", "0x4000" }, dir)))
    local img = h.read(dir .. "/w.bin")
    local text = assert(nvsgen.to_csv(assert(nvsgen.read(img))))
    assert.are.equal("# nvs_partition_gen generate IN.csv OUT.bin 0x4000 --version 2\n"
      .. "key,type,encoding,value\nwifi,namespace,,\nsta.ssid,data,string,home\n"
      .. "ap.ssid,data,string,myap\nap.passwd,data,string,secret12\nap.authmode,data,u8,3\nz,data,u8,1\n", text)
    assert.is_true(rebuild(text, dir) == img)
    h.cleanup(dir)
  end)

  it("refuses what is not a read result and unknown options", function()
    assert.has_error(function() nvsgen.to_csv("x") end, "nvsgen.to_csv: a result of nvsgen.read expected")
    local r = assert(nvsgen.read(image_of(function() end)))
    assert.has_error(function() nvsgen.to_csv(r, { outdri = "x" }) end, "nvsgen.to_csv: unknown option 'outdri'")
  end)
end)
