--- nvsgen.crypto: NVS encryption (XTS-AES-256 per entry), keys partitions,
-- the HMAC-based key scheme, randomness and hashes.
--
--     local crypto = require("nvsgen.crypto")
--     local key = crypto.generate_key()              -- 64 bytes
--     assert(crypto.write_keys("keys/unit.bin", key)) -- 0600, never overwrites
--     local p = nvsgen.partition{ size = 0x6000, key = key }
--
-- Bad data (a keys file with a bad CRC, an HMAC key of the wrong length, a
-- wrong key on decryption) gives nil and a message; a wrong argument type
-- raises.

local files = require("nvsgen.files")
local core = require("nvsgen.core")
local options = require("nvsgen.options")

local byte, sub, unpack = string.byte, string.sub, string.unpack
local crc32 = core.crc32

local M = {}

M.KEY_SIZE = 64
M.HMAC_KEY_SIZE = 32
M.KEYS_PARTITION_SIZE = 4096

-- Functions where Lua adds nothing: the C ones, so argument errors name
-- the caller's line.

--- A new 64-byte XTS key from the OS CSPRNG; its two halves always differ.
M.generate_key = core.generate_key
--- `n` bytes from the OS CSPRNG.
M.random_bytes = core.random_bytes
--- The key of the HMAC-based scheme for a 32-byte HMAC key (nil, message
-- for another length).
M.key_from_hmac = core.key_from_hmac
--- The 4096-byte keys partition holding a 64-byte key.
M.keys_partition = core.keys_build
--- The key in a keys partition: nil, message unless 4096 bytes with a
-- matching CRC.
M.parse_keys_partition = core.keys_parse
--- PBKDF2-HMAC-SHA1 (the Wi-Fi PMK is pbkdf2_sha1(passphrase, ssid, 4096, 32)).
M.pbkdf2_sha1 = core.pbkdf2_sha1
--- An XTS context for one key, for encrypting many images with it:
-- `xts:encrypt(image_or_encoder)`, `xts:decrypt(image)`.
M.xts = core.xts
--- Encrypts an image string (or a core encoder's image) with a 64-byte key.
M.encrypt_image = core.encrypt_image

--- SHA-256 of `data`, 32 raw bytes.
function M.sha256(data)
  return core.sha256(data)
end

--- SHA-256 of `data`, 64 lowercase hex digits.
function M.sha256_hex(data)
  return core.sha256(data, true)
end

local read_file = files.read

--- The key in the keys partition file at `path`: key, or nil and
-- "path: message".
function M.read_keys(path)
  local data, err = read_file(path)
  if not data then return nil, err end
  local key
  key, err = core.keys_parse(data)
  if not key then return nil, path .. ": " .. err end
  return key
end

local WRITE_KEYS_OPTIONS = { replace = true }

--- Writes the keys partition of `key` to `path`, mode 0600, atomically.
-- Refuses an existing file unless `opts.replace` is true. Returns true, or
-- nil and a message.
function M.write_keys(path, key, opts)
  if opts ~= nil then
    options.check(opts, WRITE_KEYS_OPTIONS, "crypto.write_keys", 2)
    if opts.replace ~= nil and type(opts.replace) ~= "boolean" then
      error("crypto.write_keys: option 'replace' must be a boolean, got " .. type(opts.replace), 2)
    end
  end
  local replace = opts ~= nil and opts.replace == true
  return core.write_keys(path, key, replace and "replace" or "atomic_new")
end

-- Two bits per entry in the bitmap at offset 32 of each page.
local ENTRIES, WRITTEN = 126, 2

local function entry_state(page, offset, i)
  local b = byte(page, offset + 33 + (i >> 2))
  return (b >> (2 * (i & 3))) & 3
end

--- Checks the item headers of a plain image: returns how many fail their
-- CRC and how many written entries were checked as headers (an entry whose
-- CRC fails is taken as a one-entry item). A header's CRC covers its bytes
-- 0-3 and 8-31.
function M.check_items(image)
  local failed, checked = 0, 0
  for offset = 0, #image - 4096, 4096 do
    local i = 0
    while i < ENTRIES do
      if entry_state(image, offset, i) == WRITTEN then
        local at = offset + 64 + 32 * i
        local stored = unpack("<I4", image, at + 5)
        checked = checked + 1
        local span = 1
        if crc32(sub(image, at + 1, at + 4) .. sub(image, at + 9, at + 32)) == stored then
          span = byte(image, at + 3)
          if span < 1 or i + span > ENTRIES then span = 1 end
        else
          failed = failed + 1
        end
        i = i + span
      else
        i = i + 1
      end
    end
  end
  return failed, checked
end

--- Decrypts an encrypted image with its 64-byte key, entry by entry as the
-- bitmaps say. A wrong key shows as item headers whose CRC fails: then nil
-- and "wrong key: N of M entries fail their CRC check".
function M.decrypt_image(image, key)
  local plain, err = core.decrypt_image(key, image)
  if not plain then return nil, err end
  local failed, checked = M.check_items(plain)
  if failed > 0 then
    return nil, ("wrong key: %d of %d entries fail their CRC check"):format(failed, checked)
  end
  return plain
end

return M
