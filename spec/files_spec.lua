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

  it("names the path and the reason for a missing file and a folder", function()
    local dir = h.tmpdir()
    assert.are.same({ nil, dir .. "/none: No such file or directory" }, { files.read(dir .. "/none") })
    assert.are.same({ nil, dir .. ": Is a directory" }, { files.read(dir) })
    h.cleanup(dir)
  end)

  it("takes the path off a message, even a path holding ': '", function()
    assert.are.equal("Is a directory", files.reason("a: b: Is a directory", "a: b"))
    assert.are.equal("other", files.reason("other", "a"))
  end)
end)
