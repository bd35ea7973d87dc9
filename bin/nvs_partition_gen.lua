#!/usr/bin/env lua5.4
-- nvs_partition_gen: NVS images from CSV files, as Espressif's tool writes them.
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
os.exit(require("nvsgen.cli.partition_gen").main(arg))
