--- nvsgen.cli.nvs_tool: the command line of Espressif's nvs_tool.py, plus
-- decryption and a check of the image the way the firmware mounts it.
--
--   nvs_tool FILE [-i] [-d all|written|minimal|blobs|namespaces|storage_info|none]
--            [-f text|json] [--color never|auto|always] [--keys KEYS.bin]
--
-- The text dumps have the shapes nvs_tool.py prints, from the same raw view
-- of the pages (entries by slot, spans, CRCs), except that float and double
-- items are known types here. `-i` prints nvs_tool.py's integrity checks,
-- then the problems nvsgen.read finds, and exits 1 when there is any such
-- problem. `-f json` prints nvsgen's own stable JSON (see README.md).

local nvsgen = require("nvsgen")
local args = require("nvsgen.cli.args")
local common = require("nvsgen.cli.common")
local core = require("nvsgen.core")

local byte, char, concat, fmt = string.byte, string.char, table.concat, string.format
local unpack, pack = string.unpack, string.pack

local M = {}

local PROG = "nvs_tool"
local PAGE, ENTRY, ENTRIES = 4096, 32, 126

M.SPEC = {
  prog = PROG,
  summary = "Print and check an ESP-IDF NVS partition image (plain or encrypted).",
  positionals = { { name = "file", help = "NVS partition image to read" } },
  options = {
    { "--integrity-check", alias = "-i", flag = true,
      help = "(-i) check the image; exit 1 if the firmware would find a problem" },
    { "--dump", alias = "-d", metavar = "TYPE", default = "all",
      choices = { "all", "written", "minimal", "namespaces", "blobs", "storage_info", "none" },
      help = "(-d) what to print: all, written, minimal, namespaces, blobs, storage_info or none" },
    { "--color", metavar = "WHEN", default = "auto", choices = { "never", "auto", "always" },
      help = "colour the output: never, auto (on a terminal) or always" },
    { "--format", alias = "-f", metavar = "FORMAT", default = "text", choices = { "text", "json" },
      help = "(-f) output format, text or json; json ignores --dump" },
    { "--keys", metavar = "KEYS.bin", help = "keys partition file to decrypt the image with" },
  },
}

-- ---- the raw view nvs_tool.py prints ---------------------------------------

local PAGE_STATUS = {
  [0xFFFFFFFF] = "Empty", [0xFFFFFFFE] = "Active", [0xFFFFFFFC] = "Full",
  [0xFFFFFFF8] = "Erasing", [0x00000000] = "Corrupted",
}
local ENTRY_STATE = { [3] = "Empty", [2] = "Written", [0] = "Erased", [1] = "Invalid" }
local TYPE_NAME = {
  [0x01] = "uint8_t", [0x11] = "int8_t", [0x02] = "uint16_t", [0x12] = "int16_t",
  [0x04] = "uint32_t", [0x14] = "int32_t", [0x08] = "uint64_t", [0x18] = "int64_t",
  [0x24] = "float", [0x28] = "double",
  [0x21] = "string", [0x41] = "blob", [0x42] = "blob_data", [0x48] = "blob_index",
}
local VAR_TYPES = { string = true, blob = true, blob_data = true }

local function all_ff(s)
  return not s:find("[^\255]")
end

--- One 32-byte slot as nvs_tool.py models it.
local function parse_entry(raw, index, state)
  local e = { raw = raw, index = index, state = state, is_empty = all_ff(raw), children = {} }
  local t = byte(raw, 2)
  e.ns, e.type_code, e.chunk_index = byte(raw, 1), t, byte(raw, 4)
  e.type = TYPE_NAME[t] or fmt("0x%02x", t)
  local span = byte(raw, 3)
  e.span = (span == 0 or span == 0xFF) and 1 or span
  e.crc = unpack("<I4", raw, 5)
  e.crc_computed = core.crc32(raw:sub(1, 4) .. raw:sub(9, 32))
  local key = raw:sub(9, 24):gsub("%z+$", "")
  if not key:find("[\128-\255]") then e.key = key end
  if e.key then
    if t < 0x20 then
      local size, signed = t & 0xF, t & 0xF0 ~= 0
      if size == 1 or size == 2 or size == 4 or size == 8 then
        e.value = unpack((signed and "<i" or "<I") .. size, raw, 25)
        if size == 8 and not signed and e.value < 0 then
          -- above 2^63-1: the digits, as Python prints the int
          local q = (e.value >> 1) // 5
          e.value = fmt("%d%d", q, e.value - q * 10)
        end
      end
    elseif t == 0x24 then
      e.value = unpack("<f", raw, 25)
    elseif t == 0x28 then
      e.value = unpack("<d", raw, 25)
    elseif VAR_TYPES[e.type] then
      e.size, e.data_crc = unpack("<I2", raw, 25), unpack("<I4", raw, 29)
    elseif t == 0x48 then
      e.size, e.chunk_count, e.chunk_start = unpack("<I4BB", raw, 25)
    end
  end
  return e
end

--- The pages of a plain image, whole pages only.
function M.parse(image)
  local pages = {}
  for n = 0, #image // PAGE - 1 do
    local base = n * PAGE
    local header = image:sub(base + 1, base + 32)
    local p = {
      number = n, address = base, header = header, is_empty = all_ff(header),
      status_word = unpack("<I4", header, 1), page_index = unpack("<I4", header, 5),
      version = 256 - byte(header, 9), crc = unpack("<I4", header, 29),
      crc_computed = core.crc32(header:sub(5, 28)),
      bitmap = image:sub(base + 33, base + 64), entries = {},
    }
    p.status = PAGE_STATUS[p.status_word] or "Invalid"
    local function slot(i)
      local at = base + 64 + i * ENTRY
      local state = (byte(p.bitmap, (i >> 2) + 1) >> (2 * (i & 3))) & 3
      return image:sub(at + 1, at + ENTRY), ENTRY_STATE[state]
    end
    local i = 0
    while i < ENTRIES do
      local raw, state = slot(i)
      local e = parse_entry(raw, i, state)
      for c = i + 1, math.min(i + e.span - 1, ENTRIES - 1) do
        local child, child_state = slot(c)
        e.children[#e.children + 1] = { raw = child, index = c, state = child_state }
      end
      if e.span > 1 and e.data_crc then
        local data = {}
        for k, c in ipairs(e.children) do data[k] = c.raw end
        e.data = concat(data):sub(1, e.size)
        e.data_computed = core.crc32(e.data)
      end
      p.entries[#p.entries + 1] = e
      i = i + e.span
    end
    pages[#pages + 1] = p
  end
  return pages
end

-- ---- text output ------------------------------------------------------------

local out -- the output: lines and a colour function, set per run

local function say(...) out.lines[#out.lines + 1] = concat({ ... }) end

local COLORS = { red = 31, green = 32, yellow = 33, blue = 34, cyan = 36, bold = 1 }
local function paint(color, text)
  if not out.color then return text end
  return "\27[" .. COLORS[color] .. "m" .. text .. "\27[0m"
end

local function utf8_latin1(b)
  return utf8.char(b)
end

-- Python's str.isprintable() for chr(b), b < 256.
local function printable(b)
  return (b >= 0x20 and b < 0x7F) or (b >= 0xA1 and b ~= 0xAD)
end

--- The 32 bytes as hex and as characters, nvs_tool.py's dump_raw.
local function dump_raw(raw)
  local hex, chars = {}, {}
  for k = 1, 32 do
    local b = byte(raw, k)
    hex[#hex + 1] = (k == 17 and " " or "") .. fmt("%02x ", b)
    chars[#chars + 1] = (k == 17 and " " or "") .. (printable(b) and utf8_latin1(b) or ".")
  end
  return concat(hex) .. " " .. concat(chars)
end

local function key_text(e)
  return e.key == nil and "None" or e.key
end

local function number_text(v)
  if math.type(v) == "float" then
    if v ~= v then return "nan" elseif v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
    for digits = 1, 17 do
      local s = fmt("%." .. digits .. "g", v)
      if tonumber(s) == v then return s end
    end
  end
  return tostring(v)
end

local function entry_data_text(e)
  if e.key == nil then return "None" end
  if e.type == "blob_index" then
    return fmt("Size=%d, ChunkCount=%d, ChunkStart=%d", e.size, e.chunk_count, e.chunk_start)
  elseif VAR_TYPES[e.type] then
    return fmt("Size=%d, CRC32=%x", e.size, e.data_crc)
  elseif e.value ~= nil then
    return number_text(e.value)
  end
  return "None"
end

local function state_text(state)
  if state == "Written" or state == "Erased" then return fmt("%-7s", state) end
  return state
end

local function entry_line(e)
  return fmt(" %03d. %s, Namespace Index: %03d, Type: %-10s, Span: %03d, Chunk Index: %03d, CRC32: %8x | %s : %s",
    e.index, state_text(e.state), e.ns, e.type, e.span, e.chunk_index, e.crc, key_text(e),
    entry_data_text(e))
end

local function bitmap_line(p)
  local t = {}
  for k = 1, 32 do t[k] = fmt("%02x ", byte(p.bitmap, k)) end
  return " Entry state bitmap: " .. concat(t)
end

local function dump_pages(pages, written_only)
  for _, p in ipairs(pages) do
    if p.is_empty then
      say(fmt("Page Empty, Page address: 0x%x", p.address))
    else
      say(fmt("Page no. %d, Status: %s, Version: %d, CRC32: %8x, Page address: 0x%x",
        p.page_index, p.status, p.version, p.crc, p.address))
    end
    say(bitmap_line(p))
    local run = {}
    local function flush()
      if #run >= 3 then
        say(fmt(" %03d. Empty", run[1]))
        say(" ...")
        say(fmt(" %03d. Empty", run[#run]))
      else
        for _, i in ipairs(run) do say(fmt(" %03d. Empty", i)) end
      end
      run = {}
    end
    for _, e in ipairs(p.entries) do
      if not written_only or e.state == "Written" then
        if e.state == "Empty" and e.is_empty then
          run[#run + 1] = e.index
        else
          flush()
          say(entry_line(e))
          if e.span ~= 1 then
            for k, c in ipairs(e.children) do
              say(fmt("      0x%03x  %s", (k - 1) * 32, dump_raw(c.raw)))
            end
          end
        end
      end
    end
    flush()
    say("")
  end
end

--- Namespace index -> name, from the written entries of namespace 0.
local function namespace_map(pages)
  local map = {}
  for _, p in ipairs(pages) do
    for _, e in ipairs(p.entries) do
      if e.state == "Written" and e.ns == 0 and e.key and math.type(e.value) == "integer" then
        map[e.value] = e.key
      end
    end
  end
  return map
end

-- Python's repr() of a bytes object.
local function bytes_repr(s)
  local quote = (s:find("'", 1, true) and not s:find('"', 1, true)) and '"' or "'"
  local t = {}
  for k = 1, #s do
    local b = byte(s, k)
    local c = char(b)
    if c == "\\" then t[k] = "\\\\"
    elseif c == quote then t[k] = "\\" .. c
    elseif c == "\t" then t[k] = "\\t"
    elseif c == "\n" then t[k] = "\\n"
    elseif c == "\r" then t[k] = "\\r"
    elseif b >= 0x20 and b < 0x7F then t[k] = c
    else t[k] = fmt("\\x%02x", b) end
  end
  return "b" .. quote .. concat(t) .. quote
end

local function dump_minimal(pages)
  local names = namespace_map(pages)
  for _, p in ipairs(pages) do
    say(p.is_empty and "Page Empty" or fmt("Page no. %d, Status: %s", p.page_index, p.status))
    for _, e in ipairs(p.entries) do
      if e.state == "Written" and e.ns ~= 0 and names[e.ns] and e.type ~= "blob_index" then
        local chunk = ""
        if e.type == "blob_data" then
          chunk = fmt("[%d]", e.chunk_index >= 128 and e.chunk_index - 128 or e.chunk_index)
        end
        local data
        if e.key == nil then data = "None"
        elseif VAR_TYPES[e.type] then data = bytes_repr(e.data or "")
        elseif e.value ~= nil then data = number_text(e.value)
        else data = "None" end
        say(fmt(" %s:%s%s = %s", names[e.ns], key_text(e), chunk, data))
      end
    end
    say("")
  end
end

local function dump_namespaces(pages)
  local names = namespace_map(pages)
  local indices = {}
  for i in pairs(names) do indices[#indices + 1] = i end
  table.sort(indices)
  say("Index : Namespace")
  for _, i in ipairs(indices) do say(fmt(" %03d  : %s", i, names[i])) end
end

local MISSING = "  " .. ("-"):rep(63) .. " Missing data " .. ("-"):rep(64)

local function dump_blobs(pages)
  local names = namespace_map(pages)
  local written = {}
  for _, p in ipairs(pages) do
    for _, e in ipairs(p.entries) do
      if e.state == "Written" then written[#written + 1] = e end
    end
  end
  local function label(e) return (names[e.ns] or tostring(e.ns)) .. ":" .. key_text(e) end
  -- version 2 blobs, by namespace and key, first seen order
  local order, blobs = {}, {}
  for _, e in ipairs(written) do
    if e.type == "blob_index" and e.key then
      local id = fmt("%03d", e.ns) .. e.key
      if not blobs[id] then order[#order + 1] = id end
      blobs[id] = e
    end
  end
  for _, id in ipairs(order) do
    local b = blobs[id]
    say(fmt("%s - Type: Blob (Version 2), Size: %d", label(b), b.size))
    local offset = 0
    for ci = b.chunk_start, b.chunk_start + b.chunk_count - 1 do
      local chunk
      for _, e in ipairs(written) do
        if e.type == "blob_data" and e.ns == b.ns and e.key == b.key and e.chunk_index == ci then
          chunk = e
        end
      end
      if chunk then
        for _, c in ipairs(chunk.children) do
          say(fmt("  0x%05x  %s", offset, dump_raw(c.raw)))
          offset = offset + 32
        end
      else
        say(MISSING)
      end
    end
    say("")
  end
  for _, kind in ipairs({ { "string", "String" }, { "blob", "Blob (Version 1)" } }) do
    for _, e in ipairs(written) do
      if e.type == kind[1] and e.key then
        say(fmt("%s - Type: %s, Size: %d", label(e), kind[2], e.size))
        for k, c in ipairs(e.children) do
          say(fmt("  0x%05x  %s", (k - 1) * 32, dump_raw(c.raw)))
        end
        say("")
      end
    end
  end
end

local function dump_storage_info(pages)
  local total = { Written = 0, Erased = 0, Empty = 0, Invalid = 0 }
  local function counts(c)
    say(fmt("    Written: %5d", c.Written))
    say(fmt("    Erased:  %5d", c.Erased))
    say(fmt("    Empty:   %5d", c.Empty))
    say(fmt("    Invalid: %5d", c.Invalid))
    say(fmt("    Total:   %5d", c.Written + c.Erased + c.Empty + c.Invalid))
  end
  for _, p in ipairs(pages) do
    local c = { Written = 0, Erased = 0, Empty = 0, Invalid = 0 }
    for _, e in ipairs(p.entries) do
      c[e.state] = c[e.state] + 1
      total[e.state] = total[e.state] + 1
    end
    say("Page " .. p.status)
    say("  Found entries:")
    counts(c)
    say("")
  end
  say("Global")
  say("  Config:")
  say(fmt("    Page size:   %5d", PAGE))
  say(fmt("    Entry size:  %5d", ENTRY))
  say(fmt("    Total pages: %5d", #pages))
  say("  Entries:")
  counts(total)
  say("")
end

-- ---- nvs_tool.py's integrity checks -------------------------------------------

local function check_duplicates(pages)
  local groups, order = {}, {}
  for _, p in ipairs(pages) do
    for _, e in ipairs(p.entries) do
      if e.state == "Written" and e.key then
        local id = e.ns .. "\0" .. e.key
        if not groups[id] then
          groups[id] = {}
          order[#order + 1] = id
        end
        local g = groups[id]
        g[#g + 1] = { e = e, page = p }
      end
    end
  end
  local function clash(a, b)
    local ta, tb = a.type, b.type
    if (ta == "blob_index" and tb == "blob_data") or (ta == "blob_data" and tb == "blob_index") then
      return false
    end
    return not (ta == "blob_data" and tb == "blob_data" and a.chunk_index ~= b.chunk_index)
  end
  local rows = {}
  for _, id in ipairs(order) do
    local g = groups[id]
    for x = 1, #g do
      for y = 1, #g do
        if x ~= y and clash(g[x].e, g[y].e) then
          rows[#rows + 1] = g[x]
          break
        end
      end
    end
  end
  if #rows == 0 then return end
  say(paint("red", "Found duplicate entries:"))
  say("Entry\tKey\t\t\tType\t\tNamespace idx\tPage\tPage status")
  for _, r in ipairs(rows) do
    local e = r.e
    local t = e.ns == 0 and fmt("namespace (%d)", e.value or 0) or e.type
    say(fmt("#%03d\t%s%s%s%s%d\t\t%d\t%s", e.index, e.key, ("\t"):rep(math.max(0, 3 - #e.key // 8)),
      t, ("\t"):rep(math.max(0, 2 - #t // 8)), e.ns, r.page.page_index, r.page.status))
  end
  say("")
end

local function check_blobs(pages, names)
  local written = {}
  for _, p in ipairs(pages) do
    for _, e in ipairs(p.entries) do
      if e.state == "Written" and e.key then written[#written + 1] = e end
    end
  end
  local function ns_text(ns) return fmt("%03d [%s]", ns, names[ns] or "undefined") end
  for _, e in ipairs(written) do
    if e.type == "blob_data" then
      local found = false
      for _, b in ipairs(written) do
        found = found or (b.type == "blob_index" and b.ns == e.ns and b.key == e.key)
      end
      if not found then
        say(paint("red", fmt("Blob %s chunk has no blob index! Namespace index: %s, Chunk Index: %03d",
          e.key, ns_text(e.ns), e.chunk_index)))
      end
    end
  end
  for _, b in ipairs(written) do
    if b.type == "blob_index" then
      local have = 0
      for ci = b.chunk_start, b.chunk_start + b.chunk_count - 1 do
        local chunk
        for _, e in ipairs(written) do
          if e.type == "blob_data" and e.ns == b.ns and e.key == b.key and e.chunk_index == ci then
            chunk = e
          end
        end
        if chunk then
          have = have + 32 * #chunk.children
        else
          say(paint("red", fmt("Blob %s is missing a chunk! Namespace index: %s, Chunk Index: %03d",
            b.key, ns_text(b.ns), ci)))
        end
      end
      if b.size - have > 0 then
        say(paint("red", fmt("Blob %s is missing %d B of data! Namespace index: %03d",
          b.key, b.size - have, b.ns)))
      end
    end
  end
end

local function check_namespaces(pages, names)
  local used, undefined = {}, {}
  for _, p in ipairs(pages) do
    for _, e in ipairs(p.entries) do
      if e.state == "Written" and e.ns ~= 0 then
        used[e.ns] = true
        if not names[e.ns] and not undefined[e.ns] then
          undefined[e.ns] = true
          say(paint("red", fmt("Undefined namespace index! Namespace index: %03d [undefined]", e.ns)))
        end
      end
    end
  end
  local indices = {}
  for i in pairs(names) do indices[#indices + 1] = i end
  table.sort(indices)
  for _, i in ipairs(indices) do
    if not used[i] then
      say(paint("yellow", fmt("Found unused namespace. Namespace index: %03d [%s]", i, names[i])))
    end
  end
end

local function check_entries(p)
  for _, e in ipairs(p.entries) do
    local n = fmt("#%03d", e.index)
    if e.is_empty and e.state == "Written" then
      say(paint("red", fmt(" Entry %s is reported as Written but it is empty!", n)))
    else
      if e.is_empty and e.state == "Erased" then
        say(paint("yellow", fmt(" Entry %s is reported as Erased but it is empty! " ..
          "(Only entries reported as Empty should be empty)", n)))
      end
      if e.state == "Written" then
        local key = key_text(e)
        if e.crc ~= e.crc_computed then
          say(paint("red", fmt(" Entry %s %s has wrong CRC32!     Written: %x Generated: %x", n, key,
            e.crc, e.crc_computed)))
        end
        if e.span > 1 and e.data_computed and e.data_crc ~= e.data_computed then
          say(paint("red", fmt(" Entry %s %s data (string, blob) has wrong CRC32! Written: %x Generated: %x",
            n, key, e.data_crc, e.data_computed)))
        end
        if not TYPE_NAME[e.type_code] then
          say(paint("red", fmt(" Type of entry %s %s is unrecognized! Type: %s", n, key, e.type)))
        end
        if e.index + e.span - 1 >= ENTRIES then
          say(paint("red", fmt(" Variable length entry %s %s is out of bounds!", n, key)))
        elseif e.span > 1 then
          for _, c in ipairs(e.children) do
            if c.state ~= e.state then
              say(paint("red", fmt(" Inconsistent data state! Entry %s %s state: %s, Data entry #%03d %s state: %s",
                n, key, e.state, c.index, key, c.state)))
              break
            end
          end
        end
      end
    end
  end
end

local function integrity_check(pages)
  if #pages < 3 then
    say(paint("yellow", "NVS Partition size must be at least 0x3000 (4kiB * 3 pages == 12kiB)!"))
  end
  local free = false
  for _, p in ipairs(pages) do free = free or p.status == "Empty" end
  if not free then
    say(paint("red", "No free (empty) page found in the NVS partition,"))
    say(paint("red", "at least one free page is required for proper function!"))
    say(paint("red", "NVS partition possibly truncated?"))
    say("")
  end
  for _, p in ipairs(pages) do
    if p.status == "Empty" then
      say("Page Empty")
      if not all_ff(p.bitmap) then
        say(paint("red", "The page is reported as Empty but its entry state bitmap is not empty!"))
      end
      local body = {}
      for _, e in ipairs(p.entries) do
        body[#body + 1] = e.raw
        for _, c in ipairs(e.children) do body[#body + 1] = c.raw end
      end
      if not all_ff(concat(body)) then
        say(paint("red", "The page is reported as Empty but there are data written!"))
      end
    else
      if p.crc == p.crc_computed then
        say(fmt("Page no. %d \tCRC32: %s", p.page_index, paint("green", "OK")))
      else
        say(paint("red", fmt("Page no. %d Original CRC32: %x Generated CRC32: %x", p.page_index, p.crc,
          p.crc_computed)))
      end
      check_entries(p)
    end
  end
  say("")
  check_duplicates(pages)
  local names = namespace_map(pages)
  check_blobs(pages, names)
  check_namespaces(pages, names)
end

--- One line per problem nvsgen.read found.
function M.problem_line(pb)
  local where
  if pb.page == nil then where = "Image"
  elseif pb.entry == nil then where = fmt("Page %d", pb.page)
  else where = fmt("Page %d, entry %03d", pb.page, pb.entry) end
  return fmt("%s: %s: %s", where, pb.severity, pb.reason)
end

local function firmware_check(r)
  if #r.problems == 0 then
    say("The firmware mounts this image with no problem.")
    return
  end
  say(paint("red", fmt("The firmware would find %d problem%s (%d error%s, %d warning%s):", #r.problems,
    #r.problems == 1 and "" or "s", r.errors, r.errors == 1 and "" or "s", r.warnings,
    r.warnings == 1 and "" or "s")))
  for _, pb in ipairs(r.problems) do
    say(paint(pb.severity == "error" and "red" or "yellow", M.problem_line(pb)))
  end
end

-- ---- JSON ------------------------------------------------------------------------

local function json_string(s)
  return '"' .. s:gsub('[%c"\\\127]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return named[c] or fmt("\\u%04x", byte(c))
  end) .. '"'
end

-- Floats as the shortest text that reads back as the same float (or
-- double); non-finite values as strings, which JSON has no number for.
local function json_real(v, single)
  if v ~= v then return '"nan"' elseif v == math.huge then return '"inf"' elseif v == -math.huge then
    return '"-inf"' end
  for digits = 1, 17 do
    local s = fmt("%." .. digits .. "g", v)
    local back = tonumber(s)
    if single and pack("<f", back) == pack("<f", v) or not single and back == v then
      if not s:find("[%.eEn]") then s = s .. ".0" end
      return s
    end
  end
  return fmt("%.17g", v)
end

--- A JSON object from a list of {name, encoded value} pairs, one per line.
local function object(fields, indent)
  local pad = ("  "):rep(indent + 1)
  local t = {}
  for k, f in ipairs(fields) do t[k] = pad .. json_string(f[1]) .. ": " .. f[2] end
  if #t == 0 then return "{}" end
  return "{\n" .. concat(t, ",\n") .. "\n" .. ("  "):rep(indent) .. "}"
end

local function array(values, indent)
  if #values == 0 then return "[]" end
  local pad = ("  "):rep(indent + 1)
  local t = {}
  for k, v in ipairs(values) do t[k] = pad .. v end
  return "[\n" .. concat(t, ",\n") .. "\n" .. ("  "):rep(indent) .. "]"
end

local function item_value(item)
  if item.type == "blob" then return json_string(nvsgen.hex_encode(item.value)), "hex" end
  if item.type == "string" then
    if utf8.len(item.value) then return json_string(item.value) end
    return json_string(nvsgen.hex_encode(item.value)), "hex"
  end
  if item.type == "float" or item.type == "double" then
    return json_real(item.value, item.type == "float")
  end
  return tostring(item.value) -- integers, u64 above 2^63-1 as its digits
end

--- The JSON document of a read result (nvsgen.read's table).
function M.json(r, name)
  local pages, namespaces, items, problems = {}, {}, {}, {}
  for k, p in ipairs(r.pages) do
    pages[k] = object({
      { "index", tostring(p.index) }, { "state", json_string(p.state) },
      { "seq", tostring(p.seq) }, { "version", tostring(p.version) },
      { "header_crc_ok", tostring(p.header_ok) }, { "loaded", tostring(p.loaded) },
      { "entries", object({ { "written", tostring(p.bitmap.written) },
        { "erased", tostring(p.bitmap.erased) }, { "empty", tostring(p.bitmap.empty) },
        { "illegal", tostring(p.bitmap.illegal) } }, 3) },
    }, 2)
  end
  for k, ns in ipairs(r.namespace_entries) do
    namespaces[k] = object({ { "index", tostring(ns.index) }, { "name", json_string(ns.name) },
      { "page", tostring(ns.page) }, { "entry", tostring(ns.entry) } }, 2)
  end
  for k, item in ipairs(r.items) do
    local value, encoding = item_value(item)
    local fields = {
      { "page", tostring(item.page) }, { "entry", tostring(item.entry) },
      { "namespace", json_string(item.namespace) }, { "key", json_string(item.key) },
      { "type", json_string(item.type) }, { "value", value },
    }
    if encoding then fields[#fields + 1] = { "encoding", json_string(encoding) } end
    items[k] = object(fields, 2)
  end
  for k, pb in ipairs(r.problems) do
    problems[k] = object({ { "page", pb.page and tostring(pb.page) or "null" },
      { "entry", pb.entry and tostring(pb.entry) or "null" },
      { "severity", json_string(pb.severity) }, { "reason", json_string(pb.reason) } }, 2)
  end
  return object({
    { "name", json_string(name) },
    { "encrypted", tostring(r.encrypted) },
    { "pages", array(pages, 1) },
    { "namespaces", array(namespaces, 1) },
    { "items", array(items, 1) },
    { "problems", array(problems, 1) },
  }, 0)
end

-- ---- the command ----------------------------------------------------------------

local DUMPS = {
  all = function(pages) dump_pages(pages, false) end,
  written = function(pages) dump_pages(pages, true) end,
  minimal = dump_minimal, namespaces = dump_namespaces, blobs = dump_blobs,
  storage_info = dump_storage_info, none = function() end,
}

local function wants_color(when)
  if when == "always" then return true end
  if when == "never" or common.stdout ~= io.stdout then return false end
  local ok, term = pcall(require, "term")
  return ok and term.isatty(io.stdout) or false
end

function M.main(argv)
  local opts, err = args.parse(M.SPEC, argv)
  if not opts then
    common.stderr:write(args.usage(M.SPEC), "\n")
    return common.fail(PROG, err, common.EXIT_USAGE)
  end
  if opts.help then
    common.stdout:write(args.help(M.SPEC))
    return common.EXIT_OK
  end
  local f
  f, err = io.open(opts.file, "rb")
  if not f then return common.fail(PROG, err) end
  local image = f:read("a")
  f:close()
  if not image then return common.fail(PROG, opts.file .. ": read error") end
  if #image % PAGE ~= 0 then
    return common.fail(PROG, fmt("%s: Given partition data is not aligned to page size (%d %% 4096 = %d)",
      opts.file, #image, #image % PAGE))
  end
  local r
  r, err = nvsgen.read(image, opts.keys)
  if not r then return common.fail(PROG, err) end
  out = { lines = {}, color = wants_color(opts.color) }
  if opts.format == "json" then
    say(M.json(r, opts.file:match("[^/]*$")))
  else
    local pages = M.parse(r.image)
    DUMPS[opts.dump](pages)
    if opts.integrity_check then
      say("")
      integrity_check(pages)
      firmware_check(r)
    end
  end
  common.stdout:write(concat(out.lines, "\n"), #out.lines > 0 and "\n" or "")
  out = nil
  if opts.integrity_check and #r.problems > 0 then return common.EXIT_FAIL end
  return common.EXIT_OK
end

return M
