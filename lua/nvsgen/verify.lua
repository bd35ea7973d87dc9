--- nvsgen.verify: checks a batch's output folder against its manifest,
-- unit by unit, streaming (constant memory whatever the batch's size).
--
--     local verify = require("nvsgen.verify")
--     local summary = assert(verify.run("out", { on_bad = print }))
--     -- summary.units, summary.good, summary.bad
--
-- For each manifest record: the image exists, its size and SHA-256 are the
-- recorded ones, the firmware's reader (nvsgen.read, with the unit's keys
-- file when it has one) finds no problem, and when the unit's CSV is there
-- (a batch run with --csv writes IMAGE.csv beside IMAGE.bin) the firmware
-- reads what the CSV says. A batch of whole units (several files per unit)
-- is checked by nvsgen.verify_whole.

local csv = require("nvsgen.csv")
local csvgen = require("nvsgen.csvgen")
local crypto = require("nvsgen.crypto")
local flash = require("nvsgen.flash")
local options = require("nvsgen.options")
local reader = require("nvsgen.reader")
local report = require("nvsgen.report")
local verify_whole = require("nvsgen.verify_whole")

local fmt = string.format

local M = {}

M.MANIFEST = "manifest.csv"
local REQUIRED = { "serial", "image", "size", "sha256" }

local exists, outside = verify_whole.exists, verify_whole.outside

local function no_header(path)
  return ("%s: no header with columns %s, or serial,NAME,NAME_sha256,... (whole units)"):format(path,
    table.concat(REQUIRED, ","))
end

--- The record after the manifest's header: the header found by name
-- among the first records (a parameters record may come before it). The
-- columns by name; for a whole unit's header (nvsgen.verify_whole), with
-- `files` (its file columns) and `width`.
local function open_manifest(path)
  local r, err = csv.open(path, { comments = true })
  if not r then return nil, err end
  for _ = 1, 8 do
    local fields, line = r:next()
    if not fields then
      r:close()
      return nil, line or no_header(path)
    end
    local cols = {}
    for i, name in ipairs(fields) do cols[name] = cols[name] or i end
    local ok = true
    for _, name in ipairs(REQUIRED) do ok = ok and cols[name] ~= nil end
    if ok then return r, cols end
    local files = verify_whole.columns(fields)
    if files then return r, { serial = 1, files = files, width = #fields } end
  end
  r:close()
  return nil, no_header(path)
end

--- Counts the records of the manifest (for the progress), streaming.
local function count_units(path)
  local r, cols = open_manifest(path)
  if not r then return 0 end
  local n = 0
  while r:count() do n = n + 1 end
  r:close()
  local _ = cols
  return n
end

local function same_items(a, b)
  if #a ~= #b then return false, ("%d items, the CSV makes %d"):format(#a, #b) end
  for i = 1, #a do
    local x, y = a[i], b[i]
    if x.namespace ~= y.namespace or x.key ~= y.key or x.type ~= y.type or x.value ~= y.value then
      -- values are numbers, strings or u64 digits: == is exact, and -0.0
      -- against 0.0 compares by bits below
      return false, ("namespace '%s', key '%s' differs from the CSV"):format(y.namespace, y.key)
    end
    if x.type == "float" or x.type == "double" then
      if string.pack("<d", x.value) ~= string.pack("<d", y.value) then
        return false, ("namespace '%s', key '%s' differs from the CSV"):format(y.namespace, y.key)
      end
    end
  end
  return true
end

--- What is wrong with one unit, or nil when it is good. `shared_key`: the
-- keys partition file to read a unit with whose recorded keys file is not
-- in the batch folder (a shared --inputkey is recorded by the name it was
-- given, which is the batch's working folder's), or nil.
local function check_unit(outdir, rec, cols, shared_key)
  local name = rec[cols.image] or ""
  if name == "" then return "no image in the manifest" end
  -- A batch writes its files inside its folder: a manifest naming one
  -- elsewhere (an absolute path, a '..' step) is refused, not followed.
  local function at(file) return outdir .. "/" .. file end
  if outside(name) then return ("%s: the image is outside the batch folder"):format(name) end
  local link = verify_whole.link_problem(outdir, name)
  if link then return link end
  local path = at(name)
  if not exists(path) then return ("%s: image is missing"):format(name) end
  local image, err = flash.read_file(path)
  if not image then return err end
  if tostring(#image) ~= rec[cols.size] then
    return ("%s: %d bytes, the manifest says %s"):format(name, #image, tostring(rec[cols.size]))
  end
  if crypto.sha256_hex(image) ~= (rec[cols.sha256] or ""):lower() then
    return ("%s: SHA-256 differs from the manifest"):format(name)
  end
  local keys = cols.keys and rec[cols.keys] or ""
  local r
  if keys ~= "" then
    local inside = not outside(keys)
    link = inside and verify_whole.link_problem(outdir, keys)
    if link then return ("%s: keys file %s"):format(name, link) end
    local in_folder = inside and exists(at(keys))
    local hint = verify_whole.shared_key_hint(keys)
    if not in_folder and shared_key then
      r, err = reader.read(image, shared_key)
      -- A plain name is the unit's own keys file (--keygen), gone, unless
      -- the shared key was given by that name from the batch's folder:
      -- the image not reading with it says which.
      if not r and hint == "" then
        return ("%s: keys file %s is missing"):format(name, keys)
      end
    elseif not inside then
      return ("%s: keys file %s is outside the batch folder%s"):format(name, keys, hint)
    elseif not in_folder then
      return ("%s: keys file %s is missing%s"):format(name, keys, hint)
    else
      r, err = reader.read(image, at(keys))
    end
  else
    r, err = reader.read(image)
  end
  if not r then return ("%s: %s"):format(name, err) end
  if #r.problems > 0 then
    return ("%s: the firmware would find %s, first: %s"):format(name, report.plural(#r.problems, "problem"),
      report.problem_line(r.problems[1]))
  end
  local csv_path = path:gsub("%.bin$", "") .. ".csv"
  if csv_path ~= path then
    link = verify_whole.link_problem(outdir, name:gsub("%.bin$", "") .. ".csv")
    if link then return ("%s: CSV %s"):format(name, link) end
  end
  if csv_path ~= path and exists(csv_path) then
    local version = 2
    for _, p in ipairs(r.pages) do
      if p.header_ok then version = p.version_byte == 0xFF and 1 or 2 break end
    end
    local p = require("nvsgen").partition{ size = #image, version = version }
    local ok
    ok, err = csvgen.build(p, { csv_path })
    if not ok then return ("%s: %s"):format(name, err) end
    local want = reader.read(p:image())
    ok, err = same_items(r.items, want.items)
    if not ok then return ("%s: %s"):format(name, err) end
  end
  return nil
end

local function printable(text)
  return (text:gsub("%c", function(c) return ("\\x%02X"):format(c:byte()) end))
end

local RUN_OPTIONS = { on_bad = true, progress = true, keys = true }

--- Checks the batch in `outdir`. `opts.on_bad(serial, message)` is called
-- for each bad unit, `opts.progress(done, total)` after each unit.
-- `opts.keys`: the keys partition file of a batch encrypted with one key
-- (--inputkey), read where a unit's recorded keys file is not in `outdir`
-- (for a whole unit, it must also have the recorded SHA-256).
-- Returns { units, good, bad }, or nil and a message when the manifest
-- cannot be read.
function M.run(outdir, opts)
  opts = opts or {}
  options.check(opts, RUN_OPTIONS, "verify.run", 2)
  local shared_key
  if opts.keys then
    local err
    shared_key, err = flash.read_file(opts.keys)
    if shared_key then err = select(2, crypto.parse_keys_partition(shared_key)) end
    if err then return nil, (err:find(opts.keys, 1, true) == 1 and "" or opts.keys .. ": ") .. err end
  end
  local path = outdir .. "/" .. M.MANIFEST
  local total = opts.progress and count_units(path) or 0
  local r, cols = open_manifest(path)
  if not r then return nil, cols end
  local summary = { units = 0, good = 0, bad = 0 }
  while true do
    local rec, line = r:next()
    if not rec then
      r:close()
      if line then return nil, line end
      break
    end
    summary.units = summary.units + 1
    local problem
    if cols.files then
      problem = verify_whole.check(outdir, rec, cols.files, cols.width, shared_key and
        { file = opts.keys, data = shared_key })
    else
      problem = check_unit(outdir, rec, cols, shared_key)
    end
    if problem then
      summary.bad = summary.bad + 1
      -- A manifest's names may hold a newline or a terminal's escape:
      -- shown as \xNN, one line per bad unit stays one line.
      if opts.on_bad then opts.on_bad(printable(rec[cols.serial] or "?"), printable(problem)) end
    else
      summary.good = summary.good + 1
    end
    if opts.progress then opts.progress(summary.units, math.max(total, summary.units)) end
  end
  return summary
end

--- The summary line: "10000 units: 10000 good, 0 bad".
function M.summary_line(s)
  return fmt("%d unit%s: %d good, %d bad", s.units, s.units == 1 and "" or "s", s.good, s.bad)
end

return M
