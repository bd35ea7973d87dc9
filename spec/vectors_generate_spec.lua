--- Every `generate` case of the reference vectors: same bytes as
-- Espressif's generator (namespace bug mended), or a refusal with no file.
local h = require("spec.support.helper")

describe("nvs_partition_gen generate reproduces the reference vectors", function()
  for _, case in ipairs(h.cases("generate")) do
    it(case.name, function()
      h.assert_reproduces("nvsgen.cli.partition_gen", case)
    end)
  end
end)
