--- nvsgen.cli.nvs_tool: the command line of Espressif's nvs_tool.py, plus
-- decryption and a check of the image the way the firmware mounts it.
--
--   nvs_tool FILE [-i] [-d all|written|minimal|blobs|namespaces|storage_info|none]
--            [-f text|json] [--color never|auto|always] [--keys KEYS.bin]
--
-- The text dumps have the shapes nvs_tool.py prints, from the same raw view
-- of the pages (entries by slot, spans, CRCs), except that float and double
-- items are known types here. `-i` prints nvs_tool.py's integrity checks,
-- then the problems nvsgen.read finds, and exits 1 when there is any such
-- problem. `-f json` prints nvsgen's own stable JSON (see README.md).

local nvsgen = require("nvsgen")
local args = require("nvsgen.cli.args")
local common = require("nvsgen.cli.common")
local dumps = require("nvsgen.dumps")
local flash = require("nvsgen.flash")
local json = require("nvsgen.json")
local pages = require("nvsgen.pages")
local report = require("nvsgen.report")
local verify = require("nvsgen.verify")

local fmt = string.format

local M = {}

local PROG = "nvs_tool"
local PAGE = 4096

M.SPEC = {
  prog = PROG,
  summary = "Print and check an ESP-IDF NVS partition image (plain or encrypted), or a whole flash dump.",
  positionals = { { name = "file", optional = true, help = "NVS partition image or flash dump to read" } },
  options = {
    { "--integrity-check", alias = "-i", flag = true,
      help = "(-i) check the image; exit 1 if the firmware would find a problem" },
    { "--dump", alias = "-d", metavar = "TYPE", default = "all", choices = dumps.NAMES,
      help = "(-d) what to print: all, written, minimal, namespaces, blobs, storage_info or none" },
    { "--color", metavar = "WHEN", default = "auto", choices = { "never", "auto", "always" },
      help = "colour the output: never, auto (on a terminal) or always" },
    { "--format", alias = "-f", metavar = "FORMAT", default = "text", choices = { "text", "json", "csv" },
      help = "(-f) output format: text, json, or csv (the CSV nvs_partition_gen rebuilds it from)" },
    { "--keys", metavar = "KEYS.bin", help = "keys partition file to decrypt the image with (with --verify:"
      .. " the key a batch made with --inputkey shares)" },
    { "--outdir", metavar = "DIR", help = "with -f csv: write blobs of 1024 bytes or more to files in DIR" },
    { "--partition", metavar = "NAME", help = "FILE is a flash dump: read its partition NAME"
      .. " (default: the first data,nvs one)" },
    { "--partition-table-offset", metavar = "N", help = "FILE is a flash dump whose partition table"
      .. " is at N (default 0x8000)" },
    { "--list-partitions", flag = true, help = "FILE is a flash dump: print its partition table" },
    { "--verify", metavar = "OUTDIR", help = "check the batch in OUTDIR against its manifest.csv" },
  },
}

-- The library pieces this command line prints, under the names it has
-- always given them.
M.parse = pages.parse
M.problem_line = report.problem_line
M.json = json.to_json

--- True when `stream` is a terminal: only the process's own stdout can
-- be one. Specs replace it to run the `auto` choice in-process.
function M.isatty(stream)
  if stream ~= io.stdout then return false end
  local ok, term = pcall(require, "term")
  return ok and term.isatty(stream) == true
end

--- Colour when asked, or with auto when the output is a terminal.
function M.wants_color(when, stream)
  if when == "always" then return true end
  if when == "never" then return false end
  return M.isatty(stream) == true
end

local function is_terminal(stream)
  local ok, term = pcall(require, "term")
  return stream == io.stderr and ok and term.isatty(stream) or false
end

--- --verify OUTDIR [--keys KEYS.bin]: one line per bad unit, the summary,
-- exit 1 if any.
local function run_verify(outdir, keys)
  local bar = is_terminal(common.stderr)
  local last = -1
  local summary, err = verify.run(outdir, {
    keys = keys,
    on_bad = function(serial, problem)
      if bar then common.stderr:write("\r\27[K") end
      common.say(fmt("unit %s: %s", serial, problem))
    end,
    progress = bar and function(done, total)
      local pct = total > 0 and done * 100 // total or 100
      if pct ~= last or done == total then
        last = pct
        local width = 40
        local filled = width * pct // 100
        common.stderr:write(fmt("\r[%s%s] %3d%% %d/%d", ("#"):rep(filled), ("."):rep(width - filled), pct,
          done, total))
      end
    end or nil,
  })
  if bar then common.stderr:write("\r\27[K") end
  if not summary then return common.fail(PROG, err) end
  common.say(verify.summary_line(summary))
  return summary.bad > 0 and common.EXIT_FAIL or common.EXIT_OK
end

local function parse_offset(text)
  if text == nil then return nil end
  local n = common.parse_int(text)
  if not n or n < 0 then return nil, ("--partition-table-offset: '%s' is not a number"):format(text) end
  return n
end

-- What --verify does not take: the option's key, its value when not
-- given, its name.
local VERIFY_REFUSES = {
  { "format", "text", "--format" }, { "integrity_check", false, "--integrity-check" }, { "dump", "all", "--dump" },
  { "partition", nil, "--partition" }, { "list_partitions", false, "--list-partitions" },
  { "outdir", nil, "--outdir" }, { "partition_table_offset", nil, "--partition-table-offset" },
  { "color", "auto", "--color" },
}

function M.main(argv)
  local opts, err = args.parse(M.SPEC, argv)
  if not opts then
    common.stderr:write(args.usage(M.SPEC), "\n")
    return common.fail(PROG, err, common.EXIT_USAGE)
  end
  if opts.help then
    common.stdout:write(args.help(M.SPEC))
    return common.EXIT_OK
  end
  -- (An empty name would only be said as ": No such file or directory".)
  for _, o in ipairs({ "keys", "verify", "outdir" }) do
    if opts[o] == "" then
      return common.fail(PROG, fmt("--%s: an empty name", o), common.EXIT_USAGE)
    end
  end
  if opts.verify then
    if opts.file then return common.fail(PROG, "--verify takes no FILE", common.EXIT_USAGE) end
    -- Options of reading one image would be silently dropped (a caller
    -- asking -f json would get text): refused by name.
    for _, o in ipairs(VERIFY_REFUSES) do
      if opts[o[1]] ~= o[2] then
        return common.fail(PROG, fmt("--verify takes no %s (only --keys)", o[3]), common.EXIT_USAGE)
      end
    end
    return run_verify(opts.verify, opts.keys)
  end
  if not opts.file then
    common.stderr:write(args.usage(M.SPEC), "\n")
    return common.fail(PROG, "the following arguments are required: file", common.EXIT_USAGE)
  end
  local offset
  offset, err = parse_offset(opts.partition_table_offset)
  if err then return common.fail(PROG, err) end
  if opts.list_partitions then
    local list
    list, err = flash.read_table(opts.file, offset)
    if not list then return common.fail(PROG, err) end
    common.stdout:write(flash.format(list))
    return common.EXIT_OK
  end
  local read_opts = {}
  local image = opts.file
  -- A whole flash dump needs no option when its table is where ESP-IDF
  -- puts it: its first data,nvs partition is read.
  if opts.partition or offset or flash.is_dump(opts.file) then
    read_opts.partition = opts.partition or true
    read_opts.partition_table_offset = offset
  else
    image, err = flash.read_file(opts.file)
    if not image then return common.fail(PROG, err) end
    if #image == 0 then return common.fail(PROG, opts.file .. ": empty file (0 bytes)") end
    -- a dump given as a stream (a FIFO, /dev/stdin) is known by its bytes
    if flash.holds_table(image) then
      read_opts.partition = true
    elseif #image % PAGE ~= 0 then
      return common.fail(PROG, fmt("%s: Given partition data is not aligned to page size (%d %% 4096 = %d)",
        opts.file, #image, #image % PAGE))
    end
  end
  -- the text dumps print the problems and parse the pages themselves:
  -- no table per item
  read_opts.problems_only = opts.format == "text" or nil
  local r
  r, err = nvsgen.read(image, opts.keys, read_opts)
  if not r then
    -- a dump read whole is bytes, which flash names "dump": name the file
    if image ~= opts.file then err = err:gsub("^dump: ", function() return opts.file .. ": " end) end
    return common.fail(PROG, err)
  end
  local text
  if opts.format == "json" then
    -- written as made: the document is never held whole
    local stdout = common.stdout
    json.write(r, opts.file:match("[^/]*$"), function(t) stdout:write(t) end)
    text = "\n"
  elseif opts.format == "csv" then
    local name = opts.file:match("[^/]*$"):gsub("%.[^.]*$", "")
    text, err = nvsgen.to_csv(r, { outdir = opts.outdir, name = name ~= "" and name or nil })
    if not text then return common.fail(PROG, err) end
  else
    local stdout = common.stdout
    dumps.write(r, { dump = opts.dump, integrity = opts.integrity_check,
      color = M.wants_color(opts.color, stdout) }, function(t) stdout:write(t) end)
    text = ""
  end
  common.stdout:write(text)
  if opts.integrity_check and #r.problems > 0 then return common.EXIT_FAIL end
  return common.EXIT_OK
end

return M
