--- Bad input to `nvs_partition_gen generate`: one line on stderr naming the
-- file, line and key, a non-zero exit, and no output file.
local h = require("spec.support.helper")

local HEADER = "key,type,encoding,value\n"
local NS = HEADER .. "ns,namespace,,\n"

local function generate(files, argv_tail)
  local dir = h.tmpdir()
  for name, content in pairs(files) do h.write(dir .. "/" .. name, content) end
  local argv = { "generate", "in.csv", "out.bin" }
  for _, a in ipairs(argv_tail or { "0x3000" }) do argv[#argv + 1] = a end
  local status, out, err = h.run("nvsgen.cli.partition_gen", argv, dir)
  local wrote = h.exists(dir .. "/out.bin")
  local leftovers = {}
  for name in require("lfs").dir(dir) do
    if name:find("%.tmp%-") then leftovers[#leftovers + 1] = name end
  end
  h.cleanup(dir)
  return status, err, wrote, out, #leftovers
end

local function refuses(content, message, argv_tail)
  local status, err, wrote, out, leftovers = generate({ ["in.csv"] = content }, argv_tail)
  assert.are.equal(1, status)
  assert.are.equal("nvs_partition_gen: " .. message .. "\n", err)
  assert.are.equal("", out)
  assert.is_false(wrote)
  assert.are.equal(0, leftovers)
end

describe("nvs_partition_gen generate refuses bad input", function()
  it("a missing column in the header", function()
    refuses("kee,type,encoding,value\nns,namespace,,\n", "in.csv:1: header has no column 'key'")
  end)

  it("an empty file", function()
    refuses("", "in.csv: no header line")
  end)

  it("a data row before any namespace", function()
    refuses(HEADER .. "a,data,u8,1\n", "in.csv:2: key 'a': no namespace selected before it")
  end)

  it("an unknown type", function()
    refuses(NS .. "a,dat,u8,1\n",
      "in.csv:3: key 'a': unknown type 'dat' (expected namespace, data or file)")
  end)

  it("an unknown encoding, untrimmed", function()
    refuses(NS .. "a,data,u8 ,1\n", "in.csv:3: key 'a': unknown encoding 'u8 '")
  end)

  it("STRING, HEX2BIN or BASE64 in capitals, which the reference would store undecoded", function()
    refuses(NS .. "a,data,HEX2BIN,abcd\n", "in.csv:3: key 'a': encoding 'HEX2BIN' must be written 'hex2bin'")
    refuses(NS .. "a,data,String,x\n", "in.csv:3: key 'a': encoding 'String' must be written 'string'")
    refuses(NS .. "a,data,BASE64,YQ==\n", "in.csv:3: key 'a': encoding 'BASE64' must be written 'base64'")
    refuses(NS .. "a,data,Float,1\n", "in.csv:3: key 'a': unknown encoding 'Float'")
  end)

  it("a key longer than 15 bytes", function()
    refuses(NS .. "abcdefghijklmnop,data,u8,1\n",
      "in.csv:3: key 'abcdefghijklmnop' is 16 bytes long, at most 15 are allowed")
  end)

  it("an integer that is not a number", function()
    refuses(NS .. "a,data,u16,12a\n", "in.csv:3: key 'a': '12a' is not an integer")
  end)

  it("integers out of range, per type", function()
    refuses(NS .. "a,data,i8,200\n", "in.csv:3: key 'a': 200 out of range for i8 (-128 to 127)")
    refuses(NS .. "a,data,u8,-1\n", "in.csv:3: key 'a': -1 out of range for u8 (0 to 255)")
    refuses(NS .. "a,data,u64,18446744073709551616\n",
      "in.csv:3: key 'a': 18446744073709551616 out of range for u64 (0 to 18446744073709551615)")
    refuses(NS .. "a,data,i64,-9223372036854775809\n",
      "in.csv:3: key 'a': -9223372036854775809 out of range for i64 "
      .. "(-9223372036854775808 to 9223372036854775807)")
  end)

  it("odd-length and non-hex hex2bin", function()
    refuses(NS .. "a,data,hex2bin,abc\n", "in.csv:3: key 'a': invalid hex2bin value: odd number of hex digits")
    refuses(NS .. "a,data,hex2bin,zz\n", "in.csv:3: key 'a': invalid hex2bin value: not a hex digit")
  end)

  it("bad base64", function()
    refuses(NS .. "a,data,base64,YQ\n", "in.csv:3: key 'a': invalid base64: incorrect padding")
    refuses(NS .. "a,data,base64,YWJjZ\n",
      "in.csv:3: key 'a': invalid base64: data characters are one more than a multiple of 4")
  end)

  it("a missing file", function()
    refuses(NS .. "a,file,binary,nope.bin\n",
      "in.csv:3: key 'a': cannot read file 'nope.bin': No such file or directory")
  end)

  it("a string too long for its version", function()
    refuses(NS .. "a,data,string," .. ("x"):rep(4000) .. "\n",
      "in.csv:3: key 'a': string of 4001 bytes (NUL included) exceeds the limit of 4000 bytes")
    refuses(NS .. "a,data,string," .. ("x"):rep(1984) .. "\n",
      "in.csv:3: key 'a': string of 1985 bytes (NUL included) exceeds the limit of 1984 bytes in version 1",
      { "0x3000", "--version", "1" })
  end)

  it("a string holding a NUL byte, which the firmware would read cut short", function()
    refuses(NS .. "s,data,string,a\0b\nt,data,u8,1\n",
      "in.csv:3: key 's': string holds a NUL byte at 2; firmware would read only 'a'")
    refuses(NS .. 't,data,u8,1\ns,data,string,"\0b"\n',
      "in.csv:4: key 's': string holds a NUL byte at 1; firmware would read an empty string")
    local status, err, wrote = generate({
      ["in.csv"] = NS .. "s,file,string,v.txt\n",
      ["v.txt"] = ("x"):rep(70) .. "\0tail",
    })
    assert.are.equal(1, status)
    assert.are.equal("nvs_partition_gen: in.csv:3: key 's': string holds a NUL byte at 71; "
      .. "firmware would read only its first 70 bytes\n", err)
    assert.is_false(wrote)
  end)

  it("a version-1 blob too long", function()
    refuses(NS .. "a,data,hex2bin," .. ("ab"):rep(1985) .. "\n",
      "in.csv:3: key 'a': blob of 1985 bytes exceeds the limit of 1984 bytes in version 1",
      { "0x3000", "--version", "1" })
  end)

  it("data too large for SIZE", function()
    local rows = {}
    for i = 1, 12 do rows[i] = ("k%d,data,string,%s\n"):format(i, ("x"):rep(1000)) end
    refuses(NS .. table.concat(rows),
      "in.csv:9: key 'k7': does not fit, partition of 0x3000 bytes is full")
  end)

  it("a file row naming a folder", function()
    refuses(NS .. "a,file,binary,.\n", "in.csv:3: key 'a': cannot read file '.': Is a directory")
  end)

  it("a key set twice in one namespace", function()
    refuses(NS .. "a,data,u8,1\na,data,u8,2\n", "in.csv:4: key 'a' is already set in namespace 'ns'")
  end)

  it("SIZE that is not a number or not a multiple of 4096", function()
    refuses(NS, "size 'abc' is not a number", { "abc" })
    refuses(NS, "size 0x3001 is not a multiple of 4096", { "0x3001" })
    refuses(NS, "size 0 is too small: at least 0x1000 (read-only) or 0x3000 bytes", { "0" })
  end)

  it("a CSV that is not UTF-8", function()
    refuses(NS .. "a,data,string,\255\254\n", "in.csv:3: not valid UTF-8")
  end)

  it("an unterminated quote", function()
    refuses(NS .. "a,data,string,\"abc\nb,data,u8,1\n", "in.csv:3: unterminated quoted field")
  end)

  it("an unreadable CSV", function()
    local status, err, wrote = generate({})
    assert.are.equal(1, status)
    assert.are.equal("nvs_partition_gen: in.csv: cannot open (No such file or directory)\n", err)
    assert.is_false(wrote)
  end)

  it("a command line without SIZE", function()
    local dir = h.tmpdir()
    local status, _, err = h.run("nvsgen.cli.partition_gen", { "generate", "in.csv", "out.bin" }, dir)
    h.cleanup(dir)
    assert.are.equal(2, status)
    assert.matches("the following arguments are required: input\n$", err)
  end)
end)

describe("nvs_partition_gen generate reads input as the reference does", function()
  local function image_of(csv_text, size)
    local dir = h.tmpdir()
    h.write(dir .. "/in.csv", csv_text)
    local argv = { "generate", "in.csv", "out.bin", size or "0x3000" }
    local status, out, err = h.run("nvsgen.cli.partition_gen", argv, dir)
    local image = h.read(dir .. "/out.bin")
    h.cleanup(dir)
    assert.are.equal("", err)
    assert.are.equal(0, status)
    return image, out
  end

  it("integer encodings and binary in capitals, as their lower-case names", function()
    assert.is_true(image_of(NS .. "a,data,u8,5\nb,data,binary,xy\n")
      == image_of(NS .. "a,data,U8,5\nb,data,BINARY,xy\n"))
  end)

  it("numbers with Unicode digits and white space, as Python's int() reads them", function()
    assert.is_true(image_of(NS .. "a,data,i32,-33\nb,data,hex2bin,abcd\n")
      == image_of(NS .. "a,data,i32,-\u{663}_\u{663}\u{A0}\nb,data,hex2bin,\u{3000}abcd\28\n"))
    assert.is_true(image_of(NS .. "a,data,u8,1\n", "0x3000")
      == image_of(NS .. "a,data,u8,1\n", "0x0000000000000003000"))
    assert.is_true(image_of(NS .. "a,data,u8,1\n", "0x3000")
      == image_of(NS .. "a,data,u8,1\n", "\u{FF11}\u{FF12}\u{FF12}\u{FF18}\u{FF18}"))
  end)

  it("a file's bytes as bytes: base64 skips non-ASCII, hex2bin strips ASCII space only", function()
    local dir = h.tmpdir()
    h.write(dir .. "/in.csv", NS .. "a,file,base64,a.txt\nb,file,hex2bin,b.txt\nc,data,hex2bin,\28ab\n")
    h.write(dir .. "/a.txt", "\255QU\200JD")
    h.write(dir .. "/b.txt", " abcd\n")
    local status, _, err = h.run("nvsgen.cli.partition_gen", { "generate", "in.csv", "out.bin", "0x3000" }, dir)
    local image = h.read(dir .. "/out.bin")
    assert.are.equal("", err)
    assert.are.equal(0, status)
    assert.are.equal("ABC", image:sub(64 + 32 * 2 + 1, 64 + 32 * 2 + 3))
    assert.are.equal("\171\205", image:sub(64 + 32 * 5 + 1, 64 + 32 * 5 + 2))
    assert.are.equal("\171", image:sub(64 + 32 * 8 + 1, 64 + 32 * 8 + 1))
    -- In a file, \28 is not white space to bytes.strip().
    h.write(dir .. "/b.txt", "\28abcd")
    status, _, err = h.run("nvsgen.cli.partition_gen", { "generate", "in.csv", "out2.bin", "0x3000" }, dir)
    h.cleanup(dir)
    assert.are.equal(1, status)
    assert.matches("^nvs_partition_gen: in.csv:4: key 'b': invalid hex2bin value", err)
  end)

  it("warns of a read-only size as often as the reference", function()
    local _, out = image_of(NS .. "a,data,u8,1\n", "0x2000")
    assert.are.equal('Minimum partition size for read/write NVS is 0x3000 bytes. Partitions smaller '
      .. 'than this must be flagged as "readonly" in the partition table CSV.\n'
      .. "Creating NVS binary with version: V2 - Multipage Blob Support Enabled\n"
      .. "Created NVS binary: ===> out.bin\n", out)
  end)
end)

describe("nvs_partition_gen generate does better than the reference", function()
  it("writes a 4000-byte string (NUL included) on a page of its own", function()
    local dir = h.tmpdir()
    h.write(dir .. "/in.csv", NS .. "a,data,u8,1\ns,data,string," .. ("x"):rep(3999) .. "\n")
    local status = h.run("nvsgen.cli.partition_gen", { "generate", "in.csv", "out.bin", "0x4000" }, dir)
    local image = h.read(dir .. "/out.bin")
    h.cleanup(dir)
    assert.are.equal(0, status)
    -- Page 0 holds the namespace and `a`, is FULL; page 1 the string, span 126.
    assert.are.equal(0xFFFFFFFC, string.unpack("<I4", image, 1))
    assert.are.equal(0xFFFFFFFE, string.unpack("<I4", image, 4097))
    assert.are.equal(0x21, image:byte(4096 + 64 + 2))
    assert.are.equal(126, image:byte(4096 + 64 + 3))
    assert.are.equal(("x"):rep(3999) .. "\0", image:sub(4096 + 97, 4096 + 96 + 4000))
  end)

  it("accepts float and double encodings", function()
    local dir = h.tmpdir()
    h.write(dir .. "/in.csv", NS .. "f,data,float,1.5\nd,data,double,-2.25e3\n")
    local status = h.run("nvsgen.cli.partition_gen", { "generate", "in.csv", "out.bin", "0x3000" }, dir)
    local image = h.read(dir .. "/out.bin")
    h.cleanup(dir)
    assert.are.equal(0, status)
    assert.are.equal(0x24, image:byte(64 + 32 + 2))
    assert.are.equal(string.pack("<f", 1.5) .. "\255\255\255\255", image:sub(64 + 32 + 25, 64 + 32 + 32))
    assert.are.equal(0x28, image:byte(64 + 64 + 2))
    assert.are.equal(string.pack("<d", -2250.0), image:sub(64 + 64 + 25, 64 + 64 + 32))
  end)

  it("refuses NaN as the firmware does", function()
    refuses(NS .. "f,data,float,nan\n", "in.csv:3: key 'f': NaN is not allowed for float")
  end)
end)
