--- Corruption specs: bytes flipped in real images (the vectors) are
-- reported at the right page and entry by nvsgen.read and by nvs_tool -i,
-- and no damage makes either raise.
local h = require("spec.support.helper")
local nvsgen = require("nvsgen")
local tool = require("nvsgen.cli.nvs_tool")

local V2 = h.VECTORS .. "/idf-samples/multipage-v2/expected.bin"
local V1 = h.VECTORS .. "/idf-samples/singlepage-v1/expected.bin"

local PAGE, HEADER, BITMAP, ENTRIES = 4096, 0, 32, 64

--- The image with the byte at offset `off` (from 0) xored with `x`.
local function flip(image, off, x)
  return image:sub(1, off) .. string.char(image:byte(off + 1) ~ x) .. image:sub(off + 2)
end

--- Offset of byte `b` of entry `e` on page `p`.
local function at(p, e, b)
  return p * PAGE + ENTRIES + 32 * e + b
end

--- The problems as {page, entry, reason} lists, for exact comparison.
local function where(r)
  local list = {}
  for k, pb in ipairs(r.problems) do list[k] = { pb.page, pb.entry, pb.reason } end
  return list
end

local function has_problem_at(r, page, entry)
  for _, pb in ipairs(r.problems) do
    if pb.page == page and pb.entry == entry then return true end
  end
  return false
end

-- Each case: vector, what is damaged, offset, xor mask, the problems expected
-- ({page, entry, reason}, entry nil for the whole page).
local CASES = {
  { V2, "page header: sequence number of page 1", PAGE + 5, 0x01, {
    { 0, 92, "blob data chunk 0 of 'blobFileBKey' has no blob index" },
    { 1, nil, "page header crc mismatch" },
    { 2, 67, "blob index chunk 0 missing" } } },
  { V2, "page header: stored crc of page 0", 28, 0x01, {
    { 0, nil, "page header crc mismatch" },
    { 1, 30, "item in unknown namespace 1" },
    { 2, 67, "item in unknown namespace 1" } } },
  { V2, "page header: state word of page 1", PAGE + HEADER, 0x01, {
    { 0, 92, "blob data chunk 0 of 'blobFileBKey' has no blob index" },
    { 1, nil, "unknown page state 0xfffffffd" },
    { 2, 67, "blob index chunk 0 missing" } } },
  { V2, "bitmap: written entry 3 of page 0 made illegal", BITMAP, 0xC0, {
    { 0, 3, "illegal entry state in bitmap" } } },
  { V2, "bitmap: written entry 0 of active page 2 made empty", 2 * PAGE + BITMAP, 0x01, {
    { 1, 31, "blob data chunk 0 of 'binFileKey' has no blob index" },
    { 2, 0, "bitmap marks entry empty but entry is written" },
    { 2, 1, "67 written entries after a half-written one erased" } } },
  { V2, "entry header: key of entry 1", at(0, 1, 10), 0x01, {
    { 0, 1, "entry crc mismatch" } } },
  { V2, "entry header: type of entry 1", at(0, 1, 1), 0x10, {
    { 0, 1, "entry crc mismatch" } } },
  { V2, "entry header: value of entry 1", at(0, 1, 24), 0x80, {
    { 0, 1, "entry crc mismatch" } } },
  { V2, "entry header: span of string entry 6", at(0, 6, 2), 0x01, {
    { 0, 6, "entry crc mismatch" },
    { 0, 7, "7 more entries without a valid item header" } } },
  { V2, "entry header: size of blob index entry 67 on page 2", at(2, 67, 24), 0x01, {
    { 1, 31, "blob data chunk 0 of 'binFileKey' has no blob index" },
    { 2, 0, "blob data chunk 1 of 'binFileKey' has no blob index" },
    { 2, 67, "entry crc mismatch" } } },
  { V2, "string data of entry 6", at(0, 7, 3), 0x01, {
    { 0, 6, "string data crc mismatch" } } },
  { V2, "blob chunk data on page 0", at(0, 29, 0), 0x01, {
    { 0, 28, "blob data crc mismatch" } } },
  { V2, "blob chunk data at the start of page 1", at(1, 5, 0), 0x01, {
    { 1, 0, "blob data crc mismatch" } } },
  { V2, "blob chunk data at the end of a chunk on page 2", at(2, 66, 30), 0x01, {
    { 2, 0, "blob data crc mismatch" } } },
  { V1, "version-1 blob data", at(0, 15, 3), 0x01, {
    { 0, 14, "blob data crc mismatch" } } },
  { V1, "version-1 blob data on page 1", at(1, 70, 0), 0x40, {
    { 1, 63, "blob data crc mismatch" } } },
  { V1, "entry header: blob size", at(0, 14, 24), 0x01, {
    { 0, 14, "entry crc mismatch" },
    { 0, 15, "1 more entry without a valid item header" } } },
}

describe("a damaged image", function()
  local dir
  setup(function() dir = h.tmpdir() end)
  teardown(function() h.cleanup(dir) end)

  for n, case in ipairs(CASES) do
    local vector, what, off, x, expected = case[1], case[2], case[3], case[4], case[5]
    it(("reports %s where it lies"):format(what), function()
      local image = flip(h.read(vector), off, x)
      local r = assert(nvsgen.read(image))
      assert.same(expected, where(r))
      local path = ("%s/case%02d.bin"):format(dir, n)
      h.write(path, image)
      local status, out, err = h.run("nvsgen.cli.nvs_tool", { path, "-i", "-d", "none" })
      assert.equal(1, status)
      assert.equal("", err)
      for _, pb in ipairs(r.problems) do
        assert.truthy(out:find("\n" .. tool.problem_line(pb) .. "\n", 1, true), tool.problem_line(pb))
      end
    end)
  end

  it("reports a blob index with a span, its crc made good, and prints it", function()
    local image = h.read(V2)
    local off = at(2, 67, 0)
    local e = image:sub(off + 1, off + 2) .. "\2" .. image:sub(off + 4, off + 32)
    e = e:sub(1, 4) .. string.pack("<I4", require("nvsgen.core").crc32(e:sub(1, 4) .. e:sub(9))) .. e:sub(9)
    image = image:sub(1, off) .. e .. image:sub(off + 33)
    assert.same({
      { 1, 31, "blob data chunk 0 of 'binFileKey' has no blob index" },
      { 2, 0, "blob data chunk 1 of 'binFileKey' has no blob index" },
      { 2, 67, "blob index span 2 is not 1" },
    }, where(assert(nvsgen.read(image))))
    local path = dir .. "/span.bin"
    h.write(path, image)
    local status, out = h.run("nvsgen.cli.nvs_tool", { path, "-i" })
    assert.equal(1, status)
    assert.truthy(out:find("\n 067. Written, Namespace Index: 001, Type: blob_index, Span: 002, Chunk Index: 255, "
      .. "CRC32: %x+ | binFileKey : Size=5120, ChunkCount=2, ChunkStart=0\n"))
    assert.truthy(out:find("\nPage 2, entry 067: error: blob index span 2 is not 1\n", 1, true))
  end)

  it("prints nvs_tool.py's checks, then the firmware's problems, with -i", function()
    local image = h.read(V2)
    local path = dir .. "/checks.bin"
    h.write(path, flip(image, at(0, 7, 3), 0x01))
    local status, out = h.run("nvsgen.cli.nvs_tool", { path, "-i", "-d", "none" })
    assert.equal(1, status)
    assert.equal("\nPage no. 0 \tCRC32: OK\n"
      .. " Entry #006 dummyStringKey data (string, blob) has wrong CRC32! Written: 8f66953b Generated: 6393db9b\n"
      .. "Page no. 1 \tCRC32: OK\nPage no. 2 \tCRC32: OK\nPage Empty\n\n"
      .. "The firmware would find 1 problem (1 error, 0 warnings):\n"
      .. "Page 0, entry 006: error: string data crc mismatch\n", out)
    -- entry 1 copied to the free entry 68 of the active page, marked written
    local copy = image:sub(at(0, 1, 0) + 1, at(0, 1, 32))
    local damaged = image:sub(1, at(2, 68, 0)) .. copy .. image:sub(at(2, 68, 32) + 1)
    local bitmap = 2 * PAGE + BITMAP + 68 // 4
    damaged = flip(damaged, bitmap, 0x01)
    h.write(path, damaged)
    status, out = h.run("nvsgen.cli.nvs_tool", { path, "-i", "-d", "none" })
    assert.equal(1, status)
    assert.equal("\nPage no. 0 \tCRC32: OK\nPage no. 1 \tCRC32: OK\nPage no. 2 \tCRC32: OK\nPage Empty\n"
      .. "Found duplicate entries:\n"
      .. "Entry\tKey\t\t\tType\t\tNamespace idx\tPage\tPage status\n"
      .. "#001\tdummyU8Key\t\tuint8_t\t\t1\t\t0\tFull\n"
      .. "#068\tdummyU8Key\t\tuint8_t\t\t1\t\t2\tActive\n\n"
      .. "The firmware would find 1 problem (1 error, 0 warnings):\n"
      .. "Page 0, entry 001: error: duplicate key 'dummyU8Key' in namespace 'dummyNamespace'\n", out)
  end)

  it("never raises on random damage to entries, types, spans and bitmaps", function()
    math.randomseed(5)
    local path = dir .. "/random.bin"
    local types = { 0x01, 0x21, 0x41, 0x42, 0x48, 0x24, 0x28, 0x18, 0x99 }
    for iter = 1, 24 do
      local image = h.read(iter % 2 == 0 and V2 or V1)
      local t = {}
      for i = 1, #image do t[i] = image:sub(i, i) end
      for _ = 1, math.random(1, 30) do
        t[math.random(#t)] = string.char(({ math.random(0, 255), 0, 255 })[math.random(3)])
      end
      for _ = 1, math.random(0, 6) do
        local base = math.random(0, #t // PAGE - 1) * PAGE + ENTRIES + 32 * math.random(0, 125)
        for k = 1, 32 do
          if math.random(2) == 1 then t[base + k] = string.char(math.random(0, 255)) end
        end
        t[base + 2] = string.char(types[math.random(#types)])
        t[base + 3] = string.char(math.random(0, 4))
      end
      h.write(path, table.concat(t))
      local problems = #assert(nvsgen.read(path)).problems
      for _, dump in ipairs({ "all", "written", "minimal", "namespaces", "blobs", "storage_info" }) do
        assert.equal(problems > 0 and 1 or 0, (h.run("nvsgen.cli.nvs_tool", { path, "-i", "-d", dump })))
      end
      assert.equal(0, (h.run("nvsgen.cli.nvs_tool", { path, "-f", "json" })))
    end
  end)

  for _, vector in ipairs({ V1, V2 }) do
    local name = vector:match("([^/]+)/expected.bin$")
    local image = h.read(vector)
    local pages = tool.parse(image)

    it(("reports every flipped byte of an item header or its data at the item (%s)"):format(name), function()
      local count = 0
      for _, p in ipairs(pages) do
        for _, e in ipairs(p.entries) do
          if e.state == "Written" then
            for b = 0, 31 do
              local r = nvsgen.read(flip(image, at(p.number, e.index, b), 0x01))
              assert(has_problem_at(r, p.number, e.index),
                ("page %d entry %d byte %d not reported"):format(p.number, e.index, b))
              count = count + 1
            end
            -- the data bytes its CRC covers, every third one
            for k = 0, (e.size or 0) - 1, 3 do
              if k < 32 * #e.children then
                local r = nvsgen.read(flip(image, at(p.number, e.index + 1, k), 0x04))
                assert(has_problem_at(r, p.number, e.index),
                  ("page %d entry %d data byte %d not reported"):format(p.number, e.index, k))
                count = count + 1
              end
            end
          end
        end
      end
      assert.is_true(count > 1000)
    end)

    it(("reports every flipped page header byte at its page (%s)"):format(name), function()
      for _, p in ipairs(pages) do
        for b = 0, 31 do
          local r = nvsgen.read(flip(image, p.number * PAGE + b, 0x01))
          assert(has_problem_at(r, p.number, nil), ("page %d header byte %d not reported"):format(p.number, b))
        end
      end
    end)

    it(("reports a written entry whose bitmap says empty or illegal at the entry (%s)"):format(name), function()
      for _, p in ipairs(pages) do
        for _, e in ipairs(p.entries) do
          if e.state == "Written" then
            local off = p.number * PAGE + BITMAP + (e.index >> 2)
            for _, x in ipairs({ 1, 3 }) do
              local r = nvsgen.read(flip(image, off, x << (2 * (e.index & 3))))
              assert(has_problem_at(r, p.number, e.index),
                ("page %d entry %d state ^%d not reported"):format(p.number, e.index, x))
            end
          end
        end
      end
    end)

    it(("never raises, whatever byte is damaged (%s)"):format(name), function()
      for off = 0, #image - 1, 5 do
        for _, x in ipairs({ 0x01, 0xFF }) do
          local damaged = flip(image, off, x)
          local r = assert(nvsgen.read(damaged))
          for _, pb in ipairs(r.problems) do
            assert(pb.page == nil or (pb.page >= 0 and pb.page < #image // PAGE), "page out of range")
            assert(pb.entry == nil or (pb.entry >= 0 and pb.entry < 126), "entry out of range")
            assert(type(pb.reason) == "string" and #pb.reason > 0)
          end
          if off % 97 == 0 then
            local path = dir .. "/sweep.bin"
            h.write(path, damaged)
            for _, dump in ipairs({ "all", "written", "minimal", "namespaces", "blobs", "storage_info" }) do
              local status = h.run("nvsgen.cli.nvs_tool", { path, "-i", "-d", dump })
              assert(status == 0 or status == 1)
              assert.equal(#r.problems > 0 and 1 or 0, status)
            end
            assert.equal(#r.problems > 0 and 1 or 0, (h.run("nvsgen.cli.nvs_tool", { path, "-i", "-f", "json" })))
          end
        end
      end
    end)
  end
end)
