--- nvsgen.textout: the text output nvs_tool's dumps and checks share:
-- lines handed on in batches, ANSI colours when asked.

local concat = table.concat

local M = {}

local out -- the output: where lines go and whether to colour, set per run

-- Lines are handed on in batches, so a large image's dump is never held
-- whole in memory.
local BATCH = 512

--- Starts a run: lines go to `write(text)`, coloured when `color`.
function M.begin(write, color)
  out = { lines = {}, color = color == true, write = write }
end

--- Adds a line, its pieces joined.
function M.say(...)
  local lines = out.lines
  lines[#lines + 1] = concat({ ... })
  if #lines >= BATCH then
    out.write(concat(lines, "\n", 1, #lines) .. "\n")
    out.lines = {}
  end
end

local COLORS = { red = 31, green = 32, yellow = 33, blue = 34, cyan = 36, bold = 1 }

--- `text` in `color` when the run colours.
function M.paint(color, text)
  text = tostring(text)
  if not out.color then return text end
  return "\27[" .. COLORS[color] .. "m" .. text .. "\27[0m"
end

--- Ends the run, handing on the lines left.
function M.finish()
  local lines = out.lines
  local write = out.write
  out = nil
  if #lines > 0 then write(concat(lines, "\n") .. "\n") end
end

--- A key as nvs_tool.py prints it (None when not text).
function M.key_text(e)
  return e.key == nil and "None" or e.key
end

return M
