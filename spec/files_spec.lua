--- nvsgen.files: whole-file reads with "PATH: reason" messages.
local files = require("nvsgen.files")
local h = require("spec.support.helper")

describe("nvsgen.files", function()
  it("reads a file's bytes", function()
    local dir = h.tmpdir()
    h.write(dir .. "/a.bin", "\0\1\255")
    assert.are.equal("\0\1\255", files.read(dir .. "/a.bin"))
    h.cleanup(dir)
  end)

  it("reads empty and large files, and files whose size the system does not tell", function()
    local dir = h.tmpdir()
    h.write(dir .. "/empty", "")
    assert.are.equal("", files.read(dir .. "/empty"))
    local big = {}
    for i = 1, 70000 do big[i] = string.char(i % 251) end
    big = table.concat(big)
    h.write(dir .. "/big", big)
    assert.are.equal(big, files.read(dir .. "/big"))
    -- /proc files report size 0; smaps holds far more than a first read.
    local smaps = files.read("/proc/self/smaps")
    assert.is_true(#smaps > 8192)
    assert.matches("^%x+%-%x+ [r-][w-][x-][ps] ", smaps)
    assert.matches("\nVmFlags:[^\n]*\n$", smaps)
    h.cleanup(dir)
  end)

  it("names the path and the reason for a missing file and a folder", function()
    local dir = h.tmpdir()
    assert.are.same({ nil, dir .. "/none: No such file or directory" }, { files.read(dir .. "/none") })
    assert.are.same({ nil, dir .. ": Is a directory" }, { files.read(dir) })
    assert.are.same({ nil, "cannot read file '" .. dir .. "/none': No such file or directory" },
      { files.read_value_file(dir .. "/none") })
    h.write(dir .. "/v", "value")
    assert.are.equal("value", files.read_value_file(dir .. "/v"))
    h.cleanup(dir)
  end)

  it("takes the path off a message, even a path holding ': '", function()
    assert.are.equal("Is a directory", files.reason("a: b: Is a directory", "a: b"))
    assert.are.equal("other", files.reason("other", "a"))
  end)
end)
