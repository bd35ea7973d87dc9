--- nvsgen.pages: the page model of an NVS image (headers, entry-state
-- bitmaps, 32-byte entry slots) that nvs_tool's dumps and checks and the
-- key checks of decryption all read.

local core = require("nvsgen.core")

local byte, sub, concat, fmt = string.byte, string.sub, table.concat, string.format
local unpack = string.unpack
local crc32 = core.crc32

local M = {}

local PAGE, ENTRY, ENTRIES = 4096, 32, 126
M.PAGE, M.ENTRY, M.ENTRIES = PAGE, ENTRY, ENTRIES

-- ---- the slots: what every view of the pages reads --------------------------

--- The 2-bit state of entry `i` of the page at byte offset `base`, from
-- the page's bitmap (3 empty, 2 written, 0 erased, 1 illegal).
function M.slot_state(image, base, i)
  return (byte(image, base + 33 + (i >> 2)) >> (2 * (i & 3))) & 3
end

--- The CRC an entry's header stores (bytes 4-7) and the one computed over
-- its bytes 0-3 and 8-31, for the entry at byte offset `at`.
function M.entry_crcs(image, at)
  return unpack("<I4", image, at + 5), crc32(sub(image, at + 1, at + 4) .. sub(image, at + 9, at + 32))
end

-- ---- the raw view nvs_tool.py prints ---------------------------------------
--
-- Every slot as nvs_tool.py models it: a top-level entry takes the next
-- span - 1 slots as its data (cut at the page end), whatever the bitmap says.

M.PAGE_STATUS = {
  [0xFFFFFFFF] = "Empty", [0xFFFFFFFE] = "Active", [0xFFFFFFFC] = "Full",
  [0xFFFFFFF8] = "Erasing", [0x00000000] = "Corrupted",
}
local ENTRY_STATE = { [3] = "Empty", [2] = "Written", [0] = "Erased", [1] = "Invalid" }
M.TYPE_NAME = {
  [0x01] = "uint8_t", [0x11] = "int8_t", [0x02] = "uint16_t", [0x12] = "int16_t",
  [0x04] = "uint32_t", [0x14] = "int32_t", [0x08] = "uint64_t", [0x18] = "int64_t",
  [0x24] = "float", [0x28] = "double",
  [0x21] = "string", [0x41] = "blob", [0x42] = "blob_data", [0x48] = "blob_index",
}
M.KNOWN_TYPE = {}
for _, name in pairs(M.TYPE_NAME) do M.KNOWN_TYPE[name] = true end
local VAR_TYPES = { string = true, blob = true, blob_data = true }

local function all_ff(s)
  return not s:find("[^\255]")
end

-- A u64 above 2^63-1 as the digits Python prints.
local function u64_text(v)
  if v >= 0 then return v end
  local q = (v >> 1) // 5
  return fmt("%d%d", q, v - q * 10)
end

-- The children of a one-slot entry: one shared empty list (read-only).
local NO_CHILDREN = setmetatable({}, { __newindex = function() error("nvsgen.pages: entries are read-only", 2) end })

--- One top-level slot. `span` is the byte as stored (shown and checked as
-- nvs_tool.py does); `walk` the slots it takes.
local function parse_entry(raw, index, state, crc, crc_computed)
  local e = { raw = raw, index = index, state = state, is_empty = all_ff(raw), children = NO_CHILDREN }
  local t = byte(raw, 2)
  e.ns, e.type_code, e.span, e.chunk_index = byte(raw, 1), t, byte(raw, 3), byte(raw, 4)
  e.type = M.TYPE_NAME[t] or fmt("0x%02x", t)
  e.walk = (e.span == 0 or e.span == 0xFF) and 1 or e.span
  e.crc, e.crc_computed, e.data_crc = crc, crc_computed, unpack("<I4", raw, 29)
  e.data_computed = 0
  local key = raw:sub(9, 24):gsub("%z+$", "")
  if not key:find("[\128-\255]") then e.key = key end
  if e.key then
    if t < 0x20 and M.TYPE_NAME[t] then
      local size, signed = t & 0xF, t & 0xF0 ~= 0
      e.value = unpack((signed and "<i" or "<I") .. size, raw, 25)
      if size == 8 and not signed then e.value = u64_text(e.value) end
    elseif t == 0x24 then
      e.value = unpack("<f", raw, 25)
    elseif t == 0x28 then
      e.value = unpack("<d", raw, 25)
    elseif VAR_TYPES[e.type] then
      e.size = unpack("<I2", raw, 25)
    elseif t == 0x48 then
      e.size, e.chunk_count, e.chunk_start = unpack("<I4BB", raw, 25)
    end
  end
  return e
end

--- The data CRC nvs_tool.py computes: over the data slots, cut to the
-- item's size when it has one.
local function finish_entry(e)
  if e.walk == 1 then return end
  local data = {}
  for k, c in ipairs(e.children) do data[k] = c.raw end
  data = concat(data)
  if e.size and e.size > 0 then data = data:sub(1, e.size) end
  if VAR_TYPES[e.type] then e.data = data end
  e.data_computed = crc32(data)
end

local BLANK = ("\255"):rep(ENTRY)
local blank_slots = {}

--- Page `n` (from 0) of a plain image, parsed. Entries are shared
-- between pages where they are alike: treat them as read-only.
function M.parse_page(image, n)
  local base = n * PAGE
  local header = image:sub(base + 1, base + 32)
  local p = {
    number = n, address = base, header = header, is_empty = all_ff(header),
    status_word = unpack("<I4", header, 1), page_index = unpack("<I4", header, 5),
    version = 256 - byte(header, 9), crc = unpack("<I4", header, 29),
    crc_computed = crc32(header:sub(5, 28)),
    bitmap = image:sub(base + 33, base + 64), entries = {},
  }
  p.status = M.PAGE_STATUS[p.status_word] or "Invalid"
  local function slot(i)
    local at = base + 64 + i * ENTRY
    return image:sub(at + 1, at + ENTRY), ENTRY_STATE[M.slot_state(image, base, i)], at
  end
  local i = 0
  while i < ENTRIES do
    local raw, state, at = slot(i)
    local e
    if raw == BLANK and state == "Empty" then
      -- Blank slots are alike but for their index, and nothing changes
      -- them once parsed: one table per index serves every page.
      e = blank_slots[i] or parse_entry(raw, i, state, M.entry_crcs(image, at))
      blank_slots[i] = e
    else
      e = parse_entry(raw, i, state, M.entry_crcs(image, at))
    end
    if e.walk > 1 then e.children = {} end
    for c = i + 1, math.min(i + e.walk - 1, ENTRIES - 1) do
      local child, child_state = slot(c)
      e.children[#e.children + 1] = { raw = child, index = c, state = child_state }
    end
    finish_entry(e)
    p.entries[#p.entries + 1] = e
    i = i + e.walk
  end
  return p
end

--- How many whole pages the image holds.
function M.page_count(image)
  return #image // PAGE
end

--- Iterates over the pages of a plain image, parsing each when reached:
-- a caller that keeps none holds one page at a time, whatever the size.
function M.each(image)
  local n, count = -1, #image // PAGE
  return function()
    n = n + 1
    if n < count then return M.parse_page(image, n) end
  end
end

--- The pages of a plain image, whole pages only, as a list (see parse_page).
function M.parse(image)
  local pages = {}
  for p in M.each(image) do pages[#pages + 1] = p end
  return pages
end

local WRITTEN = 2

--- Namespace index -> name, and the indices in the order first defined,
-- from the written entries of namespace 0 of a plain image, page by page.
function M.namespace_map(image)
  local map, order = {}, {}
  for p in M.each(image) do
    for _, e in ipairs(p.entries) do
      if e.state == "Written" and e.ns == 0 and e.value ~= nil then
        if map[e.value] == nil then order[#order + 1] = e.value end
        map[e.value] = e.key == nil and "None" or e.key
      end
    end
  end
  return map, order
end

-- ---- the key check: item headers as the firmware's loader walks them --------

--- Checks the item headers of a plain image: returns how many fail their
-- CRC and how many written entries were checked as headers (an entry whose
-- CRC fails is taken as a one-entry item). A header's CRC covers its bytes
-- 0-3 and 8-31.
function M.check_items(image)
  local failed, checked = 0, 0
  for offset = 0, #image - 4096, 4096 do
    local i = 0
    while i < ENTRIES do
      if M.slot_state(image, offset, i) == WRITTEN then
        local at = offset + 64 + ENTRY * i
        local stored, computed = M.entry_crcs(image, at)
        checked = checked + 1
        local span = 1
        if computed == stored then
          span = byte(image, at + 3)
          if span < 1 or i + span > ENTRIES then span = 1 end
        else
          failed = failed + 1
        end
        i = i + span
      else
        i = i + 1
      end
    end
  end
  return failed, checked
end

--- The rule for a wrong key, the same for decryption and reading: a wrong
-- key garbles every item header, damage only some. With the right key and
-- one damaged entry, the others still pass their CRC; a wrong key makes
-- one pass by chance once in 2^32. Returns the message, or nil when the
-- key is right (or nothing was written to tell).
--- A message when an image read without a key looks encrypted: every
-- written entry fails its CRC check as plain data (else nil).
function M.looks_encrypted(image)
  local failed, checked = M.check_items(image)
  if checked > 0 and failed == checked then
    return ("the image looks encrypted (all %d entries fail their CRC check as plain data)"):format(checked)
  end
end

function M.wrong_key(plain)
  local failed, checked = M.check_items(plain)
  if checked > 0 and failed == checked then
    return ("wrong key: %d of %d entries fail their CRC check"):format(failed, checked)
  end
end

return M
