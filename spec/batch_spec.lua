-- nvsgen.batch and the recipe command line: manifest, resume after a kill,
-- refusals, per-unit CSVs, keys, partition tables, worker processes.
local lfs = require("lfs")
local helper = require("spec.support.helper")
local recipes = require("spec.support.recipes")
local batch = require("nvsgen.batch")
local recipe = require("nvsgen.recipe")
local crypto = require("nvsgen.crypto")

local GEN = helper.ROOT .. "/gen.lua"

local files = helper.files

describe("batch", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  describe("serials", function()
    it("takes a range, a list or both", function()
      local function list(text)
        local s = assert(batch.serials(text))
        local out = {}
        for _, serial in s:each() do out[#out + 1] = serial end
        return out, s.count
      end
      assert.same({ { 1000, 1001, 1002 }, 3 }, { list("1000-1002") })
      assert.same({ { 5, 9, 7 }, 3 }, { list("5,9,7") })
      assert.same({ { 1, 2, 8 }, 3 }, { list("1-2,8") })
      assert.same({ nil, "invalid serial range '1-x': expected A-B or A,B,C" }, { batch.serials("1-x") })
      assert.same({ nil, "invalid serial range '9-3': 9 comes after 3" }, { batch.serials("9-3") })
      assert.same({ nil, "invalid serial range '1-5,3': serial 3 is listed twice" }, { batch.serials("1-5,3") })
    end)
  end)

  it("writes images and a manifest with sizes, digests and exports", function()
    local status, out, err = recipes.run(GEN, { "--serial-range", "1000-1004", "--outdir", tmp })
    assert.equal(0, status, err)
    assert.equal("recipe: 5 units: 5 written, 0 already done in ", out:match("^(.- in )"))
    assert.matches("images in " .. tmp:gsub("%p", "%%%0") .. ", manifest .*manifest.csv\n$", out)
    local rows = recipes.manifest(tmp .. "/manifest.csv")
    assert.equal(5, #rows)
    assert.equal("serial,image,size,sha256,keys,DeviceSecret\r", helper.lines(tmp .. "/manifest.csv")[1])
    -- It holds the exported secrets: owner-only, like keys files.
    assert.equal("rw-------", require("lfs").attributes(tmp .. "/manifest.csv", "permissions"))
    for i, row in ipairs(rows) do
      local image = helper.read(tmp .. "/" .. row.image)
      assert.equal(tostring(999 + i), row.serial)
      assert.equal("unit-" .. row.serial .. ".bin", row.image)
      assert.equal(tostring(#image), row.size)
      assert.equal(crypto.sha256_hex(image), row.sha256)
      assert.equal("", row.keys)
      assert.matches("^%x+$", row.DeviceSecret)
      assert.equal(32, #row.DeviceSecret)
      assert.truthy(image:find(row.DeviceSecret, 1, true))
      assert.truthy(image:find("NVSGEN-DEMO-00" .. row.serial, 1, true))
    end
    assert.same({ "manifest.csv", "unit-1000.bin", "unit-1001.bin", "unit-1002.bin", "unit-1003.bin",
      "unit-1004.bin" }, files(tmp))
  end)

  it("names units by the pattern as string.format does, plain %d made in C", function()
    local core = require("nvsgen.core")
    assert.equal("unit-1234.bin", core.decimal_name("unit-", 1234, ".bin"))
    assert.equal("-9223372036854775808", core.decimal_name("", math.mininteger, ""))
    assert.equal("a0b", core.decimal_name("a", 0, "b"))
    local long = ("x"):rep(300)
    assert.equal(long .. "77" .. long, core.decimal_name(long, 77, long))
    local cases = {
      { "n%d.bin", { "n98.bin", "n99.bin", "n100.bin" } },
      { "%d.bin", { "98.bin", "99.bin", "100.bin" } },
      { "n%05d.bin", { "n00098.bin", "n00099.bin", "n00100.bin" } },
      { "n%d%%.bin", { "n98%.bin", "n99%.bin", "n100%.bin" } },
      { "n%x.bin", { "n62.bin", "n63.bin", "n64.bin" } },
    }
    for i, case in ipairs(cases) do
      local out = tmp .. "/" .. i
      local status, _, err = recipes.run(GEN, { "--serial-range", "98-100", "--outdir", out, "--name", case[1] })
      assert.equal(0, status, err)
      local names = {}
      for _, row in ipairs(recipes.manifest(out .. "/manifest.csv")) do names[#names + 1] = row.image end
      assert.same(case[2], names)
      local all = { "manifest.csv", table.unpack(case[2]) }
      table.sort(all)
      assert.same(all, files(out))
    end
  end)

  it("refuses to overwrite an image it did not record, and --force redoes it", function()
    helper.write(tmp .. "/unit-2.bin", "mine")
    local status, _, err = recipes.run(GEN, { "--serial-range", "1-3", "--outdir", tmp })
    assert.equal(1, status)
    assert.equal(("recipe: unit 2: %s/unit-2.bin already exists and is not in manifest.csv;"
      .. " use --force to overwrite it\n"):format(tmp), err)
    assert.equal("mine", helper.read(tmp .. "/unit-2.bin"))
    -- Unit 1 was made and recorded before the refusal.
    assert.equal(1, #recipes.manifest(tmp .. "/manifest.csv"))
    status, _, err = recipes.run(GEN, { "--serial-range", "1-3", "--outdir", tmp, "--force" })
    assert.equal(0, status, err)
    local rows = recipes.manifest(tmp .. "/manifest.csv")
    assert.same({ "1", "2", "3" }, { rows[1].serial, rows[2].serial, rows[3].serial })
    assert.equal(3, #rows)
    assert.equal(rows[2].sha256, crypto.sha256_hex(helper.read(tmp .. "/unit-2.bin")))
  end)

  it("skips finished units when run again", function()
    assert.equal(0, (recipes.run(GEN, { "--serial-range", "1-3", "--outdir", tmp })))
    local before = helper.read(tmp .. "/manifest.csv")
    local status, out = recipes.run(GEN, { "--serial-range", "1-5", "--outdir", tmp })
    assert.equal(0, status)
    assert.matches("5 units: 2 written, 3 already done", out)
    local after = helper.read(tmp .. "/manifest.csv")
    assert.equal(before, after:sub(1, #before))
    assert.equal(5, #recipes.manifest(tmp .. "/manifest.csv"))
  end)

  it("resumes after a kill: pending image, cut manifest line, temporary files", function()
    assert.equal(0, (recipes.run(GEN, { "--serial-range", "1-6", "--outdir", tmp })))
    local rows = recipes.manifest(tmp .. "/manifest.csv")
    local lines = helper.lines(tmp .. "/manifest.csv")
    -- The state a kill can leave: unit 4 recorded but not yet renamed,
    -- unit 5 written under its pending name with half its manifest line,
    -- unit 6 not recorded (a stale pending file), a temporary file of an
    -- atomic write.
    os.rename(tmp .. "/unit-4.bin", tmp .. "/unit-4.bin.part")
    os.rename(tmp .. "/unit-5.bin", tmp .. "/unit-5.bin.part")
    os.remove(tmp .. "/unit-6.bin")
    helper.write(tmp .. "/unit-6.bin.part", "half an ima")
    helper.write(tmp .. "/unit-6-keys.bin.tmp-Ab12Cd", "junk")
    helper.write(tmp .. "/manifest.csv", table.concat(lines, "\n", 1, 5) .. "\n" .. lines[6]:sub(1, 20))
    local image4 = helper.read(tmp .. "/unit-4.bin.part")
    local status, out, err = recipes.run(GEN, { "--serial-range", "1-6", "--outdir", tmp })
    assert.equal(0, status, err)
    assert.matches("6 units: 2 written, 4 already done %(1 completed%)", out)
    assert.same({ "manifest.csv", "unit-1.bin", "unit-2.bin", "unit-3.bin", "unit-4.bin", "unit-5.bin",
      "unit-6.bin" }, files(tmp))
    assert.equal(image4, helper.read(tmp .. "/unit-4.bin"))
    local again = recipes.manifest(tmp .. "/manifest.csv")
    assert.equal(6, #again)
    for i = 1, 4 do assert.same(rows[i], again[i]) end
    for _, row in ipairs(again) do
      assert.equal(row.sha256, crypto.sha256_hex(helper.read(tmp .. "/" .. row.image)))
    end
  end)

  it("refuses a recorded unit whose image is gone", function()
    assert.equal(0, (recipes.run(GEN, { "--serial-range", "1-2", "--outdir", tmp })))
    os.remove(tmp .. "/unit-2.bin")
    local status, _, err = recipes.run(GEN, { "--serial-range", "1-2", "--outdir", tmp })
    assert.equal(1, status)
    assert.equal(("recipe: unit 2: recorded in manifest.csv but %s/unit-2.bin is missing;"
      .. " use --force to build it again\n"):format(tmp), err)
  end)

  it("records only the declared exports", function()
    local r = recipe.define{ size = 0x3000, exports = { "A" }, unit = function(u)
      u:export("A", 1)
      if u.serial == 2 then u:export("B", "x") end
    end }
    local status, _, err = recipes.run(r, { "--serial-range", "1-2", "--outdir", tmp })
    assert.equal(1, status)
    assert.equal(("recipe: unit 2: export 'B' is not a column of %s/manifest.csv (columns: A)\n"):format(tmp), err)
    local rows = recipes.manifest(tmp .. "/manifest.csv")
    assert.same({ "1", "1" }, { rows[1].serial, rows[1].A })
    assert.equal(1, #rows)
    -- The refused unit left no file.
    assert.same({ "manifest.csv", "unit-1.bin" }, files(tmp))
  end)

  it("quotes manifest fields that need it, names and exported values alike", function()
    local r = recipe.define{ size = 0x3000, exports = { "A", "B" }, unit = function(u)
      u:export("A", u.serial == 2 and 'say "hi", twice' or "plain")
      u:export("B", u.serial == 3 and "two\nlines" or u.serial)
    end }
    local status, _, err = recipes.run(r, { "--serial-range", "1-3", "--outdir", tmp })
    assert.equal(0, status, err)
    local text = helper.read(tmp .. "/manifest.csv")
    local sha = "%x+"
    local lines = {}
    for line in text:gmatch("[^\n]*\n") do lines[#lines + 1] = line end
    assert.equal("serial,image,size,sha256,keys,A,B\r\n", lines[1])
    assert.matches("^1,unit%-1%.bin,12288," .. sha .. ",,plain,1\r\n$", lines[2])
    assert.matches('^2,unit%-2%.bin,12288,' .. sha .. ',,"say ""hi"", twice",2\r\n$', lines[3])
    assert.matches('^3,unit%-3%.bin,12288,' .. sha .. ',,plain,"two\n$', lines[4])
    assert.equal('lines"\r\n', lines[5])
    status, _, err = recipes.run(r, { "--serial-range", "1", "--outdir", tmp .. "/n", "--name", "u,%d.bin" })
    assert.equal(0, status, err)
    assert.matches('\r\n1,"u,1%.bin",12288,' .. sha .. ',,plain,1\r\n$', helper.read(tmp .. "/n/manifest.csv"))
  end)

  it("records exports longer than a buffer's first kilobyte whole (a PEM certificate's)", function()
    -- In a process of its own: the record was once built with the stack
    -- unbalanced, which a long field turned into a crash or garbage.
    local script = tmp .. "/long.lua"
    recipes.script(script, [[
return require("nvsgen.recipe").run{
  size = 0x3000, exports = { "A", "N", "B" },
  unit = function(u)
    u:namespace("n"):u32("s", u.serial)
    u:export("A", string.rep(string.char(96 + u.serial), 1500))
    u:export("N", u.serial + 0.5)
    u:export("B", string.rep('say "x",\n', 200) .. u.serial)
  end,
}
]])
    for _, jobs in ipairs({ "1", "2" }) do
      local out = tmp .. "/o" .. jobs
      local p = io.popen(("lua5.4 %s --serial-range 1-4 --jobs %s --outdir %s 2>&1"):format(script, jobs, out))
      local said = p:read("a")
      assert.is_true(p:close(), said)
      local expected = { "serial,image,size,sha256,keys,A,N,B\r\n" }
      for serial = 1, 4 do
        local image = ("unit-%d.bin"):format(serial)
        expected[#expected + 1] = ('%d,%s,12288,%s,,%s,%d.5,"%s%d"\r\n'):format(serial, image,
          crypto.sha256_hex(helper.read(out .. "/" .. image)), string.rep(string.char(96 + serial), 1500),
          serial, string.rep('say ""x"",\n', 200), serial)
      end
      assert.equal(table.concat(expected), helper.read(out .. "/manifest.csv"))
    end
  end)

  it("writes nothing on a dry run", function()
    local status, out = recipes.run(GEN, { "--serial-range", "1-4", "--outdir", tmp .. "/o", "--dry-run" })
    assert.equal(0, status)
    assert.matches("^recipe: dry run: 4 units built in .* nothing written; first image would be "
      .. tmp:gsub("%p", "%%%0") .. "/o/unit%-1%.bin\n$", out)
    assert.is_false(helper.exists(tmp .. "/o"))
  end)

  it("writes CSVs that nvs_partition_gen turns into the same images", function()
    local r = recipe.define{ size = 0x4000, version = 1, name = "u%03d.bin", unit = function(u)
      u:namespace("mass_prod")
      u:string("Quote", 'say "hi", then\nleave')
      u:string("Empty", "")
      u:u8("A", 255):i8("B", -128):u16("C", 65535):i16("D", -32768)
      u:u32("E", u.serial):i32("F", -2147483648):u64("G", "18446744073709551615")
      u:i64("H", math.mininteger)
      u:blob("Blob", ("\0\255"):rep(700))
      u:blob("Nothing", "")
      u:namespace("other")
      u:string("K", "value, with comma")
    end }
    local status, _, err = recipes.run(r, { "--serial-range", "7-8", "--outdir", tmp, "--csv" })
    assert.equal(0, status, err)
    local text = helper.read(tmp .. "/u007.csv")
    assert.equal("# nvs_partition_gen generate u007.csv u007.bin 0x4000 --version 1\r\n"
      .. "key,type,encoding,value\r\nmass_prod,namespace,,\r\n", text:sub(1, 115))
    assert.truthy(text:find('Quote,data,string,"say ""hi"", then\nleave"\r\n', 1, true))
    for _, n in ipairs({ "007", "008" }) do
      assert.equal(helper.read(tmp .. "/u" .. n .. ".bin"),
        recipes.regenerate(tmp, "u" .. n .. ".csv", "0x4000", nil, { "--version", "1" }))
    end
  end)

  it("refuses strings a CSV cannot carry", function()
    local function csv_error(value)
      local r = recipe.define{ size = 0x3000, unit = function(u) u:namespace("n"); u:string("S", value) end }
      local _, _, err = recipes.run(r, { "--serial-range", "1", "--outdir", tmp, "--csv", "--force" })
      return err
    end
    assert.equal("recipe: unit 1: key 'S': string holds a carriage return, CSV cannot keep it\n",
      csv_error("a\r\nb"))
    assert.equal("recipe: unit 1: key 'S': string has a line starting with '#', CSV would drop it\n",
      csv_error("a\n# b"))
    assert.equal("recipe: unit 1: key 'S': string is not valid UTF-8, CSV cannot hold it\n",
      csv_error("\255"))
    assert.same({ "manifest.csv" }, files(tmp))
  end)

  it("encrypts with a key per unit, keys files 0600 beside the images", function()
    local status, out, err = recipes.run(GEN, { "--serial-range", "1-2", "--outdir", tmp, "--encrypt",
      "--keygen", "--csv" })
    assert.equal(0, status, err)
    assert.matches("encrypted images in", out)
    local rows = recipes.manifest(tmp .. "/manifest.csv")
    assert.equal("unit-1-keys.bin", rows[1].keys)
    assert.equal("rw-------", lfs.attributes(tmp .. "/unit-1-keys.bin", "permissions"))
    local k1, k2 = helper.read(tmp .. "/unit-1-keys.bin"), helper.read(tmp .. "/unit-2-keys.bin")
    assert.equal(4096, #k1)
    assert.not_equal(k1, k2)
    local image = helper.read(tmp .. "/unit-1.bin")
    assert.falsy(image:find(rows[1].DeviceSecret, 1, true))
    assert.equal(image, recipes.regenerate(tmp, "unit-1.csv", "0x6000", "unit-1-keys.bin"))
  end)

  it("encrypts every unit with one --inputkey", function()
    local key = crypto.generate_key()
    assert(crypto.write_keys(tmp .. "/k.bin", key))
    local status, _, err = recipes.run(GEN, { "--serial-range", "1-2", "--outdir", tmp .. "/o", "--encrypt",
      "--inputkey", tmp .. "/k.bin", "--csv" })
    assert.equal(0, status, err)
    local rows = recipes.manifest(tmp .. "/o/manifest.csv")
    assert.equal(tmp .. "/k.bin", rows[2].keys)
    assert.equal(helper.read(tmp .. "/o/unit-2.bin"),
      recipes.regenerate(tmp .. "/o", "unit-2.csv", "0x6000", tmp .. "/k.bin"))
  end)

  it("takes size and offset from a partition table", function()
    helper.write(tmp .. "/partitions.csv",
      "# Name, Type, SubType, Offset, Size\nnvs,data,nvs,,0x4000\nfctry,data,nvs,,24K\n")
    local status, out, err = recipes.run(GEN, { "--serial-range", "3-4", "--outdir", tmp .. "/o",
      "--partition-table", tmp .. "/partitions.csv", "--partition", "fctry" })
    assert.equal(0, status, err)
    assert.matches("\nflash a unit: esptool.py write_flash 0xD000 " .. tmp:gsub("%p", "%%%0")
      .. "/o/unit%-3%.bin\n$", out)
    assert.equal(0x6000, #helper.read(tmp .. "/o/unit-3.bin"))
    local status2, _, err2 = recipes.run(GEN, { "--serial-range", "3", "--outdir", tmp .. "/o",
      "--partition-table", tmp .. "/partitions.csv", "--size", "0x3000" })
    assert.equal(2, status2)
    assert.matches("recipe: %-%-size 0x3000 differs from partition 'nvs' %(0x4000%) in", err2)
  end)

  it("refuses a partition that is not data,nvs, and writes nothing", function()
    helper.write(tmp .. "/partitions.csv", "nvs,data,nvs,,0x4000\nfactory,app,factory,,1M\n"
      .. "keys,data,nvs_keys,,0x1000\n")
    for _, case in ipairs({ { 2, "factory", "app,factory" }, { 3, "keys", "data,nvs_keys" } }) do
      local line, name, kind = case[1], case[2], case[3]
      local status, _, err = recipes.run(GEN, { "--serial-range", "1", "--outdir", tmp .. "/o",
        "--partition-table", tmp .. "/partitions.csv", "--partition", name })
      -- A bad table is bad input, not a bad command line: one line, status 1.
      assert.equal(1, status)
      assert.equal(("recipe: %s/partitions.csv:%d: partition '%s' is %s; NVS images need a data,nvs partition\n")
        :format(tmp, line, name, kind), err)
    end
    assert.is_nil(lfs.attributes(tmp .. "/o"))
  end)

  it("checks its command line", function()
    local function usage_error(argv)
      local status, _, err = recipes.run(GEN, argv)
      assert.equal(2, status)
      return err:match("\n(.*)\n$")
    end
    assert.equal("recipe: the following arguments are required: --serial-range", usage_error({}))
    assert.equal("recipe: --encrypt needs one of --keygen or --inputkey",
      usage_error({ "--serial-range", "1", "--encrypt" }))
    assert.equal("recipe: --keygen needs --encrypt", usage_error({ "--serial-range", "1", "--keygen" }))
    assert.equal("recipe: size 0x6001 is not a multiple of 4096",
      usage_error({ "--serial-range", "1", "--size", "0x6001" }))
    assert.equal("recipe: --partition needs --partition-table",
      usage_error({ "--serial-range", "1", "--partition", "nvs" }))
    assert.equal("recipe: --jobs 0: expected a number from 1 to 64",
      usage_error({ "--serial-range", "1", "--jobs", "0" }))
    assert.equal("recipe: --shard: expected K/N or K/N/new",
      usage_error({ "--serial-range", "1", "--shard", "3/2" }))
    assert.equal("recipe: invalid serial range '1-2-3': expected A-B or A,B,C",
      usage_error({ "--serial-range", "1-2-3" }))
    local status, _, err = recipes.run(GEN, { "--serial-range", "1", "--name", "fixed.bin", "--outdir", tmp })
    assert.equal(1, status)
    assert.equal("recipe: name pattern 'fixed.bin' must hold one %d (or %05d, ...) for the serial\n", err)
    local out
    status, out = recipes.run(GEN, { "--help" })
    assert.equal(0, status)
    assert.matches("%-%-serial%-range", out)
    assert.matches("%-%-inputkey KEYS.bin", out)
  end)

  it("shares a large batch between worker processes", function()
    -- What the batch's processes do, seen from inside: a script every Lua
    -- interpreter of the batch runs first (LUA_INIT_5_4). In the main
    -- process it wraps io.popen: once a worker is started, the main
    -- process waits for it to take a chunk of units (so that a worker slow
    -- to start on a busy machine still gets a share, whatever the timing),
    -- and when it reads the worker's report (the worker has ended, every
    -- chunk is taken) it logs the report and who took which chunk.
    local aux = helper.tmpdir()
    helper.write(aux .. "/init.lua", ([[
local chunk_file, log = %q, %q
for i = 1, #arg do if arg[i] == "--shard" then return end end
local popen = io.popen
local function owners()
  local f = io.open(chunk_file, "rb")
  local taken = f and f:read("a") or ""
  if f then f:close() end
  return (taken:gsub(".", function(c) return tostring(c:byte()) end))
end
io.popen = function(command, mode)
  local worker = popen(command, mode)
  if not command:find("--shard", 1, true) then return worker end
  local deadline = os.time() + 60
  while not owners():find("2", 1, true) and os.time() <= deadline do os.execute("sleep 0.01") end
  return setmetatable({}, { __index = {
    read = function(_, ...)
      local text = worker:read(...)
      local f = assert(io.open(log, "a"))
      f:write(owners(), "\n", text or "")
      f:close()
      return text
    end,
    close = function() return worker:close() end,
  } })
end
]]):format(tmp .. "/" .. batch.LOCK, aux .. "/log"))
    local cmd = ("cd %s && LUA_INIT_5_4=@%s/init.lua lua5.4 gen.lua --serial-range 1-1200 --outdir %s --jobs 2 2>&1")
      :format(helper.ROOT, aux, tmp)
    local p = io.popen(cmd)
    local out = p:read("a")
    assert.is_true(p:close(), out)
    assert.matches("1200 units: 1200 written, 0 already done", out)
    local rows = recipes.manifest(tmp .. "/manifest.csv")
    assert.equal(1200, #rows)
    local seen = {}
    for _, row in ipairs(rows) do
      assert.is_nil(seen[row.serial])
      seen[row.serial] = true
    end
    assert.equal(1201, #files(tmp))
    -- One worker was started, and it and the main process each made a
    -- share: the 38 chunks of 32 units (the last of 16) were taken by both
    -- (a process finding none left takes one more), and the worker reports
    -- the units of its chunks as written.
    local log = helper.read(aux .. "/log")
    helper.cleanup(aux)
    assert.is_not_nil(log, "the main process started no worker")
    local owners, report = log:match("^([12]+)\n(shard [^\n]*\n)$")
    assert.is_not_nil(owners, log)
    assert.is_true(#owners >= 38 and #owners <= 40, owners)
    local made = { 0, 0 }
    for chunk = 1, 38 do
      local process = tonumber(owners:sub(chunk, chunk))
      made[process] = made[process] + (chunk == 38 and 16 or 32)
    end
    assert.is_true(made[1] > 0, "the main process made no unit: " .. owners)
    assert.is_true(made[2] > 0, "the worker made no unit: " .. owners)
    assert.equal(("shard %d 0 0\n"):format(made[2]), report)
  end)

  for _, case in ipairs({ { "the batch and its worker", "-" }, { "only the main process", "" } }) do
    it("completes a batch after a SIGKILL of " .. case[1] .. ", images and manifest agreeing", function()
      -- gen.lua's units, each taking 2 ms more: the batch lasts well past
      -- its first commit (half a second in), so the kill below lands in
      -- its middle however fast or loaded the machine is.
      local dir = helper.tmpdir()
      local slow = recipes.script(dir .. "/slow.lua", ([[
local sleep = require("system").sleep
local recipe = require("nvsgen.recipe")
return recipe.run(recipe.load(%q):extend{ unit = function() sleep(0.002) end })
]]):format(helper.ROOT .. "/gen.lua"))
      finally(function() helper.cleanup(dir) end)
      local run = ("cd %s && exec lua5.4 %s --serial-range 1-1500 --outdir %s"):format(helper.ROOT, slow, tmp)
      -- The batch in a process group of its own, killed once some units
      -- are recorded; a worker left alone stops by itself, and the rerun
      -- waits for it on the folder's lock.
      assert(os.execute(("setsid sh -c '%s' >/dev/null 2>&1 & pid=$!; i=0; while [ $i -lt 500 ]; do"
        .. " [ $(cat %s/manifest.csv 2>/dev/null | wc -l) -gt 100 ] && break; sleep 0.02; i=$((i+1)); done;"
        .. " kill -9 %s$pid"):format(run, tmp, case[2])))
      local p = io.popen(run .. " 2>&1")
      local out = p:read("a")
      assert.is_true(p:close(), out)
      assert.matches("1500 units: %d+ written, [1-9]%d* already done", out)
      local rows = recipes.manifest(tmp .. "/manifest.csv")
      assert.equal(1500, #rows)
      local seen = {}
      for _, row in ipairs(rows) do
        assert.is_nil(seen[row.serial])
        seen[row.serial] = true
        assert.equal(row.sha256, crypto.sha256_hex(helper.read(tmp .. "/" .. row.image)))
      end
      local names = files(tmp)
      assert.equal(1501, #names)
      for _, name in ipairs(names) do
        if name ~= "manifest.csv" then assert.matches("^unit%-%d+%.bin$", name) end
      end
    end)
  end
end)
