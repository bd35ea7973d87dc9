--- nvsgen.outdir: an output folder: making it (mkdir -p) and naming files in it.

local files = require("nvsgen.files")

local M = {}

--- mkdir -p (nvsgen.files.make_dirs). Returns true, or nil and a message.
M.make_dirs = files.make_dirs

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
