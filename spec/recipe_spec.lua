-- nvsgen.recipe: defining, extending and loading recipes; the unit API.
local helper = require("spec.support.helper")
local recipes = require("spec.support.recipes")
local recipe = require("nvsgen.recipe")
local batch = require("nvsgen.batch")
local nvsgen = require("nvsgen")

-- Runs `r` for `range` as a dry run; returns the summary or nil, message.
local function dry(r, range)
  return batch.run{ recipe = r, serials = assert(batch.serials(range or "1-3")), dry_run = true }
end

describe("recipe", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  it("rejects unknown and mistyped fields", function()
    assert.has_error(function() recipe.define{ unit = function() end, sise = 0x6000 } end,
      "recipe.define: unknown field 'sise'")
    assert.has_error(function() recipe.define{ unit = function() end, size = "big" } end,
      "recipe.define: field 'size' must be a number, got string")
    assert.has_error(function() recipe.define{ size = 0x6000 } end,
      "recipe.define: field 'unit' (a function) is required")
    assert.has_error(function() recipe.define{ unit = function() end, encrypt = "yes" } end,
      "recipe.define: field 'encrypt' must be \"keygen\" (a key per unit)")
  end)

  it("builds the same image as the partition API", function()
    local r = recipe.define{ size = 0x3000, unit = function(u)
      u:namespace("ns")
      u:string("Name", "unit-" .. u.serial)
      u:u32("Serial", u.serial)
      u:i8("Trim", -3)
      u:u64("Big", "18446744073709551615")
      u:blob("Raw", "\1\2\3")
    end }
    assert(batch.run{ recipe = r, serials = batch.serials("7"), outdir = tmp })
    local p = nvsgen.partition{ size = 0x3000 }
    p:namespace("ns"):string("Name", "unit-7"):u32("Serial", 7):i8("Trim", -3)
    p:u64("Big", "18446744073709551615"):blob("Raw", "\1\2\3")
    assert.equal(p:image(), helper.read(tmp .. "/unit-7.bin"))
  end)

  it("runs in a coroutine whose unit functions yield (an application handing each unit a value)", function()
    local r = recipe.define{ size = 0x3000, unit = function(u)
      u:namespace("n"):u32("v", coroutine.yield(u.serial))
    end }
    local run = coroutine.wrap(function()
      return "done", batch.run{ recipe = r, serials = batch.serials("1-3"), outdir = tmp }
    end)
    local asked = {}
    local what, summary, err = run()
    while what ~= "done" do
      asked[#asked + 1] = what
      what, summary, err = run(what * 10)
    end
    assert.is_table(summary, err)
    assert.same({ 1, 2, 3 }, asked)
    assert.equal(3, summary.written)
    local p = nvsgen.partition{ size = 0x3000 }
    p:namespace("n"):u32("v", 20)
    assert.equal(p:image(), helper.read(tmp .. "/unit-2.bin"))
  end)

  it("names the unit whose function raises after it yielded, in a coroutine", function()
    local r = recipe.define{ size = 0x3000, unit = function(u)
      local v = coroutine.yield(u.serial)
      if u.serial == 2 then error("no value for 2", 0) end
      u:namespace("n"):u32("v", v)
    end }
    local run = coroutine.wrap(function()
      return "done", batch.run{ recipe = r, serials = batch.serials("1-3"), outdir = tmp }
    end)
    local what, summary, err = run()
    while what ~= "done" do what, summary, err = run(what) end
    assert.is_nil(summary)
    assert.equal("unit 2: no value for 2", err)
    assert.is_nil(helper.read(tmp .. "/unit-2.bin"))
  end)

  it("places an item's mistake at the recipe's line that wrote it", function()
    local line
    local _, err = dry(recipe.define{ size = 0x3000, unit = function(u)
      u:namespace("ns")
      line = debug.getinfo(1, "l").currentline + 1
      u:u8("Count", 256)
    end }, "5")
    assert.equal(("unit 5: spec/recipe_spec.lua:%d: key 'Count': 256 out of range for u8 (0 to 255)"):format(line),
      (err:gsub("^unit 5: .-(spec/recipe_spec%.lua)", "unit 5: %1")))
    _, err = dry(recipe.define{ size = 0x3000, unit = function(u)
      line = debug.getinfo(1, "l").currentline + 1
      u:string(7, "x")
    end }, "5")
    assert.equal(("unit 5: spec/recipe_spec.lua:%d: string: key must be a string, got number"):format(line),
      (err:gsub("^unit 5: .-(spec/recipe_spec%.lua)", "unit 5: %1")))
  end)

  it("tells a setter called with '.' for ':', and a key with a NUL byte, as before", function()
    local cases = {
      -- u.u8(key, value): the key is taken for the unit, the value for the key.
      { function(u) u.u8("Volume", 5) end, "u8: key must be a string, got number" },
      { function(u) u.u8() end, "u8: key must be a string, got nil" },
      { function(u) u.string("Name", "x") end, "key 'x': string expects a string, got nil" },
      { function(u) u.u16("Name", "x", 5) end, "bad argument #1 to 'u16' (table expected, got string)" },
      { function(u) u:namespace("ns"); u:u8("a\0b", true) end, "key 'a\0b': u8 expects an integer, got boolean" },
    }
    for _, case in ipairs(cases) do
      local _, err = dry(recipe.define{ size = 0x3000, unit = case[1] }, "5")
      assert.equal(case[2], err:match("^unit 5: .-spec/recipe_spec%.lua:%d+: (.*)$"))
    end
  end)

  it("refuses random counts no partition could hold, at the recipe's line", function()
    for _, call in ipairs({ "random_hex", "random_bytes" }) do
      for _, n in ipairs({ -1, 1.5, (1 << 30) + 1 }) do
        local line
        local _, err = dry(recipe.define{ size = 0x3000, unit = function(u)
          line = debug.getinfo(1, "l").currentline + 1
          u[call](u, n)
        end }, "3")
        assert.equal(("unit 3: spec/recipe_spec.lua:%d: %s: an integer count from 0 to 1073741824 expected")
          :format(line, call), (err:gsub("^unit 3: .-(spec/recipe_spec%.lua)", "unit 3: %1")))
      end
    end
  end)

  it("names the unit and the key in a recipe's mistakes", function()
    local function fails(unit)
      local _, err = dry(recipe.define{ size = 0x3000, unit = unit }, "41-42")
      return (err:gsub("[^%s]*recipe_spec%.lua:%d+: ", ""))
    end
    assert.equal("unit 41: key 'Name': string expects a string, got nil",
      fails(function(u) u:namespace("ns"); u:string("Name", nil) end))
    assert.equal("unit 41: key 'Count': u8 expects an integer, got table",
      fails(function(u) u:namespace("ns"); u:u8("Count", {}) end))
    assert.equal("unit 41: key 'Count': 300 out of range for u8 (0 to 255)",
      fails(function(u) u:namespace("ns"); u:u8("Count", 300) end))
    assert.equal("unit 41: key 'Name' is already set in namespace 'ns'",
      fails(function(u) u:namespace("ns"); u:u8("Name", 1); u:u8("Name", 2) end))
    assert.equal("unit 41: key 'X': no namespace selected before it",
      fails(function(u) u:u8("X", 1) end))
    assert.equal("unit 41: key 'ThisKeyIsTooLong' is 16 bytes long, at most 15 are allowed",
      fails(function(u) u:namespace("ns"); u:u8("ThisKeyIsTooLong", 1) end))
    assert.equal("unit 42: key 'Name': string holds a NUL byte at 5; firmware would read only 'unit'",
      fails(function(u) u:namespace("ns"); u:string("Name", u.serial == 42 and "unit\0" or "unit") end))
    assert.equal("unit 42: boom",
      fails(function(u) if u.serial == 42 then error("boom", 0) end end))
    assert.equal("unit 41: cannot read file '/nonexistent/41.der': No such file or directory",
      fails(function(u) u:file("/nonexistent/" .. u.serial .. ".der") end))
    assert.equal("unit 41: export 'S' is set twice",
      fails(function(u) u:export("S", "a"); u:export("S", "b") end))
    assert.equal("unit 41: export: name must be a string",
      fails(function(u) u:export(7, "a") end))
    assert.equal("unit 41: export 'S': a string or number expected, got table",
      fails(function(u) u:export("S", {}) end))
    assert.equal("unit 41: namespace name must be a string, got number",
      fails(function(u) u:namespace(5) end))
    assert.equal("unit 41: namespace 'ThisNamespaceIsLong' is 19 bytes long, at most 15 are allowed",
      fails(function(u) u:namespace("ThisNamespaceIsLong") end))
    assert.equal("unit 41: no values row for serial 41 (value 'gain')",
      fails(function(u) u:value("gain") end))
  end)

  it("writes where u.encoder points, checking it again once it is not the encoder last checked", function()
    local core = require("nvsgen.core")
    local p = nvsgen.partition{ size = 0x3000 }
    local other = nvsgen.partition{ size = 0x3000 }
    local u = recipe.unit_context(recipe.define{ size = 0x3000, unit = function() end }, p, core.random_bytes)
    u:begin(1, 1, nil, true)
    u:namespace("ns"):u8("A", 1)
    u.encoder = other.encoder
    u:namespace("side"):u8("B", 2)
    u.encoder = p.encoder
    u:u8("C", 3)
    local want = nvsgen.partition{ size = 0x3000 }
    want:namespace("ns"):u8("A", 1):u8("C", 3)
    assert.equal(want:image(), p:image())
    local side = nvsgen.partition{ size = 0x3000 }
    side:namespace("side"):u8("B", 2)
    assert.equal(side:image(), other:image())
    assert.same({ { "ns", "namespace" }, { "A", "u8", 1 }, { "side", "namespace" }, { "B", "u8", 2 },
      { "C", "u8", 3 } }, u.rows)
    -- Another userdata, or none, right after the encoder was found; then a
    -- closed encoder: each told, nothing written.
    for _, wrong in ipairs({ io.stdout, "x", false }) do
      u.encoder = wrong
      assert.has_error(function() u:u8("D", 4) end, "the unit has no encoder")
    end
    u.encoder = other.encoder
    getmetatable(other.encoder).__close(other.encoder)
    assert.has_error(function() u:u8("D", 4) end, "the unit's encoder is closed")
    assert.equal(want:image(), p:image())
  end)

  it("checks the unit's encoder on every item, even the one it found just before", function()
    local core = require("nvsgen.core")
    local p = nvsgen.partition{ size = 0x3000 }
    local u = recipe.unit_context(recipe.define{ size = 0x3000, unit = function() end }, p, core.random_bytes)
    u:begin(1, 1, nil, true)
    u:namespace("ns"):u8("A", 1)
    -- The same userdata, no longer an encoder by its metatable (what a
    -- recipe may also do to the encoders' metatable, __gc removed, lets
    -- another userdata come to the freed encoder's address).
    local mt = debug.getmetatable(p.encoder)
    debug.setmetatable(p.encoder, nil)
    local ok, err = pcall(u.u8, u, "B", 2)
    debug.setmetatable(p.encoder, mt)
    assert.is_false(ok)
    assert.matches("the unit has no encoder$", err)
    local want = nvsgen.partition{ size = 0x3000 }
    want:namespace("ns"):u8("A", 1)
    assert.equal(want:image(), p:image())
  end)

  it("gives random hex digits of the length asked, different per unit", function()
    local seen = {}
    local r = recipe.define{ size = 0x3000, unit = function(u)
      local a, b = u:random_hex(32), u:random_hex(7)
      assert(a:match("^%x+$") and #a == 32 and #b == 7 and #u:random_bytes(5) == 5)
      assert(not seen[a])
      seen[a] = true
    end }
    assert(dry(r, "1-20"))
  end)

  it("extends a base: base unit first, params merged, fields replaced", function()
    local order = {}
    local base = recipe.define{ size = 0x3000, name = "base-%d.bin", params = { a = 1, b = 2 },
      exports = { "X" }, unit = function(u) order[#order + 1] = "base" .. u.params.b end }
    local child = base:extend{ name = "child-%d.bin", params = { b = 3 }, exports = { "Y" },
      unit = function(u) order[#order + 1] = "child" .. u.params.a end }
    assert.equal("child-%d.bin", child.name)
    assert.equal(0x3000, child.size)
    assert.same({ "X", "Y" }, child.exports)
    assert.same({ a = 1, b = 2 }, base.params)
    assert(dry(child, "1"))
    assert.same({ "base3", "child1" }, order)
  end)

  it("loads a recipe script without running its command line", function()
    local r = recipe.load(helper.ROOT .. "/gen.lua")
    assert.equal(0x6000, r.size)
    assert.same({ "DeviceSecret" }, r.exports)
    assert.equal(helper.ROOT, r.dir)
    helper.write(tmp .. "/bad.lua", "return 42\n")
    assert.has_error(function() recipe.load(tmp .. "/bad.lua") end,
      tmp .. "/bad.lua: the script does not return a recipe")
  end)

  it("takes relative paths from the recipe's folder", function()
    helper.write(tmp .. "/blob.bin", "\9\8\7")
    helper.write(tmp .. "/r.lua", [[
      local recipe = require("nvsgen.recipe")
      return recipe.run{ size = 0x3000, unit = function(u)
        u:namespace("ns")
        u:blob("B", u:file("blob.bin"))
      end }
    ]])
    local out = tmp .. "/out"
    local status, _, err = recipes.run(tmp .. "/r.lua", { "--serial-range", "5", "--outdir", out })
    assert.equal(0, status, err)
    local p = nvsgen.partition{ size = 0x3000 }
    p:namespace("ns"):blob("B", "\9\8\7")
    assert.equal(p:image(), helper.read(out .. "/unit-5.bin"))
  end)

  it("reads a per-unit values table in the batch's order", function()
    helper.write(tmp .. "/v.csv", "# per unit\nserial,gain\n1,10\n2,-20\n3,30\n")
    local got = {}
    local r = recipe.define{ size = 0x3000, values = tmp .. "/v.csv", unit = function(u)
      got[#got + 1] = u:value("gain")
    end }
    assert(dry(r, "1-3"))
    assert.same({ "10", "-20", "30" }, got)
    got = {}
    assert(dry(r, "1,3"))
    assert.same({ "10", "30" }, got)
    local _, err = dry(r, "3,1")
    assert.equal("unit 1: " .. tmp .. "/v.csv: no row for serial 1 (rows must follow the batch's order)", err)
    _, err = dry(recipe.define{ size = 0x3000, values = tmp .. "/v.csv",
      unit = function(u) u:value("offset") end }, "1")
    assert.matches("unit 1: .*the values table has no column 'offset'$", err)
  end)
end)
