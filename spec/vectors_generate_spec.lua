--- Every `generate` case of the reference vectors: same bytes as
-- Espressif's generator (namespace bug mended), or a refusal with no file.
local h = require("spec.support.helper")

describe("nvs_partition_gen generate reproduces the reference vectors", function()
  for _, case in ipairs(h.cases("generate")) do
    it(case.name, function()
      local out = h.tmpdir()
      local argv = {}
      for i, a in ipairs(case.argv) do argv[i] = a == "out.bin" and out .. "/out.bin" or a end
      local status, _, err = h.run("nvsgen.cli.partition_gen", argv, case.dir)
      if case.ref_exit == 0 then
        assert.are.equal("", err)
        assert.are.equal(0, status)
        assert.is_true(h.read(out .. "/out.bin") == h.read(case.dir .. "/expected.bin"),
          "image differs from expected.bin")
      else
        assert.are_not.equal(0, status)
        assert.is_false(h.exists(out .. "/out.bin"))
      end
      h.cleanup(out)
    end)
  end
end)
