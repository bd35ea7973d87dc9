#!/usr/bin/env lua5.4
-- mfg_gen: an NVS image per unit from config and values CSV files, as ESP-IDF's mfg_gen.py writes them.
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
os.exit(require("nvsgen.cli.mfg_gen").main(arg))
