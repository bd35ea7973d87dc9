--- nvsgen.outdir: an output folder: making it (mkdir -p) and naming files in it.

local lfs = require("lfs")

local M = {}

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

--- The prefix that names files of `outdir` in messages ("" or "DIR/").
function M.prefix(outdir)
  return (outdir == "." or outdir == "") and "" or (outdir:gsub("/+$", "")) .. "/"
end

return M
