--- nvsgen.batch: runs a recipe for every serial of a batch, safely.
--
-- For each unit the image is built in memory, written under a pending name
-- (IMAGE.part), its keys file and CSV (if any) are written atomically, its
-- manifest record is appended and flushed, and only then is the pending
-- file renamed to IMAGE. So an image exists under its name only once it is
-- complete and recorded, and a batch killed at any moment resumes where it
-- stopped when the same command is run again:
--
--   * IMAGE exists and is recorded: done, skipped;
--   * IMAGE.part exists and is recorded: killed before the rename, renamed;
--   * otherwise the unit is built (a stale IMAGE.part is overwritten);
--   * IMAGE exists but is not recorded (not ours): refused unless --force;
--   * a manifest line cut short by the kill is dropped.
--
-- Memory stays flat in the number of units: serials are iterated, the
-- values table is streamed, manifest records are appended as units are
-- made. Only a resumed batch keeps a set of the serials already recorded.
--
-- With --jobs N the units are shared by N processes, dealt out in chunks
-- on demand through the lock file (nvsgen.chunks).

local lfs = require("lfs")
local core = require("nvsgen.core")
local nvsgen = require("nvsgen")
local csv = require("nvsgen.csv")
local recipe_mod = require("nvsgen.recipe")
local chunks = require("nvsgen.chunks")
local common = require("nvsgen.cli.common")

local format, concat = string.format, table.concat
local tostring, type, pcall, ipairs = tostring, type, pcall, ipairs
local attributes = lfs.attributes
local io_open, os_rename, os_remove = io.open, os.rename, os.remove
local format_row, csv_plain = csv.format_row, csv.is_plain
local write_file, write_keys = core.write_file, core.write_keys
local write_image = nvsgen.Partition.write_image

local M = {}

local EEXIST = 17 -- errno from write_file when not replacing an existing file

-- Wall-clock seconds and sleeping (luasystem when present).
do
  local has_system, system = pcall(require, "system")
  M.clock = has_system and system.monotime or os.clock
  M.sleep = has_system and system.sleep or function() end
end

M.MANIFEST = "manifest.csv"
M.COLUMNS = { "serial", "image", "size", "sha256", "keys" }

---------------------------------------------------------------------------
-- Serials
---------------------------------------------------------------------------

local Serials = {}
Serials.__index = Serials

--- Parses "A-B" (inclusive), "A,B,C", or a mix ("1-5,9"). Returns a
-- serial set (never expanded into a list), or nil and a message.
function M.serials(text)
  if type(text) ~= "string" or text == "" then return nil, "serial range is empty" end
  local ranges, count = {}, 0
  for item in (text .. ","):gmatch("([^,]*),") do
    local a, b = item:match("^%s*(%d+)%s*%-%s*(%d+)%s*$")
    if not a then a = item:match("^%s*(%d+)%s*$"); b = a end
    if not a or #a > 15 or #b > 15 then
      return nil, format("invalid serial range '%s': expected A-B or A,B,C", text)
    end
    a, b = tonumber(a), tonumber(b)
    if b < a then return nil, format("invalid serial range '%s': %d comes after %d", text, a, b) end
    ranges[#ranges + 1] = { a, b }
    count = count + (b - a + 1)
  end
  -- A serial made twice in one batch would be two units with one image.
  local sorted = table.move(ranges, 1, #ranges, 1, {})
  table.sort(sorted, function(x, y) return x[1] < y[1] end)
  for i = 2, #sorted do
    if sorted[i][1] <= sorted[i - 1][2] then
      return nil, format("invalid serial range '%s': serial %d is listed twice", text, sorted[i][1])
    end
  end
  return setmetatable({ ranges = ranges, count = count, text = text }, Serials)
end

--- Iterates index, serial.
function Serials:each()
  local ranges, r, s, i = self.ranges, 1, self.ranges[1][1] - 1, 0
  return function()
    s = s + 1
    if s > ranges[r][2] then
      r = r + 1
      if not ranges[r] then return nil end
      s = ranges[r][1]
    end
    i = i + 1
    return i, s
  end
end

function Serials:contains(serial)
  for _, r in ipairs(self.ranges) do
    if serial >= r[1] and serial <= r[2] then return true end
  end
  return false
end

function Serials:first()
  return self.ranges[1][1]
end

---------------------------------------------------------------------------
-- The per-unit CSV that Espressif's nvs_partition_gen turns into the image
---------------------------------------------------------------------------

-- Keys for which the reference adds Wi-Fi entries of its own.
local WIFI_KEYS = { ["sta.ssid"] = true, ["sta.pswd"] = true, ["ap.ssid"] = true,
  ["ap.passwd"] = true, ["ap.authmode"] = true }

--- The CSV text for the rows a unit recorded, or nil and a message.
-- `command` is the command line that regenerates the image (a comment).
function M.unit_csv(rows, command)
  local out = { "# " .. command .. "\r\n", format_row({ "key", "type", "encoding", "value" }) }
  for _, row in ipairs(rows) do
    local key, kind, value = row[1], row[2], row[3]
    if key:sub(1, 1) == "#" then
      return nil, format("key '%s': a name starting with '#' reads as a comment in CSV", key)
    end
    if WIFI_KEYS[key] then
      return nil, format("key '%s': nvs_partition_gen adds Wi-Fi entries for it, so --csv cannot"
        .. " reproduce the image", key)
    end
    local fields
    if kind == "namespace" then
      fields = { key, "namespace", "", "" }
    elseif kind == "string" then
      -- The reference reads CSV as UTF-8 text with universal newlines and
      -- drops lines starting with '#', even inside a quoted field.
      if not utf8.len(value) then
        return nil, format("key '%s': string is not valid UTF-8, CSV cannot hold it", key)
      elseif value:find("\r", 1, true) then
        return nil, format("key '%s': string holds a carriage return, CSV cannot keep it", key)
      elseif value:find("\n#") then
        return nil, format("key '%s': string has a line starting with '#', CSV would drop it", key)
      end
      fields = { key, "data", "string", value }
    elseif kind == "blob" then
      fields = { key, "data", "hex2bin", core.hex_encode(value) }
    elseif kind == "float" or kind == "double" then
      fields = { key, "data", kind, format("%.17g", value) }
    else
      fields = { key, "data", kind, tostring(math.tointeger(value) or value) }
    end
    out[#out + 1] = format_row(fields)
  end
  return concat(out)
end

---------------------------------------------------------------------------
-- Manifest
---------------------------------------------------------------------------

-- Copies the complete lines of `path` for which keep(record) is true to a
-- temporary file and renames it over `path`: drops a line cut short by a
-- kill, or (with --force) the records the batch will make again.
local function rewrite_manifest(path, keep)
  local src = assert(io_open(path, "rb"))
  local tmp = path .. ".rewrite"
  local dst, err = io_open(tmp, "wb")
  if not dst then src:close(); return nil, err end
  local header_done = false
  for line in src:lines("L") do
    if line:sub(-1) ~= "\n" then break end -- the cut line
    if not header_done then
      header_done = true
      dst:write(line)
    else
      local fields = csv.from_string(line, path):next()
      if fields and keep(fields) then dst:write(line) end
    end
  end
  src:close()
  dst:close()
  local ok, rerr = os_rename(tmp, path)
  if not ok then return nil, rerr end
  return true
end

--- Opens (creating or resuming) the manifest in `outdir`. Returns
-- { file, columns, exports, recorded = set of serials } or nil, message.
local function open_manifest(outdir, exports, serials, force, shared)
  local path = common.join(outdir, M.MANIFEST)
  local m = { path = path, recorded = {}, exports = table.move(exports, 1, #exports, 1, {}) }
  local f = io_open(path, "rb")
  if f then
    local size = f:seek("end")
    local cut = false
    if size > 0 then
      f:seek("set", size - 1)
      cut = f:read(1) ~= "\n"
    end
    f:close()
    if (cut or force) and not shared then
      local ok, err = rewrite_manifest(path, function(fields)
        return not (force and serials:contains(tonumber(fields[1]) or -1))
      end)
      if not ok then return nil, format("%s: %s", path, err) end
    end
    local src, err = io_open(path, "rb")
    if not src then return nil, format("%s: cannot open (%s)", path, err) end
    local first = src:read("L")
    local header = first and first:sub(-1) == "\n" and csv.from_string(first, path):next()
    if header then
      for i, col in ipairs(M.COLUMNS) do
        if header[i] ~= col then
          src:close()
          return nil, format("%s: not a manifest of nvsgen (column %d is not '%s')", path, i, col)
        end
      end
      local have = {}
      for i = #M.COLUMNS + 1, #header do have[#have + 1] = header[i] end
      if #exports > 0 and concat(have, ",") ~= concat(exports, ",") then
        src:close()
        return nil, format("%s: exported columns %s differ from the recipe's %s; use another --outdir",
          path, concat(have, ","), concat(exports, ","))
      end
      m.exports = have
      m.header_written = true
      -- Only complete lines count: another process of the batch may be
      -- appending the last one.
      local recorded = m.recorded
      for line in src:lines("L") do
        local serial = line:match("^(%d+),")
        if serial and line:sub(-1) == "\n" then recorded[tonumber(serial)] = true end
      end
    end
    src:close()
  end
  if not f and #exports > 0 then
    -- Exported values are the secrets the cloud side registers: like keys
    -- files, a manifest holding them is readable by its owner only.
    local ok, cerr, code = write_file(path, "", 384, false)
    if not ok and code ~= EEXIST then return nil, cerr end
  end
  local file, err = io_open(path, "ab")
  if not file then return nil, format("%s: cannot open (%s)", path, err) end
  -- Unbuffered: each write (a header, a group of lines) is one write() of
  -- whole lines, which the workers' appends cannot split.
  file:setvbuf("no")
  m.file = file
  return m
end

local function manifest_header(m)
  local cols = {}
  for i, c in ipairs(M.COLUMNS) do cols[i] = c end
  for _, c in ipairs(m.exports) do cols[#cols + 1] = c end
  m.file:write(format_row(cols))
  m.header_written = true
end

---------------------------------------------------------------------------
-- Running a batch
---------------------------------------------------------------------------

-- The parent process id, from /proc (nil where there is none).
local function parent_pid()
  local f = io_open("/proc/self/stat", "r")
  if not f then return nil end
  local stat = f:read("l") or ""
  f:close()
  return stat:match("^%d+ %b() %S+ (%d+)")
end

M.LOCK = ".nvsgen.lock"
M.PARENT_GONE = "the batch's main process is gone"

-- Takes the output folder's lock (an fcntl lock, gone with its process):
-- exclusive for a moment, to be sure no process of an earlier run of the
-- batch (a worker whose main process was killed) is still writing, then
-- shared with this run's workers. Waits up to `wait` seconds. The lock
-- file is also the batch's chunk file (nvsgen.chunks), opened as one.
-- Returns the open lock file and its path, or nil and a message.
local function lock_outdir(outdir, exclusive_first, wait)
  local path = common.join(outdir, M.LOCK)
  local f, err = chunks.open(path)
  if not f then return nil, err end
  if exclusive_first then
    local deadline = M.clock() + wait
    while not lfs.lock(f, "w") do
      if M.clock() > deadline then
        f:close()
        return nil, format("%s is in use by another batch (%s is locked)", outdir, path)
      end
      M.sleep(0.005)
    end
  end
  local ok, lerr = lfs.lock(f, "r")
  if not ok then
    f:close()
    return nil, format("%s: cannot lock (%s)", path, lerr)
  end
  return f, path
end

local OPTIONS = {
  recipe = true, serials = true, outdir = true, size = true, version = true, name = true,
  values = true, keygen = true, inputkey = true, csv = true, dry_run = true, force = true,
  offset = true, progress = true, crypto = true, shard = true, jobs = true, spawn = true,
}

--- The file name pattern, checked: it must give different names for
-- different serials and stay in the output folder.
local function check_name(pattern)
  local ok1, a = pcall(format, pattern, 1)
  local ok2, b = pcall(format, pattern, 2)
  if not ok1 or not ok2 or a == b then
    return nil, format("name pattern '%s' must hold one %%d (or %%05d, ...) for the serial", pattern)
  end
  if a:find("/", 1, true) then return nil, format("name pattern '%s' must not hold '/'", pattern) end
  if not a:find("%.bin$") then return nil, format("name pattern '%s' must end in .bin", pattern) end
  return true
end

-- Runs every unit function of the recipe on `u` (called through pcall).
local function build_unit(units, u)
  for i = 1, #units do units[i](u) end
end

-- A progress bar on `stream` (a terminal).
local function progress_bar(stream, total)
  local step = total > 200 and total // 200 or 1
  return function(done, force)
    if done % step ~= 0 and not force then return end
    local width = 40
    local filled = total > 0 and done * width // total or width
    stream:write(format("\r[%s%s] %3d%% %d/%d", ("#"):rep(filled), (" "):rep(width - filled),
      total > 0 and done * 100 // total or 100, done, total))
    if force then stream:write("\n") end
    stream:flush()
  end
end

--- The values table reader: for each serial in order, its row. Rows must
-- follow the batch's order; rows of other serials are passed over.
local function values_source(path, column)
  local reader, err = csv.open_dict(path, { required = { column }, comments = true })
  if not reader then return nil, err end
  local row, line
  return function(serial)
    while true do
      if row and tonumber(row[column]) == serial then return row end
      row, line = reader:next()
      if not row then
        if line then return nil, line end
        return nil, format("%s: no row for serial %d (rows must follow the batch's order)", path, serial)
      end
    end
  end, reader
end

--- Runs `opts.recipe` for `opts.serials`. Returns a summary table
-- ({ total, written, skipped, finished, seconds, first, outdir, manifest }),
-- or nil and a message (a recipe mistake names the unit).
function M.run(opts)
  nvsgen.check_options(opts, OPTIONS, "batch.run", 2)
  local r = opts.recipe
  local serials = opts.serials
  local size = opts.size or r.size
  local version = opts.version or r.version or 2
  local name = opts.name or r.name or "unit-%d.bin"
  local outdir = opts.outdir or "."
  local dry = opts.dry_run
  if not size then return nil, "no partition size: the recipe sets none, give --size" end
  local ok, err = check_name(name)
  if not ok then return nil, err end

  local crypto = opts.crypto or require("nvsgen.crypto")
  local partition = nvsgen.partition{ size = size, version = version }
  local inputkey = opts.inputkey
  local keygen = opts.keygen or (r.encrypt == "keygen" and not inputkey)
  local fixed_key
  if inputkey then
    fixed_key, err = crypto.read_keys(inputkey)
    if not fixed_key then return nil, err end
    partition:set_key(fixed_key)
  end
  local encrypted = keygen or fixed_key ~= nil

  local random = crypto.random_bytes
  local u = recipe_mod.unit_context(r, partition, random)
  local units = r.units
  local exports = r.exports

  local values_path = opts.values or (r.values and u:path(r.values))
  local next_values, values_reader
  if values_path then
    next_values, err = values_source(values_path, r.key_column or "serial")
    if not next_values then return nil, err end
    values_reader = err
  end

  -- Files are named relative to `prefix` (outdir and a slash) in messages
  -- and for lfs, and to `folder` (outdir opened once) where they are made.
  local prefix = outdir == "." and "" or (outdir:gsub("/+$", "")) .. "/"
  local m, fresh, lock, lock_path, folder
  if not dry then
    ok, err = common.make_dirs(outdir)
    if not ok then return nil, err end
    lock, lock_path = lock_outdir(outdir, not opts.shard, 30)
    if not lock then return nil, lock_path end
    folder, err = core.folder(prefix == "" and "." or prefix)
    if not folder then lock:close(); return nil, err end
    -- Temporary files of an atomic write cut short by a kill. In a folder
    -- that was empty no image can be in the way, so none is looked for.
    fresh = true
    for entry in lfs.dir(outdir) do
      if entry ~= "." and entry ~= ".." and entry ~= M.LOCK then fresh = false end
      if entry:find("%.tmp%-%w%w%w%w%w%w$") then os_remove(common.join(outdir, entry)) end
    end
    m, err = open_manifest(outdir, exports, serials, opts.force, opts.shard ~= nil)
    if not m then lock:close(); return nil, err end
  end

  -- A shared batch: worker processes (started by opts.spawn) take chunks
  -- of units as this one does and append to the same manifest; a line is
  -- one write() to a file opened for appending, so lines never mix.
  -- Workers need the header written.
  local share, shares = 1, 1
  local workers = {}
  if opts.shard then
    share, shares = opts.shard[1], opts.shard[2]
    fresh = opts.shard[3] or false
  elseif m and opts.jobs and opts.jobs > 1 and opts.spawn and serials.count >= 2 * opts.jobs
      and (m.header_written or #m.exports > 0) then
    if not m.header_written then manifest_header(m); m.file:flush() end
    ok, err = chunks.reset(lock_path)
    if not ok then lock:close(); return nil, err end
    shares = opts.jobs
    for k = 2, shares do
      local w, werr = opts.spawn(k, shares, fresh)
      if not w then return nil, "cannot start a worker: " .. tostring(werr) end
      workers[#workers + 1] = w
    end
  end
  -- A worker stops when the batch's main process is gone (killed): the
  -- kernel then gives the worker another parent.
  local parent = opts.shard and parent_pid()

  local generate_key = crypto.generate_key
  local want_csv = opts.csv
  local force = opts.force
  local total = serials.count
  local bar = opts.progress and progress_bar(opts.progress, total)
  local written, skipped, finished = 0, 0, 0
  local manifest_file = m and m.file
  local recorded = m and m.recorded or {}
  local columns = m and m.exports or exports
  local row = {}
  -- The manifest line of a unit is joined as it is when no field needs
  -- quoting: serial, size and hash never do, the names do only when the
  -- pattern does; exported values are looked at per unit.
  local names_plain = csv_plain(name) and csv_plain(inputkey or "")
  local column_set -- the export columns as a set, once they are known
  local failure
  local clock = M.clock

  -- Units are committed in groups: their pending images are written, then
  -- their manifest lines in one write, then the images renamed into place.
  local GROUP = 32
  local group_pending, group_final, group_lines, grouped = {}, {}, {}, 0
  local function commit()
    if grouped == 0 then return true end
    manifest_file:write(concat(group_lines, "", 1, grouped))
    local flushed, ferr = manifest_file:flush()
    if not flushed then return nil, format("%s: %s", m.path, ferr) end
    for i = 1, grouped do
      local renamed, rerr = folder:rename(group_pending[i], group_final[i])
      if not renamed then return nil, rerr end
    end
    grouped = 0
    return true
  end
  local started = clock()

  local mine = shares > 1 and chunks.taker(lock, lock_path, share)
  for index, serial in serials:each() do
    if mine then
      local taken, next_first = mine(index)
      if not taken then
        if taken == nil then failure = next_first; break end
        if next_first > total then break end -- every chunk is taken
        if next_values then next_values(serial) end
        goto continue
      end
    end
    local image_name = format(name, serial)
    local pending = image_name .. ".part"
    local status = "build"
    if not dry and not fresh then
      local image_path = prefix .. image_name
      local done = recorded[serial]
      if done and attributes(prefix .. pending, "mode") then
        status = "finish"
      elseif attributes(image_path, "mode") then
        if force then status = "build"
        elseif done then status = "skip"
        else
          failure = format("unit %d: %s already exists and is not in %s; use --force to overwrite it",
            serial, image_path, M.MANIFEST)
          break
        end
      elseif done then
        failure = format("unit %d: recorded in %s but %s is missing; use --force to build it again",
          serial, M.MANIFEST, image_path)
        break
      end
    end
    if status == "skip" then
      skipped = skipped + 1
      if next_values then next_values(serial) end
    elseif status == "finish" then
      ok, err = folder:rename(pending, image_name)
      if not ok then failure = err; break end
      finished = finished + 1
      if next_values then next_values(serial) end
    else
      local vrow
      if next_values then
        vrow, err = next_values(serial)
        if not vrow then failure = format("unit %d: %s", serial, err); break end
      end
      partition:reset()
      local key
      if keygen then
        key = generate_key()
        partition:set_key(key)
      end
      u:begin(serial, index, vrow, want_csv)
      ok, err = pcall(build_unit, units, u)
      if not ok then
        failure = format("unit %d: %s", serial, tostring(err))
        break
      end
      if not dry then
        -- The manifest columns are checked before any file of the unit is
        -- written, so a refused unit leaves nothing behind.
        if not m.header_written then
          if #columns == 0 then
            for k in pairs(u.exported) do columns[#columns + 1] = k end
            table.sort(columns)
          end
          manifest_header(m)
        end
        local exported = u.exported
        local n = #M.COLUMNS
        local plain = names_plain
        for i = 1, #columns do
          local v = exported[columns[i]]
          v = v == nil and "" or tostring(v)
          row[n + i] = v
          if plain and not csv_plain(v) then plain = false end
        end
        if not column_set then
          column_set = {}
          for i = 1, #columns do column_set[columns[i]] = true end
        end
        for k in pairs(exported) do
          if not column_set[k] then
            failure = format("unit %d: export '%s' is not a column of %s (columns: %s)",
              serial, k, m.path, concat(columns, ","))
            break
          end
        end
        if failure then break end
        local stem = (keygen or want_csv) and image_name:sub(1, -5)
        local keys_name = keygen and stem .. "-keys.bin" or inputkey or ""
        local csv_text
        if want_csv then
          local command = encrypted
            and format("nvs_partition_gen encrypt %s.csv %s 0x%X --version %d --inputkey %s",
              stem, image_name, size, version, keys_name)
            or format("nvs_partition_gen generate %s.csv %s 0x%X --version %d",
              stem, image_name, size, version)
          csv_text, err = M.unit_csv(u.rows, command)
          if not csv_text then failure = format("unit %d: %s", serial, err); break end
        end
        -- The keys file and the pending image need no atomic write of
        -- their own: the unit counts as made only once its manifest line
        -- is written, after both are complete; a rerun rebuilds (and so
        -- overwrites) anything of an unrecorded unit.
        if keygen then
          ok, err = write_keys(keys_name, key, "direct", folder)
          if not ok then failure = err; break end
        end
        if csv_text then
          -- Every value of the unit in clear (private keys, passwords),
          -- encrypted batch or not: readable by its owner only, as keys files.
          ok, err = write_file(stem .. ".csv", csv_text, 384, true, folder)
          if not ok then failure = err; break end
        end
        local bytes, hash
        bytes, hash = write_image(partition, pending, "direct", 420, true, folder)
        if not bytes then failure = hash; break end
        row[1], row[2], row[3], row[4], row[5] = serial, image_name, bytes, hash, keys_name
        grouped = grouped + 1
        group_pending[grouped], group_final[grouped], group_lines[grouped] = pending, image_name,
          plain and concat(row, ",", 1, n + #columns) .. "\r\n" or format_row(row)
        if grouped == GROUP then
          ok, err = commit()
          if not ok then failure = err; break end
        end
      else
        partition:image() -- what an image would be made of is checked
        if want_csv then
          ok, err = M.unit_csv(u.rows, "dry run")
          if not ok then failure = format("unit %d: %s", serial, err); break end
        end
      end
      written = written + 1
    end
    if bar then bar(index) end
    if parent and index % chunks.SIZE == 0 and parent_pid() ~= parent then
      failure = M.PARENT_GONE
      break
    end
    ::continue::
  end
  -- The units made before a failure are complete: they are committed too.
  if manifest_file then
    ok, err = commit()
    if not ok then failure = failure or err end
  end
  -- After a failure the workers are not waited for: this process exits,
  -- they notice and stop, committing what they made (a rerun of the batch
  -- waits for them on the lock).
  for k, w in ipairs(failure and {} or workers) do
    local text = w:read("a") or ""
    local ok_w = w:close()
    local ww, ws, wf = text:match("shard (%d+) (%d+) (%d+)%s*$")
    if not ok_w or not ww then
      failure = failure or format("worker %d of %d failed (its message is above)", k + 1, shares)
    else
      written, skipped, finished = written + tonumber(ww), skipped + tonumber(ws), finished + tonumber(wf)
    end
  end
  local seconds = clock() - started
  if bar then bar(written + skipped + finished, true) end
  if manifest_file then manifest_file:close() end
  if folder then folder:close() end
  if lock then
    -- The lock file goes with the last process of the batch (workers left
    -- running after a failure still hold it).
    lock:close()
    if not opts.shard and (not failure or #workers == 0) then os_remove(lock_path) end
  end
  if values_reader then values_reader:close() end
  if failure then return nil, failure end
  return {
    total = total, written = written, skipped = skipped, finished = finished,
    seconds = seconds, outdir = outdir, first = prefix .. format(name, serials:first()),
    manifest = m and m.path, size = size, version = version, encrypted = encrypted,
  }
end

return M
