--- The compiled module nvsgen.core exports one symbol, its entry point:
-- the C core's functions stay private to it (csrc/nvs_visibility.h).
describe("nvsgen.core", function()
  it("exports luaopen_nvsgen_core and nothing else", function()
    -- the file `require` loads: build/ or, under make asan, build/asan/
    local path = assert(package.searchpath("nvsgen.core", package.cpath))
    local nm = assert(io.popen("nm -D --defined-only '" .. path .. "' 2>&1"))
    local names = {}
    for line in nm:lines() do
      names[#names + 1] = line:match("^%x+ %a (%S+)$") or line
    end
    assert.is_true(nm:close(), "nm failed on " .. path)
    assert.are.same({ "luaopen_nvsgen_core" }, names)
  end)
end)
