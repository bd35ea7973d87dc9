-- nvsgen.flash_files: esptool argument files, merged binaries, Intel HEX.
local flash = require("nvsgen.flash_files")

-- Reads Intel HEX back: the records (each { type, addr, data, line }) and
-- the bytes by absolute address; checks every checksum and the syntax.
local function parse_hex(text)
  local records, bytes, base = {}, {}, 0
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    assert(line:match("^:%x+$") and not line:find("[a-f]"), "line " .. n .. ": bad syntax: " .. line)
    local raw = {}
    for h in line:sub(2):gmatch("%x%x") do raw[#raw + 1] = tonumber(h, 16) end
    local sum = 0
    for _, b in ipairs(raw) do sum = sum + b end
    assert.equal(0, sum & 0xFF, "line " .. n .. ": checksum")
    local count, addr, rtype = raw[1], raw[2] << 8 | raw[3], raw[4]
    assert.equal(count + 5, #raw, "line " .. n .. ": length")
    local data = string.char(table.unpack(raw, 5, 4 + count))
    records[#records + 1] = { type = rtype, addr = addr, data = data, line = line }
    if rtype == 4 then
      base = (raw[5] << 8 | raw[6]) << 16
    elseif rtype == 0 then
      for i = 1, count do
        local at = base + addr + i - 1
        assert.is_nil(bytes[at], ("address 0x%X written twice"):format(at))
        bytes[at] = data:byte(i)
      end
    end
  end
  assert.equal(#text, #table.concat((function()
    local t = {}
    for _, r in ipairs(records) do t[#t + 1] = r.line .. "\n" end
    return t
  end)()), "text outside records")
  return records, bytes
end

-- Deterministic filler bytes.
local function pattern(n, seed)
  local t = {}
  for i = 1, n do t[i] = string.char((i * 7 + seed) % 251) end
  return table.concat(t)
end

-- The two-partition unit of the examples: fctry and nvs (0x6000 each),
-- keys at 0x15000, with an unwritten gap before the keys.
local function unit()
  return {
    { label = "nvs", name = "out/unit-1-nvs.bin", offset = 0xF000, size = 0x6000, data = pattern(0x6000, 2) },
    { label = "fctry", name = "out/unit-1-fctry.bin", offset = 0x9000, size = 0x6000, data = pattern(0x6000, 1) },
    { label = "nvs_keys", name = "out/unit-1-nvs_keys.bin", offset = 0x16000, size = 0x1000,
      data = pattern(0x1000, 3) },
  }
end

describe("flash_files", function()
  it("writes esptool's argument file by offset, names as given", function()
    assert.equal("0x9000 out/unit-1-fctry.bin\n0xf000 out/unit-1-nvs.bin\n0x16000 out/unit-1-nvs_keys.bin\n",
      flash.flash_args(unit()))
    -- A name shlex.split would split or unquote is quoted.
    assert.equal("0x9000 'my out/it'\"'\"'s.bin'\n", flash.flash_args{
      { name = "my out/it's.bin", offset = 0x9000, size = 0x1000, data = "" } })
  end)

  it("merges from the lowest offset to the last byte written, 0xFF between", function()
    local parts = unit()
    local bin = assert(flash.merged(parts))
    assert.equal(0x17000 - 0x9000, #bin)
    for _, p in ipairs(parts) do
      local at = p.offset - 0x9000
      assert.equal(p.data, bin:sub(at + 1, at + #p.data), p.label)
    end
    assert.equal(("\xFF"):rep(0x1000), bin:sub(0x15000 - 0x9000 + 1, 0x16000 - 0x9000))
    -- A short image (read-only partition) is not padded to its partition's end.
    bin = assert(flash.merged{
      { name = "a", offset = 0x9000, size = 0x6000, data = "AB" },
      { name = "b", offset = 0xF000, size = 0x1000, data = "C" } })
    assert.equal("AB" .. ("\xFF"):rep(0xF000 - 0x9002) .. "C", bin)
    assert.equal("AB", flash.merged{ { name = "a", offset = 0x9000, size = 0x6000, data = "AB" } })
  end)

  it("refuses overlapping partitions and data past a partition's end", function()
    local _, err = flash.merged{
      { label = "nvs", name = "a", offset = 0x9000, size = 0x6000, data = "" },
      { label = "fctry", name = "b", offset = 0xE000, size = 0x1000, data = "" } }
    assert.equal("partition 'fctry' at 0xE000 overlaps partition 'nvs' (0x9000 to 0xEFFF)", err)
    _, err = flash.intel_hex{ { label = "nvs", name = "a", offset = 0x9000, size = 0x1000, data = ("x"):rep(0x1001) } }
    assert.equal("partition 'nvs': 4097 bytes do not fit its 0x1000 bytes at 0x9000", err)
    _, err = flash.flash_args{ { label = "nvs", name = "a", size = 0x1000, data = "" } }
    assert.equal("partition 'nvs': no flash offset", err)
  end)

  it("refuses a partition past the 32-bit flash address space (Intel HEX cannot address it)", function()
    local _, err = flash.intel_hex{ { label = "fctry", name = "a", offset = 0xFFFFF000, size = 0x6000, data = "x" } }
    assert.equal("partition 'fctry': 0x6000 bytes at 0xFFFFF000 pass the end of the 32-bit flash address space",
      err)
    _, err = flash.flash_args{ { label = "keys", name = "a", offset = 0x100005000, size = 0x1000, data = "" } }
    assert.equal("partition 'keys': 0x1000 bytes at 0x100005000 pass the end of the 32-bit flash address space", err)
    local hex = assert(flash.intel_hex{ { label = "top", name = "a", offset = 0xFFFFF000, size = 0x1000,
      data = "\1" } })
    assert.equal(":02000004FFFFFC\n:01F00000010E\n:00000001FF\n", hex)
  end)

  it("writes Intel HEX exactly as intelhex does for a small case", function()
    assert.equal(":03001000010203E7\n:00000001FF\n",
      flash.intel_hex{ { name = "a", offset = 0x10, size = 0x100, data = "\1\2\3" } })
    -- Above 0xFFFF: a type 04 record first (even for block 0) and at each
    -- new 64 KiB block; no record crosses a block.
    assert.equal(":020000040000FA\n:08FFF800AAAAAAAAAAAAAAAAB1\n:020000040001F9\n:08000000AAAAAAAAAAAAAAAAA8\n"
      .. ":00000001FF\n",
      flash.intel_hex{ { name = "a", offset = 0xFFF8, size = 0x1000, data = ("\xAA"):rep(16) } })
    -- Records stop at a gap and go on across adjacent partitions.
    assert.equal(":0400000041424344F2\n:0200060045466D\n:00000001FF\n", flash.intel_hex{
      { name = "a", offset = 0, size = 2, data = "AB" },
      { name = "b", offset = 2, size = 2, data = "CD" },
      { name = "c", offset = 6, size = 2, data = "EF" } })
  end)

  it("writes records of erased flash as intelhex does, in any block and twice over", function()
    -- As Python's intelhex writes 32 bytes of 0xFF and 0x01 0xFF at 0xFFF0.
    local want = ":020000040000FA\n:10FFF000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF11\n:020000040001F9\n"
      .. ":10000000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00\n:0200100001FFEE\n:00000001FF\n"
    local parts = { { name = "a", offset = 0xFFF0, size = 0x1000, data = ("\xFF"):rep(32) .. "\1\xFF" } }
    assert.equal(want, flash.intel_hex(parts))
    assert.equal(want, flash.intel_hex(parts))
    -- Sixteen bytes that are not all 0xFF keep their own digits.
    assert.equal(":10000000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE01\n:00000001FF\n",
      flash.intel_hex{ { name = "b", offset = 0, size = 0x1000, data = ("\xFF"):rep(15) .. "\xFE" } })
  end)

  it("writes the unit's bytes, and only those, in Intel HEX", function()
    local parts = unit()
    local text = assert(flash.intel_hex(parts))
    local records, bytes = parse_hex(text)
    local written = 0
    for _, p in ipairs(parts) do
      for i = 1, #p.data do
        assert(bytes[p.offset + i - 1] == p.data:byte(i), ("%s byte %d"):format(p.label, i))
      end
      written = written + #p.data
    end
    local count = 0
    for _ in pairs(bytes) do count = count + 1 end
    assert.equal(written, count) -- nothing in the gap, nothing padded
    -- 16-byte records; 04 records for blocks 0 and 1; the end record last.
    local kinds = {}
    for _, r in ipairs(records) do
      kinds[r.type] = (kinds[r.type] or 0) + 1
      if r.type == 0 then assert.equal(16, #r.data) end
    end
    assert.same({ [0] = written // 16, [1] = 1, [4] = 2 }, kinds)
    assert.equal(":020000040000FA", records[1].line)
    assert.equal(":00000001FF", records[#records].line)
    assert.equal(":020000040001F9", records[(0x10000 - 0x9000) // 16 + 2].line)
  end)
end)
