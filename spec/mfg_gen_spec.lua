--- `mfg_gen generate` and `generate-key`: the ESP-IDF mfg sample byte for
-- byte (images and unit CSVs), REPEAT, empty values, --fileid, refusals
-- with exact messages, no file left by a failing unit and no temporary file
-- beside the inputs, and the encryption options.
local h = require("spec.support.helper")
local lfs = require("lfs")
local crypto = require("nvsgen.crypto")

local CLI = "nvsgen.cli.mfg_gen"
local SAMPLE = h.VECTORS .. "/mfg-samples"
local V2 = "Creating NVS binary with version: V2 - Multipage Blob Support Enabled"

local function copy_tree(from, to)
  lfs.mkdir(to)
  for name in lfs.dir(from) do
    if name ~= "." and name ~= ".." then
      local src, dst = from .. "/" .. name, to .. "/" .. name
      if lfs.attributes(src, "mode") == "directory" then
        copy_tree(src, dst)
      else
        h.write(dst, h.read(src))
      end
    end
  end
end

--- What mfg_gen prints for one plain unit.
local function unit_lines(outdir, name, extra)
  return "\nCreated CSV file: ===> " .. outdir .. "/csv/" .. name .. ".csv\n"
    .. (extra or "")
    .. "\n" .. V2 .. "\n\nCreated NVS binary: ===> " .. outdir .. "/bin/" .. name .. ".bin\n"
end

local dir
before_each(function() dir = h.tmpdir() end)
after_each(function() h.cleanup(dir) end)

local function run(argv) return h.run(CLI, argv, dir) end

--- Writes the config and values files of a small case into dir.
local function inputs(config, values)
  h.write(dir .. "/config.csv", config)
  h.write(dir .. "/values.csv", values)
end

local SMALL_CONFIG = "ns,namespace,\nserial,data,u32\nname,data,string\n"

describe("mfg_gen generate", function()
  it("reproduces the ESP-IDF mfg sample byte for byte, without temporary files", function()
    copy_tree(SAMPLE, dir)
    local before = h.listing(dir)
    local argv = h.lines(SAMPLE .. "/args.txt")
    local st, out, err = run(argv)
    assert.are.equal("", err)
    assert.are.equal(0, st)
    for i = 1, 3 do
      local name = "Sample-" .. i
      assert.is_true(h.read(dir .. "/out/bin/" .. name .. ".bin")
        == h.read(SAMPLE .. "/expected/bin/" .. name .. ".bin"), name .. ".bin differs")
      assert.are.equal(h.read(SAMPLE .. "/expected/csv/" .. name .. ".csv"),
        h.read(dir .. "/out/csv/" .. name .. ".csv"))
    end
    assert.are.equal(unit_lines("out", "Sample-1") .. unit_lines("out", "Sample-2")
      .. unit_lines("out", "Sample-3") .. "\nFiles generated in out ...\n", out)
    local after = {}
    for _, f in ipairs(h.listing(dir)) do
      if f:sub(1, 4) ~= "out/" then after[#after + 1] = f end
    end
    assert.are.same(before, after)
    assert.are.same({ "out/", "out/bin/", "out/bin/Sample-1.bin", "out/bin/Sample-2.bin",
      "out/bin/Sample-3.bin", "out/csv/", "out/csv/Sample-1.csv", "out/csv/Sample-2.csv",
      "out/csv/Sample-3.csv" }, (function()
        local l = {}
        for _, f in ipairs(h.listing(dir)) do if f:sub(1, 4) == "out/" then l[#l + 1] = f end end
        return l
      end)())
  end)

  it("writes the unit CSV as Python's csv writer does and compiles it to the same image", function()
    inputs("ns,namespace,\nkey,data,string\nblob,data,hex2bin\n",
      'id,key,blob\n1,"a,b ""q""",0a0b\n2,,\n')
    local st, _, err = run({ "generate", "config.csv", "values.csv", "U", "0x3000", "--outdir", "o" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal('key,type,encoding,value\r\nns,namespace,,\r\nkey,data,string,"a,b ""q"""\r\n'
      .. "blob,data,hex2bin,0a0b\r\n", h.read(dir .. "/o/csv/U-1.csv"))
    assert.are.equal("key,type,encoding,value\r\nns,namespace,,\r\nkey,data,string,\r\n"
      .. "blob,data,hex2bin,\r\n", h.read(dir .. "/o/csv/U-2.csv"))
    -- The unit CSVs give the same images through nvs_partition_gen.
    for i = 1, 2 do
      local status = h.run("nvsgen.cli.partition_gen",
        { "generate", "o/csv/U-" .. i .. ".csv", "again-" .. i .. ".bin", "0x3000" }, dir)
      assert.are.equal(0, status)
      assert.is_true(h.read(dir .. "/again-" .. i .. ".bin") == h.read(dir .. "/o/bin/U-" .. i .. ".bin"))
    end
  end)

  it("compiles like nvs_partition_gen with --version 1, skipping rows it reads as comments", function()
    inputs("ns,namespace,\n#note,data,string\nblob,data,hex2bin\n", "#note,blob\nhello,0a0b0c\n")
    local st, out = run({ "generate", "config.csv", "values.csv", "V", "0x3000", "--outdir", "o",
      "--version", "1" })
    assert.are.equal(0, st)
    assert.are.equal("\nCreated CSV file: ===> o/csv/V-1.csv\n\nCreating NVS binary with version: "
      .. "V1 - Multipage Blob Support Disabled\n\nCreated NVS binary: ===> o/bin/V-1.bin\n"
      .. "\nFiles generated in o ...\n", out)
    assert.are.equal("key,type,encoding,value\r\nns,namespace,,\r\n#note,data,string,hello\r\n"
      .. "blob,data,hex2bin,0a0b0c\r\n", h.read(dir .. "/o/csv/V-1.csv"))
    st = h.run("nvsgen.cli.partition_gen", { "generate", "o/csv/V-1.csv", "again.bin", "0x3000",
      "--version", "1" }, dir)
    assert.are.equal(0, st)
    assert.is_true(h.read(dir .. "/again.bin") == h.read(dir .. "/o/bin/V-1.bin"))
  end)

  it("fills REPEAT keys in every later row with the first row's value", function()
    inputs("ns,namespace,\nserial,data,u32\nname,data,string,REPEAT\n",
      "serial,name\n1,first\n2,\n\n   \n3,other\n")
    local st, _, err = run({ "generate", "config.csv", "values.csv", "R", "0x3000", "--outdir", "o" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    for i = 1, 3 do
      assert.are.equal("key,type,encoding,value\r\nns,namespace,,\r\nserial,data,u32," .. i
        .. "\r\nname,data,string,first\r\n", h.read(dir .. "/o/csv/R-" .. i .. ".csv"))
    end
  end)

  it("drops lines of white space only before reading the CSV, even inside a quoted value", function()
    -- As mfg_gen.py's str.isspace() sees it: a no-break space and \28 too.
    inputs("\nns,namespace,\n \t\nserial,data,u32\n\u{A0}\nname,data,string\n",
      'serial,name\n\28\n1,"a\n\n  \nb"\n\u{3000}\n2,"  "\n')
    local st, _, err = run({ "generate", "config.csv", "values.csv", "B", "0x3000", "--outdir", "o" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal('key,type,encoding,value\r\nns,namespace,,\r\nserial,data,u32,1\r\n'
      .. 'name,data,string,"a\nb"\r\n', h.read(dir .. "/o/csv/B-1.csv"))
    assert.are.equal('key,type,encoding,value\r\nns,namespace,,\r\nserial,data,u32,2\r\n'
      .. 'name,data,string,  \r\n', h.read(dir .. "/o/csv/B-2.csv"))
    assert.is_nil(h.read(dir .. "/o/csv/B-3.csv"))
  end)

  it("keeps a byte order mark of the config file in the first key, as mfg_gen.py does", function()
    inputs("\239\187\191ns,namespace,\nserial,data,u32\n", "\239\187\191serial\n7\n")
    local st, _, err = run({ "generate", "config.csv", "values.csv", "M", "0x3000", "--outdir", "o" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal("key,type,encoding,value\r\n\239\187\191ns,namespace,,\r\nserial,data,u32,7\r\n",
      h.read(dir .. "/o/csv/M-1.csv"))
    -- The namespace entry's key is those five bytes.
    assert.are.equal("\239\187\191ns\0", h.read(dir .. "/o/bin/M-1.bin"):sub(64 + 9, 64 + 14))
  end)

  it("writes an empty string value as an empty field", function()
    inputs(SMALL_CONFIG, "serial,name\n7,\n")
    local st = run({ "generate", "config.csv", "values.csv", "E", "0x3000", "--outdir", "o" })
    assert.are.equal(0, st)
    assert.are.equal("key,type,encoding,value\r\nns,namespace,,\r\nserial,data,u32,7\r\n"
      .. "name,data,string,\r\n", h.read(dir .. "/o/csv/E-1.csv"))
  end)

  it("names the files by the --fileid column, and counts rows without it", function()
    inputs(SMALL_CONFIG, "serial,name\n1001,a\n1002,b\n")
    local st = run({ "generate", "config.csv", "values.csv", "dev", "0x3000", "--outdir", "o",
      "--fileid", "serial" })
    assert.are.equal(0, st)
    assert.are.same({ "bin/", "bin/dev-1001.bin", "bin/dev-1002.bin", "csv/", "csv/dev-1001.csv",
      "csv/dev-1002.csv" }, h.listing(dir .. "/o"))
    st = run({ "generate", "config.csv", "values.csv", "dev", "0x3000", "--outdir", "p" })
    assert.are.equal(0, st)
    assert.are.same({ "bin/", "bin/dev-1.bin", "bin/dev-2.bin", "csv/", "csv/dev-1.csv",
      "csv/dev-2.csv" }, h.listing(dir .. "/p"))
    -- As in mfg_gen.py, the first column named so or holding the name wins.
    inputs("ns,namespace,\nname,data,string\nserial,data,u32\n", "name,serial\nserial,5\n")
    st = run({ "generate", "config.csv", "values.csv", "dev", "0x3000", "--outdir", "q",
      "--fileid", "serial" })
    assert.are.equal(0, st)
    assert.are.same({ "bin/", "bin/dev-serial.bin", "csv/", "csv/dev-serial.csv" }, h.listing(dir .. "/q"))
  end)

  it("keeps a PREFIX's leading slash in the paths, as mfg_gen.py joins them, under the output folder", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n")
    local st, out = run({ "generate", "config.csv", "values.csv", "/nvsgen-spec-prefix", "0x3000", "--outdir", "o" })
    assert.are.equal(0, st)
    assert.are.same({ "bin/", "bin/nvsgen-spec-prefix-1.bin", "csv/", "csv/nvsgen-spec-prefix-1.csv" },
      h.listing(dir .. "/o"))
    assert.is_nil(lfs.attributes("/nvsgen-spec-prefix-1.bin"))
    assert.is_nil(lfs.attributes("/nvsgen-spec-prefix-1.csv"))
    assert.matches("Created CSV file: ===> o/csv//nvsgen-spec-prefix-1.csv\n", out, 1, true)
    assert.matches("Created NVS binary: ===> o/bin//nvsgen-spec-prefix-1.bin\n", out, 1, true)
  end)

  it("prints names with '%' as they are, with and without keys", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,b\n")
    local st, out = run({ "generate", "config.csv", "values.csv", "d%s", "0x3000", "--outdir", "o%d" })
    assert.are.equal(0, st)
    assert.are.equal(unit_lines("o%d", "d%s-1") .. unit_lines("o%d", "d%s-2")
      .. "\nFiles generated in o%d ...\n", out)
    st, out = run({ "generate", "config.csv", "values.csv", "d%", "0x3000", "--outdir", "k%", "--keygen" })
    assert.are.equal(0, st)
    assert.are.equal("\nGenerating encrypted NVS binary images...\n"
      .. unit_lines("k%", "d%-1", "\nCreated encryption keys: ===>  k%/keys/keys-d%-1.bin\n")
      .. unit_lines("k%", "d%-2", "\nCreated encryption keys: ===>  k%/keys/keys-d%-2.bin\n")
      .. "\nFiles generated in k% ...\n", out)
  end)

  it("writes under the current folder by default, with absolute paths in its output", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n")
    local st, out = run({ "generate", "config.csv", "values.csv", "d", "0x3000" })
    assert.are.equal(0, st)
    assert.is_truthy(lfs.attributes(dir .. "/csv/d-1.csv"))
    local real = out:match("===> (/.-)/csv/d%-1%.csv\n")
    assert.is_truthy(real)
    assert.are.equal(unit_lines(real, "d-1") .. "\nFiles generated in " .. real .. " ...\n", out)
  end)

  it("warns of a read-only size for each unit, twice when encrypting, as mfg_gen.py does", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n")
    local warning = '\nMinimum partition size for read/write NVS is 0x3000 bytes. Partitions smaller '
      .. 'than this must be flagged as "readonly" in the partition table CSV.\n'
    local st, out = run({ "generate", "config.csv", "values.csv", "d", "0x2000", "--outdir", "o" })
    assert.are.equal(0, st)
    assert.are.equal(unit_lines("o", "d-1", warning) .. "\nFiles generated in o ...\n", out)
    h.write(dir .. "/k.bin", h.read(SAMPLE .. "/testdata/sample_encryption_keys.bin"))
    st, out = run({ "generate", "config.csv", "values.csv", "d", "0x2000", "--outdir", "e", "--inputkey", "k.bin" })
    assert.are.equal(0, st)
    assert.are.equal("\nGenerating encrypted NVS binary images...\n" .. unit_lines("e", "d-1", warning .. warning)
      .. "\nFiles generated in e ...\n", out)
  end)

  it("accepts a values file with a header and no rows", function()
    inputs(SMALL_CONFIG, "serial,name\n")
    local st, out = run({ "generate", "config.csv", "values.csv", "d", "0x3000", "--outdir", "o" })
    assert.are.equal(0, st)
    assert.are.equal("\nFiles generated in o ...\n", out)
    assert.are.same({ "bin/", "csv/" }, h.listing(dir .. "/o"))
    -- keys/ comes with the first key, as in mfg_gen.py.
    st, out = run({ "generate", "config.csv", "values.csv", "d", "0x3000", "--outdir", "k", "--keygen" })
    assert.are.equal(0, st)
    assert.are.equal("\nGenerating encrypted NVS binary images...\n\nFiles generated in k ...\n", out)
    assert.are.same({ "bin/", "csv/" }, h.listing(dir .. "/k"))
  end)
end)

describe("mfg_gen generate refuses", function()
  --- Runs argv and checks the refusal: status, the one stderr line, no output.
  local function refuses(argv, message, status)
    local st, out, err = run(argv)
    assert.are.equal("mfg_gen: " .. message .. "\n", err)
    assert.are.equal(status or 1, st)
    assert.are.equal("", out)
  end
  local function gen(...) return { "generate", "config.csv", "values.csv", "d", "0x3000", "--outdir", "o", ... } end

  it("a config key missing from the values header, naming the config line", function()
    inputs(SMALL_CONFIG, "id,serial,nmae\n1,2,x\n")
    refuses(gen(), "config.csv:3: key 'name': not in the header of values.csv"
      .. " (its columns not in the config: 'id', 'nmae')")
    assert.is_nil(lfs.attributes(dir .. "/o"))
  end)

  it("config keys in another order than the values header, or sharing a column", function()
    inputs(SMALL_CONFIG, "name,serial\nx,2\n")
    local why = " (the config's keys need their own columns, in the same order)"
    refuses(gen(), "config.csv:2: key 'serial': no column left for it in the header of values.csv"
      .. " after those of the keys before it" .. why)
    -- The same key in two namespaces needs two columns.
    inputs("a,namespace,\nserial,data,u32\nb,namespace,\nserial,data,u32\n", "serial\n1\n")
    refuses(gen(), "config.csv:4: key 'serial': no column left for it in the header of values.csv"
      .. " after those of the keys before it" .. why)
    inputs("a,namespace,\nserial,data,u32\nb,namespace,\nserial,data,u32\n", "serial,serial\n1,2\n")
    local st = run(gen())
    assert.are.equal(0, st)
    assert.are.equal("key,type,encoding,value\r\na,namespace,,\r\nserial,data,u32,1\r\n"
      .. "b,namespace,,\r\nserial,data,u32,2\r\n", h.read(dir .. "/o/csv/d-1.csv"))
  end)

  it("a value with a line starting with '#', which the unit CSV would lose as a comment", function()
    inputs(SMALL_CONFIG, 'serial,name\n1,"a\n#b"\n')
    refuses(gen(), "values.csv:2: key 'name': a line of the value starts with '#', which"
      .. " nvs_partition_gen drops as a comment")
  end)

  it("a bad value, naming the values file, line and key; no unit is written", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n\n2x,b\n3,c\n")
    local st, out, err = run(gen())
    assert.are.equal("mfg_gen: values.csv:4: key 'serial': '2x' is not an integer\n", err)
    assert.are.equal(1, st)
    assert.are.equal("", out)
    assert.is_nil(lfs.attributes(dir .. "/o"))
  end)

  it("a string value holding a NUL byte, leaving no file", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,a\0b\n")
    local st, out, err = run(gen())
    assert.are.equal("mfg_gen: values.csv:3: key 'name': string holds a NUL byte at 2; "
      .. "firmware would read only 'a'\n", err)
    assert.are.equal(1, st)
    assert.are.equal("", out)
    assert.is_nil(lfs.attributes(dir .. "/o"))
  end)

  it("a missing file value, leaving no file", function()
    inputs("ns,namespace,\ncert,file,binary\n", "cert\nconfig.csv\nnone.der\n")
    local st, _, err = run(gen())
    assert.are.equal("mfg_gen: values.csv:3: key 'cert': cannot read file 'none.der': "
      .. "No such file or directory\n", err)
    assert.are.equal(1, st)
    assert.is_nil(lfs.attributes(dir .. "/o"))
  end)

  it("an empty integer value", function()
    inputs(SMALL_CONFIG, "serial,name\n,a\n")
    refuses(gen(), "values.csv:2: key 'serial': '' is not an integer")
    assert.is_nil(lfs.attributes(dir .. "/o"))
  end)

  it("a bad value deep in the values file before writing any unit (300 for a u8, odd-length hex)", function()
    for _, case in ipairs({
      { "n,namespace,\nrev,data,u8\n", "rev\n", "7\n", "300",
        "key 'rev': 300 out of range for u8 (0 to 255)" },
      { "n,namespace,\nmac,data,hex2bin\n", "mac\n", "a1b2\n", "a1b",
        "key 'mac': invalid hex2bin value: odd number of hex digits" },
    }) do
      local rows = { case[2] }
      for _ = 1, 149 do rows[#rows + 1] = case[3] end
      rows[#rows + 1] = case[4] .. "\n"
      rows[#rows + 1] = case[3]
      inputs(case[1], table.concat(rows))
      local st, out, err = run(gen())
      assert.are.equal(1, st)
      assert.are.equal("", out)
      assert.are.equal("mfg_gen: values.csv:151: " .. case[5] .. "\n", err)
      assert.is_nil(lfs.attributes(dir .. "/o"))
    end
  end)

  it("two rows whose --fileid names the same files, before writing any unit", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,b\n3,a\n")
    refuses({ "generate", "config.csv", "values.csv", "d", "0x3000", "--outdir", "o", "--fileid", "name" },
      "values.csv:4: --fileid name: 'a' names the files of line 2 too (each unit needs its own)")
    assert.is_nil(lfs.attributes(dir .. "/o"))
  end)

  it("a missing config file", function()
    h.write(dir .. "/values.csv", "serial,name\n1,a\n")
    refuses(gen(), "config.csv: cannot open (No such file or directory)")
    assert.is_nil(lfs.attributes(dir .. "/o"))
  end)

  it("a missing values file", function()
    h.write(dir .. "/config.csv", SMALL_CONFIG)
    refuses(gen(), "values.csv: cannot open (No such file or directory)")
  end)

  it("files without the .csv extension, and empty files", function()
    refuses({ "generate", "config.txt", "values.csv", "d", "0x3000" },
      "config.txt: the config file must have the .csv extension")
    -- Only dots before ".csv": no extension at all, as os.path.splitext sees it.
    refuses({ "generate", "config.csv", "..csv", "d", "0x3000" },
      "..csv: the values file must have the .csv extension")
    inputs("\n  \n", "serial,name\n")
    refuses(gen(), "config.csv: the config file is empty")
    inputs(SMALL_CONFIG, "\n")
    refuses(gen(), "values.csv: the values file is empty")
  end)

  it("config rows without three fields, bad types and encodings", function()
    inputs("ns,namespace,\nserial,data\n", "serial\n1\n")
    refuses(gen(), "config.csv:2: key 'serial': expected 3 fields key,type,encoding, got 2")
    inputs("ns,namespace,\nserial,number,u32\n", "serial\n1\n")
    refuses(gen(), "config.csv:2: key 'serial': unknown type 'number' (expected data, file or namespace)")
    inputs("ns,namespace,\nserial,data,float\n", "serial\n1\n")
    refuses(gen(), "config.csv:2: key 'serial': encoding 'float' is not one mfg_gen accepts"
      .. " (string, binary, hex2bin, base64, u8, i8, u16, u32, i32, u64, i64)")
  end)

  it("a values row with another number of fields than the header, before writing anything", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,b,extra\n")
    refuses(gen(), "values.csv:3: 3 values for the 2 columns of the header")
    assert.is_nil(lfs.attributes(dir .. "/o"))
  end)

  it("an unknown --fileid column, and a bad size", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n")
    refuses(gen("--fileid", "mac"), "--fileid mac: no such column in the header of values.csv", 2)
    refuses({ "generate", "config.csv", "values.csv", "d", "0x3100" }, "size 0x3100 is not a multiple of 4096")
  end)

  it("to overwrite an existing file, keeping it and the units before", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,b\n")
    lfs.mkdir(dir .. "/o")
    lfs.mkdir(dir .. "/o/bin")
    h.write(dir .. "/o/bin/d-2.bin", "mine")
    local st, out, err = run(gen())
    assert.are.equal("mfg_gen: values.csv:3: o/bin/d-2.bin: already exists"
      .. " (mfg_gen never overwrites a file: remove it or use another --outdir)\n", err)
    assert.are.equal(1, st)
    assert.are.equal(unit_lines("o", "d-1"), out)
    assert.are.equal("mine", h.read(dir .. "/o/bin/d-2.bin"))
    assert.are.same({ "bin/", "bin/d-1.bin", "bin/d-2.bin", "csv/", "csv/d-1.csv" }, h.listing(dir .. "/o"))
  end)

  it("an unknown command or option", function()
    local st, _, err = run({ "make" })
    assert.are.equal(2, st)
    assert.matches("mfg_gen: unknown command 'make'\n$", err)
    st, _, err = run({ "generate", "c.csv", "v.csv", "p", "0x3000", "--prefix_num", "3" })
    assert.are.equal(2, st)
    assert.matches("mfg_gen: argument %-%-prefix_num: expected 2 arguments\n$", err)
    st, _, err = run({ "generate", "c.csv", "v.csv", "p", "0x3000", "--prefix_num", "3", "x" })
    assert.are.equal(2, st)
    assert.matches("mfg_gen: argument %-%-prefix_num: invalid int value: 'x'\n$", err)
    st, _, err = run({ "generate", "c.csv", "v.csv", "p", "0x3000", "--prefix_num", "3", "-1" })
    assert.are.equal(2, st)
    assert.matches("mfg_gen: argument %-%-prefix_num: the length must not be negative\n$", err)
  end)

  it("numbers the files with --prefix_num START LENGTH, as mfg_gen.py does", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,b\n")
    local st, out = run(gen("--prefix_num", "9", "3"))
    assert.are.equal(0, st)
    assert.are.same({ "bin/", "bin/d-009-1.bin", "bin/d-010-2.bin", "csv/", "csv/d-009-1.csv",
      "csv/d-010-2.csv" }, h.listing(dir .. "/o"))
    assert.are.equal(unit_lines("o", "d-009-1") .. unit_lines("o", "d-010-2") .. "\nFiles generated in o ...\n", out)
    -- The sign counts in the width; no width, no padding; ids from --fileid;
    -- keys and HMAC keys are named alike.
    st = run({ "generate", "config.csv", "values.csv", "d", "0x3000", "--outdir", "k", "--fileid", "name",
      "--prefix_num", "-1", "3", "--keygen", "--key_protect_hmac", "--kp_hmac_keygen" })
    assert.are.equal(0, st)
    assert.are.same({ "bin/", "bin/d--01-a.bin", "bin/d-000-b.bin", "csv/", "csv/d--01-a.csv", "csv/d-000-b.csv",
      "keys/", "keys/hmac-keys-d--01-a.bin", "keys/hmac-keys-d-000-b.bin", "keys/keys-d--01-a.bin",
      "keys/keys-d-000-b.bin" }, h.listing(dir .. "/k"))
    st = run({ "generate", "config.csv", "values.csv", "d", "0x3000", "--outdir", "w", "--prefix_num", "+1_0", "0" })
    assert.are.equal(0, st)
    assert.are.same({ "bin/", "bin/d-10-1.bin", "bin/d-11-2.bin", "csv/", "csv/d-10-1.csv", "csv/d-11-2.csv" },
      h.listing(dir .. "/w"))
    assert.are.equal(h.read(dir .. "/o/bin/d-009-1.bin"), h.read(dir .. "/w/bin/d-10-1.bin"))
  end)
end)

describe("mfg_gen generate with encryption", function()
  local SAMPLE_KEYS = SAMPLE .. "/testdata/sample_encryption_keys.bin"

  --- The plain image of the same command line, for comparison.
  local function plain_images(argv_tail)
    local st = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "plain",
      table.unpack(argv_tail or {}) })
    assert.are.equal(0, st)
  end

  it("--keygen writes a new key per unit that decrypts its image", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,b\n")
    plain_images()
    local st, out, err = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o",
      "--keygen" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal("\nGenerating encrypted NVS binary images...\n"
      .. unit_lines("o", "P-1", "\nCreated encryption keys: ===>  o/keys/keys-P-1.bin\n")
      .. unit_lines("o", "P-2", "\nCreated encryption keys: ===>  o/keys/keys-P-2.bin\n")
      .. "\nFiles generated in o ...\n", out)
    local keys = {}
    for i = 1, 2 do
      local path = dir .. "/o/keys/keys-P-" .. i .. ".bin"
      assert.are.equal("rw-------", lfs.attributes(path, "permissions"))
      keys[i] = assert(crypto.read_keys(path))
      local image = h.read(dir .. "/o/bin/P-" .. i .. ".bin")
      assert.are_not.equal(h.read(dir .. "/plain/bin/P-" .. i .. ".bin"), image)
      assert.is_true(assert(crypto.decrypt_image(image, keys[i])) == h.read(dir .. "/plain/bin/P-" .. i .. ".bin"))
      assert.are.equal(h.read(dir .. "/plain/csv/P-" .. i .. ".csv"), h.read(dir .. "/o/csv/P-" .. i .. ".csv"))
    end
    assert.are_not.equal(keys[1], keys[2])
  end)

  it("--inputkey encrypts every unit with one checked keys file", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,b\n")
    h.write(dir .. "/k.bin", h.read(SAMPLE_KEYS))
    plain_images()
    local st, out = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o",
      "--inputkey", "k.bin" })
    assert.are.equal(0, st)
    assert.are.equal("\nGenerating encrypted NVS binary images...\n" .. unit_lines("o", "P-1")
      .. unit_lines("o", "P-2") .. "\nFiles generated in o ...\n", out)
    assert.is_nil(lfs.attributes(dir .. "/o/keys"))
    local key = assert(crypto.read_keys(dir .. "/k.bin"))
    for i = 1, 2 do
      assert.is_true(assert(crypto.decrypt_image(h.read(dir .. "/o/bin/P-" .. i .. ".bin"), key))
        == h.read(dir .. "/plain/bin/P-" .. i .. ".bin"))
    end
  end)

  it("encrypts the mfg sample as the reference keys say", function()
    copy_tree(SAMPLE, dir)
    local st = run({ "generate", "sample_config.csv", "sample_values_multipage_blob.csv", "Sample",
      "0x4000", "--outdir", "enc", "--inputkey", "testdata/sample_encryption_keys.bin" })
    assert.are.equal(0, st)
    local key = assert(crypto.read_keys(SAMPLE_KEYS))
    for i = 1, 3 do
      local image = h.read(dir .. "/enc/bin/Sample-" .. i .. ".bin")
      assert.is_true(assert(crypto.decrypt_image(image, key))
        == h.read(SAMPLE .. "/expected/bin/Sample-" .. i .. ".bin"))
    end
  end)

  it("--key_protect_hmac derives the keys from an HMAC key", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n")
    h.write(dir .. "/hmac.bin", h.read(SAMPLE .. "/testdata/sample_hmac_key.bin"))
    local st = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o",
      "--keygen", "--key_protect_hmac", "--kp_hmac_inputkey", "hmac.bin" })
    assert.are.equal(0, st)
    assert.are.equal(h.read(SAMPLE .. "/testdata/sample_encryption_keys_hmac.bin"),
      h.read(dir .. "/o/keys/keys-P-1.bin"))
    st = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "g",
      "--keygen", "--key_protect_hmac", "--kp_hmac_keygen" })
    assert.are.equal(0, st)
    local hmac = h.read(dir .. "/g/keys/hmac-keys-P-1.bin")
    assert.are.equal(32, #hmac)
    assert.are.equal(assert(crypto.key_from_hmac(hmac)), assert(crypto.read_keys(dir .. "/g/keys/keys-P-1.bin")))
  end)

  it("--kp_hmac_keyfile makes one HMAC key for the batch", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,b\n")
    local st = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o",
      "--keygen", "--key_protect_hmac", "--kp_hmac_keygen", "--kp_hmac_keyfile", "batch" })
    assert.are.equal(0, st)
    local hmac = h.read(dir .. "/o/keys/batch.bin")
    assert.are.equal(32, #hmac)
    assert.are.equal("rw-------", lfs.attributes(dir .. "/o/keys/batch.bin", "permissions"))
    assert.are.same({ "batch.bin", "keys-P-1.bin", "keys-P-2.bin" }, h.listing(dir .. "/o/keys"))
    for i = 1, 2 do
      assert.are.equal(assert(crypto.key_from_hmac(hmac)),
        assert(crypto.read_keys(dir .. "/o/keys/keys-P-" .. i .. ".bin")))
    end
  end)

  it("names keys files as mfg_gen.py does when the id ends in .bin", function()
    inputs("ns,namespace,\nserial,data,u32\n", "id,serial\nu1.bin,1\nu2,2\n")
    local st, out = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o",
      "--keygen", "--fileid", "id", "--key_protect_hmac", "--kp_hmac_keygen" })
    assert.are.equal(0, st)
    assert.are.same({ "hmac-keys-P-u1.bin", "hmac-keys-P-u2.bin", "keys-P-u1.bin", "keys-P-u2.bin" },
      h.listing(dir .. "/o/keys"))
    assert.matches("\nCreated encryption keys: ===>  o/keys/keys%-P%-u1%.bin\n\n", out)
    assert.matches("\nCreated encryption keys: ===>  o/keys/keys%-P%-u2%.bin\n\n", out)
    -- A prefix ending in ".bin" gives every name an extension holding it.
    st = run({ "generate", "config.csv", "values.csv", "a.bin", "0x3000", "--outdir", "p",
      "--keygen", "--fileid", "id" })
    assert.are.equal(0, st)
    assert.are.same({ "keys-a.bin-u1.bin", "keys-a.bin-u2" }, h.listing(dir .. "/p/keys"))
  end)

  it("a failing unit leaves neither its keys nor its HMAC key", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\nx,b\n")
    local st, _, err = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o",
      "--keygen", "--key_protect_hmac", "--kp_hmac_keygen" })
    assert.are.equal(1, st)
    assert.are.equal("mfg_gen: values.csv:3: key 'serial': 'x' is not an integer\n", err)
    -- Every value is checked before the first unit is written.
    assert.is_nil(lfs.attributes(dir .. "/o"))
    -- A unit whose write fails (an existing image at unit 2) leaves no key.
    inputs(SMALL_CONFIG, "serial,name\n1,a\n2,b\n")
    lfs.mkdir(dir .. "/o")
    lfs.mkdir(dir .. "/o/bin")
    h.write(dir .. "/o/bin/P-2.bin", "old")
    st = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o",
      "--keygen", "--key_protect_hmac", "--kp_hmac_keygen" })
    assert.are.equal(1, st)
    assert.are.same({ "bin/", "bin/P-1.bin", "bin/P-2.bin", "csv/", "csv/P-1.csv", "keys/", "keys/hmac-keys-P-1.bin",
      "keys/keys-P-1.bin" }, h.listing(dir .. "/o"))
    assert.are.equal("old", h.read(dir .. "/o/bin/P-2.bin"))
    -- A write that fails (an existing image) takes back the unit's other files.
    h.cleanup(dir .. "/o")
    inputs(SMALL_CONFIG, "serial,name\n1,a\n")
    lfs.mkdir(dir .. "/o")
    lfs.mkdir(dir .. "/o/bin")
    h.write(dir .. "/o/bin/P-1.bin", "old")
    st = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o", "--keygen" })
    assert.are.equal(1, st)
    assert.are.same({ "bin/", "bin/P-1.bin", "csv/", "keys/" }, h.listing(dir .. "/o"))
    st = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o",
      "--keygen", "--key_protect_hmac", "--kp_hmac_keygen" })
    assert.are.equal(1, st)
    assert.are.same({ "bin/", "bin/P-1.bin", "csv/", "keys/" }, h.listing(dir .. "/o"))
    -- An existing keys file: kept, and the unit's CSV and HMAC key go.
    os.remove(dir .. "/o/bin/P-1.bin")
    h.write(dir .. "/o/keys/keys-P-1.bin", "old keys")
    st, _, err = run({ "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o",
      "--keygen", "--key_protect_hmac", "--kp_hmac_keygen" })
    assert.are.equal(1, st)
    assert.are.equal("mfg_gen: values.csv:2: o/keys/keys-P-1.bin: already exists"
      .. " (mfg_gen never overwrites a file: remove it or use another --outdir)\n", err)
    assert.are.same({ "bin/", "csv/", "keys/", "keys/keys-P-1.bin" }, h.listing(dir .. "/o"))
    assert.are.equal("old keys", h.read(dir .. "/o/keys/keys-P-1.bin"))
  end)

  it("refuses --keygen with --inputkey, a bad keys file, and HMAC without a key source", function()
    inputs(SMALL_CONFIG, "serial,name\n1,a\n")
    h.write(dir .. "/k.bin", h.read(SAMPLE_KEYS))
    h.write(dir .. "/bad.bin", ("\255"):rep(4096))
    local function refuses(extra, message, status)
      local argv = { "generate", "config.csv", "values.csv", "P", "0x3000", "--outdir", "o" }
      for _, a in ipairs(extra) do argv[#argv + 1] = a end
      local st, out, err = run(argv)
      assert.are.equal("mfg_gen: " .. message .. "\n", err)
      assert.are.equal(status, st)
      assert.are.equal("", out)
      assert.is_nil(lfs.attributes(dir .. "/o"))
    end
    refuses({ "--keygen", "--inputkey", "k.bin" }, "--keygen and --inputkey are mutually exclusive", 2)
    refuses({ "--inputkey", "k.txt" }, "k.txt: only the .bin extension is allowed", 1)
    refuses({ "--inputkey", "bad.bin" }, "bad.bin: keys partition crc mismatch", 1)
    refuses({ "--keygen", "--key_protect_hmac" },
      "--key_protect_hmac needs --kp_hmac_keygen or --kp_hmac_inputkey", 2)
  end)
end)

describe("mfg_gen generate-key", function()
  it("writes a keys file to OUTDIR/keys/", function()
    local st, out, err = run({ "generate-key", "--keyfile", "k.bin", "--outdir", "o" })
    assert.are.equal("", err)
    assert.are.equal(0, st)
    assert.are.equal("\nCreated encryption keys: ===>  o/keys/k.bin\n", out)
    assert.is_truthy(crypto.read_keys(dir .. "/o/keys/k.bin"))
    st, out, err = run({ "generate-key", "--keyfile", "k.bin", "--outdir", "o" })
    assert.are.equal(1, st)
    assert.are.equal("", out)
    assert.are.equal("mfg_gen: o/keys/k.bin: already exists\n", err)
  end)

  it("derives the keys from an HMAC key", function()
    h.write(dir .. "/hmac.bin", h.read(SAMPLE .. "/testdata/sample_hmac_key.bin"))
    local st = run({ "generate-key", "--keyfile", "k", "--key_protect_hmac", "--kp_hmac_inputkey", "hmac.bin" })
    assert.are.equal(0, st)
    assert.are.equal(h.read(SAMPLE .. "/testdata/sample_encryption_keys_hmac.bin"),
      h.read(dir .. "/keys/k.bin"))
  end)
end)

describe("mfg_gen with worker processes", function()
  -- 1,200 units (workers start from 1,000), one bad value at unit 1,100.
  local function write_inputs(folder, bad)
    h.write(folder .. "/config.csv", "ns,namespace,\nSerial,data,u32\nRev,data,u8\nName,data,string\n")
    local rows = { "id,Serial,Rev,Name\n" }
    for i = 1, 1200 do
      local name = i % 5 == 0 and '"unit, %d"' or "unit %d" -- some values need quoting
      rows[#rows + 1] = ("%d,%d,%d," .. name .. "\n"):format(i, i, (bad and i == 1100) and 300 or 3, i)
    end
    h.write(folder .. "/values.csv", table.concat(rows))
  end

  -- Each spec's batches keep their chunk files in a temporary folder of
  -- their own ($TMPDIR), so other programs' files do not count.
  local function run_script(folder, out, jobs, extra)
    lfs.mkdir(folder .. "/tmpdir")
    local p = io.popen(("cd %s && TMPDIR=%s/tmpdir lua5.4 %s/bin/mfg_gen.lua generate config.csv values.csv u 0x3000"
      .. " --outdir %s --jobs %d %s 2>%s/stderr"):format(folder, folder, h.ROOT, out, jobs, extra or "", folder))
    local text = p:read("a")
    local _, _, status = p:close()
    return status, (text:gsub(out:gsub("%p", "%%%0"), "OUT")), h.read(folder .. "/stderr")
  end

  -- The chunk files of shared batches in the current spec's temporary
  -- folder.
  local chunk_folder
  local function chunk_files()
    local names = {}
    for name in lfs.dir(chunk_folder) do
      if name:match("^mfg_gen%-chunks%-") then names[name] = true end
    end
    return names
  end

  -- A unit that cannot be written: its CSV file is there already.
  local function plant(out, number)
    lfs.mkdir(out)
    lfs.mkdir(out .. "/csv")
    h.write(out .. "/csv/u-" .. number .. ".csv", "planted")
  end

  for _, bad in ipairs({ false, true }) do
    it("writes and prints what one process does" .. (bad and ", up to a failing unit" or ""), function()
      local tmp = h.tmpdir()
      write_inputs(tmp, false)
      chunk_folder = tmp .. "/tmpdir"
      if bad then
        plant(tmp .. "/one", 1100)
        plant(tmp .. "/two", 1100)
      end
      local st1, out1, err1 = run_script(tmp, tmp .. "/one", 1)
      local before = chunk_files()
      local st2, out2, err2 = run_script(tmp, tmp .. "/two", 2)
      -- The batch's chunk file is gone with it.
      assert.are.same(before, chunk_files())
      assert.are.equal(st1, st2)
      assert.are.equal(out1, out2)
      assert.are.equal(err1:gsub("/one/", "/OUT/"), err2:gsub("/two/", "/OUT/"))
      if bad then
        assert.are.equal(1, st2)
        assert.are.equal("mfg_gen: values.csv:1101: " .. tmp .. "/two/csv/u-1100.csv: already exists"
          .. " (mfg_gen never overwrites a file: remove it or use another --outdir)\n", err2)
        assert.is_nil(h.read(tmp .. "/two/bin/u-1100.bin"))
        -- Units after the failing one that the other process made are gone.
        assert.are.same(h.listing(tmp .. "/one"), h.listing(tmp .. "/two"))
        assert.is_nil(h.read(tmp .. "/two/bin/u-1101.bin"))
        assert.are.equal(1099, #h.listing(tmp .. "/two/bin"))
      else
        assert.are.equal(0, st2)
      end
      assert.are.equal('key,type,encoding,value\r\nns,namespace,,\r\nSerial,data,u32,5\r\n'
        .. 'Rev,data,u8,3\r\nName,data,string,"unit, 5"\r\n', h.read(tmp .. "/two/csv/u-5.csv"))
      assert.are.equal('key,type,encoding,value\r\nns,namespace,,\r\nSerial,data,u32,6\r\n'
        .. 'Rev,data,u8,3\r\nName,data,string,unit 6\r\n', h.read(tmp .. "/two/csv/u-6.csv"))
      for i = 1, 1200, 7 do
        if not bad or i < 1100 then
          assert.is_true(h.read(tmp .. "/one/bin/u-" .. i .. ".bin") == h.read(tmp .. "/two/bin/u-" .. i .. ".bin"))
          assert.are.equal(h.read(tmp .. "/one/csv/u-" .. i .. ".csv"), h.read(tmp .. "/two/csv/u-" .. i .. ".csv"))
        end
      end
      h.cleanup(tmp)
    end)
  end

  it("writes no unit when a value late in the values file is bad, with workers or without", function()
    local tmp = h.tmpdir()
    write_inputs(tmp, true)
    for _, jobs in ipairs({ 1, 2 }) do
      local st, out, err = run_script(tmp, tmp .. "/o" .. jobs, jobs)
      assert.are.equal(1, st)
      assert.are.equal("", out)
      assert.are.equal("mfg_gen: values.csv:1101: key 'Rev': 300 out of range for u8 (0 to 255)\n", err)
      assert.is_nil(lfs.attributes(tmp .. "/o" .. jobs))
    end
    h.cleanup(tmp)
  end)

  it("removes the later units other processes made, but never a file it did not write", function()
    local tmp = h.tmpdir()
    write_inputs(tmp, false)
    plant(tmp .. "/one", 1100)
    plant(tmp .. "/two", 1100)
    -- A file already there for unit 1,150 (after the failing unit 1,100).
    assert(lfs.mkdir(tmp .. "/two/bin"))
    h.write(tmp .. "/two/bin/u-1150.bin", "kept")
    local st1, out1, err1 = run_script(tmp, tmp .. "/one", 1, "--keygen")
    local st2, out2, err2 = run_script(tmp, tmp .. "/two", 2, "--keygen")
    assert.are.equal(1, st1)
    assert.are.equal(1, st2)
    assert.are.equal(out1, out2)
    assert.are.equal(err1:gsub("/one/", "/OUT/"), err2:gsub("/two/", "/OUT/"))
    local two = h.listing(tmp .. "/two")
    for i, name in ipairs(two) do
      if name == "bin/u-1150.bin" then table.remove(two, i) end
    end
    assert.are.same(h.listing(tmp .. "/one"), two)
    assert.are.equal(1099, #h.listing(tmp .. "/two/keys"))
    assert.is_nil(h.read(tmp .. "/two/keys/keys-u-1101.bin"))
    assert.are.equal("kept", h.read(tmp .. "/two/bin/u-1150.bin"))
    assert.are.equal("planted", h.read(tmp .. "/two/csv/u-1100.csv"))
    h.cleanup(tmp)
  end)

  it("names the files with --fileid as one process does, each unit made once", function()
    local tmp = h.tmpdir()
    write_inputs(tmp, false)
    chunk_folder = tmp .. "/tmpdir"
    local st1, out1, err1 = run_script(tmp, tmp .. "/one", 1, "--fileid id")
    local st2, out2, err2 = run_script(tmp, tmp .. "/two", 2, "--fileid id")
    assert.are.equal("", err1)
    assert.are.equal("", err2)
    assert.are.equal(0, st1)
    assert.are.equal(0, st2)
    assert.are.equal(out1, out2)
    assert.are.same(h.listing(tmp .. "/one"), h.listing(tmp .. "/two"))
    assert.are.equal(1200, #h.listing(tmp .. "/two/bin"))
    assert.are.same({}, chunk_files())
    h.cleanup(tmp)
  end)

  it("numbers the files with --prefix_num as one process does", function()
    local tmp = h.tmpdir()
    write_inputs(tmp, false)
    local st1, out1 = run_script(tmp, tmp .. "/one", 1, "--prefix_num 5 4")
    local st2, out2 = run_script(tmp, tmp .. "/two", 2, "--prefix_num 5 4")
    assert.are.equal(0, st1)
    assert.are.equal(0, st2)
    assert.are.equal(out1, out2)
    assert.matches("\nCreated NVS binary: ===> OUT/bin/u%-1204%-1200%.bin\n", out2)
    assert.are.same(h.listing(tmp .. "/one"), h.listing(tmp .. "/two"))
    assert.is_true(h.read(tmp .. "/one/bin/u-0999-995.bin") == h.read(tmp .. "/two/bin/u-0999-995.bin"))
    h.cleanup(tmp)
  end)

  it("writes nothing when a row late in the values has the wrong number of fields", function()
    local tmp = h.tmpdir()
    write_inputs(tmp, false)
    local text = h.read(tmp .. "/values.csv"):gsub("\n1150,1150,3,", "\n1150,1150,3,x,")
    h.write(tmp .. "/values.csv", text)
    local st, out, err = run_script(tmp, tmp .. "/two", 2)
    assert.are.equal(1, st)
    assert.are.equal("", out)
    assert.are.equal("mfg_gen: values.csv:1151: 5 values for the 4 columns of the header\n", err)
    assert.is_nil(lfs.attributes(tmp .. "/two"))
    h.cleanup(tmp)
  end)
end)

describe("mfg_gen help", function()
  it("explains the commands and what a failure leaves", function()
    local st, out = run({ "-h" })
    assert.are.equal(0, st)
    assert.matches("generate,generate%-key", out)
    st, out = run({ "generate", "-h" })
    assert.are.equal(0, st)
    assert.matches("the files of the units before it stay", out)
  end)
end)
