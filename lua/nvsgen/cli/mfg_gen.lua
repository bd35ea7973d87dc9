--- nvsgen.cli.mfg_gen: the command line of ESP-IDF's mass manufacturing
-- tool, tools/mass_mfg/mfg_gen.py, writing the same files.
--
--   mfg_gen generate CONF.csv VALUES.csv PREFIX SIZE [--outdir DIR] [--fileid COLUMN]
--       [--version 1|2] [--keygen | --inputkey KEYS.bin]
--       [--key_protect_hmac (--kp_hmac_keygen [--kp_hmac_keyfile F] | --kp_hmac_inputkey H.bin)]
--   mfg_gen generate-key [--keyfile F] [--outdir DIR] [--key_protect_hmac ...]
--
-- For each data row of VALUES it writes OUTDIR/csv/PREFIX-ID.csv (the
-- config rows with that unit's values, as mfg_gen.py writes them) and
-- OUTDIR/bin/PREFIX-ID.bin (the image nvs_partition_gen makes of that CSV),
-- with --keygen also OUTDIR/keys/keys-PREFIX-ID.bin. The units are made by
-- nvsgen.mfg; this is the command line around it: options, what is
-- printed, worker processes, the output folder's lock and signals.
--
-- Before anything is written, the config and every unit of the values file
-- are checked: each row's values converted and its entries placed as they
-- will be (nvsgen.mfg.check_units), so a bad value at any row leaves no
-- file. The plain rows are made in C (nvsgen.mfg's maker), the others in
-- Lua. One batch at a time writes an output folder (its lock, the one a
-- recipe batch takes too: nvsgen.workers). SIGINT, SIGTERM and SIGHUP stop
-- every process of the batch between units (the workers watch the pipe of
-- nvsgen.workers, as a recipe batch's do): the units made are whole and
-- form a run from the first (those after the first missing one are
-- removed), one line says how many, and the process dies of the signal.
--
-- Differences from mfg_gen.py: no `_tmp`/`_created` files beside the
-- inputs; errors name the real file and line; a unit that fails leaves no
-- file of its own; keys come from the OS CSPRNG, are written 0600 and never
-- over an existing file; an --inputkey keys file is checked (size, CRC);
-- from 1,000 units the work is shared with worker processes (--jobs),
-- which take their units through a chunk file in $TMPDIR (else /tmp).

local nvsgen = require("nvsgen")
local core = require("nvsgen.core")
local crypto = require("nvsgen.crypto")
local args = require("nvsgen.cli.args")
local common = require("nvsgen.cli.common")
local chunks = require("nvsgen.chunks")
local workers_mod = require("nvsgen.workers")
local keyplan = require("nvsgen.keyplan")
local mfg = require("nvsgen.mfg")
local pypath = require("nvsgen.pypath")
local lfs = require("lfs")

local concat = table.concat
local tonumber, ipairs = tonumber, ipairs

local M = {}

local PROG = "mfg_gen"

local VERSION_BANNER = common.VERSION_BANNER

local HMAC_OPTIONS = common.HMAC_OPTIONS

M.GENERATE = {
  prog = PROG .. " generate",
  summary = "Write a CSV file and an NVS partition image per row of VALUES.csv:\n"
    .. "OUTDIR/csv/PREFIX-ID.csv, OUTDIR/bin/PREFIX-ID.bin (and OUTDIR/keys/keys-PREFIX-ID.bin\n"
    .. "with --keygen). ID counts rows from 1, or is the --fileid column's value.\n"
    .. "Every value is checked before anything is written. Existing files are never\n"
    .. "overwritten: use a fresh OUTDIR. A unit whose files cannot be written leaves\n"
    .. "no file of its own, but the files of the units before it stay.",
  positionals = {
    { name = "conf", help = "config CSV: key,type,encoding rows (REPEAT as a 4th field)" },
    { name = "values", help = "values CSV: a header naming the keys, then one row per unit" },
    { name = "prefix", help = "name prefix of every file written" },
    { name = "size", help = "partition size in bytes, a multiple of 4096 (decimal or 0x hex)" },
  },
  options = {
    { "--fileid", help = "values column whose value names each unit's files (default: 1, 2, 3...)" },
    { "--version", choices = { "1", "2" }, default = "2",
      help = "NVS format version: 1 (blobs on one page) or 2 (multi-page blobs)" },
    { "--prefix_num", nargs = 2, metavar = "START LENGTH",
      help = "number the files too: PREFIX-NUMBER-ID, NUMBER counting up from START, zero-padded to LENGTH digits" },
    { "--keygen", flag = true, help = "encrypt, with a new key per unit (OUTDIR/keys/keys-PREFIX-ID.bin)" },
    { "--inputkey", metavar = "FILE",
      help = "encrypt every unit with the key of this keys partition file (.bin)" },
    { "--outdir", metavar = "DIR", help = "folder for csv/, bin/ and keys/ (default: current folder)" },
    { "--key_protect_hmac", flag = true,
      help = "with --keygen: derive each unit's key from an HMAC key (ignored otherwise)" },
    { "--kp_hmac_keygen", flag = true,
      help = "a new HMAC key per unit, OUTDIR/keys/hmac-keys-PREFIX-ID.bin" },
    { "--kp_hmac_keyfile", metavar = "FILE",
      help = "with --kp_hmac_keygen: one new HMAC key for the whole batch, OUTDIR/keys/FILE" },
    HMAC_OPTIONS[4],
    { "--keyfile", help = "accepted for compatibility and ignored (--keygen names the keys files)" },
    { "--input", help = "accepted for compatibility and ignored" },
    { "--jobs", metavar = "N", help = "processes to use for 1,000 units or more (default: one per CPU, at most 4)" },
    { "--shard", metavar = "K/N", help = "(internal) be process K of N of a shared batch (a worker)" },
    { "--chunks", metavar = "FILE", help = "(internal) with --shard: take the units from FILE (nvsgen.chunks)" },
    { "--output", help = "accepted for compatibility and ignored" },
  },
}

M.GENERATE_KEY = {
  prog = PROG .. " generate-key",
  summary = "Write a new keys partition file to OUTDIR/keys/.",
  options = {
    common.KEYFILE_OPTION,
    { "--outdir", metavar = "DIR", help = "folder for keys/ (default: current folder)" },
    HMAC_OPTIONS[1], HMAC_OPTIONS[2], HMAC_OPTIONS[3], HMAC_OPTIONS[4],
  },
}


-- The command line that runs this command again, for workers (nil when
-- run in-process, as the specs do: no workers, no signal handlers).
local rerun

-- A batch's units are made in shares from this many units on: below, a
-- process costs more to start than it saves.
local SHARED_FROM = 1000

local function fail(message, status)
  return common.fail(PROG, message, status)
end

--- What an interrupted batch ends with: dies of signal `sig` when run as
-- a script (its parent sees 128 + sig), or returns that status in-process.
local function die_of(sig)
  if rerun then
    -- What is buffered would be lost with the process.
    common.stdout:flush()
    common.stderr:flush()
    core.signal_reraise(sig)
  end
  return 128 + sig
end

-- Set in a worker: it reports a signal to the main process and ends
-- normally, so that its report is read (the main process dies of it).
local is_worker = false

-- ---- what is printed per unit ----------------------------------------------------

--- The text mfg_gen.py prints for a unit whose files are written, in the
-- pieces that go around the unit's id (two or three times): only the id
-- changes from unit to unit, and joining the pieces costs half as much as
-- formatting a pattern.
local function report_pieces(job)
  local paths = job.paths
  local pieces = { "\nCreated CSV file: ===> " .. paths.csv }
  local after = ".csv\n"
  if job.size < common.READ_WRITE_MIN_SIZE then
    -- The partition generator mfg_gen.py calls warns of a read-only size
    -- for each unit: once per size check, and encrypting checks twice.
    local warning = "\n" .. common.READ_ONLY_WARNING .. "\n"
    after = after .. warning .. (job.encrypted and warning or "")
  end
  if job.keygen then
    pieces[2] = after .. "\nCreated encryption keys: ===>  " .. paths.keys
    after = "\n" -- after the keys file's suffix
  end
  pieces[#pieces + 1] = after .. "\n" .. job.banner .. "\n\nCreated NVS binary: ===> " .. paths.bin
  pieces[#pieces + 1] = ".bin\n"
  return pieces
end

local function unit_report(job, id)
  local r = job.report
  if r[4] then return r[1] .. id .. r[2] .. id .. mfg.unit_keys_suffix(job, id) .. r[3] .. id .. r[4] end
  return r[1] .. id .. r[2] .. id .. r[3]
end

--- The line of a batch stopped by a signal: how many units are made.
local function interrupted_line(made, units)
  if made == 0 then return "interrupted: no unit made" end
  return ("interrupted: %d of %d units made (units 1 to %d, each whole; none after them)")
    :format(made, units, made)
end

-- ---- the output folder -------------------------------------------------------------

--- Makes the folder `path` (mkdir -p), refusing a symbolic link there: the
-- files go into OUTDIR's own folders, never through a link to elsewhere.
local function make_dir(path)
  if lfs.symlinkattributes(path, "mode") == "link" then
    return nil, path .. ": is a symbolic link (mfg_gen writes only into real folders of the output folder)"
  end
  return common.make_dirs(path)
end

--- Takes the output folder's lock (one batch at a time writes it): the
-- lock of the folder itself that every batch takes (nvsgen.workers), so no
-- file is added to it; refused at once when another batch holds it. A
-- worker (`worker` true) checks the lock it inherited from its main
-- process instead. Returns the lock (it goes when released or the last
-- process holding it ends) and, for a worker, its watch descriptor; or nil
-- and a message.
local function lock_outdir(outdir, worker)
  local ok, err = common.make_dirs(outdir)
  if not ok then return nil, err end
  local folder
  folder, err = core.folder(outdir)
  if not folder then return nil, err end
  local lock, watch = false, nil
  if worker then lock, watch = workers_mod.adopt(folder, nil, outdir) end
  if lock == nil then
    err = watch
  elseif not lock then -- not a worker, or one started by hand
    local holder
    lock, err, holder = workers_mod.take(folder, nil, 0, function() return true end)
    if holder == "recipe" then
      err = outdir .. ": a recipe batch is writing this folder (wait for it to end, or use another --outdir)"
    elseif holder then
      err = outdir .. ": another mfg_gen run is writing this folder (wait for it to end, or use another --outdir)"
    end
  end
  folder:close()
  if not lock then return nil, err end
  return lock, watch
end

--- Makes the output folders and opens them (core.folder: the kernel then
-- does not walk their paths for every file). Returns the folders, or nil
-- and a message.
local function open_folders(job, units)
  local folders = {}
  local ok, err = make_dir(pypath.join(job.outdir, "csv"))
  if ok then ok, err = make_dir(pypath.join(job.outdir, "bin")) end
  if ok and job.keygen and (units > 0 or job.batch_hmac) then -- as mfg_gen.py: keys/ with its first key
    ok, err = make_dir(job.keys_dir)
  end
  if not ok then return nil, err end
  for _, which in ipairs({ "csv", "bin", "keys" }) do
    if which ~= "keys" or (job.keygen and units > 0) then
      folders[which], err = core.folder(job.dirs[which])
      if not folders[which] then return nil, err end
    end
  end
  return folders
end

-- ---- one process ---------------------------------------------------------------------

--- Makes the units in this process alone. Returns true; or nil, a message
-- and a status; or false and the signal that stopped it.
local function make_alone(job, folders)
  local made = 0
  -- The plain rows are made in C, the units' reports coming back with them.
  local fast = mfg.maker_pass(job, "write", { folders = folders, report = job.report,
    made = function(number, text)
      common.stdout:write(text)
      made = number
    end })
  local units, err = mfg.each_unit(job, function(number, id, fields, line, plain)
    if core.stop_signal() then return false end
    local text, berr, bline = mfg.build_unit(job, fields, line, plain)
    if not text then return nil, berr, bline end
    local ok, werr, wline = mfg.write_unit(job, folders, number, id, text, line)
    if not ok then return nil, werr, wline end
    common.stdout:write(unit_report(job, id))
    made = number
    return true
  end, nil, fast)
  if not units then return nil, err end
  local sig = core.stop_signal()
  if sig and made < job.units then
    common.stdout:flush()
    fail(interrupted_line(made, job.units))
    return false, sig
  end
  return true
end

-- ---- a batch shared by processes -----------------------------------------------------------

--- A worker's report to the main process, on its standard output: the
-- line where it stopped, why (a status, or the signal), and the message.
local function report_to_main(kind, line, code, message)
  common.stdout:write(("%s %d %d\n%s"):format(kind, line or 0, code or 1, message or ""))
end

--- Creates the chunk file of a shared batch: a new file (mode 0600) of the
-- temporary folder ($TMPDIR, else /tmp), not of the output or input
-- folders; the batch removes it once done. Returns its path, or nil and a
-- message.
local function new_chunk_file()
  local dir = os.getenv("TMPDIR")
  if not dir or dir == "" then dir = "/tmp" end
  local err
  for _ = 1, 8 do
    local path = pypath.join(dir, "mfg_gen-chunks-" .. core.hex_encode(assert(crypto.random_bytes(6))))
    local ok
    ok, err = nvsgen.write_file(path, "", nvsgen.SECRET_MODE, false)
    if ok then return path end
  end
  return nil, "cannot create the chunk file of the workers: " .. tostring(err)
end

--- Starts the worker processes 2..jobs of a shared batch: copies of this
-- command with --shard K/N and the chunk file they take their units from,
-- holding the folder's lock and watching this process (nvsgen.workers).
-- Returns the team, or nil and a message (those started are stopped).
local function start_workers(lock, jobs, chunk_path)
  return workers_mod.start(lock, jobs, function(w, n, prefix)
    return io.popen(("%s %s --shard %d/%d --chunks %s"):format(prefix, rerun, w, n,
      workers_mod.quote(chunk_path)), "r")
  end)
end

--- Collects what the workers say: the first stop (the one on the lowest
-- values line, `stop` being this process's own: { line, message, status,
-- signal, told }) and, per process, the line where it stopped (math.huge:
-- it made its whole share; nil: unknown, it died without saying).
local function gather_workers(team, stop, n)
  local reached = { math.huge }
  if stop then reached[1] = stop.line end
  for w, result in ipairs(team:collect()) do
    local text, closed = result.text, result.ok
    local kind, line, code, message = text:match("^(%a+) (%d+) (%d+)\n(.*)$")
    line = tonumber(line)
    if line then
      if line > 0 then reached[w + 1] = line end
      if not stop or (stop.line or math.huge) > line then
        stop = { line = line > 0 and line or nil, message = message }
        code = tonumber(code)
        -- A worker stopped by a signal of its own names it; 0: it was
        -- told to stop (this process's signal).
        if kind ~= "stopped" then stop.status = code elseif code > 0 then stop.signal = code else stop.told = true end
      end
    elseif closed then
      reached[w + 1] = math.huge
    elseif not stop then
      stop = { message = ("worker %d of %d failed (its message is above)"):format(w + 1, n) }
    end
  end
  return stop, reached
end

--- Makes this process's share of a batch shared by `n` processes (k: its
-- number), taking chunks of units from the chunk file as it goes
-- (nvsgen.chunks); a worker stops between units when the watch pipe of
-- its main process (`watch`) says so. Returns nil, or its stop { line,
-- message, status, signal, told }.
local function make_share(job, folders, k, chunk_path, watch)
  local file, err = chunks.open(chunk_path)
  if not file then return { message = err } end
  local take = chunks.taker(file, chunk_path, k)
  local function mine(number)
    local taken, terr = take(number)
    if taken == nil then return nil, terr end
    return taken
  end
  local stop
  local units, uerr, uline = mfg.each_unit(job, function(number, id, fields, line, plain)
    -- each_unit passes every row here with --fileid (the id is in the
    -- row): the others' rows are skipped here.
    local own, oerr = mine(number)
    if own == nil then return nil, oerr end
    if not own then return true end
    local sig = core.stop_signal()
    if sig or watch and workers_mod.gone(watch) then
      stop = { line = line, signal = sig, told = not sig }
      return false
    end
    local text, berr, bline = mfg.build_unit(job, fields, line, plain)
    if not text then return nil, berr, bline end
    local ok, werr, wline = mfg.write_unit(job, folders, number, id, text, line)
    if not ok then return nil, werr, wline end
    return true
  end, mine, mfg.maker_pass(job, "write", { folders = folders, wanted = function(number)
    -- The C maker sees this process's signals only: a worker looks at the
    -- watch pipe before each chunk, and leaves the row to the Lua code
    -- above (which stops) once its main process has said stop.
    if watch and workers_mod.gone(watch) then return nil end
    return take(number)
  end, chunk = chunks.SIZE }))
  file:close()
  if not units then stop = { line = uline, message = uerr } end
  return stop
end

--- The main process of a shared batch: makes its share, then prints the
-- reports of the units in order up to the first unit that was not made
-- (a failure or a signal in any process), as one process would. Units
-- after that one that other processes made meanwhile are removed, so the
-- batch leaves what one process leaves: a process stops at its first
-- failure, so the units of its chunks before that line are the ones it
-- made. Returns true; or nil, a message and a status; or false and a
-- signal.
local function make_shared(job, folders, jobs, team, chunk_path)
  local stop = make_share(job, folders, 1, chunk_path)
  local reached
  stop, reached = gather_workers(team, stop, jobs)
  -- Who made which unit; where that cannot be read, no unit is removed.
  local process_of = chunks.owners(chunk_path) or function() return nil end
  os.remove(chunk_path)
  local sig = core.stop_signal() or (stop and stop.signal)
  local stop_line = stop and stop.line
  local out, count, made = {}, 0, 0
  local function report(id)
    count = count + 1
    out[count] = unit_report(job, id)
    if count == 256 then
      common.stdout:write(concat(out, "", 1, count))
      count = 0
    end
  end
  if stop_line then
    mfg.each_unit(job, function(number, id, _, line)
      if line < stop_line then
        report(id)
        made = number
      elseif line >= stop_line then
        local owner_reached = reached[process_of(number)]
        if owner_reached and line < owner_reached then mfg.remove_unit(job, id) end
      end
      return true
    end)
  elseif job.fileid then
    mfg.each_unit(job, function(_, id) report(id); return true end)
    made = job.units
  else
    for number = 1, job.units, 256 do
      -- (made in C, 256 units at a time)
      local last = math.min(number + 255, job.units)
      local text = mfg.number_reports(job, job.report, number, last)
      if text then
        common.stdout:write(concat(out, "", 1, count), text)
        count = 0
      else
        for n = number, last do report(mfg.file_id(job, n, tostring(n))) end
      end
    end
    made = job.units
  end
  common.stdout:write(concat(out, "", 1, count))
  if stop and (stop.signal or stop.told) or (sig and made < job.units) then
    common.stdout:flush()
    fail(interrupted_line(made, job.units))
    return false, sig or stop.signal or 15
  end
  if stop then return nil, stop.message, stop.status end
  return true
end

--- A worker (--shard K/N --chunks FILE): the main process checked every
-- unit; this one makes the units of the chunks it takes, silently, and
-- reports how it stopped on its standard output.
local function work(job, shard, chunk_path)
  -- The folder's lock, inherited; the watch pipe: a worker must not
  -- outlive the batch's main process.
  local lock, watch = lock_outdir(job.outdir, true)
  local folders, err
  if lock then
    folders, err = open_folders(job, 1)
  else
    err = watch
  end
  if not folders then
    report_to_main("failed", 0, 1, err)
    return common.EXIT_FAIL
  end
  local stop = make_share(job, folders, shard[1], chunk_path, watch)
  for _, folder in pairs(folders) do folder:close() end
  -- The main process removes the chunk file once its workers are done;
  -- killed, it cannot: its workers, told to stop by its end, do.
  if stop and stop.told and workers_mod.main_gone() then os.remove(chunk_path) end
  lock:release()
  if stop then
    if stop.told then
      report_to_main("stopped", stop.line, 0)
    elseif stop.signal then
      report_to_main("stopped", stop.line, stop.signal)
    else
      report_to_main("failed", stop.line, stop.status or 1, stop.message)
    end
  end
  return common.EXIT_OK
end

-- ---- commands ----------------------------------------------------------------

local function parse(spec, argv)
  local opts, err = args.parse(spec, argv)
  if not opts then
    common.stderr:write(args.usage(spec), "\n")
    return nil, fail(err, common.EXIT_USAGE)
  end
  if opts.help then
    common.stdout:write(args.help(spec))
    return nil, common.EXIT_OK
  end
  opts.outdir = opts.outdir or lfs.currentdir()
  return opts
end

--- The --jobs and --shard options: shard ({ K, N } or nil) and jobs, or
-- nil and a message.
local function shard_options(opts)
  local shard, err
  if opts.shard then
    shard, err = workers_mod.parse_shard(opts.shard)
    if not shard then return nil, err end
    if not opts.chunks then return nil, "--shard needs --chunks FILE" end
  end
  local jobs
  jobs, err = workers_mod.parse_jobs(opts.jobs, 4)
  if not jobs then return nil, err end
  return shard or false, jobs
end

--- Checks and sets up a `generate` command line. Returns the job, shard
-- and jobs, or nil, a message and a status.
local function prepare(opts)
  local conf, values = opts.conf, opts.values
  for _, check in ipairs({ { conf, "config" }, { values, "values" } }) do
    if select(2, pypath.split_ext(check[1])) ~= ".csv" then
      return nil, ("%s: the %s file must have the .csv extension"):format(check[1], check[2])
    end
  end
  local numbering, err, status = mfg.prefix_numbering(opts.prefix_num)
  if numbering == nil then return nil, err, status end
  local size
  size, err = common.partition_size(opts.size)
  if not size then return nil, err end
  local header, first, first_plain = mfg.read_head(values)
  if not header then return nil, first end
  local fileid = opts.fileid
  if fileid == "" then fileid = nil end
  local found = false
  for _, col in ipairs(header) do found = found or col == fileid end
  if fileid and not found then
    return nil, ("--fileid %s: no such column in the header of %s"):format(fileid, values), common.EXIT_USAGE
  end
  local config
  config, err = mfg.read_config(conf, values, header)
  if not config then return nil, err end
  local shard, jobs = shard_options(opts)
  if not shard then
    if shard == nil then return nil, jobs, common.EXIT_USAGE end
    shard = nil
  end
  local job
  job, err, status = mfg.job{
    conf = conf, values = values, header = header, first = first, first_plain = first_plain,
    config = config, size = size, version = tonumber(opts.version), prefix = opts.prefix,
    outdir = opts.outdir, fileid = fileid, numbering = numbering or nil,
    keygen = opts.keygen, inputkey = opts.inputkey, key_protect_hmac = opts.key_protect_hmac,
    kp_hmac_keygen = opts.kp_hmac_keygen, kp_hmac_keyfile = opts.kp_hmac_keyfile,
    kp_hmac_inputkey = opts.kp_hmac_inputkey,
  }
  if not job then return nil, err, status end
  job.banner = VERSION_BANNER[opts.version]
  job.report = report_pieces(job)
  return job, shard, jobs
end

local function generate(argv)
  local opts, status = parse(M.GENERATE, argv)
  if not opts then return status end
  local job, shard, jobs = prepare(opts)
  if not job then return fail(shard, jobs) end
  if shard then
    is_worker = true
    return work(job, shard, opts.chunks)
  end

  -- Every unit is checked (built, not written) before anything is written.
  local units, err = mfg.check_units(job, function() return not core.stop_signal() end)
  if units == false then
    fail(interrupted_line(0, 0))
    return die_of(core.stop_signal())
  end
  if not units then return fail(err) end
  -- Workers: not for a small batch, nor when the batch's HMAC key is made
  -- here (it would differ).
  if units < SHARED_FROM or not rerun or job.batch_hmac then jobs = 1 end

  local lock
  lock, err = lock_outdir(opts.outdir)
  if not lock then return fail(err) end
  if job.encrypted then common.stdout:write("\nGenerating encrypted NVS binary images...\n") end
  local folders
  folders, err = open_folders(job, units)
  if not folders then return fail(err) end
  if job.batch_hmac then
    local ok
    ok, err = nvsgen.write_file(job.batch_hmac[2], job.batch_hmac[1], nvsgen.SECRET_MODE, false)
    if not ok then return fail(err) end
  end

  local done, sig
  if jobs > 1 then
    local chunk_path
    chunk_path, err = new_chunk_file()
    if not chunk_path then return fail(err) end
    local team
    team, err = start_workers(lock, jobs, chunk_path)
    if not team then
      os.remove(chunk_path)
      return fail(err)
    end
    done, sig, status = make_shared(job, folders, jobs, team, chunk_path)
  else
    done, sig = make_alone(job, folders)
  end
  for _, folder in pairs(folders) do folder:close() end
  lock:release()
  if done == false then return die_of(sig) end
  if not done then return fail(sig, status) end
  common.stdout:write("\nFiles generated in ", opts.outdir, " ...\n")
  return common.EXIT_OK
end

local function generate_key(argv)
  local opts, status = parse(M.GENERATE_KEY, argv)
  if not opts then return status end
  local plan, err
  plan, err, status = keyplan.plan(opts, pypath.join(opts.outdir, "keys"), pypath.join)
  if not plan then return fail(err, status) end
  local written
  written, err = keyplan.write(plan)
  if not written then return fail(err) end
  common.stdout:write("\nCreated encryption keys: ===>  ", plan.keys_path, "\n")
  return common.EXIT_OK
end

local COMMANDS = { generate = generate, ["generate-key"] = generate_key }

local USAGE = ("usage: %s {generate,generate-key} ..."):format(PROG)

--- Entry point: runs the subcommand named by argv[1]; returns the exit status.
function M.main(argv)
  rerun = workers_mod.rerun_command(argv)
  -- Run as a script, a signal is recorded from the start (no traceback
  -- from the interpreter's own SIGINT handler); generate stops on it
  -- between units, anything else once it is done.
  if rerun then core.signals_catch() end
  local status = common.dispatch(PROG, USAGE, "ESP-IDF mass manufacturing: an NVS image per unit from a config\n"
    .. "and a values CSV file (nvsgen, compatible with mfg_gen.py).\n", COMMANDS, argv)
  local sig = rerun and not is_worker and core.stop_signal()
  if sig then return die_of(sig) end
  return status
end

return M
