--- nvsgen.cli.partition_gen: the command line of Espressif's
-- nvs_partition_gen.py, writing byte-identical images.
--
--   nvs_partition_gen generate IN.csv [MORE.csv ...] OUT.bin SIZE [--version 1|2] [--outdir DIR]
--   nvs_partition_gen encrypt IN.csv [MORE.csv ...] OUT.bin SIZE [--version 1|2] [--outdir DIR]
--       (--keygen [--keyfile F] | --inputkey KEYS.bin)
--       [--key_protect_hmac (--kp_hmac_keygen [--kp_hmac_keyfile F] | --kp_hmac_inputkey H.bin)]
--   nvs_partition_gen decrypt IN.bin KEYS.bin OUT.bin [--outdir DIR]
--   nvs_partition_gen generate-key [--keyfile F] [--outdir DIR] [--key_protect_hmac ...]
--
-- Unlike the reference, bad input never leaves a file behind: the image is
-- built in memory and written (atomically) only once it is complete; keys
-- come from the OS CSPRNG, are written 0600 and never over an existing file,
-- a keys file given is checked (size, CRC), and decrypt detects a wrong key.

local files = require("nvsgen.files")
local nvsgen = require("nvsgen")
local legacy = require("nvsgen.cli.legacy_partition_gen")
local args = require("nvsgen.cli.args")
local common = require("nvsgen.cli.common")
local csvgen = require("nvsgen.csvgen")
local crypto = require("nvsgen.crypto")
local lfs = require("lfs")

local M = {}

local PROG = "nvs_partition_gen"

local VERSION_OPTION = {
  "--version", choices = { "1", "2" }, default = "2",
  help = "NVS format version: 1 (blobs on one page) or 2 (multi-page blobs)",
}
local OUTDIR_OPTION = { "--outdir", default = ".", help = "folder for the files written" }

M.GENERATE = {
  prog = PROG .. " generate",
  summary = "Write an NVS partition image from CSV files.",
  positionals = {
    { name = "input", many = true, help = "CSV file(s) to read, in order" },
    { name = "output", help = "image file to write (.bin)" },
    { name = "size", help = "partition size in bytes, a multiple of 4096 (decimal or 0x hex)" },
  },
  options = { VERSION_OPTION, OUTDIR_OPTION },
}

local VERSION_BANNER = common.VERSION_BANNER

--- Builds the partition an `encrypt` or `generate` command line describes.
-- Returns the partition, or nil and a message.
function M.build(opts)
  local size, err = common.partition_size(opts.size)
  if not size then return nil, err end
  local partition = nvsgen.partition{ size = size, version = tonumber(opts.version) }
  local ok
  ok, err = csvgen.build(partition, opts.input)
  if not ok then return nil, err end
  return partition
end

--- Parses `argv` with `spec`; on -h or a mistake prints and returns a status.
function M.parse(spec, argv)
  local opts, err = args.parse(spec, argv)
  if not opts then
    common.stderr:write(args.usage(spec), "\n")
    return nil, common.fail(spec.prog, err, common.EXIT_USAGE)
  end
  if opts.help then
    common.stdout:write(args.help(spec))
    return nil, common.EXIT_OK
  end
  return opts
end

--- Resolves and prepares the output path. Returns it, or nil and a message.
function M.output(opts)
  local name, err = common.bin_name(opts.output)
  if not name then return nil, err end
  return common.output_path(opts.outdir, name)
end

--- Prints the reference's warning for a partition too small to be written
-- by the firmware, as often as it does (`times`: once per size check).
local function warn_read_only(partition, times)
  if partition.size < common.READ_WRITE_MIN_SIZE then
    for _ = 1, times do common.say(common.READ_ONLY_WARNING) end
  end
end

function M.generate(argv)
  local opts, status = M.parse(M.GENERATE, argv)
  if not opts then return status end
  local partition, err = M.build(opts)
  if not partition then return common.fail(PROG, err) end
  local path
  path, err = M.output(opts)
  if not path then return common.fail(PROG, err) end
  local ok
  ok, err = partition:write(path)
  if not ok then return common.fail(PROG, err) end
  warn_read_only(partition, 1)
  common.say(VERSION_BANNER[opts.version])
  common.say("Created NVS binary: ===> ", path)
  return common.EXIT_OK
end

-- ---- encryption ------------------------------------------------------------

local KEYFILE_OPTION = { "--keyfile", help = "keys file name, in OUTDIR/keys/ (default keys-MM-DD_HH-MM.bin)" }
local HMAC_OPTIONS = {
  { "--key_protect_hmac", flag = true, help = "derive the keys from an HMAC key (HMAC-based scheme)" },
  { "--kp_hmac_keygen", flag = true, help = "generate the HMAC key" },
  { "--kp_hmac_keyfile", help = "name of the generated HMAC key file, in OUTDIR/keys/" },
  { "--kp_hmac_inputkey", help = "file holding the 32-byte HMAC key" },
}

M.ENCRYPT = {
  prog = PROG .. " encrypt",
  summary = "Write an encrypted NVS partition image from CSV files.",
  positionals = M.GENERATE.positionals,
  options = {
    VERSION_OPTION, OUTDIR_OPTION,
    { "--keygen", flag = true, help = "generate the encryption keys (written to OUTDIR/keys/)" },
    KEYFILE_OPTION,
    { "--inputkey", help = "keys partition file (4096 bytes) to encrypt with" },
    table.unpack(HMAC_OPTIONS),
  },
}

M.DECRYPT = {
  prog = PROG .. " decrypt",
  summary = "Decrypt an encrypted NVS partition image.",
  positionals = {
    { name = "input", help = "encrypted image (.bin)" },
    { name = "key", help = "keys partition file (.bin)" },
    { name = "output", help = "decrypted image to write (.bin)" },
  },
  options = { OUTDIR_OPTION },
}

M.GENERATE_KEY = {
  prog = PROG .. " generate-key",
  summary = "Write a new keys partition file to OUTDIR/keys/.",
  options = { KEYFILE_OPTION, OUTDIR_OPTION, table.unpack(HMAC_OPTIONS) },
}

--- Names the decrypt command and encrypt's output must have: an extension
-- containing ".bin" (no extension is refused too, as the reference does).
local function check_bin(name)
  if not common.has_bin_ext(name) then return nil, common.BIN_EXT_ONLY:format(name) end
  return name
end

local read_file = files.read

--- Works out the keys a --keygen or generate-key command line asks for,
-- without writing anything. Returns a plan { key, keys_path, hmac,
-- hmac_path }, or nil, a message and an exit status.
local function plan_keys(opts)
  local plan = {}
  local keys_dir = common.join(opts.outdir, "keys")
  local typed = opts.keyfile or common.default_keys_name(keys_dir)
  local name, err = common.bin_name(typed)
  if not name then return nil, err end
  plan.keys_dir = keys_dir
  plan.keys_path = common.join(keys_dir, name)
  if opts.key_protect_hmac then
    if opts.kp_hmac_keygen then
      plan.hmac = assert(crypto.random_bytes(crypto.HMAC_KEY_SIZE))
      local hname
      hname, err = common.bin_name(opts.kp_hmac_keyfile or "hmac-" .. typed)
      if not hname then return nil, err end
      plan.hmac_path = common.join(keys_dir, hname)
    elseif opts.kp_hmac_inputkey then
      local hmac
      hmac, err = read_file(opts.kp_hmac_inputkey)
      if not hmac then return nil, err end
      plan.key, err = crypto.key_from_hmac(hmac)
      if not plan.key then return nil, opts.kp_hmac_inputkey .. ": " .. err end
    else
      return nil, "--key_protect_hmac needs --kp_hmac_keygen or --kp_hmac_inputkey", common.EXIT_USAGE
    end
    plan.key = plan.key or assert(crypto.key_from_hmac(plan.hmac))
  else
    plan.key = assert(crypto.generate_key())
  end
  return plan
end

--- Writes what plan_keys planned (0600, never over an existing file).
-- Returns the list of files written, or nil and a message having removed
-- what it wrote.
local function write_keys(plan)
  local written = {}
  local had_dir = lfs.attributes(plan.keys_dir) ~= nil
  local function undo(err)
    for i = #written, 1, -1 do os.remove(written[i]) end
    if not had_dir then lfs.rmdir(plan.keys_dir) end
    return nil, err
  end
  if plan.hmac then
    local path, err = common.output_path(nil, plan.hmac_path)
    if not path then return undo(err) end
    local ok
    ok, err = nvsgen.write_file(path, plan.hmac, nvsgen.SECRET_MODE, false)
    if not ok then return undo(err) end
    written[#written + 1] = path
  end
  local path, err = common.output_path(nil, plan.keys_path)
  if not path then return undo(err) end
  local ok
  ok, err = crypto.write_keys(path, plan.key)
  if not ok then return undo(err) end
  written[#written + 1] = path
  return written
end

--- Removes files written by a command that then failed.
local function remove_all(paths)
  for i = #paths, 1, -1 do os.remove(paths[i]) end
end

--- The 64-byte key of --inputkey: the file must be a valid keys partition.
local function input_key(path)
  local ok, err = check_bin(path)
  if not ok then return nil, err end
  return crypto.read_keys(path)
end

function M.encrypt(argv)
  local opts, status = M.parse(M.ENCRYPT, argv)
  if not opts then return status end
  local size, err = common.partition_size(opts.size)
  if not size then return common.fail(PROG, err) end
  if not opts.keygen and not opts.inputkey then
    return common.fail(PROG, "encrypt: --keygen or --inputkey is needed", common.EXIT_USAGE)
  elseif opts.keygen and opts.inputkey then
    return common.fail(PROG, "encrypt: --keygen and --inputkey are mutually exclusive",
      common.EXIT_USAGE)
  end
  local key, plan
  if opts.inputkey then
    if opts.keyfile then
      common.say("Warning: --inputkey argument is given. --keyfile argument will be ignored...")
    end
    key, err = input_key(opts.inputkey)
    if not key then return common.fail(PROG, err) end
  else
    plan, err, status = plan_keys(opts)
    if not plan then return common.fail(PROG, err, status) end
    key = plan.key
  end
  local name
  name, err = check_bin(opts.output)
  if not name then return common.fail(PROG, err) end
  local partition
  partition, err = M.build(opts)
  if not partition then return common.fail(PROG, err) end
  partition:set_key(key)
  local image = partition:image()
  local path
  path, err = M.output(opts)
  if not path then return common.fail(PROG, err) end
  local written = {}
  local had_dir = plan and lfs.attributes(plan.keys_dir) ~= nil
  if plan then
    written, err = write_keys(plan)
    if not written then return common.fail(PROG, err) end
  end
  local ok
  ok, err = nvsgen.write_file(path, image)
  if not ok then
    remove_all(written)
    if plan and not had_dir then lfs.rmdir(plan.keys_dir) end
    return common.fail(PROG, err)
  end
  warn_read_only(partition, 2)
  if plan then common.say("Created encryption keys: ===>  ", plan.keys_path) end
  common.say(VERSION_BANNER[opts.version])
  common.say("Created NVS binary: ===> ", path)
  return common.EXIT_OK
end

function M.decrypt(argv)
  local opts, status = M.parse(M.DECRYPT, argv)
  if not opts then return status end
  for _, name in ipairs({ opts.input, opts.key, opts.output }) do
    local ok, err = check_bin(name)
    if not ok then return common.fail(PROG, err) end
  end
  local key, err = crypto.read_keys(opts.key)
  if not key then return common.fail(PROG, err) end
  local image
  image, err = read_file(opts.input)
  if not image then return common.fail(PROG, err) end
  local plain
  plain, err = crypto.decrypt_image(image, key)
  if not plain then return common.fail(PROG, opts.input .. ": " .. err) end
  local path
  path, err = common.output_path(opts.outdir, opts.output)
  if not path then return common.fail(PROG, err) end
  local ok
  ok, err = nvsgen.write_file(path, plain)
  if not ok then return common.fail(PROG, err) end
  common.say("Created NVS decrypted binary: ===> ", path)
  return common.EXIT_OK
end

M["generate-key"] = function(argv)
  local opts, status = M.parse(M.GENERATE_KEY, argv)
  if not opts then return status end
  local plan, err
  plan, err, status = plan_keys(opts)
  if not plan then return common.fail(PROG, err, status) end
  local written
  written, err = write_keys(plan)
  if not written then return common.fail(PROG, err) end
  common.say("Created encryption keys: ===>  ", plan.keys_path)
  return common.EXIT_OK
end

local COMMANDS = {
  generate = M.generate, encrypt = M.encrypt, decrypt = M.decrypt,
  ["generate-key"] = M["generate-key"],
}

local USAGE = ("usage: %s {generate,encrypt,decrypt,generate-key} ...\n       "):format(PROG)
  .. legacy.usage(PROG)

--- Entry point: runs the subcommand named by argv[1], or the subcommand
-- that does what the old option-only command line asks; returns the exit
-- status.
function M.main(argv)
  if legacy.is_legacy(argv) then
    local translated, err = legacy.translate(argv)
    if not translated then
      common.stderr:write(USAGE, "\n")
      return common.fail(PROG, err, common.EXIT_USAGE)
    end
    argv = translated
  end
  return common.dispatch(PROG, USAGE, "ESP-IDF NVS partition images from CSV files (nvsgen).\n"
    .. legacy.ABOUT, COMMANDS, argv)
end

return M
