--- nvsgen.unit: the unit a recipe's `unit` function writes through (u:namespace, u:string, u:export, ...).
--
-- The batch driver makes one context and reuses it for every unit
-- (begin() starts the next), so the hot path makes no closures. Mistakes
-- raise at the recipe's line, naming the key; the driver adds the unit.

local files = require("nvsgen.files")
local nvsgen = require("nvsgen")
local core = require("nvsgen.core")

local type, error, setmetatable, ipairs, pairs, next = type, error, setmetatable, ipairs, pairs, next
local format = string.format
local random_bytes = core.random_bytes

local M = {}


local Unit = {}
Unit.__index = Unit
Unit.__name = "nvsgen.recipe.unit"

--- A unit context writing into `partition`, for `recipe`. `random(n)` gives
-- n bytes from a CSPRNG. The batch driver reuses one context for every
-- unit (begin() starts the next), so the hot path makes no closures.
-- `partitions` (a recipe with several): the unit's partitions by label,
-- for u:partition(label); each unit starts in `partition`.
function M.context(recipe, partition, random, partitions)
  local u = setmetatable({
    -- (false rather than nil for a field begin() reads per unit: a field
    -- absent from the context is looked for in Unit too.)
    recipe = recipe, current = partition, first = partition, partitions = partitions or false,
    encoder = partition.encoder,
    random = random, dir = recipe.dir, params = recipe.params,
    serial = nil, index = 0, values = nil, exported = {}, rows = nil,
    ns = nil,
    -- The OS CSPRNG's digits in one C call (the batch's hot path).
    random_hex = random == random_bytes and core.unit_random_hex or nil,
  }, Unit)
  -- Its methods in the context itself: a recipe's every call then finds
  -- its method at the first lookup, not through the metatable.
  for name, method in pairs(Unit) do
    if type(method) == "function" and rawget(u, name) == nil then u[name] = method end
  end
  return u
end

--- Starts unit `serial` (the batch's `index`-th) with `values` (its row of
-- the values table, or nil). `record` keeps the items written, for --csv.
function Unit:begin(serial, index, values, record)
  self.serial, self.index, self.values = serial, index, values
  local exported = self.exported
  for k in next, exported do exported[k] = nil end
  self.rows = record and {} or nil
  self.ns = nil
  if self.partitions then self.current, self.encoder = self.first, self.first.encoder end
end

local function raise(msg)
  error(msg, 3)
end

--- u:namespace(name): the items that follow go to namespace `name`. One
-- C call (the batch's hot path), as the item methods below.
Unit.namespace = core.unit_namespace()

--- Writes what follows into the unit's partition labelled `label` (a
-- recipe with `partitions`); each unit starts in the first one.
function Unit:partition(label)
  local p = self.partitions and self.partitions[label]
  if not p then
    if not self.partitions then raise("partition: the recipe has no 'partitions' field") end
    raise(format("partition '%s' is not one of the recipe's partitions", tostring(label)))
  end
  self.current, self.encoder, self.ns = p, p.encoder, nil
  return self
end

-- u:u8(key, value), u:string(key, value), ...: one C call each (the
-- batch's hot path), which applies the partition API's type rules, adds
-- the item to the current partition's encoder, keeps it in self.rows when
-- the unit's CSV is wanted, and raises a mistake at the recipe's line.
for _, kind in ipairs(nvsgen.KINDS) do
  Unit[kind] = core.item_method(kind)
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

-- The most random bytes (and hex digits) one call gives: more is a
-- recipe's mistake, not a value any NVS partition could hold.
local RANDOM_MAX = 1 << 30

--- `n` random bytes from the CSPRNG.
function Unit:random_bytes(n)
  if math.type(n) ~= "integer" or n < 0 or n > RANDOM_MAX then
    raise(format("random_bytes: an integer count from 0 to %d expected", RANDOM_MAX))
  end
  return self.random(n)
end

--- `n` random hex digits (lowercase) from the CSPRNG.
function Unit:random_hex(n)
  if math.type(n) ~= "integer" or n < 0 or n > RANDOM_MAX then
    raise(format("random_hex: an integer count from 0 to %d expected", RANDOM_MAX))
  end
  -- (A unit of the OS CSPRNG has core.unit_random_hex instead.)
  local hex = core.hex_encode(self.random((n + 1) // 2))
  if n % 2 == 1 then hex = hex:sub(1, n) end
  return hex
end

-- Identity helpers: each delegates to nvsgen.identity or the core, so
-- the unit runtime only adds the unit's own context (its folder, the
-- batch-wide CA cache).

--- A uniform integer in [lo, hi] from the CSPRNG (no modulo bias).
function Unit.random_int(_, lo, hi)
  if math.type(lo) ~= "integer" or math.type(hi) ~= "integer" then
    raise("random_int: integer bounds expected")
  end
  if lo > hi then raise(format("random_int: empty interval [%d, %d]", lo, hi)) end
  local v, err = core.random_int(lo, hi)
  if not v then raise(err) end
  return v
end

--- A random (version 4) UUID, 36 lowercase characters.
function Unit.uuid(_)
  local v, err = core.uuid4()
  if not v then raise(err) end
  return v
end

-- CAs loaded by u:ca, by their paths: once per batch (per process).
local cas = {}

--- The CA whose certificate and key are the files `cert` and `key`
-- (relative to the recipe's folder; PEM or DER), loaded at its first use
-- and kept for the batch. Raises when a file is unreadable, the
-- certificate is not a CA's or the key is not its key.
function Unit:ca(cert, key)
  if type(cert) ~= "string" or type(key) ~= "string" then
    raise("ca: paths of the certificate and of the key expected")
  end
  local cert_path, key_path = self:path(cert), self:path(key)
  local id = cert_path .. "\0" .. key_path
  local ca = cas[id]
  if not ca then
    local err
    ca, err = require("nvsgen.identity").load_ca{ cert = cert_path, key = key_path }
    if not ca then raise(err) end
    cas[id] = ca
  end
  return ca
end

--- u:export(name, value): records `value` (a string or number) for the
-- manifest's column `name` and returns it, so `u:string("K", u:export("K",
-- v))` reads naturally. One C call, as the item methods.
Unit.export = core.unit_export()

--- The unit's value in column `name` of the values table; raises when the
-- table or the value is missing.
function Unit:value(name)
  local row = self.values
  if not row then raise(format("no values row for serial %d (value '%s')", self.serial, name)) end
  local v = row[name]
  if v == nil then
    local columns = self.values_columns
    if columns and columns[name] then
      -- In the header, but this row is too short to hold it.
      raise(format("%s: the row of serial %d is short: no value in column '%s'", self.values_where,
        self.serial, name))
    end
    raise(format("the values table has no column '%s'", name))
  end
  return v
end

M.Unit = Unit

return M
