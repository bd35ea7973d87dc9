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

local files = require("nvsgen.files")
local nvsgen = require("nvsgen")
local args = require("nvsgen.cli.args")
local common = require("nvsgen.cli.common")
local core = require("nvsgen.core")

local byte, char, concat, fmt = string.byte, string.char, table.concat, string.format
local unpack = string.unpack

local M = {}

local PROG = "nvs_tool"
local PAGE, ENTRY, ENTRIES = 4096, 32, 126

M.SPEC = {
  prog = PROG,
  summary = "Print and check an ESP-IDF NVS partition image (plain or encrypted).",
  positionals = { { name = "file", help = "NVS partition image to read" } },
  options = {
    { "--integrity-check", alias = "-i", flag = true,
      help = "(-i) check the image; exit 1 if the firmware would find a problem" },
    { "--dump", alias = "-d", metavar = "TYPE", default = "all",
      choices = { "all", "written", "minimal", "namespaces", "blobs", "storage_info", "none" },
      help = "(-d) what to print: all, written, minimal, namespaces, blobs, storage_info or none" },
    { "--color", metavar = "WHEN", default = "auto", choices = { "never", "auto", "always" },
      help = "colour the output: never, auto (on a terminal) or always" },
    { "--format", alias = "-f", metavar = "FORMAT", default = "text", choices = { "text", "json" },
      help = "(-f) output format, text or json; json ignores --dump" },
    { "--keys", metavar = "KEYS.bin", help = "keys partition file to decrypt the image with" },
  },
}

-- ---- the command ----------------------------------------------------------------

local DUMPS = {
  all = function(pages) dump_pages(pages, false) end,
  written = function(pages) dump_pages(pages, true) end,
  minimal = dump_minimal, namespaces = dump_namespaces, blobs = dump_blobs,
  storage_info = dump_storage_info, none = function() end,
}

local function wants_color(when)
  if when == "always" then return true end
  if when == "never" or common.stdout ~= io.stdout then return false end
  local ok, term = pcall(require, "term")
  return ok and term.isatty(io.stdout) or false
end

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
  local image
  image, err = files.read(opts.file)
  if not image then return common.fail(PROG, err) end
  if #image % PAGE ~= 0 then
    return common.fail(PROG, fmt("%s: Given partition data is not aligned to page size (%d %% 4096 = %d)",
      opts.file, #image, #image % PAGE))
  end
  local r
  r, err = nvsgen.read(image, opts.keys)
  if not r then return common.fail(PROG, err) end
  out = { lines = {}, color = wants_color(opts.color) }
  if opts.format == "json" then
    say(M.json(r, opts.file:match("[^/]*$")))
  else
    local pages = M.parse(r.image)
    DUMPS[opts.dump](pages)
    if opts.integrity_check then
      say("")
      integrity_check(pages)
      firmware_check(r)
    end
  end
  common.stdout:write(concat(out.lines, "\n"), #out.lines > 0 and "\n" or "")
  out = nil
  if opts.integrity_check and #r.problems > 0 then return common.EXIT_FAIL end
  return common.EXIT_OK
end

return M
