--- nvsgen.cli.args: command-line parsing that accepts what Python's argparse
-- accepts for the reference tools' command lines.
--
-- Options may come anywhere, as `--name value` or `--name=value`, and a
-- unique prefix of a long name works (argparse's abbreviations). Positional
-- arguments fill from both ends, so one "+" positional can stand before
-- fixed ones (`IN.csv [MORE.csv ...] OUT.bin SIZE`). A spec:
--
--     { prog = "nvs_partition_gen generate", summary = "...",
--       positionals = { { name = "input", many = true, help = "..." }, ... },
--       options = { { "--version", choices = {"1","2"}, default = "2", help = "..." },
--                   { "--keygen", flag = true, help = "..." },
--                   { "--prefix_num", nargs = 2, metavar = "START LENGTH" }, ... } }
--
-- parse() returns a table of values keyed by name (dashes become
-- underscores), or nil and a message; `help` is set for -h/--help.

local M = {}

-- A word that names an option rather than being a value: argparse takes
-- "-5" as a value, since no option here looks like a negative number.
local function is_option_word(word)
  return word:sub(1, 1) == "-" and #word > 1 and not word:match("^%-%d")
end

local function option_key(name)
  return (name:gsub("^%-+", ""):gsub("%-", "_"))
end

local function find_option(spec, word)
  local exact
  local matches = {}
  for _, opt in ipairs(spec.options or {}) do
    if opt[1] == word or opt.alias == word then exact = opt end
    if opt[1]:sub(1, #word) == word then matches[#matches + 1] = opt end
  end
  if exact then return exact end
  if #matches == 1 and #word > 2 then return matches[1] end
  if #matches > 1 and #word > 2 then
    local names = {}
    for i, opt in ipairs(matches) do names[i] = opt[1] end
    return nil, ("ambiguous option: %s could match %s"):format(word, table.concat(names, ", "))
  end
  return nil, ("unrecognized argument: %s"):format(word)
end

local function assign_positionals(spec, words, out)
  local pos = spec.positionals or {}
  local fixed = 0
  for _, p in ipairs(pos) do
    if not p.many and not p.optional then fixed = fixed + 1 end
  end
  local i = 1
  for _, p in ipairs(pos) do
    if p.many then
      local n = #words - i + 1 - (fixed - (p.fixed_before or 0))
      if n < 1 then return nil, ("the following arguments are required: %s"):format(p.name) end
      local list = {}
      for k = 1, n do list[k] = words[i + k - 1] end
      out[p.name] = list
      i = i + n
    elseif words[i] then
      out[p.name] = words[i]
      i = i + 1
    elseif not p.optional then
      return nil, ("the following arguments are required: %s"):format(p.name)
    end
  end
  if words[i] then return nil, ("unrecognized argument: %s"):format(words[i]) end
  return true
end

--- Parses `argv` (a list of strings) against `spec`.
function M.parse(spec, argv)
  local out, words = {}, {}
  -- How many fixed positionals precede each "many" one, for the fill.
  local seen = 0
  for _, p in ipairs(spec.positionals or {}) do
    if p.many then p.fixed_before = seen elseif not p.optional then seen = seen + 1 end
  end
  for _, opt in ipairs(spec.options or {}) do
    local k = option_key(opt[1])
    if opt.flag then out[k] = false else out[k] = opt.default end
  end
  local i = 1
  while i <= #argv do
    local word = argv[i]
    if word == "-h" or word == "--help" then
      out.help = true
      return out
    elseif word == "--" then
      for k = i + 1, #argv do words[#words + 1] = argv[k] end
      break
    elseif is_option_word(word) then
      local name, inline = word:match("^(%-%-?[^=]+)=(.*)$")
      name = name or word
      local opt, err = find_option(spec, name)
      if not opt then return nil, err end
      local k = option_key(opt[1])
      if opt.flag then
        if inline then return nil, ("argument %s: ignored explicit argument '%s'"):format(opt[1], inline) end
        out[k] = true
      elseif opt.nargs then
        -- A fixed number of words (argparse's nargs=N), kept as a list.
        local list = {}
        for n = 1, opt.nargs do
          local value = argv[i + n]
          if inline or value == nil or is_option_word(value) then
            return nil, ("argument %s: expected %d arguments"):format(opt[1], opt.nargs)
          end
          list[n] = value
        end
        i = i + opt.nargs
        out[k] = list
      else
        local value = inline
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil or is_option_word(value) then
            return nil, ("argument %s: expected one argument"):format(opt[1])
          end
        end
        if opt.choices then
          local okc = false
          for _, c in ipairs(opt.choices) do okc = okc or c == value end
          if not okc then
            return nil, ("argument %s: invalid choice: '%s' (choose from %s)")
              :format(opt[1], value, table.concat(opt.choices, ", "))
          end
        end
        out[k] = value
      end
    else
      words[#words + 1] = word
    end
    i = i + 1
  end
  local ok, err = assign_positionals(spec, words, out)
  if not ok then return nil, err end
  return out
end

--- One usage line, argparse style.
function M.usage(spec)
  local parts = { "usage: " .. spec.prog, "[-h]" }
  for _, opt in ipairs(spec.options or {}) do
    local metavar = opt.flag and "" or " " .. (opt.metavar or option_key(opt[1]):upper())
    parts[#parts + 1] = "[" .. opt[1] .. metavar .. "]"
  end
  for _, p in ipairs(spec.positionals or {}) do
    parts[#parts + 1] = p.many and (p.name .. " [" .. p.name .. " ...]") or p.optional
      and "[" .. p.name .. "]" or p.name
  end
  return table.concat(parts, " ")
end

--- The full help text.
function M.help(spec)
  local lines = { M.usage(spec), "" }
  if spec.summary then lines[#lines + 1] = spec.summary; lines[#lines + 1] = "" end
  if spec.positionals and #spec.positionals > 0 then
    lines[#lines + 1] = "positional arguments:"
    for _, p in ipairs(spec.positionals) do
      lines[#lines + 1] = ("  %-22s %s"):format(p.name, p.help or "")
    end
    lines[#lines + 1] = ""
  end
  lines[#lines + 1] = "options:"
  lines[#lines + 1] = ("  %-22s %s"):format("-h, --help", "show this help message and exit")
  for _, opt in ipairs(spec.options or {}) do
    local label = opt[1] .. (opt.flag and "" or " " .. (opt.metavar or option_key(opt[1]):upper()))
    local help = opt.help or ""
    if opt.default ~= nil and not opt.flag then help = help .. " (default: " .. opt.default .. ")" end
    lines[#lines + 1] = ("  %-22s %s"):format(label, help)
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
