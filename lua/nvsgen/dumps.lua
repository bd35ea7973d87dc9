--- nvsgen.dumps: the text dumps and integrity checks of nvs_tool (the
-- shapes ESP-IDF's nvs_tool.py prints), from the page model of
-- nvsgen.pages and the firmware's view of nvsgen.read.

local nvsgen_pages = require("nvsgen.pages")
local report = require("nvsgen.report")

local byte, char, concat, fmt = string.byte, string.char, table.concat, string.format

local M = {}

local PAGE, ENTRY, ENTRIES = nvsgen_pages.PAGE, nvsgen_pages.ENTRY, nvsgen_pages.ENTRIES
local KNOWN_TYPE = nvsgen_pages.KNOWN_TYPE
local VAR_TYPES = { string = true, blob = true, blob_data = true }

local function all_ff(s)
  return not s:find("[^\255]")
end

-- ---- text output ------------------------------------------------------------

local out -- the output: where lines go and whether to colour, set per run

-- Lines are handed on in batches, so a large image's dump is never held
-- whole in memory.
local BATCH = 512

local function say(...)
  local lines = out.lines
  lines[#lines + 1] = concat({ ... })
  if #lines >= BATCH then
    out.write(concat(lines, "\n", 1, #lines) .. "\n")
    out.lines = {}
  end
end

local COLORS = { red = 31, green = 32, yellow = 33, blue = 34, cyan = 36, bold = 1 }
local function paint(color, text)
  text = tostring(text)
  if not out.color then return text end
  return "\27[" .. COLORS[color] .. "m" .. text .. "\27[0m"
end

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

local function key_text(e)
  return e.key == nil and "None" or e.key
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

local function dump_pages(pages, written_only)
  for _, p in ipairs(pages) do
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

--- Namespace index -> name, and the indices in the order first defined,
-- from the written entries of namespace 0.
local function namespace_map(pages)
  local map, order = {}, {}
  for _, p in ipairs(pages) do
    for _, e in ipairs(p.entries) do
      if e.state == "Written" and e.ns == 0 and e.value ~= nil then
        if map[e.value] == nil then order[#order + 1] = e.value end
        map[e.value] = key_text(e)
      end
    end
  end
  return map, order
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

local function dump_namespaces(pages)
  local names = namespace_map(pages)
  local indices = {}
  for i in pairs(names) do if math.type(i) == "integer" then indices[#indices + 1] = i end end
  table.sort(indices)
  say(paint("bold", "Index : Namespace"))
  for _, i in ipairs(indices) do say(fmt(" %03d  : ", i), paint("cyan", names[i])) end
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
    say(paint("bold", "Page " .. p.status))
    say("  Found entries:")
    counts(c)
    say("")
  end
  say(paint("bold", "Global"))
  say("  Config:")
  say(fmt("    Page size:   %5d", PAGE))
  say(fmt("    Entry size:  %5d", ENTRY))
  say(fmt("    Total pages: %5d", #pages))
  say("  Entries:")
  counts(total)
  say("")
end

-- ---- nvs_tool.py's integrity checks -------------------------------------------

--- Same key written more than once where the firmware would see two
-- values: same namespace, and not a blob index with its chunks, nor two
-- chunks of different index. Returns the entries to list, grouped by key.
local function find_duplicates(written)
  local groups, order = {}, {}
  for _, w in ipairs(written) do
    local id = w.e.key or "\0none"
    if not groups[id] then
      groups[id] = {}
      order[#order + 1] = id
    end
    local g = groups[id]
    g[#g + 1] = w
  end
  -- keeps the entries of `list` that share a namespace (and `same`) with
  -- another of them, in order
  local function colliding(list, same)
    local hit = {}
    for x = 1, #list do
      for y = 1, x - 1 do
        if list[x].e.ns == list[y].e.ns and (not same or same(list[x].e, list[y].e)) then
          hit[x], hit[y] = true, true
        end
      end
    end
    local kept = {}
    for x = 1, #list do if hit[x] then kept[#kept + 1] = list[x] end end
    return kept
  end
  local rows = {}
  for _, id in ipairs(order) do
    local known = {}
    for _, w in ipairs(groups[id]) do
      if KNOWN_TYPE[w.e.type] then known[#known + 1] = w end
    end
    local first = colliding(known)
    local index, data, other = {}, {}, {}
    for _, w in ipairs(first) do
      local t = w.e.type
      local list = t == "blob_index" and index or t == "blob_data" and data or other
      list[#list + 1] = w
    end
    for _, w in ipairs(colliding(index)) do rows[#rows + 1] = w end
    for _, w in ipairs(colliding(data, function(a, b) return a.chunk_index == b.chunk_index end)) do
      rows[#rows + 1] = w
    end
    for _, w in ipairs(other) do rows[#rows + 1] = w end
  end
  return rows
end

local function print_duplicates(rows)
  if #rows == 0 then return end
  say(paint("red", "Found duplicate entries:"))
  say(paint("red", "Entry\tKey\t\t\tType\t\tNamespace idx\tPage\tPage status"))
  for _, w in ipairs(rows) do
    local e, key = w.e, key_text(w.e)
    local t = e.ns == 0 and fmt("namespace (%s)", tostring(e.value)) or e.type
    say(paint("red", fmt("#%03d\t%s%s%s%s%d\t\t%d\t%s", e.index, key, ("\t"):rep(3 - #key // 8), t,
      ("\t"):rep(2 - #t // 8), e.ns, w.page.page_index, w.page.status)))
  end
end

local function ns_label(names, ns)
  return fmt("Namespace index: %03d [%s]", ns, names[ns] or "undefined")
end

local function check_blobs(written, names)
  local blobs, order = {}, {}
  for _, w in ipairs(written) do
    local e = w.e
    if e.type == "blob_index" and e.key then
      local id = fmt("%03d", e.ns) .. e.key
      if not blobs[id] then order[#order + 1] = id end
      blobs[id] = { index = e, chunks = {} } -- a later index starts afresh
    end
  end
  for _, w in ipairs(written) do
    local e = w.e
    if e.type == "blob_data" and e.key then
      local b = blobs[fmt("%03d", e.ns) .. e.key]
      if not b then
        say(paint("red", fmt("Blob %s chunk has no blob index!", e.key)),
          fmt(" %s, Chunk Index: %03d", ns_label(names, e.ns), e.chunk_index))
      else
        b.chunks[e.chunk_index - b.index.chunk_start] = e
      end
    end
  end
  for _, id in ipairs(order) do
    local b = blobs[id]
    local missing = b.index.size
    for k = 0, b.index.chunk_count - 1 do
      local chunk = b.chunks[k]
      if chunk then
        missing = missing - 32 * #chunk.children
      else
        say(paint("red", fmt("Blob %s is missing a chunk!", b.index.key)),
          fmt(" %s, Chunk Index: %03d", ns_label(names, b.index.ns), k))
      end
    end
    if missing > 0 then
      say(paint("red", fmt("Blob %s is missing %d B of data!", b.index.key, missing)),
        fmt(" Namespace index: %03d", b.index.ns))
    end
  end
end

local function check_namespaces(written, names, defined)
  local used, order = {}, {}
  for _, w in ipairs(written) do
    local ns = w.e.ns
    if ns ~= 0 and not used[ns] then
      used[ns] = true
      order[#order + 1] = ns
    end
  end
  for _, ns in ipairs(order) do
    if names[ns] == nil then
      say(paint("red", "Undefined namespace index!"), fmt(" Namespace index: %03d [undefined]", ns))
    end
  end
  for _, ns in ipairs(defined) do
    if not used[ns] then
      say(paint("yellow", "Found unused namespace."), fmt(" Namespace index: %03d [%s]", ns, names[ns]))
    end
  end
end

--- The checks of one page's top-level entries; the written ones are added
-- to `written` as {e, page}.
local function check_entries(p, written)
  for _, e in ipairs(p.entries) do
    local n, key = fmt("#%03d", e.index), key_text(e)
    local skip = false
    if e.is_empty and e.state == "Written" then
      say(paint("red", fmt(" Entry %s is reported as Written but it is empty!", n)))
      skip = true
    elseif e.is_empty and e.state == "Erased" then
      say(paint("yellow", fmt(" Entry %s is reported as Erased but it is empty! " ..
        "(Only entries reported as Empty should be empty)", n)))
    end
    if e.state == "Written" then written[#written + 1] = { e = e, page = p } end
    if e.state == "Written" and not skip then
      if e.crc ~= e.crc_computed then
        say(paint("red", fmt(" Entry %s %s has wrong CRC32!     ", n, key)), " Written: ",
          paint("red", fmt("%x", e.crc)), " Generated: ", paint("green", fmt("%x", e.crc_computed)))
      end
      if e.span > 1 and e.data_crc ~= e.data_computed then
        say(paint("red", fmt(" Entry %s %s data (string, blob) has wrong CRC32!", n, key)), " Written: ",
          paint("red", fmt("%x", e.data_crc)), " Generated: ", paint("green", fmt("%x", e.data_computed)))
      end
      if not KNOWN_TYPE[e.type] then
        say(paint("yellow", fmt(" Type of entry %s %s is unrecognized!", n, key)), " Type: ", e.type)
      end
      if e.index + e.span - 1 >= ENTRIES then
        say(paint("red", fmt(" Variable length entry %s %s is out of bounds!", n, key)))
      elseif e.span > 1 then
        for _, c in ipairs(e.children) do
          if c.state ~= e.state then
            say(paint("yellow", " Inconsistent data state!"),
              fmt(" Entry %s %s state: %s, Data entry #%03d %s state: %s", n, key, e.state, c.index, key, c.state))
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
    say(paint("red", "No free (empty) page found in the NVS partition,\n"
      .. "at least one free page is required for proper function!"))
    say(paint("red", "NVS partition possibly truncated?\n"))
  end
  local written = {}
  for _, p in ipairs(pages) do
    if p.status == "Empty" then
      say(paint("cyan", "Page Empty"))
      if not all_ff(p.bitmap) then
        say(paint("red", "The page is reported as Empty but its entry state bitmap is not empty!"))
      end
      local data = false
      for _, e in ipairs(p.entries) do data = data or not e.is_empty end
      if data then say(paint("red", "The page is reported as Empty but there are data written!")) end
    elseif p.crc == p.crc_computed then
      say(paint("cyan", fmt("Page no. %d", p.page_index)), " \tCRC32: OK")
    else
      say(paint("cyan", fmt("Page no. %d", p.page_index)), " Original CRC32: ", paint("red", fmt("%x", p.crc)),
        " Generated CRC32: ", paint("green", fmt("%x", p.crc_computed)))
    end
    check_entries(p, written)
  end
  print_duplicates(find_duplicates(written))
  say("")
  local names, defined = namespace_map(pages)
  check_blobs(written, names)
  check_namespaces(written, names, defined)
end

local plural = report.plural

local function firmware_check(r)
  if #r.problems == 0 then
    say("The firmware mounts this image with no problem.")
    return
  end
  say(paint("red", fmt("The firmware would find %s (%s, %s):", plural(#r.problems, "problem"),
    plural(r.errors, "error"), plural(r.warnings, "warning"))))
  for _, pb in ipairs(r.problems) do
    say(paint(pb.severity == "error" and "red" or "yellow", report.problem_line(pb)))
  end
end

local DUMPS = {
  all = function(pages) dump_pages(pages, false) end,
  written = function(pages) dump_pages(pages, true) end,
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
  out = { lines = {}, color = opts.color == true, write = write }
  local dump = opts.dump or "all"
  if dump ~= "none" or opts.integrity then
    local pages = nvsgen_pages.parse(r.image)
    DUMPS[dump](pages)
    if opts.integrity then
      say("")
      integrity_check(pages)
    end
  end
  if opts.integrity then firmware_check(r) end
  local lines = out.lines
  out = nil
  if #lines > 0 then write(concat(lines, "\n") .. "\n") end
end

--- The same text as one string.
function M.text(r, opts)
  local parts = {}
  M.write(r, opts, function(text) parts[#parts + 1] = text end)
  return concat(parts)
end

return M
