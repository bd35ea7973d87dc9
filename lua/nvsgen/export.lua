--- nvsgen.export: turns what nvsgen.read found in an image into the
-- reference generator's CSV, from which `nvs_partition_gen` rebuilds it.
--
--     local r = assert(nvsgen.read("unit.bin"))
--     local text = assert(nvsgen.to_csv(r))          -- or { outdir = "blobs" }
--
-- Rows follow the image's entries in the order the firmware finds them,
-- and a namespace row stands where the image holds that namespace's entry,
-- so an image laid out as the generators lay images out comes back byte for
-- byte. The first line says how to rebuild it (SIZE, --version, and
-- `encrypt ... --inputkey` for an image that was read with a key). What the
-- CSV cannot hold (entries the firmware drops, erased entries, strings that
-- are not UTF-8 text) is left out, each with a `#` line saying what.

local csv = require("nvsgen.csv")
local values = require("nvsgen.values")
local core = require("nvsgen.core")
local wifi = require("nvsgen.wifi")
local options = require("nvsgen.options")
local report = require("nvsgen.report")
local pages = require("nvsgen.pages")

local fmt, concat = string.format, table.concat

local M = {}

--- With `outdir`, blobs of at least this many bytes go to files.
M.FILE_MIN = 1024

local OPTIONS = { outdir = true, file_min = true, name = true }

-- Control characters as a `#` line shows them, so it stays one line, and
-- bytes that are not UTF-8 text too, so the CSV stays readable text.
local function one_line(s)
  s = s:gsub("[%c\127]", function(c) return fmt("\\x%02x", c:byte()) end)
  if not utf8.len(s) then s = s:gsub("[\128-\255]", function(c) return fmt("\\x%02x", c:byte()) end) end
  return s
end

--- Floats and doubles as the shortest text that reads back as the same
-- double (nvsgen.values.real_text).
M.real_text = values.real_text

--- True when a CSV field can carry `text` unchanged: UTF-8 (the reference
-- reads its CSV as UTF-8 text), no NUL, no CR (universal newlines turn it
-- into LF) and no line that starts with '#' (dropped before parsing, even
-- inside quotes).
local function csv_safe(text)
  return utf8.len(text) ~= nil and not text:find("[%z\r]") and not text:find("\n#")
end

--- A field as the CSV holds it: quoted when it needs to be, and also when
-- it starts with '#', or its line would be taken for a comment.
local function field(text)
  if text:sub(1, 1) == "#" and csv.is_plain(text) then return '"' .. text .. '"' end
  return csv.field(text)
end

local function row(key, kind, encoding, value)
  return concat({ field(key), kind, encoding, field(value) }, ",")
end

--- The SIZE and --version to rebuild `r` with.
function M.layout(r)
  local version = 2
  for _, p in ipairs(r.pages) do
    if p.header_ok then
      version = p.version_byte == 0xFF and 1 or 2
      break
    end
  end
  return #r.image, version
end

--- Entries in the order the firmware finds them: namespace entries and
-- items, each at its first entry (a version-2 blob at its first chunk),
-- pages ranked by sequence number: a list of { ns = namespace entry } and
-- { item = item } (nvsgen.read's tables).
function M.events(r)
  local rank = {}
  local loaded = {}
  for _, p in ipairs(r.pages) do
    if p.loaded then loaded[#loaded + 1] = p end
  end
  table.sort(loaded, function(a, b)
    if a.seq ~= b.seq then return a.seq < b.seq end
    return a.index < b.index
  end)
  for k, p in ipairs(loaded) do rank[p.index] = k end
  local list = {}
  local function add(e, page, entry)
    e.at = ((rank[page] or #loaded + 1 + page) << 8) | entry
    list[#list + 1] = e
  end
  for _, ns in ipairs(r.namespace_entries) do add({ ns = ns }, ns.page, ns.entry) end
  for _, item in ipairs(r.items) do
    local page, entry = item.page, item.entry
    if item.chunks and item.chunks[1] then page, entry = item.chunks[1].page, item.chunks[1].entry end
    add({ item = item }, page, entry)
  end
  for k, e in ipairs(list) do e.order = k end
  table.sort(list, function(a, b)
    if a.at ~= b.at then return a.at < b.at end
    return a.order < b.order
  end)
  return list
end

local INTEGER = { u8 = true, i8 = true, u16 = true, i16 = true, u32 = true, i32 = true,
  u64 = true, i64 = true }

--- The writer of one CSV: rows, `#` lines, files for --outdir.
local Writer = {}

local function where(item)
  return fmt("namespace '%s', key '%s'", item.namespace, item.key)
end
Writer.__index = Writer

function Writer:note(text)
  self.notes[#self.notes + 1] = "# " .. one_line(text)
end

function Writer:file(bytes, ext)
  self.files = self.files + 1
  local path = fmt("%s/%s-%04d.%s", self.outdir, self.base, self.files, ext)
  local ok, err = core.write_file(path, bytes, tonumber("644", 8), true)
  if not ok then return nil, err end
  return path
end


--- The row of an item (or nil and the reason it is left out, or nil,
-- nil, message on a write error).
function Writer:item_row(item)
  local kind, v = item.type, item.value
  if INTEGER[kind] then return row(item.key, "data", kind, tostring(v)) end
  if kind == "float" or kind == "double" then
    if v ~= v then return nil, "nan, which the firmware refuses" end
    return row(item.key, "data", kind, M.real_text(v))
  end
  if kind == "string" then
    if not utf8.len(v) then
      return nil, "string is not UTF-8 text, which the CSV cannot hold (hex " .. core.hex_encode(v) .. ")"
    end
    if v:find("%z") then
      return nil, "string holds a NUL, which the CSV cannot hold (hex " .. core.hex_encode(v) .. ")"
    end
    if csv_safe(v) then return row(item.key, "data", "string", v) end
    if not self.outdir then
      return nil, "string holds CR or a line starting with '#', which a CSV field cannot hold"
        .. " (hex " .. core.hex_encode(v) .. "; --outdir keeps it in a file)"
    end
    local path, err = self:file(v, "txt")
    if not path then return nil, nil, err end
    return row(item.key, "file", "string", path)
  end
  -- a blob of either version
  if self.outdir and #v >= self.file_min then
    local path, err = self:file(v, "bin")
    if not path then return nil, nil, err end
    return row(item.key, "file", "binary", path)
  end
  return row(item.key, "data", "hex2bin", core.hex_encode(v))
end

local function same_blob(item, entry)
  return item ~= nil and item.type == "blob" and item.key == entry[1] and item.value == entry[2]
end

--- The items the generator makes itself from the Wi-Fi rows (Espressif's
-- generator adds the driver's entries beside them; nvsgen.wifi): those the
-- image holds where the generator would put them are left to it. Returns
-- the set of events to skip; notes what rebuilding would add.
local function wifi_entries(list, w)
  local tracker = wifi.tracker(function(...) return core.pbkdf2_sha1(...) end)
  local skip = {}
  local inline = setmetatable({ file_min = math.huge }, Writer)
  for k, e in ipairs(list) do
    local item = e.item
    if item and not skip[e] and wifi.involves(item.key) then
      local line = inline:item_row(item)
      local text = line and line:match("^[^,]*,[^,]*,[^,]*,(.*)$") or ""
      if text:sub(1, 1) == '"' then text = text:sub(2, -2):gsub('""', '"') end
      local before = tracker:before(item.key, text)
      if before[1] then
        local prev = list[k - 1]
        if prev and prev.item and prev.item.namespace == item.namespace and same_blob(prev.item, before[1]) then
          skip[prev] = true
        else
          w:note(fmt("rebuilding adds '%s' before %s", before[1][1], where(item)))
        end
      end
      local n = 0
      for _, entry in ipairs(tracker:after(item.key)) do
        local next_e = list[k + n + 1]
        if next_e and next_e.item and next_e.item.namespace == item.namespace and same_blob(next_e.item, entry) then
          skip[next_e] = true
          n = n + 1
        else
          w:note(fmt("rebuilding adds '%s' after %s", entry[1], where(item)))
        end
      end
    end
  end
  return skip
end

--- The CSV of a read result (nvsgen.read's table). `opts.outdir`: a
-- folder (which must exist) for blobs of `opts.file_min` (default
-- M.FILE_MIN) bytes or more and strings a field cannot hold, named after
-- `opts.name` (default "item"); the `file` rows name them as given, so the
-- CSV is rebuilt from the folder `outdir` is relative to.
-- Returns the text, or nil and a message.
function M.to_csv(r, opts)
  if type(r) ~= "table" or not r.items or not r.image then
    error("nvsgen.to_csv: a result of nvsgen.read expected", 2)
  end
  opts = opts or {}
  options.check(opts, OPTIONS, "nvsgen.to_csv", 2)
  local w = setmetatable({ notes = {}, outdir = opts.outdir, files = 0,
    file_min = opts.file_min or M.FILE_MIN, base = opts.name or "item" }, Writer)
  local size, version = M.layout(r)
  local lines = {
    fmt("# nvs_partition_gen %s IN.csv OUT.bin 0x%X --version %d%s", r.encrypted and "encrypt" or "generate",
      size, version, r.encrypted and " --inputkey KEYS.bin" or ""),
    "key,type,encoding,value",
  }
  -- An encrypted image read without its key holds no item: say why.
  local encrypted = not r.encrypted and pages.looks_encrypted(r.image)
  if encrypted then w:note(encrypted .. ": read it with its keys") end
  local list = M.events(r)
  local skip = wifi_entries(list, w)
  local created, current = {}, nil
  local function select(name)
    lines[#lines + 1] = row(name, "namespace", "", "")
    created[name], current = true, name
  end
  for _, e in ipairs(list) do
    if e.ns then
      local name = e.ns.name
      if created[name] then
        goto next -- the entry exists: nothing to add
      elseif csv_safe(name) then select(name)
      else
        w:note(fmt("left out: namespace '%s' at page %d, entry %03d: its name cannot be a CSV field",
          name, e.ns.page, e.ns.entry))
      end
    elseif not skip[e] then
      local item = e.item
      local line, why, err
      if not csv_safe(item.key) or not csv_safe(item.namespace) then
        why = "its key or namespace cannot be a CSV field"
      else
        line, why, err = w:item_row(item)
        if err then return nil, err end
      end
      if not line then
        w:note(fmt("left out: %s at page %d, entry %03d: %s", where(item), item.page, item.entry, why))
      else
        if current ~= item.namespace then select(item.namespace) end
        lines[#lines + 1] = line
      end
    end
    ::next::
  end
  for _, pb in ipairs(r.problems) do
    if pb.severity == "error" then w:note("left out: " .. report.problem_line(pb)) end
  end
  for _, p in ipairs(r.pages) do
    if p.loaded and p.bitmap.erased > 0 then
      w:note(fmt("left out: page %d: %d erased entr%s", p.index, p.bitmap.erased,
        p.bitmap.erased == 1 and "y" or "ies"))
    end
  end
  -- Notes go after the command line, so the rows stay together.
  table.move(lines, 2, #lines, #w.notes + 2)
  table.move(w.notes, 1, #w.notes, 2, lines)
  return concat(lines, "\n") .. "\n"
end

return M
