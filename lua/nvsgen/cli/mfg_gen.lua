--- nvsgen.cli.mfg_gen: the command line of ESP-IDF's mass manufacturing
-- tool, tools/mass_mfg/mfg_gen.py, writing the same files.
--
--   mfg_gen generate CONF.csv VALUES.csv PREFIX SIZE [--outdir DIR] [--fileid COLUMN]
--       [--version 1|2] [--keygen | --inputkey KEYS.bin]
--       [--key_protect_hmac (--kp_hmac_keygen [--kp_hmac_keyfile F] | --kp_hmac_inputkey H.bin)]
--   mfg_gen generate-key [--keyfile F] [--outdir DIR] [--key_protect_hmac ...]
--
-- For each data row of VALUES it writes OUTDIR/csv/PREFIX-ID.csv (the
-- config rows with that unit's values, as mfg_gen.py writes them) and
-- OUTDIR/bin/PREFIX-ID.bin (the image nvs_partition_gen makes of that CSV),
-- with --keygen also OUTDIR/keys/keys-PREFIX-ID.bin. The config and the
-- whole values file are checked before anything is written; the values are
-- then streamed, one partition reused for every unit, and each image is
-- compiled from the rows directly (the unit CSV is written, never re-read).
--
-- Differences from mfg_gen.py: no `_tmp`/`_created` files beside the
-- inputs; errors name the real file and line; a unit that fails leaves no
-- file of its own; keys come from the OS CSPRNG, are written 0600 and never
-- over an existing file; an --inputkey keys file is checked (size, CRC);
-- from 1,000 units the work is shared with worker processes (--jobs); the
-- units other processes made after a failing one are removed again.

local files = require("nvsgen.files")
local nvsgen = require("nvsgen")
local core = require("nvsgen.core")
local args = require("nvsgen.cli.args")
local common = require("nvsgen.cli.common")
local csv = require("nvsgen.csv")
local csvgen = require("nvsgen.csvgen")
local chunks = require("nvsgen.chunks")
local parse_integer = require("nvsgen.values").integer
local lfs = require("lfs")

local find, sub, byte, concat = string.find, string.sub, string.byte, table.concat
local tostring, tonumber, ipairs, error, pcall = tostring, tonumber, ipairs, error, pcall

local csv_field = csv.field

local M = {}

local PROG = "mfg_gen"

-- The encodings mfg_gen.py accepts in a config file (u64/i64 since
-- ESP-IDF PR #14159); nvs_partition_gen itself knows more.
local ENCODINGS = {
  string = true, binary = true, hex2bin = true, base64 = true,
  u8 = true, i8 = true, u16 = true, u32 = true, i32 = true, u64 = true, i64 = true,
}
local ENCODING_LIST = "string, binary, hex2bin, base64, u8, i8, u16, u32, i32, u64, i64"
local TYPES = { data = true, file = true, namespace = true }

local VERSION_BANNER = common.VERSION_BANNER

local HMAC_OPTIONS = {
  { "--key_protect_hmac", flag = true,
    help = "derive the encryption keys from an HMAC key (HMAC-based scheme)" },
  { "--kp_hmac_keygen", flag = true, help = "generate the HMAC key" },
  { "--kp_hmac_keyfile", metavar = "FILE", help = "name of the generated HMAC key file, in OUTDIR/keys/" },
  { "--kp_hmac_inputkey", metavar = "FILE", help = "file holding the 32-byte HMAC key" },
}

M.GENERATE = {
  prog = PROG .. " generate",
  summary = "Write a CSV file and an NVS partition image per row of VALUES.csv:\n"
    .. "OUTDIR/csv/PREFIX-ID.csv, OUTDIR/bin/PREFIX-ID.bin (and OUTDIR/keys/keys-PREFIX-ID.bin\n"
    .. "with --keygen). ID counts rows from 1, or is the --fileid column's value.\n"
    .. "Existing files are never overwritten: use a fresh OUTDIR. A unit that fails\n"
    .. "leaves no file of its own, but the files of the units before it stay.",
  positionals = {
    { name = "conf", help = "config CSV: key,type,encoding rows (REPEAT as a 4th field)" },
    { name = "values", help = "values CSV: a header naming the keys, then one row per unit" },
    { name = "prefix", help = "name prefix of every file written" },
    { name = "size", help = "partition size in bytes, a multiple of 4096 (decimal or 0x hex)" },
  },
  options = {
    { "--fileid", help = "values column whose value names each unit's files (default: 1, 2, 3...)" },
    { "--version", choices = { "1", "2" }, default = "2",
      help = "NVS format version: 1 (blobs on one page) or 2 (multi-page blobs)" },
    { "--prefix_num", nargs = 2, metavar = "START LENGTH",
      help = "number the files too: PREFIX-NUMBER-ID, NUMBER counting up from START, zero-padded to LENGTH digits" },
    { "--keygen", flag = true, help = "encrypt, with a new key per unit (OUTDIR/keys/keys-PREFIX-ID.bin)" },
    { "--inputkey", metavar = "FILE",
      help = "encrypt every unit with the key of this keys partition file (.bin)" },
    { "--outdir", metavar = "DIR", help = "folder for csv/, bin/ and keys/ (default: current folder)" },
    { "--key_protect_hmac", flag = true,
      help = "with --keygen: derive each unit's key from an HMAC key (ignored otherwise)" },
    { "--kp_hmac_keygen", flag = true,
      help = "a new HMAC key per unit, OUTDIR/keys/hmac-keys-PREFIX-ID.bin" },
    { "--kp_hmac_keyfile", metavar = "FILE",
      help = "with --kp_hmac_keygen: one new HMAC key for the whole batch, OUTDIR/keys/FILE" },
    HMAC_OPTIONS[4],
    { "--keyfile", help = "accepted for compatibility and ignored (--keygen names the keys files)" },
    { "--input", help = "accepted for compatibility and ignored" },
    { "--jobs", metavar = "N", help = "processes to use for 1,000 units or more (default: one per CPU, at most 4)" },
    { "--shard", metavar = "K/N", help = "(internal) be process K of N of a shared batch (a worker)" },
    { "--chunks", metavar = "FILE", help = "(internal) with --shard: take the units from FILE (nvsgen.chunks)" },
    { "--output", help = "accepted for compatibility and ignored" },
  },
}

M.GENERATE_KEY = {
  prog = PROG .. " generate-key",
  summary = "Write a new keys partition file to OUTDIR/keys/.",
  options = {
    { "--keyfile", help = "keys file name, in OUTDIR/keys/ (default keys-MM-DD_HH-MM.bin)" },
    { "--outdir", metavar = "DIR", help = "folder for keys/ (default: current folder)" },
    HMAC_OPTIONS[1], HMAC_OPTIONS[2], HMAC_OPTIONS[3], HMAC_OPTIONS[4],
  },
}

-- The command line that runs this command again, for workers (nil when
-- run in-process), and what a worker that failed exits with.
local rerun
local WORKER_FAILED = {}
local make_shared, shard_options

-- Errors inside a command are raised as this table's instances and turned
-- into one line on stderr by run(); anything else is a bug and propagates.
local Failure = {}

local function raise(message, status, line)
  error(setmetatable({ message = message, status = status, line = line }, Failure), 0)
end

--- Joins as Python's os.path.join(a, b) does.
local function pyjoin(a, b)
  if byte(b, 1) == 47 or a == "" then return b end
  if byte(a, -1) == 47 then return a .. b end
  return a .. "/" .. b
end

local function has_field(fields, value)
  for i = 1, #fields do
    if fields[i] == value then return true end
  end
  return false
end

--- Next record of `reader` (see open_csv). Returns fields, line and
-- whether the record was plain (see csv Reader:next), nil at the end;
-- raises on unreadable input.
local function next_row(reader)
  local fields, line, plain = reader:next()
  if not fields and line then raise(line) end
  return fields, line, plain
end

--- Passes over the next record as next_row would return it; returns its
-- number of fields and its line, nil at the end.
local function skip_row(reader)
  local count, line = reader:count()
  if not count and line then raise(line) end
  return count, line
end

--- A reader of `path` that drops the lines mfg_gen.py drops before reading
-- its inputs as CSV: those of white space only, even inside a quoted value.
-- keep_bom: a byte order mark stays, as mfg_gen.py keeps it.
local function open_csv(path, keep_bom)
  local reader, err = csv.open(path, { blank_lines = true, keep_bom = keep_bom })
  if not reader then raise(err) end
  return reader
end

--- Checks that every data row of the values file has as many fields as
-- the header, calling on_row(n) after the n-th. Returns the first data row,
-- whether it was plain (see next_row) and the number of rows; raises at
-- the first bad row.
local function check_values(values, header, on_row)
  local reader <close> = open_csv(values)
  next_row(reader)
  local first, line, first_plain = next_row(reader)
  local count, units = first and #first, 0
  while count do
    if count ~= #header then
      raise(("%s:%d: %d values for the %d columns of the header"):format(values, line, count, #header))
    end
    units = units + 1
    on_row(units)
    count, line = skip_row(reader)
  end
  return first, first_plain, units
end

local function check_extension(path, what)
  if select(2, common.split_ext(path)) ~= ".csv" then
    raise(("%s: the %s file must have the .csv extension"):format(path, what))
  end
end

local function read_file(path)
  local data, err = files.read(path)
  if not data then raise(err) end
  return data
end

-- ---- the config file ---------------------------------------------------------

--- Reads and checks the config file against the values header, in the
-- reference's order of checks. Returns the config as
-- { rows = { { fields, line, namespace }... }, repeat_keys = {...} }.
local function read_config(conf, values, header)
  -- A byte order mark stays part of the first key, as mfg_gen.py reads it
  -- (the values file's is dropped: mfg_gen.py would only fail on it).
  local reader = open_csv(conf, true)
  local rows, keys, repeat_keys, repeat_set = {}, {}, {}, {}
  while true do
    local fields, line = next_row(reader)
    if not fields then break end
    local row = { fields = fields, line = line, namespace = has_field(fields, "namespace") }
    rows[#rows + 1] = row
    if not row.namespace then keys[fields[1]] = true end
    if has_field(fields, "REPEAT") then
      repeat_keys[#repeat_keys + 1] = fields[1]
      repeat_set[fields[1]] = true
    end
  end
  reader:close()
  if #rows == 0 then raise(conf .. ": the config file is empty") end

  local function where(row)
    return ("%s:%d: key '%s'"):format(conf, row.line, row.fields[1])
  end
  for _, row in ipairs(rows) do
    local n = #row.fields
    if n ~= 3 and not repeat_set[row.fields[1]] then
      raise(("%s: expected 3 fields key,type,encoding, got %d"):format(where(row), n))
    end
  end
  for _, row in ipairs(rows) do
    local f = row.fields
    if not TYPES[f[2]] then
      raise(("%s: unknown type '%s' (expected data, file or namespace)"):format(where(row), f[2] or ""))
    end
    if not row.namespace and not ENCODINGS[f[3]] then
      raise(("%s: encoding '%s' is not one mfg_gen accepts (%s)")
        :format(where(row), f[3] or "", ENCODING_LIST))
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
        raise(("%s: not in the header of %s%s"):format(where(row), values,
          #unknown > 0 and " (its columns not in the config: " .. concat(unknown, ", ") .. ")" or ""))
      else
        raise(("%s: no column left for it in the header of %s after those of the keys before it"
          .. " (the config's keys need their own columns, in the same order)"):format(where(row), values))
      end
    end
  end
  return { rows = rows, repeat_keys = repeat_keys }
end

-- ---- units -------------------------------------------------------------------

local COLUMN_NAMES = { "key", "type", "encoding", "value" }

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
  return require("nvsgen.crypto").pbkdf2_sha1(...)
end

--- Builds one unit from its values row: the unit CSV text, with the image
-- compiled into `partition`. Raises "file:line: key 'X': message".
local function build_unit(job, fields, line, plain)
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
        raise(("%s:%d: key '%s': no value left for it in the row"):format(job.values, line, key), nil, line)
      end
      local value = fields[p]
      p = p + 1
      if not plain and find(value, "\n#", 1, true) then
        -- nvs_partition_gen would drop that line of the unit CSV as a
        -- comment, and read the rest of the file into the value.
        raise(("%s:%d: key '%s': a line of the value starts with '#', which nvs_partition_gen"
          .. " drops as a comment"):format(job.values, line, key), nil, line)
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
        raise(("%s:%d: %s"):format(job.values, line, err), nil, line)
      end
    end
  end
  return concat(out, "", 1, #items + 1)
end

local function already_exists(err)
  if find(err, ": already exists$") then
    err = err .. " (mfg_gen never overwrites a file: remove it or use another --outdir)"
  end
  return err
end

-- With a folder (core.folder), `path` is a name in it.
local function write_new(path, data, mode, folder)
  local ok, err = nvsgen.write_file(path, data, mode or nvsgen.FILE_MODE, false, folder)
  if ok then return true end
  return nil, already_exists(err)
end

-- The image goes from the encoder's buffer to the file (encrypted on the
-- way if a key is set), atomically and never over an existing file.
local function write_image(partition, name, folder)
  local ok, err = partition:write_image(name, "atomic_new", nil, false, folder)
  if ok then return true end
  return nil, already_exists(err)
end

-- A name in a folder must not start with "/" (it would be taken from the
-- root): the slashes a PREFIX starts with go with the folders' paths.
local function prefix_slashes(job)
  return job.prefix:match("^/*")
end

--- The folders of a unit's files, as the prefixes of their paths: each
-- ends with "/" (core.folder then names a file in it as this prefix and
-- the file's name, the path mfg_gen.py would show).
local function unit_dirs(job)
  local slashes = prefix_slashes(job)
  return {
    csv = job.csv_dir .. slashes,
    bin = pyjoin(job.outdir, "bin/") .. slashes,
    keys = job.keys_dir and pyjoin(job.keys_dir, ""),
  }
end

--- The paths of a unit's files are these prefixes, the unit's id and the
-- suffixes, as mfg_gen.py joins them (os.path.join looks only at the start
-- of the part joined, which never starts with the id): a folder of
-- unit_dirs and a name in it (job.names).
local function unit_names(job)
  local name = job.prefix .. "-"
  local relative = name:sub(#prefix_slashes(job) + 1)
  return { csv = relative, bin = relative, keys = "keys-" .. name, hmac = "hmac-keys-" .. name }
end

local function unit_paths(job)
  local dirs, names = job.dirs, job.names
  return {
    csv = dirs.csv .. names.csv,
    bin = dirs.bin .. names.bin,
    keys = dirs.keys and dirs.keys .. names.keys,
    hmac = dirs.keys and dirs.keys .. names.hmac,
  }
end

--- What the partition generator adds to the name of a unit's keys file
-- (path: the name so far): nothing when the name already has an extension
-- holding ".bin" (an id "u1.bin" names "keys-P-u1.bin"), judged by
-- common.has_bin_ext as every .bin name is; else ".bin" (mfg_gen.py stops
-- at another extension, here ".bin" is added).
local function keys_suffix(path)
  return common.has_bin_ext(path) and "" or ".bin"
end

--- keys_suffix for unit `id`'s keys file. An id without '.' or '/' adds
-- nothing to the extension that counts ("-" ends any ".bin" before it),
-- so its suffix is the job's, found once.
local function unit_keys_suffix(job, id)
  if not find(id, "[./]") then return job.keys_suffix end
  return keys_suffix(job.paths.keys .. id)
end

--- The names of unit `id`'s files in their folders (job.dirs): its CSV,
-- its image and, when the job writes keys, its keys and HMAC key files.
local function unit_files(job, id)
  local names = job.names
  local csv_file, bin_file = names.csv .. id .. ".csv", names.bin .. id .. ".bin"
  if not job.keys_dir then return csv_file, bin_file end
  local suffix = unit_keys_suffix(job, id)
  return csv_file, bin_file, names.keys .. id .. suffix, names.hmac .. id .. suffix
end

--- The text mfg_gen.py prints for a unit whose files are written, in the
-- pieces that go around the unit's id (two or three times): only the id
-- changes from unit to unit, and joining the pieces costs half as much as
-- formatting a pattern.
local function report_pieces(job)
  local paths = job.paths
  local pieces = { "\nCreated CSV file: ===> " .. paths.csv }
  local after = ".csv\n"
  if job.size < common.READ_WRITE_MIN_SIZE then
    -- The partition generator mfg_gen.py calls warns of a read-only size
    -- for each unit: once per size check, and encrypting checks twice.
    local warning = "\n" .. common.READ_ONLY_WARNING .. "\n"
    after = after .. warning .. (job.encrypted and warning or "")
  end
  if job.keygen then
    pieces[2] = after .. "\nCreated encryption keys: ===>  " .. paths.keys
    after = "\n" -- after the keys file's suffix (keys_suffix)
  end
  pieces[#pieces + 1] = after .. "\n" .. job.banner .. "\n\nCreated NVS binary: ===> " .. paths.bin
  pieces[#pieces + 1] = ".bin\n"
  return pieces
end

local function unit_report(job, id)
  local r = job.report
  if r[4] then return r[1] .. id .. r[2] .. id .. unit_keys_suffix(job, id) .. r[3] .. id .. r[4] end
  return r[1] .. id .. r[2] .. id .. r[3]
end

--- Writes one unit's files (removing those written if one fails) and says
-- so (unless job.quiet: a worker). Raises "values:line: message" on failure.
local function emit_unit(job, id, text, line)
  local csv_file, bin_file, keys_file, hmac_file = unit_files(job, id)
  local folders = job.folders
  local key, hmac
  local crypto = job.crypto
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
  local ok, err = write_new(csv_file, text, nil, folders.csv)
  local csv_done, hmac_done, keys_done = ok, false, false
  if ok and hmac then
    ok, err = write_new(hmac_file, hmac, nvsgen.SECRET_MODE, folders.keys)
    hmac_done = ok
  end
  if ok and keys_file then
    ok, err = core.write_keys(keys_file, key, "atomic_new", folders.keys)
    if ok then keys_done = true else err = already_exists(err) end
  end
  if ok then ok, err = write_image(job.partition, bin_file, folders.bin) end
  if not ok then
    local dirs = job.dirs
    if keys_done then os.remove(dirs.keys .. keys_file) end
    if hmac_done then os.remove(dirs.keys .. hmac_file) end
    if csv_done then os.remove(dirs.csv .. csv_file) end
    raise(("%s:%d: %s"):format(job.values, line, err), nil, line)
  end
  if not job.quiet then common.stdout:write(unit_report(job, id)) end
end

-- ---- keys --------------------------------------------------------------------

local function make_dir(path)
  local ok, err = common.make_dirs(path)
  if not ok then raise(err) end
end

local function open_folder(path)
  local folder, err = core.folder(path)
  if not folder then raise(err) end
  return folder
end

--- The 64-byte key an --key_protect_hmac command line gives, and the HMAC
-- key when one is generated. Raises when neither source is named.
local function hmac_key(crypto, opts)
  if opts.kp_hmac_keygen then
    local hmac = assert(crypto.random_bytes(crypto.HMAC_KEY_SIZE))
    return assert(crypto.key_from_hmac(hmac)), hmac
  elseif opts.kp_hmac_inputkey then
    local key, err = crypto.key_from_hmac(read_file(opts.kp_hmac_inputkey))
    if not key then raise(opts.kp_hmac_inputkey .. ": " .. err) end
    return key
  end
  raise("--key_protect_hmac needs --kp_hmac_keygen or --kp_hmac_inputkey", common.EXIT_USAGE)
end

local function bin_name(name)
  local checked, err = common.bin_name(name)
  if not checked then raise(err) end
  return checked
end

--- Sets up encryption for `generate`: job.key (one key for every unit),
-- job.keygen (a keys file per unit), job.hmac_per_unit.
local function setup_encryption(job, opts)
  if not opts.keygen and not opts.inputkey then return false end
  if opts.keygen and opts.inputkey then
    raise("--keygen and --inputkey are mutually exclusive", common.EXIT_USAGE)
  end
  local crypto = require("nvsgen.crypto")
  job.crypto = crypto
  if opts.inputkey then
    if not common.has_bin_ext(opts.inputkey) then raise(common.BIN_EXT_ONLY:format(opts.inputkey)) end
    local key, err = crypto.read_keys(opts.inputkey)
    if not key then raise(err) end
    job.partition:set_key(key)
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
      local key, hmac = hmac_key(crypto, opts)
      job.key = key
      if hmac then job.batch_hmac = { hmac, pyjoin(job.keys_dir, bin_name(opts.kp_hmac_keyfile)) } end
    end
  end
  return true
end

-- ---- the units, in one process or shared out -----------------------------------

--- The --prefix_num option as { start, width }, nil without it. Checked as
-- argparse's int() would, and a negative length (a crash in mfg_gen.py)
-- is refused.
local function prefix_numbering(words)
  if not words then return nil end
  local n = {}
  for i = 1, 2 do
    local text = parse_integer(words[i])
    n[i] = text and math.tointeger(tonumber(text))
    if not n[i] then
      raise(("argument --prefix_num: invalid int value: '%s'"):format(words[i]), common.EXIT_USAGE)
    end
  end
  if n[2] < 0 then raise("argument --prefix_num: the length must not be negative", common.EXIT_USAGE) end
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

--- Calls fn(number, id, fields, line, plain) for each data row of the
-- values file in order, the REPEAT values filled in (plain: no value needs
-- quoting in CSV); stops when fn returns false. With `wanted`, only for
-- the rows whose number it accepts: the others are passed over cheaply.
local function each_unit(job, fn, wanted)
  local reader = open_csv(job.values)
  next_row(reader)
  local header, fileid, fill, first = job.header, job.fileid, job.fill, job.first
  local filled_plain = #fill == 0 or job.first_plain
  local number = 0
  while true do
    if wanted and not fileid and not wanted(number + 1) then
      if not skip_row(reader) then break end
      number = number + 1
      goto continue
    end
    local fields, line, plain = next_row(reader)
    if not fields then break end
    number = number + 1
    if number > 1 then
      for _, col in ipairs(fill) do fields[col] = first[col] end
      plain = plain and filled_plain
    end
    local id
    if fileid then
      for i = 1, #header do
        if header[i] == fileid or fields[i] == fileid then id = fields[i]; break end
      end
    else
      id = tostring(number)
    end
    if fn(number, file_id(job, number, id), fields, line, plain) == false then break end
    ::continue::
  end
  reader:close()
end

--- In a worker: hands `failure` to the main process (on standard output),
-- which reports it once, and stops.
local function report_to_main(failure)
  common.stdout:write(("failed %d %d\n%s"):format(failure.line or 0, failure.status or common.EXIT_FAIL,
    failure.message))
  raise(WORKER_FAILED)
end

--- Starts the worker processes 2..jobs of a shared batch: copies of this
-- command with --shard K/N and the chunk file they take their units from
-- (common.spawn, as the recipe driver's workers).
local function start_workers(jobs, chunk_path)
  local workers = {}
  for w = 2, jobs do
    local f, err = common.spawn(rerun, ("--shard %d/%d --chunks %s"):format(w, jobs, common.quote(chunk_path)))
    if not f then
      for _, started in ipairs(workers) do started:close() end
      raise("cannot start a worker: " .. tostring(err))
    end
    workers[w - 1] = f
  end
  return workers
end

--- Lets go of a shared batch that stops early: its workers (closing a
-- worker's pipe waits for it) and, in the main process, the chunk file.
local function abandon_shared(workers, chunk_path, shard)
  for _, f in ipairs(workers) do f:close() end
  if chunk_path and not shard then os.remove(chunk_path) end
end

--- Removes the files of a unit that was made (after a failing one, by
-- another process).
local function remove_unit(job, id)
  local csv_file, bin_file, keys_file, hmac_file = unit_files(job, id)
  local dirs = job.dirs
  os.remove(dirs.bin .. bin_file)
  os.remove(dirs.csv .. csv_file)
  if keys_file then
    os.remove(dirs.keys .. keys_file)
    os.remove(dirs.keys .. hmac_file)
  end
end

--- Collects what the workers say: the first failure (the one on the
-- lowest values line, `failure` being this process's own) and, per
-- process, the line where it stopped (math.huge: it made its whole share;
-- nil: unknown, it died without saying).
local function gather_workers(workers, failure, n)
  local reached = { math.huge }
  if failure then reached[1] = failure.line end
  for w, f in ipairs(workers) do
    local text = f:read("a") or ""
    local closed = f:close()
    local line, status, message = text:match("^failed (%d+) (%d+)\n(.*)$")
    line = tonumber(line)
    if line then
      if line > 0 then reached[w + 1] = line end
      if not failure or (failure.line or math.huge) > line then
        failure = { message = message, status = tonumber(status), line = line > 0 and line or nil }
      end
    elseif closed then
      reached[w + 1] = math.huge
    elseif not failure then
      failure = { message = ("worker %d of %d failed (its message is above)"):format(w + 1, n) }
    end
  end
  return failure, reached
end

--- A batch shared by `jobs` processes: each takes chunks of units from
-- the chunk file at `chunk_path` as it goes (nvsgen.chunks); the others
-- are the `workers` (start_workers), which make their units silently and
-- report a failure on their standard output. This process then prints the
-- reports of the units in order, up to the first unit that failed (in any
-- process), and that unit's message, as one process would. Units after
-- the failing one that other processes made meanwhile are removed, so the
-- batch leaves what one process leaves: a process stops at its first
-- failure, so the units of its chunks before that line are the ones it
-- made, each from files it created. The main process removes the chunk
-- file once the workers are done.
function make_shared(job, shard, jobs, workers, chunk_path)
  local k, n = 1, jobs
  if shard then k, n = shard[1], shard[2] end
  job.quiet = true
  local file, err = chunks.open(chunk_path)
  if not file then
    abandon_shared(workers, chunk_path, shard)
    raise(err)
  end
  local take = chunks.taker(file, chunk_path, k)
  local function mine(number)
    local taken, terr = take(number)
    if taken == nil then raise(terr) end
    return taken
  end
  local ok, failure = pcall(each_unit, job, function(number, id, fields, line, plain)
    if mine(number) then emit_unit(job, id, build_unit(job, fields, line, plain), line) end
  end, mine)
  file:close()
  if ok then
    failure = nil
  elseif getmetatable(failure) ~= Failure then
    abandon_shared(workers, chunk_path, shard)
    error(failure, 0)
  end
  if shard then
    if failure then report_to_main(failure) end
    return
  end
  local reached
  failure, reached = gather_workers(workers, failure, n)
  -- Who made which unit; where that cannot be read, no unit is removed.
  local process_of = chunks.owners(chunk_path) or function() return nil end
  os.remove(chunk_path)
  local stop = failure and failure.line
  local out, count = {}, 0
  local function report(id)
    count = count + 1
    out[count] = unit_report(job, id)
    if count == 256 then
      common.stdout:write(concat(out, "", 1, count))
      count = 0
    end
  end
  if stop then
    each_unit(job, function(number, id, _, line)
      if line < stop then
        report(id)
      elseif line > stop then
        local made = reached[process_of(number)]
        if made and line < made then remove_unit(job, id) end
      end
    end)
  elseif job.fileid then
    each_unit(job, function(_, id) report(id) end)
  else
    for number = 1, job.units do report(file_id(job, number, tostring(number))) end
  end
  common.stdout:write(concat(out, "", 1, count))
  if failure then raise(failure.message, failure.status) end
end

--- The --shard and --jobs options: shard ({ K, N } or nil) and jobs.
function shard_options(opts)
  local shard, jobs
  if opts.shard then
    local k, n = opts.shard:match("^(%d+)/(%d+)$")
    k, n = tonumber(k), tonumber(n)
    if not k or k < 1 or k > n then raise("--shard: expected K/N", common.EXIT_USAGE) end
    if not opts.chunks then raise("--shard needs --chunks FILE", common.EXIT_USAGE) end
    shard = { k, n }
  end
  if opts.jobs then
    jobs = math.tointeger(tonumber(opts.jobs))
    if not jobs or jobs < 1 or jobs > 64 then
      raise(("--jobs %s: expected a number from 1 to 64"):format(opts.jobs), common.EXIT_USAGE)
    end
  else
    jobs = math.min(common.cpu_count(), 4)
  end
  return shard, jobs
end

-- ---- commands ----------------------------------------------------------------

local function parse(spec, argv)
  local opts, err = args.parse(spec, argv)
  if not opts then
    common.stderr:write(args.usage(spec), "\n")
    raise(err, common.EXIT_USAGE)
  end
  if opts.help then
    common.stdout:write(args.help(spec))
    return nil
  end
  opts.outdir = opts.outdir or lfs.currentdir()
  return opts
end

local function generate(argv)
  local opts = parse(M.GENERATE, argv)
  if not opts then return common.EXIT_OK end
  local conf, values = opts.conf, opts.values
  check_extension(conf, "config")
  check_extension(values, "values")
  local numbering = prefix_numbering(opts.prefix_num)
  local size, err = common.partition_size(opts.size)
  if not size then raise(err) end

  -- Values header, then the config checked against it.
  local reader = open_csv(values)
  local header = next_row(reader)
  reader:close()
  if not header then raise(values .. ": the values file is empty") end
  local fileid = opts.fileid
  if fileid == "" then fileid = nil end
  if fileid and not has_field(header, fileid) then
    raise(("--fileid %s: no such column in the header of %s"):format(fileid, values), common.EXIT_USAGE)
  end
  local config = read_config(conf, values, header)
  local shard, jobs = shard_options(opts)
  -- Workers: not for a small batch (a process costs more to start than it
  -- saves), nor when the batch's HMAC key is made here (it would differ).
  if shard or not rerun or (opts.keygen and opts.key_protect_hmac and opts.kp_hmac_keygen
      and opts.kp_hmac_keyfile) then
    jobs = 1
  end

  -- The values are checked and the job is set up before any unit is made.
  -- The workers start once the batch is known to be big enough, and check
  -- and set up the same way, each for itself: a bad row or option stops
  -- every process before it writes. They are waited for, so that none is
  -- left running after this process fails.
  local workers, job = {}, nil
  local chunk_path = shard and opts.chunks
  local ready, failure = pcall(function()
    local first, first_plain, units = check_values(values, header, function(units)
      if units == 1000 and jobs > 1 then
        -- A file of the system's temporary folder (mode 0600), not of
        -- the output or input folders; removed once the batch is done.
        chunk_path = os.tmpname()
        workers = start_workers(jobs, chunk_path)
      end
    end)
    if units < 1000 then jobs = 1 end
    if #config.repeat_keys > 0 and not first then
      raise(("%s: no data row to take the REPEAT values (key '%s') from")
        :format(values, config.repeat_keys[1]))
    end
    job = {
      quiet = shard ~= nil, size = size, values = values, header = header, prefix = opts.prefix, outdir = opts.outdir,
      banner = VERSION_BANNER[opts.version],
      partition = nvsgen.partition{ size = size, version = tonumber(opts.version) },
      fill = repeat_columns(header, config.repeat_keys), first = first, first_plain = first_plain,
      fileid = fileid, units = units, numbering = numbering,
      csv_lines = { "key,type,encoding,value\r\n" }, -- see build_unit
    }
    job.items = unit_template(config, job.partition)
    job.encrypted = setup_encryption(job, opts)
    if job.encrypted and not shard then
      common.stdout:write("\nGenerating encrypted NVS binary images...\n")
    end
    job.csv_dir = pyjoin(pyjoin(opts.outdir, "csv"), "")
    job.dirs, job.names = unit_dirs(job), unit_names(job)
    job.paths = unit_paths(job)
    job.keys_suffix = job.keys_dir and keys_suffix(job.paths.keys .. "1")
    job.report = report_pieces(job)
    make_dir(pyjoin(opts.outdir, "csv"))
    make_dir(pyjoin(opts.outdir, "bin"))
    -- The folders are opened once: the kernel then does not walk their
    -- paths for every file (nvsgen.core folder).
    job.folders = { csv = open_folder(job.dirs.csv), bin = open_folder(job.dirs.bin) }
    if job.keygen and units > 0 then -- as mfg_gen.py: keys/ with its first key
      make_dir(job.keys_dir)
      job.folders.keys = open_folder(job.dirs.keys)
    end
    if job.batch_hmac then
      local ok
      ok, err = write_new(job.batch_hmac[2], job.batch_hmac[1], nvsgen.SECRET_MODE)
      if not ok then raise(err) end
    end
  end)
  if not ready then
    abandon_shared(workers, chunk_path, shard)
    if shard and getmetatable(failure) == Failure then report_to_main(failure) end
    error(failure, 0)
  end
  if shard or jobs > 1 then
    make_shared(job, shard, jobs, workers, chunk_path)
  else
    each_unit(job, function(_, id, fields, line, plain)
      emit_unit(job, id, build_unit(job, fields, line, plain), line)
    end)
  end
  for _, folder in pairs(job.folders) do folder:close() end
  common.stdout:write("\nFiles generated in ", opts.outdir, " ...\n")
  return common.EXIT_OK
end

local function generate_key(argv)
  local opts = parse(M.GENERATE_KEY, argv)
  if not opts then return common.EXIT_OK end
  local crypto = require("nvsgen.crypto")
  local keys_dir = pyjoin(opts.outdir, "keys")
  local typed = opts.keyfile or common.default_keys_name(keys_dir)
  local keys_path = pyjoin(keys_dir, bin_name(typed))
  local key, hmac, hmac_path
  if opts.key_protect_hmac then
    key, hmac = hmac_key(crypto, opts)
    if hmac then hmac_path = pyjoin(keys_dir, bin_name(opts.kp_hmac_keyfile or "hmac-" .. typed)) end
  else
    key = assert(crypto.generate_key())
  end
  for _, path in ipairs({ hmac_path or keys_path, keys_path }) do
    make_dir(path:match("^(.*)/[^/]*$") or ".")
  end
  if hmac then
    local ok, err = write_new(hmac_path, hmac, nvsgen.SECRET_MODE)
    if not ok then raise(err) end
  end
  local ok, err = crypto.write_keys(keys_path, key)
  if not ok then
    if hmac_path then os.remove(hmac_path) end
    raise(err)
  end
  common.stdout:write("\nCreated encryption keys: ===>  ", keys_path, "\n")
  return common.EXIT_OK
end

local COMMANDS = { generate = generate, ["generate-key"] = generate_key }

local USAGE = ("usage: %s {generate,generate-key} ..."):format(PROG)

--- Runs a command; a Failure becomes "mfg_gen: message" and its status.
local function run(command, argv)
  local ok, status = pcall(command, argv)
  if ok then return status end
  if getmetatable(status) ~= Failure then error(status, 0) end
  if status.message == WORKER_FAILED then return common.EXIT_FAIL end
  return common.fail(PROG, status.message, status.status)
end

--- Entry point: runs the subcommand named by argv[1]; returns the exit status.
function M.main(argv)
  rerun = common.rerun_command(argv)
  return common.dispatch(PROG, USAGE, "ESP-IDF mass manufacturing: an NVS image per unit from a config\n"
    .. "and a values CSV file (nvsgen, compatible with mfg_gen.py).\n", COMMANDS, argv, run)
end

return M
