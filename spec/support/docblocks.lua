--- Spec helpers for the documentation: the code blocks of a Markdown file
-- and the usage lines of the example recipes, and running them the way a
-- reader would, in a scratch folder that sees the checkout.
--
-- Fenced blocks are sorted by their info string:
--   sh       shell commands, run in order with `set -e`: must exit 0;
--   console  `$ command` lines each followed by what it prints (stdout and
--            stderr together), compared line by line; `...` in an expected
--            line stands for any text (timings, random values), and a line
--            `...` alone for any number of lines;
--   lua      a Lua chunk run by lua5.4 with the checkout's modules: exit 0,
--            nothing on stderr; or, when its first line names a file
--            (`-- NAME.lua: ...`), that file: the checkout's own file, whose
--            text it must be, or a new one written into the scratch folder;
-- and a second word `illustrative` (```sh illustrative) marks a block that
-- is not run: placeholders, or commands that need what a test cannot have.
local h = require("spec.support.helper")
local lfs = require("lfs")

local M = {}

--- The fenced blocks of Markdown `text`: {lang, mode, line, body}. A block
-- may be indented (inside a list item): its lines lose the indent of its
-- opening fence.
function M.blocks(text)
  local list, current = {}, nil
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if current then
      if line:match("^%s*```%s*$") then
        list[#list + 1] = current
        current = nil
      else
        if line:sub(1, #current.indent) == current.indent then line = line:sub(#current.indent + 1) end
        current.body[#current.body + 1] = line
      end
    else
      local indent, info = line:match("^(%s*)```(.*)$")
      if info then
        local lang, mode = info:match("^(%S*)%s*(%S*)")
        current = { lang = lang, mode = mode, line = n, body = {}, indent = indent }
      end
    end
  end
  assert(not current, "an unclosed code block starts at line " .. (current and current.line or 0))
  return list
end

--- The usage lines of an example recipe's header comment:
-- `--   lua5.4 examples/x.lua ...`.
function M.header_commands(path)
  local list = {}
  for line in io.lines(path) do
    if not line:match("^%-%-") and not line:match("^#!") then break end
    local command = line:match("^%-%-%s+(lua5?%.?4? .*)$")
    if command then list[#list + 1] = command end
  end
  return list
end

-- The checkout's own top-level names: what git tracks, and build/ (the
-- module). Not what a reader's own runs left there (out/, demo-out/, keys/,
-- mass_prod.bin, ...): linked, the blocks would find those outputs already
-- made, and write into the checkout through the links. Without git, every
-- name but .git.
local function own_names(root)
  local names = {}
  local list = io.popen(("git -C %q ls-files 2>/dev/null"):format(root))
  for path in list:lines() do names[path:match("^[^/]+")] = true end
  list:close()
  if next(names) == nil then
    for name in lfs.dir(root) do
      if name ~= "." and name ~= ".." and name ~= ".git" then names[name] = true end
    end
  end
  names.build = true
  return names
end

--- A scratch folder that sees the checkout's top-level files and folders
-- through links, so that commands written for the checkout's root run as
-- written and what they write stays in the scratch folder. (helper.cleanup
-- removes the links, never what they point to.) `root`: the checkout's,
-- unless given.
function M.scratch(root)
  root = root or h.ROOT
  local dir = h.tmpdir()
  for name in pairs(own_names(root)) do
    if lfs.symlinkattributes(root .. "/" .. name) then
      assert(lfs.link(root .. "/" .. name, dir .. "/" .. name, true))
    end
  end
  return dir
end

-- The environment every block runs with: the checkout's modules, as after
-- `make` (the README tells its readers to point Lua at them the same way).
local ENV = ("LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH='%s/build/?.so;;'")
  :format(h.ROOT, h.ROOT, h.ROOT)

--- Runs shell `script` in `dir`; returns its exit status and its output
-- (stdout and stderr together, in order).
function M.sh(script, dir)
  local file = dir .. "/.block.sh"
  h.write(file, script)
  local out = os.tmpname()
  local ok, how, code = os.execute(("cd %q && %s sh %q >%q 2>&1 </dev/null"):format(dir, ENV, file, out))
  local text = h.read(out)
  os.remove(out)
  os.remove(file)
  return ok and 0 or (how == "exit" and code or 128 + code), text
end

--- A Lua pattern for one expected output line: `...` matches any text.
function M.line_pattern(expected)
  local parts = {}
  for piece in (expected .. "..."):gmatch("(.-)%.%.%.") do
    parts[#parts + 1] = piece:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  end
  return "^" .. table.concat(parts, ".-") .. "$"
end

--- Whether output lines `got` are what `expected` shows: a line `...`
-- alone stands for any number of lines, `...` in a line for any text.
function M.lines_match(expected, got, i, j)
  i, j = i or 1, j or 1
  if i > #expected then return j > #got end
  if expected[i] == "..." then
    for k = j, #got + 1 do
      if M.lines_match(expected, got, i + 1, k) then return true end
    end
    return false
  end
  return got[j] ~= nil and got[j]:match(M.line_pattern(expected[i])) ~= nil
    and M.lines_match(expected, got, i + 1, j + 1)
end

--- The file a ```lua block stands for, when its first line names one
-- (`-- NAME.lua: what it is`), else nil.
function M.file_block(body)
  return body[1] and body[1]:match("^%-%- ([%w_%./%-]+%.lua):")
end

--- The commands of a console block and what each should print:
-- {command, {expected lines}}.
function M.console(body)
  local list = {}
  for _, line in ipairs(body) do
    local command = line:match("^%$ (.*)$")
    if command then
      list[#list + 1] = { command = command, expected = {} }
    else
      assert(#list > 0, "a console block starts with output, not a command: " .. line)
      local e = list[#list].expected
      e[#e + 1] = line
    end
  end
  return list
end

return M
