--- nvs_tool --verify reads only files inside the batch folder: a manifest
-- naming an image or keys file by an absolute path or a '..' step gets
-- that unit refused, and the file is not read.
local h = require("spec.support.helper")
local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")
local lfs = require("lfs")

local TOOL = "nvsgen.cli.nvs_tool"

-- A small image and its SHA-256.
local function small_image()
  local p = nvsgen.partition{ size = 0x3000 }
  p:namespace("n"):u8("a", 1)
  local img = p:image()
  return img, crypto.sha256_hex(img)
end

describe("nvs_tool --verify and paths out of the batch folder", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  it("refuses an image or keys file named outside the folder, keeps a subfolder", function()
    local img, sha = small_image()
    assert(lfs.mkdir(dir .. "/out"))
    assert(lfs.mkdir(dir .. "/out/sub"))
    h.write(dir .. "/outside.bin", img)
    h.write(dir .. "/out/sub/in.bin", img)
    assert(crypto.write_keys(dir .. "/keys.bin", crypto.generate_key()))
    h.write(dir .. "/out/manifest.csv", "serial,image,size,sha256,keys\n"
      .. ("1,../outside.bin,%d,%s,\n"):format(#img, sha)
      .. ("2,%s/outside.bin,%d,%s,\n"):format(dir, #img, sha)
      .. ("3,sub/../../outside.bin,%d,%s,\n"):format(#img, sha)
      .. ("4,sub/in.bin,%d,%s,../keys.bin\n"):format(#img, sha)
      .. ("5,sub/in.bin,%d,%s,\n"):format(#img, sha)
      .. ("6,..a.bin,%d,%s,\n"):format(#img, sha))
    local st, out, err = h.run(TOOL, { "--verify", dir .. "/out" })
    assert.are.equal("", err)
    assert.are.equal(1, st)
    assert.are.equal("unit 1: ../outside.bin: the image is outside the batch folder\n"
      .. "unit 2: " .. dir .. "/outside.bin: the image is outside the batch folder\n"
      .. "unit 3: sub/../../outside.bin: the image is outside the batch folder\n"
      .. "unit 4: sub/in.bin: keys file ../keys.bin is outside the batch folder (a key the whole batch shares?"
      .. " give its file with --keys)\n"
      .. "unit 6: ..a.bin: image is missing\n"
      .. "6 units: 1 good, 5 bad\n", out)
  end)

  it("follows no link inside the folder: an image, a keys file, a CSV or a subfolder that is one", function()
    local img, sha = small_image()
    assert(lfs.mkdir(dir .. "/out"))
    assert(lfs.mkdir(dir .. "/elsewhere"))
    h.write(dir .. "/elsewhere/x.bin", img)
    h.write(dir .. "/elsewhere/x.csv", "key,type,encoding,value\nn,namespace,,\na,data,u8,1\n")
    assert(crypto.write_keys(dir .. "/elsewhere/keys.bin", crypto.generate_key()))
    for _, name in ipairs({ "a.bin", "b.bin", "c.bin", "d.bin" }) do h.write(dir .. "/out/" .. name, img) end
    assert(lfs.link(dir .. "/elsewhere/x.bin", dir .. "/out/link.bin", true))
    assert(lfs.link(dir .. "/elsewhere/keys.bin", dir .. "/out/b-keys.bin", true))
    assert(lfs.link(dir .. "/elsewhere/x.csv", dir .. "/out/c.csv", true))
    assert(lfs.link(dir .. "/elsewhere", dir .. "/out/sub", true))
    h.write(dir .. "/out/manifest.csv", "serial,image,size,sha256,keys\n"
      .. ("1,link.bin,%d,%s,\n"):format(#img, sha)
      .. ("2,b.bin,%d,%s,b-keys.bin\n"):format(#img, sha)
      .. ("3,c.bin,%d,%s,\n"):format(#img, sha)
      .. ("4,sub/x.bin,%d,%s,\n"):format(#img, sha)
      .. ("5,d.bin,%d,%s,\n"):format(#img, sha))
    local st, out, err = h.run(TOOL, { "--verify", dir .. "/out" })
    assert.are.equal("", err)
    assert.are.equal("unit 1: link.bin: link.bin is a link, which a batch never makes (not followed)\n"
      .. "unit 2: b.bin: keys file b-keys.bin: b-keys.bin is a link, which a batch never makes (not followed)\n"
      .. "unit 3: c.bin: CSV c.csv: c.csv is a link, which a batch never makes (not followed)\n"
      .. "unit 4: sub/x.bin: sub is a link, which a batch never makes (not followed)\n"
      .. "5 units: 1 good, 4 bad\n", out)
    assert.are.equal(1, st)
  end)

  it("keeps each bad unit on one line whatever control characters the manifest's names hold", function()
    h.write(dir .. "/manifest.csv", "serial,image,size,sha256,keys\n"
      .. '"7\n8","a\nunit 9: b.bin",1,00,\n'
      .. '10,c.bin,1,' .. crypto.sha256_hex("x") .. ',"k\t\27[2K.bin"\n')
    h.write(dir .. "/c.bin", "x")
    local st, out, err = h.run(TOOL, { "--verify", dir, "--keys", dir .. "/none.bin" })
    assert.are.equal(1, st)
    assert.are.equal("", out)
    assert.are.equal("nvs_tool: " .. dir .. "/none.bin: No such file or directory\n", err)
    st, out, err = h.run(TOOL, { "--verify", dir })
    assert.are.equal("", err)
    assert.are.equal(1, st)
    assert.are.equal("unit 7\\x0A8: a\\x0Aunit 9: b.bin: image is missing\n"
      .. "unit 10: c.bin: keys file k\\x09\\x1B[2K.bin is missing\n"
      .. "2 units: 0 good, 2 bad\n", out)
  end)
end)
