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

local core = require("nvsgen.core")
local lfs = require("lfs")
local crypto = require("nvsgen.crypto")
local export = require("nvsgen.export")
local flash = require("nvsgen.flash")
local json = require("nvsgen.json")
local options = require("nvsgen.options")
local pages = require("nvsgen.pages")

local M = {}

-- Longer strings, or strings with a NUL, cannot be paths.
local PATH_MAX = 4096

local read_file = flash.read_file

local function is_path(s)
  return #s > 0 and #s < PATH_MAX and not s:find("\0", 1, true)
end

--- The 64-byte key `keys` stands for: an existing keys file, a 64-byte key,
-- or the 4096 bytes of a keys partition. Returns the key or nil, message.
local function resolve_key(keys)
  -- looked up, not opened: opening a FIFO to look would take its bytes
  if is_path(keys) and lfs.attributes(keys, "mode") ~= nil then
    return crypto.read_keys(keys)
  elseif #keys == crypto.KEY_SIZE then
    return keys
  elseif #keys == crypto.KEYS_PARTITION_SIZE then
    return crypto.parse_keys_partition(keys)
  end
  return crypto.read_keys(keys) -- a missing file: its open error
end

local READ_OPTIONS = { read_only = true, partition = true, partition_table_offset = true, problems_only = true }

--- Decrypts `image` with `key`; nil and the message for a wrong key
-- (nvsgen.pages.wrong_key, the rule decryption also follows).
local function decrypt(image, key)
  local xts, err = crypto.xts(key)
  if not xts then return nil, err end
  local plain
  plain, err = xts:decrypt(image)
  if not plain then return nil, err end
  local wrong = pages.wrong_key(plain)
  if wrong then return nil, wrong end
  return plain
end

--- Reads an image: `source` is the image's bytes or a file path; `keys`
-- (optional) a 64-byte key or the path of a keys partition file for an
-- encrypted image; `opts.read_only` reads it as a read-only mount (no free
-- page needed); `opts.problems_only` leaves `items` and `namespaces` empty,
-- for a caller that needs only the problems (memory: no table per item).
-- With `opts.partition` (a label, or true for the first
-- data,nvs one) or `opts.partition_table_offset`, `source` is a whole
-- flash dump (see nvsgen.flash); an encrypted partition is then read with
-- `keys` or, without them, the dump's own nvs_keys partition. Returns a
-- table:
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
--   partition   the partition table entry, when read from a flash dump
--   key         the 64-byte key an encrypted image was read with
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
  options.check(opts, READ_OPTIONS, "nvsgen.read", 2)
  local image, err, dump_keys, part = source
  if opts.partition ~= nil or opts.partition_table_offset ~= nil then
    if opts.partition ~= nil and opts.partition ~= true and type(opts.partition) ~= "string" then
      error("nvsgen.read: partition must be a label or true, got " .. type(opts.partition), 2)
    end
    -- A whole flash dump: the NVS partition, and the dump's keys page.
    image, part, dump_keys = flash.read_partition(source, {
      partition = opts.partition ~= true and opts.partition or nil,
      partition_table_offset = opts.partition_table_offset })
    if not image then return nil, part end
  elseif is_path(source) then
    image, err = read_file(source)
    if not image then return nil, err end
  end
  local encrypted = false
  if keys then
    local key
    key, err = resolve_key(keys)
    if not key then return nil, err end
    image, err = decrypt(image, key)
    if not image then return nil, err end
    encrypted = key
  elseif part and not dump_keys and pages.wrong_key(image) then
    local failed = pages.check_items(image)
    return nil, ("partition '%s' looks encrypted (all %d entries fail their CRC check as plain data)"
      .. " and the dump holds no valid nvs_keys page: give the keys"):format(part.name, failed)
  elseif dump_keys and pages.wrong_key(image) then
    -- Every header fails as plain text: the partition is encrypted, with
    -- the key of the dump's nvs_keys partition if that is the right one.
    local key = crypto.parse_keys_partition(dump_keys)
    image, err = decrypt(image, key)
    if not image then return nil, "with the dump's nvs_keys partition: " .. err end
    encrypted = key
  end
  local r
  r, err = core.read(image, opts.read_only, opts.problems_only)
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
  r.encrypted = encrypted ~= false
  -- The key it was read with, so an edited copy is written with it too.
  r.key = encrypted or nil
  r.partition = part
  r.image = image
  return r
end

--- The reference CSV of a read result (nvsgen.export.to_csv).
M.to_csv = export.to_csv

--- nvsgen's JSON document of a read result, as `nvs_tool -f json` prints
-- it; `name` is the file name it shows (nvsgen.json.to_json).
M.to_json = json.to_json

return M
