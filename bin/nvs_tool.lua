#!/usr/bin/env lua5.4
-- nvs_tool: print and check NVS partition images, as Espressif's nvs_tool.py does.
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
-- Started by `lua` 5.1 to 5.3 (Debian's `lua` once busted is installed): go on under Lua 5.4.
require("nvsgen.lua54")
-- The dumps make many short-lived strings: collecting sooner than Lua's
-- default keeps the peak lower (by a quarter when it was measured, before
-- the dumps went page by page) at no cost in time.
collectgarbage("incremental", 150, 400)
os.exit(require("nvsgen.cli.nvs_tool").main(arg))
