--- nvsgen.chunks: deals out the units of a batch shared by processes.
--
-- The units, in order, are cut into chunks of SIZE that the processes take
-- as they go, so a process that starts late or is slowed down simply takes
-- fewer of them and all finish together. Taking one costs two system
-- calls; at the end, processes wait at most one chunk for each other.
--
-- The chunks are dealt through a file every process of the batch has open
-- for appending (its own open, not an inherited descriptor): a process
-- takes the next chunk by appending one byte, its process number, and
-- where that byte landed is the chunk's number. An append is atomic, so no
-- two processes get the same chunk, and the file ends up saying which
-- process took which chunk (owners).

local format = string.format
local char = string.char

local M = {}

M.SIZE = 32

--- Opens the chunk file at `path` for taking chunks (unbuffered, each
-- take one write). Returns the file, or nil and a message.
function M.open(path)
  local f, err = io.open(path, "a+")
  if not f then return nil, format("%s: cannot open (%s)", path, err) end
  f:setvbuf("no")
  return f
end

--- Empties the chunk file at `path` (one the processes of an earlier
-- batch used) before the processes start: chunk numbers count from its
-- start. Returns true, or nil and a message.
function M.reset(path)
  local f, err = io.open(path, "w")
  if not f then return nil, format("%s: cannot reset (%s)", path, err) end
  f:close()
  return true
end

--- The last index of the chunk that holds batch index `index` (from 1):
-- chunks are SIZE indexes each, the first starting at index 1.
function M.last_of(index)
  return ((index - 1) // M.SIZE + 1) * M.SIZE
end

-- mine(index) for process `process`, taking chunks with take(byte): the
-- file's size once `byte` is appended (the chunk's number), or nil and a
-- message.
local function taker_with(take, path, process)
  local byte = char(process)
  local first, last = 0, 0
  return function(index)
    if index > last then
      local taken, err = take(byte)
      if not taken then return nil, format("%s: cannot take a chunk of units (%s)", path, err) end
      first = (taken - 1) * M.SIZE + 1
      last = M.last_of(first)
    end
    if index >= first then return true end
    return false, first
  end
end

--- For process `process` (1 to 255) of a shared batch, with `file` open on
-- the chunk file at `path`: mine(index) tells whether the unit of that
-- batch index (from 1) is this process's, taking the next chunk once the
-- current one is passed. Indexes must come in increasing order. Returns
-- true; or false and the first index of this process's chunk (beyond the
-- batch's last index once every chunk is taken); or nil and a message.
function M.taker(file, path, process)
  return taker_with(function(byte)
    local ok, err = file:write(byte)
    if not ok then return nil, err end
    return file:seek("cur")
  end, path, process)
end

--- As M.taker, with `file` a core.open_append file of the chunk file (its
-- own open file: a process shares no file offset with another).
function M.taker_at(file, path, process)
  return taker_with(function(byte) return file:append(byte) end, path, process)
end

--- Reads the chunk file at `path` once the batch is over: returns
-- owner(index), the process that took the chunk of that index (nil if
-- none did), or nil and a message.
function M.owners(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, format("%s: cannot open (%s)", path, err) end
  local taken = f:read("a") or ""
  f:close()
  local size = M.SIZE
  return function(index)
    return taken:byte((index - 1) // size + 1)
  end
end

return M
