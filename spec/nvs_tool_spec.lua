--- Specs for the nvs_tool command line: nvs_tool.py's dumps and checks,
-- decryption, the JSON format, refusals.
local h = require("spec.support.helper")
local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")
local json = require("dkjson")

local MODULE = "nvsgen.cli.nvs_tool"
local V2 = h.VECTORS .. "/idf-samples/multipage-v2/expected.bin"
local V2_ENC = h.VECTORS .. "/idf-samples/multipage-v2-encrypted"
local V1 = h.VECTORS .. "/idf-samples/singlepage-v1/expected.bin"

local function run(...)
  return h.run(MODULE, { ... })
end

--- Asserts that `text` begins with `prefix`.
local function starts(prefix, text)
  assert.equal(prefix, text:sub(1, #prefix))
end

describe("nvs_tool", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  it("dumps every page with its entries as nvs_tool.py does", function()
    local status, out = run(V2)
    assert.equal(0, status)
    local lines = {}
    for line in out:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
    assert.equal("Page no. 0, Status: Full, Version: 2, CRC32: b9ba2d84, Page address: 0x0", lines[1])
    assert.equal(" Entry state bitmap: " .. ("aa "):rep(31) .. "fa ", lines[2])
    assert.equal(" 000. Written, Namespace Index: 000, Type: uint8_t   , Span: 001, Chunk Index: 255, "
      .. "CRC32:  7a43ec9 | dummyNamespace : 1", lines[3])
    assert.equal(" 006. Written, Namespace Index: 001, Type: string    , Span: 008, Chunk Index: 255, "
      .. "CRC32: e80c0d67 | dummyStringKey : Size=222, CRC32=8f66953b", lines[9])
    assert.equal("      0x000  4c 6f 72 65 6d 20 69 70 73 75 6d 20 64 6f 6c 6f  72 20 73 69 74 20 61 6d "
      .. "65 74 2c 20 63 6f 6e 73  Lorem ipsum dolo r sit amet, cons", lines[10])
    assert.equal(" 016. Written, Namespace Index: 001, Type: blob_index, Span: 001, Chunk Index: 255, "
      .. "CRC32: a84c299b | dummyHex2BinKey : Size=6, ChunkCount=1, ChunkStart=0", lines[19])
    assert.truthy(out:find("\n 068. Empty\n ...\n 125. Empty\n\nPage Empty, Page address: 0x3000\n", 1, true))
    assert.truthy(out:find("\n 000. Empty\n ...\n 125. Empty\n\n$"))
  end)

  it("dumps only written entries with -d written", function()
    local status, out = run(V2, "-d", "written")
    assert.equal(0, status)
    assert.falsy(out:find("Empty\n", 1, true))
    assert.truthy(out:find("\nPage Empty, Page address: 0x3000\n Entry state bitmap: " .. ("ff "):rep(32) .. "\n\n$"))
  end)

  it("dumps values, namespaces, blobs and storage counts", function()
    local _, out = run(V2, "-d", "minimal")
    starts("Page no. 0, Status: Full\n dummyNamespace:dummyU8Key = 127\n dummyNamespace:dummyI8Key = -128\n", out)
    assert.truthy(out:find("\n dummyNamespace:dummyHex2BinKey[0] = b'\\x01\\x02\\x03\\xab\\xcd\\xef'\n", 1, true))
    assert.truthy(out:find("\n dummyNamespace:hexFileKey[0] = b'\\x01#Eg\\x89\\xab\\xcd\\xef'\n", 1, true))
    assert.truthy(out:find("\n\nPage no. 2, Status: Active\n", 1, true))
    _, out = run(V2, "-d", "namespaces")
    assert.equal("Index : Namespace\n 001  : dummyNamespace\n", out)
    _, out = run(V2, "-d", "blobs")
    assert.equal("dummyNamespace:dummyHex2BinKey - Type: Blob (Version 2), Size: 6\n"
      .. "  0x00000  01 02 03 ab cd ef " .. ("ff "):rep(10) .. " " .. ("ff "):rep(16) .. " ...«Íï"
      .. ("ÿ"):rep(10) .. " " .. ("ÿ"):rep(16) .. "\n\n", out:match("^(.-\n\n)"))
    _, out = run(V1, "-d", "blobs")
    starts("dummyNamespace:dummyStringKey - Type: String, Size: 222\n  0x00000  4c 6f", out)
    assert.truthy(out:find("\ndummyNamespace:binFileKey - Type: Blob (Version 1), Size: 225\n", 1, true))
    _, out = run(V2, "-d", "storage_info")
    starts("Page Full\n  Found entries:\n    Written:    19\n    Erased:      0\n    Empty:       0\n"
      .. "    Invalid:     0\n    Total:      19\n\n", out)
    assert.truthy(out:find("\nGlobal\n  Config:\n    Page size:    4096\n    Entry size:     32\n"
      .. "    Total pages:     4\n  Entries:\n", 1, true))
  end)

  it("checks a sound image and exits 0", function()
    local status, out, err = run(V2, "-i", "-d", "none")
    assert.equal(0, status)
    assert.equal("", err)
    assert.equal("\nPage no. 0 \tCRC32: OK\nPage no. 1 \tCRC32: OK\nPage no. 2 \tCRC32: OK\nPage Empty\n\n"
      .. "The firmware mounts this image with no problem.\n", out)
  end)

  it("colours the checks with --color always", function()
    local _, out = run(V2, "-i", "-d", "none", "--color", "always")
    assert.truthy(out:find("\27[36mPage no. 0\27[0m \tCRC32: OK\n", 1, true))
    _, out = run(V2, "-i", "-d", "none", "--color", "auto")
    assert.falsy(out:find("\27", 1, true))
  end)

  it("decrypts with --keys and reads what the plain image holds", function()
    local status, enc = run(V2_ENC .. "/expected.bin", "--keys", V2_ENC .. "/testdata/sample_encryption_keys.bin",
      "-f", "json")
    assert.equal(0, status)
    local _, plain = run(V2, "-f", "json")
    local a, b = json.decode(enc), json.decode(plain)
    assert.is_true(a.encrypted)
    assert.is_false(b.encrypted)
    assert.same(b.items, a.items)
    assert.same({}, a.problems)
    status = run(V2_ENC .. "/expected.bin", "--keys", V2_ENC .. "/testdata/sample_encryption_keys.bin", "-i")
    assert.equal(0, status)
    -- without the key the entries are noise
    status = run(V2_ENC .. "/expected.bin", "-i", "-d", "none")
    assert.equal(1, status)
  end)

  it("writes every value losslessly as JSON in a stable order", function()
    local p = nvsgen.partition{ size = 0x5000 }
    p:namespace("types")
    p:u8("u8", 255):i8("i8", -128):u16("u16", 65535):i16("i16", -32768)
    p:u32("u32", 4294967295):i32("i32", -2147483648)
    p:u64("u64", "18446744073709551615"):i64("i64", math.mininteger)
    p:float("float", 0.1):double("double", 0.1):float("inf", -math.huge)
    p:string("text", "héllo \"q\"\n"):string("bytes", "\xff\xfe")
    p:blob("blob", "\0\1\2" .. ("z"):rep(5000))
    local path = dir .. "/p.bin"
    assert(p:write(path))
    local status, out = run(path, "-f", "json")
    assert.equal(0, status)
    starts('{\n  "name": "p.bin",\n  "encrypted": false,\n  "pages": [\n    {\n      "index": 0,\n'
      .. '      "state": "full",\n', out)
    assert.truthy(out:find('    {\n      "page": 0,\n      "entry": 7,\n      "namespace": "types",\n'
      .. '      "key": "u64",\n      "type": "u64",\n      "value": 18446744073709551615\n    }', 1, true))
    local doc = json.decode(out)
    local values = {}
    for _, item in ipairs(doc.items) do values[item.key] = item end
    assert.equal(255, values.u8.value)
    assert.equal(math.mininteger, values.i64.value)
    assert.equal(0.1, values.double.value)
    -- a float as the double it is, exactly
    assert.equal(string.unpack("<f", string.pack("<f", 0.1)), values.float.value)
    assert.truthy(out:find('"key": "float",\n      "type": "float",\n      "value": 0.10000000149011612\n', 1, true))
    assert.truthy(out:find('"key": "double",\n      "type": "double",\n      "value": 0.1\n', 1, true))
    assert.equal("-inf", values.inf.value)
    assert.equal("héllo \"q\"\n", values.text.value)
    assert.is_nil(values.text.encoding)
    assert.equal("fffe", values.bytes.value)
    assert.equal("hex", values.bytes.encoding)
    assert.equal("hex", values.blob.encoding)
    assert.equal("\0\1\2" .. ("z"):rep(5000), nvsgen.hex_decode(values.blob.value))
    assert.same({}, doc.problems)
    -- the same bytes every time
    local _, again = run(path, "-f", "json")
    assert.equal(out, again)
  end)

  it("refuses a missing file, an unaligned one, a wrong key and bad options", function()
    local status, out, err, _ = run(dir .. "/none.bin")
    assert.equal(1, status)
    assert.equal("", out)
    assert.equal("nvs_tool: " .. dir .. "/none.bin: No such file or directory\n", err)
    h.write(dir .. "/short.bin", ("\255"):rep(5000))
    status, _, err = run(dir .. "/short.bin", "-i")
    assert.equal(1, status)
    assert.equal("nvs_tool: " .. dir .. "/short.bin: Given partition data is not aligned to page size "
      .. "(5000 % 4096 = 904)\n", err)
    local key = crypto.generate_key()
    assert(crypto.write_keys(dir .. "/keys.bin", key))
    status, _, err = run(V2_ENC .. "/expected.bin", "--keys", dir .. "/keys.bin")
    assert.equal(1, status)
    assert.equal("nvs_tool: wrong key: 320 of 320 entries fail their CRC check\n", err)
    status, _, err = run(V2, "-d", "everything")
    assert.equal(2, status)
    assert.truthy(err:find("nvs_tool: argument --dump: invalid choice: 'everything' (choose from all, written, "
      .. "minimal, namespaces, blobs, storage_info, none)\n", 1, true))
    status, out = run("-h")
    assert.equal(0, status)
    assert.truthy(out:find("^usage: nvs_tool %[%-h%]"))
  end)

  it("exits with the status of -i as a separate process", function()
    local bad = dir .. "/bad.bin"
    local image = h.read(V2)
    h.write(bad, image:sub(1, 100) .. string.char(image:byte(101) ~ 1) .. image:sub(102))
    local cmd = ("lua5.4 %s/bin/nvs_tool.lua %s -i -d none 2>&1"):format(h.ROOT, bad)
    local pipe = assert(io.popen(cmd))
    local out = pipe:read("a")
    local _, _, code = pipe:close()
    assert.equal(1, code)
    assert.truthy(out:find("\nPage 0, entry 001: error: entry crc mismatch\n", 1, true))
    pipe = assert(io.popen(("lua5.4 %s/bin/nvs_tool.lua %s -i -d none 2>&1"):format(h.ROOT, V2)))
    pipe:read("a")
    _, _, code = pipe:close()
    assert.equal(0, code)
  end)
end)
