--- nvsgen.flash_files: a unit's partition files as flash-ready output: esptool's
-- argument file, one merged binary, and Intel HEX.
--
-- Each function takes the unit's parts, a list of
-- `{ offset = N, size = N, data = "bytes", name = "file", label = "nvs" }`
-- (size: the partition's, which the data must not pass; name: the file as
-- esptool is to open it; label: for messages), in any order.
--
--     local flash = require("nvsgen.flash_files")
--     local args = flash.flash_args(parts)   -- "0x9000 out/unit-1-fctry.bin\n..."
--     local bin = flash.merged(parts)        -- lowest to highest written byte
--     local hex = flash.intel_hex(parts)     -- only the written bytes

local core = require("nvsgen.core")

local format, concat, byte, sub = string.format, table.concat, string.byte, string.sub
local hex_encode = core.hex_encode

local M = {}

local ADDRESS_SPACE = 0x100000000

-- A part's name for messages.
local function what(p)
  return format("partition '%s'", p.label or p.name or "?")
end

--- The parts sorted by offset, checked: integer offsets and sizes, data
-- within its partition, partitions not overlapping. Returns the sorted
-- list, or nil and a message.
function M.check(parts)
  local sorted = {}
  for i, p in ipairs(parts) do
    if math.type(p.offset) ~= "integer" or p.offset < 0 then
      return nil, format("%s: no flash offset", what(p))
    end
    if math.type(p.size) ~= "integer" or p.size <= 0 then
      return nil, format("%s: no partition size", what(p))
    end
    if p.offset + p.size > ADDRESS_SPACE then
      -- Flash addresses (partition table entries, Intel HEX's extended
      -- linear addresses) are 32 bits: such a file would name no address.
      return nil, format("%s: 0x%X bytes at 0x%X pass the end of the 32-bit flash address space", what(p),
        p.size, p.offset)
    end
    if type(p.data) ~= "string" then return nil, format("%s: no data", what(p)) end
    if #p.data > p.size then
      -- Flashing it would overwrite whatever follows the partition.
      return nil, format("%s: %d bytes do not fit its 0x%X bytes at 0x%X", what(p), #p.data, p.size,
        p.offset)
    end
    sorted[i] = p
  end
  table.sort(sorted, function(a, b) return a.offset < b.offset end)
  for i = 2, #sorted do
    local a, b = sorted[i - 1], sorted[i]
    if b.offset < a.offset + a.size then
      return nil, format("%s at 0x%X overlaps %s (0x%X to 0x%X)", what(b), b.offset, what(a), a.offset,
        a.offset + a.size - 1)
    end
  end
  return sorted
end

-- A word as Python's shlex.split reads it back (esptool splits each line
-- of an argument file so): plain when it holds only safe characters, else
-- in single quotes, a quote itself written as '"'"'.
local function shell_word(word)
  if word ~= "" and not word:find("[^%w@%%+=:,./_-]") then return word end
  return "'" .. word:gsub("'", "'\"'\"'") .. "'"
end
--- A word quoted for a POSIX shell (and shlex.split) where it needs it.
M.shell_word = shell_word

--- The text of an esptool argument file (`esptool.py write_flash @FILE`):
-- one `0xOFFSET NAME` line per part, by offset. Names are written as
-- given; esptool opens them relative to the folder it runs in.
function M.flash_args(parts)
  local sorted, err = M.check(parts)
  if not sorted then return nil, err end
  local lines = {}
  for i, p in ipairs(sorted) do
    lines[i] = format("0x%x %s\n", p.offset, shell_word(p.name))
  end
  return concat(lines)
end

--- One binary from the lowest offset written to the highest byte written,
-- each part's data at its offset and 0xFF (erased flash) in between; a
-- part's data is never padded to its partition's end.
function M.merged(parts)
  local sorted, err = M.check(parts)
  if not sorted then return nil, err end
  if #sorted == 0 then return "" end
  local out, at = {}, sorted[1].offset
  for _, p in ipairs(sorted) do
    if #p.data > 0 then
      if p.offset > at then out[#out + 1] = ("\xFF"):rep(p.offset - at) end
      out[#out + 1] = p.data
      at = p.offset + #p.data
    end
  end
  return concat(out)
end

-- Two capital hex digits for each byte value.
local HEX2 = {}
for v = 0, 255 do HEX2[v] = format("%02X", v) end

-- The data records of sixteen bytes of erased flash by their 16-bit
-- address, made as first needed.
local ERASED_DIGITS = ("FF"):rep(16)
local erased_lines = {}

-- The checksum of a record: the two's complement of the sum of its bytes.
local function checksum(sum)
  return (-sum) & 0xFF
end

-- The sum of the bytes i to j of data (at most 16), in one call to byte.
local function sum_bytes(data, i, j)
  local a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16 = byte(data, i, j)
  if j - i == 15 then
    return a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15 + a16
  end
  local s = 0
  for k = i, j do s = s + byte(data, k) end
  return s
end

--- Intel HEX of the written bytes only, as esptool's `merge_bin --format
-- hex` writes it (with Python's intelhex): data records of up to 16 bytes,
-- each within one run of written bytes and one 64 KiB block; when any
-- byte lies above 0xFFFF, an extended linear address record (type 04)
-- before the first record and before each record that starts a new
-- 64 KiB block; no start address record; the end-of-file record; capital
-- hex digits; lines ending in "\n".
function M.intel_hex(parts)
  local sorted, err = M.check(parts)
  if not sorted then return nil, err end
  -- Runs of written bytes: adjacent parts make one run.
  local runs = {}
  for _, p in ipairs(sorted) do
    if #p.data > 0 then
      local last = runs[#runs]
      if last and last.stop == p.offset then
        last.chunks[#last.chunks + 1] = p.data
        last.stop = p.offset + #p.data
      else
        runs[#runs + 1] = { start = p.offset, stop = p.offset + #p.data, chunks = { p.data } }
      end
    end
  end
  local lines = {}
  local top = #runs > 0 and runs[#runs].stop - 1 or 0
  local extended = top > 0xFFFF
  local block
  for _, run in ipairs(runs) do
    local data = concat(run.chunks)
    local digits = hex_encode(data):upper()
    local addr, pos, n = run.start, 1, #data
    while pos <= n do
      local high = addr >> 16
      if extended and high ~= block then
        block = high
        lines[#lines + 1] = format(":02000004%04X%02X\n", high,
          checksum(2 + 4 + (high >> 8) + (high & 0xFF)))
      end
      local low = addr & 0xFFFF
      local count = math.min(16, 0x10000 - low, n - pos + 1)
      local last = pos + count - 1
      local bytes_sum = sum_bytes(data, pos, last)
      -- Sixteen bytes summing to 16 * 0xFF are all 0xFF. Most of an NVS
      -- image is erased flash: one line per address, made once.
      if bytes_sum == 16 * 0xFF and count == 16 then
        local line = erased_lines[low]
        if not line then
          line = format(":10%04X00%s%02X\n", low, ERASED_DIGITS, checksum(16 + (low >> 8) + (low & 0xFF) + 16 * 0xFF))
          erased_lines[low] = line
        end
        lines[#lines + 1] = line
      else
        local hi, lo = low >> 8, low & 0xFF
        local sum = count + hi + lo + bytes_sum
        lines[#lines + 1] = ":" .. HEX2[count] .. HEX2[hi] .. HEX2[lo] .. "00" .. sub(digits, 2 * pos - 1, 2 * last)
          .. HEX2[checksum(sum)] .. "\n"
      end
      addr, pos = addr + count, last + 1
    end
  end
  lines[#lines + 1] = ":00000001FF\n"
  return concat(lines)
end

return M
