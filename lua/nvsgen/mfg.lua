--- nvsgen.mfg: the units of ESP-IDF's mass manufacturing tool (mfg_gen.py)
-- from a config and a values CSV file: reading and checking both, building
-- each unit's CSV text and image, naming and writing its files.
--
-- Nothing is printed; failures come back as nil and a message naming the
-- file and line ("values.csv:7: key 'serial': ..."), and the line as a
-- third value when it is a values row's (a shared batch orders failures by
-- it).

local nvsgen = require("nvsgen")
local core = require("nvsgen.core")
local crypto = require("nvsgen.crypto")
local csv = require("nvsgen.csv")
local csvgen = require("nvsgen.csvgen")
local keyplan = require("nvsgen.keyplan")
local pypath = require("nvsgen.pypath")
local parse_integer = require("nvsgen.values").integer

local find, sub, byte, concat = string.find, string.sub, string.byte, table.concat
local tostring, tonumber, ipairs = tostring, tonumber, ipairs
local csv_field = csv.field
local pyjoin = pypath.join

local M = {}

local MODE_PUBLIC, MODE_SECRET = nvsgen.FILE_MODE, nvsgen.SECRET_MODE
-- Exit status of a command-line mistake, returned third with such messages.
local EXIT_USAGE = 2

-- The encodings mfg_gen.py accepts in a config file (u64/i64 since
-- ESP-IDF PR #14159); nvs_partition_gen itself knows more.
local ENCODINGS = {
  string = true, binary = true, hex2bin = true, base64 = true,
  u8 = true, i8 = true, u16 = true, u32 = true, i32 = true, u64 = true, i64 = true,
}
local ENCODING_LIST = "string, binary, hex2bin, base64, u8, i8, u16, u32, i32, u64, i64"
local TYPES = { data = true, file = true, namespace = true }

--- The widest --prefix_num counter: a file name (the counter, the prefix,
-- the id) must fit the 255 bytes a name may have, and a wider one would
-- only fail at the first unit with a message as long as the name.
M.MAX_PREFIX_WIDTH = 128

--- Whether the plain rows are made in C (core.mfg_maker); false makes
-- every unit in Lua, the general code (the specs compare the two).
M.use_maker = true

local function has_field(fields, value)
  for i = 1, #fields do
    if fields[i] == value then return true end
  end
  return false
end

--- A reader of `path` that drops the lines mfg_gen.py drops before reading
-- its inputs as CSV: those of white space only, even inside a quoted value.
-- keep_bom: a byte order mark stays, as mfg_gen.py keeps it.
local function open_csv(path, keep_bom)
  return csv.open(path, { blank_lines = true, keep_bom = keep_bom })
end

--- The header and first data row of the values file: header, first (nil
-- without data rows), whether that row was plain (no value needs quoting).
-- Returns them, or nil and a message.
function M.read_head(values)
  local reader <close>, err = open_csv(values)
  if not reader then return nil, err end
  local header, line = reader:next()
  if not header then return nil, line or values .. ": the values file is empty" end
  local first, fline, plain = reader:next()
  if not first and fline then return nil, fline end
  return header, first, plain
end

-- ---- the config file ---------------------------------------------------------

--- Reads and checks the config file against the values header, in the
-- reference's order of checks. Returns the config as
-- { rows = { { fields, line, namespace }... }, repeat_keys = {...} },
-- or nil and a message.
function M.read_config(conf, values, header)
  -- A byte order mark stays part of the first key, as mfg_gen.py reads it
  -- (the values file's is dropped: mfg_gen.py would only fail on it).
  local reader <close>, rerr = open_csv(conf, true)
  if not reader then return nil, rerr end
  local rows, keys, repeat_keys, repeat_set = {}, {}, {}, {}
  while true do
    local fields, line = reader:next()
    if not fields then
      if line then return nil, line end
      break
    end
    local row = { fields = fields, line = line, namespace = has_field(fields, "namespace") }
    rows[#rows + 1] = row
    if not row.namespace then keys[fields[1]] = true end
    if has_field(fields, "REPEAT") then
      repeat_keys[#repeat_keys + 1] = fields[1]
      repeat_set[fields[1]] = true
    end
  end
  if #rows == 0 then return nil, conf .. ": the config file is empty" end

  local function where(row)
    return ("%s:%d: key '%s'"):format(conf, row.line, row.fields[1])
  end
  for _, row in ipairs(rows) do
    local n = #row.fields
    if n ~= 3 and not repeat_set[row.fields[1]] then
      return nil, ("%s: expected 3 fields key,type,encoding, got %d"):format(where(row), n)
    end
  end
  for _, row in ipairs(rows) do
    local f = row.fields
    if not TYPES[f[2]] then
      return nil, ("%s: unknown type '%s' (expected data, file or namespace)"):format(where(row), f[2] or "")
    end
    if not row.namespace and not ENCODINGS[f[3]] then
      return nil, ("%s: encoding '%s' is not one mfg_gen accepts (%s)")
        :format(where(row), f[3] or "", ENCODING_LIST)
    end
  end

  -- The config keys must be columns of the values file, in the same order
  -- (other columns may come between them).
  local columns, in_header = {}, {}
  for _, col in ipairs(header) do
    in_header[col] = true
    if keys[col] then columns[#columns + 1] = col end
  end
  local next_col = 1
  for _, row in ipairs(rows) do
    if not row.namespace then
      local key = row.fields[1]
      if columns[next_col] ~= nil and key == columns[next_col] then
        next_col = next_col + 1
      elseif not in_header[key] then
        local unknown = {}
        for _, col in ipairs(header) do
          if not keys[col] then unknown[#unknown + 1] = "'" .. col .. "'" end
        end
        return nil, ("%s: not in the header of %s%s"):format(where(row), values,
          #unknown > 0 and " (its columns not in the config: " .. concat(unknown, ", ") .. ")" or "")
      else
        return nil, ("%s: no column left for it in the header of %s after those of the keys before it"
          .. " (the config's keys need their own columns, in the same order)"):format(where(row), values)
      end
    end
  end
  return { rows = rows, repeat_keys = repeat_keys }
end

-- ---- units -------------------------------------------------------------------

local COLUMN_NAMES = { "key", "type", "encoding", "value" }

-- The data encodings the C maker converts as the fast rows do (csvgen).
local MAKER_ENCODINGS = {
  string = "string", hex2bin = "hex2bin", base64 = "base64", binary = "binary",
  u8 = "u8", i8 = "i8", u16 = "u16", u32 = "u32", i32 = "i32", u64 = "u64", i64 = "i64",
}

--- What the C maker (core.mfg_maker) makes of a config row: a line of the
-- unit CSV only ("text", "skip"), a namespace, a value kind; nil for a row
-- only the compiler makes (then every unit is made in Lua).
local function maker_kind(item, kind, encoding)
  if item.skip then return item.namespace and "text" or "skip" end
  if not item.put then return nil end
  if item.namespace then return "namespace" end
  if kind == "file" then return encoding == "binary" and "file" or nil end
  return kind == "data" and MAKER_ENCODINGS[encoding] or nil
end

--- Prepares what every unit shares: for each config row, the fields of its
-- unit CSV row but the value, already formatted, and the row the compiler
-- takes. A data row's value is looked up in the values row per unit.
local function unit_template(config, partition)
  local items = {}
  for i, row in ipairs(config.rows) do
    local fields = table.move(row.fields, 1, #row.fields, 1, {})
    for k = 1, #fields do
      if fields[k] == "REPEAT" then table.remove(fields, k); break end
    end
    local item = { key = fields[1], namespace = row.namespace }
    local full = table.move(fields, 1, #fields, 1, {})
    full[#full + 1] = ""
    item.value_column = COLUMN_NAMES[#full] -- where the value goes, if anywhere
    if row.namespace then
      item.text = csv.format_row(full)
    else
      full[#full] = "v" -- a plain stand-in for the value, cut off below
      item.prefix = sub(csv.format_row(full), 1, -4)
      full[#full] = ""
    end
    -- nvs_partition_gen skips the unit CSV's lines starting with '#'.
    item.skip = byte(item.text or item.prefix, 1) == 35
    item.row = { key = full[1], type = full[2], encoding = full[3], value = full[4] }
    -- The common rows are added without the compiler's general path; the
    -- others (and any value the fast form refuses) go through it.
    item.put = not item.skip and item.value_column == "value"
      and csvgen.fast_row(partition, full[1], full[2], full[3]) or nil
    item.maker_kind = maker_kind(item, full[2], full[3])
    items[i] = item
  end
  return items
end

--- The columns a REPEAT fills in the rows after the first: mfg_gen.py
-- walks the header and the REPEAT keys together, so only keys in the same
-- relative order match.
local function repeat_columns(header, repeat_keys)
  local cols, r = {}, 1
  for i, col in ipairs(header) do
    if repeat_keys[r] == nil then break end
    if col == repeat_keys[r] then
      cols[#cols + 1] = i
      r = r + 1
    end
  end
  return cols
end

-- The Wi-Fi entries' key derivation, loaded only when a CSV needs it.
local function pbkdf2(...)
  return crypto.pbkdf2_sha1(...)
end

--- The --prefix_num option's words (START LENGTH) as { start, width }, nil
-- without them. Checked as argparse's int() would; a negative length (a
-- crash in mfg_gen.py) and one beyond MAX_PREFIX_WIDTH are refused.
-- Returns the numbering (or false without the option), or nil, a message
-- and an exit status.
function M.prefix_numbering(words)
  if not words then return false end
  local n = {}
  for i = 1, 2 do
    local text = parse_integer(words[i])
    n[i] = text and math.tointeger(tonumber(text))
    if not n[i] then
      local shown = #words[i] > 40 and words[i]:sub(1, 40) .. "..." or words[i]
      return nil, ("argument --prefix_num: invalid int value: '%s'"):format(shown), EXIT_USAGE
    end
  end
  if n[2] < 0 then return nil, "argument --prefix_num: the length must not be negative", EXIT_USAGE end
  if n[2] > M.MAX_PREFIX_WIDTH then
    return nil, ("argument --prefix_num: length %d is more than a file name can hold (at most %d digits)")
      :format(n[2], M.MAX_PREFIX_WIDTH), EXIT_USAGE
  end
  return { start = n[1], width = n[2] }
end

--- What follows "PREFIX-" in the names of unit `number`'s files: its id,
-- after its counter with --prefix_num (zero-padded as Python's
-- f"{n:0{width}}" pads, the sign counted in the width).
local function file_id(job, number, id)
  local numbering = job.numbering
  if not numbering then return id end
  local n = numbering.start + number - 1
  local digits = tostring(n < 0 and -n or n)
  local pad = numbering.width - #digits - (n < 0 and 1 or 0)
  if pad > 0 then digits = string.rep("0", pad) .. digits end
  return (n < 0 and "-" or "") .. digits .. "-" .. id
end
M.file_id = file_id

-- ---- file names ----------------------------------------------------------------

-- A name in a folder must not start with "/" (it would be taken from the
-- root): the slashes a PREFIX starts with go with the folders' paths.
local function prefix_slashes(job)
  return job.prefix:match("^/*")
end

--- What the partition generator adds to the name of a unit's keys file
-- (path: the name so far): nothing when the name already has an extension
-- holding ".bin" (an id "u1.bin" names "keys-P-u1.bin"), judged as every
-- .bin name is; else ".bin" (mfg_gen.py stops at another extension, here
-- ".bin" is added).
local function keys_suffix(path)
  return pypath.has_bin_ext(path) and "" or ".bin"
end

--- keys_suffix for unit `id`'s keys file. An id without '.' or '/' adds
-- nothing to the extension that counts ("-" ends any ".bin" before it),
-- so its suffix is the job's, found once.
function M.unit_keys_suffix(job, id)
  if not find(id, "[./]") then return job.keys_suffix end
  return keys_suffix(job.paths.keys .. id)
end

--- Sets the names of the job's files: job.dirs, the folders of a unit's
-- files as the prefixes of their paths (each ends with "/": core.folder
-- then names a file in it as this prefix and the file's name, the path
-- mfg_gen.py would show); job.names, the start of each file's name in its
-- folder; job.paths, both together. The paths of a unit's files are these
-- prefixes, the unit's id and the suffixes, as mfg_gen.py joins them
-- (os.path.join looks only at the start of the part joined, which never
-- starts with the id).
local function name_files(job)
  local slashes = prefix_slashes(job)
  job.csv_dir = pyjoin(pyjoin(job.outdir, "csv"), "")
  job.dirs = {
    csv = job.csv_dir .. slashes,
    bin = pyjoin(job.outdir, "bin/") .. slashes,
    keys = job.keys_dir and pyjoin(job.keys_dir, ""),
  }
  local name = job.prefix .. "-"
  local relative = name:sub(#slashes + 1)
  job.names = { csv = relative, bin = relative, keys = "keys-" .. name, hmac = "hmac-keys-" .. name }
  local dirs, names = job.dirs, job.names
  job.paths = {
    csv = dirs.csv .. names.csv,
    bin = dirs.bin .. names.bin,
    keys = dirs.keys and dirs.keys .. names.keys,
    hmac = dirs.keys and dirs.keys .. names.hmac,
  }
  job.keys_suffix = job.keys_dir and keys_suffix(job.paths.keys .. "1")
end

--- The names of unit `id`'s files in their folders (job.dirs): its CSV,
-- its image and, when the job writes keys, its keys and HMAC key files.
function M.unit_files(job, id)
  local names = job.names
  local csv_file, bin_file = names.csv .. id .. ".csv", names.bin .. id .. ".bin"
  if not job.keys_dir then return csv_file, bin_file end
  local suffix = M.unit_keys_suffix(job, id)
  return csv_file, bin_file, names.keys .. id .. suffix, names.hmac .. id .. suffix
end

-- ---- encryption -------------------------------------------------------------------

--- Sets up encryption (opts: keygen, inputkey, key_protect_hmac,
-- kp_hmac_keygen, kp_hmac_keyfile, kp_hmac_inputkey): job.key (one key
-- for every unit), job.keygen (a keys file per unit), job.hmac_per_unit,
-- job.batch_hmac ({ bytes, path }: one HMAC key file for the batch).
-- Returns whether the units are encrypted, or nil, a message and an exit
-- status.
local function setup_encryption(job, opts)
  if not opts.keygen and not opts.inputkey then return false end
  if opts.keygen and opts.inputkey then
    return nil, "--keygen and --inputkey are mutually exclusive", EXIT_USAGE
  end
  if opts.inputkey then
    if not pypath.has_bin_ext(opts.inputkey) then return nil, pypath.BIN_EXT_ONLY:format(opts.inputkey) end
    local key, err = crypto.read_keys(opts.inputkey)
    if not key then return nil, err end
    job.partition:set_key(key)
    job.input_key = key
    return true
  end
  job.keygen = true
  job.keys_dir = pyjoin(job.outdir, "keys")
  if opts.key_protect_hmac then
    if opts.kp_hmac_keygen and not opts.kp_hmac_keyfile then
      job.hmac_per_unit = true
    else
      -- One HMAC key named by --kp_hmac_keyfile (mfg_gen.py rewrites that
      -- file for every unit, so only the last unit's key would survive):
      -- here the whole batch shares it, as with --kp_hmac_inputkey.
      local key, hmac, status = keyplan.hmac_key(opts)
      if not key then return nil, hmac, status end
      job.key = key
      if hmac then
        local name, err = pypath.bin_name(opts.kp_hmac_keyfile)
        if not name then return nil, err end
        job.batch_hmac = { hmac, pyjoin(job.keys_dir, name) }
      end
    end
  end
  return true
end

--- The C maker of the job's plain rows (core.mfg_maker), or nil when a
-- config row, the encryption or the REPEAT values need Lua for every unit.
local function new_maker(job, version)
  if job.hmac_per_unit or not M.use_maker then return nil end
  local items, fill = {}, {}
  for i, item in ipairs(job.items) do
    if not item.maker_kind then return nil end
    items[i] = { item.maker_kind, item.key, item.text or item.prefix }
  end
  for i, col in ipairs(job.fill) do fill[i] = { col, job.first[col] } end
  -- REPEAT values that need quoting would make every later row need it.
  if #fill > 0 and not job.first_plain then return nil end
  local encryption, key = "plain", nil
  if job.keygen then
    encryption, key = job.key and "fixed_file" or "keygen", job.key
  elseif job.encrypted then
    encryption, key = "fixed", job.input_key
  end
  local numbering = job.numbering
  return core.mfg_maker{
    size = job.size, version = version, header = job.header, items = items, fill = fill,
    fileid = job.fileid, numbering = numbering and { numbering.start, numbering.width },
    names = { csv = job.names.csv, bin = job.names.bin, keys = job.keys_dir and job.names.keys },
    keys_suffix = job.keys_suffix, encryption = encryption, key = key,
  }
end

--- Sets up the making of a batch's units. `opts`: conf and values (paths),
-- header, first and first_plain (M.read_head), config (M.read_config),
-- size, version (1 or 2), prefix, outdir, fileid (a column or nil),
-- numbering (M.prefix_numbering), and the encryption options of
-- setup_encryption. Returns the job, or nil, a message and an exit status.
function M.job(opts)
  local partition, err = nvsgen.try_partition{ size = opts.size, version = opts.version }
  if not partition then return nil, err end
  local config = opts.config
  if #config.repeat_keys > 0 and not opts.first then
    return nil, ("%s: no data row to take the REPEAT values (key '%s') from")
      :format(opts.values, config.repeat_keys[1])
  end
  local job = {
    size = opts.size, values = opts.values, header = opts.header, prefix = opts.prefix,
    outdir = opts.outdir, partition = partition,
    fill = repeat_columns(opts.header, config.repeat_keys), first = opts.first,
    first_plain = opts.first_plain, fileid = opts.fileid, numbering = opts.numbering,
    csv_lines = { "key,type,encoding,value\r\n" }, -- see M.build_unit
  }
  job.items = unit_template(config, partition)
  local encrypted, status
  encrypted, err, status = setup_encryption(job, opts)
  if encrypted == nil then return nil, err, status end
  job.encrypted = encrypted
  name_files(job)
  job.maker = new_maker(job, opts.version)
  return job
end

--- Builds one unit from its values row: the unit CSV text, with the image
-- compiled into job.partition. Returns the text, or nil, "file:line: key
-- 'X': message" and the line.
function M.build_unit(job, fields, line, plain)
  local partition, header, items = job.partition, job.header, job.items
  partition:reset()
  -- Made for the first row the fast forms leave to it: the Wi-Fi entries
  -- it tracks only concern rows that have no fast form.
  local compiler
  -- The lines of the unit CSV, in a table kept for the next unit.
  local out = job.csv_lines
  local ncols, p = #header, 1
  for i = 1, #items do
    local item = items[i]
    local row = item.row
    if item.namespace then
      out[i + 1] = item.text
    else
      local key = item.key
      while p <= ncols and header[p] ~= key and fields[p] ~= key do p = p + 1 end
      if p > ncols then
        return nil, ("%s:%d: key '%s': no value left for it in the row"):format(job.values, line, key), line
      end
      local value = fields[p]
      p = p + 1
      if not plain and find(value, "\n#", 1, true) then
        -- nvs_partition_gen would drop that line of the unit CSV as a
        -- comment, and read the rest of the file into the value.
        return nil, ("%s:%d: key '%s': a line of the value starts with '#', which nvs_partition_gen"
          .. " drops as a comment"):format(job.values, line, key), line
      end
      out[i + 1] = item.prefix .. (plain and value or csv_field(value)) .. "\r\n"
      if item.value_column then row[item.value_column] = value end
    end
    local put = item.put
    if not item.skip and not (put and put(row.value)) then
      compiler = compiler or csvgen.compiler(partition, pbkdf2)
      local ok, err = compiler:row(row)
      if not ok then
        if sub(err, 1, 5) ~= "key '" then err = ("key '%s': %s"):format(tostring(row.key), err) end
        return nil, ("%s:%d: %s"):format(job.values, line, err), line
      end
    end
  end
  return concat(out, "", 1, #items + 1)
end

--- Calls fn(number, id, fields, line, plain) for each data row of the
-- values file in order, the REPEAT values filled in (plain: no value needs
-- quoting in CSV). fn returns true to go on, false to stop, or nil and a
-- message (and a line) to fail. With `wanted(number)` (true, false, or nil
-- and a message), only for the rows it accepts: the others are passed over
-- cheaply. Every row must have as many fields as the header. With
-- `fast(reader, number)` (M.maker_pass), the rows it takes (it returns the
-- last unit it took) are not passed to fn. Returns the number of rows
-- read, or nil, a message and a line.
function M.each_unit(job, fn, wanted, fast)
  local reader <close>, rerr = open_csv(job.values)
  if not reader then return nil, rerr end
  local header, fileid, fill, first = job.header, job.fileid, job.fill, job.first
  local ncols = #header
  reader:next()
  local filled_plain = #fill == 0 or job.first_plain
  local number = 0
  while true do
    if fast then number = fast(reader, number) end
    local count_only
    if wanted and not fileid then
      local want, werr = wanted(number + 1)
      if want == nil then return nil, werr end
      count_only = not want
    end
    if count_only then
      local count, line = reader:count()
      if not count then
        if line then return nil, line end
        break
      end
      number = number + 1
      if count ~= ncols then
        return nil, ("%s:%d: %d values for the %d columns of the header"):format(job.values, line, count, ncols), line
      end
    else
      local fields, line, plain = reader:next()
      if not fields then
        if line then return nil, line end
        break
      end
      number = number + 1
      if #fields ~= ncols then
        return nil, ("%s:%d: %d values for the %d columns of the header")
          :format(job.values, line, #fields, ncols), line
      end
      if number > 1 then
        for _, col in ipairs(fill) do fields[col] = first[col] end
        plain = plain and filled_plain
      end
      local id
      if fileid then
        for i = 1, ncols do
          if header[i] == fileid or fields[i] == fileid then id = fields[i]; break end
        end
      else
        id = tostring(number)
      end
      local go, err, eline = fn(number, file_id(job, number, id), fields, line, plain)
      if go == false then break end
      if go == nil then return nil, err, eline end
    end
  end
  return number
end

--- For M.each_unit: fast(reader, number), the C maker's (job.maker) part of
-- a pass over the values file, or nil without a maker. It takes plain rows
-- from the reader's buffer for as long as the maker can, and leaves the
-- next row to Lua; it returns the last unit taken. `mode`: "check" (opts.seen:
-- the table of ids of M.check_units) or "write" (opts.folders: those of
-- M.write_unit; opts.made(number, report): after each stretch of units
-- written, with what is printed for them when opts.report holds the
-- pieces of a unit's report); opts.wanted: as each_unit's, taking units
-- in chunks of opts.chunk (nvsgen.chunks: the first unit of a chunk
-- follows a multiple of its size); opts.go(): false when the batch must
-- stop (a signal, the main process gone), asked before each stretch: the
-- next row then goes to Lua's path, which stops there.
function M.maker_pass(job, mode, opts)
  local maker = job.maker
  if not maker then return nil end
  local run, wanted, made, chunk, go = maker.run, opts.wanted, opts.made, opts.chunk or 1, opts.go
  local extra = mode == "check" and opts.seen or opts.folders
  local report = opts.report
  return function(reader, number)
    while true do
      if go and not go() then return number end
      local buf, pos, line = reader:buffer()
      if not buf then return number end
      local this_mode, limit = mode, math.maxinteger
      if wanted then
        local own, edge = wanted(number + 1)
        if own == nil then return number end -- Lua's path says why
        if own then limit = (number // chunk + 1) * chunk else this_mode, limit = "skip", edge - 1 end
      end
      local new_pos, new_number, why, text = run(maker, this_mode, buf, pos, number, limit, line, extra,
        this_mode == "write" and report or nil)
      reader:advance(new_pos, new_number - number)
      if made and this_mode == "write" and new_number > number then made(new_number, text) end
      number = new_number
      if why == "lua" and not reader:more() then return number end
    end
  end
end

--- What is printed for units `first` to `last` of a batch whose ids are
-- the units' numbers (no --fileid), made by the C maker: `pieces` around
-- each id (as M.maker_pass's opts.report), as one text; nil without a
-- maker, or for ids it leaves to Lua.
function M.number_reports(job, pieces, first, last)
  local maker = job.maker
  if not maker or job.fileid then return nil end
  return maker:reports(first, last, pieces)
end

--- Checks every unit of the values file before anything is written: each
-- row is built as it will be (every value converted, every entry placed
-- in the partition; by the C maker, a row whose values have the lengths of
-- the last row it built is placed as that one, and a file its key named
-- in the last row checked is not read again) and the file names are
-- checked to differ (--fileid).
-- Streams the file: memory stays constant, but for the ids of --fileid.
-- `on_unit(number)` is called after each row made in Lua, and with 0
-- before each stretch of rows the C maker makes (for a stop between rows:
-- it returns false to stop, then M.check_units returns false). Returns the
-- number of units, or nil, a message and a line.
function M.check_units(job, on_unit)
  local seen = job.fileid and {}
  local stopped = false
  local fast = M.maker_pass(job, "check", { seen = seen,
    go = on_unit and function() return on_unit(0) ~= false end })
  local units, err, line = M.each_unit(job, function(number, id, fields, uline, plain)
    local text, berr = M.build_unit(job, fields, uline, plain)
    if not text then return nil, berr, uline end
    if seen then
      if seen[id] then
        return nil, ("%s:%d: --fileid %s: '%s' names the files of line %d too (each unit needs its own)")
          :format(job.values, uline, job.fileid, id, seen[id]), uline
      end
      seen[id] = uline
    end
    if on_unit and on_unit(number) == false then
      stopped = true
      return false
    end
    return true
  end, nil, fast)
  if not units then return nil, err, line end
  if stopped then return false end
  job.units = units
  return units
end

-- ---- writing ----------------------------------------------------------------------

local function already_exists(err)
  if find(err, ": already exists$") then
    err = err .. " (mfg_gen never overwrites a file: remove it or use another --outdir)"
  end
  return err
end

-- Rounded up to whole 4096-byte blocks, as a file takes space.
local function blocks(n)
  return (n + 4095) // 4096 * 4096
end

--- The message of a full disk at unit `number`: what remains needs about
-- this much more free space.
local function no_space(job, err, number, text)
  local per_unit = blocks(job.size) + blocks(#text)
  if job.keygen then per_unit = per_unit + 4096 + (job.hmac_per_unit and 4096 or 0) end
  local left = (job.units or number) - number + 1
  local need = left * per_unit
  return ("%s (the %d unit%s left need about %d bytes, %.1f MiB, of free space)")
    :format(err, left, left == 1 and "" or "s", need, need / 1048576)
end

--- Writes one unit's files, each created new (never over an existing name,
-- never through a link planted there), keys files 0600 from their first
-- byte; on failure removes those it wrote. `folders`: the job's folders
-- opened (core.folder: csv, bin, keys). Returns true, or nil, "values:line:
-- message" and the line.
function M.write_unit(job, folders, number, id, text, line)
  local csv_file, bin_file, keys_file, hmac_file = M.unit_files(job, id)
  local key, hmac
  if job.keygen then
    if job.hmac_per_unit then
      hmac = assert(crypto.random_bytes(crypto.HMAC_KEY_SIZE))
      key = assert(crypto.key_from_hmac(hmac))
    else
      key = job.key or assert(crypto.generate_key())
    end
    job.partition:set_key(key)
  end

  -- The files in order; the image last, so that a unit with an image has
  -- all its files. A failure removes the files of the unit written before.
  local ok, err = nvsgen.write_file(csv_file, text, MODE_PUBLIC, false, folders.csv)
  local csv_done, hmac_done, keys_done = ok, false, false
  if ok and hmac then
    ok, err = nvsgen.write_file(hmac_file, hmac, MODE_SECRET, false, folders.keys)
    hmac_done = ok
  end
  if ok and keys_file then
    ok, err = core.write_keys(keys_file, key, "atomic_new", folders.keys)
    keys_done = ok
  end
  if ok then ok, err = job.partition:write_image(bin_file, "atomic_new", nil, false, folders.bin) end
  if ok then return true end
  local dirs = job.dirs
  if keys_done then os.remove(dirs.keys .. keys_file) end
  if hmac_done then os.remove(dirs.keys .. hmac_file) end
  if csv_done then os.remove(dirs.csv .. csv_file) end
  err = already_exists(err)
  if find(err, "No space left on device", 1, true) or find(err, "Disk quota exceeded", 1, true) then
    err = no_space(job, err, number, text)
  end
  return nil, ("%s:%d: %s"):format(job.values, line, err), line
end

--- Removes the files of a unit that was made (after a failing one, by
-- another process).
function M.remove_unit(job, id)
  local csv_file, bin_file, keys_file, hmac_file = M.unit_files(job, id)
  local dirs = job.dirs
  os.remove(dirs.bin .. bin_file)
  os.remove(dirs.csv .. csv_file)
  if keys_file then
    os.remove(dirs.keys .. keys_file)
    os.remove(dirs.keys .. hmac_file)
  end
end

return M
