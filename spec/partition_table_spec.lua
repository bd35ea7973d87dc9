-- nvsgen.partition_table: ESP-IDF partitions.csv.
local pt = require("nvsgen.partition_table")

describe("partition_table", function()
  it("reads sizes as decimal, hex, K and M", function()
    assert.equal(0x6000, pt.parse_number("0x6000"))
    assert.equal(24 * 1024, pt.parse_number("24K"))
    assert.equal(1024 * 1024, pt.parse_number(" 1M "))
    assert.equal(4096, pt.parse_number("4096"))
    assert.is_nil(pt.parse_number("12Q"))
    assert.is_nil(pt.parse_number(""))
  end)

  it("reads numbers as gen_esp32part.py's int(text, 0) and its K and M suffixes do", function()
    local accepted = { ["16 K"] = 16384, ["1_000"] = 1000, ["00"] = 0, ["0_0"] = 0, ["0x_ff"] = 255,
      ["0X1f"] = 31, ["0o17"] = 15, ["0b101"] = 5, ["+16"] = 16, ["1kk"] = 1048576, ["0x10 M"] = 16 << 20 }
    for text, n in pairs(accepted) do assert.equal(n, pt.parse_number(text), text) end
    for _, text in ipairs({ "010", "0x__ff", "1__0", "_1", "1_", "0x", "K", "0xK", "1.5K", "+ 5", "-16",
      "99999999999999999999", "0x1FFFFFFFFFFFFF" }) do
      assert.is_nil(pt.parse_number(text), text)
    end
  end)

  it("refuses what int(text, 0) and the suffixes refuse: a K or M past 2^53, blanks inside a suffix run", function()
    -- 2^44 + 1 mebibytes is 2^64 + 1 MiB: no number wraps into a small one
    for _, text in ipairs({ "0x100000000000M", "0x100000000001M", "17592186044417M", "0x7FFFFFFFFFFFFM",
      "1k k", "1M k" }) do
      assert.is_nil(pt.parse_number(text), text)
    end
    assert.equal(1 << 20, pt.parse_number("1 kk"))
    assert.equal(0x10000, pt.parse_number("0x00000000000000010000"))
    assert.equal(0, pt.parse_number("0000000000000000000000"))
    assert.equal(5, pt.parse_number("0b" .. ("0"):rep(60) .. "101"))
    assert.equal(8191 << 40, pt.parse_number("8191MM"))
    assert.is_nil(pt.parse_number("8191 M M"))
    local _, err = pt.parse("nvs, data, nvs, 0x9000, 17592186044417M\n", "p.csv")
    assert.equal("p.csv:1: partition 'nvs': invalid size '17592186044417M'", err)
    -- A negative size (where the partition ends) takes one '-' and its
    -- number right after it, as int(text, 0) does.
    for _, size in ipairs({ "-+0x10000", "- 0x10000", "-  64K" }) do
      _, err = pt.parse("nvs, data, nvs, 0x9000, " .. size .. "\n", "p.csv")
      assert.equal("p.csv:1: partition 'nvs': invalid size '" .. size .. "'", err)
    end
    local list = assert(pt.parse("nvs, data, nvs, 0x9000, -0x10000\n", "p.csv"))
    assert.equal(0x7000, list[1].size)
  end)

  it("places partitions without an offset as ESP-IDF does", function()
    local list = assert(pt.parse(table.concat({
      "# Name,   Type, SubType, Offset,  Size, Flags",
      "nvs,      data, nvs,     ,        0x6000,",
      "phy_init, data, phy,     ,        0x1000,",
      "factory,  app,  factory, ,        1M,",
      "",
      "storage,  data, spiffs,  ,        24K, readonly",
    }, "\n")))
    assert.equal(4, #list)
    assert.same({ 0x9000, 0x6000 }, { list[1].offset, list[1].size })
    assert.same({ 0xF000, 0x1000 }, { list[2].offset, list[2].size })
    -- App partitions are aligned to 64 KiB.
    assert.same({ 0x10000, 0x100000 }, { list[3].offset, list[3].size })
    assert.same({ 0x110000, 0x6000 }, { list[4].offset, list[4].size })
    assert.is_true(list[4].flags.readonly)
    assert.equal(0x02, list[1].subtype_id)
    local nvs = assert(pt.find(list, "nvs"))
    assert.equal("nvs", nvs.name)
  end)

  it("takes explicit offsets and follows them", function()
    local list = assert(pt.parse("nvs,data,nvs,0x10000,0x4000\nkeys,data,nvs_keys,,0x1000,encrypted\n"))
    assert.equal(0x10000, list[1].offset)
    assert.equal(0x14000, list[2].offset)
    assert.equal(0x04, list[2].subtype_id)
  end)

  it("takes the table's own offset as an option, and no unknown option", function()
    local list = assert(pt.parse("nvs,data,nvs,,0x6000\n", "p.csv", { table_offset = 0xA000 }))
    assert.equal(0xB000, list[1].offset)
    local ok, err = pcall(function() pt.parse("nvs,data,nvs,,0x6000\n", "p.csv", { tabel_offset = 0xA000 }) end)
    assert.is_false(ok)
    assert.equal("partition_table_spec.lua", err:match("([^/]+):%d+: "))
    assert.equal("partition_table.parse: unknown option 'tabel_offset'", (err:gsub("^[^:]+:%d+: ", "")))
  end)

  it("names the file, line and partition in its messages", function()
    local _, err = pt.parse("nvs,data,nvs,0x9100,0x6000\n", "p.csv")
    assert.equal("p.csv:1: partition 'nvs': offset 0x9100 is not aligned to 0x1000", err)
    _, err = pt.parse("# t\nnvs,data,nvs,,0x6000\nphy,data,phy,0xA000,0x1000\n", "p.csv")
    assert.equal("p.csv:3: partition 'phy': offset 0xA000 overlaps the previous partition (ends at 0xF000)",
      err)
    _, err = pt.parse("nvs,data,nvs,,lots\n", "p.csv")
    assert.equal("p.csv:1: partition 'nvs': invalid size 'lots'", err)
    _, err = pt.parse("nvs,data,bogus,,0x6000\n", "p.csv")
    assert.equal("p.csv:1: partition 'nvs': unknown subtype 'bogus'", err)
    _, err = pt.parse("nvs,data\n", "p.csv")
    assert.equal("p.csv:1: expected name,type,subtype,offset,size[,flags]", err)
    local list = assert(pt.parse("nvs,data,nvs,,0x6000\n"))
    _, err = pt.find(list, "fctry", "p.csv")
    assert.equal("p.csv: no partition named 'fctry'", err)
    _, err = pt.read("/nonexistent/p.csv")
    assert.equal("/nonexistent/p.csv: cannot open (No such file or directory)", err)
  end)
end)

describe("partition_table, as gen_esp32part.py reads it", function()
  it("refuses an unknown flag in the flags column, and ignores columns after it", function()
    local _, err = pt.parse("nvs,data,nvs,,0x6000\nnvs_keys,data,nvs_keys,,0x1000,encrpyted\n", "p.csv")
    assert.equal("p.csv:2: partition 'nvs_keys': unknown flag 'encrpyted' (flags: encrypted, readonly)", err)
    _, err = pt.parse("nvs,data,nvs,,0x6000,readonly: encrypted\n", "p.csv")
    assert.equal("p.csv:1: partition 'nvs': unknown flag ' encrypted' (flags: encrypted, readonly)", err)
    local list = assert(pt.parse("nvs,data,nvs,,0x6000,encrypted:readonly, a note\nk,data,nvs_keys,,4K,,x\n"))
    assert.same({ encrypted = true, readonly = true }, list[1].flags)
    assert.same({}, list[2].flags)
  end)

  it("says an offset inside the partition table (or before it) is, not 'the previous partition'", function()
    local _, err = pt.parse("nvs,data,nvs,0x8000,0x6000\n", "p.csv")
    assert.equal("p.csv:1: partition 'nvs': offset 0x8000 lies before the end of the partition table (0x8000 to"
      .. " 0x8FFF); the first free offset is 0x9000", err)
    _, err = pt.parse("# t\nnvs,data,nvs,0x9000,0x6000\n", "p.csv", { table_offset = 0xA000 })
    assert.equal("p.csv:2: partition 'nvs': offset 0x9000 lies before the end of the partition table (0xA000 to"
      .. " 0xAFFF); the first free offset is 0xB000", err)
  end)

  it("refuses a partition past the 32-bit flash address space, as a table entry cannot hold it", function()
    local _, err = pt.parse("nvs,data,nvs,,0x6000\nbig,data,fat,0xFFFFF000,0x2000\n", "p.csv")
    assert.equal("p.csv:2: partition 'big': 0x2000 bytes at 0xFFFFF000 pass the end of the 32-bit flash"
      .. " address space", err)
    assert(pt.parse("nvs,data,nvs,,0x6000\ntop,data,fat,0xFFFFF000,0x1000\n", "p.csv"))
  end)

  it("names a UTF-8 byte order mark, which gen_esp32part.py would make part of the first name", function()
    local _, err = pt.parse("\239\187\191# Name, Type, SubType, Offset, Size\nnvs,data,nvs,,0x6000\n", "p.csv")
    assert.equal("p.csv:1: the file starts with a UTF-8 byte order mark, which gen_esp32part.py reads as part of"
      .. " the first line; save the table without it", err)
  end)

  it("reads keywords in any case and aligns every non-app partition to 4 KiB", function()
    local list = assert(pt.parse(table.concat({
      "fctry,    DATA, NVS,      ,        0x6000",
      "storage,  0x40, 0x01,     ,        0x800",
      "nvs,      data, nvs,      ,        0x6000",
      "nvs_keys, data, nvs_keys, ,        0x1000, encrypted",
      "blank,    data, ,         ,        0x1000",
      "app,      app,  factory,  ,        -0x200000",
    }, "\n")))
    assert.same({ 0x9000, 0x6000, 0x02 }, { list[1].offset, list[1].size, list[1].subtype_id })
    assert.same({ 0xF000, 0x800 }, { list[2].offset, list[2].size })
    assert.same({ 0x10000, 0x6000 }, { list[3].offset, list[3].size }) -- 0xF800 rounded up
    assert.same({ 0x16000, 0x04 }, { list[4].offset, list[4].subtype_id })
    assert.equal(0x06, list[5].subtype_id) -- empty data subtype: undefined
    -- A negative size is where the partition ends.
    assert.same({ 0x20000, 0x1E0000 }, { list[6].offset, list[6].size })
    local _, err = pt.parse("app,app,,,1M\n", "p.csv")
    assert.equal("p.csv:1: partition 'app': unknown subtype ''", err)
  end)

  it("keeps the primary bootloader and partition table rows out of the sequence", function()
    local list = assert(pt.parse(table.concat({
      "bootloader,      bootloader,      primary, N/A, N/A",
      "partition_table, partition_table, primary, N/A, N/A",
      "nvs,             data,            nvs,     ,    0x6000",
    }, "\n"), "p.csv", { table_offset = 0x10000 }))
    assert.same({ 0x10000, 0x1000 }, { list[2].offset, list[2].size })
    assert.is_nil(list[1].offset) -- where the chip wants it: not known here
    assert.equal(0x11000, list[3].offset)
  end)

  it("looks partitions up by label and checks their type", function()
    local list = assert(pt.parse(table.concat({
      "# Name, Type, SubType, Offset, Size",
      "fctry,    data, nvs,      , 0x6000",
      "nvs_keys, data, nvs_keys, , 0x1000",
      "factory,  app,  factory,  , 1M",
    }, "\n"), "two.csv"))
    assert.equal(0x9000, assert(pt.lookup(list, "fctry", "nvs", "two.csv")).offset)
    assert.equal(0xF000, assert(pt.lookup(list, "nvs_keys", "nvs_keys", "two.csv")).offset)
    local _, err = pt.lookup(list, "factory", "nvs", "two.csv")
    assert.equal("two.csv:4: partition 'factory' is app,factory; NVS images need a data,nvs partition", err)
    _, err = pt.lookup(list, "fctry", "nvs_keys", "two.csv")
    assert.equal("two.csv:2: partition 'fctry' is data,nvs; the keys of encrypted NVS partitions need a"
      .. " data,nvs_keys partition", err)
    _, err = pt.lookup(list, "nvs", "nvs", "two.csv")
    assert.equal("two.csv: no partition named 'nvs'", err)
    assert.same({ "nvs_keys" }, { pt.keys_partitions(list)[1].name })
  end)
end)
