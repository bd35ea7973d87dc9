-- spec/serials_spec.lua: nvsgen.serials, the serial lists of a batch
-- (--serial-range) and their iteration with jumps over other processes'
-- units.
local serials = require("nvsgen.serials")

describe("nvsgen.serials", function()
  -- Every index, serial the iteration gives, jumping to jumps[index]
  -- (when given) after that index.
  local function walk(text, jumps)
    local s = assert(serials.parse(text))
    local step, jump = s:each()
    local out = {}
    for index, serial in step do
      out[#out + 1] = { index, serial }
      if jumps and jumps[index] then jump(jumps[index]) end
    end
    return out
  end

  it("gives each index and serial, range after range, in the order written", function()
    assert.same({ { 1, 7 }, { 2, 8 }, { 3, 3 }, { 4, 20 }, { 5, 21 } }, walk("7-8,3,20-21"))
    assert.same({ { 1, 5 } }, walk("5"))
  end)

  it("jumps over indexes within a range, across ranges, and past the end", function()
    -- after index 1, go on at index 3 (serial 9)
    assert.same({ { 1, 7 }, { 3, 9 }, { 4, 10 } }, walk("7-10", { [1] = 3 }))
    -- from range 7-8 into the third range
    assert.same({ { 1, 7 }, { 4, 20 }, { 5, 21 } }, walk("7-8,3,20-21", { [1] = 4 }))
    -- to the first serial of the next range
    assert.same({ { 1, 7 }, { 2, 8 }, { 3, 3 }, { 4, 20 } }, walk("7-8,3,20", { [2] = 3 }))
    -- past the last index: the iteration ends
    assert.same({ { 1, 7 } }, walk("7-8,3,20-21", { [1] = 9 }))
    assert.same({ { 1, 7 }, { 2, 8 } }, walk("7-8", { [2] = 3 }))
    -- a jump to the next index changes nothing
    assert.same({ { 1, 7 }, { 2, 8 } }, walk("7-8", { [1] = 2 }))
  end)

  it("gives what stepping one index at a time gives, for every jump", function()
    local text = "100-104,7,50-52,9000-9003"
    local all = walk(text)
    for from = 1, #all do
      for to = from + 1, #all + 2 do
        local want = {}
        for k = 1, from do want[#want + 1] = all[k] end
        for k = to, #all do want[#want + 1] = all[k] end
        assert.same(want, walk(text, { [from] = to }), ("jump from %d to %d"):format(from, to))
      end
    end
  end)
end)
