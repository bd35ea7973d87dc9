--- nvsgen.jobs: how many processes share a batch (--jobs, --shard) and
-- starting the worker processes, each known by its process id so that a
-- stopping batch can stop them too.

local M = {}

--- The most processes a batch is shared by.
M.MAX_JOBS = 64

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

--- The text of --shard (K/N: this process is worker K of N) as { K, N }.
-- Returns it, or nil and a message.
function M.parse_shard(text)
  local k, n = text:match("^(%d+)/(%d+)$")
  k, n = tonumber(k), tonumber(n)
  if not k or k < 1 or k > n or n > M.MAX_JOBS then
    return nil, ("--shard %s: expected K/N, K from 1 to N, N at most %d"):format(text, M.MAX_JOBS)
  end
  return { k, n }
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

return M
