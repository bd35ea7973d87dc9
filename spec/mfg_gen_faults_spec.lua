--- mfg_gen and nvs_partition_gen under faults: signals, two runs on one
-- output folder, a full disk, links planted where files go, sizes no
-- partition can have, a huge --prefix_num, keys made twice in a minute.
local h = require("spec.support.helper")
local lfs = require("lfs")
local nvsgen = require("nvsgen")

local CONFIG = "ns,namespace,\nSerial,data,u32\nRev,data,u8\nName,data,string\n"

local dir
before_each(function() dir = h.tmpdir() end)
after_each(function() h.cleanup(dir) end)

local function values(n)
  local rows = { "id,Serial,Rev,Name\n" }
  for i = 1, n do rows[#rows + 1] = ("%d,%d,3,unit %d\n"):format(i, i, i) end
  return table.concat(rows)
end

local function inputs(n)
  h.write(dir .. "/config.csv", CONFIG)
  h.write(dir .. "/values.csv", values(n))
end


local sh, now, wait_for, count = h.sh, h.now, h.wait_for, h.count

--- Starts mfg_gen in the background in dir; returns its process id.
local function start(extra)
  -- The shell that waits for it has no descriptor of this pipe: reading
  -- the pipe ends once the process id is printed.
  sh(("(cd %s && lua5.4 %s/bin/mfg_gen.lua generate config.csv values.csv u 0x3000"
    .. " --outdir %s/o %s >%s/out 2>%s/err & echo $! >%s/pid; wait $!; echo $? >%s/rc) >/dev/null 2>&1 &")
    :format(dir, h.ROOT, dir, extra or "", dir, dir, dir, dir))
  assert(wait_for(function() return (h.read(dir .. "/pid") or ""):find("\n") end, 5))
  return math.tointeger(tonumber(h.read(dir .. "/pid")))
end

--- The mfg_gen processes (interpreters, not shells) writing this spec's
-- output folder. pgrep runs without the sanitizer `make asan` preloads
-- (it hangs with it).
local function processes()
  -- The folder's name is letters, digits, '_' and '/': nothing a pattern reads.
  return tonumber(sh(("env -u LD_PRELOAD pgrep -f -c -- '^lua5.4 .*%s/o' 2>/dev/null || true"):format(dir))) or 0
end

--- The numbers of the units whose image is in o/bin, sorted.
local function made()
  return h.numbers_in(dir .. "/o/bin", "^u%-(%d+)%.bin$")
end

--- The chunk file the workers of this spec's batch take units from (on
-- their command lines).
local function chunk_file()
  local listed = sh(("env -u LD_PRELOAD pgrep -f -a -- '^lua5.4 .*%s/o ' 2>/dev/null || true"):format(dir))
  return listed:match("%-%-chunks '?([^ \n']+)")
end

describe("mfg_gen stopped by a signal", function()
  for _, case in ipairs({ { "TERM", 15 }, { "INT", 2 }, { "HUP", 1 } }) do
    it("SIG" .. case[1] .. ": every process stops within a second, units whole with no hole, one line #slow", function()
      inputs(5000)
      local pid = start("--jobs 2")
      assert.is_true(wait_for(function() return count(dir .. "/o/bin") >= 300 end, 20))
      assert.are.equal(2, processes()) -- main and its worker
      local chunks = chunk_file()
      assert.is_truthy(chunks)
      assert.is_truthy(lfs.attributes(chunks))
      local t0 = now()
      sh("kill -" .. case[1] .. " " .. pid)
      assert.is_true(wait_for(function() return h.read(dir .. "/rc") ~= nil end, 5))
      assert.is_true(wait_for(function() return processes() == 0 end, 1.0 - (now() - t0)))
      assert.is_true(now() - t0 < 1.0)
      assert.are.equal(tostring(128 + case[2]) .. "\n", h.read(dir .. "/rc"))
      local numbers = made()
      local n = #numbers
      assert.is_true(n > 0 and n < 5000)
      for i = 1, n do assert.are.equal(i, numbers[i]) end
      assert.are.equal(n, count(dir .. "/o/csv"))
      assert.are.equal(("mfg_gen: interrupted: %d of 5000 units made (units 1 to %d, each whole; none after them)\n")
        :format(n, n), h.read(dir .. "/err"))
      for i = 1, n, 97 do
        assert.are.equal(12288, lfs.attributes(("%s/o/bin/u-%d.bin"):format(dir, i), "size"))
      end
      assert.is_nil(lfs.attributes(chunks))
    end)
  end
end)

describe("mfg_gen: two runs on one output folder", function()
  it("the second refuses with one line while the first writes, and never writes there", function()
    inputs(3000)
    start()
    assert.is_true(wait_for(function() return count(dir .. "/o/bin") >= 50 end, 20))
    for _, prefix in ipairs({ "u", "v" }) do
      local st, out, err = h.run("nvsgen.cli.mfg_gen",
        { "generate", "config.csv", "values.csv", prefix, "0x3000", "--outdir", "o" }, dir)
      assert.are.equal(1, st)
      assert.are.equal("", out)
      assert.are.equal("mfg_gen: o: another mfg_gen run is writing this folder"
        .. " (wait for it to end, or use another --outdir)\n", err)
    end
    assert.is_true(wait_for(function() return h.read(dir .. "/rc") ~= nil end, 60))
    assert.are.equal("0\n", h.read(dir .. "/rc"))
    assert.are.equal(3000, #made())
    assert.are.equal(3000, count(dir .. "/o/csv"))
  end)
end)

describe("mfg_gen on a full disk", function()
  it("stops at the unit that does not fit, names the free space needed, leaves no half unit", function()
    local mnt = dir .. "/mnt"
    assert(lfs.mkdir(mnt))
    if not os.execute(("mount -t tmpfs -o size=256k tmpfs %s 2>/dev/null"):format(mnt)) then
      pending("cannot mount a small tmpfs here (needs root): disk-full case not run")
      return
    end
    h.write(dir .. "/config.csv", CONFIG)
    h.write(dir .. "/values.csv", values(100))
    local st, _, err = h.run("nvsgen.cli.mfg_gen",
      { "generate", "config.csv", "values.csv", "u", "0x3000", "--outdir", "mnt/o" }, dir)
    local bins, csvs, stray = 0, 0, 0
    for _, sub in ipairs({ "bin", "csv" }) do
      for name in lfs.dir(mnt .. "/o/" .. sub) do
        if name:find("tmp") then stray = stray + 1 end
        if name:find("^u%-") then
          if sub == "bin" then
            bins = bins + 1
            assert.are.equal(12288, lfs.attributes(mnt .. "/o/bin/" .. name, "size"))
          else
            csvs = csvs + 1
          end
        end
      end
    end
    os.execute("umount " .. mnt)
    assert.are.equal(1, st)
    local line, left = err:match("^mfg_gen: values%.csv:(%d+): mnt/o/[a-z]+/u%-%d+%.[a-z]+: No space left on device"
      .. " %(the (%d+) units left need about %d+ bytes, [%d.]+ MiB, of free space%)\n$")
    assert.is_truthy(line, err)
    assert.are.equal(bins, csvs)
    assert.are.equal(0, stray)
    assert.are.equal(100 - bins, tonumber(left))
    assert.are.equal(bins + 2, tonumber(line))
  end)
end)

describe("mfg_gen and planted links", function()
  local function run(extra)
    local argv = { "generate", "config.csv", "values.csv", "u", "0x3000", "--outdir", "o", "--keygen" }
    for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
    return h.run("nvsgen.cli.mfg_gen", argv, dir)
  end

  it("never writes through a symbolic or hard link in bin/, keys/ or csv/", function()
    inputs(5)
    for _, case in ipairs({
      { "bin/u-1.bin", "symlink", 2 }, { "keys/keys-u-2.bin", "symlink", 3 }, { "csv/u-3.csv", "symlink", 4 },
      { "bin/u-2.bin", "hard", 3 },
    }) do
      h.cleanup(dir .. "/o")
      h.write(dir .. "/target", "secret")
      for _, sub in ipairs({ "", "/bin", "/keys", "/csv" }) do lfs.mkdir(dir .. "/o" .. sub) end
      assert(lfs.link(dir .. "/target", dir .. "/o/" .. case[1], case[2] == "symlink"))
      local st, _, err = run()
      assert.are.equal(1, st)
      assert.are.equal(("mfg_gen: values.csv:%d: o/%s: already exists (mfg_gen never overwrites a file:"
        .. " remove it or use another --outdir)\n"):format(case[3], case[1]), err)
      assert.are.equal("secret", h.read(dir .. "/target"))
      assert.are.equal("rw-r--r--", lfs.attributes(dir .. "/target", "permissions"))
      for name in lfs.dir(dir .. "/o/keys") do
        if name:find("^keys") and lfs.symlinkattributes(dir .. "/o/keys/" .. name, "mode") == "file" then
          assert.are.equal("rw-------", lfs.attributes(dir .. "/o/keys/" .. name, "permissions"))
        end
      end
    end
  end)

  it("refuses a csv/, bin/ or keys/ folder that is a symbolic link", function()
    inputs(2)
    assert(lfs.mkdir(dir .. "/elsewhere"))
    for _, sub in ipairs({ "csv", "bin", "keys" }) do
      h.cleanup(dir .. "/o")
      assert(lfs.mkdir(dir .. "/o"))
      assert(lfs.link(dir .. "/elsewhere", dir .. "/o/" .. sub, true))
      local st, out, err = run()
      assert.are.equal(1, st)
      assert.are.equal(("mfg_gen: o/%s: is a symbolic link (mfg_gen writes only into real folders"
        .. " of the output folder)\n"):format(sub), err)
      assert.are.equal("\nGenerating encrypted NVS binary images...\n", out)
      assert.are.same({}, h.listing(dir .. "/elsewhere"))
    end
  end)

  it("nvs_partition_gen replaces a link planted at its output, never writing through it", function()
    h.write(dir .. "/in.csv", "key,type,encoding,value\nns,namespace,,\nk,data,u8,1\n")
    h.write(dir .. "/target", "secret")
    assert(lfs.link(dir .. "/target", dir .. "/out.bin", true))
    local st = h.run("nvsgen.cli.partition_gen", { "generate", "in.csv", "out.bin", "0x3000" }, dir)
    assert.are.equal(0, st)
    assert.are.equal("secret", h.read(dir .. "/target"))
    assert.are.equal("file", lfs.symlinkattributes(dir .. "/out.bin", "mode"))
    assert.are.equal(0x3000, #h.read(dir .. "/out.bin"))
  end)
end)

describe("sizes no NVS partition can have", function()
  local LIMIT = ("(0x%X)"):format(nvsgen.MAX_PARTITION_SIZE)

  it("are refused in one line naming the largest supported", function()
    assert.are.equal(0xFFFFF000, nvsgen.MAX_PARTITION_SIZE)
    h.write(dir .. "/in.csv", "key,type,encoding,value\nns,namespace,,\nk,data,u8,1\n")
    inputs(2)
    for _, size in ipairs({ "0x100000000000", "0x10000000000", "0x100000000" }) do
      local want = ("size %s is larger than the largest NVS partition supported %s\n"):format(size, LIMIT)
      local st, out, err = h.run("nvsgen.cli.partition_gen", { "generate", "in.csv", "out.bin", size }, dir)
      assert.are.equal(1, st)
      assert.are.equal("", out)
      assert.are.equal("nvs_partition_gen: " .. want, err)
      st, out, err = h.run("nvsgen.cli.mfg_gen", { "generate", "config.csv", "values.csv", "u", size,
        "--outdir", "o" }, dir)
      assert.are.equal(1, st)
      assert.are.equal("", out)
      assert.are.equal("mfg_gen: " .. want, err)
    end
    assert.are.same({ "config.csv", "in.csv", "values.csv" }, h.listing(dir))
  end)
end)

describe("mfg_gen --prefix_num", function()
  it("refuses a length no file name can hold, in a short line", function()
    inputs(2)
    local st, out, err = h.run("nvsgen.cli.mfg_gen", { "generate", "config.csv", "values.csv", "u", "0x3000",
      "--outdir", "o", "--prefix_num", "1", "100000" }, dir)
    assert.are.equal(2, st)
    assert.are.equal("", out)
    assert.are.equal("mfg_gen: argument --prefix_num: length 100000 is more than a file name can hold"
      .. " (at most 128 digits)\n", err)
    assert.is_nil(lfs.attributes(dir .. "/o"))
    local st2, _, err2 = h.run("nvsgen.cli.mfg_gen", { "generate", "config.csv", "values.csv", "u", "0x3000",
      "--outdir", "o", "--prefix_num", ("9"):rep(5000), "2" }, dir)
    assert.are.equal(2, st2)
    assert.is_true(#err2 < 200)
  end)
end)

describe("keys made twice in one minute with the default name", function()
  --- Runs `make` twice in the same minute (tries again across a minute's
  -- end); returns both outputs.
  local function twice(make)
    for _ = 1, 3 do
      local minute = os.date("%H-%M")
      local out1, out2 = make(), make()
      if os.date("%H-%M") == minute then return out1, out2, minute end
    end
    error("the minute kept changing")
  end

  it("nvs_partition_gen encrypt --keygen: the second gets -2, neither overwritten", function()
    h.write(dir .. "/in.csv", "key,type,encoding,value\nns,namespace,,\nk,data,u8,1\n")
    local n = 0
    local out1, out2 = twice(function()
      n = n + 1
      local st, out, err = h.run("nvsgen.cli.partition_gen",
        { "encrypt", "in.csv", "out" .. n .. ".bin", "0x3000", "--keygen" }, dir)
      assert.are.equal("", err)
      assert.are.equal(0, st)
      return out
    end)
    local name1 = out1:match("Created encryption keys: ===>  keys/(keys%-%d%d%-%d%d_%d%d%-%d%d%.bin)\n")
    local name2 = out2:match("Created encryption keys: ===>  keys/(keys%-%d%d%-%d%d_%d%d%-%d%d%-2%.bin)\n")
    assert.is_truthy(name1, out1)
    assert.is_truthy(name2, out2)
    assert.are.equal(name1:sub(1, -5) .. "-2.bin", name2)
    assert.are_not.equal(h.read(dir .. "/keys/" .. name1), h.read(dir .. "/keys/" .. name2))
    assert.are.equal("rw-------", lfs.attributes(dir .. "/keys/" .. name2, "permissions"))
  end)

  it("mfg_gen generate-key: the second gets -2, the third -3", function()
    local out1, out2 = twice(function()
      local st, out = h.run("nvsgen.cli.mfg_gen", { "generate-key", "--outdir", "o" }, dir)
      assert.are.equal(0, st)
      return out
    end)
    local stem = out1:match("keys/(keys%-%d%d%-%d%d_%d%d%-%d%d)%.bin\n$")
    assert.is_truthy(stem, out1)
    assert.are.equal("\nCreated encryption keys: ===>  o/keys/" .. stem .. "-2.bin\n", out2)
    local st, out3 = h.run("nvsgen.cli.mfg_gen", { "generate-key", "--outdir", "o" }, dir)
    assert.are.equal(0, st)
    if os.date("keys-%m-%d_%H-%M") == stem then
      assert.are.equal("\nCreated encryption keys: ===>  o/keys/" .. stem .. "-3.bin\n", out3)
    end
  end)
end)
