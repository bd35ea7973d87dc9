-- The shipped recipes (gen.lua and examples/*.lua), run into a temporary
-- folder: exact bytes where the content is fixed, otherwise the image that
-- nvs_partition_gen makes from the unit's --csv output, which also proves
-- that the CSVs regenerate the images.
local lfs = require("lfs")
local helper = require("spec.support.helper")
local recipes = require("spec.support.recipes")
local crypto = require("nvsgen.crypto")

local ROOT = helper.ROOT
local EXAMPLES = ROOT .. "/examples"

-- Runs a recipe script over `range` into `dir` with --csv and `extra`;
-- checks every unit against its CSV and the manifest; returns the rows.
local function run_checked(script, range, dir, extra)
  local argv = { "--serial-range", range, "--outdir", dir, "--csv" }
  for _, word in ipairs(extra or {}) do argv[#argv + 1] = word end
  local status, out, err = recipes.run(script, argv)
  assert.equal(0, status, err)
  assert.matches("written", out)
  local rows = recipes.manifest(dir .. "/manifest.csv")
  for _, row in ipairs(rows) do
    local image = helper.read(dir .. "/" .. row.image)
    assert.equal(row.sha256, crypto.sha256_hex(image))
    local csv_name = row.image:gsub("%.bin$", ".csv")
    local keys = row.keys ~= "" and row.keys or nil
    assert.equal(image, recipes.regenerate(dir, csv_name, ("0x%X"):format(#image), keys),
      "unit " .. row.serial)
  end
  return rows
end

describe("examples", function()
  local tmp
  before_each(function() tmp = helper.tmpdir() end)
  after_each(function() helper.cleanup(tmp) end)

  it("gen.lua: the default recipe", function()
    local rows = run_checked(ROOT .. "/gen.lua", "1000-1009", tmp)
    assert.equal(10, #rows)
    local secrets = {}
    for _, row in ipairs(rows) do
      local text = helper.read(tmp .. "/" .. row.image:gsub("%.bin$", ".csv"))
      assert.truthy(text:find("DeviceName,data,string,NVSGEN-DEMO-00" .. row.serial .. "\r\n", 1, true))
      assert.truthy(text:find("DeviceSecret,data,string," .. row.DeviceSecret .. "\r\n", 1, true))
      assert.is_nil(secrets[row.DeviceSecret])
      secrets[row.DeviceSecret] = true
    end
  end)

  it("mass_prod.lua: the seed's sample.csv, unit by unit", function()
    local rows = run_checked(EXAMPLES .. "/mass_prod.lua", "1000-1002", tmp)
    assert.equal("24:0a:c4:00:00:01", rows[1].MAC)
    assert.equal("24:0a:c4:00:00:03", rows[3].MAC)
    -- Unit 1000 holds exactly what examples/sample.csv describes.
    local status, _, err = helper.run("nvsgen.cli.partition_gen",
      { "generate", "examples/sample.csv", tmp .. "/sample.bin", "0x6000" }, ROOT)
    assert.equal(0, status, err)
    assert.equal(helper.read(tmp .. "/sample.bin"), helper.read(tmp .. "/mass-prod-1000.bin"))
  end)

  it("certificates.lua: a certificate file per unit", function()
    local rows = run_checked(EXAMPLES .. "/certificates.lua", "1000-1004", tmp)
    for _, row in ipairs(rows) do
      local cert = helper.read(EXAMPLES .. "/certs/" .. row.serial .. ".der")
      assert.equal(crypto.sha256_hex(cert), row.CertSHA256)
      assert.truthy(helper.read(tmp .. "/" .. row.image):find(cert:sub(1, 60), 1, true))
    end
    local status, _, err = recipes.run(EXAMPLES .. "/certificates.lua",
      { "--serial-range", "1004-1006", "--outdir", tmp .. "/more" })
    assert.equal(1, status)
    assert.equal(("recipe: unit 1005: %s/certificates.lua:20: cannot read file '%s/certs/1005.der':"
      .. " No such file or directory\n"):format(EXAMPLES, EXAMPLES), err)
    -- Unit 1004 was made before the stop, and only it.
    assert.equal(1, #recipes.manifest(tmp .. "/more/manifest.csv"))
  end)

  it("family_lite.lua and family_pro.lua: a product family on one base", function()
    local lite = run_checked(EXAMPLES .. "/family_lite.lua", "1-3", tmp .. "/lite")
    local pro = run_checked(EXAMPLES .. "/family_pro.lua", "1-3", tmp .. "/pro")
    assert.equal("lite-1.bin", lite[1].image)
    assert.equal("pro-1.bin", pro[1].image)
    local lite_csv = helper.read(tmp .. "/lite/lite-2.csv")
    local pro_csv = helper.read(tmp .. "/pro/pro-2.csv")
    assert.truthy(lite_csv:find("ProductID,data,string,ACME-LITE\r\nDeviceName,data,string,acme-lite-000002\r\n"
      .. "DeviceSecret,data,string," .. lite[2].DeviceSecret .. "\r\nSerial,data,u32,2\r\nHwRev,data,u8,1\r\n",
      1, true))
    assert.truthy(pro_csv:find("HwRev,data,u8,3\r\nfeatures,namespace,,\r\nSensors,data,u8,4\r\n"
      .. "Display,data,u8,1\r\nMaxRateHz,data,u16,400\r\n", 1, true))
  end)

  it("wifi_calibration.lua: Wi-Fi defaults and a per-unit values table", function()
    run_checked(EXAMPLES .. "/wifi_calibration.lua", "1000-1004", tmp)
    local text = helper.read(tmp .. "/wifi-cal-1002.csv")
    assert.truthy(text:find("wifi,namespace,,\r\nssid,data,string,ACME-Setup\r\n", 1, true))
    assert.truthy(text:find("calibration,namespace,,\r\ngain,data,i16,-15\r\noffset,data,i16,41\r\n"
      .. "rf_power,data,u8,76\r\n", 1, true))
    helper.write(tmp .. "/other.csv", "serial,gain,offset,rf_power\n7,1,2,3\n")
    local status, _, err = recipes.run(EXAMPLES .. "/wifi_calibration.lua",
      { "--serial-range", "7", "--outdir", tmp .. "/o", "--values", tmp .. "/other.csv", "--csv" })
    assert.equal(0, status, err)
    assert.truthy(helper.read(tmp .. "/o/wifi-cal-7.csv"):find("gain,data,i16,1\r\n", 1, true))
  end)

  it("encrypted.lua: encrypted images with a key per unit", function()
    local rows = run_checked(EXAMPLES .. "/encrypted.lua", "1000-1003", tmp)
    for _, row in ipairs(rows) do
      assert.equal("secure-" .. row.serial .. "-keys.bin", row.keys)
      assert.equal("rw-------", lfs.attributes(tmp .. "/" .. row.keys, "permissions"))
      assert.matches("^%x%x%x%x%x%x%x%x$", row.ClaimCode)
      local image = helper.read(tmp .. "/" .. row.image)
      assert.falsy(image:find("ACME-SECURE", 1, true))
      local key = assert(crypto.read_keys(tmp .. "/" .. row.keys))
      local plain = assert(crypto.decrypt_image(image, key))
      assert.truthy(plain:find(row.DeviceSecret, 1, true))
    end
  end)
end)
