--- The Wi-Fi driver entries the reference generator adds for sta.* and ap.*
-- keys, and the blob_fill / blob_sz_fill encodings they are written with.
local nvsgen = require("nvsgen")
local csvgen = require("nvsgen.csvgen")
local crypto = require("nvsgen.crypto")

local ROWS = {
  { "nvs.net80211", "namespace", "", "" },
  { "opmode", "data", "u8", "3" },
  { "sta.ssid", "data", "blob_sz_fill(32;0x00)", "myssid" },
  { "sta.pswd", "data", "blob_fill(64;0x00)", "mypassword" },
  { "ap.ssid", "data", "blob_sz_fill(32;0x00)", "myssid" },
  { "ap.passwd", "data", "blob_fill(64;0x00)", "mypassword" },
  { "ap.authmode", "data", "u8", "3" },
}

local function build(rows)
  local p = nvsgen.partition{ size = 0x3000 }
  local compiler = csvgen.compiler(p)
  for _, r in ipairs(rows) do
    assert(compiler:row{ key = r[1], type = r[2], encoding = r[3], value = r[4] })
  end
  return assert(nvsgen.read(p:image()))
end

describe("Wi-Fi driver entries", function()
  it("are added where the reference adds them, in the CSV's namespace", function()
    local r = build(ROWS)
    local order = {}
    for i, item in ipairs(r.items) do
      order[i] = ("%s/%s@%d"):format(item.namespace, item.key, item.entry)
    end
    assert.are.same({
      "nvs.net80211/opmode@1", "nvs.net80211/sta.ssid@5", "nvs.net80211/sta.apinfo@12",
      "nvs.net80211/sta.pmk@15", "nvs.net80211/sta.apsw@18", "nvs.net80211/sta.pswd@22",
      "nvs.net80211/ap.ssid@26", "nvs.net80211/ap.passwd@30", "nvs.net80211/ap.pmk_info@37",
      "nvs.net80211/ap.authmode@38",
    }, order)
    assert.are.same({}, r.problems)
  end)

  it("hold the driver's defaults and the PBKDF2-SHA1 PMK of the soft-AP", function()
    local ns = build(ROWS).namespaces["nvs.net80211"]
    assert.are.equal(("\255"):rep(140), ns["sta.apinfo"])
    assert.are.equal(("\0"):rep(32), ns["sta.pmk"])
    assert.are.equal("\0\0", ns["sta.apsw"])
    local pmk = "2f0568b3492812bd56b946dbaf3fd7dd669b9a4602a09aa6462ff057949b025c"
    assert.are.equal(("00"):rep(100) .. pmk, nvsgen.hex_encode(ns["ap.pmk_info"]))
    assert.are.equal(pmk, nvsgen.hex_encode(crypto.pbkdf2_sha1("mypassword", "myssid", 4096, 32)))
    assert.are.equal("\6\0\0\0myssid" .. ("\0"):rep(26), ns["sta.ssid"])
    assert.are.equal("mypassword" .. ("\0"):rep(54), ns["sta.pswd"])
  end)

  it("skip the soft-AP PMK while the authmode is 0", function()
    local rows = table.move(ROWS, 1, #ROWS, 1, {})
    rows[7] = { "ap.authmode", "data", "u8", "0" }
    assert.is_nil(build(rows).namespaces["nvs.net80211"]["ap.pmk_info"])
  end)
end)
