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

local function array(values, indent)
  if #values == 0 then return "[]" end
  local pad = ("  "):rep(indent + 1)
  local t = {}
  for k, v in ipairs(values) do t[k] = pad .. v end
  return "[\n" .. concat(t, ",\n") .. "\n" .. ("  "):rep(indent) .. "]"
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

--- The JSON document of a read result (nvsgen.read's table); `name` is
-- the file name it shows (default "").
function M.to_json(r, name)
  if type(r) ~= "table" or not r.items or not r.pages then
    error("nvsgen.to_json: a result of nvsgen.read expected", 2)
  end
  name = name or ""
  local pages, namespaces, items, problems = {}, {}, {}, {}
  for k, p in ipairs(r.pages) do
    pages[k] = object({
      { "index", tostring(p.index) }, { "state", json_string(p.state) },
      { "seq", tostring(p.seq) }, { "version", tostring(p.version) },
      { "header_crc_ok", tostring(p.header_ok) }, { "loaded", tostring(p.loaded) },
      { "entries", object({ { "written", tostring(p.bitmap.written) },
        { "erased", tostring(p.bitmap.erased) }, { "empty", tostring(p.bitmap.empty) },
        { "illegal", tostring(p.bitmap.illegal) } }, 3) },
    }, 2)
  end
  for k, ns in ipairs(r.namespace_entries) do
    namespaces[k] = object({ { "index", tostring(ns.index) }, { "name", json_string(ns.name) },
      { "page", tostring(ns.page) }, { "entry", tostring(ns.entry) } }, 2)
  end
  for k, item in ipairs(r.items) do
    local value, encoding = item_value(item)
    local fields = {
      { "page", tostring(item.page) }, { "entry", tostring(item.entry) },
      { "namespace", json_string(item.namespace) }, { "key", json_string(item.key) },
      { "type", json_string(item.type) }, { "value", value },
    }
    if encoding then fields[#fields + 1] = { "encoding", json_string(encoding) } end
    items[k] = object(fields, 2)
  end
  for k, pb in ipairs(r.problems) do
    problems[k] = object({ { "page", pb.page and tostring(pb.page) or "null" },
      { "entry", pb.entry and tostring(pb.entry) or "null" },
      { "severity", json_string(pb.severity) }, { "reason", json_string(pb.reason) } }, 2)
  end
  return object({
    { "name", json_string(name) },
    { "encrypted", tostring(r.encrypted) },
    { "pages", array(pages, 1) },
    { "namespaces", array(namespaces, 1) },
    { "items", array(items, 1) },
    { "problems", array(problems, 1) },
  }, 0)
end

return M
