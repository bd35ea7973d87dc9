--- nvsgen.keyplan: the encryption keys a command line's --keygen,
-- generate-key and --key_protect_hmac options ask for, worked out before
-- anything is written, then written (0600, never over an existing file).

local crypto = require("nvsgen.crypto")
local files = require("nvsgen.files")
local nvsgen = require("nvsgen")
local pypath = require("nvsgen.pypath")
local lfs = require("lfs")

local M = {}

-- Exit status of a command line that asked for something impossible.
local EXIT_USAGE = 2

--- The default name of a keys file in folder `keys_dir`: the reference's
-- keys-MM-DD_HH-MM.bin, or, when a file of that name is there already
-- (two runs in one minute), the first of keys-MM-DD_HH-MM-2.bin, -3...
-- that is free, so that the second run does not fail on the first one's
-- file. The files are still created new: a name taken in between is an
-- error, never overwritten. `join` joins the folder and the name.
function M.default_keys_name(keys_dir, join)
  local stem = os.date("keys-%m-%d_%H-%M")
  local name = stem .. ".bin"
  local n = 1
  while lfs.symlinkattributes(join(keys_dir, name)) or lfs.symlinkattributes(join(keys_dir, "hmac-" .. name)) do
    n = n + 1
    name = ("%s-%d.bin"):format(stem, n)
  end
  return name
end

--- The 64-byte key --key_protect_hmac gives (opts.kp_hmac_keygen: from a
-- new HMAC key, returned second; opts.kp_hmac_inputkey: from that file's).
-- Returns key [, hmac], or nil, a message and an exit status.
function M.hmac_key(opts)
  if opts.kp_hmac_keygen then
    local hmac = assert(crypto.random_bytes(crypto.HMAC_KEY_SIZE))
    return assert(crypto.key_from_hmac(hmac)), hmac
  elseif opts.kp_hmac_inputkey then
    local data, err = files.read(opts.kp_hmac_inputkey)
    if not data then return nil, err end
    local key
    key, err = crypto.key_from_hmac(data)
    if not key then return nil, opts.kp_hmac_inputkey .. ": " .. err end
    return key
  end
  return nil, "--key_protect_hmac needs --kp_hmac_keygen or --kp_hmac_inputkey", EXIT_USAGE
end

--- Works out the keys a --keygen or generate-key command line asks for
-- (opts: keyfile, key_protect_hmac, kp_hmac_keygen, kp_hmac_keyfile,
-- kp_hmac_inputkey; `keys_dir`: where they go; `join`: how that folder and
-- a name are joined), without writing anything. Returns a plan { key,
-- keys_dir, keys_path, hmac, hmac_path }, or nil, a message and an exit
-- status.
function M.plan(opts, keys_dir, join)
  local plan = { keys_dir = keys_dir }
  local typed = opts.keyfile or M.default_keys_name(keys_dir, join)
  local name, err = pypath.bin_name(typed)
  if not name then return nil, err end
  plan.keys_path = join(keys_dir, name)
  if opts.key_protect_hmac then
    local status
    plan.key, err, status = M.hmac_key(opts)
    if not plan.key then return nil, err, status end
    plan.hmac = err
    if plan.hmac then
      local hname
      hname, err = pypath.bin_name(opts.kp_hmac_keyfile or "hmac-" .. typed)
      if not hname then return nil, err end
      plan.hmac_path = join(keys_dir, hname)
    end
  else
    plan.key = assert(crypto.generate_key())
  end
  return plan
end

-- Makes the folder of `path`. Returns true, or nil and a message.
local function make_parent(path)
  local dir = path:match("^(.*)/[^/]*$")
  if not dir then return true end
  return files.make_dirs(dir)
end

--- Writes what M.plan planned (0600, never over an existing file).
-- Returns the list of files written, or nil and a message having removed
-- what it wrote (and the keys folder, when it made it).
function M.write(plan)
  local written = {}
  local had_dir = lfs.attributes(plan.keys_dir) ~= nil
  local function undo(err)
    for i = #written, 1, -1 do os.remove(written[i]) end
    if not had_dir then lfs.rmdir(plan.keys_dir) end
    return nil, err
  end
  local ok, err
  if plan.hmac then
    ok, err = make_parent(plan.hmac_path)
    if not ok then return undo(err) end
    ok, err = nvsgen.write_file(plan.hmac_path, plan.hmac, nvsgen.SECRET_MODE, false)
    if not ok then return undo(err) end
    written[#written + 1] = plan.hmac_path
  end
  ok, err = make_parent(plan.keys_path)
  if not ok then return undo(err) end
  ok, err = crypto.write_keys(plan.keys_path, plan.key)
  if not ok then return undo(err) end
  written[#written + 1] = plan.keys_path
  return written
end

return M
