--- nvs_tool --verify on a batch of whole units (several partitions per
-- unit, the keys partition, flash_args, --merged, --hex): every file's
-- SHA-256, each NVS image read as the firmware reads it (the encrypted ones
-- with the unit's keys partition), the merged file against the partition
-- files, and one line naming the file for each way a unit can be bad.
local h = require("spec.support.helper")
local recipes = require("spec.support.recipes")
local recipe = require("nvsgen.recipe")
local crypto = require("nvsgen.crypto")
local nvsgen = require("nvsgen")
local verify = require("nvsgen.verify")

local TOOL = "nvsgen.cli.nvs_tool"
local EXAMPLE = h.ROOT .. "/examples/two_partitions.lua"
local TABLE = "nvs,data,nvs,,0x6000\nfctry,data,nvs,,0x6000\nnvs_keys,data,nvs_keys,,0x1000\n"
  .. "factory,app,factory,,1M\n"

-- A recipe of an encrypted fctry and a plain nvs on TABLE (written in dir).
local function mixed_recipe(dir)
  h.write(dir .. "/parts.csv", TABLE)
  local def = recipe.define{
    partition_table = "parts.csv",
    partitions = { { label = "fctry", encrypt = true }, { label = "nvs", encrypt = false } },
    exports = { "Secret" },
    unit = function(u)
      u:partition("fctry"):namespace("identity"):u32("Serial", u.serial)
      u:string("Secret", u:export("Secret", u:random_hex(8)))
      u:partition("nvs"):namespace("settings"):u8("Volume", 5):string("Language", "en")
    end,
  }
  def.dir = dir
  return def
end

-- The manifest's lines, and a way to set field `col` (1-based) of unit
-- `serial`'s record, or to append a field to it.
local function manifest_editor(path)
  local text = h.read(path)
  local lines = {}
  for line in text:gmatch("[^\n]*\n") do lines[#lines + 1] = line end
  local editor = {}
  function editor.set(serial, col, value)
    for i, line in ipairs(lines) do
      local body, eol = line:match("^(.-)(\r?\n)$")
      local fields = {}
      for f in (body .. ","):gmatch("([^,]*),") do fields[#fields + 1] = f end
      if fields[1] == tostring(serial) then
        fields[col] = value
        lines[i] = table.concat(fields, ",") .. eol
      end
    end
  end
  function editor.save() h.write(path, table.concat(lines)) end
  return editor
end

-- Bytes `data` with byte `at` (1-based) xor-ed with `mask`.
local function flip(data, at, mask)
  return data:sub(1, at - 1) .. string.char(data:byte(at) ~ (mask or 1)) .. data:sub(at + 1)
end

describe("nvs_tool --verify on whole units", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  local function run_verify(outdir)
    return h.run(TOOL, { "--verify", outdir })
  end

  it("passes two_partitions.lua's units with --merged and --hex, from the tool and verify.run", function()
    local status, _, err = recipes.run(EXAMPLE, { "--serial-range", "1000-1002", "--outdir", "out", "--merged",
      "--hex" }, dir)
    assert.equal(0, status, err)
    local st, out, verr = run_verify(dir .. "/out")
    assert.equal("", verr)
    assert.equal("3 units: 3 good, 0 bad\n", out)
    assert.equal(0, st)
    local bad = {}
    assert.same({ units = 3, good = 3, bad = 0 }, verify.run(dir .. "/out", {
      on_bad = function(serial, problem) bad[#bad + 1] = serial .. ": " .. problem end }))
    assert.same({}, bad)
    -- Without --merged and --hex (flash_args only), from another folder.
    status, _, err = recipes.run(EXAMPLE, { "--serial-range", "7", "--outdir", "a/b" }, dir)
    assert.equal(0, status, err)
    st, out = run_verify(dir .. "/a/b")
    assert.equal("1 unit: 1 good, 0 bad\n", out)
    assert.equal(0, st)
  end)

  it("names the file of each damaged unit of a plain and an encrypted partition", function()
    local status, _, err = recipes.run(mixed_recipe(dir), { "--serial-range", "1-12", "--outdir", "out",
      "--merged", "--hex" }, dir)
    assert.equal(0, status, err)
    local o = dir .. "/out/"
    assert.equal("serial,fctry,fctry_sha256,nvs,nvs_sha256,nvs_keys,nvs_keys_sha256,flash_args,flash_args_sha256,"
      .. "merged,merged_sha256,hex,hex_sha256,Secret", h.lines(o .. "manifest.csv")[1]:gsub("\r$", ""))
    local st, out, verr = run_verify(o)
    assert.equal("", verr)
    assert.equal("12 units: 12 good, 0 bad\n", out)
    assert.equal(0, st)

    local m = manifest_editor(o .. "manifest.csv")
    -- The columns of the manifest: fctry 2, nvs 4, nvs_keys 6, flash_args 8, merged 10, hex 12.
    local function replace(serial, col, name, data)
      h.write(o .. name, data)
      m.set(serial, col + 1, crypto.sha256_hex(data))
    end
    -- 1: a byte of the plain image changed.
    h.write(o .. "unit-1-nvs.bin", flip(h.read(o .. "unit-1-nvs.bin"), 64 + 32 + 32 + 30))
    -- 2: the same with the manifest's SHA-256 to match: only the firmware's read fails.
    replace(2, 4, "unit-2-nvs.bin", flip(h.read(o .. "unit-2-nvs.bin"), 64 + 32 + 32 + 30))
    -- 3: the encrypted image of another unit (another key), its SHA-256 recorded.
    replace(3, 2, "unit-3-fctry.bin", h.read(o .. "unit-4-fctry.bin"))
    -- 4: the keys partition deleted.
    os.remove(o .. "unit-4-nvs_keys.bin")
    -- 5: a file named outside the folder (which exists there).
    h.write(dir .. "/x.bin", h.read(o .. "unit-5-nvs.bin"))
    m.set(5, 4, "../x.bin")
    -- 6: the merged file's fctry bytes changed, its SHA-256 recorded.
    replace(6, 10, "unit-6.merged.bin", flip(h.read(o .. "unit-6.merged.bin"), 0xF000 - 0x9000 + 200))
    -- 7: no name for the HEX file.
    m.set(7, 12, "")
    -- 8: the keys partition is no keys page (its CRC fails), its SHA-256 recorded.
    replace(8, 6, "unit-8-nvs_keys.bin", flip(h.read(o .. "unit-8-nvs_keys.bin"), 3))
    -- 9: a field more than the header.
    m.set(9, 15, "extra")
    -- 10: an encrypted image changed with its SHA-256 recorded: it decrypts to entries that fail.
    replace(10, 2, "unit-10-fctry.bin", flip(h.read(o .. "unit-10-fctry.bin"), 64 + 32 + 5))
    -- 11: a digit of the HEX file changed, its SHA-256 recorded.
    local hex = h.read(o .. "unit-11.hex")
    local digit = hex:find("\n:10", 1, true) + 12
    replace(11, 12, "unit-11.hex", flip(hex, digit))
    -- 12: the argument file names another unit's image, its SHA-256 recorded.
    replace(12, 8, "unit-12.flash_args", (h.read(o .. "unit-12.flash_args"):gsub("unit%-12%-nvs", "unit-1-nvs")))
    m.save()
    st, out, verr = run_verify(o)
    assert.equal("", verr)
    assert.equal("unit 1: unit-1-nvs.bin: SHA-256 differs from the manifest\n"
      .. "unit 2: unit-2-nvs.bin: the firmware would find 2 problems, first: Page 0, entry 002: error: entry crc"
      .. " mismatch\n"
      .. "unit 3: unit-3-fctry.bin: wrong key: 4 of 4 entries fail their CRC check\n"
      .. "unit 4: unit-4-nvs_keys.bin: file is missing\n"
      .. "unit 5: ../x.bin: the file is outside the batch folder\n"
      .. "unit 6: unit-6.merged.bin: the bytes at 0xF000 are not unit-6-fctry.bin's\n"
      .. "unit 7: hex: no file named in the manifest\n"
      .. "unit 8: unit-8-nvs_keys.bin: keys partition crc mismatch (the unit's keys partition for"
      .. " unit-8-fctry.bin)\n"
      .. "unit 9: the record has 15 fields, the header 14\n"
      .. "unit 10: unit-10-fctry.bin: the firmware would find 1 problem, first: Page 0, entry 001: error: entry crc"
      .. " mismatch\n"
      .. "unit 11: unit-11.hex: is not the Intel HEX of the unit's partition files at their unit-11.flash_args"
      .. " offsets\n"
      .. "unit 12: unit-12.flash_args: out/unit-1-nvs.bin is not one of the unit's partition files\n"
      .. "12 units: 0 good, 12 bad\n", out)
    assert.equal(1, st)
  end)

  it("reads the units of a batch sharing one key (--inputkey) with --keys, and says how without it", function()
    local lfs = require("lfs")
    assert(lfs.mkdir(dir .. "/keys"))
    assert(crypto.write_keys(dir .. "/keys/k.bin", crypto.generate_key()))
    assert(crypto.write_keys(dir .. "/keys/other.bin", crypto.generate_key()))
    h.write(dir .. "/keys/short.bin", "0123")
    -- Encrypted gen.lua images and whole units, the key named from the
    -- batch's folder (as the manifest records it), checked from another.
    local status, _, err = recipes.run(h.ROOT .. "/gen.lua", { "--serial-range", "1-2", "--outdir", "single",
      "--encrypt", "--inputkey", "keys/k.bin" }, dir)
    assert.equal(0, status, err)
    status, _, err = recipes.run(EXAMPLE, { "--serial-range", "1-2", "--outdir", "whole", "--encrypt",
      "--inputkey", "keys/k.bin", "--merged", "--hex" }, dir)
    assert.equal(0, status, err)
    local hint = " (a key the whole batch shares? give its file with --keys)\n"
    local st, out, verr = run_verify(dir .. "/single")
    assert.equal("", verr)
    assert.equal("unit 1: unit-1.bin: keys file keys/k.bin is missing" .. hint
      .. "unit 2: unit-2.bin: keys file keys/k.bin is missing" .. hint
      .. "2 units: 0 good, 2 bad\n", out)
    assert.equal(1, st)
    st, out, verr = run_verify(dir .. "/whole")
    assert.equal("", verr)
    assert.equal("unit 1: keys/k.bin: file is missing" .. hint .. "unit 2: keys/k.bin: file is missing" .. hint
      .. "2 units: 0 good, 2 bad\n", out)
    assert.equal(1, st)
    for _, outdir in ipairs({ "single", "whole" }) do
      st, out, verr = h.run(TOOL, { "--verify", dir .. "/" .. outdir, "--keys", dir .. "/keys/k.bin" })
      assert.equal("", verr)
      assert.equal("2 units: 2 good, 0 bad\n", out)
      assert.equal(0, st)
    end
    -- Another key: the images do not read with it, and a whole unit's
    -- records say which keys partition the batch used.
    local other = dir .. "/keys/other.bin"
    st, out = h.run(TOOL, { "--verify", dir .. "/single", "--keys", other })
    assert.equal("unit 1: unit-1.bin: wrong key: 8 of 8 entries fail their CRC check\n"
      .. "unit 2: unit-2.bin: wrong key: 8 of 8 entries fail their CRC check\n"
      .. "2 units: 0 good, 2 bad\n", out)
    assert.equal(1, st)
    st, out = h.run(TOOL, { "--verify", dir .. "/whole", "--keys", other })
    local wrong = "keys/k.bin: " .. other .. " is not the keys partition the batch recorded for nvs_keys\n"
    assert.equal("unit 1: " .. wrong .. "unit 2: " .. wrong .. "2 units: 0 good, 2 bad\n", out)
    assert.equal(1, st)
    -- A unit's own keys partition gone is missing, --keys or not.
    status, _, err = recipes.run(EXAMPLE, { "--serial-range", "1", "--outdir", "own" }, dir)
    assert.equal(0, status, err)
    os.remove(dir .. "/own/unit-1-nvs_keys.bin")
    st, out = h.run(TOOL, { "--verify", dir .. "/own", "--keys", dir .. "/keys/k.bin" })
    assert.equal("unit 1: unit-1-nvs_keys.bin: file is missing\n1 unit: 0 good, 1 bad\n", out)
    assert.equal(1, st)
    -- No keys partition at all: one line, before any unit.
    st, out, verr = h.run(TOOL, { "--verify", dir .. "/whole", "--keys", dir .. "/keys/short.bin" })
    assert.equal("", out)
    assert.equal("nvs_tool: " .. dir .. "/keys/short.bin: keys partition is 4 bytes long, 4096 are needed\n", verr)
    assert.equal(1, st)
    st, out, verr = h.run(TOOL, { "--verify", dir .. "/whole", "--keys", dir .. "/keys/none.bin" })
    assert.equal("", out)
    assert.equal("nvs_tool: " .. dir .. "/keys/none.bin: No such file or directory\n", verr)
    assert.equal(1, st)
  end)

  it("says a single image's own keys file (--keygen) is missing, --keys or not", function()
    assert(crypto.write_keys(dir .. "/k.bin", crypto.generate_key()))
    local status, _, err = recipes.run(h.ROOT .. "/gen.lua", { "--serial-range", "1-2", "--outdir", "own",
      "--encrypt", "--keygen" }, dir)
    assert.equal(0, status, err)
    os.remove(dir .. "/own/unit-1-keys.bin")
    local want = "unit 1: unit-1.bin: keys file unit-1-keys.bin is missing\n2 units: 1 good, 1 bad\n"
    for _, extra in ipairs({ {}, { "--keys", dir .. "/k.bin" } }) do
      local st, out, verr = h.run(TOOL, { "--verify", dir .. "/own", table.unpack(extra) })
      assert.equal("", verr)
      assert.equal(want, out)
      assert.equal(1, st)
    end
  end)

  it("follows no link inside the folder, even to the unit's own bytes", function()
    local status, _, err = recipes.run(EXAMPLE, { "--serial-range", "1", "--outdir", "out" }, dir)
    assert.equal(0, status, err)
    local o = dir .. "/out/"
    h.write(dir .. "/copy.bin", h.read(o .. "unit-1-nvs.bin"))
    os.remove(o .. "unit-1-nvs.bin")
    assert(require("lfs").link(dir .. "/copy.bin", o .. "unit-1-nvs.bin", true))
    local st, out = run_verify(o)
    assert.equal("unit 1: unit-1-nvs.bin: unit-1-nvs.bin is a link, which a batch never makes (not followed)\n"
      .. "1 unit: 0 good, 1 bad\n", out)
    assert.equal(1, st)
  end)

  it("tells a file still pending (a batch killed after recording its unit) from one that is gone", function()
    local status, _, err = recipes.run(mixed_recipe(dir), { "--serial-range", "1-2", "--outdir", "out", "--hex" },
      dir)
    assert.equal(0, status, err)
    local o = dir .. "/out/"
    -- As a kill between the records and the renames leaves unit 1.
    assert(os.rename(o .. "unit-1-fctry.bin", o .. "unit-1-fctry.bin.part"))
    os.remove(o .. "unit-2.hex")
    local st, out, verr = run_verify(o)
    assert.equal("", verr)
    assert.equal("unit 1: unit-1-fctry.bin: file is missing (unit-1-fctry.bin.part is pending: run the batch"
      .. " again to finish it)\n"
      .. "unit 2: unit-2.hex: file is missing\n"
      .. "2 units: 0 good, 2 bad\n", out)
    assert.equal(1, st)
  end)

  it("reads a plain and an encrypted image of a unit named by hand, and refuses a file named twice", function()
    local key = crypto.generate_key()
    local plain = nvsgen.partition{ size = 0x3000 }
    plain:namespace("n"):u8("a", 1)
    local secret = nvsgen.partition{ size = 0x3000 }
    secret:namespace("s"):string("k", "v")
    secret:set_key(key)
    local files = { ["p.bin"] = plain:image(), ["e.bin"] = secret:image(), ["k.bin"] = crypto.keys_partition(key) }
    for name, data in pairs(files) do h.write(dir .. "/" .. name, data) end
    local function sha(name) return crypto.sha256_hex(files[name]) end
    h.write(dir .. "/manifest.csv", "serial,plain,plain_sha256,enc,enc_sha256,keys,keys_sha256\n"
      .. ("1,p.bin,%s,e.bin,%s,k.bin,%s\n"):format(sha("p.bin"), sha("e.bin"), sha("k.bin"))
      .. ("2,p.bin,%s,e.bin,%s,p.bin,%s\n"):format(sha("p.bin"), sha("e.bin"), sha("p.bin"))
      .. ("3,p.bin,%s,e.bin,%s\n"):format(sha("p.bin"), sha("e.bin")))
    local st, out = run_verify(dir)
    assert.equal("unit 2: p.bin: named by both plain and keys\n"
      .. "unit 3: the record has 5 fields, the header 7\n"
      .. "3 units: 1 good, 2 bad\n", out)
    assert.equal(1, st)
    h.write(dir .. "/manifest.csv", "serial,plain,plain_sha256,enc,enc_sha256\n"
      .. ("3,p.bin,%s,e.bin,%s\n"):format(sha("p.bin"), sha("e.bin")))
    st, out = run_verify(dir)
    assert.equal("unit 3: e.bin: looks encrypted (all 3 entries fail their CRC check as plain data) and the unit"
      .. " has no keys partition\n1 unit: 0 good, 1 bad\n", out)
    assert.equal(1, st)
  end)

  it("names a file it cannot read: a folder; a link to a device that never ends is not opened", function()
    local status, _, err = recipes.run(EXAMPLE, { "--serial-range", "1-2", "--outdir", "out" }, dir)
    assert.equal(0, status, err)
    local o = dir .. "/out/"
    os.remove(o .. "unit-1-nvs.bin")
    assert(require("lfs").mkdir(o .. "unit-1-nvs.bin"))
    os.remove(o .. "unit-2-fctry.bin")
    assert(require("lfs").link("/dev/zero", o .. "unit-2-fctry.bin", true))
    local st, out = run_verify(o)
    assert.equal("unit 1: unit-1-nvs.bin: Is a directory\n"
      .. "unit 2: unit-2-fctry.bin: unit-2-fctry.bin is a link, which a batch never makes (not followed)\n"
      .. "2 units: 0 good, 2 bad\n", out)
    assert.equal(1, st)
  end)

  it("finds a merged file bad, without a traceback, when flash_args puts a partition far beyond it", function()
    local status, _, err = recipes.run(EXAMPLE, { "--serial-range", "1-2", "--outdir", "out", "--merged" }, dir)
    assert.equal(0, status, err)
    local o = dir .. "/out/"
    local m = manifest_editor(o .. "manifest.csv")
    -- The columns: fctry 2, nvs 4, nvs_keys 6, flash_args 8, merged 10.
    for serial, offset in pairs({ [1] = "0x7FFFFFFFFFFFF000", [2] = "0x40000000" }) do
      local name = "unit-" .. serial .. ".flash_args"
      local text = h.read(o .. name):gsub("0x%x+( %S*unit%-%d%-fctry%.bin)", offset .. "%1")
      h.write(o .. name, text)
      m.set(serial, 9, crypto.sha256_hex(text))
    end
    m.save()
    local st, out = run_verify(o)
    assert.equal("unit 1: unit-1.merged.bin: is not the unit's partition files at their unit-1.flash_args offsets\n"
      .. "unit 2: unit-2.merged.bin: is not the unit's partition files at their unit-2.flash_args offsets\n"
      .. "2 units: 0 good, 2 bad\n", out)
    assert.equal(1, st)
  end)

  it("takes export columns named like a file pair after flash_args for exports", function()
    local status, _, err = recipes.run(EXAMPLE, { "--serial-range", "1", "--outdir", "out" }, dir)
    assert.equal(0, status, err)
    local path = dir .. "/out/manifest.csv"
    local lines = h.lines(path)
    -- Two exports that look like a partition's pair after the reserved files.
    lines[1] = lines[1]:gsub("DeviceSecret", "fw,fw_sha256")
    lines[2] = lines[2]:gsub("\r?$", ",x%0", 1)
    h.write(path, table.concat(lines, "\n") .. "\n")
    local st, out = run_verify(dir .. "/out")
    assert.equal("1 unit: 1 good, 0 bad\n", out)
    assert.equal(0, st)
  end)

  it("refuses a manifest whose header is neither kind", function()
    h.write(dir .. "/manifest.csv", "serial,nvs,sha256\n1,a.bin,00\n")
    local st, out, err = run_verify(dir)
    assert.equal(1, st)
    assert.equal("", out)
    assert.equal("nvs_tool: " .. dir .. "/manifest.csv: no header with columns serial,image,size,sha256, or"
      .. " serial,NAME,NAME_sha256,... (whole units)\n", err)
  end)
end)
