--- nvsgen.checks: nvs_tool's integrity checks, the ones ESP-IDF's
-- nvs_tool.py prints from the raw pages, then what the firmware would find
-- when it mounts the image (nvsgen.read's problems).

local nvsgen_pages = require("nvsgen.pages")
local report = require("nvsgen.report")
local textout = require("nvsgen.textout")

local fmt = string.format

local M = {}

local say, paint, key_text = textout.say, textout.paint, textout.key_text
local KNOWN_TYPE = nvsgen_pages.KNOWN_TYPE
local ENTRIES = nvsgen_pages.ENTRIES

local function all_ff(s)
  return not s:find("[^\255]")
end


-- What the checks after the pages need of a written entry, packed in one
-- string: a table per entry would take a hundred times the image's size
-- on an image of small items. `page` is the page's { page_index, status }.
local RECORD = "<Bs1BBBs1s1I4BBBI4s1"

local function pack_record(e, page)
  return string.pack(RECORD, e.key and 1 or 0, e.key or "", e.ns, e.index, e.chunk_index, e.type,
    e.ns == 0 and tostring(e.value) or "", e.size or 0, e.chunk_count or 0, e.chunk_start or 0,
    #e.children, page.page_index, page.status)
end

--- A packed record as { e = entry fields, page = { page_index, status } }.
local function unpack_record(record)
  local has_key, key, ns, index, chunk_index, type, value, size, chunk_count, chunk_start, data_slots,
    page_index, status = string.unpack(RECORD, record)
  return {
    e = { key = has_key == 1 and key or nil, ns = ns, index = index, chunk_index = chunk_index, type = type,
      value = value, size = size, chunk_count = chunk_count, chunk_start = chunk_start, data_slots = data_slots },
    page = { page_index = page_index, status = status },
  }
end

--- The written entries of the list of packed records, one at a time.
local function each_written(written)
  local k = 0
  return function()
    k = k + 1
    if written[k] then return unpack_record(written[k]) end
  end
end

--- Same key written more than once where the firmware would see two
-- values: same namespace, and not a blob index with its chunks, nor two
-- chunks of different index. Returns the entries to list, grouped by key.
local function find_duplicates(written)
  local groups, order = {}, {}
  for k, record in ipairs(written) do
    local has_key, key = string.unpack("<Bs1", record)
    local id = has_key == 1 and key or "\0none"
    if not groups[id] then
      groups[id] = {}
      order[#order + 1] = id
    end
    local g = groups[id]
    g[#g + 1] = k
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
    for _, k in ipairs(groups[id]) do
      local w = unpack_record(written[k])
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
  -- the index records by namespace and key, and the data slots of each
  -- chunk found by namespace, key and chunk number
  local blobs, order, slots = {}, {}, {}
  for w in each_written(written) do
    local e = w.e
    if e.type == "blob_index" and e.key then
      local id = fmt("%03d", e.ns) .. e.key
      if not blobs[id] then order[#order + 1] = id end
      blobs[id] = e -- the last index written is the one its chunks count from
    end
  end
  for w in each_written(written) do
    local e = w.e
    if e.type == "blob_data" and e.key then
      local id = fmt("%03d", e.ns) .. e.key
      local index = blobs[id]
      if not index then
        say(paint("red", fmt("Blob %s chunk has no blob index!", e.key)),
          fmt(" %s, Chunk Index: %03d", ns_label(names, e.ns), e.chunk_index))
      else
        slots[id .. "\0" .. (e.chunk_index - index.chunk_start)] = e.data_slots
      end
    end
  end
  for _, id in ipairs(order) do
    local b = { index = blobs[id] }
    local missing = b.index.size
    for k = 0, b.index.chunk_count - 1 do
      local chunk = slots[id .. "\0" .. k]
      if chunk then
        missing = missing - 32 * chunk
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
  for w in each_written(written) do
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
-- to `written` as {e, page}, `page` the page's { page_index, status }.
local function check_entries(p, written, page)
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
    if e.state == "Written" then written[#written + 1] = pack_record(e, page) end
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

--- nvs_tool.py's checks of the pages of a plain image, parsed one at a
-- time (nvsgen.pages.each).
function M.integrity(image)
  local count = nvsgen_pages.page_count(image)
  if count < 3 then
    say(paint("yellow", "NVS Partition size must be at least 0x3000 (4kiB * 3 pages == 12kiB)!"))
  end
  local free = false
  for n = 0, count - 1 do
    free = free or nvsgen_pages.PAGE_STATUS[string.unpack("<I4", image, n * nvsgen_pages.PAGE + 1)] == "Empty"
  end
  if not free then
    say(paint("red", "No free (empty) page found in the NVS partition,\n"
      .. "at least one free page is required for proper function!"))
    say(paint("red", "NVS partition possibly truncated?\n"))
  end
  local written = {}
  for p in nvsgen_pages.each(image) do
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
    check_entries(p, written, { page_index = p.page_index, status = p.status })
  end
  print_duplicates(find_duplicates(written))
  say("")
  local names, defined = nvsgen_pages.namespace_map(image)
  check_blobs(written, names)
  check_namespaces(written, names, defined)
end

local plural = report.plural

--- What the firmware would find: one line per problem of `r`.
function M.firmware(r)
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

return M
