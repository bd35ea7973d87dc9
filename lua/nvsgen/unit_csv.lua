--- nvsgen.unit_csv: a unit's items as the CSV that Espressif's nvs_partition_gen turns into the same image (--csv).

local core = require("nvsgen.core")
local csv = require("nvsgen.csv")

local format, concat, tostring, ipairs = string.format, table.concat, tostring, ipairs
local format_row = csv.format_row

local M = {}

-- Keys for which the reference adds Wi-Fi entries of its own.
local WIFI_KEYS = { ["sta.ssid"] = true, ["sta.pswd"] = true, ["ap.ssid"] = true,
  ["ap.passwd"] = true, ["ap.authmode"] = true }

--- The CSV text for the rows a unit recorded, or nil and a message.
-- `command` is the command line that regenerates the image (a comment).
function M.text(rows, command)
  local out = { "# " .. command .. "\r\n", format_row({ "key", "type", "encoding", "value" }) }
  for _, row in ipairs(rows) do
    local key, kind, value = row[1], row[2], row[3]
    if key:sub(1, 1) == "#" then
      return nil, format("key '%s': a name starting with '#' reads as a comment in CSV", key)
    end
    if WIFI_KEYS[key] then
      return nil, format("key '%s': nvs_partition_gen adds Wi-Fi entries for it, so --csv cannot"
        .. " reproduce the image", key)
    end
    local fields
    if kind == "namespace" then
      fields = { key, "namespace", "", "" }
    elseif kind == "string" then
      -- The reference reads CSV as UTF-8 text with universal newlines and
      -- drops lines starting with '#', even inside a quoted field.
      if not utf8.len(value) then
        return nil, format("key '%s': string is not valid UTF-8, CSV cannot hold it", key)
      elseif value:find("\r", 1, true) then
        return nil, format("key '%s': string holds a carriage return, CSV cannot keep it", key)
      elseif value:find("\n#") then
        return nil, format("key '%s': string has a line starting with '#', CSV would drop it", key)
      end
      fields = { key, "data", "string", value }
    elseif kind == "blob" then
      fields = { key, "data", "hex2bin", core.hex_encode(value) }
    elseif kind == "float" or kind == "double" then
      fields = { key, "data", kind, format("%.17g", value) }
    else
      fields = { key, "data", kind, tostring(math.tointeger(value) or value) }
    end
    out[#out + 1] = format_row(fields)
  end
  return concat(out)
end

return M
