--- nvsgen.crypto: NVS encryption (XTS-AES-256 per entry), keys partitions,
-- the HMAC-based key scheme, randomness, hashes, KDFs and HMAC.
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
local lfs = require("lfs")
local options = require("nvsgen.options")
-- nvsgen.pages is loaded at the first check of an image: a batch never
-- needs it.
local function pages() return require("nvsgen.pages") end


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

--- PBKDF2-HMAC-SHA256 and -SHA512: (password, salt, iterations, length)
-- -> bytes.
function M.pbkdf2_sha256(password, salt, iterations, length)
  return core.pbkdf2("SHA256", password, salt, iterations, length)
end

function M.pbkdf2_sha512(password, salt, iterations, length)
  return core.pbkdf2("SHA512", password, salt, iterations, length)
end

--- HKDF (RFC 5869) with SHA-256 (or `digest`: "SHA384", "SHA512"):
-- (key, salt, info, length) -> bytes; salt and info may be "".
function M.hkdf(key, salt, info, length, digest)
  return core.hkdf(digest or "SHA256", key, salt, info, length)
end

--- HMAC-SHA256 (or `digest`: "SHA1", "SHA384", "SHA512") of `data`.
function M.hmac(key, data, digest)
  return core.hmac(digest or "SHA256", key, data)
end

--- SHA-512 of `data`, 64 raw bytes.
function M.sha512(data)
  return core.digest("SHA512", data)
end

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
  local data, err
  local mode = lfs.attributes(path, "mode")
  if mode ~= nil and mode ~= "file" and mode ~= "directory" then
    -- a device or FIFO (/dev/zero) may never end: read a keys partition
    -- and one byte more, which is enough to refuse it
    local f
    f, err = io.open(path, "rb")
    if not f then return nil, err end
    data = f:read(M.KEYS_PARTITION_SIZE + 1) or ""
    f:close()
    if #data > M.KEYS_PARTITION_SIZE then
      return nil, ("%s: keys partition is more than %d bytes long, %d are needed"):format(path,
        M.KEYS_PARTITION_SIZE, M.KEYS_PARTITION_SIZE)
    end
  else
    data, err = read_file(path)
    if not data then return nil, err end
  end
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

--- Checks the item headers of a plain image (nvsgen.pages.check_items).
function M.check_items(...) return pages().check_items(...) end

--- Decrypts an encrypted image with its 64-byte key, entry by entry as the
-- bitmaps say. A wrong key shows as item headers that all fail their CRC
-- (nvsgen.pages.wrong_key): then nil and "wrong key: N of M entries fail
-- their CRC check". A damaged entry with the right key is no wrong key.
function M.decrypt_image(image, key)
  -- Nothing to decrypt is no image: an empty file must not give an empty one.
  if type(image) == "string" and #image == 0 then return nil, "image is empty (0 bytes)" end
  local plain, err = core.decrypt_image(key, image)
  if not plain then return nil, err end
  local wrong = pages().wrong_key(plain)
  if wrong then return nil, wrong end
  return plain
end

return M
