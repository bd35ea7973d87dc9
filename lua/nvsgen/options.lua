--- nvsgen.options: refuses option-table fields a function does not know,
-- so a typo in a recipe or a script fails loudly instead of being ignored.

local M = {}

--- Raises (at `level` above the caller of check) unless `opts` is a table
-- whose fields are all in `known`; `what` names the function.
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
