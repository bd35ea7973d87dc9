--- nvsgen.wifi: the Wi-Fi driver entries the reference generator adds.
--
-- When a CSV sets the station or soft-AP configuration keys, Espressif's
-- generator also writes the entries the Wi-Fi driver expects next to them.
-- A compatible generator must write the same entries at the same places:
--  * after the first `sta.ssid` or `sta.pswd` row: `sta.apinfo` (140 bytes
--    of 0xFF), `sta.pmk` (32 zero bytes) and `sta.apsw` (2 zero bytes);
--  * before the row that completes `ap.ssid`, `ap.passwd` and a non-"0"
--    `ap.authmode`: `ap.pmk_info`, 100 zero bytes then the PMK,
--    PBKDF2-HMAC-SHA1(password, ssid, 4096 iterations, 32 bytes), computed
--    from the rows' CSV text.
-- All of them are blobs. A tracker holds the state of one image.

local M = {}

local STA_KEYS = { ["sta.ssid"] = true, ["sta.pswd"] = true }
local AP_FIELDS = { ["ap.ssid"] = "ssid", ["ap.passwd"] = "passwd", ["ap.authmode"] = "authmode" }

local Tracker = {}
Tracker.__index = Tracker

-- The answer for the rows that need no entry (nearly all): one shared
-- empty list rather than a new table per row. Callers only read it.
local NONE = setmetatable({}, { __newindex = function() error("nvsgen.wifi: NONE is read-only", 2) end })

--- `pbkdf2(password, salt, iterations, length)` returns the derived bytes.
function M.tracker(pbkdf2)
  return setmetatable({ pbkdf2 = pbkdf2, sta_done = false, ap = {} }, Tracker)
end

--- True when rows with `key` take part in the Wi-Fi driver entries.
function M.involves(key)
  return STA_KEYS[key] == true or AP_FIELDS[key] ~= nil
end

--- True when `key` is written from its CSV text whatever its type says:
-- the reference stores a `file` row's path, not the file, for these keys.
function M.takes_text(key)
  return STA_KEYS[key] == true
end

--- Entries to write before the row with `key` and CSV `text`, as a list of
-- { key, bytes } (possibly empty).
function Tracker:before(key, text)
  local field = AP_FIELDS[key]
  if not field then return NONE end
  if field ~= "authmode" or text ~= "0" then self.ap[field] = text end
  local ap = self.ap
  if (ap.ssid or "") == "" or (ap.passwd or "") == "" or (ap.authmode or "") == "" then
    return NONE
  end
  local pmk = self.pbkdf2(ap.passwd, ap.ssid, 4096, 32)
  return { { "ap.pmk_info", string.rep("\0", 100) .. pmk } }
end

--- Entries to write after the row with `key`.
function Tracker:after(key)
  if not STA_KEYS[key] or self.sta_done then return NONE end
  self.sta_done = true
  return {
    { "sta.apinfo", string.rep("\255", 140) },
    { "sta.pmk", string.rep("\0", 32) },
    { "sta.apsw", "\0\0" },
  }
end

return M
