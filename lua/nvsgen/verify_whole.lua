--- nvsgen.verify_whole: --verify's checks of a whole unit (several files per
-- unit, nvsgen.unit_layout) against its manifest record.
--
-- The manifest of such a batch names no kinds: its header is `serial`, then
-- per file a pair NAME,NAME_sha256 (each partition's label, the keys
-- partition's label, then `flash_args`, `merged`, `hex` in that order),
-- then the exported columns. The kinds are told as the layout writes them:
-- the three reserved names are esptool's files; the others are partition
-- images, the last of them the keys partition when the unit has one (it is
-- written after the images, and is a 4096-byte keys page with a good CRC).
--
--     local files = verify_whole.columns(header)   -- nil: not a whole unit
--     local problem = verify_whole.check(outdir, record, files, #header)

local lfs = require("lfs")
local crypto = require("nvsgen.crypto")
local flash_files = require("nvsgen.flash_files")
local flash = require("nvsgen.flash")
local pages = require("nvsgen.pages")
local reader = require("nvsgen.reader")
local report = require("nvsgen.report")
local staging = require("nvsgen.staging")

local format = string.format
local PENDING = staging.PENDING

local M = {}

-- The files that are no partition image, in the order the layout writes them.
local RESERVED = { flash_args = 1, merged = 2, hex = 3 }

--- The file columns of a header, or nil when it is not a whole unit's:
-- `serial` first, then at least one NAME,NAME_sha256 pair. A list of
-- { name =, col =, sha =, reserved = } in the header's order. Pairs stop
-- at the first column that is no such pair, or at a partition's pair after
-- a reserved one (the layout writes those last: it is two exports).
function M.columns(header)
  if header[1] ~= "serial" then return nil end
  local list, last_reserved = {}, 0
  local i = 2
  while header[i] and header[i] ~= "" and header[i + 1] == header[i] .. "_sha256" do
    local rank = RESERVED[header[i]]
    if (rank or 0) < last_reserved or (rank and rank == last_reserved) then break end
    last_reserved = rank or last_reserved
    list[#list + 1] = { name = header[i], col = i, sha = i + 1, reserved = rank ~= nil }
    i = i + 2
  end
  if #list == 0 then return nil end
  return list
end

--- Whether the file at `path` can be opened (both kinds of batch).
local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end
M.exists = exists

--- A file named elsewhere than inside the batch folder (an absolute path,
-- a '..' step) is refused, not followed (both kinds of batch).
local function outside(file)
  return file:sub(1, 1) == "/" or ("/" .. file .. "/"):find("/%.%./") ~= nil
end
M.outside = outside

--- What is wrong with reading `file` (a name inside `outdir`) when a link
-- lies on the way to it, or nil. A batch makes plain files and folders,
-- never links: a link there was put by someone else and is not followed
-- (both kinds of batch).
function M.link_problem(outdir, file)
  local at, shown = outdir, nil
  for part in file:gmatch("[^/]+") do
    at = at .. "/" .. part
    shown = shown and shown .. "/" .. part or part
    if lfs.symlinkattributes(at, "mode") == "link" then
      return format("%s: %s is a link, which a batch never makes (not followed)", file, shown)
    end
  end
  return nil
end

-- The words of one line of an esptool argument file, as shlex.split reads
-- the ones nvsgen writes (plain, or in single quotes with '"'"' for a quote).
local function shell_words(line)
  local words, word, i, n = {}, nil, 1, #line
  while i <= n do
    local c = line:sub(i, i)
    if c == " " or c == "\t" then
      if word then words[#words + 1] = word; word = nil end
      i = i + 1
    elseif c == "'" or c == '"' then
      local e = line:find(c, i + 1, true)
      if not e then return nil end
      word = (word or "") .. line:sub(i + 1, e - 1)
      i = e + 1
    else
      word = (word or "") .. c
      i = i + 1
    end
  end
  if word then words[#words + 1] = word end
  return words
end

-- The unit's partition files placed at the offsets its argument file
-- gives (flash_files' parts), or nil and what is wrong with the file.
local function placed_parts(flash_args, images)
  local parts = {}
  for line in flash_args.data:gmatch("[^\n]+") do
    local words = shell_words(line)
    local offset = words and #words == 2 and words[1]:match("^0x%x+$") and tonumber(words[1])
    if not offset then return nil, format("%s: '%s' is not an 'OFFSET FILE' line", flash_args.file, line) end
    -- esptool opens the names as the batch was told its folder: matched
    -- by their end.
    local found
    for _, f in ipairs(images) do
      local w = words[2]
      if w == f.file or w:sub(-#f.file - 1) == "/" .. f.file then found = f break end
    end
    if not found then
      return nil, format("%s: %s is not one of the unit's partition files", flash_args.file, words[2])
    end
    parts[#parts + 1] = { label = found.name, file = found.file, offset = offset,
      size = math.max(#found.data, 1), data = found.data }
  end
  if #parts ~= #images then
    return nil, format("%s: %d lines for the unit's %d partition files", flash_args.file, #parts, #images)
  end
  return parts
end

-- The argument file checked (a line per partition file of the unit), and
-- the merged binary and the Intel HEX against the unit's partition files
-- at the offsets it gives: nil, or what differs.
local function check_placed(flash_args, merged, hex, images)
  local parts, err = placed_parts(flash_args, images)
  if not parts then return err end
  if merged then
    -- The merged file spans the lowest offset to the end of the highest
    -- part: told apart by its size first, so that offsets far apart (the
    -- argument file is the manifest's to trust, not its numbers) are never
    -- filled with erased bytes in memory.
    local low, high, far = math.huge, 0, false
    for _, p in ipairs(parts) do
      low = math.min(low, p.offset)
      if #p.data > 0 then
        far = far or p.offset > flash.MAX_STREAM
        high = math.max(high, p.offset + #p.data)
      end
    end
    if far or (high > low and high - low ~= #merged.data) then
      return format("%s: is not the unit's partition files at their %s offsets", merged.file, flash_args.file)
    end
    local want
    want, err = flash_files.merged(parts)
    if not want then return format("%s: %s", flash_args.file, err) end
    if want ~= merged.data then
      for _, p in ipairs(parts) do
        local at = p.offset - low
        if merged.data:sub(at + 1, at + #p.data) ~= p.data then
          return format("%s: the bytes at 0x%X are not %s's", merged.file, p.offset, p.file)
        end
      end
      return format("%s: is not the unit's partition files at their %s offsets", merged.file, flash_args.file)
    end
  end
  if hex then
    local want
    want, err = flash_files.intel_hex(parts)
    if not want then return format("%s: %s", flash_args.file, err) end
    if want ~= hex.data then
      return format("%s: is not the Intel HEX of the unit's partition files at their %s offsets", hex.file,
        flash_args.file)
    end
  end
  return nil
end

-- One image read as the firmware reads it: nil, or what it would find.
local function check_image(f, keys)
  local r, err
  if keys and pages.wrong_key(f.data) then
    r, err = reader.read(f.data, keys.data)
  else
    r, err = reader.read(f.data)
  end
  if not r then return format("%s: %s", f.file, err) end
  if #r.problems > 0 then
    return format("%s: the firmware would find %s, first: %s", f.file, report.plural(#r.problems, "problem"),
      report.problem_line(r.problems[1]))
  end
  return nil
end

--- What is said after a keys file is found missing: a key the batch
-- shares (--inputkey) is recorded by the name it was given, a path from
-- the folder the batch ran in, where the batch's own files are names in
-- its folder.
function M.shared_key_hint(file)
  if outside(file) or file:find("/", 1, true) then
    return " (a key the whole batch shares? give its file with --keys)"
  end
  return ""
end

--- What is wrong with the whole unit of record `rec` (its files in
-- `outdir`, the header's file columns `cols` and its width), or nil when
-- it is good. `shared_key` ({ file =, data = }, or nil): the keys
-- partition of a batch encrypted with one key (--inputkey), taken for the
-- unit's last partition file when that is not in `outdir` and its recorded
-- SHA-256 is the shared key's.
function M.check(outdir, rec, cols, width, shared_key)
  if #rec ~= width then return format("the record has %d fields, the header %d", #rec, width) end
  local by_name, images, named = {}, {}, {}
  local last_partition
  for _, c in ipairs(cols) do
    if not c.reserved then last_partition = c end
  end
  for _, c in ipairs(cols) do
    local file = rec[c.col] or ""
    if file == "" then return format("%s: no file named in the manifest", c.name) end
    if named[file] then return format("%s: named by both %s and %s", file, named[file], c.name) end
    named[file] = c.name
    local path = outdir .. "/" .. file
    -- The keys partition a batch shares is not in its folder (a file of
    -- the unit's own still pending there is the batch's, as below).
    -- (Nothing outside the folder is opened, a pending name included.)
    local inside = not outside(file)
    local link = inside and M.link_problem(outdir, file)
    if link then return link end
    local here = inside and exists(path)
    local shared = c == last_partition and not here and not (inside and exists(path .. PENDING))
    local hint = shared and M.shared_key_hint(file) or ""
    if shared and shared_key and crypto.sha256_hex(shared_key.data) ~= (rec[c.sha] or ""):lower() then
      -- A name in the folder is the unit's own file, gone; a path is the
      -- shared key's, and the file given is another.
      if hint == "" then return format("%s: file is missing", file) end
      return format("%s: %s is not the keys partition the batch recorded for %s", file, shared_key.file, c.name)
    end
    if shared and shared_key then
      local f = { name = c.name, file = file, data = shared_key.data }
      by_name[c.name] = f
      images[#images + 1] = f
      goto next_file
    end
    if not inside then return format("%s: the file is outside the batch folder%s", file, hint) end
    if not here then
      -- A batch killed after recording the unit leaves its files pending;
      -- rerunning it puts them in place.
      if exists(path .. PENDING) then
        return format("%s: file is missing (%s%s is pending: run the batch again to finish it)", file, file, PENDING)
      end
      return format("%s: file is missing%s", file, hint)
    end
    -- (At most a partition's bytes, the merged and HEX files a flash's:
    -- a link to a device inside the folder is not read on and on.)
    local data, err = flash.read_file(path, (c.name == "merged" or c.name == "hex") and c.reserved
      and flash.MAX_STREAM or flash.MAX_PARTITION)
    if not data then
      if err:sub(1, #path + 2) == path .. ": " then err = err:sub(#path + 3) end
      return format("%s: %s", file, err)
    end
    if crypto.sha256_hex(data) ~= (rec[c.sha] or ""):lower() then
      return format("%s: SHA-256 differs from the manifest", file)
    end
    do
      local f = { name = c.name, file = file, data = data }
      by_name[c.name] = f
      if not c.reserved then images[#images + 1] = f end
    end
    ::next_file::
  end
  -- The keys partition: the last partition file, a keys page. When it is
  -- none, it is an image like the others, and an image that reads as
  -- encrypted has no key.
  local keys
  local last = images[#images]
  if #images >= 2 and #last.data == crypto.KEYS_PARTITION_SIZE then
    local _, err = crypto.parse_keys_partition(last.data)
    if not err then
      keys = last
    else
      for i = 1, #images - 1 do
        if pages.wrong_key(images[i].data) then
          return format("%s: %s (the unit's keys partition for %s)", last.file, err, images[i].file)
        end
      end
    end
  end
  for _, f in ipairs(images) do
    if f ~= keys then
      if not keys and pages.wrong_key(f.data) then
        local failed = pages.check_items(f.data)
        return format("%s: looks encrypted (all %d entries fail their CRC check as plain data) and the unit has"
          .. " no keys partition", f.file, failed)
      end
      local problem = check_image(f, keys)
      if problem then return problem end
    end
  end
  if by_name.flash_args then
    return check_placed(by_name.flash_args, by_name.merged, by_name.hex, images)
  end
  return nil
end

return M
