--- nvsgen.flash: ESP-IDF's binary partition table (encoded, decoded, its
-- MD5 entry checked), and a partition's bytes out of a whole flash dump
-- (`esptool read_flash 0 ALL dump.bin`), read without loading the dump.
--
--     local flash = require("nvsgen.flash")
--     local bin = flash.encode(assert(require("nvsgen.partition_table").read("partitions.csv")))
--     local t = assert(flash.read_table("dump.bin"))             -- list of partitions
--     local bytes, part = assert(flash.read_partition("dump.bin", { partition = "nvs" }))

local core = require("nvsgen.core")
local lfs = require("lfs")
local options = require("nvsgen.options")

local fmt, pack, unpack, rep = string.format, string.pack, string.unpack, string.rep

local M = {}

M.TABLE_OFFSET = 0x8000
--- Room for the table: 95 entries and the MD5 entry.
M.TABLE_SIZE = 0xC00
--- The most a partition read from a dump, or an image, may hold. NVS
-- partitions are far smaller; the limit bounds memory, since the read
-- result and nvs_tool's page model are Lua tables per item and entry (at
-- worst, an image of nothing but integers, about 25 times the image for
-- nvsgen.read and 85 times for `nvs_tool -i -d all`).
M.MAX_PARTITION = 4 * 1024 * 1024
--- The most read from a stream that cannot seek (a FIFO, a device).
M.MAX_STREAM = 256 * 1024 * 1024

local ENTRY = 32
local MAGIC, MD5_MAGIC = "\xAA\x50", "\xEB\xEB"
local FLAGS = { encrypted = 0, readonly = 1 }
local FLAG_ORDER = { "encrypted", "readonly" }

--- Type and subtype names as ESP-IDF's partition table tool prints them.
M.TYPES = { [0x00] = "app", [0x01] = "data", [0x02] = "bootloader", [0x03] = "partition_table" }
M.SUBTYPES = {
  [0x00] = { [0x00] = "factory", [0x20] = "test" },
  [0x01] = { [0x00] = "ota", [0x01] = "phy", [0x02] = "nvs", [0x03] = "coredump", [0x04] = "nvs_keys",
    [0x05] = "efuse", [0x06] = "undefined", [0x80] = "esphttpd", [0x81] = "fat", [0x82] = "spiffs",
    [0x83] = "littlefs" },
  [0x02] = { [0x00] = "primary", [0x01] = "ota", [0x02] = "recovery" },
  [0x03] = { [0x00] = "primary", [0x01] = "ota" },
}
for i = 0, 15 do M.SUBTYPES[0x00][0x10 + i] = "ota_" .. i end
local DATA, NVS, NVS_KEYS = 0x01, 0x02, 0x04

--- The flag bits of a partition: `flags` is a set of names (as
-- nvsgen.partition_table gives) or an integer.
local function flag_bits(flags)
  if math.type(flags) == "integer" then return flags end
  local bits = 0
  for name in pairs(flags or {}) do
    if not FLAGS[name] then return nil, ("unknown flag '%s'"):format(tostring(name)) end
    bits = bits | (1 << FLAGS[name])
  end
  return bits
end

--- The 0xC00 bytes of a binary table for `list` (entries with name,
-- type_id, subtype_id, offset, size, flags, as nvsgen.partition_table
-- reads them), with its MD5 entry unless `opts.md5 == false`. Returns the
-- bytes, or nil and a message.
function M.encode(list, opts)
  opts = opts or {}
  options.check(opts, { md5 = true }, "flash.encode", 2)
  local parts = {}
  for _, p in ipairs(list) do
    if type(p.name) ~= "string" or #p.name > 16 then
      return nil, ("partition name '%s' is not 1 to 16 bytes"):format(tostring(p.name))
    end
    local bits, err = flag_bits(p.flags)
    if not bits then return nil, ("partition '%s': %s"):format(p.name, err) end
    parts[#parts + 1] = MAGIC .. pack("<BBI4I4", p.type_id, p.subtype_id, p.offset, p.size)
      .. p.name .. rep("\0", 16 - #p.name) .. pack("<I4", bits)
  end
  local body = table.concat(parts)
  if opts.md5 ~= false then body = body .. MD5_MAGIC .. rep("\255", 14) .. core.md5(body) end
  if #body > M.TABLE_SIZE then
    return nil, ("%d partitions do not fit a table of 0x%X bytes"):format(#list, M.TABLE_SIZE)
  end
  return body .. rep("\255", M.TABLE_SIZE - #body)
end

--- The partitions of a binary table (`data`, at least the table's bytes):
-- a list of { name, type_id, subtype_id, type, subtype, offset, size,
-- flags (bits), md5_checked }, or nil and a message: no table, an entry
-- that is neither a partition, the MD5 entry nor the end, or an MD5 that
-- does not match.
function M.decode(data)
  local list, md5_checked = {}, false
  local at = 0
  while at + ENTRY <= math.min(#data, M.TABLE_SIZE) do
    local e = data:sub(at + 1, at + ENTRY)
    local magic = e:sub(1, 2)
    if magic == MAGIC then
      local type_id, subtype_id, offset, size = unpack("<BBI4I4", e, 3)
      local name = e:sub(13, 28):gsub("%z.*$", "")
      list[#list + 1] = { name = name, type_id = type_id, subtype_id = subtype_id,
        type = M.TYPES[type_id] or tostring(type_id),
        subtype = (M.SUBTYPES[type_id] or {})[subtype_id] or tostring(subtype_id),
        offset = offset, size = size, flags = unpack("<I4", e, 29) }
    elseif magic == MD5_MAGIC then
      if core.md5(data:sub(1, at)) ~= e:sub(17, 32) then
        return nil, fmt("partition table MD5 mismatch (entry at 0x%X)", at)
      end
      md5_checked = true
    elseif e == rep("\255", ENTRY) then
      break
    else
      if #list == 0 then return nil, "no partition table" end
      return nil, fmt("partition table entry %d is not valid", at // ENTRY)
    end
    at = at + ENTRY
  end
  if #list == 0 then return nil, "no partition table" end
  for _, p in ipairs(list) do p.md5_checked = md5_checked end
  return list
end

--- Size as ESP-IDF's tool prints it: 24K, 1M, or hex.
local function size_text(n)
  if n % 0x100000 == 0 then return fmt("%dM", n // 0x100000) end
  if n % 0x400 == 0 then return fmt("%dK", n // 0x400) end
  return fmt("0x%x", n)
end

--- The table as ESP-IDF's gen_esp32part.py prints a binary table.
function M.format(list)
  local lines = { "# ESP-IDF Partition Table", "# Name, Type, SubType, Offset, Size, Flags" }
  for _, p in ipairs(list) do
    local flags = {}
    for _, name in ipairs(FLAG_ORDER) do
      if p.flags & (1 << FLAGS[name]) ~= 0 then flags[#flags + 1] = name end
    end
    lines[#lines + 1] = table.concat({ p.name, p.type, p.subtype, fmt("0x%x", p.offset),
      size_text(p.size), table.concat(flags, ":") }, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

-- ---- reading a dump -----------------------------------------------------------

--- A source of bytes by offset: a string, or a file read by seeking (a
-- stream that cannot seek is read forward, at most M.MAX_STREAM bytes).
local function open_source(source)
  if type(source) ~= "string" then
    error(("flash: dump bytes or path expected, got %s"):format(type(source)), 3)
  end
  if #source >= 4096 or source:find("%z") then
    return { name = "dump", read = function(_, offset, len) return source:sub(offset + 1, offset + len) end,
      close = function() end }
  end
  local f, err = io.open(source, "rb")
  if not f then return nil, err end
  local s = { name = source, f = f, pos = 0 }
  s.seekable = f:seek("set", 0) ~= nil
  function s.read(self, offset, len)
    if self.seekable then
      self.f:seek("set", offset)
      return self.f:read(len) or ""
    end
    if offset < self.pos then return nil, "the dump is a stream and cannot be read backwards" end
    while self.pos < offset do
      local chunk = self.f:read(math.min(65536, offset - self.pos))
      if not chunk then return "" end
      self.pos = self.pos + #chunk
    end
    if offset + len > M.MAX_STREAM then
      return nil, fmt("reads past %d MiB of a stream", M.MAX_STREAM >> 20)
    end
    local data = self.f:read(len) or ""
    self.pos = self.pos + #data
    return data
  end
  function s.close(self) self.f:close() end
  return s
end

--- The bytes of the file at `path`, at most `max` (default
-- M.MAX_PARTITION): a device or FIFO is read only up to the limit. Returns
-- the bytes, or nil and "path: message".
function M.read_file(path, max)
  max = max or M.MAX_PARTITION
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local probe, probe_err = f:read(0) -- a folder opens, but does not read
  if probe == nil and probe_err then
    f:close()
    return nil, path .. ": " .. probe_err
  end
  local size = f:seek("end")
  if size and size > max then
    f:close()
    return nil, fmt("%s: %d bytes is more than the limit of %d MiB", path, size, max >> 20)
  end
  f:seek("set", 0)
  local parts, n = {}, 0
  while n <= max do
    local chunk, read_err = f:read(math.min(1 << 20, max + 1 - n))
    if not chunk then
      if read_err then f:close() return nil, path .. ": " .. read_err end
      break
    end
    parts[#parts + 1] = chunk
    n = n + #chunk
  end
  f:close()
  if n > max then return nil, fmt("%s: more than the limit of %d MiB", path, max >> 20) end
  return table.concat(parts)
end

--- True when the file at `path` can be read at will (not a stream) and
-- holds a partition table entry at M.TABLE_OFFSET: a whole flash dump
-- (whose table read_partition then checks). An NVS image never does: no
-- page state starts with the entry's magic bytes.
function M.is_dump(path)
  -- Opening a FIFO to look would take bytes its writer gives only once.
  local mode = lfs.attributes(path, "mode")
  if mode ~= "file" and mode ~= "block device" then return false end
  local f = io.open(path, "rb")
  if not f then return false end
  local size = f:seek("end")
  local data = size and size >= M.TABLE_OFFSET + ENTRY and f:seek("set", M.TABLE_OFFSET)
    and f:read(M.TABLE_SIZE)
  f:close()
  return type(data) == "string" and data:sub(1, 2) == MAGIC
end

--- True when `bytes` (a file read whole: a stream, which is_dump cannot
-- probe) hold a partition table entry at M.TABLE_OFFSET, as a dump does.
function M.holds_table(bytes)
  return #bytes >= M.TABLE_OFFSET + ENTRY and bytes:sub(M.TABLE_OFFSET + 1, M.TABLE_OFFSET + 2) == MAGIC
end

local READ_OPTIONS = { partition = true, partition_table_offset = true, keys_partition = true }

--- The partitions of the table in a dump (bytes or path) at
-- `table_offset` (default M.TABLE_OFFSET), or nil and a message.
function M.read_table(source, table_offset)
  local src, err = open_source(source)
  if not src then return nil, err end
  local list
  list, err = M.table_of(src, table_offset or M.TABLE_OFFSET)
  src:close()
  return list, err
end

function M.table_of(src, table_offset)
  if math.type(table_offset) ~= "integer" or table_offset < 0 or table_offset % 0x1000 ~= 0 then
    return nil, ("partition table offset %s is not a multiple of 0x1000"):format(tostring(table_offset))
  end
  local data, err = src:read(table_offset, M.TABLE_SIZE)
  if not data then return nil, ("%s: %s"):format(src.name, err) end
  if #data < ENTRY then
    return nil, fmt("%s: no partition table at 0x%X: the dump ends at 0x%X", src.name, table_offset,
      table_offset + #data)
  end
  local list
  list, err = M.decode(data)
  if not list then return nil, fmt("%s: %s at 0x%X", src.name, err, table_offset) end
  return list
end

--- The NVS partition of a dump: `opts.partition` names it (default: the
-- first data,nvs partition), `opts.partition_table_offset` places the
-- table. Returns the partition's bytes, its table entry and the keys
-- partition's bytes when the dump holds a data,nvs_keys partition with a
-- valid keys page (else nil); or nil and a message (no valid table, no
-- such partition, one that is not data,nvs, a dump cut short).
function M.read_partition(source, opts)
  opts = opts or {}
  options.check(opts, READ_OPTIONS, "flash.read_partition", 2)
  local src, err = open_source(source)
  if not src then return nil, err end
  local list
  list, err = M.table_of(src, opts.partition_table_offset or M.TABLE_OFFSET)
  if not list then src:close() return nil, err end
  local part, keys_part
  for _, p in ipairs(list) do
    if opts.partition == nil and not part and p.type_id == DATA and p.subtype_id == NVS then part = p end
    if p.name == opts.partition then part = p end
    if not keys_part and p.type_id == DATA and p.subtype_id == NVS_KEYS then keys_part = p end
  end
  local function fail(msg) src:close() return nil, src.name .. ": " .. msg end
  if not part then
    if opts.partition then return fail(("no partition named '%s' in the partition table"):format(opts.partition)) end
    return fail("no data,nvs partition in the partition table")
  end
  if part.type_id ~= DATA or part.subtype_id ~= NVS then
    return fail(("partition '%s' is %s,%s, not data,nvs"):format(part.name, part.type, part.subtype))
  end
  if part.size > M.MAX_PARTITION then
    return fail(("partition '%s' of %d bytes is larger than the limit of %d MiB"):format(part.name, part.size,
      M.MAX_PARTITION >> 20))
  end
  -- Forward order, so a stream is read once.
  local wanted = { part }
  if keys_part then
    if keys_part.offset < part.offset then table.insert(wanted, 1, keys_part) else wanted[2] = keys_part end
  end
  local got = {}
  for _, p in ipairs(wanted) do
    local len = p == keys_part and math.min(p.size, 4096) or p.size
    local data
    data, err = src:read(p.offset, len)
    if not data then return fail(err) end
    got[p] = data
    if #data == 0 and p == part then
      return fail(("the dump ends before partition '%s' (0x%X to 0x%X)"):format(p.name, p.offset,
        p.offset + p.size))
    elseif #data < len and p == part then
      return fail(("the dump ends at 0x%X, inside partition '%s' (0x%X to 0x%X)"):format(p.offset + #data,
        p.name, p.offset, p.offset + p.size))
    end
  end
  src:close()
  local keys = keys_part and got[keys_part]
  if keys and (#keys ~= 4096 or not core.keys_parse(keys)) then keys = nil end
  return got[part], part, keys
end

return M
