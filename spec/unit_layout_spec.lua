-- nvsgen.unit_layout: a unit's partitions and the files it is written as.
local unit_layout = require("nvsgen.unit_layout")
local partition_table = require("nvsgen.partition_table")
local crypto = require("nvsgen.crypto")
local nvsgen = require("nvsgen")

local TABLE = table.concat({
  "nvs,      data, nvs,      ,  0x6000",
  "fctry,    data, nvs,      ,  0x6000",
  "nvs_keys, data, nvs_keys, ,  0x1000, encrypted",
  "factory,  app,  factory,  ,  1M",
}, "\n")

local function two(opts)
  local fields = {
    partitions = { { label = "fctry", encrypt = true }, { label = "nvs", encrypt = true } },
    table = assert(partition_table.parse(TABLE, "two.csv")), table_name = "two.csv",
    prefix = "out/",
  }
  for k, v in pairs(opts or {}) do fields[k] = v end
  return unit_layout.new(fields)
end

describe("unit_layout", function()
  it("places the recipe's partitions and keys as the table says", function()
    local layout = assert(two())
    assert.same({ "fctry", 0xF000, 0x6000, 2, true },
      { layout.parts[1].label, layout.parts[1].offset, layout.parts[1].size, layout.parts[1].version,
        layout.parts[1].encrypted })
    assert.same({ "nvs", 0x9000 }, { layout.parts[2].label, layout.parts[2].offset })
    assert.same({ "nvs_keys", 0x15000, 0x1000 }, { layout.keys.label, layout.keys.offset, layout.keys.size })
    assert.is_true(layout:keygen())
    assert.same({ "serial", "fctry", "fctry_sha256", "nvs", "nvs_sha256", "nvs_keys", "nvs_keys_sha256",
      "flash_args", "flash_args_sha256" }, layout:columns())
    assert.same({ "unit-7-fctry.bin", "unit-7-nvs.bin", "unit-7-nvs_keys.bin", "unit-7.flash_args" },
      layout:file_names(7))
  end)

  it("writes each unit's images, keys, argument file, merged and HEX files", function()
    local layout = assert(two{ merged = true, hex = true, name = "dev-%04d.bin" })
    local key = crypto.generate_key()
    layout:begin(key)
    layout.by_label.fctry.partition:namespace("identity"):u32("serial", 42)
    layout.by_label.nvs.partition:namespace("settings"):u8("volume", 5)
    local files, row = assert(layout:outputs(42, key))
    local names, by_name = {}, {}
    for i, f in ipairs(files) do names[i] = f.name; by_name[f.name] = f end
    assert.same({ "dev-0042-fctry.bin", "dev-0042-nvs.bin", "dev-0042-nvs_keys.bin", "dev-0042.flash_args",
      "dev-0042.merged.bin", "dev-0042.hex" }, names)
    assert.equal("0x9000 out/dev-0042-nvs.bin\n0xf000 out/dev-0042-fctry.bin\n0x15000 out/dev-0042-nvs_keys.bin\n",
      by_name["dev-0042.flash_args"].data)
    -- Each file is in the row with its SHA-256.
    for i, f in ipairs(files) do
      assert.same({ f.name, crypto.sha256_hex(f.data) }, { row[2 * i - 1], row[2 * i] })
    end
    -- The keys page holds the unit's key, and each image reads back with it.
    local keys = by_name["dev-0042-nvs_keys.bin"]
    assert.same({ key, 384 }, { crypto.parse_keys_partition(keys.data), keys.mode })
    local fctry = nvsgen.read(assert(crypto.decrypt_image(by_name["dev-0042-fctry.bin"].data, key)))
    assert.equal(42, fctry.namespaces.identity.serial)
    local nvs = nvsgen.read(assert(crypto.decrypt_image(by_name["dev-0042-nvs.bin"].data, key)))
    assert.equal(5, nvs.namespaces.settings.volume)
    -- The merged file: nvs at 0, fctry at 0x6000, keys at 0xC000; secret.
    local merged = by_name["dev-0042.merged.bin"]
    assert.equal(384, merged.mode)
    assert.equal(by_name["dev-0042-nvs.bin"].data .. by_name["dev-0042-fctry.bin"].data .. keys.data, merged.data)
    assert.equal(384, by_name["dev-0042.hex"].mode)
    assert.equal(":020000040000FA", by_name["dev-0042.hex"].data:sub(1, 15))
  end)

  it("keeps plain partitions plain and shares a keys file given", function()
    local dir = os.tmpname()
    local f = assert(io.open(dir, "wb"))
    local key = crypto.generate_key()
    f:write(crypto.keys_partition(key))
    f:close()
    local layout = assert(two{ partitions = { { label = "fctry", encrypt = true }, { label = "nvs" } },
      inputkey = dir })
    assert.is_false(layout:keygen())
    assert.is_false(layout.parts[2].encrypted)
    assert.same({ "unit-1-fctry.bin", "unit-1-nvs.bin", "unit-1.flash_args" }, layout:file_names(1))
    layout:begin()
    layout.by_label.fctry.partition:namespace("identity"):u8("x", 1)
    layout.by_label.nvs.partition:namespace("settings"):u8("y", 2)
    local files, row = assert(layout:outputs(1))
    assert.equal(3, #files)
    assert.equal(dir, row[5])
    assert.truthy(files[3].data:find("0x15000 " .. dir .. "\n", 1, true))
    assert.equal(1, nvsgen.read(assert(crypto.decrypt_image(files[1].data, key))).namespaces.identity.x)
    assert.equal(2, nvsgen.read(files[2].data).namespaces.settings.y)
    os.remove(dir)
  end)

  it("gives one line for a partition the table lacks or types otherwise", function()
    local _, err = two{ partitions = { { label = "fctry" }, { label = "storage" } } }
    assert.equal("two.csv: no partition named 'storage'", err)
    _, err = two{ partitions = { { label = "factory" } } }
    assert.equal("two.csv:4: partition 'factory' is app,factory; NVS images need a data,nvs partition", err)
    _, err = two{ keys = "nvs" }
    assert.equal("two.csv:1: partition 'nvs' is data,nvs; the keys of encrypted NVS partitions need a"
      .. " data,nvs_keys partition", err)
    _, err = two{ partitions = { { label = "fctry", size = 0x5000 } } }
    assert.equal("recipe partition 'fctry': size 0x5000 differs from 0x6000 in two.csv", err)
    _, err = two{ partitions = { { label = "fctry", sise = 0x5000 } } }
    assert.equal("recipe partitions[1]: unknown field 'sise'", err)
    _, err = two{ partitions = { { label = "fctry" }, { label = "fctry" } } }
    assert.equal("recipe partition 'fctry' is listed twice", err)
    _, err = unit_layout.new{ partitions = { { label = "a", size = 0x3000 } }, merged = true }
    assert.equal("--merged needs every partition's offset: give a partition table", err)
    _, err = unit_layout.new{ partitions = { { label = "a" } } }
    assert.equal("recipe partition 'a' has no size: give one, or a partition table", err)
    _, err = unit_layout.new{ partitions = { { label = "a", size = 0x3000, offset = 0x9000 },
      { label = "b", size = 0x3000, offset = 0xA000 } } }
    assert.equal("partition 'b' at 0xA000 overlaps partition 'a' (0x9000 to 0xBFFF)", err)
    _, err = unit_layout.new{ partitions = { { label = "a", size = 0x3000, encrypt = true } },
      table = assert(partition_table.parse("a,data,nvs,,0x3000\n", "t.csv")), table_name = "t.csv" }
    assert.equal("t.csv: no data,nvs_keys partition for the keys of the encrypted partitions", err)
  end)

  it("refuses offsets off a 4 KiB sector and a keys partition smaller than the keys page", function()
    local function new(parts, keys)
      return unit_layout.new{ partitions = parts, keys = keys, encrypt = true }
    end
    assert.same({ nil, "recipe partition 'a': offset 0x9100 is not a multiple of 4096" },
      { new({ { label = "a", size = 0x3000, offset = 0x9100 } }, { offset = 0xF000 }) })
    assert.same({ nil, "recipe partition 'nvs_keys': offset 0x10800 is not a multiple of 4096" },
      { new({ { label = "a", size = 0x3000, offset = 0x9000 } }, { offset = 0x10800 }) })
    assert.same({ nil, "keys partition 'k': size 2048; the keys page needs 0x1000" },
      { new({ { label = "a", size = 0x3000, offset = 0x9000 } }, { label = "k", offset = 0xC000, size = 0x800 }) })
    local small = assert(partition_table.parse("a,data,nvs,,0x3000\nk,data,nvs_keys,,0x800\n", "s.csv"))
    assert.same({ nil, "s.csv:2: keys partition 'k' is 0x800 bytes; the keys page needs 0x1000" },
      { unit_layout.new{ partitions = { { label = "a" } }, encrypt = true, table = small, table_name = "s.csv" } })
    assert(new({ { label = "a", size = 0x3000, offset = 0x9000 } }, { offset = 0xC000 }))
  end)

  it("refuses a keys label that cannot be a file name part, with or without a table", function()
    local parts = { { label = "a", size = 0x3000, offset = 0x9000, encrypt = true } }
    local _, err = unit_layout.new{ partitions = parts, keys = { label = "x/y", offset = 0xC000 } }
    assert.equal("keys partition 'x/y': label must be 1 to 16 letters, digits, '_' or '-'", err)
    _, err = unit_layout.new{ partitions = parts, keys = "nvs_keys_of_the_unit" }
    assert.equal("keys partition 'nvs_keys_of_the_unit': label must be 1 to 16 letters, digits, '_' or '-'", err)
    local tbl = assert(partition_table.parse("a,data,nvs,,0x3000\nk/1,data,nvs_keys,,0x1000\n", "s.csv"))
    _, err = unit_layout.new{ partitions = { { label = "a", encrypt = true } }, table = tbl, table_name = "s.csv" }
    assert.equal("keys partition 'k/1': label must be 1 to 16 letters, digits, '_' or '-'", err)
  end)

  it("refuses --merged when a partition the unit does not write lies between its partitions", function()
    local between = assert(partition_table.parse("nvs,data,nvs,,0x6000\nphy,data,phy,,0x1000\n"
      .. "fctry,data,nvs,,0x6000\nnvs_keys,data,nvs_keys,,0x1000\nfactory,app,factory,,1M\n", "b.csv"))
    local parts = { { label = "fctry", encrypt = true }, { label = "nvs", encrypt = true } }
    assert.same({ nil, "--merged: b.csv:2: partition 'phy' (data,phy at 0xF000) lies between the unit's partitions,"
      .. " and the merged file would erase it; flash with the unit's flash_args or --hex instead" },
      { unit_layout.new{ partitions = parts, table = between, table_name = "b.csv", merged = true } })
    -- Only the written ranges go to the argument file and the HEX file.
    assert(unit_layout.new{ partitions = parts, table = between, table_name = "b.csv", hex = true })
    -- After the last partition the unit writes, the app is safe.
    assert(two{ merged = true })
  end)

  it("names the table's line for an NVS partition that is not whole pages", function()
    local odd = assert(partition_table.parse("nvs,data,nvs,,0x6800\nfctry,data,nvs,,0x6000\n", "odd.csv"))
    assert.same({ nil, "odd.csv:1: partition 'nvs' is 0x6800 bytes, not a multiple of 4096" },
      { unit_layout.new{ partitions = { { label = "fctry" }, { label = "nvs" } }, table = odd,
        table_name = "odd.csv" } })
  end)

  it("takes partitions by label too, in label order", function()
    local layout = assert(unit_layout.new{ partitions = { zeta = { size = 0x3000 }, alpha = { size = 0x4000 } } })
    assert.same({ "alpha", "zeta" }, { layout.parts[1].label, layout.parts[2].label })
    assert.is_false(layout.placed)
    assert.same({ "serial", "alpha", "alpha_sha256", "zeta", "zeta_sha256" }, layout:columns())
  end)

  it("tells what a batch does with a unit from the folder and the manifest", function()
    local layout = assert(two())
    local present = {}
    local function exists(name) return present[name] end
    local function shown(name) return "out/" .. name end
    assert.equal("build", layout:status(1, false, exists, false, shown, "manifest.csv"))
    present["unit-1-nvs.bin"] = true
    local _, err = layout:status(1, false, exists, false, shown, "manifest.csv")
    assert.equal("unit 1: out/unit-1-nvs.bin already exists and is not in manifest.csv; use --force to"
      .. " overwrite it", err)
    assert.equal("build", layout:status(1, false, exists, true, shown, "manifest.csv"))
    -- Recorded: every file there, or pending, else an error.
    present = { ["unit-1-fctry.bin"] = true, ["unit-1-nvs.bin.part"] = true, ["unit-1-nvs_keys.bin.part"] = true,
      ["unit-1.flash_args"] = true }
    local status, pending = layout:status(1, true, exists, false, shown, "manifest.csv")
    assert.equal("finish", status)
    assert.same({ "unit-1-nvs.bin", "unit-1-nvs_keys.bin" }, pending)
    present["unit-1-nvs.bin.part"] = nil
    _, err = layout:status(1, true, exists, false, shown, "manifest.csv")
    assert.equal("unit 1: recorded in manifest.csv but out/unit-1-nvs.bin is missing; use --force to build it"
      .. " again", err)
    present = { ["unit-1-fctry.bin"] = true, ["unit-1-nvs.bin"] = true, ["unit-1-nvs_keys.bin"] = true,
      ["unit-1.flash_args"] = true }
    assert.equal("skip", layout:status(1, true, exists, false, shown, "manifest.csv"))
  end)
end)
