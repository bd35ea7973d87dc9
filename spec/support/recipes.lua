--- Spec helpers for recipes: run a recipe's command line in-process, read
-- a manifest, write a recipe script run as a process of its own.
local helper = require("spec.support.helper")
local recipe = require("nvsgen.recipe")
local csv = require("nvsgen.csv")

local M = {}

--- Writes a script at `path` that finds the checkout's modules (lua/ and
-- build/) and then runs the Lua code `body`. Returns `path`.
function M.script(path, body)
  helper.write(path, ("package.path = %q .. package.path\npackage.cpath = %q .. package.cpath\n%s")
    :format(helper.ROOT .. "/lua/?.lua;" .. helper.ROOT .. "/lua/?/init.lua;", helper.ROOT .. "/build/?.so;",
      body))
  return path
end

--- Runs the command line of recipe `r` (a recipe, or the path of a recipe
-- script) with `argv`, in folder `dir`. Returns status, stdout, stderr.
function M.run(r, argv, dir)
  if type(r) == "string" then r = recipe.load(r) end
  package.loaded["spec.support.recipe_main"] = {
    main = function(a) return require("nvsgen.cli.recipe").main(r, a, "recipe") end,
  }
  return helper.run("spec.support.recipe_main", argv, dir)
end

--- The records of a manifest, as tables keyed by column, in file order.
function M.manifest(path)
  local reader = assert(csv.open_dict(path))
  local list = {}
  while true do
    local row = reader:next()
    if not row then break end
    list[#list + 1] = row
  end
  reader:close()
  return list
end

--- Regenerates an image from a unit's CSV with the nvs_partition_gen
-- command line, in `dir`; returns the image bytes.
function M.regenerate(dir, csv_name, size, keys, extra)
  local out = "regen-" .. csv_name:gsub("%.csv$", ".bin")
  local argv = keys and { "encrypt", csv_name, out, size, "--inputkey", keys }
    or { "generate", csv_name, out, size }
  for _, word in ipairs(extra or {}) do argv[#argv + 1] = word end
  local status, _, err = helper.run("nvsgen.cli.partition_gen", argv, dir)
  assert(status == 0, err)
  local data = helper.read(dir .. "/" .. out)
  os.remove(dir .. "/" .. out)
  return data
end

return M
