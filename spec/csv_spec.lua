local csv = require("nvsgen.csv")

local FIXTURES = "spec/fixtures/csv/"

-- All records of a reader as {fields, line} pairs; on an error the last
-- entry is {nil, message}.
local function records(reader)
  local out = {}
  while true do
    local fields, line = reader:next()
    out[#out + 1] = { fields, line }
    if not fields then break end
  end
  return out
end

local function parse(text, opts)
  return records(csv.from_string(text, "t.csv", opts))
end

-- Only the fields of each record, for texts without errors.
local function rows(text, opts)
  local out = {}
  for _, rec in ipairs(parse(text, opts)) do
    if rec[1] then out[#out + 1] = rec[1] end
  end
  return out
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

describe("nvsgen.csv reader", function()
  it("splits on commas without trimming", function()
    assert.same({ { "key", "type", "encoding", "value" }, { " a ", "u8 ", "", "" } },
      rows("key,type,encoding,value\n a ,u8 ,,\n"))
    assert.same({ { "a", "" }, { "", "" }, { "a\tb" } }, rows("a,\n,\na\tb\n"))
  end)

  it("says whether a record was plain, and counts the fields of records it passes over", function()
    local text = 'a,b,c\n"x,y",z\n\n  \nsolo\n"q"\nd,"e\nf",g\nlast,\n'
    local r = csv.from_string(text, "t.csv")
    assert.same({ { "a", "b", "c" }, 1, true }, { r:next() })
    assert.same({ { "x,y", "z" }, 2, false }, { r:next() })
    assert.same({ { "  " }, 4, true }, { r:next() })
    assert.same({ { "solo" }, 5, true }, { r:next() })
    assert.same({ { "q" }, 6, false }, { r:next() })
    assert.same({ { "d", "e\nf", "g" }, 7, false }, { r:next() })
    assert.same({ { "last", "" }, 9, true }, { r:next() })
    assert.same({}, { r:next() })
    r = csv.from_string(text, "t.csv")
    assert.same({ 3, 1 }, { r:count() })
    assert.same({ 2, 2 }, { r:count() })
    assert.same({ 1, 4, "  " }, { r:count() })
    assert.same({ 1, 5, "solo" }, { r:count() })
    assert.same({ 1, 6, "q" }, { r:count() })
    assert.same({ 3, 7 }, { r:count() })
    assert.same({ 2, 9 }, { r:count() })
    assert.same({}, { r:count() })
    r = csv.from_string('a\n"open\n', "t.csv")
    assert.same({ 1, 1, "a" }, { r:count() })
    assert.same({ nil, "t.csv:2: unterminated quoted field" }, { r:count() })
  end)

  it("reads quoted fields with commas and escaped quotes", function()
    assert.same({ { "a", "b,c", "d" } }, rows('a,"b,c",d\n'))
    assert.same({ { 'x"y', '"', "" } }, rows('"x""y","""",""\n'))
    assert.same({ { '"a"' } }, rows('"""a"""\n'))
  end)

  it("treats a quote inside an unquoted field as a character", function()
    assert.same({ { 'a"b"c', 'd " e' } }, rows('a"b"c,d " e\n'))
    assert.same({ { ' "a', 'b"' } }, rows(' "a,b"\n'))
  end)

  it("appends text after a closing quote, as Python's non-strict dialect does", function()
    assert.same({ { "abcd", "e" } }, rows('"ab"cd,e\n'))
    assert.same({ { 'ab "cd"', "e" } }, rows('"ab" "cd",e\n'))
    assert.same({ { 'abc"d"' } }, rows('"ab"c"d"\n'))
  end)

  it("keeps newlines in quoted fields, each line ending becoming LF", function()
    assert.same({ { "a\nb", "c" }, { "d" } }, rows('"a\nb",c\nd\n'))
    assert.same({ { "a\nb", "c" }, { "d" } }, rows('"a\r\nb",c\r\nd\r\n'))
    assert.same({ { "a\nb", "c" }, { "d" } }, rows('"a\rb",c\rd\r'))
    assert.same({ { "a\n\nb" } }, rows('"a\n\nb"\n'))
    assert.same({ { 'a"\n"' } }, rows('"a""\n"""\n'))
  end)

  it("reports the line where each record starts", function()
    assert.same({ { { "a" }, 1 }, { { "b\nc\nd", "e" }, 2 }, { { "f" }, 6 }, { nil, nil } },
      parse('a\n"b\nc\nd",e\n\nf\n'))
  end)

  it("skips blank lines but not lines of empty fields", function()
    assert.same({ { { "a" }, 2 }, { { "" }, 4 }, { { "", "" }, 6 }, { { " " }, 7 }, { nil, nil } },
      parse('\na\n\n""\n\r\n,\n \n\n'))
  end)

  it("accepts a last line without a newline", function()
    assert.same({ { "a", "b" }, { "c", "" } }, rows("a,b\nc,"))
    assert.same({ { "a", "b" } }, rows('a,"b"'))
    assert.same({}, rows(""))
  end)

  it("drops comment lines when asked, even inside a quoted field", function()
    local text = '# head\nk,v\n"a\n#dropped\nb",c\n# comment\nd,#e\n'
    assert.same({ { { "k", "v" }, 2 }, { { "a\nb", "c" }, 3 }, { { "d", "#e" }, 7 }, { nil, nil } },
      parse(text, { comments = true }))
    assert.same({ { "# head" }, { "k", "v" }, { "a\n#dropped\nb", "c" }, { "# comment" }, { "d", "#e" } },
      rows(text))
    -- only '#' as the very first character marks a comment
    assert.same({ { " #x" } }, rows(" #x\n", { comments = true }))
  end)

  it("counts lone CR and CRLF as one line each", function()
    assert.same({ { { "a" }, 1 }, { { "b" }, 2 }, { { "c" }, 4 }, { nil, nil } },
      parse("a\rb\r\n#x\rc", { comments = true }))
  end)

  it("skips a UTF-8 byte order mark at the start only", function()
    assert.same({ { "key", "value" }, { "\239\187\191x" } }, rows("\239\187\191key,value\n\239\187\191x\n"))
    assert.same({ { { "k" }, 2 }, { nil, nil } }, parse("\239\187\191#c\nk\n", { comments = true }))
  end)

  it("fails on an unterminated quoted field, at the line where its record starts", function()
    assert.same({ { { "a" }, 1 }, { nil, "t.csv:2: unterminated quoted field" } },
      parse('a\nb,"c\nd\n'))
    assert.same({ { nil, "t.csv:1: unterminated quoted field" } }, parse('"abc""'))
  end)

  it("fails on text that is not UTF-8, at its line", function()
    assert.same({ { { "a" }, 1 }, { nil, "t.csv:3: not valid UTF-8" } },
      parse('a\n"b\n\233"\n'))
    -- surrogates and overlong forms are refused as Python refuses them
    assert.same({ { nil, "t.csv:1: not valid UTF-8" } }, parse("\237\160\128\n"))
    assert.same({ { nil, "t.csv:1: not valid UTF-8" } }, parse("\192\128\n"))
    -- comment lines are decoded too
    assert.same({ { nil, "t.csv:1: not valid UTF-8" } }, parse("#\255\n", { comments = true }))
    assert.same({ { "caf\195\169", "\240\159\152\128" } }, rows("caf\195\169,\240\159\152\128\n"))
  end)

  it("keeps reporting an error once it has happened", function()
    local r = csv.from_string('"a', "t.csv")
    assert.same({ nil, "t.csv:1: unterminated quoted field" }, { r:next() })
    assert.same({ nil, "t.csv:1: unterminated quoted field" }, { r:next() })
  end)

  it("reads files, streaming", function()
    local r = assert(csv.open(FIXTURES .. "values_crlf.csv", { comments = true }))
    assert.same({
      { { "key", "type", "encoding", "value" }, 2 },
      { { "storage", "namespace", "", "" }, 3 },
      { { "cert", "data", "string", "-----BEGIN-----\nMIIB\n-----END-----" }, 6 },
      { { "port", "data", "u16", "8,080" }, 9 },
      { nil, nil },
    }, records(r))
    r:close()
  end)

  it("handles line endings split between read chunks", function()
    local path = os.tmpname()
    for _, size in ipairs({ 65535, 65536, 65537 }) do
      local pad = string.rep("x", size - 1)
      write_file(path, pad .. "\r\n\"q\r\r\n\"\r")
      local r = assert(csv.open(path))
      assert.same({ { { pad }, 1 }, { { "q\n\n" }, 2 }, { nil, nil } }, records(r))
      r:close()
    end
    os.remove(path)
  end)

  it("reports a file it cannot open or read", function()
    assert.same({ nil, "spec/fixtures/csv/missing.csv: cannot open (No such file or directory)" },
      { csv.open(FIXTURES .. "missing.csv") })
    local r = assert(csv.open("spec/fixtures/csv"))
    assert.same({ nil, "spec/fixtures/csv: cannot read (Is a directory)" }, { r:next() })
    r:close()
  end)

  it("closes, also through <close>", function()
    local r = csv.from_string("a\n", "t.csv")
    r:close()
    assert.has_error(function() r:next() end, "attempt to use a closed csv reader")
    local kept
    do
      local r2 <close> = assert(csv.open(FIXTURES .. "values_crlf.csv"))
      kept = r2
    end
    assert.has_error(function() kept:next() end, "attempt to use a closed csv reader")
  end)

  it("rejects unknown options and bad arguments", function()
    assert.has_error(function() csv.from_string("", "t.csv", { comment = true }) end,
      "bad argument #3 to 'from_string' (unknown option 'comment')")
    assert.has_error(function() csv.open(FIXTURES .. "values_crlf.csv", { comments = 1 }) end,
      "bad argument #2 to 'open' (option 'comments' must be a boolean)")
    assert.has_error(function() csv.open(nil) end,
      "bad argument #1 to 'open' (string expected, got nil)")
  end)
end)

describe("nvsgen.csv plain lines (split in C)", function()
  local core = require("nvsgen.core")

  it("splits a plain line and says where the next one starts", function()
    assert.same({ { "a", "", "b c" }, 8 }, { core.csv_plain_fields("a,,b c\nx\n", 1, false) })
    assert.same({ { "x" }, 10 }, { core.csv_plain_fields("a,,b c\nx\n", 8, false) })
    assert.same({ 3, 8 }, { core.csv_plain_count("a,,b c\nx\n", 1, false) })
    assert.same({ 1, 10, "x" }, { core.csv_plain_count("a,,b c\nx\n", 8, false) })
    assert.same({ { "", "" }, 3 }, { core.csv_plain_fields(",\n", 1, false) })
  end)

  it("leaves every other line to the Lua parser", function()
    for _, text in ipairs{ "a,b", "\n", 'a,"b"\n', 'a"b\n', "a\0b\n", "\128\n", "" } do
      assert.same({ nil }, { core.csv_plain_fields(text, 1, false) }, text)
      assert.same({ nil }, { core.csv_plain_count(text, 1, false) }, text)
    end
    assert.same({ nil }, { core.csv_plain_fields("#a\n", 1, true) })
    assert.same({ { "#a" }, 4 }, { core.csv_plain_fields("#a\n", 1, false) })
    assert.has_error(function() core.csv_plain_fields("a\n", 4, false) end,
      "bad argument #2 to 'csv_plain_fields' (out of range)")
    assert.has_error(function() core.csv_plain_count("a\n", 0, false) end,
      "bad argument #2 to 'csv_plain_count' (out of range)")
  end)

  -- Lua's utf8.len (strict) is the Lua parser's test of a line.
  it("takes as UTF-8 exactly what utf8.len takes", function()
    local cases = {
      "\xC2\x80", "\xC1\xBF", "\xDF\xBF", "\xE0\xA0\x80", "\xE0\x9F\xBF", "\xED\x9F\xBF",
      "\xED\xA0\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF0\x8F\xBF\xBF",
      "\xF4\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80",
      "\xE2\x82", "\xE2\x82\xAC", "\xBF", "\xFF", "a\xC3", "\xC3\xA9t\xC3\xA9",
    }
    local bytes = { 0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED,
      0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFE, 0xFF }
    local valid = { "A", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEF\xBF\xBF",
      "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF" }
    math.randomseed(7)
    for _ = 1, 20000 do
      local t = {}
      for k = 1, math.random(1, 5) do
        t[k] = math.random(3) == 1 and string.char(bytes[math.random(#bytes)]) or valid[math.random(#valid)]
      end
      cases[#cases + 1] = table.concat(t)
    end
    local accepted = 0
    for _, text in ipairs(cases) do
      local want = utf8.len(text) ~= nil
      local got = core.csv_plain_count(text .. "\n", 1, false) ~= nil
      if got ~= want then error(("%q: utf8.len says %s"):format(text, want)) end
      if got then accepted = accepted + 1 end
    end
    assert.is_true(accepted > 4000 and accepted < #cases - 4000)
  end)

  -- Line 1 always takes the Lua parser: the same text on line 2 must read
  -- the same through the fast path.
  it("reads every line as the Lua parser reads it", function()
    local pieces = { "a", ",", ",", '"', '""', "#", " ", "\0", "\xC3\xA9", "\xE2\x82\xAC",
      "\xF0\x9F\x98\x80", "\xC3", "\xED\xA0\x80", "\xFF", "x,y" }
    math.randomseed(11)
    local fast = 0
    for _ = 1, 5000 do
      local t = {}
      for k = 1, math.random(0, 6) do t[k] = pieces[math.random(#pieces)] end
      local line = table.concat(t)
      if line:find('"', 1, true) then
        -- A quote may start a field that goes on over the next line: the
        -- Lua parser's alone.
        assert.same({ nil }, { core.csv_plain_fields(line .. "\n", 1, false) })
        goto next_line
      end
      for _, comments in ipairs{ false, true } do
        local opts = { comments = comments }
        local r = csv.from_string(line .. "\n" .. line .. "\n", "t.csv", opts)
        local first = { r:next() }
        local second = { r:next() }
        local c = csv.from_string(line .. "\n" .. line .. "\n", "t.csv", opts)
        local first_count = { c:count() }
        local second_count = { c:count() }
        if first[1] == nil and first[2] then
          -- Refused on line 1: refused on line 2 with the same message.
          local r2 = csv.from_string("x\n" .. line .. "\n", "t.csv", opts)
          r2:next()
          assert.same({ nil, (first[2]:gsub("^t.csv:1:", "t.csv:2:")) }, { r2:next() })
        elseif first[1] == nil then
          assert.same({}, second) -- a blank or comment line: no record
        else
          if core.csv_plain_count(line .. "\n", 1, comments) then fast = fast + 1 end
          first[2] = first[2] + 1
          assert.same(first, second, line)
          first_count[2] = first_count[2] + 1
          assert.same(first_count, second_count, line)
        end
      end
      ::next_line::
    end
    assert.is_true(fast > 1000)
  end)
end)

describe("nvsgen.csv dict reader", function()
  local REQUIRED = { "key", "type", "encoding", "value" }

  it("keys records by the header, missing fields nil, extra fields ignored", function()
    local d = assert(csv.dict_from_string("\nkey,type,encoding,value\nns,namespace\nk,data,u8,1,extra\n",
      "t.csv", { required = REQUIRED }))
    assert.same({ "key", "type", "encoding", "value" }, d.header)
    assert.equal(2, d.header_line)
    assert.same({ { key = "ns", type = "namespace" }, 3 }, { d:next() })
    assert.same({ { key = "k", type = "data", encoding = "u8", value = "1" }, 4 }, { d:next() })
    assert.same({}, { d:next() })
    d:close()
  end)

  it("reads a file with comments, a BOM and CRLF line endings", function()
    local d = assert(csv.open_dict(FIXTURES .. "values_crlf.csv", { required = REQUIRED, comments = true }))
    assert.same({ { key = "storage", type = "namespace", encoding = "", value = "" }, 3 }, { d:next() })
    assert.same({ { key = "cert", type = "data", encoding = "string",
      value = "-----BEGIN-----\nMIIB\n-----END-----" }, 6 }, { d:next() })
    assert.same({ { key = "port", type = "data", encoding = "u16", value = "8,080" }, 9 }, { d:next() })
    assert.same({}, { d:next() })
    d:close()
  end)

  it("fails without a header line", function()
    assert.same({ nil, "t.csv: no header line" }, { csv.dict_from_string("\n\r\n", "t.csv") })
    assert.same({ nil, "t.csv: no header line" },
      { csv.dict_from_string("# only comments\n", "t.csv", { comments = true }) })
  end)

  it("fails when a required column is missing", function()
    assert.same({ nil, "t.csv:2: header has no column 'value'" },
      { csv.dict_from_string("#\nkey,type,encoding,Value\n", "t.csv", { required = REQUIRED, comments = true }) })
    assert.same({ nil, "t.csv:1: header has no column 'type'" },
      { csv.dict_from_string("key, tpe,encoding,value\n", "t.csv", { required = REQUIRED }) })
  end)

  it("reads a file aligned in columns (a padded header) without the blanks around its fields", function()
    local d = assert(csv.dict_from_string(table.concat({
      "key,          type,     encoding, value",
      "mass_prod,    namespace,,",
      "ProductID,    data,     string,   12345  ",
      'Quoted,\tdata, string,   "  kept  " ',
      'Glued,        data,     string,   "a"b c ',
      'Multi,        data,     string,   "x,\n y"',
      "",
    }, "\n"), "t.csv", { required = REQUIRED }))
    assert.same({ "key", "type", "encoding", "value" }, d.header)
    assert.same({ { key = "mass_prod", type = "namespace", encoding = "", value = "" }, 2 }, { d:next() })
    assert.same({ { key = "ProductID", type = "data", encoding = "string", value = "12345" }, 3 }, { d:next() })
    assert.same({ { key = "Quoted", type = "data", encoding = "string", value = "  kept  " }, 4 }, { d:next() })
    assert.same({ { key = "Glued", type = "data", encoding = "string", value = "ab c" }, 5 }, { d:next() })
    assert.same({ { key = "Multi", type = "data", encoding = "string", value = "x,\n y" }, 6 }, { d:next() })
    assert.same({}, { d:next() })
  end)

  it("reads the quoted names of a padded header without their quotes", function()
    local d = assert(csv.dict_from_string('"key",   "type", encoding,"va""lue"  \nns, namespace,,\n',
      "t.csv", { required = { "key", "type", "encoding" } }))
    assert.same({ "key", "type", "encoding", 'va"lue' }, d.header)
    assert.same({ { key = "ns", type = "namespace", encoding = "", ['va"lue'] = "" }, 2 }, { d:next() })
  end)

  it("keeps the blanks of every field when the header is not padded", function()
    local d = assert(csv.dict_from_string("key,type,encoding,value\n ns , namespace,,\nk,data,string,  v \n",
      "t.csv"))
    assert.same({ { key = " ns ", type = " namespace", encoding = "", value = "" }, 2 }, { d:next() })
    assert.same({ { key = "k", type = "data", encoding = "string", value = "  v " }, 3 }, { d:next() })
  end)

  it("passes on errors from the header and the records", function()
    assert.same({ nil, "t.csv:1: unterminated quoted field" },
      { csv.dict_from_string('key,"value\n', "t.csv") })
    local d = assert(csv.open_dict(FIXTURES .. "latin1.csv", { required = REQUIRED }))
    assert.same({ { key = "ns", type = "namespace", encoding = "", value = "" }, 2 }, { d:next() })
    assert.same({ nil, "spec/fixtures/csv/latin1.csv:3: not valid UTF-8" }, { d:next() })
    d:close()
    assert.same({ nil, "nope.csv: cannot open (No such file or directory)" }, { csv.open_dict("nope.csv") })
  end)

  it("rejects unknown options", function()
    assert.has_error(function() csv.open_dict("x.csv", { require = REQUIRED }) end,
      "bad argument #2 to 'open_dict' (unknown option 'require')")
  end)
end)

describe("nvsgen.csv writer", function()
  it("quotes only fields with a comma, quote, CR or LF, and ends lines with CRLF", function()
    assert.equal("key,type,encoding,value\r\n", csv.format_row({ "key", "type", "encoding", "value" }))
    assert.equal('"a,b","q""x","cr\rx","lf\nx",tab\tx, lead,#x\r\n',
      csv.format_row({ "a,b", 'q"x', "cr\rx", "lf\nx", "tab\tx", " lead", "#x" }))
    assert.equal("ns,namespace,,\r\n", csv.format_row({ "ns", "namespace", "", "" }))
    assert.equal("n,-5,18446744073709551615\r\n", csv.format_row({ "n", -5, "18446744073709551615" }))
    -- Integers are written in decimal without snprintf: the extremes too.
    assert.equal("-9223372036854775808,0,9223372036854775807,10,-1\r\n",
      csv.format_row({ math.mininteger, 0, math.maxinteger, 10, -1 }))
  end)

  it("writes one field as format_row does among others", function()
    assert.same({ "", "plain text", '"a,b"', '"q""x"', '"cr\rx"', '"lf\nx"' },
      { csv.field(""), csv.field("plain text"), csv.field("a,b"), csv.field('q"x'), csv.field("cr\rx"),
        csv.field("lf\nx") })
    assert.same({ true, true, false, false, false, false },
      { csv.is_plain(""), csv.is_plain("tab\tx"), csv.is_plain(","), csv.is_plain('"'), csv.is_plain("\r"),
        csv.is_plain("\n") })
  end)

  it("quotes a lone empty field, as Python does", function()
    assert.equal('""\r\n', csv.format_row({ "" }))
    assert.equal(",\r\n", csv.format_row({ "", "" }))
    assert.equal("\r\n", csv.format_row({}))
  end)

  it("refuses fields that are not strings or integers", function()
    assert.has_error(function() csv.format_row({ "a", 1.5 }) end,
      "bad argument #1 to 'format_row' (field 2 is a float, not a string or integer)")
    assert.has_error(function() csv.format_row({ "a", true }) end,
      "bad argument #1 to 'format_row' (field 2 is a boolean, not a string or integer)")
  end)

  it("writes what the reader reads back", function()
    local input = {
      { "key", "type", "encoding", "value" },
      { "" },
      { "a,b", 'say "hi"', "two\nlines", "", " x " },
      { '"', '""', ",", "\n" },
    }
    local text = {}
    for i, row in ipairs(input) do text[i] = csv.format_row(row) end
    assert.same(input, rows(table.concat(text)))
    -- universal newlines turn a CR in a field into LF, in Python too
    assert.same({ { "a\nb" } }, rows(csv.format_row({ "a\rb" })))
  end)

  it("writes byte for byte what Python's csv.writer wrote", function()
    -- python_written.csv was written by Python 3.11's csv.writer from these rows
    local input = {
      { "key", "type", "encoding", "value" },
      { "ns", "namespace", "", "" },
      { "cert", "data", "string", "line1\nline2" },
      { "q", "data", "string", 'say "hi", twice' },
      { "" },
      { "", "" },
      { "#k", "data", "u8", "1" },
      { " sp ", "data", "string", "a\rb" },
    }
    local f = assert(io.open(FIXTURES .. "python_written.csv", "rb"))
    local expected = f:read("a")
    f:close()
    local text = {}
    for i, row in ipairs(input) do text[i] = csv.format_row(row) end
    assert.equal(expected, table.concat(text))
  end)
end)
