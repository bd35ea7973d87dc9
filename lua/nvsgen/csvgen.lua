--- nvsgen.csvgen: compiles rows of the reference CSV format into a partition.
--
-- A row is { key, type, encoding, value } as the reference's CSV names its
-- columns. Types: `namespace` (select or create), `data` (the value text
-- encoded as `encoding` says), `file` (the value names a file, relative to
-- the working directory, whose content is encoded). Messages carry no place;
-- `build` prefixes them with file:line.

local files = require("nvsgen.files")
local csv = require("nvsgen.csv")
local values = require("nvsgen.values")
local wifi = require("nvsgen.wifi")

local M = {}

local read_file = files.read_value_file

local INTEGER_ENCODINGS = {
  u8 = true, i8 = true, u16 = true, i16 = true, u32 = true, i32 = true, u64 = true, i64 = true,
}
local REAL_ENCODINGS = { float = true, double = true }
local BLOB_DECODERS = { hex2bin = values.hex, base64 = values.base64 }

--- The columns a CSV input must have.
M.COLUMNS = { "key", "type", "encoding", "value" }

local Compiler = {}
Compiler.__index = Compiler

--- A compiler writing into `partition` (from nvsgen.partition). `pbkdf2` is
-- the key derivation the Wi-Fi entries need (nvsgen.crypto's, by default).
function M.compiler(partition, pbkdf2)
  pbkdf2 = pbkdf2 or function(...) return require("nvsgen.crypto").pbkdf2_sha1(...) end
  return setmetatable({ partition = partition, wifi = wifi.tracker(pbkdf2) }, Compiler)
end

--- The item `encoding` makes of `value` (bytes): kind and value for put.
local function encode(encoding, value, from_file)
  if INTEGER_ENCODINGS[encoding] then
    local v, err = values.integer(value)
    return encoding, v, err
  elseif REAL_ENCODINGS[encoding] then
    local v, err = values.real(value)
    return encoding, v, err
  elseif encoding == "string" then
    if from_file then
      local text, err = values.utf8_text(value)
      return "string", text, err and "file is " .. err
    end
    return "string", value
  elseif BLOB_DECODERS[encoding] then
    local v, err = BLOB_DECODERS[encoding](value, from_file)
    return "blob", v, err
  elseif encoding == "binary" then
    return "blob", value
  end
  local fill, err = values.fill_spec(encoding)
  if fill then
    local v, fill_err = values.fill(fill, value)
    return "blob", v, fill_err
  elseif fill == false then
    return nil, nil, err
  end
  -- The reference lower-cases the encoding only after decoding the value:
  -- an integer or binary encoding in capitals gives the same bytes, but
  -- STRING, HEX2BIN or BASE64 would be stored undecoded (and a string
  -- without its NUL), which is not what the row says.
  local lower = encoding:lower()
  if lower ~= encoding then
    if INTEGER_ENCODINGS[lower] or lower == "binary" then return encode(lower, value, from_file) end
    if lower == "string" or BLOB_DECODERS[lower] then
      return nil, nil, ("encoding '%s' must be written '%s'"):format(encoding, lower)
    end
  end
  return nil, nil, ("unknown encoding '%s'"):format(encoding)
end

function Compiler:put_all(entries)
  for i = 1, #entries do
    local entry = entries[i]
    local ok, err = self.partition:put("blob", entry[1], entry[2])
    if not ok then return nil, err end
  end
  return true
end

--- Adds one row. Returns true, or nil and a message.
function Compiler:row(row)
  local key, kind = row.key, row.type
  if key == nil or key == "" then return nil, "empty key" end
  if #key > 15 then
    return nil, ("key '%s' is %d bytes long, at most 15 are allowed"):format(key, #key)
  end
  if kind == "namespace" then
    return self.partition.encoder:namespace(key)
  elseif kind ~= "data" and kind ~= "file" then
    return nil, ("key '%s': unknown type '%s' (expected namespace, data or file)")
      :format(key, tostring(kind or ""))
  end
  local text, encoding = row.value, row.encoding or ""
  if text == nil then return nil, ("key '%s': no value"):format(key) end

  local wifi_before = self.wifi:before(key, text)
  local ok, err
  if wifi_before[1] then
    ok, err = self:put_all(wifi_before)
    if not ok then return nil, err end
  end

  local value, from_file = text, kind == "file" and not wifi.takes_text(key)
  if from_file then
    value, err = read_file(text)
    if not value then return nil, ("key '%s': %s"):format(key, err) end
  end
  local item, v
  item, v, err = encode(encoding, value, from_file)
  if not item or v == nil then
    return nil, ("key '%s': %s"):format(key, err)
  end
  ok, err = self.partition:put(item, key, v)
  if not ok then return nil, err end
  local wifi_after = self.wifi:after(key)
  if wifi_after[1] then return self:put_all(wifi_after) end
  return true
end

-- The encodings fast_row handles: the encoder's kind code (the kind's
-- place in nvsgen.KINDS) and the parser of the value text, if any.
local FAST_DATA = {}
do
  local code = require("nvsgen").KIND_CODE
  for kind in pairs(INTEGER_ENCODINGS) do FAST_DATA[kind] = { code[kind], values.integer } end
  for encoding, decode in pairs(BLOB_DECODERS) do FAST_DATA[encoding] = { code.blob, decode } end
  FAST_DATA.string = { code.string }
  FAST_DATA.binary = { code.blob }
end

-- The partition API's fast setters, by kind code: its type rules.
local SETTER = {}
for code, kind in ipairs(require("nvsgen").KINDS) do SETTER[code] = require("nvsgen").setter(kind) end

--- For a row whose key, type and encoding are the same in every unit (an
-- mfg_gen config row), a function put(text) that adds the row with value
-- `text` to `partition` the way Compiler:row does, without its checks and
-- dispatch; or nil when the row needs Compiler:row (Wi-Fi keys, files other
-- than binary, other encodings, a bad key). put returns true, or false
-- having changed nothing: the caller then runs Compiler:row on the row,
-- which refuses it with the message.
function M.fast_row(partition, key, kind, encoding)
  if type(key) ~= "string" or key == "" or #key > 15 or wifi.involves(key) then return nil end
  local encoder = partition.encoder
  if kind == "namespace" then
    return function() return encoder:namespace(key) == true end
  end
  local fast = FAST_DATA[encoding]
  if not fast or (kind ~= "data" and not (kind == "file" and encoding == "binary")) then return nil end
  local set, parse = SETTER[fast[1]], fast[2]
  local read = files.read
  if kind == "file" then
    return function(text)
      local bytes = read(text)
      return bytes ~= nil and set(encoder, key, bytes) == true
    end
  elseif parse then
    return function(text)
      local v = parse(text)
      return v ~= nil and set(encoder, key, v) == true
    end
  end
  return function(text) return set(encoder, key, text) == true end
end

--- Compiles every row of the CSV files at `paths`, in order, as one stream
-- (each file with its own header). Returns true, or nil and "file:line: msg".
function M.build(partition, paths, pbkdf2)
  local compiler = M.compiler(partition, pbkdf2)
  for _, path in ipairs(paths) do
    local reader, err = csv.open_dict(path, { required = M.COLUMNS, comments = true })
    if not reader then return nil, err end
    while true do
      -- next() gives a row and its line, or nil and a message (nil at end).
      local row, line_or_err = reader:next()
      if not row then
        reader:close()
        if line_or_err then return nil, line_or_err end
        break
      end
      local line = line_or_err
      local ok, row_err = compiler:row(row)
      if not ok then
        reader:close()
        return nil, ("%s:%d: %s"):format(path, line, row_err)
      end
    end
  end
  return true
end

return M
