--- Specs for nvs_tool's memory: the dumps and checks go page by page, so
-- the peak stays a small multiple of the image even for one of nothing but
-- small items (measured in a process of its own, by /usr/bin/time).
local h = require("spec.support.helper")
local nvsgen = require("nvsgen")

local SIZE = 4 * 1024 * 1024
-- About 67 MB measured (16 times the image, the interpreter's 2 MB
-- included); before the dumps went page by page it was 310 MB.
local LIMIT_KB = 96 * 1024

--- A 4 MiB partition filled with u8 items, 600 to a namespace.
local function integers_image(path)
  local p = nvsgen.partition({ size = SIZE })
  local n = 0
  while true do
    if n % 600 == 0 and not pcall(p.namespace, p, "ns" .. n // 600) then break end
    n = n + 1
    if not pcall(p.put, p, "u8", "k" .. n, n % 256) then break end
  end
  assert(p:write(path))
  return n
end

describe("nvs_tool memory", function()
  local dir
  before_each(function() dir = h.tmpdir() end)
  after_each(function() h.cleanup(dir) end)

  it("#slow checks and dumps a 4 MiB image of small integers (-i -d all) within 96 MB", function()
    -- Under make asan the sanitizer's shadow memory, not nvs_tool, sets the peak.
    if (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) then
      pending("memory is not measured under the address sanitizer")
      return
    end
    local image, out, times = dir .. "/ints.bin", dir .. "/out.txt", dir .. "/time.txt"
    assert.is_true(integers_image(image) > 100000)
    local ok = os.execute(("/usr/bin/time -v -o %s lua5.4 %s/bin/nvs_tool.lua %s -i -d all > %s")
      :format(times, h.ROOT, image, out))
    assert.is_true(ok)
    local text = h.read(out)
    assert.equal("Page no. 0, Status: Full, Version: 2, CRC32: ", text:sub(1, 45))
    assert.truthy(text:find("\nThe firmware mounts this image with no problem.\n$"))
    local rss = tonumber(h.read(times):match("Maximum resident set size %(kbytes%): (%d+)"))
    assert.is_number(rss)
    assert.is_true(rss < LIMIT_KB, ("peak %d kB, limit %d kB"):format(rss, LIMIT_KB))
  end)
end)
