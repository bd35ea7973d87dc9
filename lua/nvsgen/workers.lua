--- nvsgen.workers: a batch's processes: --jobs/--shard, the folder lock, starting, stopping, watching workers.
--
-- Both batch commands (a recipe batch, mfg_gen) share their units with
-- copies of themselves started with the same command line plus --shard
-- K/N (this module says how many, and starts them), and both start,
-- stop and lock them in the one way below.
--
-- The lock: a flock(2) lock on the output folder itself, taken by the
-- batch's main process before it writes there (no file is added: an
-- mfg_gen folder must hold what mfg_gen.py writes). A recipe batch also
-- locks .nvsgen.lock in the folder (its chunk file, which recipe batches
-- have always locked), after the folder. Workers inherit the locked
-- descriptors (the same open files), so the lock lasts until the last
-- process of the batch is gone: a second batch on the folder, of either
-- command, waits for it or refuses, whatever mode either runs in. Nothing
-- else of a batch opens the folder's lock, so no close can drop it.
--
-- Stopping: workers inherit the reading end of a pipe whose writing end
-- only the main process holds. End of file on it means the main process
-- is gone (killed, even by SIGKILL) or wants the workers to stop (a stop
-- signal, which its handler in core turns into closing the pipe, or a
-- failure): they stop at their next unit or chunk of units, whoever their
-- parent is (a shell). A worker sent a signal of its own stops too and
-- says so in its report; its main process then ends the batch as
-- interrupted by that signal.

local core = require("nvsgen.core")

local format = string.format

local M = {}

--- The most processes a batch is shared by.
M.MAX_JOBS = 64

M.LOCK = ".nvsgen.lock"
-- Where a worker finds the descriptors it inherits (M.command_prefix).
M.ENV = "NVSGEN_BATCH_FDS"
M.EAGAIN = 11

-- ---- how many processes ---------------------------------------------------------

-- Quotes a word for sh.
local function quote(word)
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

--- `word` quoted for the shell.
M.quote = quote

--- The command line that runs this script again (interpreter, its options,
-- script, arguments), or nil when it is not run as a script (in-process, as
-- the specs do).
function M.rerun_command(argv)
  if type(argv[0]) ~= "string" or type(argv[-1]) ~= "string" then return nil end
  local words, i = {}, -1
  while argv[i - 1] ~= nil do i = i - 1 end
  for k = i, #argv do words[#words + 1] = quote(argv[k]) end
  return table.concat(words, " ")
end

--- CPUs online, from the kernel's list ("0-3,6").
function M.cpu_count()
  local f = io.open("/sys/devices/system/cpu/online", "r")
  if not f then return 1 end
  local text = f:read("a") or ""
  f:close()
  local n = 0
  for a, b in text:gmatch("(%d+)%-?(%d*)") do
    n = n + (b ~= "" and tonumber(b) - tonumber(a) + 1 or 1)
  end
  return math.max(n, 1)
end

--- The text of --shard (K/N: this process is worker K of N; a recipe
-- worker's K/N/new, with `with_new`: its share starts a new manifest) as
-- { K, N, new }. Returns it, or nil and a message (each command's own).
function M.parse_shard(text, with_new)
  local k, n, new = text:match("^(%d+)/(%d+)(.*)$")
  k, n = tonumber(k), tonumber(n)
  if with_new then
    if not k or k < 1 or k > n or n > M.MAX_JOBS or (new ~= "" and new ~= "/new") then
      return nil, "--shard: expected K/N or K/N/new"
    end
  elseif not k or k < 1 or k > n or n > M.MAX_JOBS or new ~= "" then
    return nil, ("--shard %s: expected K/N, K from 1 to N, N at most %d"):format(text, M.MAX_JOBS)
  end
  return { k, n, new == "/new" }
end

--- The text of --jobs (nil: the default, one per CPU up to `default_max`)
-- as a number of processes. Returns it, or nil and a message.
function M.parse_jobs(text, default_max)
  if text == nil then return math.min(M.cpu_count(), default_max or 4) end
  local jobs = math.tointeger(tonumber(text))
  if not jobs or jobs < 1 or jobs > M.MAX_JOBS then
    return nil, ("--jobs %s: expected a number from 1 to %d"):format(text, M.MAX_JOBS)
  end
  return jobs
end

-- ---- the lock a batch's processes share, the watch pipe --------------------------------

-- Wall-clock seconds and sleeping (lua-system, a declared dependency).
do
  local has_system, system = pcall(require, "system")
  M.clock = has_system and system.monotime or os.clock
  M.sleep = has_system and system.sleep or function() end
end

local Lock = {}
Lock.__index = Lock

--- The descriptors of the lock, the folder's first.
function Lock:fds()
  return self.folder_lock:fd(), self.file_lock and self.file_lock:fd()
end

--- Lets the lock go (the file's, then the folder's); with `folder` and
-- `name`, removes that file first, while it is still locked.
function Lock:release(folder, name)
  if self.file_lock then
    if folder then self.file_lock:release(folder, name) else self.file_lock:release() end
  end
  self.folder_lock:release()
end

-- The lock of `folder`, and of `file` in it when given; or nil, a message
-- and, when another process holds either, which one is held ("folder" or
-- "file").
local function take_once(folder, file)
  local folder_lock, err, code = core.lock_take(folder)
  if not folder_lock then return nil, err, code == M.EAGAIN and "folder" or nil end
  local lock = setmetatable({ folder_lock = folder_lock }, Lock)
  if file then
    lock.file_lock, err, code = core.lock_take(folder, file)
    if not lock.file_lock then
      folder_lock:release()
      return nil, err, code == M.EAGAIN and "file" or nil
    end
  end
  return lock
end

--- Takes the batch lock of output folder `folder` (core.folder): the
-- folder itself, and with `file` (a recipe batch's M.LOCK) that file too,
-- waiting up to `wait` seconds for another batch to end (a worker left by
-- a killed batch stops within a chunk of units); `stopped()` ends the wait
-- early. Returns the lock; or nil, a message and, when another batch holds
-- it, which: "recipe" (a recipe batch) or "mfg_gen".
function M.take(folder, file, wait, stopped)
  local deadline = M.clock() + wait
  while true do
    local lock, err, held = take_once(folder, file)
    if lock then return lock end
    if not held or stopped() or M.clock() > deadline then
      -- Both take the folder's lock first, and a recipe batch then its
      -- file's: who holds a busy folder is told by the file's lock
      -- (looked at only now: a look takes that lock for an instant).
      if held == "folder" and not core.lock_held(folder, M.LOCK) then return nil, err, "mfg_gen" end
      return nil, err, held and "recipe"
    end
    M.sleep(0.02)
  end
end

--- M.take for a recipe batch (`prefix` and `outdir` name the folder in
-- messages). Returns the lock, or nil and a message.
function M.lock(folder, prefix, outdir, wait, stopped)
  local lock, err, holder = M.take(folder, M.LOCK, wait, stopped)
  if lock or not holder then return lock, err end
  if holder == "recipe" then
    return nil, format("%s is in use by another batch (%s%s is locked); run again once it has finished",
      outdir, prefix, M.LOCK)
  end
  return nil, format("%s is in use by an mfg_gen run (the folder is locked); run again once it has finished",
    outdir)
end

-- The parent process's id, from the kernel (nil if it cannot be read).
local function parent_id()
  local f = io.open("/proc/self/stat", "r")
  local text = f and f:read("l")
  if f then f:close() end
  -- After the command's name, which may hold spaces and parentheses.
  return text and tonumber(text:match(".*%) %S+ (%d+)"))
end

--- For a worker: the lock and watch descriptor it inherited from its
-- main process (named in M.ENV), checked against `folder` (and `file`,
-- the file a recipe batch also locks). Returns lock, watch fd; or false
-- when it inherited none (a process started by hand with --shard); or nil
-- and a message.
function M.adopt(folder, file, outdir)
  local fds = os.getenv(M.ENV)
  if not fds then return false end
  local folder_fd, watch_fd, file_fd = fds:match("^(%d+),(%d+),?(%d*)$")
  local lock, err
  if folder_fd and (file_fd ~= "") == (file ~= nil) then
    lock, err = core.lock_adopt(tonumber(folder_fd), folder)
  end
  if lock then
    lock = setmetatable({ folder_lock = lock }, Lock)
    if file then
      lock.file_lock, err = core.lock_adopt(tonumber(file_fd), folder, file)
      if not lock.file_lock then lock.folder_lock:release() end
    end
  end
  if not lock or (file and not lock.file_lock) then
    return nil, format("not a worker of a batch on %s (%s)", outdir, err or M.ENV .. "=" .. fds)
  end
  -- Whose watch pipe this is: the main process is this worker's parent.
  M.main_id = parent_id()
  return lock, tonumber(watch_fd)
end

--- For a recipe batch's worker: its inherited lock and watch descriptor
-- (M.adopt) or, for a process started by hand with --shard, the lock
-- taken as the main process takes it. Returns lock, watch fd (or nil), or
-- nil and a message.
function M.join(folder, prefix, outdir, wait, stopped)
  local lock, watch = M.adopt(folder, M.LOCK, outdir)
  if lock == false then return M.lock(folder, prefix, outdir, wait, stopped) end
  return lock, watch
end

--- For a worker (after M.adopt): true when its main process has ended
-- (the watch pipe then says stop with nobody left to clean up after the
-- batch).
function M.main_gone()
  return M.main_id ~= nil and parent_id() ~= M.main_id
end

--- True when the batch's main process is gone or asks its workers to stop.
M.gone = core.watch_gone

--- The shell words that start a worker: the inherited descriptors named
-- in the environment ("FOLDER_LOCK,WATCH[,FILE_LOCK]"), and `exec`, so
-- the worker is the process its parent started (a signal to it reaches
-- it, and it is the main process's child).
function M.command_prefix(folder_fd, watch_fd, file_fd)
  return format("%s=%d,%d%s exec", M.ENV, folder_fd, watch_fd, file_fd and "," .. file_fd or "")
end

local Team = {}
Team.__index = Team

--- Starts workers 2 to `count` with `spawn(k, count, prefix)` (a function
-- returning a file from io.popen reading the worker's standard output;
-- `prefix` goes before the command), handing them the lock (of M.take)
-- and the watch pipe. Returns the team, or nil and a message (the workers
-- started so far are stopped).
function M.start(lock, count, spawn)
  local watch, err = core.watch_open()
  if not watch then return nil, err end
  local team = setmetatable({ list = {}, count = count }, Team)
  local fd, file_fd = lock:fds()
  core.fd_inherit(fd, true)
  if file_fd then core.fd_inherit(file_fd, true) end
  core.fd_inherit(watch, true)
  local prefix = M.command_prefix(fd, watch, file_fd)
  for k = 2, count do
    local w, werr = spawn(k, count, prefix)
    if not w then
      err = "cannot start a worker: " .. tostring(werr)
      break
    end
    team.list[#team.list + 1] = w
  end
  core.fd_inherit(fd, false)
  if file_fd then core.fd_inherit(file_fd, false) end
  core.fd_close(watch)
  if err then
    team:stop()
    team:wait()
    return nil, err
  end
  return team
end

--- Tells the workers to stop at their next unit or chunk.
function Team:stop()
  self.stopping = true
  core.watch_close()
end

--- Waits for the workers to end: for each (in order, worker 2 first), what
-- it printed and io.popen's close results ({ text, ok, how, status }).
-- The watch pipe is closed once all have ended.
function Team:collect()
  local results = {}
  for k, w in ipairs(self.list) do
    local text = w:read("a") or ""
    local ok, how, status = w:close()
    results[k] = { text = text, ok = ok, how = how, status = status }
  end
  self.list = {}
  core.watch_close()
  return results
end

--- The last line a worker prints: its counts, then its failure if any.
function M.report(written, skipped, finished, failure)
  return format("shard %d %d %d%s", written, skipped, finished, failure and "\t" .. failure or "")
end

--- Waits for the workers to end. Returns the units they wrote, skipped
-- and finished, the first failure they report (nil if none), and the
-- signal that stopped a worker the main process did not tell to stop (its
-- units are then left unmade: the batch is interrupted, not finished).
function Team:wait()
  local written, skipped, finished, failure, signal = 0, 0, 0, nil, nil
  for k, r in ipairs(self:collect()) do
    local text, ok, how, status = r.text, r.ok, r.how, r.status
    local ww, ws, wf, message = text:match("shard (%d+) (%d+) (%d+)\t?([^\n]*)\n?$")
    if ww then
      written, skipped, finished = written + tonumber(ww), skipped + tonumber(ws), finished + tonumber(wf)
    end
    if not ww and how == "signal" then
      failure = failure or format("worker %d of %d was killed (signal %d); run the same command to finish",
        k + 1, self.count, status)
    elseif not ww then
      failure = failure or format("worker %d of %d failed (its message is above)", k + 1, self.count)
    elseif message == M.STOPPED and not self.stopping then
      -- Stopped by a signal of its own (exit status 128 + the signal).
      failure = failure or M.STOPPED
      signal = signal or (how == "exit" and status > 128 and status - 128) or 15
    elseif message ~= "" and message ~= M.STOPPED then
      failure = failure or message
    elseif not ok and message == "" then
      failure = failure or format("worker %d of %d failed", k + 1, self.count)
    end
  end
  return written, skipped, finished, failure, signal
end

--- What a worker reports when it stopped because it was told to.
M.STOPPED = "stopped"

return M
