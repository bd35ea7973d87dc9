--- The two batch commands (a recipe batch, mfg_gen) share one way of
-- locking an output folder and one way of stopping their workers
-- (nvsgen.workers): a recipe batch and an mfg_gen run on one folder wait
-- for or refuse each other, workers included, and the workers of either
-- hold the folder's lock and watch their main process's pipe.
local h = require("spec.support.helper")
local lfs = require("lfs")
local batch = require("nvsgen.batch")
local recipe = require("nvsgen.recipe")

local GEN = h.ROOT .. "/gen.lua"
local CONFIG = "ns,namespace,\nSerial,data,u32\nRev,data,u8\nName,data,string\n"

local dir
-- The processes a case started (main processes and workers, by id).
local started
before_each(function()
  dir = h.tmpdir()
  started = {}
end)
after_each(function()
  -- Nothing of a failed case is left running (a process that has ended
  -- and whose id went to another program is not touched).
  for _, pid in ipairs(started) do
    if (h.read("/proc/" .. pid .. "/cmdline") or ""):find(dir, 1, true) then
      os.execute(("kill -KILL %d 2>/dev/null"):format(pid))
    end
  end
  h.cleanup(dir)
end)

local sh, now, wait_for, count = h.sh, h.now, h.wait_for, h.count


local function records()
  local f = io.open(dir .. "/o/manifest.csv")
  if not f then return 0 end
  local n = select(2, f:read("a"):gsub("\n", ""))
  f:close()
  return n
end

--- Runs `command` (words for sh, in dir) in the background as process
-- `name`: its id goes to dir/NAME.pid, its exit status to dir/NAME.rc,
-- what it prints to dir/NAME.out and dir/NAME.err. Returns the id (the
-- interpreter's own: sh execs it).
local function start(name, command)
  local base = dir .. "/" .. name
  sh(("(sh -c 'cd %s && exec %s' >%s.out 2>%s.err & echo $! >%s.pid; wait $!; echo $? >%s.rc)"
    .. " >/dev/null 2>&1 &"):format(dir, command, base, base, base, base))
  assert(wait_for(function() return (h.read(base .. ".pid") or ""):find("\n") end, 5))
  local pid = math.tointeger(tonumber(h.read(base .. ".pid")))
  started[#started + 1] = pid
  return pid
end

local function recipe_batch(units)
  return start("recipe", ("lua5.4 %s --serial-range 1-%d --outdir %s/o --jobs 2"):format(GEN, units, dir))
end

local function mfg_gen(units)
  h.write(dir .. "/config.csv", CONFIG)
  local rows = { "id,Serial,Rev,Name\n" }
  for i = 1, units do rows[#rows + 1] = ("%d,%d,3,unit %d\n"):format(i, i, i) end
  h.write(dir .. "/values.csv", table.concat(rows))
  lfs.mkdir(dir .. "/tmp")
  return start("mfg", ("env TMPDIR=%s/tmp lua5.4 %s/bin/mfg_gen.lua generate config.csv values.csv u 0x3000"
    .. " --outdir %s/o --jobs 2"):format(dir, h.ROOT, dir))
end

--- The batch processes (interpreters, not shells) writing dir/o. pgrep
-- runs without the sanitizer `make asan` preloads (it hangs with it).
local function processes()
  return tonumber(sh(("env -u LD_PRELOAD pgrep -f -c -- '^lua5.4 .*%s/o' 2>/dev/null || true"):format(dir))) or 0
end

--- The worker process of main process `pid` (its child, once it runs the
-- command with --shard).
local function worker_of(pid)
  local found
  assert(wait_for(function()
    for child in sh(("env -u LD_PRELOAD pgrep -P %d 2>/dev/null || true"):format(pid)):gmatch("%d+") do
      local cmdline = h.read("/proc/" .. child .. "/cmdline") or ""
      -- The worker once the shell that starts it has made way for it
      -- (exec): before, the shell's command line names --shard too.
      local program = cmdline:match("^[^%z]*"):match("[^/]*$")
      if cmdline:find("--shard", 1, true) and program ~= "sh" then found = math.tointeger(tonumber(child)) end
    end
    return found ~= nil
  end, 30))
  started[#started + 1] = found
  return found
end

local function ended(name)
  return wait_for(function() return (h.read(dir .. "/" .. name .. ".rc") or ""):find("\n") ~= nil end, 60)
end

--- The numbers of the units whose image is in o/bin, sorted.
local function images()
  return h.numbers_in(dir .. "/o/bin", "^u%-(%d+)%.bin$")
end

local MFG_REFUSED = "mfg_gen: o: a recipe batch is writing this folder (wait for it to end, or use another --outdir)\n"

local function run_mfg_gen_here(units)
  h.write(dir .. "/config.csv", CONFIG)
  local rows = { "id,Serial,Rev,Name\n" }
  for i = 1, units do rows[#rows + 1] = ("%d,%d,3,unit %d\n"):format(i, i, i) end
  h.write(dir .. "/values.csv", table.concat(rows))
  return h.run("nvsgen.cli.mfg_gen", { "generate", "config.csv", "values.csv", "u", "0x3000", "--outdir", "o" }, dir)
end

describe("a recipe batch and mfg_gen on one output folder", function()
  it("#slow mfg_gen refuses at once while a recipe batch holds the folder, then while only its worker does",
    function()
    local main = recipe_batch(20000)
    assert.is_true(wait_for(function() return records() > 100 end, 30))
    local st, out, err = run_mfg_gen_here(3)
    assert.are.equal(1, st)
    assert.are.equal("", out)
    assert.are.equal(MFG_REFUSED, err)
    -- Its worker goes on holding the lock once the main process is killed.
    local worker = worker_of(main)
    assert(os.execute("kill -STOP " .. worker))
    assert(os.execute("kill -KILL " .. main))
    assert.is_true(ended("recipe"))
    st, out, err = run_mfg_gen_here(3)
    assert.are.equal(1, st)
    assert.are.equal("", out)
    assert.are.equal(MFG_REFUSED, err)
    assert.is_nil(lfs.attributes(dir .. "/o/bin"))
    assert.is_nil(lfs.attributes(dir .. "/o/csv"))
    -- Let go, it sees its main process gone and stops by itself.
    assert(os.execute("kill -CONT " .. worker))
    assert.is_true(wait_for(function() return processes() == 0 end, 10))
    st, out, err = run_mfg_gen_here(3)
    assert.are.equal(0, st, err)
    assert.matches("Files generated in o", out, 1, true)
    assert.are.same({ "u-1.bin", "u-2.bin", "u-3.bin" }, h.listing(dir .. "/o/bin"))
  end)

  it("#slow a recipe batch waits for an mfg_gen run to end, or refuses, as for another recipe batch", function()
    mfg_gen(3000)
    assert.is_true(wait_for(function() return count(dir .. "/o/bin") >= 50 end, 30))
    local r = recipe.load(GEN)
    local ok, err = batch.run{ recipe = r, serials = batch.serials("1-3"), outdir = dir .. "/o", lock_wait = 0 }
    assert.is_nil(ok)
    assert.are.equal(("%s/o is in use by an mfg_gen run (the folder is locked); run again once it has finished")
      :format(dir), err)
    -- Nothing of the recipe batch was added to the folder.
    assert.are.same({ "bin", "csv" }, (function()
      local names = {}
      for name in lfs.dir(dir .. "/o") do
        if name ~= "." and name ~= ".." then names[#names + 1] = name end
      end
      table.sort(names)
      return names
    end)())
    -- Waiting, it runs once the mfg_gen run has ended, not before.
    ok, err = batch.run{ recipe = r, serials = batch.serials("1-3"), outdir = dir .. "/o", lock_wait = 120 }
    assert.is_truthy(ok, err)
    assert.are.equal("0\n", h.read(dir .. "/mfg.rc"))
    assert.are.equal(3000, #images())
    assert.are.equal(3, records() - 1)
  end)

  it("#slow a recipe batch is refused while only the worker of a killed mfg_gen run holds the folder", function()
    local main = mfg_gen(5000)
    assert.is_true(wait_for(function() return count(dir .. "/o/bin") >= 300 end, 30))
    local worker = worker_of(main)
    assert(os.execute("kill -STOP " .. worker))
    assert(os.execute("kill -KILL " .. main))
    assert.is_true(ended("mfg"))
    local r = recipe.load(GEN)
    local ok, err = batch.run{ recipe = r, serials = batch.serials("1-3"), outdir = dir .. "/o", lock_wait = 0 }
    assert.is_nil(ok)
    assert.are.equal(("%s/o is in use by an mfg_gen run (the folder is locked); run again once it has finished")
      :format(dir), err)
    assert(os.execute("kill -CONT " .. worker))
    assert.is_true(wait_for(function() return processes() == 0 end, 10))
    ok, err = batch.run{ recipe = r, serials = batch.serials("1-3"), outdir = dir .. "/o", lock_wait = 0 }
    assert.is_truthy(ok, err)
  end)
end)

describe("the workers of both batch commands", function()
  -- The descriptors a worker inherited, as NVSGEN_BATCH_FDS names them:
  -- what each is open on.
  local function inherited(worker)
    local environ = h.read("/proc/" .. worker .. "/environ") or ""
    local fds = environ:match("%zNVSGEN_BATCH_FDS=([%d,]+)%z") or environ:match("^NVSGEN_BATCH_FDS=([%d,]+)%z")
    assert.is_truthy(fds, "no NVSGEN_BATCH_FDS in the worker's environment")
    local targets = {}
    for fd in fds:gmatch("%d+") do
      targets[#targets + 1] = sh(("readlink /proc/%d/fd/%s"):format(worker, fd)):gsub("\n$", "")
    end
    return targets
  end

  it("#slow hold the folder's lock and watch the main process's pipe, in the same descriptors", function()
    local real = sh("readlink -f " .. dir):gsub("\n$", "")
    local main = recipe_batch(20000)
    local targets = inherited(worker_of(main))
    assert.are.equal(3, #targets)
    assert.are.equal(real .. "/o", targets[1])
    assert.matches("^pipe:%[%d+%]$", targets[2])
    assert.are.equal(real .. "/o/.nvsgen.lock", targets[3])
    assert(os.execute("kill -TERM " .. main))
    assert.is_true(ended("recipe"))
    assert.are.equal("143\n", h.read(dir .. "/recipe.rc"))
    assert.is_true(wait_for(function() return processes() == 0 end, 5))
    h.cleanup(dir .. "/o")

    main = mfg_gen(5000)
    targets = inherited(worker_of(main))
    assert.are.equal(2, #targets)
    assert.are.equal(real .. "/o", targets[1])
    assert.matches("^pipe:%[%d+%]$", targets[2])
    assert(os.execute("kill -TERM " .. main))
    assert.is_true(ended("mfg"))
    assert.are.equal("143\n", h.read(dir .. "/mfg.rc"))
    assert.is_true(wait_for(function() return processes() == 0 end, 5))
  end)

  it("#slow of a SIGKILLed mfg_gen main process stop by themselves: units whole, no chunk file left", function()
    local main = mfg_gen(5000)
    assert.is_true(wait_for(function() return count(dir .. "/o/bin") >= 300 end, 30))
    assert.are.equal(1, count(dir .. "/tmp")) -- the chunk file
    local t0 = now()
    assert(os.execute("kill -KILL " .. main))
    assert.is_true(wait_for(function() return processes() == 0 end, 5))
    assert.is_true(now() - t0 < 5)
    assert.is_true(ended("mfg"))
    assert.are.equal("137\n", h.read(dir .. "/mfg.rc"))
    local numbers = images()
    assert.is_true(#numbers > 0 and #numbers < 5000)
    for _, n in ipairs(numbers) do
      assert.are.equal(12288, lfs.attributes(("%s/o/bin/u-%d.bin"):format(dir, n), "size"))
      assert.is_truthy(lfs.attributes(("%s/o/csv/u-%d.csv"):format(dir, n)))
    end
    -- Only a unit the main process was writing when killed can lack its
    -- image; nothing else is in the folders.
    assert.is_true(count(dir .. "/o/csv") - #numbers <= 1)
    assert.are.equal(#numbers, count(dir .. "/o/bin"))
    assert.are.equal(0, count(dir .. "/tmp"))
  end)

  it("#slow of mfg_gen: SIGTERM to a worker alone interrupts the batch, units whole with no hole", function()
    local main = mfg_gen(5000)
    assert.is_true(wait_for(function() return count(dir .. "/o/bin") >= 300 end, 30))
    assert(os.execute("kill -TERM " .. worker_of(main)))
    assert.is_true(ended("mfg"))
    assert.are.equal("143\n", h.read(dir .. "/mfg.rc"))
    local numbers = images()
    local n = #numbers
    assert.is_true(n > 0 and n < 5000)
    for i = 1, n do assert.are.equal(i, numbers[i]) end
    assert.are.equal(n, count(dir .. "/o/csv"))
    assert.are.equal(("mfg_gen: interrupted: %d of 5000 units made (units 1 to %d, each whole; none after them)\n")
      :format(n, n), h.read(dir .. "/mfg.err"))
    assert.are.equal(0, processes())
    assert.are.equal(0, count(dir .. "/tmp"))
  end)
end)
