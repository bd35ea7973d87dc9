-- examples/family/base.lua: what every product of the ACME sensor family
-- writes. The products (examples/family_*.lua) extend this recipe: their
-- params choose the model, their unit functions add what the model has.
local recipe = require("nvsgen.recipe")

return recipe.define{
  size = 0x6000,
  exports = { "DeviceSecret" },
  params = { model = "base", hw_rev = 1, prefix = "acme" },
  unit = function(u)
    local p = u.params
    u:namespace("mass_prod")
    u:string("ProductID", "ACME-" .. p.model:upper())
    u:string("DeviceName", ("%s-%s-%06d"):format(p.prefix, p.model, u.serial))
    u:string("DeviceSecret", u:export("DeviceSecret", u:random_hex(32)))
    u:u32("Serial", u.serial)
    u:u8("HwRev", p.hw_rev)
  end,
}
