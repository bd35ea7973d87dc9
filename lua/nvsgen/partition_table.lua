--- nvsgen.partition_table: reads an ESP-IDF partition table (partitions.csv).
--
-- Columns: name, type, subtype, offset, size, flags. As ESP-IDF's
-- gen_esp32part.py does: lines starting with '#' and blank lines are
-- skipped, fields are trimmed, sizes and offsets are integers as Python
-- reads them (decimal, 0x hex, 0o, 0b, underscores between digits) with
-- an optional K or M suffix (a negative size: the partition ends at that
-- address); type and subtype keywords are read in any case; an empty
-- offset follows the previous partition, aligned to 0x10000 for app
-- partitions and 0x1000 for all others, and the first one follows the
-- table itself (at 0x8000 by default, so it starts at 0x9000). The primary
-- bootloader and partition table rows (types `bootloader` and
-- `partition_table`) sit where those are, outside that sequence. Flags
-- (sixth column) other than encrypted and readonly, and a leading UTF-8
-- byte order mark, are refused.
--
--     local pt = require("nvsgen.partition_table")
--     local t = assert(pt.read("partitions.csv"))
--     local nvs = assert(pt.find(t, "nvs"))   -- nvs.offset, nvs.size
--     local keys = assert(pt.lookup(t, "nvs_keys", "nvs_keys", "partitions.csv"))

local files = require("nvsgen.files")
local options = require("nvsgen.options")

local M = {}

M.TABLE_OFFSET = 0x8000
M.TABLE_SIZE = 0x1000

local TYPES = { app = 0x00, data = 0x01, bootloader = 0x02, partition_table = 0x03 }
--- The type and subtype codes of NVS partitions (data, nvs) and of the
-- keys partition of encrypted ones (data, nvs_keys).
M.DATA, M.NVS, M.NVS_KEYS = TYPES.data, 0x02, 0x04
local BOOTLOADER, PARTITION_TABLE, PRIMARY = TYPES.bootloader, TYPES.partition_table, 0x00
local ALIGN = { [0x00] = 0x10000 }
local DATA_ALIGN = 0x1000

local SUBTYPES = {
  [0x00] = { factory = 0x00, test = 0x20 },
  [0x01] = { ota = 0x00, phy = 0x01, nvs = M.NVS, coredump = 0x03, nvs_keys = M.NVS_KEYS,
    efuse = 0x05, undefined = 0x06, esphttpd = 0x80, fat = 0x81, spiffs = 0x82, littlefs = 0x83,
    tee_ota = 0x90 },
  [BOOTLOADER] = { primary = 0x00, ota = 0x01, recovery = 0x02 },
  [PARTITION_TABLE] = { primary = 0x00, ota = 0x01 },
}
for i = 0, 15 do SUBTYPES[0x00]["ota_" .. i] = 0x10 + i end
for i = 0, 1 do SUBTYPES[0x00]["tee_" .. i] = 0x30 + i end

-- The digits of each base, and the most of them read (below 2^53: a
-- longer number is no flash address, and Lua's tonumber would wrap it).
local BASES = { ["0x"] = { 16, "^%x+$", 13 }, ["0o"] = { 8, "^[0-7]+$", 17 }, ["0b"] = { 2, "^[01]+$", 52 } }

-- A non-negative integer literal as Python's int(text, 0) reads it (the
-- reading gen_esp32part.py gives a field): surrounding blanks, a '+',
-- decimal (no leading zero but in zero itself), 0x, 0o or 0b, single
-- underscores between digits (and after a prefix). Returns it, or nil.
local function python_int(text)
  local t = text:match("^%s*%+?(.-)%s*$")
  local base, pattern, most = 10, "^%d+$", 15
  local spec = BASES[t:sub(1, 2):lower()]
  if spec then
    base, pattern, most = spec[1], spec[2], spec[3]
    t = t:sub(3):gsub("^_", "", 1)
  end
  if t:find("^_") or t:find("_$") or t:find("__", 1, true) then return nil end
  local digits = t:gsub("_", "")
  -- (Leading zeros count for nothing: "0x00000000000000010000" is 64K.)
  if not digits:find(pattern) or #digits:gsub("^0+", "") > most then return nil end
  if base == 10 and digits:find("^0+[1-9]") then return nil end
  return tonumber(digits, base)
end

--- Parses a size or offset as gen_esp32part.py does: an integer literal
-- (decimal, 0x hex, 0o, 0b, with underscores), or one with a K or M
-- suffix (each multiplying, blanks before it allowed: "16 K", "1M").
-- Returns a non-negative integer, or nil.
function M.parse_number(text)
  -- gen_esp32part.py strips the field once; the text before a suffix is
  -- not stripped again ("1 kk" is read, "1k k" is not), and int() takes
  -- blanks only around the whole literal.
  local function suffixed(t)
    local last = t:sub(-1):lower()
    if last == "k" or last == "m" then
      local n = suffixed(t:sub(1, -2))
      local scale = last == "k" and 1024 or 1024 * 1024
      -- Checked before multiplying: an integer product past 2^63 wraps.
      if not n or n >= 2 ^ 53 // scale then return nil end
      return n * scale
    end
    if t:find("^%s*$") then return nil end
    return python_int(t)
  end
  return suffixed(text:match("^%s*(.-)%s*$"))
end

local function type_code(text)
  if TYPES[text:lower()] then return TYPES[text:lower()] end
  local n = M.parse_number(text)
  if n and n >= 0 and n <= 0xFE then return n end
end

local function subtype_code(type_id, text)
  local names = SUBTYPES[type_id]
  if names and names[text:lower()] then return names[text:lower()] end
  -- As gen_esp32part.py: an app needs a subtype, others default to
  -- data's `undefined`.
  if text == "" then return type_id ~= TYPES.app and SUBTYPES[TYPES.data].undefined or nil end
  local n = M.parse_number(text)
  if n and n >= 0 and n <= 0xFE then return n end
end

local PARSE_OPTIONS = { table_offset = true }
local FLAGS = { encrypted = true, readonly = true }
local BOM = "\239\187\191"

--- Parses the text of a partition table; `name` is used in messages, and
-- `opts.table_offset` is where the table itself is (default TABLE_OFFSET).
-- Returns the list of partitions ({ name, type, subtype, type_id,
-- subtype_id, offset, size, flags, line }), or nil and "NAME:LINE: msg".
function M.parse(text, name, opts)
  name = name or "partitions.csv"
  if opts == nil then
    opts = {}
  else
    options.check(opts, PARSE_OPTIONS, "partition_table.parse", 2)
  end
  local list, by_name = {}, {}
  local last_end = (opts.table_offset or M.TABLE_OFFSET) + M.TABLE_SIZE
  if text:sub(1, 3) == BOM then
    -- gen_esp32part.py keeps it: the first name (or comment) would carry it.
    return nil, ("%s:1: the file starts with a UTF-8 byte order mark, which gen_esp32part.py reads as part of"
      .. " the first line; save the table without it"):format(name)
  end
  local lineno = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    line = line:gsub("\r$", "")
    local trimmed = line:match("^%s*(.-)%s*$")
    if trimmed ~= "" and trimmed:sub(1, 1) ~= "#" then
      local function fail(msg) return nil, ("%s:%d: %s"):format(name, lineno, msg) end
      local f = {}
      for field in (trimmed .. ","):gmatch("([^,]*),") do f[#f + 1] = field:match("^%s*(.-)%s*$") end
      if #f < 5 then return fail("expected name,type,subtype,offset,size[,flags]") end
      local pname = f[1]
      if pname == "" then return fail("empty partition name") end
      if #pname > 16 then return fail(("partition name '%s' is longer than 16 characters"):format(pname)) end
      if by_name[pname] then return fail(("partition '%s' is defined twice"):format(pname)) end
      local type_id = type_code(f[2])
      if not type_id then return fail(("partition '%s': unknown type '%s'"):format(pname, f[2])) end
      local subtype_id = subtype_code(type_id, f[3])
      if not subtype_id then
        return fail(("partition '%s': unknown subtype '%s'"):format(pname, f[3]))
      end
      local align = ALIGN[type_id] or DATA_ALIGN
      -- The primary bootloader and partition table are where the chip and
      -- the build put them, whatever the row says.
      local fixed = subtype_id == PRIMARY and (type_id == BOOTLOADER or type_id == PARTITION_TABLE)
      local table_offset = opts.table_offset or M.TABLE_OFFSET
      local offset
      if fixed then
        offset = type_id == PARTITION_TABLE and table_offset or opts.bootloader_offset
      elseif f[4] == "" then
        offset = (last_end + align - 1) // align * align
      else
        offset = M.parse_number(f[4])
        if not offset then return fail(("partition '%s': invalid offset '%s'"):format(pname, f[4])) end
        if offset % align ~= 0 then
          return fail(("partition '%s': offset 0x%X is not aligned to 0x%X"):format(pname, offset, align))
        end
        if offset < last_end and last_end == table_offset + M.TABLE_SIZE then
          -- No partition placed yet: what it runs into is the table itself
          -- (or, below it, the bootloader).
          return fail(("partition '%s': offset 0x%X lies before the end of the partition table (0x%X to 0x%X);"
            .. " the first free offset is 0x%X"):format(pname, offset, table_offset, last_end - 1, last_end))
        end
        if offset < last_end then
          return fail(("partition '%s': offset 0x%X overlaps the previous partition (ends at 0x%X)")
            :format(pname, offset, last_end))
        end
      end
      local size
      if fixed then
        size = type_id == PARTITION_TABLE and M.TABLE_SIZE or offset and table_offset - offset
      elseif f[5]:match("^%-") then
        -- gen_esp32part.py: a negative size is where the partition ends
        -- (int() takes no sign nor blank after the '-').
        size = not f[5]:find("^%-[%s+]") and M.parse_number(f[5]:sub(2)) or nil
        size = size and size - offset
      else
        size = M.parse_number(f[5])
      end
      if not fixed and (not size or size <= 0) then
        return fail(("partition '%s': invalid size '%s'"):format(pname, f[5]))
      end
      if not fixed and offset + size > 0x100000000 then
        return fail(("partition '%s': 0x%X bytes at 0x%X pass the end of the 32-bit flash address space")
          :format(pname, size, offset))
      end
      -- As gen_esp32part.py: the sixth column holds the flags, split on
      -- ':' and refused when unknown (a misspelt `encrypted` would not
      -- build); any later column is a note.
      local flags = {}
      for flag in ((f[6] or "") .. ":"):gmatch("([^:]*):") do
        if FLAGS[flag] then
          flags[flag] = true
        elseif flag ~= "" then
          return fail(("partition '%s': unknown flag '%s' (flags: encrypted, readonly)"):format(pname, flag))
        end
      end
      local entry = { name = pname, type = f[2], subtype = f[3], type_id = type_id,
        subtype_id = subtype_id, offset = offset, size = size, flags = flags, line = lineno }
      list[#list + 1] = entry
      by_name[pname] = entry
      if not fixed then last_end = offset + size end
    end
  end
  if #list == 0 then return nil, ("%s: no partitions"):format(name) end
  return list
end

--- Reads and parses the table at `path`.
function M.read(path, opts)
  local text, err = files.read(path)
  if not text then return nil, ("%s: cannot open (%s)"):format(path, files.reason(err, path)) end
  return M.parse(text, path, opts)
end

--- The partition called `name` in `list`, or nil and a message.
function M.find(list, name, table_name)
  for _, p in ipairs(list) do
    if p.name == name then return p end
  end
  return nil, ("%s: no partition named '%s'"):format(table_name or "partition table", name)
end

local KINDS = {
  nvs = { M.NVS, "NVS images need a data,nvs partition" },
  nvs_keys = { M.NVS_KEYS, "the keys of encrypted NVS partitions need a data,nvs_keys partition" },
}

--- The partition labelled `label` in `list`, checked to be of `kind`
-- ("nvs" or "nvs_keys": data partitions of that subtype). Returns it, or
-- nil and "TABLE: no partition named 'x'" or "TABLE:LINE: partition 'x'
-- is app,factory; NVS images need a data,nvs partition".
function M.lookup(list, label, kind, table_name)
  local p, err = M.find(list, label, table_name)
  if not p then return nil, err end
  local want = assert(KINDS[kind], "kind must be nvs or nvs_keys")
  if p.type_id ~= M.DATA or p.subtype_id ~= want[1] then
    return nil, ("%s:%d: partition '%s' is %s,%s; %s"):format(table_name or "partition table", p.line,
      p.name, p.type, p.subtype, want[2])
  end
  return p
end

--- The data,nvs_keys partitions of `list`, in table order.
function M.keys_partitions(list)
  local found = {}
  for _, p in ipairs(list) do
    if p.type_id == M.DATA and p.subtype_id == M.NVS_KEYS then found[#found + 1] = p end
  end
  return found
end

return M
