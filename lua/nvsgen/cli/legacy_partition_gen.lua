--- nvsgen.cli.legacy_partition_gen: the option-only command line that
-- nvs_partition_gen.py took up to ESP-IDF v4.0 (`--input F --output F
-- --size N ...`, as the mass-production guide still shows it), turned into
-- the arguments of today's subcommand that does the same job.

local M = {}

--- The second usage line of `nvs_partition_gen -h`.
-- (%s is the program's name; `pad` lines the continuation up under it.)
function M.usage(prog)
  local pad = (" "):rep(#prog + 1)
  return ("%s --input IN.csv --output OUT.bin --size SIZE [--version v1|v2] [--outdir DIR]\n"
    .. "       %s[--encrypt true|false] [--keygen true|false] [--keyfile FILE]"):format(prog, pad)
end

--- What `-h` says of that form.
M.ABOUT = "The second form is the command line of nvs_partition_gen.py up to ESP-IDF v4.0:\n"
  .. "it runs generate, encrypt (--keyfile: the keys to use, or with --keygen true the\n"
  .. "name of the keys file to write) or, with --keygen true alone, generate-key.\n"

-- Options of that command line, each taking one value.
local OPTIONS = {
  ["--input"] = true, ["--output"] = true, ["--size"] = true, ["--version"] = true,
  ["--outdir"] = true, ["--encrypt"] = true, ["--keygen"] = true, ["--keyfile"] = true,
}

-- The options a name given on the command line may stand for: itself, or,
-- as argparse allows, every option it is the beginning of.
local function candidates(name)
  if OPTIONS[name] then return { name } end
  local list = {}
  if name:match("^%-%-.") then
    for option in pairs(OPTIONS) do
      if option:sub(1, #name) == name then list[#list + 1] = option end
    end
  end
  table.sort(list)
  return list
end

--- True when `argv` is in the old form: it starts with one of its options
-- (or the beginning of one).
function M.is_legacy(argv)
  local first = argv[1] and argv[1]:match("^([^=]*)")
  return first ~= nil and #candidates(first) > 0
end

-- "true"/"false" in any case, as the old tool's choices were spelt both ways.
local function boolean(name, text)
  local t = text:lower()
  if t == "true" then return true elseif t == "false" then return false end
  return nil, ("argument %s: invalid choice: '%s' (choose from 'true', 'false')"):format(name, text)
end

local VERSIONS = { v1 = "1", v2 = "2" }

--- Translates the old arguments. Returns the subcommand's argv (subcommand
-- first), or nil and a message for a usage error.
function M.translate(argv)
  -- argparse shows the help wherever -h stands, and nothing else.
  for _, arg in ipairs(argv) do
    if arg == "-h" or arg == "--help" then return { "-h" } end
  end
  local given, i = {}, 1
  while i <= #argv do
    local arg = argv[i]
    local name, value = arg:match("^(%-%-[^=]+)=(.*)$")
    if not name then name, value, i = arg, argv[i + 1], i + 1 end
    local options = candidates(name)
    if #options == 0 then return nil, ("unrecognized argument: %s"):format(arg) end
    if #options > 1 then
      return nil, ("ambiguous option: %s could match %s"):format(name, table.concat(options, ", "))
    end
    name = options[1]
    if value == nil then return nil, ("argument %s: expected one argument"):format(name) end
    -- Given again, the last value counts, as with argparse.
    given[name] = value
    i = i + 1
  end

  local encrypt, keygen = false, false
  local err
  if given["--encrypt"] then
    encrypt, err = boolean("--encrypt", given["--encrypt"])
    if encrypt == nil then return nil, err end
  end
  if given["--keygen"] then
    keygen, err = boolean("--keygen", given["--keygen"])
    if keygen == nil then return nil, err end
  end
  -- The old tool lowered --version's value, as it did --encrypt's and --keygen's.
  local version = given["--version"] and given["--version"]:lower()
  if version and not VERSIONS[version] then
    return nil, ("argument --version: invalid choice: '%s' (choose from 'v1', 'v2')"):format(given["--version"])
  end

  local out = {}
  local function add(...)
    for _, v in ipairs({ ... }) do out[#out + 1] = v end
  end
  local function common_tail()
    if version then add("--version", VERSIONS[version]) end
    if given["--outdir"] then add("--outdir", given["--outdir"]) end
  end

  -- `--keygen true` alone made only the keys file.
  if not given["--input"] and not given["--output"] and not given["--size"] and keygen then
    if version then return nil, "argument --version: needs --input, --output and --size" end
    add("generate-key")
    if given["--keyfile"] then add("--keyfile", given["--keyfile"]) end
    if given["--outdir"] then add("--outdir", given["--outdir"]) end
    return out
  end

  local missing = {}
  for _, name in ipairs({ "--input", "--output", "--size" }) do
    if not given[name] then missing[#missing + 1] = name end
  end
  if #missing > 0 then
    return nil, "the following arguments are required: " .. table.concat(missing, ", ")
  end

  if not encrypt then
    if keygen or given["--keyfile"] then
      return nil, "--keygen true and --keyfile need --encrypt true"
    end
    add("generate", given["--input"], given["--output"], given["--size"])
    common_tail()
    return out
  end

  add("encrypt", given["--input"], given["--output"], given["--size"])
  common_tail()
  if keygen then
    -- With --keygen, --keyfile names the keys file to write.
    add("--keygen")
    if given["--keyfile"] then add("--keyfile", given["--keyfile"]) end
  elseif given["--keyfile"] then
    add("--inputkey", given["--keyfile"])
  else
    return nil, "--encrypt true needs --keygen true or --keyfile FILE"
  end
  return out
end

return M
