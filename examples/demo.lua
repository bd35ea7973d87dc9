#!/usr/bin/env lua5.4
-- examples/demo.lua: writes a partition image from examples/sample.csv with
-- the CSV command line and says where it went. (make demo runs the recipes:
-- gen.lua and examples/*.lua.)
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath

local cli = require("nvsgen.cli.partition_gen")
local status = cli.main({ "generate", "examples/sample.csv", "sample.bin", "0x6000",
  "--outdir", "demo-out" })
if status == 0 then print("demo: image written to demo-out/sample.bin") end
os.exit(status)
