--- Reading back what was made: whole flash dumps (built here with the
-- project's own partition table code), `nvs_tool -f csv`, editing an
-- image, verifying a batch, and the refusals of each.
local h = require("spec.support.helper")
local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")
local flash = require("nvsgen.flash")
local pt = require("nvsgen.partition_table")
local json_mod = require("nvsgen.json")
local recipes = require("spec.support.recipes")

local TOOL = "nvsgen.cli.nvs_tool"
local V2 = h.VECTORS .. "/idf-samples/multipage-v2/expected.bin"

local TABLE_CSV = [[
# Name,   Type, SubType,  Offset,  Size, Flags
nvs,      data, nvs,      0x9000,  0x6000,
nvs_keys, data, nvs_keys, 0xF000,  0x1000, encrypted
factory,  app,  factory,  0x10000, 1M,
cfg,      data, nvs,      0x110000, 0x3000,
]]

local function sample_partition(size)
  local p = nvsgen.partition{ size = size or 0x6000 }
  p:namespace("unit"):u32("Serial", 1234):string("Name", "acme"):blob("Cert", ("\7"):rep(3000))
  return p
end

--- A flash dump: the table at `table_offset`, the NVS partition (encrypted
-- with `key` if given, its keys page in nvs_keys), and a second NVS `cfg`.
local function build_dump(key, table_offset)
  table_offset = table_offset or 0x8000
  local list = assert(pt.parse(TABLE_CSV, "t.csv", { table_offset = table_offset }))
  local table_bin = assert(flash.encode(list))
  local size = 0x110000 + 0x3000
  local parts = { [table_offset] = table_bin }
  local p = sample_partition()
  if key then p:set_key(key) end
  parts[0x9000] = p:image()
  parts[0xF000] = key and crypto.keys_partition(key) or ("\255"):rep(4096)
  parts[0x10000] = ("\0\1"):rep(100)
  local cfg = nvsgen.partition{ size = 0x3000 }
  cfg:namespace("cfg"):u8("Mode", 2)
  parts[0x110000] = cfg:image()
  local offsets = {}
  for at in pairs(parts) do offsets[#offsets + 1] = at end
  table.sort(offsets)
  local out, pos = {}, 0
  for _, at in ipairs(offsets) do
    out[#out + 1] = ("\255"):rep(at - pos)
    out[#out + 1] = parts[at]
    pos = at + #parts[at]
  end
  out[#out + 1] = ("\255"):rep(size - pos)
  return table.concat(out), p
end

describe("flash dumps", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  it("encodes and decodes a binary partition table with its MD5 entry", function()
    local list = assert(pt.parse(TABLE_CSV, "t.csv"))
    local bin = assert(flash.encode(list))
    assert.are.equal(0xC00, #bin)
    assert.are.equal("\xAA\x50\x01\x02\x00\x90\x00\x00\x00\x60\x00\x00nvs" .. ("\0"):rep(13)
      .. "\0\0\0\0", bin:sub(1, 32))
    assert.are.equal("\xEB\xEB" .. ("\255"):rep(14) .. require("nvsgen.core").md5(bin:sub(1, 128)),
      bin:sub(129, 160))
    local back = assert(flash.decode(bin))
    assert.are.equal(4, #back)
    assert.are.same({ "nvs_keys", "data", "nvs_keys", 0xF000, 0x1000, 1, true },
      { back[2].name, back[2].type, back[2].subtype, back[2].offset, back[2].size, back[2].flags,
        back[2].md5_checked })
    assert.are.equal("# ESP-IDF Partition Table\n# Name, Type, SubType, Offset, Size, Flags\n"
      .. "nvs,data,nvs,0x9000,24K,\nnvs_keys,data,nvs_keys,0xf000,4K,encrypted\n"
      .. "factory,app,factory,0x10000,1M,\ncfg,data,nvs,0x110000,12K,\n", flash.format(back))
  end)

  it("reads the first data,nvs partition, or the one named, with nvsgen.read and nvs_tool", function()
    local dump, p = build_dump()
    h.write(dir .. "/dump.bin", dump)
    local r = assert(nvsgen.read(dir .. "/dump.bin", nil, { partition = true }))
    assert.are.equal(1234, r.namespaces.unit.Serial)
    assert.are.equal("nvs", r.partition.name)
    assert.is_true(r.image == p:image())
    r = assert(nvsgen.read(dump, nil, { partition = "cfg" }))
    assert.are.equal(2, r.namespaces.cfg.Mode)
    local status, out, err = h.run(TOOL, { dir .. "/dump.bin", "--partition", "cfg", "-d", "minimal" })
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal("cfg:Mode = 2\n", out:match("cfg:Mode = 2\n"))
    status, out = h.run(TOOL, { dir .. "/dump.bin", "--list-partitions" })
    assert.are.equal(0, status)
    assert.are.equal(flash.format(assert(flash.decode(dump:sub(0x8001, 0x8C00)))), out)
  end)

  it("decrypts with the dump's own nvs_keys partition, or with --keys", function()
    local key = crypto.generate_key()
    local dump, p = build_dump(key)
    h.write(dir .. "/dump.bin", dump)
    local r = assert(nvsgen.read(dir .. "/dump.bin", nil, { partition = "nvs" }))
    assert.is_true(r.encrypted)
    assert.are.equal("acme", r.namespaces.unit.Name)
    local status, out, err = h.run(TOOL, { dir .. "/dump.bin", "--partition", "nvs", "-f", "csv" })
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal("# nvs_partition_gen encrypt IN.csv OUT.bin 0x6000 --version 2 --inputkey KEYS.bin\n",
      out:match("^[^\n]*\n"))
    -- the CSV rebuilds the partition as it is in the dump
    h.write(dir .. "/in.csv", out)
    h.write(dir .. "/keys.bin", crypto.keys_partition(key))
    assert.are.equal(0, (h.run("nvsgen.cli.partition_gen",
      { "encrypt", "in.csv", "out.bin", "0x6000", "--inputkey", "keys.bin" }, dir)))
    assert.is_true(h.read(dir .. "/out.bin") == p:image())
    -- a keys file that is not the partition's
    assert(crypto.write_keys(dir .. "/other.bin", crypto.generate_key()))
    status, out, err = h.run(TOOL, { dir .. "/dump.bin", "--partition", "nvs", "--keys", dir .. "/other.bin" })
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.matches("^nvs_tool: wrong key: (%d+) of %1 entries fail their CRC check\n$", err)
  end)

  it("finds the table at --partition-table-offset", function()
    local dump = build_dump(nil, 0x6000)
    h.write(dir .. "/dump.bin", dump)
    local status, out = h.run(TOOL, { dir .. "/dump.bin", "--partition-table-offset", "0x6000", "-d", "minimal" })
    assert.are.equal(0, status)
    assert.truthy(out:find("unit:Serial = 1234\n", 1, true))
    local _, _, err = h.run(TOOL, { dir .. "/dump.bin", "--partition", "nvs" })
    assert.are.equal("nvs_tool: " .. dir .. "/dump.bin: no partition table at 0x8000\n", err)
  end)

  it("refuses a bad dump with one line and exit status 1", function()
    local dump = build_dump()
    local function refuses(bytes, argv, message)
      h.write(dir .. "/d.bin", bytes)
      local all = { dir .. "/d.bin" }
      for _, a in ipairs(argv) do all[#all + 1] = a end
      local status, out, err = h.run(TOOL, all)
      assert.are.equal("nvs_tool: " .. message:gsub("DUMP", dir .. "/d.bin") .. "\n", err)
      assert.are.equal(1, status)
      assert.are.equal("", out)
    end
    refuses(dump, { "--partition", "nope" }, "DUMP: no partition named 'nope' in the partition table")
    refuses(dump, { "--partition", "factory" }, "DUMP: partition 'factory' is app,factory, not data,nvs")
    refuses(dump:sub(1, 0xB000), { "--partition", "nvs" },
      "DUMP: the dump ends at 0xB000, inside partition 'nvs' (0x9000 to 0xF000)")
    refuses(dump:sub(1, 0x8010), { "--partition", "nvs" },
      "DUMP: no partition table at 0x8000: the dump ends at 0x8010")
    local bad_md5 = dump:sub(1, 0x8000 + 150) .. "\0" .. dump:sub(0x8000 + 152)
    refuses(bad_md5, { "--partition", "nvs" }, "DUMP: partition table MD5 mismatch (entry at 0x80) at 0x8000")
    refuses(bad_md5, { "--list-partitions" }, "DUMP: partition table MD5 mismatch (entry at 0x80) at 0x8000")
    refuses(("\255"):rep(0x10000), { "--partition", "nvs" }, "DUMP: no partition table at 0x8000")
    refuses(crypto.random_bytes(0x10000), { "--list-partitions" }, "DUMP: no partition table at 0x8000")
    refuses(dump, { "--partition-table-offset", "0x8001" },
      "partition table offset 32769 is not a multiple of 0x1000")
    -- a dump whose nvs_keys page is damaged: the encrypted partition is unreadable
    local key = crypto.generate_key()
    local enc = build_dump(key)
    enc = enc:sub(1, 0xF000) .. "\0" .. enc:sub(0xF002)
    refuses(enc, { "--partition", "nvs", "-d", "minimal" }, "partition 'nvs' looks encrypted (all 100 entries"
      .. " fail their CRC check as plain data) and the dump holds no valid nvs_keys page: give the keys")
  end)
end)

describe("nvs_tool -f csv", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  it("prints the CSV nvsgen.to_csv makes, large blobs to --outdir", function()
    local status, out, err = h.run(TOOL, { V2, "-f", "csv" })
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal(assert(nvsgen.to_csv(assert(nvsgen.read(V2)))), out)
    assert(require("lfs").mkdir(dir .. "/blobs"))
    status, out = h.run(TOOL, { V2, "-f", "csv", "--outdir", "blobs" }, dir)
    assert.are.equal(0, status)
    assert.truthy(out:find("\nblobFileAKey,file,binary,blobs/expected-0001.bin\n"
      .. "blobFileBKey,file,binary,blobs/expected-0002.bin\nbinFileKey,file,binary,blobs/expected-0003.bin\n",
      1, true))
    assert.are.equal(5120, #h.read(dir .. "/blobs/expected-0003.bin"))
    h.write(dir .. "/in.csv", out)
    assert.are.equal(0, (h.run("nvsgen.cli.partition_gen", { "generate", "in.csv", "out.bin", "0x4000" }, dir)))
    assert.is_true(h.read(dir .. "/out.bin") == h.read(V2))
  end)

  it("prints the same JSON as nvsgen.to_json", function()
    local _, out = h.run(TOOL, { V2, "-f", "json" })
    assert.are.equal(json_mod.to_json(assert(nvsgen.read(V2)), "expected.bin") .. "\n", out)
    local r = assert(nvsgen.read(V2))
    assert.are.equal(json_mod.to_json(r, "expected.bin"), nvsgen.to_json(r, "expected.bin"))
  end)

  it("chooses colour on a terminal only", function()
    local tool = require(TOOL)
    local saved = tool.isatty
    local asked
    tool.isatty = function(stream) asked = stream return true end
    local _, out = h.run(TOOL, { V2, "-i", "-d", "none", "--color", "auto" })
    assert.truthy(out:find("\27[36mPage no. 0\27[0m \tCRC32: OK\n", 1, true))
    assert.is_table(asked) -- asked about the stream it writes to: the spec's capture buffer
    assert.is_false(tool.wants_color("never", io.stdout))
    tool.isatty = function() return false end
    _, out = h.run(TOOL, { V2, "-i", "-d", "none", "--color", "auto" })
    assert.falsy(out:find("\27", 1, true))
    assert.is_true(tool.wants_color("always", io.stdout))
    tool.isatty = saved
    assert.is_false(saved({ write = function() end }))
  end)

  it("reads at most its limit from a device or a FIFO", function()
    local status, out, err = h.run(TOOL, { "/dev/zero", "-d", "none" })
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.are.equal("nvs_tool: /dev/zero: more than the limit of 4 MiB\n", err)
    local fifo = dir .. "/fifo"
    assert.is_true(os.execute("mkfifo " .. fifo))
    local writer = io.popen(("head -c 5000000 /dev/zero > %s"):format(fifo), "w")
    status, out, err = h.run(TOOL, { fifo, "-i" })
    writer:close()
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.are.equal("nvs_tool: " .. fifo .. ": more than the limit of 4 MiB\n", err)
    local st2, _, err2 = h.run(TOOL, { "/dev/zero", "--partition", "nvs" })
    assert.are.equal(1, st2)
    assert.are.equal("nvs_tool: /dev/zero: no partition table at 0x8000\n", err2)
  end)
end)

describe("nvs_partition_gen decrypt", function()
  it("refuses an empty image with one line and writes nothing", function()
    local dir = h.tmpdir()
    h.write(dir .. "/e.bin", "")
    assert(crypto.write_keys(dir .. "/k.bin", crypto.generate_key()))
    local status, out, err = h.run("nvsgen.cli.partition_gen", { "decrypt", "e.bin", "k.bin", "o.bin" }, dir)
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.are.equal("nvs_partition_gen: e.bin: image is empty (0 bytes)\n", err)
    assert.is_nil(h.read(dir .. "/o.bin"))
    h.cleanup(dir)
  end)
end)

describe("the wrong-key rule", function()
  it("is the same for decrypt_image and read: one damaged entry is no wrong key", function()
    local key = crypto.generate_key()
    local p = sample_partition():set_key(key)
    local enc = p:image()
    -- flip a byte of the first item's entry (page 0, entry 1)
    local at = 64 + 32 + 10
    local damaged = enc:sub(1, at) .. string.char(enc:byte(at + 1) ~ 0xFF) .. enc:sub(at + 2)
    assert.is_string((crypto.decrypt_image(damaged, key)))
    local r = assert(nvsgen.read(damaged, key))
    assert.is_true(#r.problems > 0)
    local wrong = crypto.generate_key()
    local none, err = crypto.decrypt_image(enc, wrong)
    assert.is_nil(none)
    local _, err2 = nvsgen.read(enc, wrong)
    assert.are.equal(err, err2)
  end)
end)

describe("nvsgen.from_image", function()
  it("keeps the untouched items, changes, adds and removes", function()
    local p = sample_partition()
    p:namespace("other"):u8("A", 1):i64("B", -5)
    local old = p:image()
    local e = assert(nvsgen.from_image(old))
    assert.is_true(e:image() == old)
    e:namespace("unit"):u32("Serial", 99):string("New", "x")
    e:remove("other", "A")
    assert.has_error(function() e:remove("other", "A") end, "namespace 'other' holds no key 'A'")
    local r = assert(nvsgen.read(e:image()))
    assert.are.same({ Serial = 99, Name = "acme", Cert = ("\7"):rep(3000), New = "x" }, r.namespaces.unit)
    assert.are.same({ B = -5 }, r.namespaces.other)
    -- laid out as a fresh image of the same items is
    local fresh = nvsgen.partition{ size = 0x6000 }
    fresh:namespace("unit"):u32("Serial", 99):string("Name", "acme"):blob("Cert", ("\7"):rep(3000))
    fresh:namespace("other"):i64("B", -5):namespace("unit"):string("New", "x")
    assert.is_true(fresh:image() == e:image())
    local dir = h.tmpdir()
    assert(e:write(dir .. "/new.bin"))
    assert.is_true(h.read(dir .. "/new.bin") == fresh:image())
    h.cleanup(dir)
  end)

  it("writes an encrypted image with the key it was read with", function()
    local key = crypto.generate_key()
    local p = sample_partition():set_key(key)
    local e = assert(nvsgen.from_image(p:image(), key))
    assert.is_true(e:image() == p:image())
    e:namespace("unit"):string("Name", "acme-2")
    local r = assert(nvsgen.read(e:image(), key))
    assert.are.equal("acme-2", r.namespaces.unit.Name)
  end)

  it("refuses an unreadable image", function()
    assert.are.same({ nil, "wrong key: 100 of 100 entries fail their CRC check" },
      { nvsgen.from_image(sample_partition():set_key(crypto.generate_key()):image(), crypto.generate_key()) })
  end)
end)

describe("nvs_tool --verify", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  local function verify()
    return h.run(TOOL, { "--verify", dir .. "/out" })
  end

  it("passes a good batch and names each bad unit", function()
    local status = recipes.run(h.ROOT .. "/gen.lua", { "--serial-range", "1-4", "--outdir", dir .. "/out",
      "--csv", "--encrypt", "--keygen" })
    assert.are.equal(0, status)
    local st, out, err = verify()
    assert.are.equal("", err)
    assert.are.equal("4 units: 4 good, 0 bad\n", out)
    assert.are.equal(0, st)
    -- a changed byte, a missing image, a wrong SHA-256 in the manifest, a CSV that differs
    local img = h.read(dir .. "/out/unit-1.bin")
    h.write(dir .. "/out/unit-1.bin", img:sub(1, 99) .. string.char(img:byte(100) ~ 1) .. img:sub(101))
    os.remove(dir .. "/out/unit-2.bin")
    local manifest = h.read(dir .. "/out/manifest.csv")
    local sha3 = crypto.sha256_hex(h.read(dir .. "/out/unit-3.bin"))
    h.write(dir .. "/out/manifest.csv", (manifest:gsub(sha3, ("0"):rep(64))))
    local csv4 = h.read(dir .. "/out/unit-4.csv")
    h.write(dir .. "/out/unit-4.csv", (csv4:gsub("NVSGEN%-DEMO%-000004", "NVSGEN-DEMO-000005")))
    st, out = verify()
    assert.are.equal(1, st)
    assert.are.equal("unit 1: unit-1.bin: SHA-256 differs from the manifest\n"
      .. "unit 2: unit-2.bin: image is missing\n"
      .. "unit 3: unit-3.bin: SHA-256 differs from the manifest\n"
      .. "unit 4: unit-4.bin: namespace 'mass_prod', key 'DeviceName' differs from the CSV\n"
      .. "4 units: 0 good, 4 bad\n", out)
  end)

  it("reports what the firmware would find, and reads quoted manifests with comments", function()
    local p = sample_partition()
    local img = p:image()
    local bad = img:sub(1, 64 + 32 + 5) .. "\0" .. img:sub(64 + 32 + 7)
    require("lfs").mkdir(dir .. "/out")
    h.write(dir .. "/out/a.bin", img)
    h.write(dir .. "/out/b.bin", bad)
    h.write(dir .. "/out/manifest.csv", "# made by a test\n\"run\",\"x\"\nserial,image,size,sha256,keys\n"
      .. ('"7","a.bin",%d,%s,\n'):format(#img, crypto.sha256_hex(img))
      .. ('8,b.bin,%d,%s,""\n'):format(#bad, crypto.sha256_hex(bad)))
    local st, out = verify()
    assert.are.equal(1, st)
    assert.are.equal("unit 8: b.bin: the firmware would find 1 problem, first: "
      .. "Page 0, entry 001: error: entry crc mismatch\n2 units: 1 good, 1 bad\n", out)
  end)

  it("refuses a folder without a manifest", function()
    local st, out, err = verify()
    assert.are.equal(1, st)
    assert.are.equal("", out)
    assert.are.equal("nvs_tool: " .. dir .. "/out/manifest.csv: cannot open (No such file or directory)\n", err)
  end)

  it("refuses the options of reading one image instead of printing text the caller did not ask for", function()
    for _, case in ipairs({ { { "-f", "json" }, "--format" }, { { "-i" }, "--integrity-check" },
      { { "-d", "none" }, "--dump" }, { { "--partition", "nvs" }, "--partition" },
      { { "--list-partitions" }, "--list-partitions" }, { { "--outdir", dir }, "--outdir" },
      { { "--partition-table-offset", "0x8000" }, "--partition-table-offset" },
      { { "--color", "always" }, "--color" } }) do
      local argv = { "--verify", dir .. "/out", "--keys", dir .. "/k.bin" }
      for _, word in ipairs(case[1]) do argv[#argv + 1] = word end
      local st, out, err = h.run(TOOL, argv)
      assert.are.equal(2, st)
      assert.are.equal("", out)
      assert.are.equal("nvs_tool: --verify takes no " .. case[2] .. " (only --keys)\n", err)
    end
  end)

  it("says an empty --keys, --verify or --outdir is one, not a file it cannot find", function()
    for _, case in ipairs({ { { "--verify", dir .. "/out", "--keys=" }, "--keys" },
      { { dir .. "/x.bin", "--keys", "" }, "--keys" }, { { "--verify", "" }, "--verify" },
      { { dir .. "/x.bin", "-f", "csv", "--outdir=" }, "--outdir" } }) do
      local st, out, err = h.run(TOOL, case[1])
      assert.are.equal(2, st)
      assert.are.equal("", out)
      assert.are.equal("nvs_tool: " .. case[2] .. ": an empty name\n", err)
    end
  end)
end)

describe("examples/refurbish.lua", function()
  it("writes a returned unit's new image from its old one", function()
    local dir = h.tmpdir()
    local status, _, err = recipes.run(h.ROOT .. "/examples/refurbish.lua",
      { "--serial-range", "1000-1001", "--outdir", dir })
    assert.are.equal("", err)
    assert.are.equal(0, status)
    for serial = 1000, 1001 do
      local old = assert(nvsgen.read(("%s/examples/returned/mass-prod-%d.bin"):format(h.ROOT, serial)))
      local new = assert(nvsgen.read(("%s/refurbished-%d.bin"):format(dir, serial)))
      assert.are.same({}, new.problems)
      local want = old.namespaces
      want.mass_prod.HwRev = 4
      want.mass_prod.Refurbished = "2026-12"
      want.calibration.Gain = -10
      assert.are.same(want, new.namespaces)
      assert.are.equal(serial, new.namespaces.mass_prod.Serial)
    end
    h.cleanup(dir)
  end)
end)

describe("nvs_tool on a whole flash dump without options", function()
  it("reads the first data,nvs partition when the table is at 0x8000", function()
    local dir = h.tmpdir()
    local dump = build_dump()
    h.write(dir .. "/dump.bin", dump)
    local status, out, err = h.run(TOOL, { dir .. "/dump.bin", "-d", "minimal" })
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.truthy(out:find(" unit:Serial = 1234\n", 1, true))
    -- an NVS image larger than 0x9000 is still an image
    local p = nvsgen.partition{ size = 0x20000 }
    p:namespace("n"):u8("a", 1)
    h.write(dir .. "/big.bin", p:image())
    assert.is_false(flash.is_dump(dir .. "/big.bin"))
    status, out = h.run(TOOL, { dir .. "/big.bin", "-d", "minimal" })
    assert.are.equal(0, status)
    assert.truthy(out:find(" n:a = 1\n", 1, true))
    h.cleanup(dir)
  end)
end)
