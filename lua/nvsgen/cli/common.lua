--- nvsgen.cli.common: what every command line shares: reporting, sizes,
-- output paths in the reference tools' way.

local nvsgen = require("nvsgen")
local files = require("nvsgen.files")
local pytext = require("nvsgen.pytext")
local pypath = require("nvsgen.pypath")

local M = {}

--- Exit statuses: 0 done, 1 bad input or I/O, 2 bad command line.
M.EXIT_OK, M.EXIT_FAIL, M.EXIT_USAGE = 0, 1, 2

--- Where the command lines write; specs swap these for buffers to run the
-- commands in-process and check what they print.
M.stdout, M.stderr = io.stdout, io.stderr

--- What the reference generators print before building an image of each
-- --version, and after checking a size below the read/write minimum.
M.VERSION_BANNER = {
  ["1"] = "Creating NVS binary with version: V1 - Multipage Blob Support Disabled",
  ["2"] = "Creating NVS binary with version: V2 - Multipage Blob Support Enabled",
}
M.READ_WRITE_MIN_SIZE = 0x3000
M.READ_ONLY_WARNING = "Minimum partition size for read/write NVS is 0x3000 bytes. "
  .. 'Partitions smaller than this must be flagged as "readonly" in the partition table CSV.'

--- The options of the keys a command line generates (nvsgen.keyplan
-- works out what they ask for), shared by nvs_partition_gen and mfg_gen.
M.KEYFILE_OPTION = {
  "--keyfile",
  help = "keys file name, in OUTDIR/keys/ (default keys-MM-DD_HH-MM.bin, or -2, -3... when taken)",
}
M.HMAC_OPTIONS = {
  { "--key_protect_hmac", flag = true, help = "derive the keys from an HMAC key (HMAC-based scheme)" },
  { "--kp_hmac_keygen", flag = true, help = "generate the HMAC key" },
  { "--kp_hmac_keyfile", metavar = "FILE", help = "name of the generated HMAC key file, in OUTDIR/keys/" },
  { "--kp_hmac_inputkey", metavar = "FILE", help = "file holding the 32-byte HMAC key" },
}

--- Prints a line of progress or results on standard output.
function M.say(...)
  M.stdout:write(...)
  M.stdout:write("\n")
end

-- Control characters as a message shows them (as Lua or C would write them).
local CONTROL_ESCAPES = setmetatable({ ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }, {
  __index = function(_, c) return ("\\x%02x"):format(c:byte()) end,
})

--- Prints "prog: message" on stderr and returns the failure status.
function M.fail(prog, message, status)
  -- One line, whatever a file name or value in it holds.
  message = message:gsub("[%c\127]", CONTROL_ESCAPES)
  M.stderr:write(prog, ": ", message, "\n")
  return status or M.EXIT_FAIL
end

--- Runs the subcommand argv[1] names in `commands` (name to a function of
-- the arguments after it), through `run(fn, rest)` when given; answers -h
-- with `usage` and `about`, and refuses an unknown or missing command.
-- Returns the exit status.
function M.dispatch(prog, usage, about, commands, argv, run)
  local command = argv[1]
  local rest = table.move(argv, 2, #argv, 1, {})
  if command == "-h" or command == "--help" then
    M.stdout:write(usage, "\n\n", about, "Run '", prog, " COMMAND -h' for a command's options.\n")
    return M.EXIT_OK
  end
  local fn = commands[command]
  if not fn then
    M.stderr:write(usage, "\n")
    return M.fail(prog, command and ("unknown command '" .. command .. "'") or "a command is required",
      M.EXIT_USAGE)
  end
  if run then return run(fn, rest) end
  return fn(rest)
end

--- Parses a size as Python's int(text, 0) does: decimal, 0x, 0o or 0b,
-- underscores between digits. Returns an integer or nil.
function M.parse_int(text)
  local t = pytext.ascii_number(text) -- Unicode digits and spaces, as int() reads them
  if not t then return nil end
  t = t:match("^%s*(.-)%s*$")
  local sign, body = t:match("^([+-]?)(.*)$")
  local base, digits = 10, body
  local prefix = body:sub(1, 2):lower()
  if prefix == "0x" then base, digits = 16, body:sub(3)
  elseif prefix == "0o" then base, digits = 8, body:sub(3)
  elseif prefix == "0b" then base, digits = 2, body:sub(3)
  end
  if base ~= 10 then digits = digits:gsub("^_", "") end
  if digits == "" or digits:find("^_") or digits:find("_$") or digits:find("__") then return nil end
  digits = digits:gsub("_", "")
  -- Python refuses decimal numbers with leading zeros (other than zero).
  if base == 10 and digits:find("^0") and digits:find("[^0]") then return nil end
  local valid = ({ [16] = "^%x+$", [10] = "^%d+$", [8] = "^[0-7]+$", [2] = "^[01]+$" })[base]
  -- Leading zeros aside, 15 digits are exact in a double and far beyond
  -- any flash.
  if not digits:find(valid) or #digits:gsub("^0+", "") > 15 then return nil end
  local n = tonumber(digits, base)
  return sign == "-" and -n or n
end

--- Checks a partition SIZE argument (nvsgen.check_size). Returns the
-- size, or nil and a message.
function M.partition_size(text)
  local size = M.parse_int(text)
  if not size then
    return nil, ("size '%s' is not a number"):format(text)
  end
  return nvsgen.check_size(size, text)
end

--- mkdir -p (nvsgen.files). Returns true, or nil and a message.
M.make_dirs = files.make_dirs

-- Paths as the reference tools treat them (nvsgen.pypath).
M.join = pypath.in_outdir
M.split_ext = pypath.split_ext
M.has_bin_ext = pypath.has_bin_ext
M.BIN_EXT_ONLY = pypath.BIN_EXT_ONLY
M.bin_name = pypath.bin_name

--- The default name of a keys file in folder `keys_dir` (nvsgen.keyplan).
function M.default_keys_name(keys_dir)
  -- (required here: a recipe batch never needs it, and starts sooner)
  return require("nvsgen.keyplan").default_keys_name(keys_dir, M.join)
end

--- Prepares `outdir/name` for writing: folders made. Returns the path.
function M.output_path(outdir, name)
  local path = M.join(outdir, name)
  local dir = path:match("^(.*)/[^/]*$")
  if dir then
    local ok, err = M.make_dirs(dir)
    if not ok then return nil, err end
  end
  return path
end

return M
