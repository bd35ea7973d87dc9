--- nvsgen.serials: the serials of a batch ("1000-1999", "5,9,7", "1-5,9"), iterated without being expanded.

local format, type, ipairs = string.format, type, ipairs

local M = {}

local Serials = {}
Serials.__index = Serials

--- Parses "A-B" (inclusive), "A,B,C", or a mix ("1-5,9"). Returns a
-- serial set (never expanded into a list), or nil and a message.
function M.parse(text)
  if type(text) ~= "string" or text == "" then return nil, "serial range is empty" end
  local ranges, count = {}, 0
  for item in (text .. ","):gmatch("([^,]*),") do
    local a, b = item:match("^%s*(%d+)%s*%-%s*(%d+)%s*$")
    if not a then a = item:match("^%s*(%d+)%s*$"); b = a end
    if not a or #a > 15 or #b > 15 then
      return nil, format("invalid serial range '%s': expected A-B or A,B,C", text)
    end
    a, b = tonumber(a), tonumber(b)
    if b < a then return nil, format("invalid serial range '%s': %d comes after %d", text, a, b) end
    ranges[#ranges + 1] = { a, b }
    count = count + (b - a + 1)
  end
  -- A serial made twice in one batch would be two units with one image.
  local sorted = table.move(ranges, 1, #ranges, 1, {})
  table.sort(sorted, function(x, y) return x[1] < y[1] end)
  for i = 2, #sorted do
    if sorted[i][1] <= sorted[i - 1][2] then
      return nil, format("invalid serial range '%s': serial %d is listed twice", text, sorted[i][1])
    end
  end
  return setmetatable({ ranges = ranges, count = count, text = text }, Serials)
end

--- Iterates index, serial; and jump(index), after which the next index the
-- iteration gives is `index` (a later one): a process passes over the
-- chunks of units other processes make without stepping through them.
function Serials:each()
  -- s: the last serial given, of range r (whose last serial is hi); i: its index.
  local ranges, r, s, i = self.ranges, 1, self.ranges[1][1] - 1, 0
  local hi = ranges[1][2]
  local function step()
    if s < hi then
      s, i = s + 1, i + 1
      return i, s
    end
    r = r + 1
    local range = ranges[r]
    if not range then return nil end
    s, hi, i = range[1], range[2], i + 1
    return i, s
  end
  local function jump(to)
    local need = to - 1 - i -- the indexes passed over
    while need > 0 do
      local left = hi - s -- the serials of range r after s
      if need <= left then
        s, i = s + need, i + need
        return
      end
      i, need, r = i + left, need - left, r + 1
      local range = ranges[r]
      if not range then
        s = hi -- past the last range: step() ends
        return
      end
      s, hi = range[1] - 1, range[2]
    end
  end
  return step, jump
end

function Serials:contains(serial)
  for _, r in ipairs(self.ranges) do
    if serial >= r[1] and serial <= r[2] then return true end
  end
  return false
end

function Serials:first()
  return self.ranges[1][1]
end

M.Serials = Serials

return M
