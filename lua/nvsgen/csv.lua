-- nvsgen.csv: CSV reading and writing in the dialect of Python's csv module.
--
-- The reference tools open their CSV files as UTF-8 text with universal
-- newlines, optionally drop physical lines starting with '#' (or, as
-- mfg_gen.py does, lines of white space only), and parse the
-- rest with the default (non-strict) dialect. This module reproduces that
-- behaviour, streaming the input in chunks so that large value tables are
-- read in constant memory. Bad data is reported as `nil, "NAME:LINE: msg"`;
-- mistakes in the calling code raise.

local byte, find, sub, gsub = string.byte, string.find, string.sub, string.gsub
local format = string.format
local concat = table.concat
local utf8len = utf8.len
local io_open = io.open
local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error
local setmetatable, getmetatable = setmetatable, getmetatable
local math_type = math.type

local core = require("nvsgen.core")
local csv_row = core.csv_row
local is_blank_line = require("nvsgen.pytext").is_blank_line
local plain_fields, plain_count = core.csv_plain_fields, core.csv_plain_count

local M = {}

local CHUNK_SIZE = 64 * 1024
local QUOTE = byte('"')
local HASH = byte("#")
local NEWLINE = byte("\n")
local BOM = "\239\187\191"

-- Raise a "bad argument" error at the caller of the public function.
local function argerror(n, fname, msg)
  error(format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

-- Check an option table against the names in `allowed` (name -> type).
local function check_opts(opts, allowed, n, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    argerror(n, fname, "table expected, got " .. type(opts))
  end
  for k, v in pairs(opts) do
    local want = allowed[k]
    if not want then
      argerror(n, fname, "unknown option '" .. tostring(k) .. "'")
    elseif type(v) ~= want then
      argerror(n, fname, format("option '%s' must be a %s", k, want))
    end
  end
  return opts
end

---------------------------------------------------------------------------
-- Record reader
---------------------------------------------------------------------------

local Reader = {}
Reader.__index = Reader

-- Universal newlines: "\r\n" and a lone "\r" both become "\n". A chunk that
-- ends in "\r" keeps it back until the next chunk shows whether "\n" follows.
local function normalize(self, data)
  if self.held_cr then data = "\r" .. data end
  self.held_cr = byte(data, -1) == 13
  if self.held_cr then data = sub(data, 1, -2) end
  if not find(data, "\r", 1, true) then return data end -- the common case: nothing to do
  return (gsub(data, "\r\n?", "\n"))
end

-- Append the next chunk of the file to the buffer. Returns true when data
-- was added, false at end of file, or nil and a message on a read error.
local function fill(self)
  local data, msg = self.file:read(CHUNK_SIZE)
  if data == nil then
    if msg then return nil, msg end
    if not self.held_cr then return false end
    self.held_cr = false
    data = "\n"
  else
    data = normalize(self, data)
  end
  self.buf = sub(self.buf, self.pos) .. data
  self.pos = 1
  return true
end

-- Next physical line, ending in "\n" unless it is the last line of the
-- input; nil at the end; nil and a message on a read error.
local function read_line(self)
  while true do
    local e = find(self.buf, "\n", self.pos, true)
    if e then
      local line = sub(self.buf, self.pos, e)
      self.pos = e + 1
      return line
    end
    if not self.file then break end
    local more, msg = fill(self)
    if more == nil then return nil, msg end
    if not more then break end
  end
  if self.pos <= #self.buf then
    local line = sub(self.buf, self.pos)
    self.buf, self.pos = "", 1
    return line
  end
  return nil
end

-- Record an error so that later calls of next() report it again.
local function fail(self, msg)
  self.err = msg
  return nil, msg
end

-- Next physical line that the parser should see: counted, checked for
-- UTF-8, comment and blank lines dropped if asked (the reference tools
-- filter them before parsing, so even a line inside a quoted field goes).
local function next_physical(self)
  while true do
    local line, msg = read_line(self)
    if not line then
      if msg then return fail(self, format("%s: cannot read (%s)", self.name, msg)) end
      return nil
    end
    local n = self.lineno + 1
    self.lineno = n
    if n == 1 and not self.keep_bom and sub(line, 1, 3) == BOM then line = sub(line, 4) end
    if not utf8len(line) then
      return fail(self, format("%s:%d: not valid UTF-8", self.name, n))
    end
    if not ((self.comments and byte(line, 1) == HASH) or (self.blank_lines and is_blank_line(line))) then
      return line
    end
  end
end

local function check_reader(self, fname)
  if getmetatable(self) ~= Reader then
    error(format("bad argument #1 to '%s' (csv reader expected)", fname), 3)
  end
  if self.closed then error("attempt to use a closed csv reader", 3) end
end

-- The first physical line of the next record (empty lines are empty rows,
-- which the reference skips), nil at the end, or nil and a message.
local function record_line(self)
  if self.err then return nil, self.err end
  local line, msg
  repeat
    line, msg = next_physical(self)
    if not line then return nil, msg end
  until line ~= "\n"
  return line
end

-- A newline can only be the last character of a line, so the text of a
-- line ends at this index and separators are found with a plain search.
-- (Plain searches: a character-class pattern costs far more per byte.)
local function text_end(line)
  local last = #line
  if byte(line, last) == NEWLINE then last = last - 1 end
  return last
end

-- Blanks (spaces and tabs) around a field of an aligned file.
local function trim_blanks(text)
  return (gsub(text, "^[ \t]+", ""):gsub("[ \t]+$", ""))
end

-- Trims every field of a record read from an aligned file, in place.
local function trim_fields(fields)
  for i = 1, #fields do fields[i] = trim_blanks(fields[i]) end
  return fields
end

-- Parses a record that starts on `line` and holds a quote character (it
-- may go on over the next lines). Returns its fields or nil and a message.
local function parse_quoted(self, line)
  local start = self.lineno
  local last = text_end(line)
  local fields, n = {}, 0
  local pos = 1
  local trim = self.trim
  while true do
    local field
    -- An aligned file pads fields with blanks: a quote after them still
    -- opens a quoted field.
    if trim then pos = find(line, "[^ \t]", pos) or pos end
    if byte(line, pos) == QUOTE then
      -- Quoted part: runs to the next lone quote, possibly over several
      -- lines; '""' stands for one quote.
      pos = pos + 1
      local q = find(line, '"', pos, true)
      if q and byte(line, q + 1) ~= QUOTE then
        field = sub(line, pos, q - 1) -- the common case, no escapes
        pos = q + 1
      else
        local parts, np = {}, 0
        while true do
          if q then
            np = np + 1
            parts[np] = sub(line, pos, q - 1)
            if byte(line, q + 1) ~= QUOTE then
              pos = q + 1
              break
            end
            np = np + 1
            parts[np] = '"'
            pos = q + 2
          else
            np = np + 1
            parts[np] = sub(line, pos)
            local msg
            line, msg = next_physical(self)
            if not line then
              return fail(self, msg or format("%s:%d: unterminated quoted field", self.name, start))
            end
            pos = 1
            last = #line
            if byte(line, last) == NEWLINE then last = last - 1 end
          end
          q = find(line, '"', pos, true)
        end
        field = concat(parts)
      end
      -- Python's non-strict dialect keeps whatever follows the closing
      -- quote, up to the next separator, as plain text.
      local e = find(line, ",", pos, true)
      local stop = e and e - 1 or last
      if stop >= pos then
        local rest = sub(line, pos, stop)
        if trim then rest = trim_blanks(rest) end
        field = field .. rest
      end
      pos = e
    else
      -- Plain field: quotes inside it are literal.
      local e = find(line, ",", pos, true)
      field = sub(line, pos, e and e - 1 or last)
      if trim then field = trim_blanks(field) end
      pos = e
    end
    n = n + 1
    fields[n] = field
    if not pos then break end
    pos = pos + 1
  end
  return fields
end

-- Starts the next record: returns the line number where it starts and its
-- first line, or, for a record holding a quote character, the line number,
-- nil and its fields; nil at the end, or nil and a message.
local function begin_record(self)
  local line, msg = record_line(self)
  if not line then return nil, msg end
  local start = self.lineno
  if not find(line, '"', 1, true) then return start, line end
  local fields, err = parse_quoted(self, line)
  if not fields then return nil, err end
  return start, nil, fields
end

-- The common case, in C: the plain line at the reader's position, passed
-- to `split` (core.csv_plain_fields or csv_plain_count), whose first and
-- third results come back with the line's number. Line 1 (which may start
-- with a byte order mark), a reader that failed and any line that is not
-- plain give nil: the Lua parser takes them.
local function take_plain(self, split)
  while true do
    if self.lineno == 0 or self.err then return nil end
    local result, pos, extra = split(self.buf, self.pos, self.comments)
    if not result then return nil end
    local n = self.lineno + 1
    self.lineno, self.pos = n, pos
    -- A line of one field may be white space only: dropped when asked.
    local only = extra -- count's only field
    if type(result) == "table" then only = result[2] == nil and result[1] end
    if not (self.blank_lines and only and is_blank_line(only)) then return result, n, extra end
  end
end

--- Parses the next record. Returns the list of fields, the physical line
-- where the record starts and whether the record was plain (no quote
-- character: then no field holds a separator, a quote or a newline); nil
-- at the end, or nil and a message.
function Reader:next()
  check_reader(self, "next")
  local split, split_line = take_plain(self, plain_fields)
  if split then
    if self.trim then trim_fields(split) end
    return split, split_line, true
  end
  local start, line, quoted = begin_record(self)
  if not start then return nil, line end
  if quoted then return quoted, start, false end
  -- No quotes: plain comma-separated text, the common case.
  local last = text_end(line)
  local fields, n, pos = {}, 0, 1
  while true do
    local e = find(line, ",", pos, true)
    n = n + 1
    if not e or e > last then
      fields[n] = sub(line, pos, last)
      if self.trim then trim_fields(fields) end
      return fields, start, true
    end
    fields[n] = sub(line, pos, e - 1)
    pos = e + 1
  end
end

--- Passes over the next record, counting its fields, for a caller that
-- needs only that: no field is cut out of a plain record. Returns the
-- count, the line where the record starts and, for a record of one field,
-- that field; nil at the end, or nil and a message.
function Reader:count()
  check_reader(self, "count")
  local count, count_line, only = take_plain(self, plain_count)
  if count then return count, count_line, only end
  local start, line, quoted = begin_record(self)
  if not start then return nil, line end
  if quoted then return #quoted, start, quoted[2] == nil and quoted[1] or nil end
  -- One field more than commas (a newline only ends the line).
  local _, commas = gsub(line, ",", "")
  if commas == 0 then return 1, start, sub(line, 1, text_end(line)) end
  return commas + 1, start
end

--- For a caller that takes plain record lines straight from the read
-- buffer (nvsgen.mfg's C maker): the buffer, the position in it and the
-- number of the last line read; nil once the reader failed, or before its
-- first line (which may start with a byte order mark).
function Reader:buffer()
  check_reader(self, "buffer")
  if self.lineno == 0 or self.err then return nil end
  return self.buf, self.pos, self.lineno
end

--- Moves past `lines` plain record lines the caller took from the buffer
-- (each one physical line), to position `pos`.
function Reader:advance(pos, lines)
  check_reader(self, "advance")
  self.pos, self.lineno = pos, self.lineno + lines
end

--- When no whole line is left in the buffer, reads the next chunk of the
-- file into it. Returns true when it did (a caller taking lines from the
-- buffer may go on), false otherwise (the reader's own functions take
-- what is left, and report a read error).
function Reader:more()
  check_reader(self, "more")
  if self.err or not self.file or find(self.buf, "\n", self.pos, true) then return false end
  return fill(self) == true
end

function Reader:close()
  check_reader(self, "close")
  self.closed = true
  if self.file then self.file:close() end
end

function Reader:__close()
  if not self.closed then self:close() end
end

Reader.__name = "nvsgen.csv.reader"

local function new_reader(file, buf, name, opts)
  return setmetatable({
    file = file,          -- nil when reading from a string
    buf = buf, pos = 1,   -- normalized text not yet split into lines
    held_cr = false,
    name = name,
    comments = opts.comments or false,
    blank_lines = opts.blank_lines or false,
    trim = false,         -- set by the dict reader for an aligned file
    keep_bom = opts.keep_bom or false,
    lineno = 0,
    err = nil,
    closed = false,
  }, Reader)
end

local READER_OPTS = { comments = "boolean", blank_lines = "boolean", keep_bom = "boolean" }

--- Open a CSV file for reading.
-- opts.comments: drop physical lines starting with '#';
-- opts.blank_lines: drop physical lines of white space only (as Python's
-- str.isspace() sees it), as mfg_gen.py does before reading its inputs;
-- opts.keep_bom: keep a byte order mark at the start as text (by default it
-- is dropped).
-- Returns a reader, or nil and "PATH: cannot open (reason)".
function M.open(path, opts)
  if type(path) ~= "string" then argerror(1, "open", "string expected, got " .. type(path)) end
  opts = check_opts(opts, READER_OPTS, 2, "open")
  local file, msg = io_open(path, "rb")
  if not file then
    local prefix = path .. ": "
    if sub(msg, 1, #prefix) == prefix then msg = sub(msg, #prefix + 1) end
    return nil, format("%s: cannot open (%s)", path, msg)
  end
  return new_reader(file, "", path, opts)
end

--- A reader over an in-memory string; `name` is used in messages.
function M.from_string(text, name, opts)
  if type(text) ~= "string" then argerror(1, "from_string", "string expected, got " .. type(text)) end
  if name ~= nil and type(name) ~= "string" then
    argerror(2, "from_string", "string expected, got " .. type(name))
  end
  opts = check_opts(opts, READER_OPTS, 3, "from_string")
  local r = new_reader(nil, "", name or "(string)", opts)
  r.buf = normalize(r, text)
  if r.held_cr then r.buf, r.held_cr = r.buf .. "\n", false end
  return r
end

---------------------------------------------------------------------------
-- Dict reader: records keyed by the names in the header
---------------------------------------------------------------------------

local DictReader = {}
DictReader.__index = DictReader
DictReader.__name = "nvsgen.csv.dict_reader"

local function check_dict(self, fname)
  if getmetatable(self) ~= DictReader then
    error(format("bad argument #1 to '%s' (csv dict reader expected)", fname), 3)
  end
end

--- Next record as a table keyed by column name, and its line. As with
-- Python's DictReader, missing trailing fields are nil and extra fields
-- are ignored.
function DictReader:next()
  check_dict(self, "next")
  local fields, line = self.reader:next()
  if not fields then return nil, line end
  local record = {}
  for i, name in ipairs(self.header) do
    record[name] = fields[i]
  end
  return record, line
end

function DictReader:close()
  check_dict(self, "close")
  self.reader:close()
end

function DictReader:__close()
  if not self.reader.closed then self.reader:close() end
end

local DICT_OPTS = { comments = "boolean", required = "table" }

-- Read the header of `reader` and check it has the required columns.
local function new_dict(reader, required, n, fname)
  for i, col in ipairs(required) do
    if type(col) ~= "string" then
      argerror(n, fname, format("required column %d is not a string", i))
    end
  end
  local header, line = reader:next()
  local msg
  if not header then
    msg = line or format("%s: no header line", reader.name)
  else
    -- A header whose names are padded with blanks marks a file laid out
    -- in columns for the eye (as in ESP-IDF's mass-production guide):
    -- blanks around every unquoted field of the file are not data.
    for _, col in ipairs(header) do
      if find(col, "^[ \t]") or find(col, "[ \t]$") then reader.trim = true end
    end
    if reader.trim then
      trim_fields(header)
      -- The header was split before its padding was known, so a quoted
      -- name after blanks (`key,   "type"`) still holds its quotes.
      for i, col in ipairs(header) do
        local quoted = col:match('^"(.*)"$')
        if quoted then header[i] = quoted:gsub('""', '"') end
      end
    end
    local have = {}
    for _, col in ipairs(header) do have[col] = true end
    for _, col in ipairs(required) do
      if not have[col] then
        msg = format("%s:%d: header has no column '%s'", reader.name, line, col)
        break
      end
    end
  end
  if msg then
    reader:close()
    return nil, msg
  end
  return setmetatable({
    reader = reader,
    header = header,
    header_line = line,
    name = reader.name,
  }, DictReader)
end

--- Open a CSV file whose first non-blank record is a header.
-- opts.required: column names that must be in the header;
-- opts.comments: as for open(). Returns a dict reader, or nil and a message.
function M.open_dict(path, opts)
  if type(path) ~= "string" then argerror(1, "open_dict", "string expected, got " .. type(path)) end
  opts = check_opts(opts, DICT_OPTS, 2, "open_dict")
  local reader, msg = M.open(path, { comments = opts.comments })
  if not reader then return nil, msg end
  return new_dict(reader, opts.required or {}, 2, "open_dict")
end

--- The dict reader over an in-memory string.
function M.dict_from_string(text, name, opts)
  if type(text) ~= "string" then
    argerror(1, "dict_from_string", "string expected, got " .. type(text))
  end
  opts = check_opts(opts, DICT_OPTS, 3, "dict_from_string")
  local reader = M.from_string(text, name, { comments = opts.comments })
  return new_dict(reader, opts.required or {}, 3, "dict_from_string")
end

---------------------------------------------------------------------------
-- Writer
---------------------------------------------------------------------------

--- True when CSV writes `text` as a field as it is: it holds no ',', '"',
-- CR or LF. (Plain finds are memchr scans: several times faster than one
-- search for a character class.)
function M.is_plain(text)
  return not (find(text, ",", 1, true) or find(text, '"', 1, true) or find(text, "\r", 1, true)
    or find(text, "\n", 1, true))
end

--- A text field as format_row writes it among others: quoted, quotes
-- doubled, only when it holds ',', '"', CR or LF.
function M.field(text)
  if M.is_plain(text) then return text end
  return '"' .. gsub(text, '"', '""') .. '"'
end

--- One record as Python's csv.writer writes it with the default dialect:
-- a field is quoted only when it holds ',', '"', CR or LF, quotes are
-- doubled, and the line ends in CRLF. Fields are strings or integers.
function M.format_row(fields)
  if type(fields) ~= "table" then argerror(1, "format_row", "table expected, got " .. type(fields)) end
  local n = #fields
  -- A lone empty field is quoted, or the line would read back as no record.
  if n == 1 and fields[1] == "" then return '""\r\n' end
  -- The same line made in C, in one pass; nil for a field of another type.
  local line = csv_row(fields)
  if line then return line end
  local out = {}
  for i = 1, n do
    local v = fields[i]
    if math_type(v) == "integer" then
      v = tostring(v)
    elseif type(v) ~= "string" then
      argerror(1, "format_row", format("field %d is a %s, not a string or integer",
        i, math_type(v) or type(v)))
    else
      v = M.field(v)
    end
    out[i] = v
  end
  return concat(out, ",") .. "\r\n"
end

return M
