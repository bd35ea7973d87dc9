--- nvsgen.files: reading a whole file and making folders, with one style of message.
--
-- The read is the C core's (open, fstat, read, close): a batch reads a
-- certificate per unit, and stdio's buffering only added copies and system
-- calls. A folder is refused by the read ("Is a directory"); every failure
-- comes back as "PATH: reason".

local core = require("nvsgen.core")
local lfs = require("lfs")

local M = {}

local read_file = core.read_file

--- The bytes of the file at `path`, or nil and "PATH: reason".
function M.read(path)
  local data, err = read_file(path)
  if not data then return nil, err end
  return data
end

--- The bytes of a file a value is taken from (a recipe's u:file, a CSV
-- `file` row), or nil and "cannot read file 'PATH': reason".
function M.read_value_file(path)
  local data, err = read_file(path)
  if not data then return nil, ("cannot read file '%s': %s"):format(path, M.reason(err, path)) end
  return data
end

--- The reason of a message from M.read, without its "PATH: " prefix.
function M.reason(message, path)
  local prefix = path .. ": "
  if message:sub(1, #prefix) == prefix then return message:sub(#prefix + 1) end
  return message
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

return M
