--- nvsgen.report: how a problem found in an image is worded, one line
-- each, the same in nvs_tool, the CSV export and batch checks.

local fmt = string.format

local M = {}

--- "Page P, entry NNN: severity: reason" (pages and entries from 0;
-- "Image" or "Page P" for a problem of the whole image or page).
function M.problem_line(pb)
  local where
  if pb.page == nil then where = "Image"
  elseif pb.entry == nil then where = fmt("Page %d", pb.page)
  else where = fmt("Page %d, entry %03d", pb.page, pb.entry) end
  return fmt("%s: %s: %s", where, pb.severity, pb.reason)
end

--- "1 problem", "2 problems".
function M.plural(n, word)
  return fmt("%d %s%s", n, word, n == 1 and "" or "s")
end

return M
