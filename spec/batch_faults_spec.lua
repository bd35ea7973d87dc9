-- The recipe batch under faults: two runs at once, a full disk, planted
-- links, signals, exported values CSV must quote, reruns with other
-- parameters, recipe mistakes. Each case is one a hostile but realistic
-- user met; the slow ones run whole batches in processes of their own.
local lfs = require("lfs")
local helper = require("spec.support.helper")
local recipes = require("spec.support.recipes")
local batch = require("nvsgen.batch")
local recipe = require("nvsgen.recipe")
local crypto = require("nvsgen.crypto")
local core = require("nvsgen.core")

local GEN = helper.ROOT .. "/gen.lua"

local files = helper.files

-- Every record of the manifest in `dir`: serials once each, images that
-- exist and match their digests. Returns the records.
local function check_folder(dir)
  local rows = recipes.manifest(dir .. "/manifest.csv")
  local seen = {}
  for _, row in ipairs(rows) do
    assert.is_nil(seen[row.serial], "serial " .. row.serial .. " recorded twice")
    seen[row.serial] = true
    local image = helper.read(dir .. "/" .. row.image)
    assert.is_not_nil(image, row.image .. " is missing")
    assert.equal(row.sha256, crypto.sha256_hex(image))
    assert.equal(tonumber(row.size), #image)
  end
  for _, name in ipairs(files(dir)) do
    assert.is_nil(name:find("%.part$"), name .. " left behind")
  end
  return rows
end

-- Runs shell `command` (gen.lua from the checkout); returns status,
-- stdout, stderr.
local function sh(command, tmp)
  local out, err = tmp .. "/.stdout", tmp .. "/.stderr"
  local ok, _, status = os.execute(("cd %s || exit 9; { %s; } >%s 2>%s"):format(helper.ROOT, command, out, err))
  local o, e = helper.read(out), helper.read(err)
  os.remove(out)
  os.remove(err)
  return ok and 0 or status, o, e
end

-- A recipe script in `dir` from the lines of its `unit` body.
local function script(dir, name, fields)
  return recipes.script(dir .. "/" .. name, ("local recipe = require(\"nvsgen.recipe\")\nreturn recipe.run{ %s }\n")
    :format(fields))
end

local PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUYd,\"quoted\"\n"
  .. "5,u-5.bin,12288,abc,,x\n-----END CERTIFICATE-----\n"

describe("batch under faults", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  describe("two runs on one folder", function()
    it("refuses the second while the first holds the folder", function()
      local out = tmp .. "/o"
      assert(lfs.mkdir(out))
      local folder = assert(core.folder(out))
      local lock = assert(core.lock_take(folder, batch.LOCK))
      local r = recipe.load(GEN)
      local ok, err = batch.run{ recipe = r, serials = batch.serials("1-3"), outdir = out, lock_wait = 0 }
      assert.is_nil(ok)
      assert.equal(("%s is in use by another batch (%s/.nvsgen.lock is locked); run again once it has finished")
        :format(out, out), err)
      -- A worker started by hand (--shard) is refused the same way.
      ok, err = batch.run{ recipe = r, serials = batch.serials("1-3"), outdir = out, lock_wait = 0,
        shard = { 1, 2, false } }
      assert.is_nil(ok)
      assert.matches("is in use by another batch", err)
      assert.same({ ".nvsgen.lock" }, files(out))
      lock:release()
      folder:close()
      ok, err = batch.run{ recipe = r, serials = batch.serials("1-3"), outdir = out }
      assert.truthy(ok, err)
      assert.equal(3, #check_folder(out))
    end)

    it("keeps the lock when the batch opens and closes its other files (flock, not fcntl)", function()
      -- An fcntl lock is dropped when the process closes any descriptor of
      -- the file; the batch's chunk file is the lock file.
      local out = tmp .. "/o"
      assert(lfs.mkdir(out))
      local folder = assert(core.folder(out))
      local lock = assert(core.lock_take(folder, batch.LOCK))
      local other = assert(core.open_append(folder, batch.LOCK, "existing", 384, false))
      other:truncate(0)
      other:close()
      local again, _, code = core.lock_take(folder, batch.LOCK)
      assert.is_nil(again)
      assert.equal(11, code)
      lock:release(folder, batch.LOCK)
      assert.is_not_nil(core.lock_take(folder, batch.LOCK))
    end)

    it("#slow never makes one folder twice, whatever the options and --jobs", function()
      for _, second in ipairs({ "--jobs 1", "--jobs 2 --size 0x3000", "--jobs 2" }) do
        local out = tmp .. "/o"
        local run = "lua5.4 gen.lua --serial-range 1-3000 --outdir " .. out
        local status = sh(("(%s --jobs 2 >/dev/null 2>&1 & %s %s >%s/b 2>&1 & wait)")
          :format(run, run, second, tmp), tmp)
        assert.equal(0, status)
        local rows = check_folder(out)
        assert.equal(3000, #rows)
        local size
        for _, row in ipairs(rows) do
          size = size or row.size
          assert.equal(size, row.size)
        end
        helper.cleanup(out)
      end
    end)
  end)

  it("#slow stops on a full disk with one line, leaves nothing unrecorded, and the rerun completes", function()
    local mnt = tmp .. "/small"
    assert(lfs.mkdir(mnt))
    if not os.execute("mount -t tmpfs -o size=256k tmpfs " .. mnt .. " 2>/dev/null") then
      print("skipped: cannot mount a small tmpfs (needs root)")
      return
    end
    local ok, err = pcall(function()
      local run = "lua5.4 gen.lua --serial-range 1-100 --size 0x1000 --jobs 1 --outdir " .. mnt
      local status, out, msg = sh(run, tmp)
      assert.equal(1, status)
      assert.equal("", out)
      assert.matches("^gen%.lua: " .. mnt:gsub("%p", "%%%0") .. ": disk full: about %d+ KiB more free space is"
        .. " needed for the %d+ units left %(5 KiB each%); free it and run the same command to finish\n$", msg)
      local before = check_folder(mnt)
      assert.truthy(#before < 100)
      for _, name in ipairs(files(mnt)) do
        assert.truthy(name == "manifest.csv" or name:find("^unit%-%d+%.bin$"), name)
      end
      assert.equal(#before + 1, #files(mnt))
      assert(os.execute("mount -o remount,size=1m " .. mnt))
      status, out, msg = sh(run, tmp)
      assert.equal(0, status, msg)
      assert.matches("100 units: %d+ written, " .. #before .. " already done", out)
      assert.equal(100, #check_folder(mnt))
    end)
    os.execute("umount " .. mnt)
    assert(ok, err)
  end)

  describe("planted names", function()
    it("never writes through a link planted at a pending name", function()
      local victim = tmp .. "/victim"
      helper.write(victim, "precious")
      local out = tmp .. "/o"
      assert(lfs.mkdir(out))
      assert(lfs.link(victim, out .. "/unit-1.bin.part", true))
      assert(os.execute(("ln %s %s/unit-2.bin.part"):format(victim, out)))
      assert(os.execute(("ln -s %s/nothing %s/unit-3-keys.bin.part"):format(tmp, out)))
      local status, _, err = recipes.run(GEN, { "--serial-range", "1-3", "--outdir", out, "--encrypt", "--keygen" })
      assert.equal(0, status, err)
      assert.equal("precious", helper.read(victim))
      assert.is_false(helper.exists(tmp .. "/nothing"))
      assert.equal(3, #check_folder(out))
      assert.equal("rw-------", lfs.attributes(out .. "/unit-3-keys.bin", "permissions"))
      assert.equal("file", lfs.symlinkattributes(out .. "/unit-1.bin", "mode"))
    end)

    it("refuses a name it did not make, link or file, with one line", function()
      local out = tmp .. "/o"
      assert(lfs.mkdir(out))
      assert(lfs.link(tmp .. "/target", out .. "/unit-1-keys.bin", true))
      local status, _, err = recipes.run(GEN, { "--serial-range", "1-2", "--outdir", out, "--encrypt", "--keygen" })
      assert.equal(1, status)
      assert.equal(("recipe: unit 1: %s/unit-1-keys.bin already exists and is not in manifest.csv;"
        .. " use --force to overwrite it\n"):format(out), err)
      assert.is_false(helper.exists(tmp .. "/target"))
      helper.write(out .. "/unit-2.csv", "mine")
      os.remove(out .. "/unit-1-keys.bin")
      status, _, err = recipes.run(GEN, { "--serial-range", "1-2", "--outdir", out, "--csv" })
      assert.equal(1, status)
      assert.equal(("recipe: unit 2: %s/unit-2.csv already exists and is not in manifest.csv;"
        .. " use --force to overwrite it\n"):format(out), err)
      assert.equal("mine", helper.read(out .. "/unit-2.csv"))
      assert.equal(1, #check_folder(out))
    end)

    it("refuses a link or hard link at the lock file with one line, its target untouched", function()
      local victim = tmp .. "/victim"
      helper.write(victim, "precious")
      for _, how in ipairs({ "ln -s", "ln" }) do
        local out = tmp .. "/o"
        os.execute("rm -rf " .. out)
        assert(lfs.mkdir(out))
        assert(os.execute(("%s %s %s/.nvsgen.lock"):format(how, victim, out)))
        local status, _, err = recipes.run(GEN, { "--serial-range", "1-2", "--outdir", out })
        assert.equal(1, status)
        assert.equal(("recipe: %s/.nvsgen.lock: not a plain file (a link, or a file with other hard links)\n")
          :format(out), err)
        assert.equal("precious", helper.read(victim))
        assert.same({ ".nvsgen.lock" }, files(out))
      end
    end)

    it("writes keys files 0600 from their first byte, whatever the umask", function()
      local status, _, err = sh(("umask 000 && lua5.4 gen.lua --serial-range 1-2 --outdir %s/o --encrypt --keygen")
        :format(tmp), tmp)
      assert.equal(0, status, err)
      assert.equal("rw-------", lfs.attributes(tmp .. "/o/unit-2-keys.bin", "permissions"))
      assert.equal("rw-------", lfs.attributes(tmp .. "/o/manifest.csv", "permissions"))
    end)
  end)

  describe("the manifest", function()
    local pem = recipe.define{ size = 0x3000, exports = { "Cert", "Note" }, unit = function(u)
      u:namespace("id")
      u:string("Cert", u:export("Cert", PEM .. u.serial))
      u:export("Note", 'a "quoted", value')
    end }

    it("holds PEM exports with line breaks, commas and quotes, read back as written", function()
      local status, _, err = recipes.run(pem, { "--serial-range", "1-3", "--outdir", tmp })
      assert.equal(0, status, err)
      local rows = check_folder(tmp)
      assert.equal(3, #rows)
      for i, row in ipairs(rows) do
        assert.equal(tostring(i), row.serial)
        assert.equal(PEM .. i, row.Cert)
        assert.equal('a "quoted", value', row.Note)
      end
      -- The rerun reads it back: nothing is made again, no serial 5 appears.
      status, _, err = recipes.run(pem, { "--serial-range", "1-6", "--outdir", tmp })
      assert.equal(0, status, err)
      rows = check_folder(tmp)
      assert.equal(6, #rows)
      assert.same({ "1", "2", "3", "4", "5", "6" }, { rows[1].serial, rows[2].serial, rows[3].serial,
        rows[4].serial, rows[5].serial, rows[6].serial })
    end)

    it("drops a record cut short without touching the complete ones", function()
      assert.equal(0, (recipes.run(pem, { "--serial-range", "1-3", "--outdir", tmp })))
      local text = helper.read(tmp .. "/manifest.csv")
      -- Cut in the middle of unit 3's certificate, just after a line break
      -- that looks like the start of a record.
      local third = text:find("\r\n3,", 1, true) + 2
      local cut = text:find("5,u-5.bin", third, true)
      helper.write(tmp .. "/manifest.csv", text:sub(1, cut - 1))
      os.rename(tmp .. "/unit-3.bin", tmp .. "/unit-3.bin.part")
      local status, out, err = recipes.run(pem, { "--serial-range", "1-3", "--outdir", tmp })
      assert.equal(0, status, err)
      assert.matches("3 units: 1 written, 2 already done", out)
      local again = helper.read(tmp .. "/manifest.csv")
      assert.equal(text:sub(1, third - 1), again:sub(1, third - 1))
      local rows = check_folder(tmp)
      assert.equal(3, #rows)
      assert.equal(PEM .. 3, rows[3].Cert)
    end)

    it("stays 0600 through --force and a resume", function()
      assert.equal(0, (recipes.run(GEN, { "--serial-range", "1-3", "--outdir", tmp })))
      assert(os.execute("chmod 644 " .. tmp .. "/manifest.csv"))
      assert.equal(0, (recipes.run(GEN, { "--serial-range", "1-3", "--outdir", tmp, "--force" })))
      assert.equal("rw-------", lfs.attributes(tmp .. "/manifest.csv", "permissions"))
      local text = helper.read(tmp .. "/manifest.csv")
      helper.write(tmp .. "/manifest.csv", text:sub(1, -10))
      assert(os.execute("chmod 644 " .. tmp .. "/manifest.csv"))
      os.remove(tmp .. "/unit-3.bin")
      local status, _, err = recipes.run(GEN, { "--serial-range", "1-3", "--outdir", tmp })
      assert.equal(0, status, err)
      assert.equal("rw-------", lfs.attributes(tmp .. "/manifest.csv", "permissions"))
      assert.equal(3, #check_folder(tmp))
    end)
  end)

  it("refuses a rerun with other parameters, saying what differs; --force makes the units again", function()
    assert.equal(0, (recipes.run(GEN, { "--serial-range", "1-5", "--outdir", tmp })))
    local before = helper.read(tmp .. "/manifest.csv")
    local hint = "; run with the same options, use another --outdir, or --force to make the units again\n"
    local function refused(argv, message)
      local args = { "--serial-range", "1-5", "--outdir", tmp }
      for _, a in ipairs(argv) do args[#args + 1] = a end
      local status, out, err = recipes.run(GEN, args)
      assert.equal(1, status)
      assert.equal("", out)
      assert.equal(("recipe: %s/manifest.csv: %s"):format(tmp, message) .. hint, err)
    end
    refused({ "--encrypt", "--keygen" }, "unit 1 was made unencrypted, this run asks for it encrypted with a key"
      .. " per unit (--keygen)")
    refused({ "--size", "0x3000" }, "unit 1 was made with size 0x6000, this run asks for 0x3000")
    refused({ "--version", "1" }, "unit 1 was made with --version 2, this run asks for 1")
    refused({ "--name", "dev-%d.bin" }, "unit 1 was made as unit-1.bin, this run's name pattern 'dev-%d.bin'"
      .. " gives dev-1.bin")
    assert.equal(before, helper.read(tmp .. "/manifest.csv"))
    local status, out, err = recipes.run(GEN, { "--serial-range", "1-5", "--outdir", tmp, "--size", "0x3000",
      "--force" })
    assert.equal(0, status, err)
    assert.matches("5 units: 5 written, 0 already done", out)
    for _, row in ipairs(check_folder(tmp)) do assert.equal("12288", row.size) end
  end)

  describe("signals", function()
    -- The batch `run` (5000 units into `out`) was interrupted: its one line
    -- says how many units were made, the manifest records just those, and
    -- the same command run again makes the rest.
    local function interrupted_then_finished(run, out)
      local message = helper.read(tmp .. "/err")
      local made = message:match("^gen%.lua: interrupted: (%d+) of 5000 units made; run the same command to"
        .. " finish\n$")
      assert.is_not_nil(made, message)
      local rows = check_folder(out)
      assert.equal(tonumber(made), #rows)
      assert.truthy(#rows < 5000)
      local status, rerun, err = sh(run, tmp)
      assert.equal(0, status, err)
      assert.matches(("5000 units: %d written, %d already done"):format(5000 - #rows, #rows), rerun)
      assert.equal(5000, #check_folder(out))
    end

    for _, case in ipairs({ { "TERM", 143, "--jobs 2" }, { "INT", 130, "--jobs 2" }, { "HUP", 129, "--jobs 1" } }) do
      it(("#slow SIG%s stops every process within a second, with one line and status %d; the rerun finishes")
        :format(case[1], case[2]), function()
        local out = tmp .. "/o"
        local run = ("lua5.4 gen.lua --serial-range 1-5000 --outdir %s %s"):format(out, case[3])
        -- The signal goes to the main process only: the workers must learn
        -- of it from it, not from the terminal. It is sent once the folder
        -- holds 300 files: a fast batch may record nothing before its end.
        local status, _, err = sh(("%s 2>%s/err & pid=$!; i=0; while [ $i -lt 400 ]; do"
          .. " [ $(ls %s 2>/dev/null | wc -l) -gt 300 ] && break; sleep 0.02; i=$((i+1)); done;"
          .. " kill -%s $pid; sleep 1; env -u LD_PRELOAD pgrep -f '^lua5.4 gen.lua .*outdir %s' >%s/left;"
          .. " wait $pid; echo $? >%s/rc")
          :format(run, tmp, out, case[1], out, tmp, tmp), tmp)
        assert.equal(0, status, err)
        assert.equal("", helper.read(tmp .. "/left"))
        assert.equal(tostring(case[2]) .. "\n", helper.read(tmp .. "/rc"))
        interrupted_then_finished(run, out)
      end)
    end
    it("#slow SIGTERM to a worker alone: the batch is interrupted, not reported as made; the rerun finishes",
      function()
      local out = tmp .. "/o"
      local run = ("lua5.4 gen.lua --serial-range 1-5000 --outdir %s --jobs 2"):format(out)
      -- The worker is the main process's child (started through sh -c exec).
      -- It is signalled once it has taken a chunk (its number, 2, is in
      -- the chunk file) and the folder holds 300 files: a fast batch may
      -- record nothing before its end, so the manifest cannot tell.
      local status, _, err = sh(("%s >%s/out 2>%s/err & pid=$!; i=0; while [ $i -lt 400 ]; do"
        .. " [ $(ls %s 2>/dev/null | wc -l) -gt 300 ] && od -An -tu1 %s/.nvsgen.lock | grep -qw 2 && break;"
        .. " sleep 0.02; i=$((i+1)); done;"
        .. " kill -TERM $(env -u LD_PRELOAD pgrep -P $pid); wait $pid; echo $? >%s/rc")
        :format(run, tmp, tmp, out, out, tmp), tmp)
      assert.equal(0, status, err)
      assert.equal("143\n", helper.read(tmp .. "/rc"))
      assert.equal("", helper.read(tmp .. "/out"))
      interrupted_then_finished(run, out)
    end)
  end)

  describe("recipe mistakes", function()
    it("refuse os.exit in a unit: the batch fails, naming the unit and the recipe", function()
      local exit = os.exit
      local r = recipe.define{ size = 0x3000, unit = function(u)
        u:namespace("n"):u8("a", 1)
        if u.serial == 3 then os.exit(0) end
      end }
      local status, _, err = recipes.run(r, { "--serial-range", "1-5", "--outdir", tmp })
      assert.equal(exit, os.exit)
      assert.equal(1, status)
      assert.matches("^recipe: unit 3: .*batch_faults_spec%.lua: the recipe called os.exit; a recipe must not end"
        .. " the batch\n$", err)
      assert.equal(2, #check_folder(tmp))
    end)

    it("fail the run when a recipe ends the process with an os.exit it kept from before", function()
      local path = script(tmp, "exit.lua", [[size = 0x3000, unit = function(u)
        u:namespace("n"):u8("a", 1)
        if u.serial == 3 then EXIT(0) end
      end]])
      helper.write(path, "local EXIT = os.exit\n" .. helper.read(path))
      local status, out, err = sh(("lua5.4 %s --serial-range 1-5 --outdir %s/o"):format(path, tmp), tmp)
      assert.equal(1, status)
      assert.equal("", out)
      assert.equal("nvsgen: the recipe ended the process in the middle of the batch (os.exit);"
        .. " run the same command to finish\n", err)
      -- Nothing was recorded; the rerun (without the exit) makes every unit.
      local fixed = script(tmp, "fixed.lua", [[size = 0x3000, unit = function(u) u:namespace("n"):u8("a", 1) end]])
      status, out, err = sh(("lua5.4 %s --serial-range 1-5 --outdir %s/o"):format(fixed, tmp), tmp)
      assert.equal(0, status, err)
      assert.matches("5 units: 5 written, 0 already done", out)
      assert.equal(5, #check_folder(tmp .. "/o"))
    end)

    it("name the unit and the recipe for error({}) and error()", function()
      for value, what in pairs({ ["{}"] = "a table, not a message", ["nil"] = "an error with no message" }) do
        local r = recipe.define{ size = 0x3000, unit = function(u)
          if u.serial == 2 then error(load("return " .. value)()) end
        end }
        local status, _, err = recipes.run(r, { "--serial-range", "1-3", "--outdir", tmp .. "/" .. value })
        assert.equal(1, status)
        assert.matches("^recipe: unit 2: .*batch_faults_spec%.lua: the unit raised " .. what .. "\n$", err)
      end
    end)

    it("name the unit for an error value whose __tostring fails, without a traceback", function()
      local r = recipe.define{ size = 0x3000, unit = function()
        error(setmetatable({}, { __tostring = function() error("no text") end }))
      end }
      local status, _, err = recipes.run(r, { "--serial-range", "1-2", "--outdir", tmp .. "/o" })
      assert.equal(1, status)
      assert.matches("^recipe: unit 1: .*batch_faults_spec%.lua: the unit raised a table, not a message\n$", err)
    end)

    it("#slow stop on SIGTERM while a unit loops forever: one line, status 143, nothing left", function()
      local path = script(tmp, "loop.lua", "size = 0x3000, unit = function(u) while true do end end")
      local out = tmp .. "/o"
      local status, _, err = sh(("lua5.4 %s --serial-range 1-5 --outdir %s 2>%s/err & pid=$!; sleep 1;"
        .. " kill -TERM $pid; sleep 1; if kill -0 $pid 2>/dev/null; then echo running >%s/left; kill -KILL $pid;"
        .. " fi; wait $pid; echo $? >%s/rc"):format(path, out, tmp, tmp, tmp), tmp)
      assert.equal(0, status, err)
      assert.is_false(helper.exists(tmp .. "/left"))
      assert.equal("143\n", helper.read(tmp .. "/rc"))
      assert.equal("loop.lua: interrupted: 0 of 5 units made; run the same command to finish\n",
        helper.read(tmp .. "/err"))
      assert.same({ "manifest.csv" }, files(out))
    end)

    it("#slow stop on SIGTERM while a unit loops at the bottom of a deep recursion", function()
      -- 150000 calls deep: the stop must not cost a walk of the whole stack at every hook event.
      local path = script(tmp, "deep.lua", "size = 0x3000, unit = function(u) DEEP(150000) end")
      helper.write(path, "local function DEEP(n) if n == 0 then while true do end end return 1 + DEEP(n - 1) end\n"
        .. helper.read(path))
      local out = tmp .. "/o"
      local status, _, err = sh(("lua5.4 %s --serial-range 1-5 --outdir %s 2>%s/err & pid=$!; sleep 1;"
        .. " kill -TERM $pid; sleep 2; if kill -0 $pid 2>/dev/null; then echo running >%s/left; kill -KILL $pid;"
        .. " fi; wait $pid; echo $? >%s/rc"):format(path, out, tmp, tmp, tmp), tmp)
      assert.equal(0, status, err)
      assert.is_false(helper.exists(tmp .. "/left"))
      assert.equal("143\n", helper.read(tmp .. "/rc"))
      assert.equal("deep.lua: interrupted: 0 of 5 units made; run the same command to finish\n",
        helper.read(tmp .. "/err"))
      assert.same({ "manifest.csv" }, files(out))
    end)

    it("#slow stop a unit that loops when the request came while the batch prepared it", function()
      -- The request comes in the key generation of unit 2, after the batch last looked at it between
      -- units and before unit 2's function runs (which then loops forever).
      local path = tmp .. "/prepared.lua"
      recipes.script(path, [[
local batch, recipe, serials = require("nvsgen.batch"), require("nvsgen.recipe"), require("nvsgen.serials")
local crypto = require("nvsgen.crypto")
local pid = io.open("/proc/self/stat"):read("n")
local made = 0
local signalling = setmetatable({ generate_key = function()
  made = made + 1
  if made == 2 then os.execute("kill -TERM " .. pid) end
  return crypto.generate_key()
end }, { __index = crypto })
local r = recipe.define{ size = 0x3000, unit = function(u)
  u:namespace("n"):u8("a", 1)
  if u.serial == 2 then while true do end end
end }
local ok, err, summary = batch.run{ recipe = r, serials = serials.parse("1-3"), outdir = arg[1], keygen = true,
  crypto = signalling }
print(ok, err, summary.signal)
]])
      local out = tmp .. "/o"
      local status, _, err = sh(("lua5.4 %s %s >%s/out 2>&1 & pid=$!; sleep 3;"
        .. " if kill -0 $pid 2>/dev/null; then echo running >%s/left; kill -KILL $pid;"
        .. " fi; wait $pid; echo $? >%s/rc"):format(path, out, tmp, tmp, tmp), tmp)
      assert.equal(0, status, err)
      assert.is_false(helper.exists(tmp .. "/left"))
      assert.equal("0\n", helper.read(tmp .. "/rc"))
      assert.equal("nil\tinterrupted: 0 of 3 units made; run the same command to finish\t15\n",
        helper.read(tmp .. "/out"))
      assert.same({ "manifest.csv" }, files(out))
    end)

    it("name the recipe file and the field when the script is run, without a traceback", function()
      for fields, message in pairs({
        ['size = "big", unit = function() end'] = "field 'size' must be a number, got string",
        ["size = 0x3000"] = "field 'unit' (a function) is required",
      }) do
        local path = script(tmp, "r.lua", fields)
        local status, out, err = sh(("lua5.4 %s --serial-range 1 --outdir %s/o"):format(path, tmp), tmp)
        assert.equal(2, status)
        assert.equal("", out)
        assert.equal(("r.lua: %s: recipe.run: %s\n"):format(path, message), err)
      end
    end)
  end)

  it("names the largest partition size for a huge --size", function()
    for _, size in ipairs({ "0x100000000000", "0x10000000000", "0x100000000" }) do
      local status, _, err = recipes.run(GEN, { "--serial-range", "1", "--outdir", tmp, "--size", size })
      assert.equal(2, status)
      assert.equal(("recipe: size %s is larger than the largest NVS partition supported (0xFFFFF000)")
        :format(size:upper():gsub("^0X", "0x")), err:match("\n(.*)\n$"))
    end
    assert.same({}, files(tmp))
  end)

  describe("the values table", function()
    local r = recipe.define{ size = 0x3000, unit = function(u)
      u:namespace("n"):u8("gain", tonumber(u:value("gain")))
    end }

    it("refuses a serial with two rows", function()
      helper.write(tmp .. "/v.csv", "serial,gain\n1,5\n2,6\n2,7\n3,8\n")
      local status, _, err = recipes.run(r, { "--serial-range", "1-3", "--outdir", tmp .. "/o", "--values",
        tmp .. "/v.csv" })
      assert.equal(1, status)
      assert.equal(("recipe: unit 3: %s/v.csv:4: serial 2 has a second row (the first is line 3)\n"):format(tmp), err)
    end)

    it("names the line of a short row", function()
      helper.write(tmp .. "/v.csv", "serial,gain\n1,5\n2\n")
      local status, _, err = recipes.run(r, { "--serial-range", "1-2", "--outdir", tmp .. "/o", "--values",
        tmp .. "/v.csv" })
      assert.equal(1, status)
      assert.matches(("^recipe: unit 2: .*: %s/v.csv:3: the row of serial 2 is short: no value in column 'gain'\n$")
        :format(tmp:gsub("%p", "%%%0")), err)
    end)

    it("names the unit whose row is missing among the units a rerun passes over", function()
      local lines = { "serial,gain" }
      for serial = 1, 4 do lines[#lines + 1] = serial .. ",5" end
      helper.write(tmp .. "/v.csv", table.concat(lines, "\n") .. "\n")
      local opts = { "--serial-range", "1-6", "--outdir", tmp .. "/o", "--values", tmp .. "/v.csv" }
      assert.equal(1, (recipes.run(r, opts)))
      assert.equal(4, #check_folder(tmp .. "/o"))
      -- Rows 5 and 6 added, row 2 (of a unit made) lost.
      helper.write(tmp .. "/v.csv", "serial,gain\n1,5\n3,5\n4,5\n5,5\n6,5\n")
      local status, _, err = recipes.run(r, opts)
      assert.equal(1, status)
      assert.equal(("recipe: unit 2: %s/v.csv: no row for serial 2 (rows must follow the batch's order)\n")
        :format(tmp), err)
    end)

    it("names the unit whose row is missing in the chunks of another process", function()
      -- A worker started by hand (--shard 1/2) finds the first 4 chunks (units 1 to 128) taken by
      -- process 2 and passes over their rows; row 100 is missing.
      local lines = { "serial,gain" }
      for serial = 1, 200 do
        if serial ~= 100 then lines[#lines + 1] = serial .. ",5" end
      end
      helper.write(tmp .. "/v.csv", table.concat(lines, "\n") .. "\n")
      assert(lfs.mkdir(tmp .. "/o"))
      helper.write(tmp .. "/o/manifest.csv", "serial,image,size,sha256,keys\r\n")
      helper.write(tmp .. "/o/" .. batch.LOCK, "\2\2\2\2")
      local status, out = recipes.run(r, { "--serial-range", "1-200", "--outdir", tmp .. "/o", "--values",
        tmp .. "/v.csv", "--shard", "1/2" })
      assert.equal(1, status)
      assert.equal(("shard 0 0 0\tunit 100: %s/v.csv: no row for serial 100 (rows must follow the batch's order)\n")
        :format(tmp), out)
    end)
  end)

  it("#slow shares a batch with a worker that really makes units", function()
    -- Each unit exports the process that made it.
    local path = script(tmp, "pid.lua", [[size = 0x3000, exports = { "pid" }, unit = function(u)
      local f = io.open("/proc/self/stat")
      u:export("pid", f:read("n"))
      f:close()
    end]])
    local status, out, err = sh(("lua5.4 %s --serial-range 1-2000 --outdir %s/o --jobs 2"):format(path, tmp), tmp)
    assert.equal(0, status, err)
    assert.matches("2000 units: 2000 written", out)
    local pids = {}
    for _, row in ipairs(check_folder(tmp .. "/o")) do pids[row.pid] = (pids[row.pid] or 0) + 1 end
    local n = 0
    for _, count in pairs(pids) do
      n = n + 1
      assert.truthy(count >= 32, "a process made fewer units than a chunk")
    end
    assert.equal(2, n)
  end)
end)
