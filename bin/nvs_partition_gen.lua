#!/usr/bin/env lua5.4
-- nvs_partition_gen: NVS images from CSV files, as Espressif's tool writes them.
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
-- Started by `lua` 5.1 to 5.3 (Debian's `lua` once busted is installed): go on under Lua 5.4.
require("nvsgen.lua54")
os.exit(require("nvsgen.cli.partition_gen").main(arg))
