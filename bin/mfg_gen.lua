#!/usr/bin/env lua5.4
-- mfg_gen: an NVS image per unit from config and values CSV files, as ESP-IDF's mfg_gen.py writes them.
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
-- Started by `lua` 5.1 to 5.3 (Debian's `lua` once busted is installed): go on under Lua 5.4.
require("nvsgen.lua54")
os.exit(require("nvsgen.cli.mfg_gen").main(arg))
