--- nvsgen.cli.common: what every command line shares: reporting, sizes,
-- output paths in the reference tools' way.

local lfs = require("lfs")
local pytext = require("nvsgen.pytext")

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

--- Checks a partition SIZE argument. Returns the size, or nil and a message.
function M.partition_size(text)
  local size = M.parse_int(text)
  if not size then
    return nil, ("size '%s' is not a number"):format(text)
  end
  if size % 4096 ~= 0 then
    return nil, ("size %s is not a multiple of 4096"):format(text)
  end
  if size < 4096 then
    return nil, ("size %s is too small: at least 0x1000 (read-only) or 0x3000 bytes"):format(text)
  end
  return size
end

local function is_dir(path)
  return lfs.attributes(path, "mode") == "directory"
end

--- mkdir -p. Returns true, or nil and a message.
function M.make_dirs(path)
  if path == "" or is_dir(path) then return true end
  local parent = path:match("^(.*)/[^/]+/?$")
  if parent and parent ~= "" then
    local ok, err = M.make_dirs(parent)
    if not ok then return nil, err end
  end
  if lfs.attributes(path) and not is_dir(path) then
    return nil, ("%s: exists and is not a directory"):format(path)
  end
  local ok, err = lfs.mkdir(path)
  if not ok and not is_dir(path) then return nil, ("%s: %s"):format(path, err) end
  return true
end

--- Joins `outdir` and `name` as Python's os.path.join: an absolute name
-- stands alone.
function M.join(outdir, name)
  if name:sub(1, 1) == "/" or outdir == nil or outdir == "" or outdir == "." then return name end
  return (outdir:gsub("/+$", "")) .. "/" .. name
end

--- Splits `path` into stem and extension as Python's os.path.splitext,
-- which the reference tools judge names by: the extension is the last '.'
-- of the final component and what follows it, unless only dots come before
-- that '.' in the component (".bin" and "..csv" have no extension).
function M.split_ext(path)
  local dir, base = path:match("^(.-)([^/]*)$")
  local stem, ext = base:match("^(%.*[^.].*)(%.[^.]*)$")
  if not stem then return path, "" end
  return dir .. stem, ext
end

-- Python's '.bin' in ext, for an extension split_ext gave.
local function holds_bin(ext)
  return ext:find(".bin", 1, true) ~= nil
end

--- True when `name` has the extension the reference asks of a .bin file:
-- one holding ".bin" (so "out.bin" and "out.bin2", not "out" or ".bin").
function M.has_bin_ext(name)
  return holds_bin(select(2, M.split_ext(name)))
end

M.BIN_EXT_ONLY = "%s: only the .bin extension is allowed"

--- An output file name as the reference accepts it: no extension gets
-- ".bin", another extension is refused. Returns the name, or nil, message.
function M.bin_name(name)
  local _, ext = M.split_ext(name)
  if ext == "" then return name .. ".bin" end
  if not holds_bin(ext) then return nil, M.BIN_EXT_ONLY:format(name) end
  return name
end

--- The default name of a keys file in folder `keys_dir`: the reference's
-- `keys-MM-DD_HH-MM.bin`, or, when that folder already holds a file of that
-- name (or its `hmac-` companion), the first free of `keys-MM-DD_HH-MM-2.bin`,
-- `-3`, ...: two runs in the same minute both get a keys file, and none is
-- ever written over.
function M.default_keys_name(keys_dir)
  local stem = os.date("keys-%m-%d_%H-%M")
  local name, n = stem .. ".bin", 1
  local function taken(file) return lfs.attributes(M.join(keys_dir, file)) ~= nil end
  while taken(name) or taken("hmac-" .. name) do
    n = n + 1
    name = ("%s-%d.bin"):format(stem, n)
  end
  return name
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

---------------------------------------------------------------------------
-- Worker processes: the batch commands (recipes, mfg_gen) split a large
-- batch over copies of themselves, each started with the same command line
-- plus an option saying which share to make.
---------------------------------------------------------------------------

-- Quotes a word for sh.
local function quote(word)
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

--- `word` quoted for the shell.
M.quote = quote

--- The command line that runs this script again (interpreter, its options,
-- script, arguments), or nil when it is not run as a script (in-process, as
-- the specs do).
function M.rerun_command(argv)
  if type(argv[0]) ~= "string" or type(argv[-1]) ~= "string" then return nil end
  local words, i = {}, -1
  while argv[i - 1] ~= nil do i = i - 1 end
  for k = i, #argv do words[#words + 1] = quote(argv[k]) end
  return table.concat(words, " ")
end

--- CPUs online, from the kernel's list ("0-3,6").
function M.cpu_count()
  local f = io.open("/sys/devices/system/cpu/online", "r")
  if not f then return 1 end
  local text = f:read("a") or ""
  f:close()
  local n = 0
  for a, b in text:gmatch("(%d+)%-?(%d*)") do
    n = n + (b ~= "" and tonumber(b) - tonumber(a) + 1 or 1)
  end
  return math.max(n, 1)
end

--- Starts `command` with the words `extra` added, as a worker whose
-- standard output the caller reads (a file from io.popen), or nil and a
-- message.
function M.spawn(command, extra)
  return io.popen(command .. " " .. extra, "r")
end

return M
