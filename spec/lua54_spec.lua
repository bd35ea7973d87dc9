--- Recipes started by another Lua (`lua gen.lua ...` where `lua` is Lua 5.1,
-- as on Debian once busted is installed) go on under Lua 5.4: nvsgen.lua54.
local h = require("spec.support.helper")
local recipes = require("spec.support.recipes")
local nvsgen = require("nvsgen")

local ROOT = h.ROOT

-- Runs a shell command; returns its exit status and what it printed on
-- stdout and stderr.
local function sh(command, dir)
  local out, err = os.tmpname(), os.tmpname()
  local ok, how, code = os.execute(("cd %q && %s >%q 2>%q"):format(dir, command, out, err))
  local status = how == "exit" and code or 128 + code
  local o, e = h.read(out), h.read(err)
  os.remove(out); os.remove(err)
  return ok and 0 or status, o, e
end

local function installed(program)
  return os.execute(("command -v %s >/dev/null 2>&1"):format(program)) == true
end

-- The units of a batch folder: its manifest rows, each image read back.
local function units(dir)
  local list = {}
  for _, row in ipairs(recipes.manifest(dir .. "/manifest.csv")) do
    local r = assert(nvsgen.read(dir .. "/" .. row.image))
    list[#list + 1] = { serial = row.serial, image = row.image, size = row.size, ns = r.namespaces }
  end
  return list
end

describe("a recipe run by another Lua", function()
  local tmp
  before_each(function() tmp = h.tmpdir() end)
  after_each(function() h.cleanup(tmp) end)

  it("nvsgen/recipe.lua and nvsgen/lua54.lua are read by Lua 5.1", function()
    if not installed("lua5.1") then pending("lua5.1 is not installed") return end
    for _, file in ipairs({ "lua/nvsgen/recipe.lua", "lua/nvsgen/lua54.lua", "gen.lua" }) do
      local status, _, err = sh(("lua5.1 -e 'assert(loadfile(%q))'"):format(ROOT .. "/" .. file), tmp)
      assert.are.equal("", err)
      assert.are.equal(0, status)
    end
  end)

  for _, lua in ipairs({ "lua5.1", "lua5.2", "lua5.3" }) do
    it(lua .. " gen.lua writes the same batch as lua5.4", function()
      if not installed(lua) then pending(lua .. " is not installed") return end
      local status, out, err = sh(("%s %q --serial-range 1-3 --outdir old"):format(lua, ROOT .. "/gen.lua"), tmp)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.matches("^gen%.lua: 3 units: 3 written, 0 already done in ", out)
      status, _, err = sh(("lua5.4 %q --serial-range 1-3 --outdir new"):format(ROOT .. "/gen.lua"), tmp)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      local old, new = units(tmp .. "/old"), units(tmp .. "/new")
      assert.are.equal(3, #old)
      for i, unit in ipairs(old) do
        -- The secret is random: the rest is the same.
        assert.are.equal(32, #unit.ns.mass_prod.DeviceSecret)
        unit.ns.mass_prod.DeviceSecret, new[i].ns.mass_prod.DeviceSecret = nil, nil
        assert.are.same(new[i], unit)
      end
    end)
  end

  it("a recipe as the README writes it, found through LUA_PATH, passes on its exit status", function()
    if not installed("lua5.1") then pending("lua5.1 is not installed") return end
    h.write(tmp .. "/my_recipe.lua", table.concat({
      'local recipe = require("nvsgen.recipe")',
      "return recipe.run{",
      '  size = 0x3000, name = "u-%d.bin",',
      '  unit = function(u) u:namespace("n"); u:u32("serial", u.serial) end,',
      "}", "" }, "\n"))
    local env = ("LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH='%s/build/?.so;;'"):format(ROOT, ROOT, ROOT)
    local status, _, err = sh(env .. " lua5.1 my_recipe.lua --serial-range 5-6 --outdir out", tmp)
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.same({ { n = { serial = 5 } }, { n = { serial = 6 } } },
      { units(tmp .. "/out")[1].ns, units(tmp .. "/out")[2].ns })
    -- A usage error keeps its status (2) through the second interpreter.
    status, _, err = sh(env .. " lua5.1 my_recipe.lua --serial-range 1-2 --size 0x3001", tmp)
    assert.are.equal(2, status)
    assert.are.equal("my_recipe.lua: size 0x3001 is not a multiple of 4096\n", err:match("[^\n]*\n$"))
  end)

  it("the command-line scripts and examples/demo.lua started by lua5.1 go on under lua5.4", function()
    if not installed("lua5.1") then pending("lua5.1 is not installed") return end
    for _, script in ipairs({ "bin/nvs_partition_gen.lua", "bin/mfg_gen.lua", "bin/nvs_tool.lua" }) do
      local status, out, err = sh(("lua5.1 %q -h"):format(ROOT .. "/" .. script), tmp)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.matches("^usage: ", out)
    end
    local status, out, err = sh(("lua5.1 %q generate %q 'my out.bin' 0x6000"):format(
      ROOT .. "/bin/nvs_partition_gen.lua", ROOT .. "/spec/fixtures/mass_prod/mass_prod.csv"), tmp)
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal("Creating NVS binary with version: V2 - Multipage Blob Support Enabled\n"
      .. "Created NVS binary: ===> my out.bin\n", out)
    assert.are.equal(h.read(ROOT .. "/spec/fixtures/mass_prod/expected.bin"), h.read(tmp .. "/my out.bin"))
    status, out, err = sh(("lua5.1 %q"):format(ROOT .. "/examples/demo.lua"), tmp)
    assert.are.equal(0, status, err)
    assert.matches("demo: image written to demo%-out/sample%.bin\n$", out)
  end)

  it("ends lua5.4 when the lua5.1 that started it is killed alone #slow", function()
    if not installed("lua5.1") then pending("lua5.1 is not installed") return end
    -- SIGTERM to the first interpreter only (a supervisor stopping it), not
    -- to its process group as Ctrl-C at a terminal would.
    local status, out = sh(table.concat({
      "{",
      ("lua5.1 %q --serial-range 1-1000000 --outdir out --jobs 1 >/dev/null 2>&1 & p=$!"):format(ROOT .. "/gen.lua"),
      "i=0; while [ ! -e out/unit-1.bin ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
      "c=$(env -u LD_PRELOAD pgrep -P $p); kill -TERM $p; wait $p; echo \"first $?\"",
      "i=0; while kill -0 $c 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done",
      "if kill -0 $c 2>/dev/null; then kill -TERM $c; echo 'lua5.4 still runs'; else echo 'lua5.4 ended'; fi",
      "}",
    }, "\n"), tmp)
    assert.are.equal(0, status)
    assert.are.equal("first 143\nlua5.4 ended\n", out)
  end)

  it("says so when Lua 5.4 finds the installed 5.1-5.3 starter through LUA_PATH", function()
    -- make install's copy of nvsgen/lua54.lua as share/lua/5.1/nvsgen/recipe.lua.
    assert(require("lfs").mkdir(tmp .. "/5.1"))
    assert(require("lfs").mkdir(tmp .. "/5.1/nvsgen"))
    h.write(tmp .. "/5.1/nvsgen/recipe.lua", h.read(ROOT .. "/lua/nvsgen/lua54.lua"))
    h.write(tmp .. "/r.lua", 'return require("nvsgen.recipe").run{ size = 0x3000, unit = function() end }\n')
    local status, out, err = sh(("LUA_PATH='%s/5.1/?.lua;;' lua5.4 r.lua --serial-range 1 --outdir out")
      :format(tmp), tmp)
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.are.equal(("r.lua: %s/5.1/nvsgen/recipe.lua is the Lua 5.1-5.3 starter of nvsgen.recipe, found by Lua 5.4"
      .. " through LUA_PATH; point LUA_PATH_5_4 (or LUA_PATH) at nvsgen's Lua 5.4 modules\n"):format(tmp), err)
  end)

  it("says what to install, exit status 1, where no Lua 5.4 is on the PATH", function()
    if not installed("lua5.1") then pending("lua5.1 is not installed") return end
    -- A PATH holding only a `lua` that is 5.1.
    local bin = tmp .. "/bin"
    assert(require("lfs").mkdir(bin))
    assert(os.execute(("ln -s \"$(command -v lua5.1)\" %q"):format(bin .. "/lua")))
    local status, out, err = sh(("PATH=%q lua %q --serial-range 1-3 --outdir out"):format(bin, ROOT .. "/gen.lua"), tmp)
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.are.equal("gen.lua: this is Lua 5.1 and nvsgen needs Lua 5.4: apt-get install lua5.4\n", err)
    assert.is_false(h.exists(tmp .. "/out"))
  end)
end)
