--- nvsgen.pytext: text as the reference tools' Python sees it: which
-- characters are white space (str.isspace(), str.strip()) and which are
-- decimal digits (int(), float()). The reference reads its CSV files as
-- Unicode text, so a no-break space after a number, or Arabic-Indic digits,
-- mean there what they mean to Python.

local M = {}

local find, byte, sub = string.find, string.byte, string.sub

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
function M.ascii_number(text)
  if not find(text, "[\128-\255]") then return text end
  if not utf8.len(text) then return nil end -- utf8.codes would raise
  local out = {}
  for _, cp in utf8.codes(text) do
    local d = cp >= 128 and unicode_digit(cp)
    if cp < 128 then out[#out + 1] = string.char(cp)
    elseif d then out[#out + 1] = string.char(48 + d)
    elseif UNICODE_SPACES[utf8.char(cp)] then out[#out + 1] = " "
    else return nil end
  end
  return table.concat(out)
end

--- Surrounding white space removed as Python's str.strip() removes it:
-- ASCII 9-13 and 28-32, and the Unicode spaces.
function M.strip(s)
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

--- Whether a physical line (its "\n" included or not) holds only white
-- space, as Python's line.isspace() says of a line read with its newline:
-- mfg_gen.py drops such lines from its inputs before reading them as CSV.
function M.is_blank_line(line)
  return M.strip(line) == ""
end

return M
