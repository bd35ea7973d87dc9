--- nvsgen.batch: runs a recipe for every serial of a batch; no unit lost, half-made or made twice.
--
-- batch.run reads as: prepare (parameters, output folder, lock, manifest,
-- workers) -> per unit (status, build, stage, commit) -> finish. A unit
-- is built in memory; its files are written under pending names
-- (nvsgen.staging); a group of units is recorded in the manifest
-- (nvsgen.manifest) and only then are its files given their names. The
-- same command run again resumes where a run stopped:
--
--   * image in place and recorded: done, skipped;
--   * pending files and recorded: stopped before the renames, renamed;
--   * not recorded: its pending files are removed and it is built again;
--   * a name in the way that the batch did not record: refused (--force
--     makes the unit again over it);
--   * a record cut short (a power cut): dropped.
--
-- The folder is locked for the whole run (nvsgen.workers), and the
-- parameters a rerun gives (size, version, name pattern, encryption,
-- export columns) must be those the manifest's records were made with.
-- SIGINT, SIGTERM and SIGHUP stop the batch between units: what is staged
-- is committed, the workers stop too, and the run fails with
-- "interrupted: N of M units made; ...".
--
-- Memory stays flat in the number of units: serials are iterated, the
-- values table is streamed; only the set of recorded serials is kept.
-- With --jobs N the units are shared by N processes, dealt out in chunks
-- on demand (nvsgen.chunks).

local lfs = require("lfs")
local core = require("nvsgen.core")
local nvsgen = require("nvsgen")
local serials_mod = require("nvsgen.serials")
local unit_mod = require("nvsgen.unit")
-- nvsgen.unit_csv (and nvsgen.csv) are loaded only by a batch with --csv
-- or a values table: a batch of plain units starts without parsing them.
local function unit_csv_text(rows, command) return require("nvsgen.unit_csv").text(rows, command) end
local manifest_mod = require("nvsgen.manifest")
local staging = require("nvsgen.staging")
local workers = require("nvsgen.workers")
local chunks = require("nvsgen.chunks")
local outdir_mod = require("nvsgen.outdir")

local format = string.format
local decimal_name = core.decimal_name
local tostring, type, pcall = tostring, type, pcall
local stop_signal = core.stop_signal

local M = {}

M.serials = serials_mod.parse
M.unit_csv = unit_csv_text
M.MANIFEST = manifest_mod.NAME
M.COLUMNS = manifest_mod.COLUMNS
M.LOCK = workers.LOCK
M.clock, M.sleep = workers.clock, workers.sleep
--- What a worker's run fails with when it was told to stop.
M.STOPPED = workers.STOPPED
M.PARENT_GONE = workers.STOPPED

--- The largest partition size a batch makes: nvsgen.MAX_PARTITION_SIZE
-- (see there why the firmware can address no more).
M.MAX_SIZE = nvsgen.MAX_PARTITION_SIZE

--- Units committed together: each commit waits for the disk twice (the
-- files, then the records), so that is done for a group of at least
-- GROUP units once COMMIT_SECONDS have passed since the last, and at most
-- GROUP_MAX units (what a kill can make the rerun build again).
M.GROUP, M.GROUP_MAX, M.COMMIT_SECONDS = 256, 4096, 0.5

--- Seconds a run waits for another batch on its folder to end before it
-- refuses (a worker of a killed batch stops within a chunk of units).
M.LOCK_WAIT = 10

local OPTIONS = {
  recipe = true, serials = true, outdir = true, size = true, version = true, name = true,
  values = true, keygen = true, inputkey = true, csv = true, dry_run = true, force = true,
  offset = true, progress = true, crypto = true, shard = true, jobs = true, spawn = true,
  lock_wait = true, layout = true,
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

-- The image name of unit `serial`: the batch's name pattern applied, in
-- one C call when its one conversion is a plain %d (b.name_head, set with
-- the pattern).
local function image_name(b, serial)
  local head = b.name_head
  if head then return decimal_name(head, serial, b.name_tail) end
  return format(b.name, serial)
end

--- Checks a partition size for a batch: nil, or a message.
function M.check_size(size)
  if math.type(size) ~= "integer" or size < 4096 or size % 4096 ~= 0 then
    return format("partition size %s must be a multiple of 4096, at least 0x1000", tostring(size))
  end
  local ok, err = nvsgen.check_size(size)
  if not ok then return err end
end

--- The values table reader: for each serial in order, its row and line.
-- Rows must follow the batch's order; rows of other serials are passed
-- over; a serial with two rows is refused.
local function values_source(path, column)
  -- (nvsgen.csv is loaded only by a batch with a values table.)
  local reader, err = require("nvsgen.csv").open_dict(path, { required = { column }, comments = true })
  if not reader then return nil, err end
  local row, line
  local seen = {}
  return function(serial)
    while true do
      if row and tonumber(row[column]) == serial then return row, line end
      row, line = reader:next()
      if not row then
        if line then return nil, line end
        return nil, format("%s: no row for serial %d (rows must follow the batch's order)", path, serial)
      end
      local s = row[column]
      if seen[s] then
        return nil, format("%s:%d: serial %s has a second row (the first is line %d)", path, line, s, seen[s])
      end
      seen[s] = line
    end
  end, reader
end

-- How a rerun's parameters are told apart from a record's.
local HINT = "run with the same options, use another --outdir, or --force to make the units again"

local function describe_keys(keys, image)
  if keys == "" then return "unencrypted" end
  if keys == staging.keys_name(image) then return "encrypted with a key per unit (--keygen)" end
  return format("encrypted with --inputkey %s", keys)
end

-- The keys file the record of the unit whose image is `image` names: its
-- own (--keygen), the batch's (--inputkey), or "" (unencrypted).
local function keys_name(b, image)
  if b.keygen then return staging.keys_name(image) end
  return b.inputkey or ""
end

-- check(fields) for the manifest: nil, or what differs between a record
-- and this run.
local function record_check(b)
  if b.layout then return b.layout:record_check() end
  local version_checked = false
  return function(fields)
    local serial = tonumber(fields[1])
    local made = tonumber(fields[3]) or -1
    if made ~= b.size and not (b.size < 0x3000 and made <= b.size) then
      return format("unit %d was made with size 0x%X, this run asks for 0x%X; %s", serial, made, b.size, HINT)
    end
    local image = image_name(b, serial)
    if fields[2] ~= image then
      return format("unit %d was made as %s, this run's name pattern '%s' gives %s; %s",
        serial, fields[2], b.name, image, HINT)
    end
    local keys = keys_name(b, image)
    if fields[5] ~= keys then
      return format("unit %d was made %s, this run asks for it %s; %s", serial,
        describe_keys(fields[5], image), describe_keys(keys, image), HINT)
    end
    if not version_checked then
      -- The page header's version byte (0xFE: version 2, 0xFF: version 1)
      -- is not encrypted; one image tells the batch's version.
      version_checked = true
      local f = io.open(b.prefix .. image, "rb")
      local head = f and f:read(9)
      if f then f:close() end
      local v = head and #head == 9 and ({ [0xFE] = 2, [0xFF] = 1 })[head:byte(9)]
      if v and v ~= b.version then
        return format("unit %d was made with --version %d, this run asks for %d; %s", serial, v, b.version, HINT)
      end
    end
  end
end

-- A unit's error value as one line naming the recipe and the unit.
local EXIT = setmetatable({}, { __tostring = function() return "os.exit" end })

local function unit_error(r, serial, err)
  -- The recipe's file: where its (last) unit function is written.
  local info = r.units[#r.units] and debug.getinfo(r.units[#r.units], "S")
  local source = info and info.source:match("^@(.*)") or r.source or "recipe"
  if err == EXIT then
    return format("unit %d: %s: the recipe called os.exit; a recipe must not end the batch", serial, source)
  elseif type(err) == "string" then
    return format("unit %d: %s", serial, err)
  elseif err == nil then
    return format("unit %d: %s: the unit raised an error with no message", serial, source)
  end
  local mt = getmetatable(err)
  if type(mt) == "table" and mt.__tostring then
    -- The recipe's __tostring may itself fail, or give no string.
    local ok, text = pcall(tostring, err)
    if ok and type(text) == "string" then return format("unit %d: %s", serial, text) end
  end
  return format("unit %d: %s: the unit raised a %s, not a message", serial, source, type(err))
end

-- What a unit function is stopped with when a stop signal comes while it
-- runs (a recipe that loops or waits must not keep the batch alive): the
-- binding raises it inside build_unit once a request comes (core.stop_units).
local STOP = setmetatable({}, { __tostring = function() return "stopped" end })

-- Runs every unit function of the recipe on `u` (called protected: true,
-- or false and what a unit function raised): the binding's runner, which
-- a stop request raises STOP in.
local build_unit = core.run_units

local function size_text(bytes)
  if bytes >= 1 << 30 then return format("%.1f GiB", bytes / (1 << 30)) end
  if bytes >= 1 << 20 then return format("%.1f MiB", bytes / (1 << 20)) end
  return format("%d KiB", (bytes + 1023) // 1024)
end

-- Bytes a file of `n` bytes takes on a disk of 4 KiB blocks.
local function blocks(n)
  return (n + 4095) // 4096 * 4096
end

-- Defined below where they belong, called before.
local values_setup, stage_layout

---------------------------------------------------------------------------
-- Prepare
---------------------------------------------------------------------------

-- The batch's parameters from the options and the recipe: the state
-- table every step works on, or nil and a message.
local function parameters(opts)
  local r = opts.recipe
  local b = {
    r = r, serials = opts.serials, size = opts.size or r.size, version = opts.version or r.version or 2,
    name = opts.name or r.name or "unit-%d.bin", outdir = opts.outdir or ".", dry = opts.dry_run,
    force = opts.force, want_csv = opts.csv, inputkey = opts.inputkey, shard = opts.shard,
    progress = opts.progress, total = opts.serials.count,
    written = 0, skipped = 0, finished = 0, unit_bytes = nil, committed = M.clock(),
    image_only = {},
  }
  -- A unit of several partitions (nvsgen.unit_layout) is written as
  -- several files, all pending until its record is written.
  local layout = opts.layout
  b.layout = layout
  if layout then b.size = layout.parts[1].size end
  if not b.size then return nil, "no partition size: the recipe sets none, give --size" end
  local problem = M.check_size(b.size)
  if problem then return nil, problem end
  local ok, err = check_name(b.name)
  if not ok then return nil, err end
  -- A pattern whose one conversion is a plain %d names units in one C call.
  b.name_head, b.name_tail = b.name:match("^([^%%]*)%%d([^%%]*)$")
  b.prefix = outdir_mod.prefix(b.outdir)
  b.crypto = opts.crypto or require("nvsgen.crypto")
  if layout then
    layout.prefix = b.prefix
    b.partition, b.keygen, b.inputkey, b.encrypted = layout.parts[1].partition, layout:keygen(), nil,
      layout.encrypted
    b.u = unit_mod.context(r, b.partition, b.crypto.random_bytes, layout.partitions)
    return values_setup(b, opts)
  end
  local made
  made, b.partition = pcall(nvsgen.partition, { size = b.size, version = b.version })
  if not made then return nil, tostring(b.partition):gsub("^[^:]*:%d+: ", "") end
  b.keygen = opts.keygen or (r.encrypt == "keygen" and not b.inputkey)
  if b.inputkey then
    local key
    key, err = b.crypto.read_keys(b.inputkey)
    if not key then return nil, err end
    b.partition:set_key(key)
  end
  b.encrypted = b.keygen or b.inputkey ~= nil
  b.u = unit_mod.context(r, b.partition, b.crypto.random_bytes)
  return values_setup(b, opts)
end

-- The values table of the batch, if any: b, or nil and a message.
function values_setup(b, opts)
  local r, err = b.r
  local values_path = opts.values or (r.values and b.u:path(r.values))
  if values_path then
    b.next_values, err = values_source(values_path, r.key_column or "serial")
    if not b.next_values then return nil, err end
    b.values_reader = err
    b.values_path = values_path
    b.u.values_columns = {}
    for _, column in ipairs(err.header) do b.u.values_columns[column] = true end
  end
  return b
end

-- The output folder, its lock, its manifest. true, or nil and a message.
local function open_outdir(b, opts)
  local ok, err = outdir_mod.make_dirs(b.outdir)
  if not ok then return nil, err end
  b.folder, err = core.folder(b.prefix == "" and "." or b.prefix)
  if not b.folder then return nil, err end
  local stopped = function() return stop_signal() ~= nil end
  local wait = opts.lock_wait or M.LOCK_WAIT
  if b.shard then
    b.lock, b.watch = workers.join(b.folder, b.prefix, b.outdir, wait, stopped)
  else
    b.lock, err = workers.lock(b.folder, b.prefix, b.outdir, wait, stopped)
  end
  if not b.lock then return nil, b.watch or err end
  -- Temporary files of an atomic write cut short by a kill. In a folder
  -- that was empty no file can be in the way, so none is looked for.
  b.fresh = true
  for entry in lfs.dir(b.outdir) do
    if entry ~= "." and entry ~= ".." and entry ~= M.LOCK then b.fresh = false end
    -- (Only the main process: a worker starts while the others write.)
    if not b.shard and entry:find("%.tmp%-%w%w%w%w%w%w$") then b.folder:remove(entry) end
  end
  if b.shard then b.fresh = b.shard[3] or false end
  local serials, force = b.serials, b.force
  b.manifest, err = manifest_mod.open(b.folder, b.prefix, b.r.exports, {
    shared = b.shard ~= nil,
    drop = force and function(serial) return serials:contains(serial) end,
    check = not force and record_check(b) or nil,
    base = b.layout and b.layout:columns(),
  })
  if not b.manifest then return nil, err end
  b.recorded = b.manifest.recorded
  b.stage = staging.new(b.folder, b.prefix, b.manifest, force)
  return true
end

-- Starts the workers of a shared batch and sets up the chunks this
-- process takes. true, or nil and a message.
local function share(b, opts)
  local m = b.manifest
  b.shares, b.share = 1, 1
  if b.shard then
    b.share, b.shares = b.shard[1], b.shard[2]
  elseif opts.jobs and opts.jobs > 1 and opts.spawn and b.total >= 2 * opts.jobs
      and (m.header_written or #m.columns > 0) then
    -- Workers need the header written and the chunk file empty.
    if not m.header_written then
      local ok, err = m:write_header()
      if not ok then return nil, err end
    end
    b.shares = opts.jobs
  end
  if b.shares == 1 then return true end
  local file, err = core.open_append(b.folder, M.LOCK, "existing", 384, false)
  if not file then return nil, err end
  b.chunk_file = file
  if not b.shard then
    local ok
    ok, err = file:truncate(0)
    if not ok then return nil, err end
    local fresh = b.fresh
    b.team, err = workers.start(b.lock, b.shares, function(k, n, prefix)
      return opts.spawn(k, n, fresh, prefix)
    end)
    if not b.team then return nil, err end
  end
  b.mine = chunks.taker_at(file, b.prefix .. M.LOCK, b.share)
  return true
end

---------------------------------------------------------------------------
-- Per unit
---------------------------------------------------------------------------

-- The message of a unit whose recipe raised `err` (M.STOPPED for a stop
-- request).
local function recipe_failure(b, serial, err)
  if err == STOP then return M.STOPPED end
  return unit_error(b.r, serial, err)
end

-- Runs the recipe for unit `serial`: the key made for it (or nil), or
-- nil and a message.
local function build(b, serial, index)
  local vrow, vline, err
  if b.next_values then
    vrow, vline = b.next_values(serial)
    if not vrow then return nil, format("unit %d: %s", serial, vline) end
  end
  local partition = b.partition
  local key
  if b.keygen then key = b.crypto.generate_key() end
  if b.layout then
    b.layout:begin(key)
  else
    partition.encoder:reset()
    if key then partition:set_key(key) end
  end
  local u = b.u
  u:begin(serial, index, vrow, b.want_csv)
  if vline then u.values_where = format("%s:%d", b.values_path, vline) end
  local ok
  ok, err = build_unit(b.r.units, u, true)
  if not ok then return nil, recipe_failure(b, serial, err) end
  return key or true
end

-- The message for unit `serial`'s export `name`, which is not a column of
-- manifest `m`.
local function not_a_column(m, serial, name)
  return format("unit %d: export '%s' is not a column of %s (columns: %s)",
    serial, name, m.path, table.concat(m.columns, ","))
end

-- Writes the unit's pending files and stages its record. true, or nil,
-- message, errno.
local function stage(b, serial, names, stem, key)
  local m, u = b.manifest, b.u
  if not m.header_written then
    if #m.columns == 0 then
      for k in pairs(u.exported) do m.columns[#m.columns + 1] = k end
      table.sort(m.columns)
    end
    local ok, err, code = m:write_header()
    if not ok then return nil, err, code end
  end
  if b.layout then return stage_layout(b, serial, key) end
  local image = names[#names]
  local keys = keys_name(b, image)
  local text, err
  if b.want_csv then
    local command = b.encrypted
      and format("nvs_partition_gen encrypt %s.csv %s 0x%X --version %d --inputkey %s",
        stem, image, b.size, b.version, keys)
      or format("nvs_partition_gen generate %s.csv %s 0x%X --version %d", stem, image, b.size, b.version)
    text, err = unit_csv_text(u.rows, command)
    if not text then return nil, format("unit %d: %s", serial, err) end
  end
  local ok, code
  ok, err, code = b.stage:stage(names, b.partition, key ~= true and key or nil, text, serial, keys,
    u.exported)
  if not ok then
    if ok == false then return nil, not_a_column(m, serial, err) end
    return nil, err, code
  end
  if text then b.unit_bytes = blocks(b.size) + (key ~= true and 4096 or 0) + blocks(#text) + 256 end
  return true
end

-- stage() for a unit of several files: all written pending, one record.
function stage_layout(b, serial, key)
  local m = b.manifest
  for k in pairs(b.u.exported) do
    if not b.column_set then
      b.column_set = {}
      for _, c in ipairs(m.columns) do b.column_set[c] = true end
    end
    if not b.column_set[k] then return nil, not_a_column(m, serial, k) end
  end
  local files, fields = b.layout:outputs(serial, key ~= true and key or nil)
  if not files then return nil, format("unit %d: %s", serial, fields) end
  table.insert(fields, 1, serial)
  local ok, err, code = b.stage:stage_files(files, m:record(fields, b.u.exported))
  if not ok then return nil, err, code end
  b.unit_bytes = 256
  for _, f in ipairs(files) do b.unit_bytes = b.unit_bytes + blocks(#f.data) end
  return true
end

-- Records and renames the staged units. true, or nil, message, errno.
local function commit(b)
  local n, err, code = b.stage:commit()
  b.committed = M.clock()
  -- A unit counts as written once it is recorded.
  if n then b.written = b.written + n end
  if err then return nil, err, code end
  return true
end

-- The dry run: every unit built, nothing written.
local function dry_unit(b, serial, index)
  local ok, err = build(b, serial, index)
  if not ok then return nil, err end
  b.partition:image() -- what an image would be made of is checked
  if b.want_csv then
    ok, err = unit_csv_text(b.u.rows, "dry run")
    if not ok then return nil, format("unit %d: %s", serial, err) end
  end
  b.written = b.written + 1
  return true
end

-- Passes over the values row of unit `serial`, which this process does not
-- make (made before, or another process's): true, or nil and a message
-- naming that unit (a row missing or repeated here would otherwise be
-- told at a later unit, as if that unit's own row were missing).
local function pass_values(b, serial)
  local row, err = b.next_values(serial)
  if not row then return nil, format("unit %d: %s", serial, err) end
  return true
end

-- Commits the staged units once a group is due (M.GROUP). true, or nil,
-- message, errno.
local function commit_if_due(b, staged)
  if staged >= M.GROUP and (staged >= M.GROUP_MAX or M.clock() - b.committed >= M.COMMIT_SECONDS) then
    return commit(b)
  end
  return true
end

-- unit() for the batch's common case, taken once the manifest's header is
-- written: an output folder that was empty (no unit to skip or finish), a
-- unit of one image (and its keys file with --keygen), no values table and
-- no CSV. The same steps as build() and stage() make, with fewer tests and
-- calls per unit: at thousands of units a second they are what the batch
-- costs beyond the recipe.
local function new_image_unit(b, serial, index)
  local image = image_name(b, serial)
  local partition, u, key = b.partition, b.u, nil
  local encoder = partition.encoder
  encoder:reset()
  if b.keygen then
    key = b.crypto.generate_key()
    partition:set_key(key)
  end
  u:begin(serial, index)
  local ok, err = build_unit(b.r.units, u, true)
  if not ok then return nil, recipe_failure(b, serial, err) end
  -- keys_name(b, image); the batch's own, worked out once, with no key per unit
  local keys = key and keys_name(b, image) or b.batch_keys
  if key then
    local written, problem, errno = b.stage:keys(keys, key)
    if not written then return nil, problem, errno end
  end
  -- Stage:image, called straight
  local staged, code
  staged, err, code = b.staged:image(encoder, image, partition.xts, serial, keys, u.exported, b.columns)
  if not staged then
    if staged == false then return nil, not_a_column(b.manifest, serial, err) end
    return nil, err, code
  end
  return commit_if_due(b, staged)
end

-- Makes (or skips, or finishes) unit `serial`. true, or nil, message, errno.
local function unit(b, serial, index)
  local image = image_name(b, serial)
  local names, stem
  if b.layout then
    names = b.layout:file_names(serial)
  elseif b.keygen or b.want_csv then
    names, stem = staging.names(image, b.keygen, b.want_csv)
  else
    -- The image alone (staging.names' list, in a table kept for the batch).
    names = b.image_only
    names[1] = image
  end
  local status = "build"
  if not b.fresh then
    local err
    status, err = b.stage:status(serial, names, b.recorded[serial],
      not b.layout and b.size >= 0x3000 and b.size or nil)
    if not status then return nil, err end
  end
  if status ~= "build" then
    if b.next_values then
      local ok, err = pass_values(b, serial)
      if not ok then return nil, err end
    end
    if status == "skip" then b.skipped = b.skipped + 1 else b.finished = b.finished + 1 end
    return true
  end
  local key, err = build(b, serial, index)
  if not key then return nil, err end
  local ok, code
  ok, err, code = stage(b, serial, names, stem, key)
  if not ok then return nil, err, code end
  return commit_if_due(b, b.stage:units())
end

---------------------------------------------------------------------------
-- The run
---------------------------------------------------------------------------

-- Whether unit `index` is another process's (its chunk was taken): true,
-- or false; nil when the loop must end (b.failure set, or no chunk left).
local function others(b, index)
  if index < b.skip_to then return true end
  if stop_signal() then return nil end
  local mine = b.mine
  if not mine then return false end
  if b.watch and index % chunks.SIZE == 1 and workers.gone(b.watch) then
    b.failure = M.STOPPED
    return nil
  end
  local taken, next_first = mine(index)
  if taken then return false end
  if taken == nil then b.failure = next_first; return nil end
  if next_first > b.total then return nil end -- every chunk is taken
  -- Units before skip_to are other processes'.
  b.skip_to = next_first
  return true
end

local function units_loop(b)
  local progress, total = b.progress, b.total
  local each = b.dry and dry_unit or unit
  local next_values = b.next_values
  -- The common case's units, once the manifest's header is written.
  local common = not b.dry and b.fresh and not b.layout and not b.want_csv and not next_values
  -- (The manifest keeps its columns table from its opening on: new columns go into it.)
  b.staged, b.columns = b.stage and b.stage.staged, b.manifest and b.manifest.columns
  b.batch_keys = not b.keygen and keys_name(b) or nil
  local step, jump = b.serials:each()
  b.skip_to = 0
  -- The units up to this index are this process's (the rest of its chunk,
  -- or all with no chunks): others() is asked only past it.
  local mine_to = -1
  for index, serial in step do
    local passed = false
    if index <= mine_to then
      if stop_signal() then break end
    else
      passed = index < b.skip_to or others(b, index)
      if passed == nil then break end
      if not passed then mine_to = b.mine and chunks.last_of(index) or math.huge end
    end
    local ok, err, code = true, nil, nil
    if not passed then
      if common and b.manifest.header_written then
        ok, err, code = new_image_unit(b, serial, index)
      else
        ok, err, code = each(b, serial, index)
      end
    elseif next_values then
      ok, err = pass_values(b, serial) -- its values row is passed over, in order
    else
      jump(b.skip_to) -- the other processes' units: nothing to do for them here
    end
    if not ok then
      b.failure, b.code = err, code
      break
    end
    if progress and not passed then
      progress(b.written + (b.stage and b.stage:units() or 0) + b.skipped + b.finished, total)
    end
  end
end

local function finish(b)
  -- The units staged before a failure are complete: they are committed
  -- too. Not when asked to stop: that must be quick, and putting them on
  -- the disk may not be; their files are removed (the rerun makes them).
  if b.stage and (stop_signal() or b.failure == M.STOPPED) then
    b.stage:discard()
  elseif b.stage then
    local ok, err, code = commit(b)
    if not ok then
      b.stage:discard()
      b.failure, b.code = b.failure or err, b.code or code
    end
  end
  if b.team then
    if b.failure or stop_signal() then b.team:stop() end
    local w, s, f, failure, signal = b.team:wait()
    b.written, b.skipped, b.finished = b.written + w, b.skipped + s, b.finished + f
    b.failure = b.failure or failure
    b.worker_signal = signal
    if failure and failure:find("disk full", 1, true) then b.full = true end
  end
  local done = b.written + b.skipped + b.finished
  -- A worker stopped by a signal sent to it alone leaves its chunk unmade:
  -- the batch is interrupted as if the signal had come to the main process.
  local sig = stop_signal() or b.worker_signal
  if sig then
    b.signal = sig
    b.failure = b.shard and M.STOPPED
      or format("interrupted: %d of %d units made; run the same command to finish", done, b.total)
  elseif b.failure and staging.is_full(b.code) or b.full and not b.shard then
    local left = b.total - done
    local each = b.unit_bytes or blocks(b.size) + (b.keygen and 4096 or 0) + 256
    b.failure = format("%s: disk full: about %s more free space is needed for the %d units left (%s each);"
      .. " free it and run the same command to finish", b.outdir, size_text(left * each), left, size_text(each))
  end
  if not b.failure and not b.dry and not b.shard and done ~= b.total then
    -- Never success with units missing, whatever lost them.
    b.failure = format("%d of %d units made; run the same command to finish", done, b.total)
  end
  if b.progress then b.progress(done, b.total, true) end
  if b.chunk_file then b.chunk_file:close() end
  if b.manifest then b.manifest:close() end
  if b.lock then
    -- The lock file goes with the main process, once its workers are gone.
    if b.shard then b.lock:release() else b.lock:release(b.folder, M.LOCK) end
  end
  if b.folder then b.folder:close() end
  if b.values_reader then b.values_reader:close() end
end

local function run(opts)
  local b, err = parameters(opts)
  if not b then return nil, err end
  local started = M.clock()
  local ok = true
  if not b.dry then
    ok, err = open_outdir(b, opts)
    if ok then ok, err = share(b, opts) end
  end
  if ok then
    units_loop(b)
  else
    b.failure = err
  end
  finish(b)
  local summary = {
    total = b.total, written = b.written, skipped = b.skipped, finished = b.finished,
    seconds = M.clock() - started, outdir = b.outdir,
    first = b.prefix .. (b.layout and b.layout:file_names(b.serials:first())[1] or image_name(b, b.serials:first())),
    manifest = b.manifest and b.manifest.path, size = b.size, version = b.version, encrypted = b.encrypted,
    signal = b.signal,
    flash_args = b.layout and b.layout:flash_args_name(b.serials:first())
      and b.prefix .. b.layout:flash_args_name(b.serials:first()),
  }
  if b.failure then return nil, b.failure, summary end
  return summary
end

--- Runs `opts.recipe` for `opts.serials`. Returns a summary table
-- ({ total, written, skipped, finished, seconds, first, outdir, manifest }),
-- or nil, a message (a recipe mistake names the unit) and the summary of
-- what was done (its `signal` set when a signal stopped the run).
-- `opts.progress(done, total [, last])` is called as units are done.
function M.run(opts)
  nvsgen.check_options(opts, OPTIONS, "batch.run", 2)
  -- Stop requests are looked at between units; a recipe cannot end the
  -- batch with os.exit (it would leave units unrecorded, with success).
  core.signals_catch()
  core.stop_units(STOP)
  -- os.exit kept by the recipe from before: the process still fails.
  core.exit_guard("nvsgen: the recipe ended the process in the middle of the batch (os.exit);"
    .. " run the same command to finish\n")
  local exit = os.exit
  os.exit = function() error(EXIT, 0) end -- luacheck: ignore 122
  local result = table.pack(pcall(run, opts))
  os.exit = exit -- luacheck: ignore 122
  core.stop_units(nil)
  core.watch_close()
  core.signals_default()
  core.exit_guard(nil)
  if not result[1] then error(result[2], 0) end
  return table.unpack(result, 2, result.n)
end

return M
