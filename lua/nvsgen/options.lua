--- nvsgen.options: checks the option tables the library's functions take,
-- so that a misspelt field (`{ replce = false }`) fails loudly instead of
-- being ignored.
local M = {}

--- Raises unless `opts` is a table whose fields are all in `known` (a set
-- of names); the message starts with `what` and names the caller of the
-- function that is `level` levels up (1: the function calling check).
function M.check(opts, known, what, level)
  if type(opts) ~= "table" then
    error(("%s: options table expected, got %s"):format(what, type(opts)), level + 1)
  end
  for k in pairs(opts) do
    if not known[k] then
      error(("%s: unknown option '%s'"):format(what, tostring(k)), level + 1)
    end
  end
end

return M
