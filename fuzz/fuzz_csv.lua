--- The Lua side of the CSV fuzz target: parse the input as a CSV file of
-- the reference format and compile every row into a partition. Bad data
-- must come back as `nil, message`; anything raised is a bug.
local csv = require("nvsgen.csv")
local csvgen = require("nvsgen.csvgen")
local nvsgen = require("nvsgen")

local function fake_pbkdf2(_, _, _, length) return ("\0"):rep(length) end

return function(data)
  local reader, err = csv.dict_from_string(data, "fuzz.csv", { required = csvgen.COLUMNS, comments = true })
  if not reader then
    assert(type(err) == "string")
    return
  end
  local partition = nvsgen.partition{ size = 0x6000 }
  local compiler = csvgen.compiler(partition, fake_pbkdf2)
  while true do
    local row, line = reader:next()
    if not row then break end
    assert(math.type(line) == "integer")
    -- `file` rows would read whatever path the input names.
    if row.type == "file" then row.type = "data" end
    local ok, row_err = compiler:row(row)
    if not ok then
      assert(type(row_err) == "string")
      break
    end
  end
  assert(#partition:image() == 0x6000)
end
