--- nvsgen.recipe: per-unit partitions described in Lua.
--
-- A recipe is a Lua script that describes what goes into one unit's
-- partition; the library runs it for every serial of a batch:
--
--     local recipe = require("nvsgen.recipe")
--     return recipe.run{
--       size = 0x6000, name = "unit-%d.bin",
--       exports = { "DeviceSecret" },
--       unit = function(u)
--         u:namespace("mass_prod")
--         u:string("ProductID", "ACME-1")
--         u:string("DeviceName", ("acme-%06d"):format(u.serial))
--         u:string("DeviceSecret", u:export("DeviceSecret", u:random_hex(32)))
--         u:blob("Cert", u:file(("certs/%d.der"):format(u.serial)))
--       end,
--     }
--
-- `recipe.define` makes a recipe without running it (a base for a product
-- family); `base:extend{...}` makes a variant whose `unit` runs after the
-- base's, whose `params` override the base's, and whose other fields
-- replace the base's. `recipe.run` runs the standard command line
-- (nvsgen.cli.recipe) when the script is run, and just returns the recipe
-- when the script is loaded with `recipe.load`.
--
-- Relative paths in a recipe (`u:file`, the `values` field) are taken from
-- the folder of the recipe's script, so a recipe works from any folder.

-- First: a script started by Lua 5.1 to 5.3 goes on under Lua 5.4 (so this
-- file must stay readable by every Lua from 5.1 on; see nvsgen.lua54).
require("nvsgen.lua54")

local type, error, setmetatable, ipairs, pairs = type, error, setmetatable, ipairs, pairs
local format = string.format

local M = {}

local Recipe = {}
Recipe.__index = Recipe
Recipe.__name = "nvsgen.recipe"

local FIELDS = {
  size = "number", version = "number", name = "string", values = "string",
  key_column = "string", exports = "table", params = "table", unit = "function",
  description = "string", encrypt = "string", partitions = "table", partition_table = "string",
  partition_table_offset = "number", keys = "string",
}

-- Paths of the recipe scripts being loaded by M.load, innermost last.
local loading = {}

-- The folder of the recipe script being defined: the one M.load is
-- loading, else the script being run (arg[0]). The call stack cannot tell,
-- as `return recipe.run{...}` is a tail call.
local function script_dir()
  local path = loading[#loading] or (arg and arg[0]) or ""
  return path:match("^(.*)/[^/]*$") or "."
end

-- The path of the recipe script being defined (for messages).
local function script_path()
  return loading[#loading] or (arg and arg[0]) or "recipe"
end

-- Checks a recipe's fields: true, or nil and "what: problem".
local function check_fields(fields, what)
  if type(fields) ~= "table" then
    return nil, format("%s: table expected, got %s", what, type(fields))
  end
  for k, v in pairs(fields) do
    local want = FIELDS[k]
    if not want then
      return nil, format("%s: unknown field '%s'", what, tostring(k))
    elseif type(v) ~= want and not (k == "keys" and type(v) == "table") then
      -- (keys: a label, or { label =, offset = } without a partition table)
      return nil, format("%s: field '%s' must be a %s, got %s", what, k, want, type(v))
    end
  end
  if fields.encrypt ~= nil and fields.encrypt ~= "keygen" then
    return nil, format("%s: field 'encrypt' must be \"keygen\" (a key per unit)", what)
  end
  if fields.exports then
    for i, name in ipairs(fields.exports) do
      if type(name) ~= "string" or name == "" then
        return nil, format("%s: exports[%d] must be a non-empty string", what, i)
      end
    end
  end
  return true
end

-- check_fields, plus the `unit` a new recipe needs.
local function check_new(fields, what)
  local ok, err = check_fields(fields, what)
  if ok and not fields.unit then return nil, what .. ": field 'unit' (a function) is required" end
  return ok, err
end

local function make(fields, dir)
  local r = setmetatable({ dir = dir, source = script_path(), params = {}, exports = {}, units = {} },
    Recipe)
  for k, v in pairs(fields) do
    if k == "unit" then r.units[1] = v
    elseif k ~= "params" and k ~= "exports" then r[k] = v end
  end
  for k, v in pairs(fields.params or {}) do r.params[k] = v end
  for i, v in ipairs(fields.exports or {}) do r.exports[i] = v end
  return r
end

--- Makes a recipe from its fields: `unit` (function(u), required), and the
-- defaults the command line may override: `size`, `version`, `name` (a
-- string.format pattern for the serial), `values` (a per-unit CSV),
-- `key_column` (its serial column, default "serial"); `exports` (the
-- manifest's value columns, in order), `params` (read as u.params),
-- `encrypt = "keygen"` (encrypt with a key per unit unless --inputkey),
-- `description` (for --help).
function M.define(fields)
  local ok, err = check_new(fields, "recipe.define")
  if not ok then error(err, 2) end
  return make(fields, script_dir())
end

--- A variant of this recipe: see the module comment.
function Recipe:extend(fields)
  local ok, err = check_fields(fields, "recipe:extend")
  if not ok then error(err, 2) end
  local r = make(fields, script_dir())
  for k, v in pairs(self) do
    if r[k] == nil then r[k] = v end
  end
  local params = {}
  for k, v in pairs(self.params) do params[k] = v end
  for k, v in pairs(r.params) do params[k] = v end
  r.params = params
  local units = {}
  for i, f in ipairs(self.units) do units[i] = f end
  if fields.unit then units[#units + 1] = fields.unit end
  r.units = units
  local exports, seen = {}, {}
  for _, list in ipairs({ self.exports, r.exports }) do
    for _, name in ipairs(list) do
      if not seen[name] then seen[name] = true; exports[#exports + 1] = name end
    end
  end
  r.exports = exports
  return r
end

--- Loads the recipe script at `path` without running its command line.
-- Returns the recipe, or raises.
function M.load(path)
  local chunk, err = loadfile(path)
  if not chunk then error(err, 2) end
  loading[#loading + 1] = path
  local ok, r = pcall(chunk, path)
  loading[#loading] = nil
  if not ok then error(r, 0) end
  if getmetatable(r) ~= Recipe then
    error(format("%s: the script does not return a recipe", path), 2)
  end
  return r
end

--- Defines the recipe (if `fields` is not one already) and, when the script
-- is run rather than loaded, runs the standard command line with `argv`
-- (default: the script's `arg`) and exits with its status.
function M.run(fields, argv)
  local r = fields
  argv = argv or arg or {}
  local prog = (argv[0] or "recipe"):match("([^/]*)$")
  if getmetatable(fields) ~= Recipe then
    local ok, err = check_new(fields, "recipe.run")
    if not ok then
      if #loading > 0 then error(err, 2) end
      -- The script is being run: its author gets one line, no traceback.
      io.stderr:write(format("%s: %s: %s\n", prog, script_path(), err))
      os.exit(2)
    end
    r = make(fields, script_dir())
  end
  if #loading > 0 then return r end
  os.exit(require("nvsgen.cli.recipe").main(r, argv, prog))
end

M.Recipe = Recipe

--- The unit runtime (nvsgen.unit), kept here too for recipes written
-- against it.
local unit = require("nvsgen.unit")
M.unit_context = unit.context
M.Unit = unit.Unit

return M
