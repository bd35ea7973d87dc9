--- nvsgen.values: turning CSV value text into what the encoder takes.
--
-- Each parser reproduces how the reference generator (Python) reads the
-- text, so that what it accepts gives the same bytes here. They return the
-- value, or nil and a message without a place (the caller adds file:line).

local core = require("nvsgen.core")
local pytext = require("nvsgen.pytext")

local M = {}

local find, byte, sub = string.find, string.byte, string.sub

--- Surrounding white space removed, as `^%s*(.-)%s*$` would, but in linear
-- time with cheap steps: that pattern costs ~20 ns a byte (50 us for a
-- 2,400-digit hex2bin value). This is the white space Python's int() and
-- float() skip once digits and spaces are ASCII (see nvsgen.pytext), and
-- what bytes.strip() removes from a file's bytes.
local function strip(s)
  local first = find(s, "%S")
  if not first then return "" end
  local last = #s
  local c = byte(s, last)
  while c == 32 or (c >= 9 and c <= 13) do
    last = last - 1
    c = byte(s, last)
  end
  if first == 1 and last == #s then return s end
  return sub(s, first, last)
end

--- Python's int(): surrounding white space, an optional sign, decimal
-- digits with single underscores between them. Returns a canonical decimal
-- string (the encoder range-checks it, u64 included).
function M.integer(text)
  -- The usual form, decimal digits without a leading zero, is canonical.
  if find(text, "^%-?[1-9]%d*$") or text == "0" then return text end
  -- Other non-ASCII text is no number: "" fails the match below.
  local sign, digits = strip(pytext.ascii_number(text) or ""):match("^([+-]?)([%d_]+)$")
  if not digits or digits:find("^_") or digits:find("_$") or digits:find("__") then
    return nil, ("'%s' is not an integer"):format(text)
  end
  digits = digits:gsub("_", ""):gsub("^0+(%d)", "%1")
  return (sign == "-" and "-" or "") .. digits
end

local SPECIAL_REALS = {
  inf = math.huge, infinity = math.huge, nan = 0 / 0,
}

--- Python's float(): decimal notation with optional exponent, inf and nan.
-- (The encoder refuses NaN, as the firmware does.)
function M.real(text)
  -- Other non-ASCII text is no number: "" fails both matches below.
  local t = strip(pytext.ascii_number(text) or "")
  local sign, word = t:match("^([+-]?)(%a+)$")
  if word and SPECIAL_REALS[word:lower()] then
    local v = SPECIAL_REALS[word:lower()]
    return sign == "-" and -v or v
  end
  local plain = t:gsub("(%d)_(%d)", "%1%2")
  if plain:match("^[+-]?%d*%.?%d*[eE]?[+-]?%d*$") and plain:find("%d") then
    local v = tonumber(plain)
    -- As float() does, -0 is -0.0: adding 0.0 would drop its sign.
    if math.type(v) == "integer" then v = v + 0.0 end
    if v == 0 and plain:sub(1, 1) == "-" then v = -0.0 end
    if v then return v end
  end
  return nil, ("'%s' is not a number"):format(text)
end

--- hex2bin: stripped (as Python's str.strip() does, or bytes.strip() for
-- a file's bytes), an even number of hex digits in either case.
function M.hex(text, from_file)
  local bytes, err = core.hex_decode(from_file and strip(text) or pytext.strip(text))
  if not bytes then return nil, "invalid hex2bin value: " .. err end
  return bytes
end

--- base64: decoded as Python's binascii does (non-alphabet bytes skipped),
-- from ASCII text only, as binascii takes a str (a file's bytes may hold
-- anything).
function M.base64(text, from_file)
  if not from_file and find(text, "[\128-\255]") then return nil, "base64 value is not ASCII" end
  local bytes, err = core.base64_decode(text)
  if not bytes then return nil, err end
  return bytes
end

--- blob_fill(N;0xPP) and blob_sz_fill(N;0xPP): the encoding names a size and
-- a pad byte; the value's bytes are padded to N (never truncated), and the
-- _sz_ form puts the value's length first as a little-endian u32.
-- Returns nil when `encoding` is not of this family at all.
function M.fill_spec(encoding)
  local form = encoding:match("^blob_sz_fill") or encoding:match("^blob_fill")
  if not form then return nil end
  local n, pad = encoding:match("^" .. form .. "%((%d+);0x(%x%x)%)")
  if not n then
    return false, ("invalid encoding format '%s', expected %s(N;0xPP)"):format(encoding, form)
  end
  return { sized = form == "blob_sz_fill", size = tonumber(n), pad = tonumber(pad, 16) }
end

function M.fill(spec, text)
  if #text > spec.size then
    return nil, ("value of %d bytes is longer than the fill size %d"):format(#text, spec.size)
  end
  local padded = text .. string.char(spec.pad):rep(spec.size - #text)
  if spec.sized then return string.pack("<I4", #text) .. padded end
  return padded
end

--- Text that the reference would read as UTF-8 must be UTF-8.
function M.utf8_text(bytes)
  if utf8.len(bytes) then return bytes end
  return nil, "not valid UTF-8"
end

--- Floats and doubles as the shortest text that reads back as the same
-- double (a float's value is exact as a double, so the encoder rounds it
-- back to the same float); -0.0 keeps its sign, infinities are words.
function M.real_text(v)
  if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
  for digits = 1, 17 do
    local s = string.format("%." .. digits .. "g", v)
    if tonumber(s) == v then
      if not s:find("[%.eEn]") then s = s .. ".0" end
      return s
    end
  end
  return string.format("%.17g", v)
end

return M
