#!/usr/bin/env lua5.4
-- examples/demo.lua: writes a partition image from examples/sample.csv with
-- the CSV command line, into demo-out/ of the current folder, and says
-- where it went. (make demo runs the recipes: gen.lua and examples/*.lua.)
--
--   lua5.4 examples/demo.lua
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
-- Started by `lua` 5.1 to 5.3 (Debian's `lua` once busted is installed): go on under Lua 5.4.
require("nvsgen.lua54")

local lfs = require("lfs")
local cli = require("nvsgen.cli.partition_gen")

-- sample.csv names its files relative to the repository's root, as the
-- reference tool reads them from the working folder: run from there.
local here = assert(lfs.currentdir())
assert(lfs.chdir(root))
local status = cli.main({ "generate", "examples/sample.csv", "sample.bin", "0x6000",
  "--outdir", here .. "/demo-out" })
if status == 0 then print("demo: image written to demo-out/sample.bin") end
os.exit(status)
