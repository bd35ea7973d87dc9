--- nvsgen.values: turning CSV value text into what the encoder takes.
--
-- Each parser reproduces how the reference generator (Python) reads the
-- text, so that what it accepts gives the same bytes here. They return the
-- value, or nil and a message without a place (the caller adds file:line).

local core = require("nvsgen.core")

local M = {}

local find, byte, sub = string.find, string.byte, string.sub

--- Surrounding white space removed, as `^%s*(.-)%s*$` would, but in linear
-- time with cheap steps: that pattern costs ~20 ns a byte (50 us for a
-- 2,400-digit hex2bin value). This is the white space Python's int() and
-- float() skip once digits and spaces are ASCII (see python_ascii).
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

-- The white space of Python's str.isspace() beyond ASCII, in UTF-8.
local UNICODE_SPACES = {}
for _, cp in ipairs({ 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 }) do
  UNICODE_SPACES[utf8.char(cp)] = true
end
for cp = 0x2000, 0x200A do UNICODE_SPACES[utf8.char(cp)] = true end

-- The zeros of Unicode's decimal digits (category Nd, Unicode 14 as Python
-- 3.11 has it): each is followed by the digits one to nine. Python's int()
-- reads any of them as the ASCII digit.
local DIGIT_ZEROS = {
  0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
  0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
  0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
  0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
  0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
  0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
}

--- The value 0-9 of a Unicode decimal digit, nil for any other code point.
local function unicode_digit(cp)
  local lo, hi = 1, #DIGIT_ZEROS
  while lo <= hi do -- the last zero not above cp
    local mid = (lo + hi) // 2
    if DIGIT_ZEROS[mid] <= cp then lo = mid + 1 else hi = mid - 1 end
  end
  local zero = DIGIT_ZEROS[hi]
  if zero and cp - zero <= 9 then return cp - zero end
  return nil
end

--- Text as Python's int() and float() see it before parsing: non-ASCII
-- white space as a space, Unicode decimal digits as ASCII ones. Nil when
-- any other non-ASCII character (or bad UTF-8) is in it: no number then.
function M.python_ascii(text)
  if not find(text, "[\128-\255]") then return text end
  local out = {}
  local ok = pcall(function()
    for _, cp in utf8.codes(text) do
      local d = cp >= 128 and unicode_digit(cp)
      if cp < 128 then out[#out + 1] = string.char(cp)
      elseif d then out[#out + 1] = string.char(48 + d)
      elseif UNICODE_SPACES[utf8.char(cp)] then out[#out + 1] = " "
      else error("not a number") end
    end
  end)
  return ok and table.concat(out) or nil
end

--- Surrounding white space removed as Python's str.strip() removes it:
-- ASCII 9-13 and 28-32, and the Unicode spaces.
function M.python_strip(s)
  local first, last = 1, #s
  while first <= last do
    local c = byte(s, first)
    if c == 32 or (c >= 9 and c <= 13) or (c >= 28 and c <= 31) then first = first + 1
    elseif UNICODE_SPACES[sub(s, first, first + 1)] then first = first + 2
    elseif UNICODE_SPACES[sub(s, first, first + 2)] then first = first + 3
    else break end
  end
  while last >= first do
    local c = byte(s, last)
    if c == 32 or (c >= 9 and c <= 13) or (c >= 28 and c <= 31) then last = last - 1
    elseif UNICODE_SPACES[sub(s, last - 1, last)] then last = last - 2
    elseif UNICODE_SPACES[sub(s, last - 2, last)] then last = last - 3
    else break end
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
  local ascii = M.python_ascii(text)
  local sign, digits = strip(ascii or ""):match("^([+-]?)([%d_]+)$")
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
  local t = strip(M.python_ascii(text) or "?")
  local sign, word = t:match("^([+-]?)(%a+)$")
  if word and SPECIAL_REALS[word:lower()] then
    local v = SPECIAL_REALS[word:lower()]
    return sign == "-" and -v or v
  end
  local plain = t:gsub("(%d)_(%d)", "%1%2")
  if plain:match("^[+-]?%d*%.?%d*[eE]?[+-]?%d*$") and plain:find("%d") then
    local v = tonumber(plain)
    if v then return v + 0.0 end
  end
  return nil, ("'%s' is not a number"):format(text)
end

--- hex2bin: stripped (as Python's str.strip() does), an even number of hex
-- digits in either case.
function M.hex(text)
  local bytes, err = core.hex_decode(M.python_strip(text))
  if not bytes then return nil, "invalid hex2bin value: " .. err end
  return bytes
end

--- base64: decoded as Python's binascii does (non-alphabet bytes skipped),
-- from ASCII text only, as binascii takes it.
function M.base64(text)
  if find(text, "[\128-\255]") then return nil, "base64 value is not ASCII" end
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

return M
