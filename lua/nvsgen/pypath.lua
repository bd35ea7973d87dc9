--- nvsgen.pypath: file names and paths as the reference Python tools
-- (nvs_partition_gen.py, mfg_gen.py) build and judge them.

local byte = string.byte

local M = {}

--- Joins `a` and `b` as Python's os.path.join(a, b): an absolute `b`
-- stands alone, an empty `a` adds nothing, one "/" between them.
function M.join(a, b)
  if byte(b, 1) == 47 or a == "" then return b end
  if byte(a, -1) == 47 then return a .. b end
  return a .. "/" .. b
end

--- Joins an output folder and a name as nvs_partition_gen's files are
-- shown: its default folder, the current one, is given as "." and adds
-- nothing (the reference gives the absolute path there, which a port
-- cannot print identically anyway); an absolute name stands alone, and
-- the folder's trailing slashes are dropped.
function M.in_outdir(outdir, name)
  if byte(name, 1) == 47 or outdir == nil or outdir == "" or outdir == "." then return name end
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

return M
