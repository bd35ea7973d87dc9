-- nvsgen.matter: the SPAKE2+ verifier and onboarding codes against the
-- published examples, and the passcode rules.
local matter = require("nvsgen.matter")
local core = require("nvsgen.core")

describe("matter", function()
  it("computes the published verifier of passcode 20202021", function()
    -- the SDK's test commissioning data: salt "SPAKE2P Key Salt", 1000 iterations
    local v = assert(matter.verifier(20202021, "SPAKE2P Key Salt", 1000))
    assert.equal(97, #v)
    assert.equal("uWFwqugDNGiEck/po7KHwwMwwqZgN10XuyBajPGuyzUEV/iree4lOrao5GuwnlQ65CJzbeUB49s31EH+"
      .. "NEkg0JVI5MGCQGMMT/SRPFNRODm3wH/MBiehuFc6FJ/NH6Rmzw==", core.base64_encode(v))
  end)

  it("refuses forbidden passcodes, short or long salts and out-of-range iterations", function()
    local salt = ("s"):rep(16)
    assert.same({ nil, "passcode out of range (1 to 99999998) or forbidden" },
      { matter.verifier(12345678, salt, 1000) })
    assert.same({ nil, "passcode out of range (1 to 99999998) or forbidden" },
      { matter.verifier(0, salt, 1000) })
    assert.same({ nil, "salt must be 16 to 32 bytes" }, { matter.verifier(20202021, ("s"):rep(15), 1000) })
    assert.same({ nil, "salt must be 16 to 32 bytes" }, { matter.verifier(20202021, ("s"):rep(33), 1000) })
    assert.same({ nil, "iterations must be 1000 to 100000" }, { matter.verifier(20202021, salt, 999) })
    assert.same({ nil, "iterations must be 1000 to 100000" }, { matter.verifier(20202021, salt, 100001) })
    assert.equal(97, #assert(matter.verifier(99999998, ("s"):rep(32), 1000)))
  end)

  it("makes the published QR and manual codes", function()
    -- the SDK's test device: VID 0xFFF1, PID 0x8001, on-network
    assert.same({ "MT:-24J0AFN00KA0648G00", "34970112332" }, { matter.codes{
      vendor_id = 0xFFF1, product_id = 0x8001, discriminator = 3840, passcode = 20202021,
      discovery = matter.DISCOVERY.on_network } })
    -- chip-tool's documented example: PID 0x8000, BLE (the default)
    assert.same({ "MT:Y.K9042C00KA0648G00", "34970112332" }, { matter.codes{
      vendor_id = 0xFFF1, product_id = 0x8000, discriminator = 3840, passcode = 20202021 } })
    -- a custom flow puts VID and PID in a 21-digit manual code
    local _, long = matter.codes{ vendor_id = 0xFFF1, product_id = 0x8001, discriminator = 3840,
      passcode = 20202021, flow = matter.FLOW.custom, discovery = 4 }
    assert.equal("749701123365521327694", long)
  end)

  it("refuses payload fields out of range", function()
    local p = { vendor_id = 0xFFF1, product_id = 0x8001, discriminator = 4096, passcode = 20202021 }
    assert.same({ nil, "payload field out of range" }, { matter.codes(p) })
    p.discriminator, p.flow = 1, 3
    assert.same({ nil, "payload field out of range" }, { matter.codes(p) })
    p.flow, p.passcode = 0, 87654321
    assert.same({ nil, "passcode out of range (1 to 99999998) or forbidden" }, { matter.codes(p) })
    assert.has_error(function() matter.codes{ vendor_id = 1, product_id = 1, discriminator = 1 } end,
      "codes: field 'passcode' is required")
  end)

  it("encodes base-38 and Verhoeff check digits", function()
    assert.equal("", matter.base38(""))
    assert.equal("00", matter.base38("\0"))
    assert.equal(".0", matter.base38("\37"))
    assert.equal("R6", matter.base38("\255"))
    assert.equal("0000", matter.base38("\0\0"))
    assert.equal("00000", matter.base38("\0\0\0"))
    assert.equal(3, matter.verhoeff("236"))
    assert.equal(2, matter.verhoeff("3497011233"))
    assert.is_nil(matter.verhoeff("12a"))
  end)

  it("knows the forbidden passcodes", function()
    for _, p in ipairs({ 0, 11111111, 22222222, 33333333, 44444444, 55555555, 66666666,
                         77777777, 88888888, 99999999, 12345678, 87654321, 100000000, -1 }) do
      assert.is_false(matter.passcode_valid(p), tostring(p))
    end
    for _, p in ipairs({ 1, 20202021, 99999998, 11111112, 12345679 }) do
      assert.is_true(matter.passcode_valid(p), tostring(p))
    end
  end)

  it("draws passcodes again while they are forbidden", function()
    local draws = { 11111111, 12345678, 87654321, 99999999, 20202021, 5 }
    local calls, ranges = 0, {}
    local function fake(lo, hi)
      calls = calls + 1
      ranges[#ranges + 1] = lo .. "-" .. hi
      return draws[calls]
    end
    assert.equal(20202021, matter.random_passcode(fake))
    assert.equal(5, calls)
    assert.same({ "1-99999998", "1-99999998", "1-99999998", "1-99999998", "1-99999998" }, ranges)
    for _ = 1, 2000 do
      local p = matter.random_passcode()
      assert.is_true(matter.passcode_valid(p))
      local d = matter.random_discriminator()
      assert.is_true(d >= 0 and d <= 0xFFF)
    end
  end)

  it("makes Matter subjects with the vendor and product IDs as hex", function()
    assert.same({ { "CN", "x" }, { "1.3.6.1.4.1.37244.2.1", "FFF1" }, { "1.3.6.1.4.1.37244.2.2", "000A" } },
      matter.subject("x", 0xFFF1, 10))
  end)
end)
