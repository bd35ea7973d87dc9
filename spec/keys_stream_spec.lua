--- A keys file that is a stream (a FIFO, a device such as /dev/zero) is
-- read no further than a keys partition and one byte: more is refused
-- with one line, a keys partition given through a FIFO is used.
local h = require("spec.support.helper")
local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")

local TOOL = "nvsgen.cli.nvs_tool"

--- The path of a FIFO in `dir` that a background writer fills with `bytes`.
local function fifo_of(dir, bytes)
  h.write(dir .. "/k.src", bytes)
  assert(os.execute(("mkfifo '%s/k.fifo'"):format(dir)))
  assert(os.execute(("cat '%s/k.src' > '%s/k.fifo' &"):format(dir, dir)))
  return dir .. "/k.fifo"
end

describe("a keys file given as a stream", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  it("is refused when it gives more than a keys partition", function()
    local fifo = fifo_of(dir, ("\0"):rep(8192))
    assert.are.same({ nil, fifo .. ": keys partition is more than 4096 bytes long, 4096 are needed" },
      { crypto.read_keys(fifo) })
  end)

  it("decrypts an image when it gives the keys partition", function()
    local key = crypto.generate_key()
    local p = nvsgen.partition{ size = 0x3000 }
    p:namespace("n"):u8("a", 7)
    p:set_key(key)
    h.write(dir .. "/e.bin", p:image())
    local status, out, err = h.run(TOOL, { dir .. "/e.bin", "--keys", fifo_of(dir, crypto.keys_partition(key)),
      "-f", "csv" })
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal("# nvs_partition_gen encrypt IN.csv OUT.bin 0x3000 --version 2 --inputkey KEYS.bin\n"
      .. "key,type,encoding,value\nn,namespace,,\na,data,u8,7\n", out)
  end)
end)
