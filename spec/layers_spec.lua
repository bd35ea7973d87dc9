--- The library never reaches into its command lines: the modules the CSV
-- command lines are built on (and every library module they require, read
-- from the sources) require no nvsgen.cli.* module, and the new ones
-- (mfg, pypath, workers, keyplan) take part in no require cycle.
local h = require("spec.support.helper")

local NEW = { "nvsgen.mfg", "nvsgen.pypath", "nvsgen.workers", "nvsgen.keyplan" }
local ROOTS = { "nvsgen.mfg", "nvsgen.pypath", "nvsgen.workers", "nvsgen.keyplan", "nvsgen.files", "nvsgen" }

local function source(module)
  local path = module == "nvsgen" and "lua/nvsgen/init.lua" or "lua/" .. module:gsub("%.", "/") .. ".lua"
  return assert(h.read(h.ROOT .. "/" .. path), path)
end

--- The nvsgen modules `module` requires, by name (comment lines aside).
local function requires(module)
  local found = {}
  for line in source(module):gmatch("[^\n]+") do
    if not line:find("^%s*%-%-") then
      for name in line:gmatch("require%s*%(?%s*[\"'](nvsgen[%w_.]*)[\"']") do
        if name ~= "nvsgen.core" then found[#found + 1] = name end
      end
    end
  end
  return found
end

--- Every module reachable from `module` through requires, with the path
-- to it.
local function reachable(module)
  local seen = {}
  local function visit(name, path)
    for _, next_name in ipairs(requires(name)) do
      if not seen[next_name] then
        seen[next_name] = path .. " -> " .. next_name
        visit(next_name, seen[next_name])
      end
    end
  end
  visit(module, module)
  return seen
end

describe("the library's layers", function()
  it("no library module the CSV command lines use reaches nvsgen.cli.*", function()
    for _, root in ipairs(ROOTS) do
      for name, path in pairs(reachable(root)) do
        assert.is_falsy(name:find("^nvsgen%.cli"), path)
      end
    end
    assert.is_truthy(reachable("nvsgen.mfg")["nvsgen.csvgen"])
  end)

  it("mfg, pypath, workers and keyplan are in no require cycle", function()
    for _, module in ipairs(NEW) do
      assert.is_nil(reachable(module)[module], module)
    end
  end)

  it("can fail: a module that requires a command line is found", function()
    local seen = {}
    for _, name in ipairs(requires("nvsgen.cli.mfg_gen")) do seen[name] = true end
    assert.is_true(seen["nvsgen.cli.common"])
  end)
end)
