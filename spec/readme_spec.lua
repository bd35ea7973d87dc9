--- The README runs as written: its sh, console and lua blocks, in order, in
-- one scratch folder (as a reader following it top to bottom), and the
-- usage lines of the example recipes. See spec/support/docblocks.lua for
-- how blocks are marked.
local h = require("spec.support.helper")
local docs = require("spec.support.docblocks")
local lfs = require("lfs")

local README = h.ROOT .. "/README.md"
local RUNNABLE = { sh = true, console = true, lua = true }

-- Checks what one console command printed against the block's lines.
local function assert_output(where, command, expected, output)
  local got = {}
  for line in output:gmatch("([^\n]*)\n") do got[#got + 1] = line end
  assert.is_true(docs.lines_match(expected, got), ("%s: `%s` printed:\n%s\ninstead of:\n%s\n")
    :format(where, command, output, table.concat(expected, "\n")))
end

-- A ```lua block naming a file: the checkout's file as it is, or a new one.
local function file_block(name, body, scratch, where)
  local own = h.read(h.ROOT .. "/" .. name)
  local text = table.concat(body, "\n") .. "\n"
  if own then
    own = own:gsub("^#![^\n]*\n", "")
    assert.are.equal(own, text, where .. ": the block is not " .. name .. " as it is")
  else
    h.write(scratch .. "/" .. name, text)
  end
end

-- What git sees of the checkout, ignored files too (nil without git): the
-- blocks run beside links into it and must leave it as they found it.
local function checkout_state()
  local list = io.popen(("git -C %q status --porcelain --ignored --untracked-files=all 2>/dev/null"):format(h.ROOT))
  local text = list:read("a")
  list:close()
  return text ~= "" and text or nil
end
local before = checkout_state()

describe("README.md", function()
  local blocks = docs.blocks(h.read(README))
  local scratch

  setup(function() scratch = docs.scratch() end)
  teardown(function() h.cleanup(scratch) end)

  it("marks every shell block as run or illustrative", function()
    local runnable = 0
    for _, b in ipairs(blocks) do
      local where = ("README.md:%d"):format(b.line)
      assert.is_falsy(b.lang == "bash" or b.lang == "shell" or b.lang == "",
        where .. ": give the block a language: sh, console, lua, or text for what is not code")
      if b.mode ~= "" then
        assert.are.equal("illustrative", b.mode, where .. ": unknown mark '" .. b.mode .. "'")
      elseif RUNNABLE[b.lang] then
        runnable = runnable + 1
      end
    end
    assert.is_true(runnable >= 10, "README.md has only " .. runnable .. " runnable blocks")
  end)

  it("lists every file of the library, the command lines and the C core in its Layout", function()
    local text = h.read(README)
    local layout = assert(text:match("\n## Layout\n(.-)\n## ") or text:match("\n## Layout\n(.*)$"))
    local missing = {}
    local function check(dir, pattern)
      for name in lfs.dir(h.ROOT .. "/" .. dir) do
        if name:match(pattern) then
          local stem = name:gsub("%.[ch]$", "")
          if not (layout:find(name, 1, true) or layout:find(stem .. ".c/.h", 1, true)) then
            missing[#missing + 1] = dir .. "/" .. name
          end
        end
      end
    end
    check("lua/nvsgen", "%.lua$")
    check("lua/nvsgen/cli", "%.lua$")
    check("csrc", "%.[ch]$")
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("runs its blocks beside the checkout's own files only, not what earlier runs left there", function()
    -- A checkout where a reader already followed the README: out/, keys/.
    local root = h.tmpdir()
    assert(os.execute(("cd %q && git init -q && mkdir -p lua out/gen keys && echo x > lua/m.lua"
      .. " && echo y > gen.lua && git add lua gen.lua && echo z > mass_prod.bin"):format(root)))
    local dir = docs.scratch(root)
    local seen = {}
    for name in lfs.dir(dir) do
      if name ~= "." and name ~= ".." then seen[#seen + 1] = name end
    end
    table.sort(seen)
    assert.are.same({ "gen.lua", "lua" }, seen)
    h.cleanup(dir)
    h.cleanup(root)
  end)

  for _, b in ipairs(blocks) do
    if RUNNABLE[b.lang] and b.mode == "" then
      local where = ("README.md:%d"):format(b.line)
      it(("runs the %s block at line %d"):format(b.lang, b.line), function()
        if b.lang == "sh" then
          local status, output = docs.sh("set -e\n" .. table.concat(b.body, "\n") .. "\n", scratch)
          assert.are.equal(0, status, where .. ":\n" .. output)
        elseif b.lang == "console" then
          for _, step in ipairs(docs.console(b.body)) do
            local status, output = docs.sh(step.command .. "\n", scratch)
            assert.are.equal(0, status, where .. ": `" .. step.command .. "` failed:\n" .. output)
            assert_output(where, step.command, step.expected, output)
          end
        elseif docs.file_block(b.body) then
          file_block(docs.file_block(b.body), b.body, scratch, where)
        else
          local chunk = scratch .. "/.block.lua"
          h.write(chunk, table.concat(b.body, "\n") .. "\n")
          local status, output = docs.sh("lua5.4 .block.lua\n", scratch)
          os.remove(chunk)
          assert.are.equal(0, status, where .. ":\n" .. output)
          assert.are.equal("", output, where)
        end
      end)
    end
  end

  it("leaves the checkout as it found it", function()
    assert.are.equal(before, checkout_state())
  end)
end)

describe("the example recipes' usage lines", function()
  for name in lfs.dir(h.ROOT .. "/examples") do
    if name:match("%.lua$") then
      local commands = docs.header_commands(h.ROOT .. "/examples/" .. name)
      it(name .. " has one and it runs as written", function()
        assert.is_true(#commands >= 1, name .. " has no usage line in its header")
        local scratch = docs.scratch()
        for _, command in ipairs(commands) do
          local status, output = docs.sh(command .. "\n", scratch)
          assert.are.equal(0, status, command .. ":\n" .. output)
        end
        h.cleanup(scratch)
      end)
    end
  end

  it("each write their batch into a folder of their own", function()
    local seen = {}
    for name in lfs.dir(h.ROOT .. "/examples") do
      if name:match("%.lua$") then
        for _, command in ipairs(docs.header_commands(h.ROOT .. "/examples/" .. name)) do
          local outdir = command:match("%-%-outdir (%S+)")
          if outdir then
            assert.is_nil(seen[outdir], ("%s and %s both write into %s"):format(tostring(seen[outdir]), name, outdir))
            seen[outdir] = name
          end
        end
      end
    end
  end)

  it("leave the checkout as they found it", function()
    assert.are.equal(before, checkout_state())
  end)
end)
