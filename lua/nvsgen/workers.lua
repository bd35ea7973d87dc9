--- nvsgen.workers: a batch's processes: --jobs/--shard, the folder lock, starting, stopping, watching workers.
--
-- Both batch commands share their units with copies of themselves started
-- with the same command line plus --shard K/N (this module says how many,
-- and starts them). Stop signals are recorded by one handler (core) that
-- tells the workers in both ways a batch may watch them: a recipe batch's
-- workers watch a pipe (below); mfg_gen's are registered by process id
-- (M.spawn, core.signal_forward) and die with their parent
-- (core.signal_with_parent).
--
-- A recipe batch's lock is a flock(2) lock on .nvsgen.lock in the output folder, taken
-- by the batch's main process before it reads the manifest. Workers
-- inherit the locked descriptor (the same open file), so the lock lasts
-- until the last process of the batch is gone: a second batch on the
-- folder waits for it, or refuses, whatever mode either runs in. Nothing
-- else of the batch opens the lock file, so no close can drop the lock.
--
-- Workers also inherit the reading end of a pipe whose writing end only
-- the main process holds. End of file on it means the main process is
-- gone (killed) or wants the workers to stop (a signal, a failure): they
-- stop at their next chunk of units, whoever their parent is (a shell).

local core = require("nvsgen.core")

local format = string.format

local M = {}

--- The most processes a batch is shared by.
M.MAX_JOBS = 64

M.LOCK = ".nvsgen.lock"
-- Where a worker finds the descriptors it inherits: "LOCK,WATCH".
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

-- ---- a worker known by its process id (mfg_gen) ---------------------------------------

--- Starts `command` with the words `extra` added, as a worker: a process
-- whose standard output the caller reads. The shell says the worker's
-- process id first and then becomes the worker (exec), so the id is the
-- worker's own. Returns the file (io.popen's) and the id, or nil and a
-- message.
function M.spawn(command, extra)
  local f, err = io.popen("echo $$; exec " .. command .. " " .. extra, "r")
  if not f then return nil, err end
  local pid = math.tointeger(tonumber(f:read("l") or ""))
  if not pid then
    f:close()
    return nil, "the worker did not start"
  end
  return f, pid
end

--- Starts workers 2 to `count`, each `command` with the words `extra(k)`
-- added, known by process id: each is passed on the stop signals this
-- process records (core.signal_forward). Returns the list of workers
-- ({ file, pid }), or nil and a message (those started are stopped).
function M.start_known(command, count, extra)
  local list = {}
  for k = 2, count do
    local f, pid = M.spawn(command, extra(k))
    if not f then
      for _, started in ipairs(list) do
        os.execute("kill -TERM " .. started.pid .. " 2>/dev/null")
        started.file:close()
        core.signal_unforward(started.pid)
      end
      return nil, "cannot start a worker: " .. tostring(pid)
    end
    core.signal_forward(pid)
    list[#list + 1] = { file = f, pid = pid }
  end
  return list
end

--- Waits for worker `w` (of M.start_known) to end. Returns what it
-- printed and io.popen's close results.
function M.finish_known(w)
  local text = w.file:read("a") or ""
  local ok, how, status = w.file:close()
  core.signal_unforward(w.pid)
  return text, ok, how, status
end

-- ---- a recipe batch's workers: the lock they share, the watch pipe -----------------------

-- Wall-clock seconds and sleeping (lua-system, a declared dependency).
do
  local has_system, system = pcall(require, "system")
  M.clock = has_system and system.monotime or os.clock
  M.sleep = has_system and system.sleep or function() end
end

--- Takes the lock of output folder `folder` (core.folder; `prefix` names
-- it in messages), waiting up to `wait` seconds for another batch to end
-- (a worker left by a killed batch stops within a chunk of units);
-- `stopped()` ends the wait early. Returns the lock, or nil and a message.
function M.lock(folder, prefix, outdir, wait, stopped)
  local deadline = M.clock() + wait
  while true do
    local lock, err, code = core.lock_take(folder, M.LOCK)
    if lock then return lock end
    if code ~= M.EAGAIN then return nil, err end
    if stopped() or M.clock() > deadline then
      return nil, format("%s is in use by another batch (%s%s is locked); run again once it has finished",
        outdir, prefix, M.LOCK)
    end
    M.sleep(0.02)
  end
end

--- For a worker: the lock and watch descriptor it inherited (from M.ENV),
-- checked; or, for a process started by hand with --shard, the lock taken
-- as the main process takes it. Returns lock, watch fd (or nil), or nil
-- and a message.
function M.join(folder, prefix, outdir, wait, stopped)
  local fds = os.getenv(M.ENV)
  local lock_fd, watch_fd = (fds or ""):match("^(%d+),(%d+)$")
  if not lock_fd then return M.lock(folder, prefix, outdir, wait, stopped) end
  local lock, err = core.lock_adopt(tonumber(lock_fd), folder, M.LOCK)
  if not lock then return nil, format("not a worker of a batch on %s (%s)", outdir, err) end
  return lock, tonumber(watch_fd)
end

--- True when the batch's main process is gone or asks its workers to stop.
M.gone = core.watch_gone

--- The shell words that start a worker: the inherited descriptors named
-- in the environment, and `exec`, so the worker is the process its
-- parent started (a signal to it reaches it).
function M.command_prefix(lock_fd, watch_fd)
  return format("%s=%d,%d exec", M.ENV, lock_fd, watch_fd)
end

local Team = {}
Team.__index = Team

--- Starts workers 2 to `count` with `spawn(k, count, prefix)` (a function
-- returning a file from io.popen reading the worker's standard output),
-- handing them the lock and the watch pipe. Returns the team, or nil and
-- a message (the workers started so far are stopped).
function M.start(lock, count, spawn)
  local watch, err = core.watch_open()
  if not watch then return nil, err end
  local team = setmetatable({ list = {}, count = count }, Team)
  local fd = lock:fd()
  core.fd_inherit(fd, true)
  core.fd_inherit(watch, true)
  local prefix = M.command_prefix(fd, watch)
  for k = 2, count do
    local w, werr = spawn(k, count, prefix)
    if not w then
      err = "cannot start a worker: " .. tostring(werr)
      break
    end
    team.list[#team.list + 1] = w
  end
  core.fd_inherit(fd, false)
  core.fd_close(watch)
  if err then
    team:stop()
    team:wait()
    return nil, err
  end
  return team
end

--- Tells the workers to stop at their next chunk.
function Team:stop()
  self.stopping = true
  core.watch_close()
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
  for k, w in ipairs(self.list) do
    local text = w:read("a") or ""
    local ok, how, status = w:close()
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
  self.list = {}
  return written, skipped, finished, failure, signal
end

--- What a worker reports when it stopped because it was told to.
M.STOPPED = "stopped"

return M
