--- nvsgen.cli.args and nvsgen.cli.common: argparse-compatible parsing,
-- sizes and output names as the reference tools take them.
local args = require("nvsgen.cli.args")
local common = require("nvsgen.cli.common")

local SPEC = {
  prog = "tool generate",
  positionals = { { name = "input", many = true }, { name = "output" }, { name = "size" } },
  options = { { "--version", choices = { "1", "2" }, default = "2" }, { "--outdir", default = "." },
              { "--keygen", flag = true }, { "--prefix_num", nargs = 2, metavar = "START LENGTH" } },
}

describe("nvsgen.cli.args", function()
  it("fills a many-positional before fixed ones, options anywhere", function()
    local o = assert(args.parse(SPEC, { "a.csv", "--version", "1", "b.csv", "out.bin", "0x3000", "--keygen" }))
    assert.are.same({ "a.csv", "b.csv" }, o.input)
    assert.are.equal("out.bin", o.output)
    assert.are.equal("0x3000", o.size)
    assert.are.equal("1", o.version)
    assert.is_true(o.keygen)
    assert.are.equal(".", o.outdir)
  end)

  it("accepts --opt=value and unique prefixes", function()
    local o = assert(args.parse(SPEC, { "--outd=x", "--ver", "2", "a", "b", "c" }))
    assert.are.equal("x", o.outdir)
    assert.are.equal("2", o.version)
  end)

  it("reports mistakes as argparse words them", function()
    assert.are.equal("argument --version: invalid choice: '3' (choose from 1, 2)",
      select(2, args.parse(SPEC, { "--version", "3", "a", "b", "c" })))
    assert.are.equal("the following arguments are required: input", select(2, args.parse(SPEC, { "b", "c" })))
    assert.are.equal("unrecognized argument: --nope", select(2, args.parse(SPEC, { "--nope", "a", "b", "c" })))
    assert.are.equal("argument --outdir: expected one argument",
      select(2, args.parse(SPEC, { "a", "b", "c", "--outdir" })))
  end)

  it("takes a fixed number of words for an nargs option, negative numbers included", function()
    local o = assert(args.parse(SPEC, { "a", "--prefix_num", "-3", "4", "b", "c" }))
    assert.are.same({ "-3", "4" }, o.prefix_num)
    assert.are.same({ "a" }, o.input)
    for _, argv in ipairs{ { "a", "b", "c", "--prefix_num", "1" }, { "a", "b", "c", "--prefix_num", "1", "--keygen" },
        { "a", "b", "c", "--prefix_num=1", "2" } } do
      assert.are.equal("argument --prefix_num: expected 2 arguments", select(2, args.parse(SPEC, argv)))
    end
    assert.matches("%[%-%-prefix_num START LENGTH%]", args.usage(SPEC))
  end)

  it("sets help for -h", function()
    assert.is_true(args.parse(SPEC, { "-h" }).help)
    assert.matches("^usage: tool generate %[%-h%]", args.help(SPEC))
  end)
end)

describe("nvsgen.cli.common", function()
  it("parses sizes as Python's int(text, 0)", function()
    assert.are.equal(0x3000, common.parse_int("0x3000"))
    assert.are.equal(12288, common.parse_int(" 12288 "))
    assert.are.equal(0x3000, common.parse_int("0X3_000"))
    assert.are.equal(8, common.parse_int("0o10"))
    assert.is_nil(common.parse_int("012"))
    assert.is_nil(common.parse_int("3000h"))
    assert.are.equal(0, common.parse_int("00"))
    assert.are.equal(0x3000, common.parse_int("0x0000000000000003000"))
    assert.are.equal(12288, common.parse_int("\u{FF11}\u{FF12}\u{FF12}\u{FF18}\u{FF18}\u{A0}"))
    assert.is_nil(common.parse_int("1234567890123456"))
  end)

  it("reports a failure on one line, control characters escaped", function()
    local saved = common.stderr
    local lines = {}
    common.stderr = { write = function(_, ...) for _, s in ipairs({ ... }) do lines[#lines + 1] = s end end }
    local status = common.fail("tool", "out/u-x\ny\r\t\1\127.csv: No such file or directory")
    common.stderr = saved
    assert.are.equal(1, status)
    assert.are.equal("tool: out/u-x\\ny\\r\\t\\x01\\x7f.csv: No such file or directory\n", table.concat(lines))
  end)

  it("checks partition sizes", function()
    assert.are.equal(0x1000, common.partition_size("4096"))
    assert.are.equal("size 0x1800 is not a multiple of 4096", select(2, common.partition_size("0x1800")))
  end)

  it("splits extensions as os.path.splitext does", function()
    local cases = {
      { "out.bin", "out", ".bin" }, { "a.b.csv", "a.b", ".csv" }, { "out", "out", "" },
      { ".bin", ".bin", "" }, { "..csv", "..csv", "" }, { "...", "...", "" },
      { ".a.b", ".a", ".b" }, { "a..", "a.", "." }, { "d.x/f", "d.x/f", "" },
      { "d/.x.bin", "d/.x", ".bin" }, { "", "", "" },
    }
    for _, c in ipairs(cases) do
      assert.are.same({ c[2], c[3] }, { common.split_ext(c[1]) })
    end
    assert.is_true(common.has_bin_ext("k.bin2"))
    assert.is_false(common.has_bin_ext(".bin"))
    assert.is_false(common.has_bin_ext("k.bi"))
  end)

  it("names output files as the reference does", function()
    assert.are.equal("out.bin", common.bin_name("out"))
    assert.are.equal("out.bin", common.bin_name("out.bin"))
    assert.are.equal("out.txt: only the .bin extension is allowed", select(2, common.bin_name("out.txt")))
    -- A name of dots and one word has no extension, as os.path.splitext sees it.
    assert.are.equal(".bin.bin", common.bin_name(".bin"))
    assert.are.equal("d.x/.keys.bin", common.bin_name("d.x/.keys"))
    assert.are.equal(".k.bin", common.bin_name(".k.bin"))
    assert.are.equal("out.: only the .bin extension is allowed", select(2, common.bin_name("out.")))
    assert.are.equal("dir/x.bin", common.join("dir/", "x.bin"))
    assert.are.equal("/abs/x.bin", common.join("dir", "/abs/x.bin"))
  end)
end)
