--- nvsgen.lua54: runs a recipe script under Lua 5.4 when another Lua started it.
--
-- On Debian, installing busted makes `lua` Lua 5.1, so `lua gen.lua ...`
-- starts the wrong interpreter. A recipe's first require is nvsgen.recipe,
-- which requires this module before anything else: under 5.4 it does
-- nothing; under 5.1 to 5.3 it runs the same script with the same arguments
-- under `lua5.4` and exits with its status. So this file, and nvsgen/recipe.lua
-- which loads it, must stay readable by every Lua from 5.1 on (no integer
-- division, bit operators, goto or attributes).

local M = {}

if _VERSION == "Lua 5.4" then
  -- make install puts this file on the paths of Lua 5.1 to 5.3 as
  -- nvsgen/recipe.lua. Lua 5.4 finds it there only through a LUA_PATH made
  -- for another Lua (its own is LUA_PATH_5_4): say so, not fail later with
  -- "attempt to call a nil value (field 'run')".
  if ... == "nvsgen.recipe" then
    io.stderr:write(string.match(arg and arg[0] or "nvsgen", "([^/]*)$"), ": ", select(2, ...),
      " is the Lua 5.1-5.3 starter of nvsgen.recipe, found by Lua 5.4 through LUA_PATH;",
      " point LUA_PATH_5_4 (or LUA_PATH) at nvsgen's Lua 5.4 modules\n")
    os.exit(1)
  end
  return M
end

-- One word for /bin/sh, whatever it holds.
local function quote(text)
  return "'" .. string.gsub(tostring(text), "'", "'\\''") .. "'"
end

local script = arg and arg[0]

local function fail(message)
  io.stderr:write(string.match(script or "nvsgen", "([^/]*)$"), ": ", message, "\n")
  os.exit(1)
end

-- The exit status of a finished os.execute, in every version's form: 5.1
-- returns the raw wait status, 5.2 and 5.3 true/nil, "exit"/"signal", code.
local function exit_status(a, how, code)
  if type(a) == "number" then
    local signal = a % 128
    if signal ~= 0 then return 128 + signal end
    return math.floor(a / 256)
  end
  if how == "signal" then return 128 + code end
  return code or (a and 0 or 1)
end

if not script then fail("nvsgen needs Lua 5.4; this is " .. _VERSION) end
-- A lua5.4 that is not 5.4 would start this again, for ever.
if os.getenv("NVSGEN_LUA54_STARTED") then
  fail("lua5.4 on the PATH is not Lua 5.4; nvsgen needs Lua 5.4")
end
if exit_status(os.execute("command -v lua5.4 >/dev/null 2>&1")) ~= 0 then
  fail("this is " .. _VERSION .. " and nvsgen needs Lua 5.4: apt-get install lua5.4")
end

-- os.execute waits for the shell it starts, and that shell becomes lua5.4
-- (exec), with this process's stdin, stdout and stderr. Ctrl-C at a terminal
-- reaches both processes; but a signal sent to this process alone (kill,
-- a supervisor stopping it) would end it and leave lua5.4 running on its
-- own. So a small watcher, started before the exec, sends lua5.4 SIGTERM
-- as soon as this process is gone while lua5.4 still runs.
local WATCH = "parent=$PPID; me=$$; ("
  .. "while kill -0 \"$me\" 2>/dev/null && kill -0 \"$parent\" 2>/dev/null; do sleep 1; done; "
  .. "kill -0 \"$parent\" 2>/dev/null || kill -TERM \"$me\" 2>/dev/null"
  .. ") </dev/null >/dev/null 2>&1 &"
local words = { WATCH, "NVSGEN_LUA54_STARTED=1", "exec", "lua5.4", quote(script) }
for i = 1, #arg do words[#words + 1] = quote(arg[i]) end
io.stdout:flush()
os.exit(exit_status(os.execute(table.concat(words, " "))))
