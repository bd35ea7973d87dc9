--- nvsgen.unit_layout: the partitions that make one unit (label, size,
-- offset, version, encryption), and the files each unit is written as.
--
-- A recipe describes several partitions with its `partitions` field, a
-- list in flash order (or a table by label, taken in label order):
--
--     partitions = {
--       { label = "fctry", size = 0x6000, encrypt = true },
--       { label = "nvs", version = 2, encrypt = true },  -- size from the table
--     },
--     keys = "nvs_keys",            -- the keys partition's label (optional)
--
-- With a partition table, each partition's offset and size come from the
-- table by label (a size or offset the recipe gives must agree), each must
-- be data,nvs, and the keys partition data,nvs_keys. A partition
-- encrypted with a key per unit needs that unit's keys partition (the
-- 4096-byte keys page), written with the unit; with --inputkey every unit
-- shares the one keys file given.
--
-- A unit of such a layout is written as (STEM: the name pattern's file
-- name without .bin, for the serial):
--   STEM-LABEL.bin    one image per partition, in the recipe's order;
--   STEM-KEYS.bin     the keys partition (KEYS: its label; 0600);
--   STEM.flash_args   esptool's argument file, when every offset is known;
--   STEM.merged.bin   with `merged`: one binary from the lowest offset;
--   STEM.hex          with `hex`: Intel HEX of the written bytes.
-- The manifest row of a unit is `serial`, then for each file a column
-- named after it (the label, `flash_args`, `merged`, `hex`) holding the
-- file's name and one named LABEL_sha256 holding its SHA-256.
--
--     local layout = assert(unit_layout.new{ partitions = r.partitions,
--       table = list, table_name = "partitions.csv", name = "unit-%d.bin" })
--     layout:begin(key)                  -- before the unit's recipe runs
--     -- ... the recipe writes to layout.parts[i].partition ...
--     local files, row = layout:outputs(serial, key)

local nvsgen = require("nvsgen")
local crypto = require("nvsgen.crypto")
local flash = require("nvsgen.flash_files")
local files_mod = require("nvsgen.files")
local partition_table = require("nvsgen.partition_table")
local lfs = require("lfs")

local format, type, pairs, ipairs = string.format, type, pairs, ipairs
local sha256_hex, keys_partition = crypto.sha256_hex, crypto.keys_partition

local M = {}

local Layout = {}
Layout.__index = Layout

local PART_FIELDS = { label = "string", size = "number", offset = "number", version = "number",
  encrypt = "boolean" }

-- Columns of the manifest that name no partition.
local RESERVED = { serial = true, flash_args = true, merged = true, hex = true }

-- A label that can be part of a file name and a manifest column.
local function valid_label(label)
  return type(label) == "string" and label:match("^[%w_%-]+$") ~= nil and #label <= 16
end

-- The recipe's partitions as a list of field tables, checked.
local function partition_list(given)
  if type(given) ~= "table" then
    return nil, format("recipe field 'partitions' must be a table, got %s", type(given))
  end
  local list = {}
  if #given > 0 then
    for i, p in ipairs(given) do
      if type(p) ~= "table" then
        return nil, format("recipe partitions[%d] must be a table, got %s", i, type(p))
      end
      list[i] = p
    end
  else
    for label, p in pairs(given) do
      if type(label) ~= "string" or type(p) ~= "table" then
        return nil, "recipe field 'partitions': a list of tables, or tables by label, expected"
      end
      if p.label ~= nil and p.label ~= label then
        return nil, format("recipe partition '%s' says label '%s'", label, tostring(p.label))
      end
      local copy = { label = label }
      for k, v in pairs(p) do copy[k] = v end
      list[#list + 1] = copy
    end
    table.sort(list, function(a, b) return a.label < b.label end)
  end
  if #list == 0 then return nil, "recipe field 'partitions' lists no partition" end
  local seen = {}
  for i, p in ipairs(list) do
    for k, v in pairs(p) do
      local want = PART_FIELDS[k]
      if not want then
        return nil, format("recipe partitions[%d]: unknown field '%s'", i, tostring(k))
      elseif type(v) ~= want then
        return nil, format("recipe partitions[%d]: field '%s' must be a %s, got %s", i, k, want, type(v))
      end
    end
    local label = p.label
    if not valid_label(label) then
      return nil, format("recipe partitions[%d]: label must be 1 to 16 letters, digits, '_' or '-'", i)
    end
    if seen[label] then return nil, format("recipe partition '%s' is listed twice", label) end
    if RESERVED[label] or label:match("_sha256$") then
      return nil, format("recipe partition '%s': the label names a manifest column", label)
    end
    seen[label] = true
  end
  return list
end

-- The size and offset of `fields` (a recipe partition or the keys) from
-- the table entry `entry`, where the recipe's must agree.
local function place(part, fields, entry, table_name)
  if fields.size and fields.size ~= entry.size then
    return nil, format("recipe partition '%s': size 0x%X differs from 0x%X in %s", part.label, fields.size,
      entry.size, table_name)
  end
  if fields.offset and fields.offset ~= entry.offset then
    return nil, format("recipe partition '%s': offset 0x%X differs from 0x%X in %s", part.label,
      fields.offset, entry.offset, table_name)
  end
  part.size, part.offset = entry.size, entry.offset
  return true
end

local function check_size(label, size)
  if math.type(size) ~= "integer" or size < 0x1000 or size % 0x1000 ~= 0 then
    return nil, format("recipe partition '%s': size %s is not a multiple of 4096 (at least 0x1000)", label,
      tostring(size))
  end
  return true
end

-- Flash is erased by 4 KiB sectors: a partition starting inside one
-- would have esptool erase the end of whatever precedes it.
local function check_offset(label, offset)
  if offset ~= nil and (math.type(offset) ~= "integer" or offset < 0 or offset % 0x1000 ~= 0) then
    return nil, format("recipe partition '%s': offset %s is not a multiple of 4096", label,
      math.type(offset) == "integer" and format("0x%X", offset) or tostring(offset))
  end
  return true
end

-- The merged file is 0xFF between the unit's partitions: flashed, it
-- erases whatever lies there. Nil and a message when a partition of the
-- table the unit does not write (an app, phy_init, otadata) lies there.
local function merged_spares(sorted, tbl, table_name)
  local mine = {}
  for _, p in ipairs(sorted) do mine[p.label] = true end
  local low, high = sorted[1].offset, sorted[#sorted].offset
  for _, e in ipairs(tbl) do
    if not mine[e.name] and e.offset and e.size and e.offset < high and e.offset + e.size > low then
      return nil, format("--merged: %s:%d: partition '%s' (%s,%s at 0x%X) lies between the unit's partitions, and"
        .. " the merged file would erase it; flash with the unit's flash_args or --hex instead", table_name,
        e.line, e.name, e.type, e.subtype, e.offset)
    end
  end
  return true
end

--- Makes the layout of a unit. `opts`: `partitions` (the recipe's field;
-- nil for the single partition of `size` bytes, labelled `label` or
-- "nvs"), `size` and `version` (defaults for every partition),
-- `encrypt` (true: partitions encrypt unless they say `encrypt = false`),
-- `keys` (the keys partition's label, or { label =, offset = }), `table`
-- and `table_name` (a parsed partition table and its file), `inputkey`
-- (a keys file every unit shares), `name` (the file name pattern, default
-- "unit-%d.bin"), `prefix` (the output folder as the files are to be named
-- in the argument file, with its slash), `merged`, `hex`. Returns the
-- layout, or nil and a one-line message.
function M.new(opts)
  local list, err
  if opts.partitions ~= nil then
    list, err = partition_list(opts.partitions)
    if not list then return nil, err end
  else
    list = { { label = opts.label or "nvs" } }
  end
  local tbl, table_name = opts.table, opts.table_name or "partition table"
  local parts, by_label, encrypted = {}, {}, false
  for i, fields in ipairs(list) do
    local part = { label = fields.label, version = fields.version or opts.version or 2,
      size = fields.size or (opts.partitions == nil and opts.size) or nil, offset = fields.offset }
    if fields.encrypt ~= nil then part.encrypted = fields.encrypt else part.encrypted = opts.encrypt == true end
    encrypted = encrypted or part.encrypted
    if tbl then
      local entry
      entry, err = partition_table.lookup(tbl, part.label, "nvs", table_name)
      if not entry then return nil, err end
      local ok
      ok, err = place(part, { size = part.size, offset = part.offset }, entry, table_name)
      if not ok then return nil, err end
      if entry.size % 0x1000 ~= 0 or entry.size < 0x1000 then
        -- An NVS partition is a whole number of 4 KiB pages.
        return nil, format("%s:%d: partition '%s' is 0x%X bytes, not a multiple of 4096", table_name, entry.line,
          entry.name, entry.size)
      end
    end
    if not part.size then
      return nil, format("recipe partition '%s' has no size: give one, or a partition table", part.label)
    end
    local ok
    ok, err = check_size(part.label, part.size)
    if not ok then return nil, err end
    ok, err = check_offset(part.label, part.offset)
    if not ok then return nil, err end
    if part.version ~= 1 and part.version ~= 2 then
      return nil, format("recipe partition '%s': version must be 1 or 2", part.label)
    end
    local made
    made, part.partition = pcall(nvsgen.partition, { size = part.size, version = part.version })
    if not made then return nil, format("recipe partition '%s': %s", part.label, tostring(part.partition)) end
    parts[i], by_label[part.label] = part, part
  end

  -- The partitions by label, for the recipe's u:partition(label).
  local partitions = {}
  for _, p in ipairs(parts) do partitions[p.label] = p.partition end
  local layout = setmetatable({ parts = parts, by_label = by_label, partitions = partitions, encrypted = encrypted,
    name = opts.name or "unit-%d.bin", prefix = opts.prefix or "", merged = opts.merged,
    hex = opts.hex }, Layout)
  layout.stem = layout.name:gsub("%.bin$", "")

  if encrypted then
    local keys = opts.keys
    -- (A table without a label leaves the label to the default.)
    local label = keys
    if type(keys) == "table" then label = keys.label end
    local fields = type(keys) == "table" and keys or {}
    local kp = { label = label }
    if tbl then
      if not label then
        local found = partition_table.keys_partitions(tbl)
        if #found ~= 1 then
          return nil, format("%s: %s data,nvs_keys partition for the keys of the encrypted partitions%s",
            table_name, #found == 0 and "no" or "more than one", #found == 0 and "" or "; name one with 'keys'")
        end
        kp.label = found[1].name
      end
      local entry
      entry, err = partition_table.lookup(tbl, kp.label, "nvs_keys", table_name)
      if not entry then return nil, err end
      local ok
      ok, err = place(kp, fields, entry, table_name)
      if not ok then return nil, err end
      if kp.size < crypto.KEYS_PARTITION_SIZE then
        -- The keys page would run into whatever follows the partition.
        return nil, format("%s:%d: keys partition '%s' is 0x%X bytes; the keys page needs 0x%X", table_name,
          entry.line, kp.label, kp.size, crypto.KEYS_PARTITION_SIZE)
      end
    else
      kp.label = kp.label or "nvs_keys"
      kp.offset, kp.size = fields.offset, fields.size or crypto.KEYS_PARTITION_SIZE
      local ok
      ok, err = check_offset(kp.label, kp.offset)
      if not ok then return nil, err end
      if math.type(kp.size) ~= "integer" or kp.size < crypto.KEYS_PARTITION_SIZE then
        return nil, format("keys partition '%s': size %s; the keys page needs 0x%X", kp.label, tostring(kp.size),
          crypto.KEYS_PARTITION_SIZE)
      end
    end
    -- Its label names the unit's keys file and a manifest column, as a
    -- partition's does.
    if not valid_label(kp.label) then
      return nil, format("keys partition '%s': label must be 1 to 16 letters, digits, '_' or '-'", tostring(kp.label))
    end
    if by_label[kp.label] or RESERVED[kp.label] then
      return nil, format("keys partition '%s': the label is taken", kp.label)
    end
    if opts.inputkey then
      local data
      data, err = files_mod.read(opts.inputkey)
      if not data then return nil, err end
      local key
      key, err = crypto.parse_keys_partition(data)
      if not key then return nil, format("%s: %s", opts.inputkey, err) end
      kp.fixed, kp.data, layout.fixed_key = opts.inputkey, data, key
    end
    layout.keys = kp
  end

  -- esptool's argument file needs every offset; the merged and HEX files
  -- are made from it.
  local placed = true
  for _, p in ipairs(parts) do placed = placed and p.offset ~= nil end
  if layout.keys then placed = placed and layout.keys.offset ~= nil end
  layout.placed = placed
  if (opts.merged or opts.hex) and not placed then
    return nil, format("--%s needs every partition's offset: give a partition table", opts.merged and "merged" or "hex")
  end
  if placed then
    local check = {}
    for i, p in ipairs(parts) do check[i] = { label = p.label, offset = p.offset, size = p.size, data = "" } end
    if layout.keys then
      check[#check + 1] = { label = layout.keys.label, offset = layout.keys.offset, size = layout.keys.size,
        data = "" }
    end
    local sorted
    sorted, err = flash.check(check)
    if not sorted then return nil, err end
    if opts.merged and tbl then
      local ok
      ok, err = merged_spares(sorted, tbl, table_name)
      if not ok then return nil, err end
    end
  end
  return layout
end

--- True when units need a key of their own (encrypted partitions, no
-- shared keys file).
function Layout:keygen()
  return self.encrypted and not self.fixed_key
end

--- The manifest's columns for the unit's files (`serial` first; the
-- exported values follow them).
function Layout:columns()
  local cols = { "serial" }
  local function add(name)
    cols[#cols + 1] = name
    cols[#cols + 1] = name .. "_sha256"
  end
  for _, p in ipairs(self.parts) do add(p.label) end
  if self.keys then add(self.keys.label) end
  if self.placed then add("flash_args") end
  if self.merged then add("merged") end
  if self.hex then add("hex") end
  return cols
end

--- The names of the files unit `serial` is written as (in the manifest's
-- order), without the ones it shares with other units (--inputkey).
function Layout:file_names(serial)
  local stem = format(self.stem, serial)
  local names = {}
  for i, p in ipairs(self.parts) do names[i] = stem .. "-" .. p.label .. ".bin" end
  if self.keys and not self.keys.fixed then names[#names + 1] = stem .. "-" .. self.keys.label .. ".bin" end
  if self.placed then names[#names + 1] = stem .. ".flash_args" end
  if self.merged then names[#names + 1] = stem .. ".merged.bin" end
  if self.hex then names[#names + 1] = stem .. ".hex" end
  return names
end

-- The names a unit's record holds, in its order (the shared keys file
-- as given).
local function row_names(self, serial)
  local stem = format(self.stem, serial)
  local names = {}
  for i, p in ipairs(self.parts) do names[i] = stem .. "-" .. p.label .. ".bin" end
  if self.keys then names[#names + 1] = self.keys.fixed or stem .. "-" .. self.keys.label .. ".bin" end
  if self.placed then names[#names + 1] = stem .. ".flash_args" end
  if self.merged then names[#names + 1] = stem .. ".merged.bin" end
  if self.hex then names[#names + 1] = stem .. ".hex" end
  return names
end

local HINT = "run with the same options, use another --outdir, or --force to make the units again"

-- The text of unit `serial`'s argument file: it depends only on the
-- offsets, the file names and the prefix, not on the unit's data.
local function flash_args_text(self, serial)
  local stem = format(self.stem, serial)
  local placed = {}
  for i, p in ipairs(self.parts) do
    placed[i] = { label = p.label, name = self.prefix .. stem .. "-" .. p.label .. ".bin", offset = p.offset,
      size = p.size, data = "" }
  end
  local kp = self.keys
  if kp then
    placed[#placed + 1] = { label = kp.label, name = kp.fixed or self.prefix .. stem .. "-" .. kp.label .. ".bin",
      offset = kp.offset, size = kp.size, data = "" }
  end
  return flash.flash_args(placed)
end

-- The bytes of a recorded file, final or still pending, or nil; only a
-- regular file is read (a link or FIFO planted there is for the batch's
-- own checks to refuse, not to be followed here).
local function recorded_file(self, name)
  for _, path in ipairs({ self.prefix .. name, self.prefix .. name .. ".part" }) do
    if lfs.symlinkattributes(path, "mode") == "file" then return files_mod.read(path) end
  end
end

-- The first line where two argument files differ, as "A, this run gives B".
local function first_difference(was, now)
  local a, b = {}, {}
  for line in was:gmatch("[^\n]+") do a[#a + 1] = line end
  for line in now:gmatch("[^\n]+") do b[#b + 1] = line end
  for i = 1, math.max(#a, #b) do
    if a[i] ~= b[i] then
      return format("'%s', this run gives '%s'", a[i] or "", b[i] or "")
    end
  end
end

--- A check for the manifest's records (nvsgen.manifest): nil, or what
-- differs between a record and this layout: the file names; the argument
-- file (the offsets of the table, and the output folder as the files are
-- named in it); and, for the first record whose images are at hand, each
-- image's size and NVS version.
function Layout:record_check()
  local images_checked = false
  return function(fields)
    local serial = tonumber(fields[1])
    local names = row_names(self, serial)
    for i, name in ipairs(names) do
      if fields[2 * i] ~= name then
        return format("unit %d was made with %s, this run gives %s; %s", serial, fields[2 * i], name, HINT)
      end
    end
    local kp = self.keys
    if kp and kp.fixed and fields[2 * #self.parts + 3] ~= sha256_hex(kp.data) then
      -- One batch, one shared key: its units must all open with it.
      return format("unit %d was made with other keys than %s holds now; %s", serial, kp.fixed, HINT)
    end
    if self.placed then
      local i = #self.parts + (kp and 1 or 0) + 1
      local text = flash_args_text(self, serial)
      if text and fields[2 * i + 1] ~= sha256_hex(text) then
        local was = recorded_file(self, names[i])
        local diff = was and first_difference(was, text)
        return format("unit %d: its %s %s; %s", serial, names[i],
          diff and "says " .. diff or "differs from this run's (other offsets or output folder)", HINT)
      end
    end
    if not images_checked then
      for i, p in ipairs(self.parts) do
        local image = recorded_file(self, names[i])
        if not image then break end
        if i == #self.parts then images_checked = true end
        -- The page header's version byte (0xFE: version 2, 0xFF: version 1)
        -- is not encrypted.
        local v = #image >= 9 and ({ [0xFE] = 2, [0xFF] = 1 })[image:byte(9)]
        -- (Under 0x3000 bytes an image holds only the pages it uses.)
        if #image ~= p.size and not (p.size < 0x3000 and #image <= p.size) then
          return format("unit %d: %s is 0x%X bytes, this run's partition '%s' 0x%X; %s", serial, names[i], #image,
            p.label, p.size, HINT)
        elseif v and v ~= p.version then
          return format("unit %d: %s was made with version %d, this run's partition '%s' asks for %d; %s", serial,
            names[i], v, p.label, p.version, HINT)
        end
      end
    end
  end
end

--- The argument file's name for unit `serial`, or nil when offsets are
-- not all known.
function Layout:flash_args_name(serial)
  return self.placed and format(self.stem, serial) .. ".flash_args" or nil
end

--- Readies every partition for the next unit: emptied, and the encrypted
-- ones given the unit's key (`key`, or the shared one).
function Layout:begin(key)
  key = key or self.fixed_key
  for _, p in ipairs(self.parts) do
    p.partition:reset()
    if p.encrypted then p.partition:set_key(key) end
  end
end

--- The files of unit `serial` once its recipe ran, with `key` (the
-- unit's, or nil with a shared keys file): a list of { name, data, mode }
-- in the manifest's order, and the manifest row's fields after the serial
-- (name and SHA-256 per file, the shared keys file included). Returns
-- nil and a message if the images do not fit their partitions' flash.
function Layout:outputs(serial, key)
  local stem = format(self.stem, serial)
  local out, row, placed = {}, {}, {}
  local prefix = self.prefix
  local secret = false
  local function add(name, data, mode, offset, size, label, shared)
    if not shared then out[#out + 1] = { name = name, data = data, mode = mode } end
    row[#row + 1] = name
    row[#row + 1] = sha256_hex(data)
    if offset then
      placed[#placed + 1] = { label = label, name = shared and name or prefix .. name, offset = offset,
        size = size, data = data }
    end
  end
  for _, p in ipairs(self.parts) do
    add(stem .. "-" .. p.label .. ".bin", p.partition:image(), 420, p.offset, p.size, p.label)
  end
  local kp = self.keys
  if kp then
    if kp.fixed then
      add(kp.fixed, kp.data, 384, kp.offset, kp.size, kp.label, true)
    else
      if not key then return nil, "no key for the keys partition" end
      add(stem .. "-" .. kp.label .. ".bin", keys_partition(key), 384, kp.offset, kp.size, kp.label)
    end
    secret = true
  end
  if self.placed then
    local text, err = flash.flash_args(placed)
    if not text then return nil, err end
    add(stem .. ".flash_args", text, 420)
    -- The merged and HEX files hold the keys partition too: as secret.
    local mode = secret and 384 or 420
    if self.merged then add(stem .. ".merged.bin", assert(flash.merged(placed)), mode) end
    if self.hex then add(stem .. ".hex", assert(flash.intel_hex(placed)), mode) end
  end
  return out, row
end

--- What a batch does with unit `serial`: "build" it, "skip" it (done),
-- or "finish" it (recorded, killed before all its files were renamed
-- into place: the list of pending names is the second value). `recorded`:
-- the manifest has its row; `exists(name)` tells whether a file is in
-- the output folder; `force`: files not recorded may be overwritten;
-- `shown` turns a name into the path to show, `manifest` the manifest's
-- name. Returns nil and a message when the folder is not as the manifest
-- says.
function Layout:status(serial, recorded, exists, force, shown, manifest)
  local names = self:file_names(serial)
  if recorded then
    local pending = {}
    for _, name in ipairs(names) do
      if exists(name .. ".part") then
        pending[#pending + 1] = name
      elseif not exists(name) then
        return nil, format("unit %d: recorded in %s but %s is missing; use --force to build it again", serial,
          manifest, shown(name))
      end
    end
    if #pending > 0 then return "finish", pending end
    if force then return "build" end
    return "skip"
  end
  if not force then
    for _, name in ipairs(names) do
      if exists(name) then
        return nil, format("unit %d: %s already exists and is not in %s; use --force to overwrite it", serial,
          shown(name), manifest)
      end
    end
  end
  return "build"
end

M.Layout = Layout

return M
