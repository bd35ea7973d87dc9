--- nvsgen.json: nvsgen's JSON document of a read result (nvsgen.read's
-- table), as `nvs_tool -f json` prints it: the same bytes for the same
-- image, keys in a fixed order, two-space indent.

local core = require("nvsgen.core")
local real_text = require("nvsgen.values").real_text

local byte, concat, fmt = string.byte, table.concat, string.format

local M = {}


local function json_string(s)
  return '"' .. s:gsub('[%c"\\\127]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return named[c] or fmt("\\u%04x", byte(c))
  end) .. '"'
end

-- Floats and doubles as the shortest text that reads back as the same
-- double (a float's value is exact as a double, so a reader gets the very
-- value the firmware returns); non-finite values as strings, which JSON has
-- no number for. -0.0 keeps its sign.
local function json_real(v)
  if v ~= v then return '"nan"' elseif v == math.huge then return '"inf"' elseif v == -math.huge then
    return '"-inf"' end
  return real_text(v)
end

--- A JSON object from a list of {name, encoded value} pairs, one per line.
local function object(fields, indent)
  local pad = ("  "):rep(indent + 1)
  local t = {}
  for k, f in ipairs(fields) do t[k] = pad .. json_string(f[1]) .. ": " .. f[2] end
  if #t == 0 then return "{}" end
  return "{\n" .. concat(t, ",\n") .. "\n" .. ("  "):rep(indent) .. "}"
end

local function item_value(item)
  if item.type == "blob" then return json_string(core.hex_encode(item.value)), "hex" end
  if item.type == "string" then
    if utf8.len(item.value) then return json_string(item.value) end
    return json_string(core.hex_encode(item.value)), "hex"
  end
  if item.type == "float" or item.type == "double" then
    return json_real(item.value)
  end
  return tostring(item.value) -- integers, u64 above 2^63-1 as its digits
end

-- Writes the JSON array of `list`, each element made by `encode`, at
-- indent 1, through `write`, one element at a time (array()'s bytes).
local function write_array(list, encode, write)
  if #list == 0 then return write("[]") end
  write("[\n")
  for k, v in ipairs(list) do
    write((k > 1 and ",\n    " or "    ") .. encode(v))
  end
  write("\n  ]")
end

local function page_json(p)
  return object({
    { "index", tostring(p.index) }, { "state", json_string(p.state) },
    { "seq", tostring(p.seq) }, { "version", tostring(p.version) },
    { "header_crc_ok", tostring(p.header_ok) }, { "loaded", tostring(p.loaded) },
    { "entries", object({ { "written", tostring(p.bitmap.written) },
      { "erased", tostring(p.bitmap.erased) }, { "empty", tostring(p.bitmap.empty) },
      { "illegal", tostring(p.bitmap.illegal) } }, 3) },
  }, 2)
end

local function namespace_json(ns)
  return object({ { "index", tostring(ns.index) }, { "name", json_string(ns.name) },
    { "page", tostring(ns.page) }, { "entry", tostring(ns.entry) } }, 2)
end

local function item_json(item)
  local value, encoding = item_value(item)
  local fields = {
    { "page", tostring(item.page) }, { "entry", tostring(item.entry) },
    { "namespace", json_string(item.namespace) }, { "key", json_string(item.key) },
    { "type", json_string(item.type) }, { "value", value },
  }
  if encoding then fields[#fields + 1] = { "encoding", json_string(encoding) } end
  return object(fields, 2)
end

local function problem_json(pb)
  return object({ { "page", pb.page and tostring(pb.page) or "null" },
    { "entry", pb.entry and tostring(pb.entry) or "null" },
    { "severity", json_string(pb.severity) }, { "reason", json_string(pb.reason) } }, 2)
end

--- Writes the JSON document of a read result (nvsgen.read's table)
-- through `write(text)`, an element at a time, so that the document is
-- never held whole; `name` is the file name it shows (default ""). The
-- bytes are M.to_json's.
function M.write(r, name, write)
  if type(r) ~= "table" or not r.items or not r.pages then
    error("nvsgen.json.write: a result of nvsgen.read expected", 2)
  end
  write("{\n  \"name\": " .. json_string(name or "") .. ",\n  \"encrypted\": " .. tostring(r.encrypted)
    .. ",\n  \"pages\": ")
  write_array(r.pages, page_json, write)
  write(",\n  \"namespaces\": ")
  write_array(r.namespace_entries, namespace_json, write)
  write(",\n  \"items\": ")
  write_array(r.items, item_json, write)
  write(",\n  \"problems\": ")
  write_array(r.problems, problem_json, write)
  write("\n}")
end

--- The JSON document of a read result (nvsgen.read's table); `name` is
-- the file name it shows (default "").
function M.to_json(r, name)
  if type(r) ~= "table" or not r.items or not r.pages then
    error("nvsgen.to_json: a result of nvsgen.read expected", 2)
  end
  local parts = {}
  M.write(r, name, function(text) parts[#parts + 1] = text end)
  return concat(parts)
end

return M
