--- An encrypted image read without its key: nvsgen.from_image refuses it
-- (it would read as empty, and writing that would lose every item), and
-- the CSV of it says why it holds no row.
local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")

local function encrypted_image()
  local key = crypto.generate_key()
  local p = nvsgen.partition{ size = 0x3000 }
  p:namespace("n"):u8("a", 1):string("s", "text")
  p:set_key(key)
  return p:image(), key
end

describe("an encrypted image read without its key", function()
  it("is refused by nvsgen.from_image, read with its key", function()
    local img, key = encrypted_image()
    local p, err = nvsgen.from_image(img)
    assert.is_nil(p)
    assert.are.equal("the image looks encrypted (all 4 entries fail their CRC check as plain data): give its key",
      err)
    p = assert(nvsgen.from_image(img, key))
    assert.is_true(p:image() == img)
  end)

  it("gives a CSV that says why it holds no row", function()
    local img = encrypted_image()
    local text = assert(nvsgen.to_csv(assert(nvsgen.read(img))))
    assert.are.equal("# nvs_partition_gen generate IN.csv OUT.bin 0x3000 --version 2\n"
      .. "# the image looks encrypted (all 4 entries fail their CRC check as plain data): read it with its keys\n",
      text:match("^[^\n]*\n[^\n]*\n"))
  end)

  it("leaves a plain image with one damaged entry editable", function()
    local p = nvsgen.partition{ size = 0x3000 }
    p:namespace("n"):u8("a", 1):u8("b", 2)
    local img = p:image()
    img = img:sub(1, 64 + 32 + 24) .. "\7" .. img:sub(64 + 32 + 26)
    local e = assert(nvsgen.from_image(img))
    assert.is_true(e:has("n", "b"))
    assert.is_false(e:has("n", "a"))
  end)
end)
