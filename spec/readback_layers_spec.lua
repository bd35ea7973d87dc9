--- The read-back side of the library (reading, dumps, exports, editing,
-- flash dumps, batch checks) depends one way: none of its modules requires
-- a command line, and no require cycle passes through any of them. Checked
-- by reading the sources.
local h = require("spec.support.helper")

local READ_BACK = { "nvsgen", "nvsgen.reader", "nvsgen.pages", "nvsgen.dumps", "nvsgen.checks",
  "nvsgen.textout", "nvsgen.json",
  "nvsgen.export", "nvsgen.report", "nvsgen.options", "nvsgen.edit", "nvsgen.flash", "nvsgen.verify",
  "nvsgen.crypto" }

local function source_of(module)
  local rel = module == "nvsgen" and "init" or module:gsub("^nvsgen%.", ""):gsub("%.", "/")
  return h.read(h.ROOT .. "/lua/nvsgen/" .. rel .. ".lua")
end

--- The nvsgen modules `module` requires, anywhere in its source.
local function requires(module)
  -- comments dropped: a module's usage example requires it too
  local text = assert(source_of(module), module):gsub("%-%-[^\n]*", "")
  local found = {}
  for name in text:gmatch("require%(%s*[\"']([%w_%.]+)[\"']%s*%)") do
    if (name == "nvsgen" or name:find("^nvsgen%.")) and name ~= "nvsgen.core" then found[#found + 1] = name end
  end
  return found
end

describe("the read-back modules", function()
  it("never require a command line", function()
    for _, m in ipairs(READ_BACK) do
      for _, dep in ipairs(requires(m)) do
        assert.is_nil(dep:find("^nvsgen%.cli%."), m .. " requires " .. dep)
      end
    end
  end)

  it("are in no require cycle", function()
    local mine = {}
    for _, m in ipairs(READ_BACK) do mine[m] = true end
    -- depth-first from each read-back module, following only modules
    -- whose sources exist; a path back to the start is a cycle
    for _, start in ipairs(READ_BACK) do
      local seen = {}
      local function visit(m, path)
        for _, dep in ipairs(requires(m)) do
          assert.is_false(dep == start, "cycle: " .. table.concat(path, " -> ") .. " -> " .. dep)
          if not seen[dep] and source_of(dep) and (mine[dep] or dep ~= start) then
            seen[dep] = true
            path[#path + 1] = dep
            visit(dep, path)
            path[#path] = nil
          end
        end
      end
      visit(start, { start })
    end
  end)
end)
