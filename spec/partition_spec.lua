--- The Lua API: nvsgen.partition and its setters.
local lfs = require("lfs")
local nvsgen = require("nvsgen")
local h = require("spec.support.helper")

local LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"
  .. "Fusce quis risus justo.\nSuspendisse egestas in nisi sit amet auctor.\n"
  .. "Pellentesque rhoncus dictum sodales.\nIn justo erat, viverra at interdum eget, interdum vel dui."

local function fresh(size, version)
  return nvsgen.partition{ size = size or 0x3000, version = version }:namespace("ns")
end

describe("nvsgen.partition", function()
  it("builds the reference's read-only sample byte for byte", function()
    local p = nvsgen.partition{ size = 0x2000 }
    p:namespace("storage")
    p:u8("u8_key", 255):i8("i8_key", -128):u16("u16_key", 65535)
    p:u32("u32_key", 4294967295):i32("i32_key", -2147483648)
    p:string("str_key", LOREM)
    local expected = h.read(h.VECTORS .. "/idf-samples/multipage-v2-readonly-small/expected.bin")
    assert.is_true(p:image() == expected)
  end)

  it("keeps the whole partition, reserved page included, from 0x3000 up", function()
    local image = fresh(0x5000):image()
    assert.are.equal(0x5000, #image)
    assert.are.equal(("\255"):rep(0x4000), image:sub(0x1001))
  end)

  it("encodes every integer type little-endian, 0xFF-padded", function()
    local p = fresh()
    p:u8("a", 0x12):i16("b", -2):u64("c", "18446744073709551615"):i64("d", math.mininteger)
    local image = p:image()
    local function data(entry) return image:sub(64 + 32 * entry + 25, 64 + 32 * entry + 32) end
    assert.are.equal("\x12\255\255\255\255\255\255\255", data(1))
    assert.are.equal("\xfe\xff\255\255\255\255\255\255", data(2))
    assert.are.equal(("\255"):rep(8), data(3))
    assert.are.equal("\0\0\0\0\0\0\0\x80", data(4))
  end)

  it("writes a version-2 blob as chunks across pages plus an index", function()
    local p = fresh(0x4000)
    p:blob("big", ("b"):rep(5000))
    local image = p:image()
    -- Chunk 0 fills page 0 after the namespace entry: 124 entries of data.
    assert.are.equal(0x42, image:byte(64 + 32 + 2))
    assert.are.equal(0, image:byte(64 + 32 + 4))
    assert.are.equal(124 * 32, string.unpack("<I2", image, 64 + 32 + 25))
    -- Chunk 1 and the index on page 1.
    assert.are.equal(0x42, image:byte(4096 + 64 + 2))
    assert.are.equal(1, image:byte(4096 + 64 + 4))
    assert.are.equal(5000 - 124 * 32, string.unpack("<I2", image, 4096 + 64 + 25))
    local index = 4096 + 64 + 32 * (1 + 33) -- header + 1032 payload bytes
    assert.are.equal(0x48, image:byte(index + 2))
    assert.are.equal(5000, string.unpack("<I4", image, index + 25))
    assert.are.equal(2, image:byte(index + 29))
  end)

  it("returns to an earlier namespace under its own index", function()
    local p = nvsgen.partition{ size = 0x3000 }
    p:namespace("one"):u8("a", 1):namespace("two"):u8("b", 2):namespace("one"):u8("c", 3)
    local image = p:image()
    assert.are.equal(1, image:byte(64 + 32 * 4 + 1))
    assert.are.equal("c", image:sub(64 + 32 * 4 + 9, 64 + 32 * 4 + 9))
  end)

  it("can be reset and reused for the next unit", function()
    local p = fresh():u8("a", 1)
    local first = p:image()
    p:reset():namespace("ns"):u8("a", 1)
    assert.is_true(first == p:image())
  end)

  it("erases every page it filled when reset, and only those stay in use", function()
    local p = nvsgen.partition{ size = 0x5000 }
    local empty = p:image()
    -- Three pages' worth of blobs: pages 0 to 2 written, page 3 kept free.
    p:namespace("ns")
    for i = 1, 5 do p:blob("b" .. i, ("\1"):rep(1900)) end
    assert.is_false(p:image():sub(2 * 4096 + 1, 3 * 4096) == ("\255"):rep(4096))
    assert.is_true(p:reset():image() == empty)
    p:namespace("ns"):u8("a", 1)
    local small = nvsgen.partition{ size = 0x5000 }
    small:namespace("ns"):u8("a", 1)
    assert.is_true(p:image() == small:image())
  end)

  it("writes its image to a file", function()
    local dir = h.tmpdir()
    local p = fresh()
    assert.is_true(p:write(dir .. "/x.bin"))
    assert.is_true(h.read(dir .. "/x.bin") == p:image())
    local ok, err = p:write(dir .. "/x.bin", { replace = false })
    assert.is_nil(ok)
    assert.are.equal(dir .. "/x.bin: already exists", err)
    h.cleanup(dir)
  end)

  it("refuses write options it does not know, at the caller's line, writing nothing", function()
    local dir = h.tmpdir()
    local p = fresh()
    h.write(dir .. "/x.bin", "old")
    local function raises(opts, message)
      local ok, err = pcall(function() p:write(dir .. "/x.bin", opts) end)
      assert.is_false(ok)
      assert.are.equal("partition_spec.lua", err:match("([^/]+):%d+: "))
      assert.are.equal(message, (err:gsub("^[^:]+:%d+: ", "")))
    end
    raises({ replce = false }, "partition:write: unknown option 'replce'")
    raises({ replace = "no" }, "partition:write: option 'replace' must be a boolean, got string")
    raises({ mode = "644" }, "partition:write: option 'mode' must be a file mode, got 644")
    raises({ mode = 4096 }, "partition:write: option 'mode' must be a file mode, got 4096")
    raises("replace", "partition:write: options table expected, got string")
    assert.are.equal("old", h.read(dir .. "/x.bin"))
    assert.is_true(p:write(dir .. "/y.bin", { mode = nvsgen.SECRET_MODE, replace = false }))
    assert.are.equal("rw-------", lfs.attributes(dir .. "/y.bin", "permissions"))
    assert.is_true(p:write(dir .. "/z.bin", {}))
    assert.are.equal("rw-r--r--", lfs.attributes(dir .. "/z.bin", "permissions"))
    h.cleanup(dir)
  end)

  it("names the file modes and errno values it uses", function()
    assert.are.equal(6 * 64 + 4 * 8 + 4, nvsgen.FILE_MODE)
    assert.are.equal(6 * 64, nvsgen.SECRET_MODE)
    local dir = h.tmpdir()
    assert.is_true(nvsgen.write_file(dir .. "/t", "a", nvsgen.FILE_MODE, false))
    local _, _, code = nvsgen.write_file(dir .. "/t", "b", nvsgen.FILE_MODE, false)
    assert.are.equal(nvsgen.EEXIST, code)
    assert.are.equal(require("nvsgen.core").EEXIST, nvsgen.EEXIST)
    assert.are.equal("a", h.read(dir .. "/t"))
    h.cleanup(dir)
  end)

  it("writes its image straight from the encoder, plain or encrypted, with its hash", function()
    local dir = h.tmpdir()
    local crypto = require("nvsgen.crypto")
    local p = fresh(0x6000)
    p:u32("n", 7)
    for _, how in ipairs({ "direct", "new", "replace", "atomic_new" }) do
      local path = dir .. "/" .. how .. ".bin"
      local size, hash = p:write_image(path, how, 420, true)
      assert.are.equal(0x6000, size)
      assert.is_true(h.read(path) == p:image())
      assert.are.equal(crypto.sha256_hex(p:image()), hash)
    end
    local ok, err = p:write_image(dir .. "/new.bin", "new")
    assert.is_nil(ok)
    assert.are.equal(dir .. "/new.bin: already exists", err)
    err = select(2, p:write_image(dir .. "/atomic_new.bin", "atomic_new"))
    assert.are.equal(dir .. "/atomic_new.bin: already exists", err)
    assert.are.equal(0x6000, p:write_image(dir .. "/direct.bin", "direct"))
    p:set_key(("k"):rep(32) .. ("t"):rep(32))
    local size, hash = p:write_image(dir .. "/enc.bin", "new", 384, true)
    assert.are.equal(0x6000, size)
    assert.is_true(h.read(dir .. "/enc.bin") == p:image())
    assert.are.equal(crypto.sha256_hex(p:image()), hash)
    assert.has_error(function() p:write_image(dir .. "/y.bin", "sideways") end)
    h.cleanup(dir)
  end)

  it("writes and renames files by name in a folder opened once", function()
    local core = require("nvsgen.core")
    local crypto = require("nvsgen.crypto")
    local dir = h.tmpdir()
    local p = fresh(0x6000)
    p:u32("n", 7)
    local folder = assert(core.folder(dir .. "/"))
    assert.are.equal("nvsgen.folder (" .. dir .. "/)", tostring(folder))
    local size, hash = p:write_image("a.part", "direct", 420, true, folder)
    assert.are.equal(0x6000, size)
    assert.are.equal(crypto.sha256_hex(p:image()), hash)
    assert.is_true(folder:rename("a.part", "a.bin"))
    assert.is_true(h.read(dir .. "/a.bin") == p:image())
    assert.is_nil(io.open(dir .. "/a.part"))
    -- Messages name the file by its path, as without a folder.
    assert.are.same({ nil, dir .. "/a.part: No such file or directory", 2 }, { folder:rename("a.part", "b.bin") })
    assert.are.same({ nil, dir .. "/a.bin: already exists", 17 }, { p:write_image("a.bin", "new", 420, false, folder) })
    assert.are.same({ nil, dir .. "/no/a.bin: No such file or directory", 2 },
      { p:write_image("no/a.bin", "direct", 420, false, folder) })
    -- The atomic ways too, in the folder or in a folder below it, leaving
    -- no temporary file.
    assert(lfs.mkdir(dir .. "/sub"))
    for _, name in ipairs({ "c.bin", "sub/c.bin" }) do
      assert.are.equal(0x6000, p:write_image(name, "atomic_new", 384, false, folder))
      assert.are.equal("rw-------", lfs.attributes(dir .. "/" .. name, "permissions"))
      assert.are.same({ nil, dir .. "/" .. name .. ": already exists", 17 },
        { p:write_image(name, "atomic_new", 420, false, folder) })
      p:u8("m" .. #name, 1) -- a new image, over the one just written
      assert.are.equal(0x6000, p:write_image(name, "replace", 420, false, folder))
      assert.are.equal("rw-r--r--", lfs.attributes(dir .. "/" .. name, "permissions"))
      assert.is_true(h.read(dir .. "/" .. name) == p:image())
    end
    -- Any file, as core.write_file writes it.
    assert.is_true(core.write_file("t.csv", "a,b\n", 420, false, folder))
    assert.are.equal("a,b\n", h.read(dir .. "/t.csv"))
    assert.are.same({ nil, dir .. "/t.csv: already exists", 17 }, { core.write_file("t.csv", "c", 420, false, folder) })
    assert.is_true(core.write_file("t.csv", "c", 420, true, folder))
    assert.are.equal("c", h.read(dir .. "/t.csv"))
    assert.are.same({ "a.bin", "c.bin", "sub/", "sub/c.bin", "t.csv" }, h.listing(dir))
    assert.are.same({ nil, dir .. "/no/c.bin: No such file or directory", 2 },
      { p:write_image("no/c.bin", "replace", 420, false, folder) })
    -- The current folder: names stay as they are in messages.
    local here = assert(core.folder("."))
    assert.are.same({ nil, "no-such.part: No such file or directory", 2 }, { here:rename("no-such.part", "x") })
    here:close()
    folder:close()
    assert.are.equal("nvsgen.folder (" .. dir .. "/, closed)", tostring(folder))
    assert.has_error(function() folder:rename("a.bin", "b.bin") end, "calling 'rename' on bad self (folder is closed)")
    assert.are.same({ nil, dir .. "/none: No such file or directory", 2 }, { core.folder(dir .. "/none") })
    h.cleanup(dir)
  end)

  describe("raises on programming mistakes, naming key and limit", function()
    local function raises(f, message)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.are.equal(message, (tostring(err):gsub("^[^:]+:%d+: ", "")))
    end

    it("unknown options and bad sizes", function()
      raises(function() nvsgen.partition{ size = 0x3000, verison = 2 } end,
        "nvsgen.partition: unknown option 'verison'")
      raises(function() nvsgen.partition{ size = 0x3001 } end,
        "nvsgen.partition: size 0x3001: partition size must be a multiple of 4096 and at least 4096")
      raises(function() nvsgen.partition{ size = 0x3000, version = 3 } end,
        "nvsgen.partition: version must be 1 or 2, got 3")
    end)

    it("a string holding a NUL byte, which the firmware would read cut short", function()
      local p = fresh():u8("n", 1)
      local before = p:image()
      raises(function() p:string("s", "a\0b") end,
        "key 's': string holds a NUL byte at 2; firmware would read only 'a'")
      assert.are.same({ nil, "key 's': string holds a NUL byte at 2; firmware would read only 'a'" },
        { p:put("string", "s", "a\0b") })
      assert.are.same({ nil, "key 't': string holds a NUL byte at 3; firmware would read only 'ab'" },
        { p:put("string", "t", "ab\0") })
      assert.are.same({ nil, "key 'u': string holds a NUL byte at 1; firmware would read an empty string" },
        { p:put("string", "u", "\0") })
      assert.are.same({ nil, "key 'v': string holds a NUL byte at 66; firmware would read only its first 65 bytes" },
        { p:put("string", "v", ("x"):rep(65) .. "\0") })
      assert.is_true(p:image() == before)
      -- blobs hold any bytes, and the refused keys are still free
      p:blob("b", "a\0b"):string("s", "a")
    end)

    it("wrong types", function()
      raises(function() fresh():string("s", {}) end, "key 's': string expects a string, got table")
      raises(function() fresh():u8("n", "x") end, "key 'n': x is not an integer")
      raises(function() fresh():u8("n", 1.5) end, "key 'n': 1.5 is not an integer")
      raises(function() fresh():double("d", "1") end, "key 'd': double expects a number, got string")
    end)

    it("out-of-range integers and NaN", function()
      raises(function() fresh():u16("n", 65536) end, "key 'n': 65536 out of range for u16 (0 to 65535)")
      raises(function() fresh():u64("n", -1) end,
        "key 'n': -1 out of range for u64 (0 to 18446744073709551615)")
      raises(function() fresh():float("f", 0 / 0) end, "key 'f': NaN is not allowed for float")
      raises(function() fresh():float("f", 1e300) end, "key 'f': 1e+300 out of range for float")
    end)

    it("keys too long, empty, repeated, or before a namespace", function()
      raises(function() fresh():u8("abcdefghijklmnop", 1) end,
        "key 'abcdefghijklmnop' is 16 bytes long, at most 15 are allowed")
      raises(function() fresh():u8("", 1) end, "empty key")
      raises(function() fresh():u8("a", 1):u8("a", 2) end, "key 'a' is already set in namespace 'ns'")
      raises(function() nvsgen.partition{ size = 0x3000 }:u8("a", 1) end,
        "key 'a': no namespace selected before it")
    end)

    it("strings and blobs over their limits", function()
      raises(function() fresh():string("s", ("x"):rep(4000)) end,
        "key 's': string of 4001 bytes (NUL included) exceeds the limit of 4000 bytes")
      raises(function() fresh(0x3000, 1):blob("b", ("x"):rep(1985)) end,
        "key 'b': blob of 1985 bytes exceeds the limit of 1984 bytes in version 1")
      raises(function() fresh(0x100000):blob("b", ("x"):rep(508001)) end,
        "key 'b': blob of 508001 bytes exceeds the limit of 508000 bytes")
    end)

    it("a full partition", function()
      raises(function() fresh():blob("b", ("x"):rep(9000)) end,
        "key 'b': does not fit, partition of 0x3000 bytes is full")
    end)

    it("more than 254 namespaces", function()
      local p = nvsgen.partition{ size = 0x100000 }
      for i = 1, 254 do p:namespace("n" .. i) end
      raises(function() p:namespace("n255") end, "namespace 'n255': more than 254 namespaces")
    end)
  end)

  it("leaves the partition unchanged when an item is refused", function()
    local p = fresh(0x3000):u8("a", 1)
    local before = p:image()
    assert.is_false(pcall(p.blob, p, "b", ("x"):rep(9000)))
    assert.is_true(before == p:image())
  end)

  it("accepts a 508000-byte blob where the pages allow it", function()
    local p = fresh(0x82000)
    p:blob("b", ("x"):rep(508000))
    assert.are.equal(0x82000, #p:image())
  end)
end)
