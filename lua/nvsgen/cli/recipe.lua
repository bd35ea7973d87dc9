--- nvsgen.cli.recipe: the command line every recipe script shares.
--
--   lua5.4 gen.lua --serial-range 1000-1999 --outdir out [--size 0x6000]
--       [--version 1|2] [--name unit-%d.bin] [--values values.csv]
--       [--encrypt (--keygen | --inputkey KEYS.bin)] [--csv] [--dry-run]
--       [--force] [--partition-table partitions.csv [--partition nvs]]
--       [--merged] [--hex]
--
-- Prints a one-line summary on stdout, a progress bar on stderr when it is
-- a terminal, and "prog: message" on stderr on failure (exit status 1; 2
-- for a bad command line).

local args = require("nvsgen.cli.args")
local common = require("nvsgen.cli.common")
local batch = require("nvsgen.batch")
local workers = require("nvsgen.workers")
-- Loaded only by the batches that use them, so that a plain batch (and
-- each of its workers) starts sooner.
local function partition_table() return require("nvsgen.partition_table") end
local function unit_layout() return require("nvsgen.unit_layout") end

local M = {}

M.OPTIONS = {
  { "--serial-range", metavar = "RANGE",
    help = "serials to make: an inclusive range A-B, or a list A,B,C (required)" },
  { "--outdir", default = ".", help = "folder for the images, keys and manifest.csv" },
  { "--size", help = "partition size, a multiple of 4096" },
  { "--version", choices = { "1", "2" }, help = "NVS format version" },
  { "--name", metavar = "PATTERN", help = "image file name, %d is the serial" },
  { "--values", metavar = "VALUES.csv", help = "per-unit values table, a CSV with a serial column" },
  { "--encrypt", flag = true, help = "encrypt the images (with --keygen or --inputkey)" },
  { "--keygen", flag = true, help = "a new key per unit, written beside its image (0600)" },
  { "--inputkey", metavar = "KEYS.bin", help = "one keys partition file for every unit" },
  { "--csv", flag = true, help = "also write each unit as an nvs_partition_gen CSV" },
  { "--dry-run", flag = true, help = "build every unit but write nothing" },
  { "--force", flag = true, help = "overwrite existing images (make the units again)" },
  { "--partition-table", metavar = "PARTITIONS.csv", help = "ESP-IDF partition table for size and offset" },
  { "--partition", metavar = "NAME", help = "partition in --partition-table (default: nvs)" },
  { "--partition-table-offset", metavar = "N",
    help = "where the table is in flash (default: 0x8000; the first partition follows it)" },
  { "--merged", flag = true, help = "also write each unit's partitions as one binary (unit-N.merged.bin)" },
  { "--hex", flag = true, help = "also write each unit's partitions as Intel HEX (unit-N.hex)" },
  { "--jobs", metavar = "N", help = "processes to use (default: one per CPU, at most 4)" },
  { "--shard", metavar = "K/N", help = "(internal) make only share K of N of the batch (a worker)" },
}

-- What the recipe sets, for the help of the options it gives defaults to.
local RECIPE_DEFAULTS = {
  ["--size"] = function(r) return r.size and ("0x%X"):format(r.size) end,
  ["--version"] = function(r) return tostring(r.version or 2) end,
  ["--name"] = function(r) return r.name or "unit-%d.bin" end,
  ["--values"] = function(r) return r.values end,
}

--- The command-line spec for recipe `r` run as `prog`.
function M.spec(r, prog)
  local options = {}
  for i, opt in ipairs(M.OPTIONS) do
    local default = RECIPE_DEFAULTS[opt[1]] and RECIPE_DEFAULTS[opt[1]](r)
    if default then
      local copy = {}
      for k, v in pairs(opt) do copy[k] = v end
      copy.help = opt.help:gsub(" %(default: .*%)$", "") .. (" (recipe: %s)"):format(default)
      opt = copy
    end
    options[i] = opt
  end
  return {
    prog = prog,
    summary = (r.description and r.description .. "\n\n" or "")
      .. "Writes one NVS partition image per serial, and manifest.csv, in --outdir.",
    options = options,
  }
end

--- Turns parsed options into batch.run options. Returns them, the
-- partition (from the table) or nil; or nil, a message and, for what is
-- wrong in a file (the partition table) rather than on the command line,
-- the exit status EXIT_FAIL.
function M.batch_options(r, opts)
  if not opts.serial_range then return nil, "the following arguments are required: --serial-range" end
  local serials, err = batch.serials(opts.serial_range)
  if not serials then return nil, err end
  local b = { recipe = r, serials = serials, outdir = opts.outdir, name = opts.name,
    values = opts.values, csv = opts.csv, dry_run = opts.dry_run, force = opts.force }
  if opts.size then
    b.size, err = common.partition_size(opts.size)
    if not b.size then return nil, err end
    err = batch.check_size(b.size)
    if err then return nil, err end
  end
  if opts.version then b.version = tonumber(opts.version) end
  if opts.jobs then
    b.jobs, err = workers.parse_jobs(opts.jobs)
    if not b.jobs then return nil, err end
  end
  if opts.shard then
    b.shard, err = workers.parse_shard(opts.shard, true)
    if not b.shard then return nil, err end
  end
  if opts.encrypt then
    if opts.keygen == (opts.inputkey ~= nil) then
      return nil, "--encrypt needs one of --keygen or --inputkey"
    end
    b.keygen, b.inputkey = opts.keygen or nil, opts.inputkey
  elseif opts.keygen or opts.inputkey then
    return nil, (opts.keygen and "--keygen" or "--inputkey") .. " needs --encrypt"
  end
  -- The table: --partition-table, else the recipe's own (beside it).
  local table_path = opts.partition_table
  if not table_path and r.partition_table then
    local p = r.partition_table
    table_path = (p:sub(1, 1) == "/" or r.dir == ".") and p or r.dir .. "/" .. p
  end
  -- Where the table itself is: the partitions without an offset follow
  -- it, as gen_esp32part.py --offset (CONFIG_PARTITION_TABLE_OFFSET).
  local table_offset, read_opts = r.partition_table_offset, nil
  if opts.partition_table_offset then
    table_offset = partition_table().parse_number(opts.partition_table_offset)
    if not table_offset then
      return nil, ("--partition-table-offset: '%s' is not a number"):format(opts.partition_table_offset)
    end
  end
  if table_offset then
    if math.type(table_offset) ~= "integer" or table_offset < 0 or table_offset % 0x1000 ~= 0 then
      return nil, ("partition table offset %s is not a multiple of 4096"):format(math.type(table_offset) == "integer"
        and ("0x%X"):format(table_offset) or tostring(table_offset))
    end
    if not table_path then return nil, "--partition-table-offset needs a partition table" end
    read_opts = { table_offset = table_offset }
  end
  if r.partitions or opts.merged or opts.hex then
    return M.layout_options(r, opts, b, table_path, read_opts)
  end
  local part
  if table_path then
    opts.partition_table = table_path
    local list
    list, err = partition_table().read(opts.partition_table, read_opts)
    if not list then return nil, err, common.EXIT_FAIL end
    part, err = partition_table().find(list, opts.partition or "nvs", opts.partition_table)
    if not part then return nil, err, common.EXIT_FAIL end
    -- Only a data,nvs partition is read by the firmware as NVS; an image
    -- sized for an app or an nvs_keys partition would be flashed over it.
    if part.type_id ~= partition_table().DATA or part.subtype_id ~= partition_table().NVS then
      return nil, ("%s:%d: partition '%s' is %s,%s; NVS images need a data,nvs partition")
        :format(opts.partition_table, part.line, part.name, part.type, part.subtype), common.EXIT_FAIL
    end
    if b.size and b.size ~= part.size then
      return nil, ("--size 0x%X differs from partition '%s' (0x%X) in %s")
        :format(b.size, part.name, part.size, opts.partition_table)
    end
    b.size = part.size
  elseif opts.partition then
    return nil, "--partition needs --partition-table"
  end
  return b, part
end

--- batch.run options for a unit of several partitions, or of one written
-- whole (--merged, --hex): `b` with its nvsgen.unit_layout, or nil and a
-- message. `read_opts`: for nvsgen.partition_table.read (where the table is).
function M.layout_options(r, opts, b, table_path, read_opts)
  if opts.csv then return nil, "--csv writes one partition's CSV; it cannot describe a unit of several files" end
  if r.partitions and opts.size then return nil, "--size: the recipe's partitions have their own sizes" end
  if r.partitions and opts.partition then return nil, "--partition: the recipe names its partitions" end
  local list, err
  if table_path then
    list, err = partition_table().read(table_path, read_opts)
    if not list then return nil, err, common.EXIT_FAIL end
  end
  local layout
  layout, err = unit_layout().new{
    -- One partition: a table's size wins over the recipe's, as without
    -- --merged (only --size must agree with it).
    partitions = r.partitions, label = opts.partition, size = b.size or not list and r.size or nil,
    version = b.version or r.version, encrypt = r.encrypt == "keygen" or opts.encrypt or nil, keys = r.keys,
    table = list, table_name = table_path, inputkey = b.inputkey, name = b.name or r.name,
    merged = opts.merged, hex = opts.hex,
  }
  if not layout then return nil, err, common.EXIT_FAIL end
  b.layout = layout
  return b
end

--- The one-line summary of a finished batch.
function M.summary(prog, s, part)
  local rate = s.seconds > 0 and s.written > 0 and ("%.0f units/s"):format(s.written / s.seconds) or "-"
  local line
  if s.dry_run then
    line = ("%s: dry run: %d units built in %.2f s (%s), nothing written; first image would be %s")
      :format(prog, s.written, s.seconds, rate, s.first)
  else
    line = ("%s: %d units: %d written, %d already done%s in %.2f s (%s); %s%s, manifest %s")
      :format(prog, s.total, s.written, s.skipped + s.finished,
        s.finished > 0 and (" (%d completed)"):format(s.finished) or "",
        s.seconds, rate, s.encrypted and "encrypted images in " or "images in ", s.outdir, s.manifest)
  end
  if s.flash_args then
    line = line .. ("\nflash a unit: esptool.py write_flash %s"):format(
      require("nvsgen.flash_files").shell_word("@" .. s.flash_args))
  elseif part then
    line = line .. ("\nflash a unit: esptool.py write_flash 0x%X %s"):format(part.offset, s.first)
  end
  return line
end

local function stderr_is_terminal()
  if common.stderr ~= io.stderr then return false end
  -- lua-term's C part alone: its Lua part (colors, cursor) is not needed here.
  local has_term, term = pcall(require, "term.core")
  return has_term and term.isatty(io.stderr)
end

--- A progress bar on `stream` (a terminal): progress(done, total [, last]).
function M.progress_bar(stream)
  local step
  return function(done, total, last)
    step = step or (total > 200 and total // 200 or 1)
    if done % step ~= 0 and not last then return end
    local width = 40
    local filled = total > 0 and done * width // total or width
    stream:write(("\r[%s%s] %3d%% %d/%d"):format(("#"):rep(filled), (" "):rep(width - filled),
      total > 0 and done * 100 // total or 100, done, total))
    if last then stream:write("\n") end
    stream:flush()
  end
end

-- Exit status of a run a signal stopped: 128 + the signal, as a shell says.
local function signal_status(s)
  return s and s.signal and 128 + s.signal
end

--- Runs recipe `r` with the command line `argv`; returns the exit status.
function M.main(r, argv, prog)
  prog = prog or "recipe"
  local spec = M.spec(r, prog)
  local opts, err = args.parse(spec, argv)
  if not opts then
    common.stderr:write(args.usage(spec), "\n")
    return common.fail(prog, err, common.EXIT_USAGE)
  end
  if opts.help then
    common.stdout:write(args.help(spec))
    return common.EXIT_OK
  end
  local b, part, status = M.batch_options(r, opts)
  if not b then
    -- A bad file is said in one line; a bad command line with the usage.
    if status ~= common.EXIT_FAIL then common.stderr:write(args.usage(spec), "\n") end
    return common.fail(prog, part, status or common.EXIT_USAGE)
  end
  if stderr_is_terminal() and not b.shard then b.progress = M.progress_bar(io.stderr) end
  local command = workers.rerun_command(argv)
  if command and not b.shard and not b.dry_run then
    b.jobs = b.jobs or workers.parse_jobs(nil, 4)
    -- Below this many units a worker costs more to start than it saves.
    if r.parallel == false or b.serials.count < 1000 then b.jobs = 1 end
    b.spawn = function(k, n, fresh, prefix)
      return io.popen(("%s %s --shard %d/%d%s"):format(prefix, command, k, n, fresh and "/new" or ""), "r")
    end
  end
  local s, info
  s, err, info = batch.run(b)
  if b.shard then
    -- The main process reads the counts and the failure from the last line.
    s = s or info
    common.say(workers.report(s.written, s.skipped, s.finished, err))
    return err and (signal_status(s) or common.EXIT_FAIL) or common.EXIT_OK
  end
  if not s then
    common.fail(prog, err)
    return signal_status(info) or common.EXIT_FAIL
  end
  s.dry_run = b.dry_run
  common.say(M.summary(prog, s, part))
  return common.EXIT_OK
end

return M
