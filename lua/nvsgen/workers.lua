--- nvsgen.workers: the processes of a batch: the folder lock they share, starting and stopping workers.
--
-- The lock is a flock(2) lock on .nvsgen.lock in the output folder, taken
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

M.LOCK = ".nvsgen.lock"
-- Where a worker finds the descriptors it inherits: "LOCK,WATCH".
M.ENV = "NVSGEN_BATCH_FDS"
M.EAGAIN = 11

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
