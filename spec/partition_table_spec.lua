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
