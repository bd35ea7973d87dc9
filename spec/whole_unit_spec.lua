-- Whole units through the recipe command line: several partitions placed
-- by a partition table, the keys partition per unit, esptool's argument
-- file, the merged binary and Intel HEX, the manifest row, and resuming.
local lfs = require("lfs")
local helper = require("spec.support.helper")
local recipes = require("spec.support.recipes")
local recipe = require("nvsgen.recipe")
local crypto = require("nvsgen.crypto")
local nvsgen = require("nvsgen")

local ROOT = helper.ROOT
local EXAMPLE = ROOT .. "/examples/two_partitions.lua"

-- The bytes by address of an Intel HEX text, every checksum checked.
local function hex_bytes(text)
  local bytes, base, count = {}, 0, 0
  for line in text:gmatch("([^\n]*)\n") do
    local raw = {}
    for h in line:sub(2):gmatch("%x%x") do raw[#raw + 1] = tonumber(h, 16) end
    local sum = 0
    for _, b in ipairs(raw) do sum = sum + b end
    assert.equal(0, sum & 0xFF, line)
    if raw[4] == 4 then
      base = (raw[5] << 8 | raw[6]) << 16
    elseif raw[4] == 0 then
      local addr = base + (raw[2] << 8 | raw[3])
      for i = 1, raw[1] do
        bytes[addr + i - 1] = raw[4 + i]
        count = count + 1
      end
    end
  end
  return bytes, count
end

-- A recipe of two partitions on `table_text` (written beside it in dir).
local function two_recipe(dir, table_text, fields)
  local f = assert(io.open(dir .. "/parts.csv", "w"))
  f:write(table_text)
  f:close()
  local r = {
    partition_table = "parts.csv",
    partitions = { { label = "fctry", encrypt = true }, { label = "nvs", encrypt = true } },
    unit = function(u)
      u:partition("fctry"):namespace("identity"):u32("Serial", u.serial)
      u:partition("nvs"):namespace("settings"):u8("Volume", 5)
    end,
  }
  for k, v in pairs(fields or {}) do r[k] = v end
  local def = recipe.define(r)
  def.dir = dir
  return def
end

local TABLE = "nvs,data,nvs,,0x6000\nfctry,data,nvs,,0x6000\nnvs_keys,data,nvs_keys,,0x1000\n"
  .. "factory,app,factory,,1M\n"

describe("whole units", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  it("writes pending files new, with core.write_file's named ways", function()
    local core = require("nvsgen.core")
    local folder = assert(core.folder(tmp))
    assert.is_true(core.write_file("a.part", "secret", 384, "new", folder))
    assert.equal("rw-------", lfs.attributes(tmp .. "/a.part", "permissions"))
    assert.same({ nil, tmp .. "/a.part: already exists", 17 }, { core.write_file("a.part", "x", 384, "new", folder) })
    assert.is_true(core.write_file("a.part", "over", 420, "direct", folder))
    assert.equal("over", helper.read(tmp .. "/a.part"))
    assert.has_error(function() core.write_file("b", "x", 420, "sideways", folder) end)
    folder:close()
  end)

  it("two_partitions.lua: per unit fctry, nvs, keys, flash_args, merged and HEX", function()
    local status, out, err = recipes.run(EXAMPLE, { "--serial-range", "1000-1002", "--outdir", "out", "--merged",
      "--hex" }, tmp)
    assert.equal(0, status, err)
    assert.truthy(out:find("flash a unit: esptool.py write_flash @out/unit-1000.flash_args\n", 1, true), out)
    local rows = recipes.manifest(tmp .. "/out/manifest.csv")
    assert.equal(3, #rows)
    for _, row in ipairs(rows) do
      local stem = tmp .. "/out/unit-" .. row.serial
      local files = {}
      for _, col in ipairs({ "fctry", "nvs", "nvs_keys", "flash_args", "merged", "hex" }) do
        files[col] = helper.read(tmp .. "/out/" .. row[col])
        assert.equal(row[col .. "_sha256"], crypto.sha256_hex(files[col]), col)
      end
      assert.equal(("out/unit-%s-nvs.bin"):format(row.serial), "out/" .. row.nvs)
      assert.equal(("0x9000 out/unit-%d-nvs.bin\n0xf000 out/unit-%d-fctry.bin\n0x15000 out/unit-%d-nvs_keys.bin\n")
        :format(row.serial, row.serial, row.serial), files.flash_args)
      -- Each partition reads back with the unit's own keys partition.
      local key = assert(crypto.parse_keys_partition(files.nvs_keys))
      local fctry = nvsgen.read(assert(crypto.decrypt_image(files.fctry, key)))
      assert.equal(tonumber(row.serial), fctry.namespaces.identity.Serial)
      assert.equal(row.DeviceSecret, fctry.namespaces.identity.DeviceSecret)
      local nvs = nvsgen.read(assert(crypto.decrypt_image(files.nvs, key)))
      assert.equal(5, nvs.namespaces.settings.Volume)
      -- The merged file: each image at its offset from 0x9000, nothing after the keys.
      assert.equal(0x16000 - 0x9000, #files.merged)
      assert.equal(files.nvs, files.merged:sub(1, 0x6000))
      assert.equal(files.fctry, files.merged:sub(0x6001, 0xC000))
      assert.equal(files.nvs_keys, files.merged:sub(0xC001, 0xD000))
      -- The HEX: exactly the bytes of the three files at their offsets.
      local bytes, count = hex_bytes(files.hex)
      assert.equal(0xD000, count)
      for at, data in pairs({ [0x9000] = files.nvs, [0xF000] = files.fctry, [0x15000] = files.nvs_keys }) do
        for i = 1, #data, 97 do assert(bytes[at + i - 1] == data:byte(i), ("0x%X"):format(at + i - 1)) end
        assert(bytes[at + #data - 1] == data:byte(#data))
      end
      assert.equal("rw-------", lfs.attributes(stem .. "-nvs_keys.bin", "permissions"))
      assert.equal("rw-------", lfs.attributes(stem .. ".merged.bin", "permissions"))
    end
  end)

  it("works from another folder, naming files as given", function()
    local status, out, err = recipes.run(EXAMPLE, { "--serial-range", "5", "--outdir", "a/b" }, tmp)
    assert.equal(0, status, err)
    assert.truthy(out:find("esptool.py write_flash @a/b/unit-5.flash_args", 1, true))
    assert.equal("0x9000 a/b/unit-5-nvs.bin\n0xf000 a/b/unit-5-fctry.bin\n0x15000 a/b/unit-5-nvs_keys.bin\n",
      helper.read(tmp .. "/a/b/unit-5.flash_args"))
    assert.is_nil(lfs.attributes(tmp .. "/a/b/unit-5.merged.bin"))
  end)

  it("gives one line for a label the table lacks or types otherwise", function()
    local r = two_recipe(tmp, "fctry,data,nvs,,0x6000\nnvs,app,factory,0x10000,1M\nkeys,data,nvs_keys,,0x1000\n")
    local status, _, err = recipes.run(r, { "--serial-range", "1", "--outdir", "o" }, tmp)
    assert.equal(1, status)
    assert.equal("recipe: " .. tmp .. "/parts.csv:2: partition 'nvs' is app,factory; NVS images need a"
      .. " data,nvs partition\n", err)
    r = two_recipe(tmp, "fctry,data,nvs,,0x6000\nkeys,data,nvs_keys,,0x1000\n")
    status, _, err = recipes.run(r, { "--serial-range", "1", "--outdir", "o" }, tmp)
    assert.equal(1, status)
    assert.equal("recipe: " .. tmp .. "/parts.csv: no partition named 'nvs'\n", err)
    assert.is_nil(lfs.attributes(tmp .. "/o"))
  end)

  it("names the unit and the label when a unit selects a partition the recipe lacks", function()
    local r = two_recipe(tmp, TABLE, { unit = function(u) u:partition("nvs"):partition("storage") end })
    local status, _, err = recipes.run(r, { "--serial-range", "4", "--outdir", "o" }, tmp)
    assert.equal(1, status)
    assert.matches("^recipe: unit 4: .*whole_unit_spec%.lua:%d+: partition 'storage' is not one of the recipe's"
      .. " partitions\n$", err)
    assert.same({ "manifest.csv" }, helper.listing(tmp .. "/o"))
  end)

  it("places partitions and keys by the recipe's offsets without a table", function()
    local r = recipe.define{
      partitions = { { label = "a", size = 0x3000, offset = 0x9000 },
        { label = "b", size = 0x2000, offset = 0xC000, encrypt = true } },
      keys = { label = "k", offset = 0xE000 },
      unit = function(u) u:namespace("x"):u8("v", 1):partition("b"):namespace("y"):u8("w", 2) end,
    }
    local status, out, err = recipes.run(r, { "--serial-range", "1", "--outdir", "o", "--merged" }, tmp)
    assert.equal(0, status, err)
    assert.truthy(out:find("write_flash @o/unit-1.flash_args", 1, true))
    assert.equal("0x9000 o/unit-1-a.bin\n0xc000 o/unit-1-b.bin\n0xe000 o/unit-1-k.bin\n",
      helper.read(tmp .. "/o/unit-1.flash_args"))
    local a, b = helper.read(tmp .. "/o/unit-1-a.bin"), helper.read(tmp .. "/o/unit-1-b.bin")
    local keys = helper.read(tmp .. "/o/unit-1-k.bin")
    -- b is read-only (0x2000): one page written, 0xFF up to the keys.
    assert.equal(0x1000, #b)
    assert.equal(a .. b .. ("\xFF"):rep(0x1000) .. keys, helper.read(tmp .. "/o/unit-1.merged.bin"))
    assert.equal(1, nvsgen.read(a).namespaces.x.v)
    local key = assert(crypto.parse_keys_partition(keys))
    assert.equal(2, nvsgen.read(assert(crypto.decrypt_image(b, key))).namespaces.y.w)
  end)

  it("resumes a unit recorded with files pending, and refuses one with a file missing", function()
    local r = two_recipe(tmp, TABLE)
    assert.equal(0, (recipes.run(r, { "--serial-range", "1-3", "--outdir", "o", "--hex" }, tmp)))
    -- As if killed after the record, before the renames.
    assert(os.rename(tmp .. "/o/unit-2-nvs.bin", tmp .. "/o/unit-2-nvs.bin.part"))
    assert(os.rename(tmp .. "/o/unit-2.hex", tmp .. "/o/unit-2.hex.part"))
    local status, out, err = recipes.run(r, { "--serial-range", "1-3", "--outdir", "o", "--hex" }, tmp)
    assert.equal(0, status, err)
    assert.truthy(out:find("3 units: 0 written, 3 already done (1 completed)", 1, true), out)
    assert.truthy(lfs.attributes(tmp .. "/o/unit-2-nvs.bin"))
    assert.is_nil(lfs.attributes(tmp .. "/o/unit-2.hex.part"))
    os.remove(tmp .. "/o/unit-3-nvs_keys.bin")
    status, out, err = recipes.run(r, { "--serial-range", "1-3", "--outdir", "o", "--hex" }, tmp)
    assert.equal(1, status, out)
    assert.equal("recipe: unit 3: recorded in manifest.csv but o/unit-3-nvs_keys.bin is missing; use --force to"
      .. " build it again\n", err)
  end)
  it("refuses a keys partition smaller than the keys page, writing nothing", function()
    local r = two_recipe(tmp, "nvs,data,nvs,,0x6000\nfctry,data,nvs,,0x6000\nnvs_keys,data,nvs_keys,,0x800\n")
    local status, _, err = recipes.run(r, { "--serial-range", "1", "--outdir", "o", "--merged" }, tmp)
    assert.equal(1, status)
    assert.equal("recipe: " .. tmp .. "/parts.csv:3: keys partition 'nvs_keys' is 0x800 bytes; the keys page needs"
      .. " 0x1000\n", err)
    assert.is_nil(lfs.attributes(tmp .. "/o"))
  end)

  it("refuses to resume with other offsets, output folder spelling, sizes or versions", function()
    local r = two_recipe(tmp, TABLE)
    assert.equal(0, (recipes.run(r, { "--serial-range", "1-2", "--outdir", "o", "--merged" }, tmp)))
    local before = helper.listing(tmp .. "/o")
    local hint = "; run with the same options, use another --outdir, or --force to make the units again\n"
    local function refused(rec, outdir, want)
      local status, out, err = recipes.run(rec, { "--serial-range", "1-4", "--outdir", outdir, "--merged" }, tmp)
      assert.equal(1, status, out)
      assert.equal("recipe: " .. outdir .. "/manifest.csv: unit 1: " .. want .. hint, err)
      assert.same(before, helper.listing(tmp .. "/o"))
    end
    -- The app first moves every NVS partition.
    refused(two_recipe(tmp, "factory,app,factory,0x10000,1M\n" .. TABLE:gsub("factory,app,factory,,1M\n", "")), "o",
      "its unit-1.flash_args says '0x9000 o/unit-1-nvs.bin', this run gives '0x110000 o/unit-1-nvs.bin'")
    refused(two_recipe(tmp, TABLE), tmp .. "/o",
      "its unit-1.flash_args says '0x9000 o/unit-1-nvs.bin', this run gives '0x9000 " .. tmp .. "/o/unit-1-nvs.bin'")
    refused(two_recipe(tmp, "nvs,data,nvs,0x9000,0x5000\nfctry,data,nvs,0xf000,0x6000\n"
      .. "nvs_keys,data,nvs_keys,0x15000,0x1000\n"), "o",
      "unit-1-nvs.bin is 0x6000 bytes, this run's partition 'nvs' 0x5000")
    refused(two_recipe(tmp, TABLE, { partitions = { { label = "fctry", encrypt = true },
      { label = "nvs", encrypt = true, version = 1 } } }), "o",
      "unit-1-nvs.bin was made with version 2, this run's partition 'nvs' asks for 1")
    -- As it was made, it resumes.
    local status, out, err = recipes.run(two_recipe(tmp, TABLE), { "--serial-range", "1-4", "--outdir", "o",
      "--merged" }, tmp)
    assert.equal(0, status, err)
    assert.truthy(out:find("4 units: 2 written, 2 already done", 1, true), out)
  end)
  it("refuses to resume with fewer files per unit (no --merged, --hex), with or without exports", function()
    local cols = "serial,fctry,fctry_sha256,nvs,nvs_sha256,nvs_keys,nvs_keys_sha256,flash_args,flash_args_sha256"
    for _, exports in ipairs({ {}, { "Secret" } }) do
      local r = two_recipe(tmp, TABLE, { exports = exports, unit = function(u)
        u:partition("fctry"):namespace("identity"):u32("Serial", u.serial)
        if exports[1] then u:export("Secret", "s" .. u.serial) end
      end })
      local made = cols .. ",merged,merged_sha256,hex,hex_sha256" .. (exports[1] and ",Secret" or "")
      assert.equal(0, (recipes.run(r, { "--serial-range", "1-2", "--outdir", "o", "--merged", "--hex" }, tmp)))
      local before = helper.listing(tmp .. "/o")
      local status, _, err = recipes.run(r, { "--serial-range", "1-4", "--outdir", "o" }, tmp)
      assert.equal(1, status)
      assert.equal(("recipe: o/manifest.csv: its units were made as other files (columns %s), this run makes %s;"
        .. " run with the same options, or use another --outdir\n"):format(made, cols), err)
      assert.same(before, helper.listing(tmp .. "/o"))
      helper.cleanup(tmp .. "/o")
    end
  end)

  it("refuses to resume --inputkey batches when the keys file holds other keys", function()
    local r = two_recipe(tmp, TABLE)
    helper.write(tmp .. "/k.bin", crypto.keys_partition(crypto.generate_key()))
    local argv = { "--serial-range", "1-2", "--outdir", "o", "--encrypt", "--inputkey", "k.bin" }
    assert.equal(0, (recipes.run(r, argv, tmp)))
    local was = helper.read(tmp .. "/k.bin")
    helper.write(tmp .. "/k.bin", crypto.keys_partition(crypto.generate_key()))
    argv[2] = "1-4"
    local status, out, err = recipes.run(r, argv, tmp)
    assert.equal(1, status, out)
    assert.equal("recipe: o/manifest.csv: unit 1 was made with other keys than k.bin holds now; run with the same"
      .. " options, use another --outdir, or --force to make the units again\n", err)
    assert.is_nil(lfs.attributes(tmp .. "/o/unit-3-nvs.bin"))
    helper.write(tmp .. "/k.bin", was)
    status, out, err = recipes.run(r, argv, tmp)
    assert.equal(0, status, err)
    assert.truthy(out:find("4 units: 2 written, 2 already done", 1, true), out)
  end)
  it("does not follow a link planted at a recorded image when checking a rerun", function()
    local r = two_recipe(tmp, TABLE)
    assert.equal(0, (recipes.run(r, { "--serial-range", "1-2", "--outdir", "o" }, tmp)))
    helper.write(tmp .. "/elsewhere", "12345")
    assert(os.remove(tmp .. "/o/unit-1-fctry.bin"))
    assert(lfs.link(tmp .. "/elsewhere", tmp .. "/o/unit-1-fctry.bin", true))
    local v1 = two_recipe(tmp, TABLE, { partitions = { { label = "fctry", encrypt = true, version = 1 },
      { label = "nvs", encrypt = true } } })
    local status, out, err = recipes.run(v1, { "--serial-range", "1-3", "--outdir", "o" }, tmp)
    assert.equal(1, status, out)
    assert.equal("recipe: o/manifest.csv: unit 2: unit-2-fctry.bin was made with version 2, this run's partition"
      .. " 'fctry' asks for 1; run with the same options, use another --outdir, or --force to make the units again\n",
      err)
  end)
  it("places partitions without an offset after a table moved by --partition-table-offset", function()
    local r = two_recipe(tmp, TABLE)
    local status, _, err = recipes.run(r, { "--serial-range", "1", "--outdir", "o", "--partition-table-offset",
      "0x10000" }, tmp)
    assert.equal(0, status, err)
    assert.equal("0x11000 o/unit-1-nvs.bin\n0x17000 o/unit-1-fctry.bin\n0x1d000 o/unit-1-nvs_keys.bin\n",
      helper.read(tmp .. "/o/unit-1.flash_args"))
    r = two_recipe(tmp, TABLE, { partition_table_offset = 0xC000 })
    assert.equal(0, (recipes.run(r, { "--serial-range", "1", "--outdir", "p" }, tmp)))
    assert.equal("0xd000 p/unit-1-nvs.bin\n0x13000 p/unit-1-fctry.bin\n0x19000 p/unit-1-nvs_keys.bin\n",
      helper.read(tmp .. "/p/unit-1.flash_args"))
    for _, case in ipairs({ { "0x10800", "partition table offset 0x10800 is not a multiple of 4096" },
      { "zz", "--partition-table-offset: 'zz' is not a number" } }) do
      status, _, err = recipes.run(r, { "--serial-range", "1", "--outdir", "q", "--partition-table-offset", case[1] },
        tmp)
      assert.equal(2, status)
      assert.equal("recipe: " .. case[2], err:match("\n(.*)\n$"))
    end
    assert.is_nil(lfs.attributes(tmp .. "/q"))
  end)
  it("resumes a unit whose small partition's image holds only the pages it uses", function()
    local r = two_recipe(tmp, "nvs,data,nvs,,0x2000\nfctry,data,nvs,,0x6000\nnvs_keys,data,nvs_keys,,0x1000\n")
    assert.equal(0, (recipes.run(r, { "--serial-range", "1", "--outdir", "o", "--merged" }, tmp)))
    assert.equal(0x1000, #helper.read(tmp .. "/o/unit-1-nvs.bin"))
    local status, out, err = recipes.run(r, { "--serial-range", "1-2", "--outdir", "o", "--merged" }, tmp)
    assert.equal(0, status, err)
    assert.truthy(out:find("2 units: 1 written, 1 already done", 1, true), out)
  end)
end)
