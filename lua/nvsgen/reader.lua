--- nvsgen.reader: reads an NVS partition image back, the way the firmware
-- mounts it, and lists what is wrong with it.
--
--     local nvsgen = require("nvsgen")
--     local r = assert(nvsgen.read("unit-1000.bin"))            -- or the bytes
--     local r = assert(nvsgen.read("unit-1000.bin", "keys.bin")) -- encrypted
--     print(r.namespaces.mass_prod.Serial)                     --> 1000
--     for _, p in ipairs(r.problems) do print(p.page, p.entry, p.reason) end
--
-- Pages and entries are numbered from 0, as in the image and in nvs_tool.
-- A problem of the whole image has no page, one of a whole page no entry.
-- Bad input (a file that cannot be read, a bad keys file, a wrong key)
-- gives nil and a message; a damaged image gives a result whose problems
-- say what is damaged.

local files = require("nvsgen.files")
local core = require("nvsgen.core")
local crypto = require("nvsgen.crypto")

local M = {}

-- Longer strings, or strings with a NUL, cannot be paths.
local PATH_MAX = 4096

local read_file = files.read

local function is_path(s)
  return #s > 0 and #s < PATH_MAX and not s:find("\0", 1, true)
end

--- The 64-byte key `keys` stands for: an existing keys file, a 64-byte key,
-- or the 4096 bytes of a keys partition. Returns the key or nil, message.
local function resolve_key(keys)
  if is_path(keys) and io.open(keys, "rb") then
    return crypto.read_keys(keys)
  elseif #keys == crypto.KEY_SIZE then
    return keys
  elseif #keys == crypto.KEYS_PARTITION_SIZE then
    return crypto.parse_keys_partition(keys)
  end
  return crypto.read_keys(keys) -- a missing file: its open error
end

local READ_OPTIONS = { read_only = true }

--- Reads an image: `source` is the image's bytes or a file path; `keys`
-- (optional) a 64-byte key or the path of a keys partition file for an
-- encrypted image; `opts.read_only` reads it as a read-only mount (no free
-- page needed). Returns a table:
--
--   namespaces  { [namespace] = { [key] = value } }, every namespace defined
--   items       list in the firmware's order: { page, entry, namespace,
--               ns_index, key, type, nvs_type, span, value [, size]
--               [, blob_version, chunk_start, chunks] }
--   problems    list sorted by page and entry: { page, entry, severity,
--               code, reason }
--   pages       list: { index, state, seq, version, blank, header_ok,
--               loaded, crc_stored, crc_computed, bitmap, used, erased, free }
--   namespace_entries  list: { index, name, page, entry }
--   stats       { used_entries, free_entries, total_entries,
--               available_entries, namespace_count }
--   errors, warnings, read_only, encrypted
--   image       the plain (decrypted) image read
--
-- Values: integers as Lua integers (a u64 above 2^63-1 as its decimal
-- text), float and double as numbers, strings without their NUL, blobs as
-- strings. Or nil and a message when the input cannot be read.
function M.read(source, keys, opts)
  if type(source) ~= "string" then
    error(("nvsgen.read: image or path expected, got %s"):format(type(source)), 2)
  end
  if keys ~= nil and type(keys) ~= "string" then
    error(("nvsgen.read: keys must be a string, got %s"):format(type(keys)), 2)
  end
  opts = opts or {}
  require("nvsgen").check_options(opts, READ_OPTIONS, "nvsgen.read", 2)
  local image, err = source
  if is_path(source) then
    image, err = read_file(source)
    if not image then return nil, err end
  end
  if keys then
    local key
    key, err = resolve_key(keys)
    if not key then return nil, err end
    local xts
    xts, err = crypto.xts(key)
    if not xts then return nil, err end
    image, err = xts:decrypt(image)
    if not image then return nil, err end
    -- A wrong key garbles every header; a damaged image only some.
    local failed, checked = crypto.check_items(image)
    if checked > 0 and failed == checked then
      return nil, ("wrong key: %d of %d entries fail their CRC check"):format(failed, checked)
    end
  end
  local r
  r, err = core.read(image, opts.read_only)
  if not r then return nil, err end
  r.namespace_entries = r.namespaces
  local namespaces = {}
  for _, ns in ipairs(r.namespace_entries) do
    namespaces[ns.name] = namespaces[ns.name] or {}
  end
  for _, item in ipairs(r.items) do
    local t = namespaces[item.namespace]
    if not t then
      t = {}
      namespaces[item.namespace] = t
    end
    t[item.key] = item.value
  end
  r.namespaces = namespaces
  r.encrypted = keys ~= nil
  r.image = image
  return r
end

return M
