--- nvsgen.staging: a unit's files written under pending names, put in place once it is recorded.
--
-- Every file is created new (O_EXCL: never through a planted link, never
-- over a file someone else made), keys files 0600 from the first byte.
-- A group of units is committed in this order: everything written so far
-- is put on the disk, then the group's manifest records are appended (and
-- put on the disk), then the pending files are renamed to their names,
-- refusing a name someone else took in the meantime. So a file exists
-- under its name only once its unit is recorded, and a power cut, a kill
-- or a full disk leaves at most pending files, which the next run either
-- completes (recorded units) or removes and makes afresh.

local lfs = require("lfs")
local core = require("nvsgen.core")

local format = string.format
local lstat = lfs.symlinkattributes
local write_keys, write_file = core.write_keys, core.write_file

local M = {}

M.PENDING = ".part"
M.IMAGE_MODE = 420 -- 0644
M.KEYS_MODE = 384 -- 0600
M.ENOSPC, M.EDQUOT = 28, 122

local Stage = {}
Stage.__index = Stage

--- A stage for the files of one batch in `folder` (core.folder), named in
-- messages with `prefix`; `manifest` (nvsgen.manifest) takes the records.
-- With `replace` (--force) names are taken over.
function M.new(folder, prefix, manifest, replace)
  return setmetatable({ folder = folder, prefix = prefix, manifest = manifest, replace = replace,
    pending = {}, finals = {}, lines = {}, ends = {}, units = 0, files = 0 }, Stage)
end

--- A unit's files: image name, keys file name (or nil) and CSV name (or
-- nil), as a list with the image last (it is what marks a unit done).
function M.names(image, keygen, want_csv)
  local stem = image:sub(1, -5)
  local list = {}
  if keygen then list[#list + 1] = stem .. "-keys.bin" end
  if want_csv then list[#list + 1] = stem .. ".csv" end
  list[#list + 1] = image
  return list, stem
end

--- What to do for unit `serial` whose files are `names` (M.names):
-- "skip" (recorded and in place), "finish" (recorded, pending files
-- renamed now), "build"; or nil and a message. `recorded` says whether the
-- manifest holds the unit; `image_size` is the size a complete image has.
function Stage:status(serial, names, recorded, image_size)
  local prefix, folder = self.prefix, self.folder
  local image = names[#names]
  if recorded then
    local finished = false
    for _, name in ipairs(names) do
      local part = name .. M.PENDING
      local st = lstat(prefix .. part)
      if st then
        -- Only a file the batch made: plain, one link, complete.
        if st.mode ~= "file" or st.nlink ~= 1 or name == image and image_size and st.size ~= image_size then
          return nil, format("unit %d: %s is not the batch's own (a link, or not the recorded file);"
            .. " remove it and run again", serial, prefix .. part)
        end
        local ok, err = folder:rename_new(part, name, self.replace)
        if not ok then return nil, format("unit %d: %s", serial, err) end
        finished = true
      end
    end
    -- A unit recorded is done only with every one of its files in place.
    for k = #names, 1, -1 do
      if not lstat(prefix .. names[k]) then
        return nil, format("unit %d: recorded in %s but %s is missing; use --force to build it again",
          serial, self.manifest.path:match("[^/]*$"), prefix .. names[k])
      end
    end
    return finished and "finish" or "skip"
  end
  for _, name in ipairs(names) do
    if not self.replace and lstat(prefix .. name) then
      return nil, format("unit %d: %s already exists and is not in %s; use --force to overwrite it",
        serial, prefix .. name, self.manifest.path:match("[^/]*$"))
    end
  end
  for _, name in ipairs(names) do
    local ok, err = folder:remove(name .. M.PENDING)
    if not ok then return nil, format("unit %d: %s", serial, err) end
  end
  return "build"
end

--- Writes a unit's pending files: `key` (a key per unit, or nil), `csv`
-- (the CSV text, or nil), the image from `partition`; the unit's manifest
-- record is made of `fields` (serial, image, -, -, keys file: the image's
-- size and SHA-256 are filled in here) and `exported` (Manifest:record).
-- Returns the bytes the unit takes on the disk, or nil, message, errno
-- (its pending files removed).
function Stage:stage(names, partition, key, csv, fields, exported)
  local folder, n, i = self.folder, #names, 1
  local bytes = 0
  if key then
    local ok, err, code = write_keys(names[i] .. M.PENDING, key, "new", folder)
    if not ok then return self:unstage(names, err, code) end
    i = i + 1
    bytes = bytes + 4096
  end
  if csv then
    -- Every value of the unit in clear (private keys, passwords), encrypted
    -- batch or not: readable by its owner only, as keys files.
    local ok, err, code = write_file(names[i] .. M.PENDING, csv, M.KEYS_MODE, false, folder)
    if not ok then return self:unstage(names, err, code) end
    bytes = bytes + #csv
  end
  local image_pending = names[n] .. M.PENDING
  local size, hash, code = partition:write_image(image_pending, "new", M.IMAGE_MODE, true, folder)
  if not size then return self:unstage(names, hash, code) end
  fields[3], fields[4] = size, hash
  local record = self.manifest:record(fields, exported)
  local pending, finals, files = self.pending, self.finals, self.files
  for k = 1, n - 1 do
    files = files + 1
    pending[files], finals[files] = names[k] .. M.PENDING, names[k]
  end
  files = files + 1
  pending[files], finals[files] = image_pending, names[n]
  self.files = files
  self.units = self.units + 1
  self.lines[self.units] = record
  self.ends[self.units] = files
  return bytes + size + #record
end

--- Writes the pending files of a unit made of several (nvsgen.unit_layout):
-- `files`, a list of { name, data, mode } (`names` the same names);
-- `record` is the unit's manifest record. Returns the bytes the unit takes
-- on the disk, or nil, message, errno (its pending files removed).
function Stage:stage_files(names, files, record)
  local folder, bytes = self.folder, #record
  for _, f in ipairs(files) do
    local ok, err, code = write_file(f.name .. M.PENDING, f.data, f.mode, "new", folder)
    if not ok then return self:unstage(names, err, code) end
    bytes = bytes + #f.data
  end
  local pending, finals, n = self.pending, self.finals, self.files
  for _, f in ipairs(files) do
    n = n + 1
    pending[n], finals[n] = f.name .. M.PENDING, f.name
  end
  self.files = n
  self.units = self.units + 1
  self.lines[self.units] = record
  self.ends[self.units] = n
  return bytes
end

-- Removes the pending files of a unit that failed half-way.
function Stage:unstage(names, err, code)
  for _, name in ipairs(names) do self.folder:remove(name .. M.PENDING) end
  return nil, err, code
end

--- Commits the staged units (see the module comment). Returns the number
-- committed (and, when a full disk left room for only some, a message and
-- ENOSPC), or nil, message, errno; the units not recorded have no file left.
function Stage:commit()
  local units = self.units
  if units == 0 then return 0 end
  local staged = units
  local folder = self.folder
  local ok, err, code = folder:sync()
  if ok then ok, err, code = self.manifest:append(table.concat(self.lines, "", 1, units)) end
  -- On a full disk the newest units make room for the records of the
  -- others (their files removed; the rerun makes them).
  while not ok and M.is_full(code) and units > 1 do
    for k = self.ends[units - 1] + 1, self.ends[units] do folder:remove(self.pending[k]) end
    units = units - 1
    self.files = self.ends[units]
    ok, err, code = folder:sync()
    if ok then ok, err, code = self.manifest:append(table.concat(self.lines, "", 1, units)) end
  end
  if not ok then
    for k = 1, self.files do folder:remove(self.pending[k]) end
    self.units, self.files = 0, 0
    return nil, err, code
  end
  local pending, finals, replace = self.pending, self.finals, self.replace
  for k = 1, self.files do
    ok, err, code = folder:rename_new(pending[k], finals[k], replace)
    if not ok then
      -- Recorded, pending under its name: a rerun completes what it can.
      self.units, self.files = 0, 0
      if code == 17 then
        err = format("%s%s already exists and is not the batch's own; remove it and run again",
          self.prefix, finals[k])
      end
      return nil, err, code
    end
  end
  self.units, self.files = 0, 0
  if units < staged then return units, "disk full", M.ENOSPC end
  return units
end

--- Drops the staged units without recording them (their files removed).
function Stage:discard()
  for k = 1, self.files do self.folder:remove(self.pending[k]) end
  self.units, self.files = 0, 0
end

--- True for the errno of a full disk or quota.
function M.is_full(code)
  return code == M.ENOSPC or code == M.EDQUOT
end

return M
