--- Shared spec helpers: run a command line in-process, temporary folders,
-- file contents.
local lfs = require("lfs")
local common = require("nvsgen.cli.common")

local M = {}

M.ROOT = lfs.currentdir()
M.VECTORS = M.ROOT .. "/spec/fixtures/vectors"

--- A buffer with a file handle's write method.
local function buffer()
  local parts = {}
  return {
    write = function(self, ...)
      for i = 1, select("#", ...) do parts[#parts + 1] = tostring(select(i, ...)) end
      return self
    end,
    text = function() return table.concat(parts) end,
  }
end

--- Runs `main(argv)` of a command-line module in folder `dir` (default:
-- the checkout), capturing what it prints. Returns status, stdout, stderr.
function M.run(module, argv, dir)
  local out, err = buffer(), buffer()
  local saved_out, saved_err = common.stdout, common.stderr
  common.stdout, common.stderr = out, err
  local here = lfs.currentdir()
  if dir then assert(lfs.chdir(dir)) end
  local ok, status = pcall(require(module).main, argv)
  lfs.chdir(here)
  common.stdout, common.stderr = saved_out, saved_err
  if not ok then error(status, 0) end
  return status, out:text(), err:text()
end

--- A new empty folder under /tmp, removed by M.cleanup.
function M.tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(lfs.mkdir(path))
  return path
end

-- A link is removed, never followed: a scratch folder may link to the
-- checkout itself.
function M.cleanup(path)
  if not path or not lfs.symlinkattributes(path) then return end
  if lfs.symlinkattributes(path, "mode") == "directory" then
    for name in lfs.dir(path) do
      if name ~= "." and name ~= ".." then M.cleanup(path .. "/" .. name) end
    end
    lfs.rmdir(path)
  else
    os.remove(path)
  end
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function M.exists(path)
  return lfs.attributes(path) ~= nil
end

--- The lines of a file, as a list.
function M.lines(path)
  local list = {}
  for line in io.lines(path) do list[#list + 1] = line end
  return list
end

--- The names in folder dir (not below it), sorted.
function M.files(dir)
  local list = {}
  for name in lfs.dir(dir) do
    if name ~= "." and name ~= ".." then list[#list + 1] = name end
  end
  table.sort(list)
  return list
end

--- How many names folder dir holds (not below it); 0 when it does not
-- exist (yet: a batch being watched may not have made it).
function M.count(dir)
  if not lfs.attributes(dir) then return 0 end
  local n = 0
  for name in lfs.dir(dir) do
    if name ~= "." and name ~= ".." then n = n + 1 end
  end
  return n
end

--- The numbers `pattern` captures from the names in folder dir, sorted
-- (the units whose files are there).
function M.numbers_in(dir, pattern)
  local numbers = {}
  for name in lfs.dir(dir) do
    local n = name:match(pattern)
    if n then numbers[#numbers + 1] = tonumber(n) end
  end
  table.sort(numbers)
  return numbers
end

--- What a shell command prints on its standard output.
function M.sh(command)
  local p = io.popen(command)
  local text = p:read("a")
  p:close()
  return text
end

--- Wall-clock seconds, with a fraction (os.time counts whole seconds).
function M.now()
  return tonumber(M.sh("date +%s.%N"))
end

--- Waits until test() is true, looking every 20 ms: whether it came
-- within `seconds`.
function M.wait_for(test, seconds)
  local deadline = M.now() + seconds
  while not test() do
    if M.now() > deadline then return false end
    M.sh("sleep 0.02")
  end
  return true
end

--- Every file under dir, as sorted relative paths (folders end with "/").
function M.listing(dir, prefix, out)
  out = out or {}
  prefix = prefix or ""
  for name in lfs.dir(dir .. "/" .. prefix) do
    if name ~= "." and name ~= ".." then
      local rel = prefix .. name
      if lfs.attributes(dir .. "/" .. rel, "mode") == "directory" then
        out[#out + 1] = rel .. "/"
        M.listing(dir, rel .. "/", out)
      else
        out[#out + 1] = rel
      end
    end
  end
  table.sort(out)
  return out
end

--- argv with "out.bin" made absolute in folder `out`.
function M.redirect(argv, out)
  local copy = {}
  for i, a in ipairs(argv) do copy[i] = a == "out.bin" and out .. "/out.bin" or a end
  return copy
end

--- Runs a vector case's command line (output redirected to a temporary
-- folder) and checks it against the reference: the same bytes where the
-- reference succeeded, a refusal leaving no file where it refused.
function M.assert_reproduces(module, case)
  local check = require("luassert")
  local out = M.tmpdir()
  local status, _, err = M.run(module, M.redirect(case.argv, out), case.dir)
  local image = M.read(out .. "/out.bin")
  M.cleanup(out)
  if case.ref_exit == 0 then
    check.are.equal("", err)
    check.are.equal(0, status)
    check.is_true(image == M.read(case.dir .. "/expected.bin"), "image differs from expected.bin")
  else
    check.are_not.equal(0, status)
    check.is_nil(image)
  end
end

--- The folders of the shared vector set whose command is `command`.
function M.cases(command)
  local found = {}
  for _, group in ipairs({ "random", "idf-samples" }) do
    local base = M.VECTORS .. "/" .. group
    for name in lfs.dir(base) do
      local dir = base .. "/" .. name
      local args_path = dir .. "/args.txt"
      if name:sub(1, 1) ~= "." and lfs.attributes(args_path) then
        local argv = M.lines(args_path)
        if argv[1] == command then
          found[#found + 1] = { name = group .. "/" .. name, dir = dir, argv = argv,
            ref_exit = tonumber(M.read(dir .. "/ref_exit.txt"):match("%d+")) }
        end
      end
    end
  end
  table.sort(found, function(a, b) return a.name < b.name end)
  return found
end

return M
