--- nvsgen.partition_table: reads an ESP-IDF partition table (partitions.csv).
--
-- Columns: name, type, subtype, offset, size, flags. As ESP-IDF's
-- gen_esp32part.py does: lines starting with '#' and blank lines are
-- skipped, fields are trimmed, sizes and offsets are decimal, 0x hex, or a
-- number with a K or M suffix; an empty offset follows the previous
-- partition, aligned to 0x10000 for app partitions and 0x1000 for data
-- partitions, and the first one follows the table itself (at 0x8000 by
-- default, so it starts at 0x9000).
--
--     local pt = require("nvsgen.partition_table")
--     local t = assert(pt.read("partitions.csv"))
--     local nvs = assert(pt.find(t, "nvs"))   -- nvs.offset, nvs.size

local files = require("nvsgen.files")
local options = require("nvsgen.options")

local M = {}

M.TABLE_OFFSET = 0x8000
M.TABLE_SIZE = 0x1000

local TYPES = { app = 0x00, data = 0x01 }
--- The type and subtype codes of an NVS partition (data, nvs).
M.DATA, M.NVS = TYPES.data, 0x02
local ALIGN = { [0x00] = 0x10000 }
local DATA_ALIGN = 0x1000

local SUBTYPES = {
  [0x00] = { factory = 0x00, test = 0x20 },
  [0x01] = { ota = 0x00, phy = 0x01, nvs = M.NVS, coredump = 0x03, nvs_keys = 0x04,
    efuse = 0x05, undefined = 0x06, esphttpd = 0x80, fat = 0x81, spiffs = 0x82, littlefs = 0x83 },
}
for i = 0, 15 do SUBTYPES[0x00]["ota_" .. i] = 0x10 + i end

--- Parses a size or offset: decimal, 0x hex, or with a K or M suffix.
-- Returns an integer, or nil.
function M.parse_number(text)
  local t = text:match("^%s*(.-)%s*$")
  local num, suffix = t:match("^(%w-)([kKmM]?)$")
  if not num or num == "" then return nil end
  local n
  if num:match("^0[xX]%x+$") then n = tonumber(num:sub(3), 16)
  elseif num:match("^%d+$") then n = tonumber(num, 10)
  end
  if not n then return nil end
  if suffix == "k" or suffix == "K" then n = n * 1024
  elseif suffix == "m" or suffix == "M" then n = n * 1024 * 1024 end
  return n
end

local function type_code(text)
  if TYPES[text] then return TYPES[text] end
  local n = M.parse_number(text)
  if n and n >= 0 and n <= 0xFE then return n end
end

local function subtype_code(type_id, text)
  local names = SUBTYPES[type_id]
  if names and names[text] then return names[text] end
  if text == "" then return 0 end
  local n = M.parse_number(text)
  if n and n >= 0 and n <= 0xFE then return n end
end

local PARSE_OPTIONS = { table_offset = true }

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
      local offset
      if f[4] == "" then
        offset = (last_end + align - 1) // align * align
      else
        offset = M.parse_number(f[4])
        if not offset then return fail(("partition '%s': invalid offset '%s'"):format(pname, f[4])) end
        if offset % align ~= 0 then
          return fail(("partition '%s': offset 0x%X is not aligned to 0x%X"):format(pname, offset, align))
        end
        if offset < last_end then
          return fail(("partition '%s': offset 0x%X overlaps the previous partition (ends at 0x%X)")
            :format(pname, offset, last_end))
        end
      end
      local size = M.parse_number(f[5])
      if not size or size <= 0 then
        return fail(("partition '%s': invalid size '%s'"):format(pname, f[5]))
      end
      local flags = {}
      for i = 6, #f do
        for flag in f[i]:gmatch("[^:%s]+") do flags[flag] = true end
      end
      local entry = { name = pname, type = f[2], subtype = f[3], type_id = type_id,
        subtype_id = subtype_id, offset = offset, size = size, flags = flags, line = lineno }
      list[#list + 1] = entry
      by_name[pname] = entry
      last_end = offset + size
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

return M
