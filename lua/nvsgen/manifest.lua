--- nvsgen.manifest: a batch's manifest.csv, one RFC 4180 record per unit made, appended whole.
--
-- The manifest is the batch's memory: a unit counts as made once its
-- record is in it. Records are appended a group at a time, each group in
-- one write that goes in whole or not at all (core: a short write on a
-- full disk is cut back), on the disk before the caller renames the
-- group's images into place. Fields are quoted as RFC 4180 (and Python's
-- csv module) quote them, so exported values may hold commas, quotes and
-- line breaks (a PEM certificate) and are read back as written. A record
-- cut short (a power cut) is dropped on the next run; complete records
-- are never rewritten, except by --force, which takes out those of the
-- units it makes again. The file is always 0600: it holds exported
-- secrets.

local core = require("nvsgen.core")

local format, concat, sub, find = string.format, table.concat, string.sub, string.find
local tostring, ipairs = tostring, ipairs
local csv_row = core.csv_row

local M = {}

M.NAME = "manifest.csv"
M.COLUMNS = { "serial", "image", "size", "sha256", "keys" }
M.MODE = 384 -- 0600

local Manifest = {}
Manifest.__index = Manifest

--- Iterates the records of CSV `text`: fields, start and end offsets (of
-- the record's first byte and of its line break's last). A record that
-- ends before its line break does (cut short) ends the iteration with
-- false and its start; a record that is not CSV with nil, its start and
-- a message.
function M.records(text)
  local pos, n = 1, #text
  return function()
    if pos > n then return nil end
    local start = pos
    local nl = find(text, "\n", pos, true)
    -- Most records hold no quote: split the line.
    local line = nl and sub(text, pos, sub(text, nl - 1, nl - 1) == "\r" and nl - 2 or nl - 1)
    if line and not find(line, '"', 1, true) then
      local fields = {}
      for field in (line .. ","):gmatch("([^,]*),") do fields[#fields + 1] = field end
      pos = nl + 1
      return fields, start, nl
    end
    local fields, p = {}, pos
    while true do
      local value
      if sub(text, p, p) == '"' then
        local parts, q = {}, p + 1
        while true do
          local e = find(text, '"', q, true)
          if not e then pos = n + 1; return false, start end
          parts[#parts + 1] = sub(text, q, e - 1)
          if sub(text, e + 1, e + 1) == '"' then
            parts[#parts + 1] = '"'
            q = e + 2
          else
            p = e + 1
            break
          end
        end
        value = concat(parts)
      else
        local e = find(text, "[,\r\n]", p)
        if not e then pos = n + 1; return false, start end
        value = sub(text, p, e - 1)
        p = e
      end
      fields[#fields + 1] = value
      local d = sub(text, p, p)
      if d == "," then
        p = p + 1
      elseif d == "\n" then
        pos = p + 1
        return fields, start, p
      elseif d == "\r" and sub(text, p + 1, p + 1) == "\n" then
        pos = p + 2
        return fields, start, p + 1
      elseif d == "" or d == "\r" and p == n then
        pos = n + 1
        return false, start
      else
        pos = n + 1
        return nil, start, format("a field holds '%s' after its closing quote", d)
      end
    end
  end
end

--- One record as the manifest writes it (CRLF, fields quoted as needed).
-- (nvsgen.csv is loaded at the first use: a batch of plain units never
-- needs it, its records made by core.stage.)
function M.format_record(fields)
  return require("nvsgen.csv").format_row(fields)
end

--- Opens the manifest of the folder `folder` (core.folder) whose files
-- messages name with `prefix`, for a batch with `exports` (the recipe's
-- export columns, maybe none yet). Options: `shared` (a worker: the
-- manifest is the main process's, read but never cut or rewritten),
-- `drop(serial)` (true for the records --force takes out), `check(fields)`
-- (nil, or a message when a record was made with other parameters),
-- `base` (the columns before the exported ones; default M.COLUMNS, a
-- unit of several files has its own: nvsgen.unit_layout).
-- Returns the manifest ({ path, columns, recorded = set of serials }), or
-- nil and a message.
function M.open(folder, prefix, exports, opts)
  local path = prefix .. M.NAME
  local m = setmetatable({ path = path, folder = folder, recorded = {}, base = opts.base or M.COLUMNS,
    columns = table.move(exports, 1, #exports, 1, {}) }, Manifest)
  local file, err, code = core.open_append(folder, M.NAME, "existing", M.MODE, true)
  if not file and code ~= 2 then return nil, err end -- 2: ENOENT, a new manifest
  if not file then
    if opts.shared then return nil, format("%s: missing (the batch's main process made none)", path) end
    file, err = core.open_append(folder, M.NAME, "new", M.MODE, true)
    if not file then return nil, err end
    m.file = file
    if #exports > 0 then
      local ok, herr = m:write_header()
      if not ok then file:close(); return nil, herr end
    end
    return m
  end
  m.file = file
  local text
  text, err = core.read_file(path)
  if not text then file:close(); return nil, err end
  local ok
  ok, err = m:load(text, opts)
  if not ok then file:close(); return nil, err end
  return m
end

-- Reads the records of `text` (the manifest's bytes): header, recorded
-- serials, parameter check; cuts a record cut short, and with --force
-- takes out the records of the units made again.
function Manifest:load(text, opts)
  local path = self.path
  local next_record = M.records(text)
  local header, hstart, hend = next_record()
  if header == nil and hstart then return nil, format("%s:1: %s", path, hend) end
  local good_end = 0
  if header then
    local base = self.base
    for i, col in ipairs(base) do
      if header[i] ~= col then
        if header[1] == base[1] then
          -- Another kind of unit (other partitions, --merged, --hex).
          return nil, format("%s: its units were made as other files (columns %s), this run makes %s;"
            .. " run with the same options, or use another --outdir", path, concat(header, ","), concat(base, ","))
        end
        return nil, format("%s: not a manifest of nvsgen (column %d is not '%s')", path, i, col)
      end
    end
    local have = {}
    for i = #base + 1, #header do have[#have + 1] = header[i] end
    local exports = self.columns
    -- A unit of several files (nvsgen.unit_layout) names each file and its
    -- digest: such a pair after the base columns is a unit made of more
    -- files (--merged, --hex) than this run makes, not two exports.
    if base ~= M.COLUMNS and have[2] and have[2] == have[1] .. "_sha256" and have[1] ~= exports[1] then
      return nil, format("%s: its units were made as other files (columns %s), this run makes %s;"
        .. " run with the same options, or use another --outdir", path, concat(header, ","), concat(base, ","))
    end
    if #exports > 0 and concat(have, ",") ~= concat(exports, ",") then
      return nil, format("%s: exported columns %s differ from the recipe's %s; use another --outdir",
        path, concat(have, ","), concat(exports, ","))
    end
    self.columns = have
    self.header_written = true
    good_end = hend
  end
  local recorded, drop, check = self.recorded, opts.drop, opts.check
  local kept, dropped = { sub(text, 1, good_end) }, false
  local record = 1
  local width = header and #header
  while header do
    local fields, start, stop = next_record()
    if not fields then
      if fields == nil and start then
        return nil, format("%s: record %d is not CSV: %s", path, record, stop)
      end
      break
    end
    record = record + 1
    local serial = tonumber(fields[1])
    if #fields ~= width or not serial then
      return nil, format("%s: record %d has %d fields, the header %d", path, record, #fields, width)
    end
    if drop and drop(serial) then
      dropped = true
    else
      recorded[serial] = true
      if check then
        local problem = check(fields)
        if problem then return nil, format("%s: %s", path, problem) end
      end
      kept[#kept + 1] = sub(text, start, stop)
    end
    good_end = stop
  end
  if opts.shared then return true end
  if dropped then
    -- Whole file again, atomically (a temporary file, created 0600).
    local ok, err = core.write_file(M.NAME, concat(kept), M.MODE, true, self.folder)
    if not ok then return nil, err end
    self.file:close()
    local file
    file, err = core.open_append(self.folder, M.NAME, "existing", M.MODE, true)
    if not file then return nil, err end
    self.file = file
  elseif good_end < #text then
    -- A record cut short by a power cut: only it goes.
    local ok, err = self.file:truncate(good_end)
    if not ok then return nil, err end
  end
  return true
end

--- Writes the header (once the export columns are known). true or nil, message.
function Manifest:write_header()
  local base = self.base
  local cols = table.move(base, 1, #base, 1, {})
  for _, c in ipairs(self.columns) do cols[#cols + 1] = c end
  local ok, err = self.file:append(csv_row(cols) or M.format_record(cols), true)
  if not ok then return nil, err end
  self.header_written = true
  return true
end

--- Appends `text` (whole records) and puts it on the disk: true, or nil,
-- message, errno; on failure none of it is in the file.
function Manifest:append(text)
  local ok, err, code = self.file:append(text, true)
  if not ok then return nil, err, code end
  return true
end

function Manifest:close()
  if self.file then self.file:close() end
  self.file = nil
end

--- The record of a unit: `fields` holds the base columns' values (serial,
-- image, size, sha256 and keys); `exported` the unit's exports, taken in
-- the manifest's column order.
function Manifest:record(fields, exported)
  local n, columns = #self.base, self.columns
  for i = 1, #columns do
    local v = exported[columns[i]]
    fields[n + i] = v == nil and "" or tostring(v)
  end
  for i = n + #columns + 1, #fields do fields[i] = nil end
  -- A record has at least the base columns: csv_row (the C half of
  -- format_record) makes it in one pass; it gives nil only for a field of
  -- another type, which tostring above rules out.
  return csv_row(fields) or M.format_record(fields)
end

M.Manifest = Manifest

return M
