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

local files = require("nvsgen.files")
local nvsgen = require("nvsgen")
local core = require("nvsgen.core")

local type, error, setmetatable, ipairs, pairs = type, error, setmetatable, ipairs, pairs
local format = string.format

local M = {}

local Recipe = {}
Recipe.__index = Recipe
Recipe.__name = "nvsgen.recipe"

local FIELDS = {
  size = "number", version = "number", name = "string", values = "string",
  key_column = "string", exports = "table", params = "table", unit = "function",
  description = "string", encrypt = "string",
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

local function check_fields(fields, what)
  if type(fields) ~= "table" then
    error(format("%s: table expected, got %s", what, type(fields)), 3)
  end
  for k, v in pairs(fields) do
    local want = FIELDS[k]
    if not want then
      error(format("%s: unknown field '%s'", what, tostring(k)), 3)
    elseif type(v) ~= want then
      error(format("%s: field '%s' must be a %s, got %s", what, k, want, type(v)), 3)
    end
  end
  if fields.encrypt ~= nil and fields.encrypt ~= "keygen" then
    error(format("%s: field 'encrypt' must be \"keygen\" (a key per unit)", what), 3)
  end
  if fields.exports then
    for i, name in ipairs(fields.exports) do
      if type(name) ~= "string" or name == "" then
        error(format("%s: exports[%d] must be a non-empty string", what, i), 3)
      end
    end
  end
end

local function make(fields, dir)
  local r = setmetatable({ dir = dir, params = {}, exports = {}, units = {} }, Recipe)
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
  check_fields(fields, "recipe.define")
  if not fields.unit then error("recipe.define: field 'unit' (a function) is required", 2) end
  return make(fields, script_dir())
end

--- A variant of this recipe: see the module comment.
function Recipe:extend(fields)
  check_fields(fields, "recipe:extend")
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
  if getmetatable(fields) ~= Recipe then
    check_fields(fields, "recipe.run")
    if not fields.unit then error("recipe.run: field 'unit' (a function) is required", 2) end
    r = make(fields, script_dir())
  end
  if #loading > 0 then return r end
  argv = argv or arg or {}
  local prog = (argv[0] or "recipe"):match("([^/]*)$")
  os.exit(require("nvsgen.cli.recipe").main(r, argv, prog))
end

M.Recipe = Recipe

---------------------------------------------------------------------------
-- The unit: what a recipe's `unit` function writes through
---------------------------------------------------------------------------

local Unit = {}
Unit.__index = Unit
Unit.__name = "nvsgen.recipe.unit"

--- A unit context writing into `partition`, for `recipe`. `random(n)` gives
-- n bytes from a CSPRNG. The batch driver reuses one context for every
-- unit (begin() starts the next), so the hot path makes no closures.
function M.unit_context(recipe, partition, random)
  return setmetatable({
    recipe = recipe, partition = partition, encoder = partition.encoder,
    random = random, dir = recipe.dir, params = recipe.params,
    serial = nil, index = 0, values = nil, exported = {}, rows = nil,
    ns = nil,
  }, Unit)
end

--- Starts unit `serial` (the batch's `index`-th) with `values` (its row of
-- the values table, or nil). `record` keeps the items written, for --csv.
function Unit:begin(serial, index, values, record)
  self.serial, self.index, self.values = serial, index, values
  local exported = self.exported
  for k in pairs(exported) do exported[k] = nil end
  self.rows = record and {} or nil
  self.ns = nil
end

local function raise(msg)
  error(msg, 3)
end

function Unit:namespace(name)
  if type(name) ~= "string" then
    raise(format("namespace name must be a string, got %s", type(name)))
  end
  local ok, err = self.encoder:namespace(name)
  if not ok then raise(format("namespace '%s': %s", name, err)) end
  self.ns = name
  local rows = self.rows
  if rows then rows[#rows + 1] = { name, "namespace" } end
  return self
end

local BYTE_KINDS = { string = true, blob = true }
local REAL_KINDS = { float = true, double = true }

for code, kind in ipairs(nvsgen.KINDS) do
  -- What Lua types the kind takes: integers also as decimal strings (u64).
  -- The encoder takes the kind's code (its place in KINDS) as well as its
  -- name: no string compares per item.
  local bytes, real = BYTE_KINDS[kind], REAL_KINDS[kind]
  local expects = bytes and "a string" or real and "a number" or "an integer"
  Unit[kind] = function(self, key, value)
    if type(key) ~= "string" then
      raise(format("%s: key must be a string, got %s", kind, type(key)))
    end
    local t = type(value)
    if bytes and t ~= "string" or real and t ~= "number"
        or not bytes and not real and t ~= "number" and t ~= "string" then
      raise(format("key '%s': %s expects %s, got %s", key, kind, expects, t))
    end
    local ok, err = self.encoder:put(code, key, value)
    if not ok then raise(err) end
    local rows = self.rows
    if rows then rows[#rows + 1] = { key, kind, value } end
    return self
  end
end

--- A path as the recipe means it: relative to the recipe's folder.
function Unit:path(path)
  if path:sub(1, 1) == "/" or self.dir == "." then return path end
  return self.dir .. "/" .. path
end

--- The bytes of the file at `path` (relative to the recipe's folder).
function Unit:file(path)
  if type(path) ~= "string" then raise(format("file: path must be a string, got %s", type(path))) end
  local full = self:path(path)
  local data, err = files.read_value_file(full)
  if not data then raise(err) end
  return data
end

--- `n` random bytes from the CSPRNG.
function Unit:random_bytes(n)
  if math.type(n) ~= "integer" or n < 0 then
    raise("random_bytes: a non-negative integer count expected")
  end
  return self.random(n)
end

--- `n` random hex digits (lowercase) from the CSPRNG.
function Unit:random_hex(n)
  if math.type(n) ~= "integer" or n < 0 then
    raise("random_hex: a non-negative integer count expected")
  end
  local hex = core.hex_encode(self.random(math.floor((n + 1) / 2)))
  if n % 2 == 1 then hex = hex:sub(1, n) end
  return hex
end

--- Records `value` (a string or number) for the manifest's column `name`
-- and returns it, so `u:string("K", u:export("K", v))` reads naturally.
function Unit:export(name, value)
  if type(name) ~= "string" then raise("export: name must be a string") end
  local t = type(value)
  if t ~= "string" and t ~= "number" then
    raise(format("export '%s': a string or number expected, got %s", name, t))
  end
  if self.exported[name] ~= nil then raise(format("export '%s' is set twice", name)) end
  self.exported[name] = value
  return value
end

--- The unit's value in column `name` of the values table; raises when the
-- table or the value is missing.
function Unit:value(name)
  local row = self.values
  if not row then raise(format("no values row for serial %d (value '%s')", self.serial, name)) end
  local v = row[name]
  if v == nil then raise(format("the values table has no column '%s'", name)) end
  return v
end

M.Unit = Unit

return M
