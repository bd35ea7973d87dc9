/*
 * fuzz_csv.c - libFuzzer target for the CSV path: nvsgen.csv reading the
 * input, nvsgen.csvgen compiling each row, the C encoder and codecs below.
 *
 * The Lua layer runs in an embedded interpreter with nvsgen.core linked in
 * (instrumented, so coverage guides the fuzzer through the encoder and the
 * codecs). A Lua error escaping fuzz_csv.lua means bad data raised instead
 * of being reported, which is a bug: the target aborts.
 *
 * Build: make fuzz (NVSGEN_ROOT is the checkout, for package.path).
 */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int luaopen_nvsgen_core(lua_State *L);

#ifndef NVSGEN_ROOT
#define NVSGEN_ROOT "."
#endif

static lua_State *L;
static int fuzz_ref = LUA_NOREF;

static void start_lua(void)
{
    L = luaL_newstate();
    if (L == NULL)
        abort();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_nvsgen_core);
    lua_setfield(L, -2, "nvsgen.core");
    lua_pop(L, 1);
    if (luaL_dostring(L, "package.path = '" NVSGEN_ROOT "/lua/?.lua;" NVSGEN_ROOT
                         "/lua/?/init.lua;' .. package.path") != LUA_OK ||
        luaL_dofile(L, NVSGEN_ROOT "/fuzz/fuzz_csv.lua") != LUA_OK) {
        fprintf(stderr, "fuzz_csv: %s\n", lua_tostring(L, -1));
        abort();
    }
    fuzz_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (L == NULL)
        start_lua();
    lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_csv: raised: %s\n", lua_tostring(L, -1));
        abort();
    }
    /* Keep the heap from growing over millions of runs. */
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
