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

local M = {}

M.PENDING = ".part"
M.IMAGE_MODE = 420 -- 0644
M.KEYS_MODE = 384 -- 0600
M.ENOSPC, M.EDQUOT = 28, 122

local Stage = {}
Stage.__index = Stage

--- A stage for the files of one batch in `folder` (core.folder), named in
-- messages with `prefix`; `manifest` (nvsgen.manifest) takes the records.
-- With `replace` (--force) names are taken over. The names and records
-- of the units staged are kept in C: `staged` (core.stage), whose image
-- method the batch's hot path calls itself (Stage:image says what it does).
function M.new(folder, prefix, manifest, replace)
  return setmetatable({ folder = folder, prefix = prefix, manifest = manifest, replace = replace,
    staged = core.stage(folder) }, Stage)
end

--- The name of the keys file (--keygen) of the unit whose image is `image`.
function M.keys_name(image)
  return image:sub(1, -5) .. "-keys.bin"
end

--- A unit's files: image name, keys file name (or nil) and CSV name (or
-- nil), as a list with the image last (it is what marks a unit done).
function M.names(image, keygen, want_csv)
  local stem = image:sub(1, -5)
  local list = {}
  if keygen then list[#list + 1] = M.keys_name(image) end
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
-- (the CSV text, or nil), the image from `partition`, and stages its
-- manifest record: serial, image, size, SHA-256, `keys_name`, then the
-- values of `exported` in the manifest's columns. Returns true, or nil,
-- message, errno (its pending files removed), or false and an export that
-- is not a column of the manifest (nothing written).
function Stage:stage(names, partition, key, csv, serial, keys_name, exported)
  local i = 1
  if key then
    local ok, err, code = self:keys(names[i], key)
    if not ok then return ok, err, code end
    i = i + 1
  end
  if csv then
    -- Every value of the unit in clear (private keys, passwords), encrypted
    -- batch or not: readable by its owner only, as keys files.
    local ok, err, code = self.staged:file(names[i], csv, M.KEYS_MODE)
    if not ok then return self:unstage(err, code) end
  end
  local units, err, code = self:image(partition.encoder, names[#names], partition.xts, serial, keys_name,
    exported)
  if not units then return units, err, code end
  return true
end

--- Writes the unit's keys file `name` for `key` (the first of its files).
-- true, or nil, message, errno (the unit's pending files removed).
function Stage:keys(name, key)
  local ok, err, code = self.staged:keys(name, key)
  if not ok then return self:unstage(err, code) end
  return true
end

--- Ends the unit with its image, from `encoder` (encrypted with `xts`, or
-- not), written as `name`, and its record (Stage:stage). Returns the
-- number of units staged; or nil, message, errno, or false and an export
-- that is not a column (the unit's pending files removed).
function Stage:image(encoder, name, xts, serial, keys_name, exported)
  return self.staged:image(encoder, name, xts, serial, keys_name, exported, self.manifest.columns)
end

--- The number of units staged.
function Stage:units()
  return self.staged:units()
end

--- Writes the pending files of a unit made of several (nvsgen.unit_layout):
-- `files`, a list of { name, data, mode }; `record` is the unit's manifest
-- record. Returns true, or nil, message, errno (its pending files removed).
function Stage:stage_files(files, record)
  local staged = self.staged
  for _, f in ipairs(files) do
    local ok, err, code = staged:file(f.name, f.data, f.mode)
    if not ok then return self:unstage(err, code) end
  end
  staged:record(record)
  return true
end

-- Removes the pending files of a unit that failed half-way.
function Stage:unstage(err, code)
  self.staged:abandon()
  return nil, err, code
end

--- Commits the staged units (see the module comment). Returns the number
-- committed (and, when a full disk left room for only some, a message and
-- ENOSPC), or nil, message, errno; the units not recorded have no file left.
function Stage:commit()
  local staged = self.staged
  local units = staged:units()
  if units == 0 then return 0 end
  local folder = self.folder
  local ok, err, code = folder:sync()
  if ok then ok, err, code = self.manifest:append(staged:records(units)) end
  -- On a full disk the newest units make room for the records of the
  -- others (their files removed; the rerun makes them).
  local dropped = 0
  while not ok and M.is_full(code) and units > 1 do
    staged:drop_newest()
    units, dropped = units - 1, dropped + 1
    ok, err, code = folder:sync()
    if ok then ok, err, code = self.manifest:append(staged:records(units)) end
  end
  if not ok then
    staged:discard()
    return nil, err, code
  end
  local name
  ok, err, code, name = staged:put_in_place(self.replace)
  if not ok then
    -- Recorded, pending under its name: a rerun completes what it can.
    if code == 17 then
      err = format("%s%s already exists and is not the batch's own; remove it and run again", self.prefix, name)
    end
    return nil, err, code
  end
  if dropped > 0 then return units, "disk full", M.ENOSPC end
  return units
end

--- Drops the staged units without recording them (their files removed).
function Stage:discard()
  self.staged:discard()
end

--- True for the errno of a full disk or quota.
function M.is_full(code)
  return code == M.ENOSPC or code == M.EDQUOT
end

return M
