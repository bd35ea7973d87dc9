--- nvsgen.files: reading a whole file, with one style of message.
--
-- io.open succeeds on a folder and the read then fails, so both steps are
-- checked; every failure comes back as "PATH: reason".

local M = {}

--- The bytes of the file at `path`, or nil and "PATH: reason".
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data, read_err = f:read("a")
  f:close()
  if not data then return nil, ("%s: %s"):format(path, read_err or "read error") end
  return data
end

--- The reason of a message from M.read, without its "PATH: " prefix.
function M.reason(message, path)
  local prefix = path .. ": "
  if message:sub(1, #prefix) == prefix then return message:sub(#prefix + 1) end
  return message
end

return M
