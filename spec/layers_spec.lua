--- One-way layers, read from the sources: the library (lua/nvsgen/*.lua)
-- never requires a command line (nvsgen.cli.*), but for the one documented
-- door, recipe.run starting the recipe command line; and no module of the
-- library or the command lines takes part in a require cycle, lazy
-- requires (inside functions) included.
local h = require("spec.support.helper")
local lfs = require("lfs")

-- The one edge from the library up to a command line.
local DOOR = { from = "nvsgen.recipe", to = "nvsgen.cli.recipe" }

local function path_of(module)
  if module == "nvsgen" then return "lua/nvsgen/init.lua" end
  return "lua/" .. module:gsub("%.", "/") .. ".lua"
end

--- Every module of the checkout: library and command lines.
local function modules()
  local list = {}
  for _, dir in ipairs({ "lua/nvsgen", "lua/nvsgen/cli" }) do
    for name in lfs.dir(h.ROOT .. "/" .. dir) do
      local stem = name:match("^(.-)%.lua$")
      if stem then
        local module = (dir:gsub("^lua/", ""):gsub("/", ".")) .. "." .. stem
        list[#list + 1] = module == "nvsgen.init" and "nvsgen" or module
      end
    end
  end
  table.sort(list)
  return list
end

--- The nvsgen modules `text` requires, by name (comment lines aside).
local function requires_in(text)
  local found = {}
  for line in text:gmatch("[^\n]+") do
    if not line:find("^%s*%-%-") then
      for name in line:gmatch("require%s*%(?%s*[\"'](nvsgen[%w_.]*)[\"']") do
        if name ~= "nvsgen.core" then found[#found + 1] = name end
      end
    end
  end
  return found
end

local function requires(module)
  return requires_in(assert(h.read(h.ROOT .. "/" .. path_of(module)), module))
end

-- A require cycle through `start`, as a path "a -> b -> a", or nil. The
-- door's edge is left out: recipe.run is where a script enters.
local function cycle_through(start)
  local seen = {}
  local function visit(name, path)
    for _, next_name in ipairs(requires(name)) do
      if not (name == DOOR.from and next_name == DOOR.to) then
        local next_path = path .. " -> " .. next_name
        if next_name == start then return next_path end
        if not seen[next_name] then
          seen[next_name] = true
          local found = visit(next_name, next_path)
          if found then return found end
        end
      end
    end
  end
  return visit(start, start)
end

describe("the layers", function()
  local all = modules()

  it("finds the modules and their requires", function()
    assert.is_true(#all >= 40, #all .. " modules")
    assert.are.same({ "nvsgen.cli.args", "nvsgen.cli.common" },
      requires_in('local a = require("nvsgen.cli.args")\n-- require("nvsgen.x")\n'
        .. 'local b = require "nvsgen.cli.common"'))
  end)

  it("the library requires no command line but through recipe.run", function()
    local offenders = {}
    for _, module in ipairs(all) do
      if not module:find("^nvsgen%.cli%.") then
        for _, name in ipairs(requires(module)) do
          if name:find("^nvsgen%.cli%.") and not (module == DOOR.from and name == DOOR.to) then
            offenders[#offenders + 1] = module .. " -> " .. name
          end
        end
      end
    end
    assert.are.same({}, offenders)
  end)

  it("no module is in a require cycle", function()
    local cycles = {}
    for _, module in ipairs(all) do
      local found = cycle_through(module)
      if found then cycles[#cycles + 1] = found end
    end
    assert.are.same({}, cycles)
  end)

  it("can fail: the command lines do require each other's helpers", function()
    local seen = {}
    for _, name in ipairs(requires("nvsgen.cli.mfg_gen")) do seen[name] = true end
    assert.is_true(seen["nvsgen.cli.common"])
  end)
end)
