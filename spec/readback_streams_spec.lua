--- nvs_tool on a whole flash dump that arrives as a stream (a FIFO,
-- /dev/stdin) or is cut short right after its partition table: the dump is
-- known by its table, without --partition.
local h = require("spec.support.helper")
local nvsgen = require("nvsgen")
local flash = require("nvsgen.flash")
local pt = require("nvsgen.partition_table")

local TOOL = "nvsgen.cli.nvs_tool"

--- A 0x10000-byte dump: the table at 0x8000, an NVS partition at 0x9000.
local function dump()
  local list = assert(pt.parse("nvs,data,nvs,0x9000,0x6000,\n", "t.csv"))
  local p = nvsgen.partition{ size = 0x6000 }
  p:namespace("unit"):u32("Serial", 1234)
  return ("\255"):rep(0x8000) .. assert(flash.encode(list)) .. ("\255"):rep(0x400) .. p:image()
    .. ("\255"):rep(0x1000)
end

--- Runs nvs_tool on `bytes` fed through a FIFO by a background writer.
local function run_fifo(dir, bytes, argv)
  h.write(dir .. "/d.bin", bytes)
  assert(os.execute(("mkfifo '%s/fifo'"):format(dir)))
  assert(os.execute(("cat '%s/d.bin' > '%s/fifo' &"):format(dir, dir)))
  local all = { dir .. "/fifo" }
  for _, a in ipairs(argv) do all[#all + 1] = a end
  return h.run(TOOL, all)
end

describe("nvs_tool on a dump given as a stream", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  it("reads the first data,nvs partition of a dump from a FIFO with no option", function()
    local status, out, err = run_fifo(dir, dump(), { "-f", "csv" })
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal("# nvs_partition_gen generate IN.csv OUT.bin 0x6000 --version 2\n"
      .. "key,type,encoding,value\nunit,namespace,,\nSerial,data,u32,1234\n", out)
  end)

  it("names the FIFO when the dump it gives ends inside the partition", function()
    local status, out, err = run_fifo(dir, dump():sub(1, 0x9064), { "-d", "minimal" })
    assert.are.equal("nvs_tool: " .. dir .. "/fifo: the dump ends at 0x9064, inside partition 'nvs'"
      .. " (0x9000 to 0xF000)\n", err)
    assert.are.equal(1, status)
    assert.are.equal("", out)
  end)

  it("takes a file cut right after its table for a dump cut short", function()
    h.write(dir .. "/d.bin", dump():sub(1, 0x8C00))
    local status, out, err = h.run(TOOL, { dir .. "/d.bin" })
    assert.are.equal("nvs_tool: " .. dir .. "/d.bin: the dump ends before partition 'nvs'"
      .. " (0x9000 to 0xF000)\n", err)
    assert.are.equal(1, status)
    assert.are.equal("", out)
  end)
end)
