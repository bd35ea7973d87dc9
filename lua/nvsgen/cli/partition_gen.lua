--- nvsgen.cli.partition_gen: the command line of Espressif's
-- nvs_partition_gen.py, writing byte-identical images.
--
--   nvs_partition_gen generate IN.csv [MORE.csv ...] OUT.bin SIZE [--version 1|2] [--outdir DIR]
--
-- Unlike the reference, bad input never leaves a file behind: the image is
-- built in memory and written (atomically) only once it is complete.

local nvsgen = require("nvsgen")
local args = require("nvsgen.cli.args")
local common = require("nvsgen.cli.common")
local csvgen = require("nvsgen.csvgen")

local M = {}

local PROG = "nvs_partition_gen"

local VERSION_OPTION = {
  "--version", choices = { "1", "2" }, default = "2",
  help = "NVS format version: 1 (blobs on one page) or 2 (multi-page blobs)",
}
local OUTDIR_OPTION = { "--outdir", default = ".", help = "folder for the files written" }

M.GENERATE = {
  prog = PROG .. " generate",
  summary = "Write an NVS partition image from CSV files.",
  positionals = {
    { name = "input", many = true, help = "CSV file(s) to read, in order" },
    { name = "output", help = "image file to write (.bin)" },
    { name = "size", help = "partition size in bytes, a multiple of 4096 (decimal or 0x hex)" },
  },
  options = { VERSION_OPTION, OUTDIR_OPTION },
}

local VERSION_BANNER = {
  ["1"] = "Creating NVS binary with version: V1 - Multipage Blob Support Disabled",
  ["2"] = "Creating NVS binary with version: V2 - Multipage Blob Support Enabled",
}

--- Builds the partition an `encrypt` or `generate` command line describes.
-- Returns the partition, or nil and a message.
function M.build(opts)
  local size, err = common.partition_size(opts.size)
  if not size then return nil, err end
  local partition = nvsgen.partition{ size = size, version = tonumber(opts.version) }
  local ok
  ok, err = csvgen.build(partition, opts.input)
  if not ok then return nil, err end
  return partition
end

--- Parses `argv` with `spec`; on -h or a mistake prints and returns a status.
function M.parse(spec, argv)
  local opts, err = args.parse(spec, argv)
  if not opts then
    common.stderr:write(args.usage(spec), "\n")
    return nil, common.fail(spec.prog, err, common.EXIT_USAGE)
  end
  if opts.help then
    common.stdout:write(args.help(spec))
    return nil, common.EXIT_OK
  end
  return opts
end

--- Resolves and prepares the output path. Returns it, or nil and a message.
function M.output(opts)
  local name, err = common.bin_name(opts.output)
  if not name then return nil, err end
  return common.output_path(opts.outdir, name)
end

function M.generate(argv)
  local opts, status = M.parse(M.GENERATE, argv)
  if not opts then return status end
  local partition, err = M.build(opts)
  if not partition then return common.fail(PROG, err) end
  local path
  path, err = M.output(opts)
  if not path then return common.fail(PROG, err) end
  local ok
  ok, err = partition:write(path)
  if not ok then return common.fail(PROG, err) end
  common.say(VERSION_BANNER[opts.version])
  common.say("Created NVS binary: ===> ", path)
  return common.EXIT_OK
end

local COMMANDS = { generate = M.generate }

local USAGE = ("usage: %s {generate,encrypt,decrypt,generate-key} ..."):format(PROG)

--- Entry point: runs the subcommand named by argv[1]; returns the exit status.
function M.main(argv)
  local command = argv[1]
  local rest = table.move(argv, 2, #argv, 1, {})
  if command == "-h" or command == "--help" then
    common.stdout:write(USAGE, "\n\nESP-IDF NVS partition images from CSV files (nvsgen).\n",
      "Run '", PROG, " COMMAND -h' for a command's options.\n")
    return common.EXIT_OK
  end
  local run = COMMANDS[command]
  if not run then
    common.stderr:write(USAGE, "\n")
    return common.fail(PROG, command and ("unknown command '" .. command .. "'") or "a command is required",
      common.EXIT_USAGE)
  end
  return run(rest)
end

return M
