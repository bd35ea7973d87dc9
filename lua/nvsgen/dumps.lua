--- nvsgen.dumps: the text dumps of nvs_tool (the shapes ESP-IDF's
-- nvs_tool.py prints) from the page model of nvsgen.pages, followed with
-- -i by the checks of nvsgen.checks.

local checks = require("nvsgen.checks")
local nvsgen_pages = require("nvsgen.pages")
local textout = require("nvsgen.textout")

local byte, char, concat, fmt = string.byte, string.char, table.concat, string.format

local M = {}

local PAGE, ENTRY = nvsgen_pages.PAGE, nvsgen_pages.ENTRY
local VAR_TYPES = { string = true, blob = true, blob_data = true }

local say, paint, key_text = textout.say, textout.paint, textout.key_text
local each_page = nvsgen_pages.each

-- Python's str.isprintable() for chr(b), b < 256.
local function printable(b)
  return (b >= 0x20 and b < 0x7F) or (b >= 0xA1 and b ~= 0xAD)
end

--- The 32 bytes as hex and as characters (Latin-1, as Python's chr()).
local function dump_raw(raw)
  local hex, chars = {}, {}
  for k = 1, 32 do
    local b = byte(raw, k)
    hex[#hex + 1] = (k == 17 and " " or "") .. fmt("%02x ", b)
    chars[#chars + 1] = (k == 17 and " " or "") .. (printable(b) and utf8.char(b) or ".")
  end
  return concat(hex) .. " " .. concat(chars)
end

-- Floats as the shortest text that reads back the same, as Python prints.
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

local function crc_text(stored, computed, format)
  return paint(stored == computed and "green" or "red", fmt(format, stored))
end

local function entry_data_text(e)
  if e.key == nil then return "None" end
  if e.type == "blob_index" then
    return fmt("Size=%d, ChunkCount=%d, ChunkStart=%d", e.size, e.chunk_count, e.chunk_start)
  elseif VAR_TYPES[e.type] then
    return fmt("Size=%d, CRC32=", e.size) .. crc_text(e.data_crc, e.data_computed, "%x")
  elseif e.value ~= nil then
    return number_text(e.value)
  end
  return "None"
end

local function state_text(state)
  if state == "Written" then return paint("green", "Written") end
  if state == "Erased" then return paint("red", "Erased ") end
  return state
end

local function entry_line(e)
  return paint("bold", fmt(" %03d.", e.index)) .. " " .. state_text(e.state)
    .. fmt(", Namespace Index: %03d, Type: %-10s, Span: %03d, Chunk Index: %03d, CRC32: ", e.ns, e.type,
      e.span, e.chunk_index)
    .. crc_text(e.crc, e.crc_computed, "%8x") .. " | " .. key_text(e) .. " : " .. entry_data_text(e)
end

local function bitmap_line(p)
  local t = {}
  for k = 1, 32 do t[k] = fmt("%02x ", byte(p.bitmap, k)) end
  return paint("bold", " Entry state bitmap: ") .. concat(t)
end

local function dump_pages(image, written_only)
  for p in each_page(image) do
    if p.is_empty then
      say(paint("bold", fmt("Page Empty, Page address: 0x%x", p.address)))
    else
      say(paint("bold", fmt("Page no. %d, Status: %s, Version: %d, CRC32: ", p.page_index, p.status, p.version)
        .. crc_text(p.crc, p.crc_computed, "%8x")) .. paint("bold", fmt(", Page address: 0x%x", p.address)))
    end
    say(bitmap_line(p))
    local run = {}
    local function flush()
      if #run >= 3 then
        say(paint("bold", fmt(" %03d.", run[1])), " Empty")
        say(paint("bold", " ..."))
        say(paint("bold", fmt(" %03d.", run[#run])), " Empty")
      else
        for _, i in ipairs(run) do say(paint("bold", fmt(" %03d.", i)), " Empty") end
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

local function dump_minimal(image)
  local names = nvsgen_pages.namespace_map(image)
  for p in each_page(image) do
    say(paint("bold", p.is_empty and "Page Empty" or fmt("Page no. %d, Status: %s", p.page_index, p.status)))
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
        say(" ", paint("cyan", names[e.ns]), ":", paint("yellow", key_text(e)), chunk, " = ", data)
      end
    end
    say("")
  end
end

local function dump_namespaces(image)
  local names = nvsgen_pages.namespace_map(image)
  local indices = {}
  for i in pairs(names) do if math.type(i) == "integer" then indices[#indices + 1] = i end end
  table.sort(indices)
  say(paint("bold", "Index : Namespace"))
  for _, i in ipairs(indices) do say(fmt(" %03d  : ", i), paint("cyan", names[i])) end
end

local MISSING = "  " .. ("-"):rep(63) .. " Missing data " .. ("-"):rep(64)

local function dump_blobs(image)
  local names = nvsgen_pages.namespace_map(image)
  local written = {}
  for p in each_page(image) do
    for _, e in ipairs(p.entries) do
      if e.state == "Written" then written[#written + 1] = e end
    end
  end
  local function label(e)
    return paint("cyan", names[e.ns] or tostring(e.ns)) .. ":" .. paint("yellow", key_text(e))
  end
  -- version 2 blobs, by namespace and key: the last index written wins,
  -- in the place of the first
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
    local chunks = {}
    for _, e in ipairs(written) do
      if e.type == "blob_data" and e.ns == b.ns and e.key == b.key then
        chunks[e.chunk_index - b.chunk_start] = e
      end
    end
    say(label(b), fmt(" - Type: Blob (Version 2), Size: %d", b.size))
    local offset = 0
    for k = 0, b.chunk_count - 1 do
      local chunk = chunks[k]
      if chunk then
        for _, c in ipairs(chunk.children) do
          say(fmt("  0x%05x  %s", offset, dump_raw(c.raw)))
          offset = offset + 32
        end
      else
        say(paint("yellow", MISSING))
        offset = offset + 32
      end
    end
    say("")
  end
  for _, kind in ipairs({ { "string", "String" }, { "blob", "Blob (Version 1)" } }) do
    for _, e in ipairs(written) do
      if e.type == kind[1] and e.key then
        say(label(e), fmt(" - Type: %s, Size: %d", kind[2], e.size))
        for k, c in ipairs(e.children) do
          say(fmt("  0x%05x  %s", (k - 1) * 32, dump_raw(c.raw)))
        end
        say("")
      end
    end
  end
end

local function dump_storage_info(image)
  local total = { Written = 0, Erased = 0, Empty = 0, Invalid = 0 }
  local function counts(c)
    say(fmt("    Written: %5d", c.Written))
    say(fmt("    Erased:  %5d", c.Erased))
    say(fmt("    Empty:   %5d", c.Empty))
    say(fmt("    Invalid: %5d", c.Invalid))
    say(fmt("    Total:   %5d", c.Written + c.Erased + c.Empty + c.Invalid))
  end
  for p in each_page(image) do
    local c = { Written = 0, Erased = 0, Empty = 0, Invalid = 0 }
    for _, e in ipairs(p.entries) do
      c[e.state] = c[e.state] + 1
      total[e.state] = total[e.state] + 1
    end
    say(paint("bold", "Page " .. p.status))
    say("  Found entries:")
    counts(c)
    say("")
  end
  say(paint("bold", "Global"))
  say("  Config:")
  say(fmt("    Page size:   %5d", PAGE))
  say(fmt("    Entry size:  %5d", ENTRY))
  say(fmt("    Total pages: %5d", nvsgen_pages.page_count(image)))
  say("  Entries:")
  counts(total)
  say("")
end

local DUMPS = {
  all = function(image) dump_pages(image, false) end,
  written = function(image) dump_pages(image, true) end,
  minimal = dump_minimal, namespaces = dump_namespaces, blobs = dump_blobs,
  storage_info = dump_storage_info, none = function() end,
}

--- The dump names `-d` takes.
M.NAMES = { "all", "written", "minimal", "namespaces", "blobs", "storage_info", "none" }

--- Writes the text nvs_tool prints for a read result `r` (nvsgen.read's)
-- through `write(text)`, a batch of lines at a time, each line ending in a
-- newline: `opts.dump` one of M.NAMES, `opts.integrity` adds the checks,
-- `opts.color` paints it with ANSI colours.
function M.write(r, opts, write)
  textout.begin(write, opts.color)
  local dump = opts.dump or "all"
  if dump ~= "none" or opts.integrity then
    -- page by page: a page is parsed, printed and dropped
    DUMPS[dump](r.image)
    if opts.integrity then
      say("")
      checks.integrity(r.image)
    end
  end
  if opts.integrity then checks.firmware(r) end
  textout.finish()
end

--- The same text as one string.
function M.text(r, opts)
  local parts = {}
  M.write(r, opts, function(text) parts[#parts + 1] = text end)
  return concat(parts)
end

return M
