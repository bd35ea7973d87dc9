--- nvsgen: build ESP-IDF NVS partition images from Lua.
--
--     local nvsgen = require("nvsgen")
--     local p = nvsgen.partition{ size = 0x6000, version = 2 }
--     p:namespace("mass_prod")
--     p:string("DeviceName", "unit-1000")
--     p:u32("Serial", 1000)
--     p:blob("MAC", "\x24\x0a\xc4\x00\x00\x01")
--     assert(p:write("unit-1000.bin"))
--
-- Setters raise on a programming mistake (wrong type, value out of range,
-- key too long, partition full), naming the key and the limit; `put` is the
-- non-raising form for data-driven callers such as the CSV generator.

local core = require("nvsgen.core")
local options = require("nvsgen.options")

local M = {}

--- The item kinds, in the order the CSV encodings name them.
M.KINDS = { "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64",
        "float", "double", "string", "blob" }

--- Each kind's code for encoder:put (its place in KINDS, as the binding
-- numbers them): a table lookup instead of the binding's string compares.
local KIND_CODE = {}
for code, kind in ipairs(M.KINDS) do KIND_CODE[kind] = code end
M.KIND_CODE = KIND_CODE

local Partition = {}
Partition.__index = Partition

--- Rejects option-table fields the function does not know (see
-- nvsgen.options): check_options(opts, known, what, level).
M.check_options = options.check

--- File modes of the files the library writes (Lua has no octal literals).
M.FILE_MODE = tonumber("644", 8)   -- rw-r--r--: images, CSV files
M.SECRET_MODE = tonumber("600", 8) -- rw-------: keys, HMAC keys

--- The errno value write_file and write_image return third when the file
-- exists and is not to be replaced (it differs between systems).
M.EEXIST = core.EEXIST

--- The largest NVS partition the firmware can address: a partition's size
-- is a 32-bit field of the partition table (and a uint32_t in ESP-IDF's
-- esp_partition_t), so the largest multiple of the 4096-byte sector below
-- 4 GiB. Sizes beyond it cannot be flashed, and are refused before any
-- memory is asked for them.
M.MAX_PARTITION_SIZE = 0xFFFFF000

--- Checks a partition size as every command line takes it: an integer,
-- a multiple of 4096, at least one page, at most MAX_PARTITION_SIZE.
-- Returns the size, or nil and a message (`text`: the size as the user
-- wrote it, for the message; default: the number).
function M.check_size(size, text)
  text = text or tostring(size)
  if math.type(size) ~= "integer" then
    return nil, ("size '%s' is not a number"):format(text)
  end
  if size > M.MAX_PARTITION_SIZE then
    return nil, ("size 0x%X is larger than the largest NVS partition supported (0x%X)")
      :format(size, M.MAX_PARTITION_SIZE)
  end
  if size % 4096 ~= 0 then
    return nil, ("size %s is not a multiple of 4096"):format(text)
  end
  if size < 4096 then
    return nil, ("size %s is too small: at least 0x1000 (read-only) or 0x3000 bytes"):format(text)
  end
  return size
end

--- Creates an empty partition as M.partition does, but a size or a memory
-- shortage the system refuses comes back as nil and a message instead of
-- being raised (for sizes read from input).
function M.try_partition(opts)
  local ok, size_err = M.check_size(opts.size)
  if not ok then return nil, size_err end
  local done, partition = pcall(M.partition, opts)
  if not done then
    -- M.partition raises strings: "nvsgen.partition: size 0x...: reason".
    return nil, (tostring(partition):gsub("^.-nvsgen%.partition: ", ""))
  end
  return partition
end

local PARTITION_OPTIONS = { size = true, version = true, key = true, keyfile = true }

--- Checks a 64-byte XTS key; returns a keyed context (`ctx` keyed anew
-- when given, cheaper than a new one), or nil and a message.
local function key_context(key, ctx)
  if type(key) ~= "string" then
    return nil, ("key must be a string, got %s"):format(type(key))
  end
  if ctx then return ctx:rekey(key) end
  return core.xts(key)
end

--- Creates an empty partition: `opts.size` bytes (a multiple of 4096),
-- `opts.version` 1 or 2 (default 2). With `opts.key` (64 bytes) or
-- `opts.keyfile` (a keys partition file) the image is encrypted.
function M.partition(opts)
  M.check_options(opts, PARTITION_OPTIONS, "nvsgen.partition", 2)
  local size, version = opts.size, opts.version or 2
  if math.type(size) ~= "integer" then
    error("nvsgen.partition: size must be an integer, got " .. tostring(size), 2)
  end
  if version ~= 1 and version ~= 2 then
    error("nvsgen.partition: version must be 1 or 2, got " .. tostring(version), 2)
  end
  local key = opts.key
  local xts, err
  if key ~= nil and opts.keyfile ~= nil then
    error("nvsgen.partition: key and keyfile are mutually exclusive", 2)
  elseif opts.keyfile ~= nil then
    if type(opts.keyfile) ~= "string" then
      error("nvsgen.partition: keyfile must be a string, got " .. type(opts.keyfile), 2)
    end
    key, err = require("nvsgen.crypto").read_keys(opts.keyfile)
    if not key then error("nvsgen.partition: " .. err, 2) end
  end
  if key ~= nil then
    -- One path for both sources, so a keys file whose two halves are
    -- equal is refused as a given key is, at the caller's level.
    xts, err = key_context(key)
    if not xts then error("nvsgen.partition: " .. err, 2) end
  end
  local enc
  enc, err = core.encoder(size, version)
  if not enc then
    error(("nvsgen.partition: size 0x%X: %s"):format(size, err), 2)
  end
  return setmetatable({ encoder = enc, size = size, version = version, xts = xts }, Partition)
end

--- Sets the 64-byte key the image is encrypted with, or with nil makes it
-- plain again. A key that is not 64 bytes, or whose halves are equal, raises.
function Partition:set_key(key)
  if key == nil then
    self.xts = nil
    return self
  end
  -- A batch with a key per unit sets one per image: the partition's own
  -- context is keyed anew rather than made again.
  local xts, err = key_context(key, self.xts)
  if not xts then error(err, 2) end
  self.xts = xts
  return self
end

--- The fast setter of item kind `kind`: set(encoder, key, value) adds the
-- item to an encoder (a partition's `encoder`) and returns true, or nil and
-- a message. Every path that adds items goes through it (Partition:put, the
-- CSV generator's fast rows, mfg_gen's units; a recipe's unit through
-- core.item_method), so the type rules live in one place: the binding's
-- put (a string or blob takes a Lua string, float and double a number, the
-- integer kinds a number or a string of digits). `key` must be a string
-- (the callers check it, each with its own message).
function M.setter(kind)
  local code = KIND_CODE[kind]
  if not code then error(("nvsgen.setter: unknown kind '%s'"):format(tostring(kind)), 2) end
  return function(encoder, key, value)
    return encoder:put(code, key, value)
  end
end

local SETTERS = {}
for _, kind in ipairs(M.KINDS) do SETTERS[kind] = M.setter(kind) end

--- Adds an item without raising: returns true, or nil and a message.
function Partition:put(kind, key, value)
  if type(key) ~= "string" then
    return nil, ("key must be a string, got %s"):format(type(key))
  end
  local set = SETTERS[kind]
  if not set then return self.encoder:put(kind, key, value) end -- the encoder names the kind
  return set(self.encoder, key, value)
end

--- Selects (creating on first use) the namespace later items go to.
function Partition:namespace(name)
  if type(name) ~= "string" then
    error(("namespace name must be a string, got %s"):format(type(name)), 2)
  end
  local ok, err = self.encoder:namespace(name)
  if not ok then error(err, 2) end
  return self
end

for _, kind in ipairs(M.KINDS) do
  Partition[kind] = function(self, key, value)
    local ok, err = Partition.put(self, kind, key, value)
    if not ok then error(err, 2) end
    return self
  end
end

--- The image as a string: the whole partition (or, for a read-only
-- partition below 0x3000 bytes, the pages used), encrypted if a key is set.
function Partition:image()
  local xts = self.xts
  if xts then return assert(xts:encrypt(self.encoder)) end
  return self.encoder:image()
end

local WRITE_OPTIONS = { replace = true, mode = true }

--- Writes the image to `path` atomically. Returns true, or nil and a message.
-- `opts.replace = false` refuses to overwrite an existing file; `opts.mode`
-- is the file's mode (default FILE_MODE).
function Partition:write(path, opts)
  if opts == nil then
    opts = {}
  else
    options.check(opts, WRITE_OPTIONS, "partition:write", 2)
  end
  if opts.replace ~= nil and type(opts.replace) ~= "boolean" then
    error("partition:write: option 'replace' must be a boolean, got " .. type(opts.replace), 2)
  end
  local mode = opts.mode
  if mode ~= nil and (math.type(mode) ~= "integer" or mode < 0 or mode > tonumber("7777", 8)) then
    error("partition:write: option 'mode' must be a file mode, got " .. tostring(mode), 2)
  end
  -- Straight from the encoder's buffer: no copy of the image as a string.
  local written, err = self:write_image(path, opts.replace == false and "atomic_new" or "replace", opts.mode)
  if not written then return nil, err end
  return true
end

--- Writes the image to `path` straight from the encoder (no Lua string):
-- `how` is "direct" (open/write/close over any file), "new" (the same,
-- refusing an existing file), "replace" or "atomic_new" (atomic, as
-- `write`). With `hash`, also returns the SHA-256 hex of the bytes written.
-- With `folder` (core.folder), `path` is a name in it.
-- Returns the size written [and the hash], or nil and a message.
function Partition:write_image(path, how, mode, hash, folder)
  return self.encoder:write(path, how, mode or M.FILE_MODE, self.xts, hash, folder)
end

--- Empties the partition so the same object can build the next unit.
function Partition:reset()
  self.encoder:reset()
  return self
end

function Partition:__tostring()
  return ("nvsgen.partition (size 0x%X, version %d)"):format(self.size, self.version)
end

M.Partition = Partition

--- A partition holding the items of an existing image (bytes or path,
-- with an optional key or keys file, and nvsgen.read's options), to
-- change, add (`p:u8(...)`...) and remove (`p:remove(ns, key)`) items and
-- write it as a fresh image. Returns it, or nil and a message.
-- See nvsgen.edit.
local from_image
function M.from_image(source, key, opts)
  from_image = from_image or require("nvsgen.edit").install(M)
  return from_image(source, key, opts)
end

-- Codecs and helpers the command lines and recipes share.
M.hex_decode = core.hex_decode
M.hex_encode = core.hex_encode
M.base64_decode = core.base64_decode
M.base64_encode = core.base64_encode
M.write_file = core.write_file

-- The read-back side loads on first use: a batch or a single
-- nvs_partition_gen run starts without it. (None of it requires this
-- module, so these are no cycles.)

--- Reads an image (bytes or path, with an optional key or keys file) back:
-- namespaces, typed values and problems. See nvsgen.reader.
function M.read(source, keys, opts)
  return require("nvsgen.reader").read(source, keys, opts)
end

--- The reference CSV of a read result (nvsgen.export).
function M.to_csv(r, opts)
  return require("nvsgen.export").to_csv(r, opts)
end

--- nvsgen's JSON document of a read result (nvsgen.json).
function M.to_json(r, name)
  return require("nvsgen.json").to_json(r, name)
end

return M
