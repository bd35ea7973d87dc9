-- The batch side of the library, read from its sources: it never requires
-- a command line (nvsgen.cli.*), except recipe.run, the documented entry of
-- a recipe script, which starts the recipe command line; and its modules
-- require each other one way only (no cycle).
local helper = require("spec.support.helper")

local MODULES = { "batch", "recipe", "unit", "unit_csv", "manifest", "staging", "workers", "serials",
  "outdir", "chunks" }

-- The modules a source requires, with the function each require is in.
local function requires(name)
  local text = assert(helper.read(helper.ROOT .. "/lua/nvsgen/" .. name .. ".lua"))
  local list, current = {}, "(top)"
  for line in text:gmatch("[^\n]*") do
    current = line:match("^function ([%w_.:]+)") or line:match("^local function ([%w_]+)") or current
    local code = line:gsub("%-%-.*$", "") -- comments show examples
    for module in code:gmatch("require%(\"([%w_.]+)\"%)") do
      list[#list + 1] = { module = module, where = current }
    end
  end
  return list
end

describe("the batch side of the library", function()
  it("requires no command line, but for recipe.run", function()
    local found = {}
    for _, name in ipairs(MODULES) do
      for _, r in ipairs(requires(name)) do
        if r.module:find("^nvsgen%.cli%.") then found[#found + 1] = name .. ":" .. r.where .. ":" .. r.module end
      end
    end
    assert.same({ "recipe:M.run:nvsgen.cli.recipe" }, found)
  end)

  it("has no require cycle", function()
    local edges, known = {}, {}
    for _, name in ipairs(MODULES) do known["nvsgen." .. name] = true end
    for _, name in ipairs(MODULES) do
      local list = {}
      for _, r in ipairs(requires(name)) do
        if known[r.module] and not r.module:find("^nvsgen%.cli%.") then list[#list + 1] = r.module end
      end
      edges["nvsgen." .. name] = list
    end
    -- Depth-first: a module met again while still on the path is a cycle.
    local state, cycle = {}, nil
    local function visit(m, path)
      if state[m] == "done" or cycle then return end
      if state[m] == "open" then cycle = table.concat(path, " -> ") .. " -> " .. m; return end
      state[m] = "open"
      path[#path + 1] = m
      for _, n in ipairs(edges[m]) do visit(n, path) end
      path[#path] = nil
      state[m] = "done"
    end
    for m in pairs(edges) do visit(m, {}) end
    assert.is_nil(cycle)
    -- The old cycle: batch ran recipes through nvsgen.recipe.
    for _, m in ipairs(edges["nvsgen.batch"]) do assert.not_equal("nvsgen.recipe", m) end
  end)
end)
