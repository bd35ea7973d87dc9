-- nvsgen.chunks: the units of a shared batch dealt out in chunks.
local helper = require("spec.support.helper")
local chunks = require("nvsgen.chunks")

describe("nvsgen.chunks", function()
  local tmp, path
  before_each(function()
    tmp = helper.tmpdir()
    path = tmp .. "/chunks"
  end)
  after_each(function() helper.cleanup(tmp) end)

  it("says the last index of the chunk that holds an index", function()
    assert.same({ 32, 32, 32, 64, 64, 96 },
      { chunks.last_of(1), chunks.last_of(31), chunks.last_of(32), chunks.last_of(33), chunks.last_of(64),
        chunks.last_of(65) })
  end)

  it("gives each chunk to the one process that asks first, and records who took it", function()
    assert.equal(32, chunks.SIZE)
    local a, b = assert(chunks.open(path)), assert(chunks.open(path))
    local mine_a, mine_b = chunks.taker(a, path, 1), chunks.taker(b, path, 2)
    -- 1 takes chunk 1 (indexes 1-32), 2 chunk 2 (33-64).
    assert.same({ true }, { mine_a(1) })
    assert.same({ false, 33 }, { mine_b(1) })
    assert.same({ true }, { mine_a(32) })
    assert.same({ true }, { mine_b(33) })
    -- 1, past its chunk, takes the next free one: chunk 3 (65-96).
    assert.same({ false, 65 }, { mine_a(33) })
    assert.same({ true }, { mine_a(65) })
    assert.same({ true }, { mine_b(64) })
    assert.same({ false, 97 }, { mine_b(65) })
    a:close()
    b:close()
    assert.equal("\1\2\1\2", helper.read(path))
    local owner = assert(chunks.owners(path))
    assert.same({ 1, 1, 2, 2, 1, 1, 2, 2 }, { owner(1), owner(32), owner(33), owner(64), owner(65), owner(96),
      owner(97), owner(128) })
    assert.is_nil(owner(129))
  end)

  it("starts again from an emptied file", function()
    local f = assert(chunks.open(path))
    chunks.taker(f, path, 1)(1)
    f:close()
    assert.is_true(chunks.reset(path))
    assert.equal("", helper.read(path))
    f = assert(chunks.open(path))
    assert.same({ true }, { chunks.taker(f, path, 3)(1) })
    f:close()
    assert.equal("\3", helper.read(path))
  end)

  it("names the file when it cannot deal", function()
    helper.write(path, "")
    local ro = assert(io.open(path, "r"))
    assert.same({ nil, path .. ": cannot take a chunk of units (Bad file descriptor)" },
      { chunks.taker(ro, path, 1)(1) })
    ro:close()
    local missing = tmp .. "/none/chunks"
    assert.same({ nil, missing .. ": cannot open (" .. missing .. ": No such file or directory)" },
      { chunks.open(missing) })
    assert.same({ nil, missing .. ": cannot open (" .. missing .. ": No such file or directory)" },
      { chunks.owners(missing) })
    assert.same({ nil, missing .. ": cannot reset (" .. missing .. ": No such file or directory)" },
      { chunks.reset(missing) })
  end)
end)
