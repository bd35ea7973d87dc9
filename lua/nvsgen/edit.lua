--- nvsgen.edit: a partition made from an existing image (a returned unit's
-- NVS), whose items can be changed, added and removed before it is
-- written again as a fresh image.
--
--     local p = assert(nvsgen.from_image("old.bin"))      -- [, key [, read options]]
--     p:namespace("mass_prod"):u8("HwRev", 4)                -- changes the item in place
--     p:string("Note", "refurbished")                       -- adds one
--     p:remove("mass_prod", "Cert")                          -- removes one
--     assert(p:write("new.bin"))
--
-- The items are those the firmware returns, in the order it finds them;
-- each keeps its namespace, type and value unless changed, and the image
-- is laid out as the generators lay out a fresh one (a changed item stays
-- in its place in that order; a new one comes last). An encrypted image
-- read with a key is written encrypted with the same key.

local reader = require("nvsgen.reader")
local export = require("nvsgen.export")
local pages = require("nvsgen.pages")

local M = {}

--- Returns from_image for the partition API `nvsgen` (its `partition`
-- constructor, `Partition` class and `KINDS`), which requires this module:
-- passed in rather than required, so no module cycle.
function M.install(nvsgen)
  local Partition = nvsgen.Partition
  local Edited = setmetatable({}, { __index = Partition })
  Edited.__index = Edited
  Edited.__tostring = Partition.__tostring

  --- Builds the encoder again from the list of items.
  local function replay(self)
    local enc = self.encoder
    enc:reset()
    local current
    for _, e in ipairs(self.log) do
      if e.ns ~= current or e.kind == nil then
        local ok, err = enc:namespace(e.ns)
        if not ok then return nil, err end
        current = e.ns
      end
      if e.kind then
        local ok, err = Partition.put(self, e.kind, e.key, e.value)
        if not ok then return nil, err end
      end
    end
    if self.current and self.current ~= current then enc:namespace(self.current) end
    return true
  end

  local function find(self, ns, key)
    for i, e in ipairs(self.log) do
      if e.kind and e.ns == ns and e.key == key then return i end
    end
  end

  --- Adds or changes an item without raising: true, or nil and a message
  -- (the partition then unchanged).
  function Edited:put(kind, key, value)
    if not self.current then return nil, ("key '%s': no namespace selected"):format(tostring(key)) end
    local i = type(key) == "string" and find(self, self.current, key)
    if not i then
      local ok, err = Partition.put(self, kind, key, value)
      if not ok then return nil, err end
      self.log[#self.log + 1] = { ns = self.current, kind = kind, key = key, value = value }
      return true
    end
    local old = self.log[i]
    self.log[i] = { ns = old.ns, kind = kind, key = key, value = value }
    local ok, err = replay(self)
    if not ok then
      self.log[i] = old
      assert(replay(self))
      return nil, err
    end
    return true
  end

  for _, kind in ipairs(nvsgen.KINDS) do
    Edited[kind] = function(self, key, value)
      local ok, err = Edited.put(self, kind, key, value)
      if not ok then error(err, 2) end
      return self
    end
  end

  function Edited:namespace(name)
    Partition.namespace(self, name) -- raises at a bad name
    local known = false
    for _, e in ipairs(self.log) do known = known or e.ns == name end
    if not known then self.log[#self.log + 1] = { ns = name } end
    self.current = name
    return self
  end

  --- Removes the item `key` of namespace `ns`; raises when there is none.
  function Edited:remove(ns, key)
    local i = find(self, ns, key)
    if not i then error(("namespace '%s' holds no key '%s'"):format(tostring(ns), tostring(key)), 2) end
    table.remove(self.log, i)
    assert(replay(self))
    return self
  end

  --- True when namespace `ns` holds `key`.
  function Edited:has(ns, key)
    return find(self, ns, key) ~= nil
  end

  function Edited:reset()
    self.log, self.current = {}, nil
    return Partition.reset(self)
  end

  --- A partition holding what the image at `source` (bytes or path;
  -- `key` and `opts` as nvsgen.read takes them) holds. Returns it, or nil
  -- and a message when the image cannot be read.
  return function(source, key, opts)
    local r, err = reader.read(source, key, opts)
    if not r then return nil, err end
    -- without its key an encrypted image reads as empty: writing that
    -- would lose every item, so it is refused
    local encrypted = not r.encrypted and pages.looks_encrypted(r.image)
    if encrypted then return nil, encrypted .. ": give its key" end
    local size, version = export.layout(r)
    local p = nvsgen.partition{ size = size, version = version }
    if r.key then p:set_key(r.key) end
    p = setmetatable(p, Edited)
    p.log = {}
    for _, e in ipairs(export.events(r)) do
      if e.ns then
        p:namespace(e.ns.name)
      else
        local item = e.item
        p.current = item.namespace
        local known = false
        for _, l in ipairs(p.log) do known = known or l.ns == item.namespace end
        if not known then p.log[#p.log + 1] = { ns = item.namespace } end
        p.log[#p.log + 1] = { ns = item.namespace, kind = item.type, key = item.key, value = item.value }
      end
    end
    p.current = nil
    local ok
    ok, err = replay(p)
    if not ok then return nil, err end
    return p
  end
end

return M
