/*
 * lnvsgen.c - the Lua binding: makes the C core the module `nvsgen.core`.
 *
 * Thin by design: argument checking, converting Lua values to what the core
 * takes, and turning core status codes into messages that name the key and
 * the limit.  Bad data comes back as `nil, message` (the Lua layer decides
 * whether that is the caller's mistake and raises at the caller's level).
 * No heap memory is held across a call that can raise: the encoder lives in
 * a userdata whose __gc releases it, and results go through luaL_Buffer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* close, ftruncate: the batch block */

#include <lauxlib.h>
#include <lua.h>

#include "nvs_codec.h"
#include "nvs_crypto.h"
#include "nvs_csv.h"
#include "nvs_encoder.h"
#include "nvs_file.h"
#include "nvs_identity.h"
#include "nvs_matter.h"
#include "nvs_mfg.h"
#include "nvs_proc.h"
#include "nvs_reader.h"
#include "nvs_stage.h"
#include "nvs_visibility.h"

#define ENCODER_MT "nvsgen.encoder"
#define XTS_MT "nvsgen.xts"

/* Makes metatable `name` with metamethods `meta` and, as __index, a table
 * of `methods`; leaves the __index table on the stack for more methods.
 * Every class of the module is made so. */
static void new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__index");
    lua_remove(L, -2);
}

/* ---- value kinds ---------------------------------------------------------- */

/* The names the Lua layer uses for item kinds, with their NVS type codes. */
static const char *const kind_names[] = {"u8",  "i8",    "u16",    "i16",    "u32",  "i32",
                                         "u64", "i64",   "float",  "double", "string", "blob",
                                         NULL};
static const unsigned kind_types[] = {NVS_TYPE_U8,  NVS_TYPE_I8,    NVS_TYPE_U16,   NVS_TYPE_I16,
                                      NVS_TYPE_U32, NVS_TYPE_I32,   NVS_TYPE_U64,   NVS_TYPE_I64,
                                      NVS_TYPE_FLOAT, NVS_TYPE_DOUBLE, NVS_TYPE_STR, NVS_TYPE_BLOB};

/* Inclusive ranges of the integer kinds, as text for messages. */
static const char *int_range_text(unsigned type)
{
    switch (type) {
    case NVS_TYPE_U8: return "0 to 255";
    case NVS_TYPE_I8: return "-128 to 127";
    case NVS_TYPE_U16: return "0 to 65535";
    case NVS_TYPE_I16: return "-32768 to 32767";
    case NVS_TYPE_U32: return "0 to 4294967295";
    case NVS_TYPE_I32: return "-2147483648 to 2147483647";
    case NVS_TYPE_U64: return "0 to 18446744073709551615";
    default: return "-9223372036854775808 to 9223372036854775807";
    }
}

/* ---- the encoder class ---------------------------------------------------- */

static nvs_encoder *check_encoder(lua_State *L)
{
    nvs_encoder *e = (nvs_encoder *)luaL_checkudata(L, 1, ENCODER_MT);
    luaL_argcheck(L, e->image != NULL, 1, "encoder is closed");
    return e;
}

/* core.encoder(size, version) -> encoder | nil, message */
static int l_encoder_new(lua_State *L)
{
    lua_Integer size = luaL_checkinteger(L, 1);
    lua_Integer version = luaL_optinteger(L, 2, 2);
    nvs_encoder *e = (nvs_encoder *)lua_newuserdatauv(L, sizeof *e, 0);
    int rc;
    memset(e, 0, sizeof *e);
    if (size <= 0 || (uint64_t)size > SIZE_MAX || version < 1 || version > 2)
        rc = size <= 0 || (uint64_t)size > SIZE_MAX ? NVS_ERR_SIZE : NVS_ERR_VERSION;
    else
        rc = nvs_encoder_init(e, (size_t)size, (unsigned)version);
    if (rc != NVS_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, nvs_encoder_strerror(rc));
        return 2;
    }
    /* Only a fully made encoder gets the metatable, so __gc never sees a
     * half-made one. */
    luaL_setmetatable(L, ENCODER_MT);
    return 1;
}

static int l_encoder_gc(lua_State *L)
{
    nvs_encoder *e = (nvs_encoder *)luaL_checkudata(L, 1, ENCODER_MT);
    nvs_encoder_free(e);
    return 0;
}

static int l_encoder_tostring(lua_State *L)
{
    nvs_encoder *e = (nvs_encoder *)luaL_checkudata(L, 1, ENCODER_MT);
    if (e->image == NULL)
        lua_pushliteral(L, "nvsgen.encoder (closed)");
    else
        lua_pushfstring(L, "nvsgen.encoder (size 0x%I, version %d)", (lua_Integer)e->size,
                        (int)e->version);
    return 1;
}

/* Pushes the message for an item `what` ('key' or 'namespace') named `name`
 * that found no room; lua_pushfstring has no hex format for a size_t. */
static void push_full(lua_State *L, const nvs_encoder *e, const char *what, const char *name)
{
    char size_hex[32];
    snprintf(size_hex, sizeof size_hex, "0x%zX", e->size);
    lua_pushfstring(L, "%s '%s': does not fit, partition of %s bytes is full", what, name,
                    size_hex);
}

/* The longest start of a string cut by a NUL byte that a message quotes. */
#define NUL_PREFIX_SHOWN 64u

/* Pushes fail and a message naming `key` for core status `rc`. */
static int push_put_error(lua_State *L, const nvs_encoder *e, int rc, int k, const char *key,
                          size_t klen, int value_index)
{
    const char *kind = kind_names[k];
    /* The value's text goes below the two results, which are the top two. */
    const char *value = luaL_tolstring(L, value_index, NULL);
    luaL_pushfail(L);
    switch (rc) {
    case NVS_ERR_KEY_EMPTY:
        lua_pushliteral(L, "empty key");
        break;
    case NVS_ERR_KEY_TOO_LONG:
        lua_pushfstring(L, "key '%s' is %d bytes long, at most 15 are allowed", key, (int)klen);
        break;
    case NVS_ERR_KEY_NUL:
        lua_pushliteral(L, "key contains a NUL byte");
        break;
    case NVS_ERR_NO_NAMESPACE:
        lua_pushfstring(L, "key '%s': no namespace selected before it", key);
        break;
    case NVS_ERR_DUPLICATE_KEY:
        lua_pushfstring(L, "key '%s' is already set in namespace '%s'", key,
                        e->ns_names[e->ns_current - 1]);
        break;
    case NVS_ERR_RANGE:
        if (strcmp(kind, "float") == 0)
            lua_pushfstring(L, "key '%s': %s out of range for float", key, value);
        else
            lua_pushfstring(L, "key '%s': %s out of range for %s (%s)", key, value, kind,
                            int_range_text(kind_types[k]));
        break;
    case NVS_ERR_NAN:
        lua_pushfstring(L, "key '%s': NaN is not allowed for %s", key, kind);
        break;
    case NVS_ERR_TOO_LONG:
        lua_pushfstring(L, "key '%s': %s of %I bytes%s exceeds the limit of %I bytes%s", key, kind,
                        (lua_Integer)e->detail_value,
                        strcmp(kind, "string") == 0 ? " (NUL included)" : "",
                        (lua_Integer)e->detail_limit,
                        e->version == 1 ? " in version 1" : "");
        break;
    case NVS_ERR_FULL:
        push_full(L, e, "key", key);
        break;
    case NVS_ERR_TOO_MANY_CHUNKS:
        lua_pushfstring(L, "key '%s': blob needs more than %d chunks", key, NVS_BLOB_CHUNKS_MAX);
        break;
    case NVS_ERR_STR_NUL:
        /* `value` is the string itself: %s shows it up to the NUL, which
         * is what the firmware would read; a long one is only counted. */
        if (e->detail_value == 0)
            lua_pushfstring(L, "key '%s': string holds a NUL byte at 1; firmware would read an "
                            "empty string", key);
        else if (e->detail_value <= NUL_PREFIX_SHOWN)
            lua_pushfstring(L, "key '%s': string holds a NUL byte at %I; firmware would read only "
                            "'%s'", key, (lua_Integer)e->detail_value + 1, value);
        else
            lua_pushfstring(L, "key '%s': string holds a NUL byte at %I; firmware would read only "
                            "its first %I bytes", key, (lua_Integer)e->detail_value + 1,
                            (lua_Integer)e->detail_value);
        break;
    default:
        lua_pushfstring(L, "key '%s': %s", key, nvs_encoder_strerror(rc));
        break;
    }
    return 2;
}

/* Reads an integer argument as sign and magnitude: a Lua integer, a float
 * with an integral value, or a decimal string (for u64 above 2^63 - 1).
 * Returns 0 if the value is not an integer at all; *overflow is set when
 * the magnitude does not fit 64 bits (out of range for every type). */
static int get_integer(lua_State *L, int idx, int *negative, uint64_t *magnitude, int *overflow)
{
    *overflow = 0;
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len, i = 0;
        const char *s = lua_tolstring(L, idx, &len);
        uint64_t m = 0;
        *negative = 0;
        if (len > 0 && (s[0] == '-' || s[0] == '+')) {
            *negative = s[0] == '-';
            i = 1;
        }
        if (i == len)
            return 0;
        for (; i < len; i++) {
            unsigned d = (unsigned char)s[i] - '0';
            if (d > 9)
                return 0;
            if (m > (UINT64_MAX - d) / 10) {
                *overflow = 1;
                continue;
            }
            m = m * 10 + d;
        }
        *magnitude = m;
        return 1;
    } else {
        int isint;
        lua_Integer v = lua_tointegerx(L, idx, &isint);
        if (!isint || lua_type(L, idx) != LUA_TNUMBER)
            return 0;
        *negative = v < 0;
        *magnitude = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        return 1;
    }
}


/* The kind of argument idx: its name, or its position (1-based) in
 * kind_names, which the Lua layer binds once per setter so that the hot path
 * compares no strings.  Returns the index in kind_names. */
static int check_kind(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer k = lua_tointeger(L, idx);
        luaL_argcheck(L, k >= 1 && k <= (lua_Integer)(sizeof kind_types / sizeof kind_types[0]), idx,
                      "invalid kind code");
        return (int)k - 1;
    }
    return luaL_checkoption(L, idx, NULL, kind_names);
}

/* The type rules every path that adds items shares (a partition's put, a
 * recipe's unit, the CSV generators): strings and blobs take a Lua string,
 * float and double a number, the integer kinds a number or a string of
 * digits.  Pushes fail and a message naming `key` and returns 2 for a value
 * of another type; returns 0 when the type is right. */
static int push_type_problem(lua_State *L, int k, const char *key, size_t klen, int value_index)
{
    unsigned type = kind_types[k];
    int t = lua_type(L, value_index);
    const char *wanted;
    if (type == NVS_TYPE_STR || type == NVS_TYPE_BLOB) {
        if (t == LUA_TSTRING)
            return 0;
        wanted = "a string";
    } else if (type == NVS_TYPE_FLOAT || type == NVS_TYPE_DOUBLE) {
        if (t == LUA_TNUMBER)
            return 0;
        wanted = "a number";
    } else {
        if (t == LUA_TNUMBER || t == LUA_TSTRING)
            return 0;
        wanted = "an integer";
    }
    luaL_pushfail(L);
    /* The key whole, a NUL byte included (the encoder refuses it later). */
    lua_pushliteral(L, "key '");
    lua_pushlstring(L, key, klen);
    lua_pushfstring(L, "': %s expects %s, got %s", kind_names[k], wanted, lua_typename(L, t));
    lua_concat(L, 3);
    return 2;
}

/* Adds the value at value_index as item `key` of kind k (an index in
 * kind_names).  Pushes true (1 result) or fail and a message (2). */
static int put_item(lua_State *L, nvs_encoder *e, int k, const char *key, size_t klen,
                    int value_index)
{
    unsigned type = kind_types[k];
    int rc;
    if (push_type_problem(L, k, key, klen, value_index))
        return 2;
    if (type == NVS_TYPE_STR || type == NVS_TYPE_BLOB) {
        size_t len;
        const uint8_t *data = (const uint8_t *)lua_tolstring(L, value_index, &len);
        rc = type == NVS_TYPE_STR ? nvs_encoder_put_str(e, key, klen, data, len)
                                  : nvs_encoder_put_blob(e, key, klen, data, len);
    } else if (type == NVS_TYPE_FLOAT || type == NVS_TYPE_DOUBLE) {
        rc = nvs_encoder_put_real(e, key, klen, type, lua_tonumber(L, value_index));
    } else {
        int negative, overflow;
        uint64_t magnitude;
        int64_t bits;
        if (!get_integer(L, value_index, &negative, &magnitude, &overflow)) {
            const char *value = luaL_tolstring(L, value_index, NULL);
            luaL_pushfail(L);
            lua_pushfstring(L, "key '%s': %s is not an integer", key, value);
            return 2;
        }
        rc = !overflow && nvs_integer_bits(type, negative, magnitude, &bits)
                 ? nvs_encoder_put_int(e, key, klen, type, bits)
                 : NVS_ERR_RANGE;
    }
    if (rc != NVS_OK)
        return push_put_error(L, e, rc, k, key, klen, value_index);
    lua_pushboolean(L, 1);
    return 1;
}

/* encoder:put(kind, key, value) -> true | nil, message
 * kind is a name ("u8") or its code (see check_kind); a value of a Lua
 * type the kind cannot take is a message, as every other mistake. */
static int l_encoder_put(lua_State *L)
{
    nvs_encoder *e = check_encoder(L);
    int k = check_kind(L, 2);
    size_t klen;
    const char *key = luaL_checklstring(L, 3, &klen);
    return put_item(L, e, k, key, klen, 4);
}

/* Raises the message on top of the stack at the caller's line. */
static int raise_where(lua_State *L)
{
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
    return lua_error(L);
}

/* The unit's encoder: self.encoder (self at 1), checked against the
 * encoders' metatable on every call.  (Remembering the last encoder that
 * passed is not safe: a recipe can take __gc out of that metatable, and the
 * encoder is then freed unnoticed, another userdata taking its address.)
 * Upvalues 2 and 3 of the calling method hold the key "encoder" and that
 * metatable (no registry lookup on the hot path).  Leaves what it pushed
 * on the stack: the methods address their arguments by position and return
 * a value they push last, and popping costs a stack reset on every item of
 * every unit. */
static nvs_encoder *unit_encoder(lua_State *L)
{
    nvs_encoder *e;
    lua_pushvalue(L, lua_upvalueindex(2));
    if (lua_rawget(L, 1) != LUA_TUSERDATA || !lua_getmetatable(L, -1) ||
        !lua_rawequal(L, -1, lua_upvalueindex(3)))
        luaL_error(L, "the unit has no encoder");
    e = (nvs_encoder *)lua_touserdata(L, -2);
    if (e->image == NULL)
        luaL_error(L, "the unit's encoder is closed");
    return e;
}

/* core.item_method(kind) -> method(self, key, value) -> self
 * The method a recipe's unit adds items with (u:u8, u:string, ...), the
 * batch's hot path in one C call: the item goes to self.encoder; when
 * self.rows is a table, { key, kind, value } is appended to it (the unit's
 * CSV).  A mistake raises its message at the recipe's line (the caller). */
static int l_item_method_call(lua_State *L)
{
    int k = (int)lua_tointeger(L, lua_upvalueindex(1));
    nvs_encoder *e;
    size_t klen;
    const char *key;
    if (lua_gettop(L) != 3)
        lua_settop(L, 3);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "%s: key must be a string, got %s", kind_names[k], luaL_typename(L, 2));
    key = lua_tolstring(L, 2, &klen);
    if (!lua_istable(L, 1)) {
        /* u.u8(key, value) for u:u8: the value's type is told first, as
         * the setters written in Lua did. */
        if (push_type_problem(L, k, key, klen, 3))
            return raise_where(L);
        return luaL_typeerror(L, 1, "table");
    }
    e = unit_encoder(L);
    if (put_item(L, e, k, key, klen, 3) != 1)
        return raise_where(L);
    lua_pushvalue(L, lua_upvalueindex(4));
    if (lua_rawget(L, 1) == LUA_TTABLE) {
        lua_createtable(L, 3, 0);
        lua_pushvalue(L, 2);
        lua_rawseti(L, -2, 1);
        lua_pushstring(L, kind_names[k]);
        lua_rawseti(L, -2, 2);
        lua_pushvalue(L, 3);
        lua_rawseti(L, -2, 3);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    }
    lua_pushvalue(L, 1);
    return 1;
}

static int l_item_method(lua_State *L)
{
    lua_pushinteger(L, check_kind(L, 1));
    lua_pushliteral(L, "encoder");
    luaL_getmetatable(L, ENCODER_MT);
    lua_pushliteral(L, "rows");
    lua_pushcclosure(L, l_item_method_call, 4);
    return 1;
}

/* Pushes the message of nvs_encoder_namespace's failure `rc` for `name`. */
static void push_namespace_problem(lua_State *L, nvs_encoder *e, const char *name, size_t len,
                                   int rc)
{
    switch (rc) {
    case NVS_ERR_KEY_TOO_LONG:
        lua_pushfstring(L, "namespace '%s' is %d bytes long, at most 15 are allowed", name,
                        (int)len);
        break;
    case NVS_ERR_TOO_MANY_NAMESPACES:
        lua_pushfstring(L, "namespace '%s': more than %d namespaces", name, NVS_NAMESPACE_MAX);
        break;
    case NVS_ERR_FULL:
        push_full(L, e, "namespace", name);
        break;
    default:
        lua_pushfstring(L, "namespace '%s': %s", name, nvs_encoder_strerror(rc));
        break;
    }
}

/* encoder:namespace(name) -> true | nil, message */
static int l_encoder_namespace(lua_State *L)
{
    nvs_encoder *e = check_encoder(L);
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    int rc = nvs_encoder_namespace(e, name, len);
    if (rc == NVS_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    luaL_pushfail(L);
    push_namespace_problem(L, e, name, len, rc);
    return 2;
}

/* u:namespace(name) -> u: the unit's items from here on go to namespace
 * `name` (self.ns); with self.rows a table, { name, "namespace" } is
 * appended to it.  A mistake raises at the recipe's line. */
static int l_unit_namespace_call(lua_State *L)
{
    nvs_encoder *e;
    size_t len;
    const char *name;
    int rc;
    if (lua_gettop(L) != 2)
        lua_settop(L, 2);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "namespace name must be a string, got %s", luaL_typename(L, 2));
    luaL_checktype(L, 1, LUA_TTABLE);
    name = lua_tolstring(L, 2, &len);
    e = unit_encoder(L);
    rc = nvs_encoder_namespace(e, name, len);
    if (rc != NVS_OK) {
        push_namespace_problem(L, e, name, len, rc);
        return raise_where(L);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* "ns" */
    lua_pushvalue(L, 2);
    lua_rawset(L, 1);
    lua_pushvalue(L, lua_upvalueindex(4)); /* "rows" */
    if (lua_rawget(L, 1) == LUA_TTABLE) {
        lua_createtable(L, 2, 0);
        lua_pushvalue(L, 2);
        lua_rawseti(L, -2, 1);
        lua_pushliteral(L, "namespace");
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    }
    lua_pushvalue(L, 1);
    return 1;
}

/* u:export(name, value) -> value: records `value` (a string or number) in
 * self.exported[name] for the manifest's column `name`; a mistake raises
 * at the recipe's line.  Upvalue 1 is the key "exported". */
static int l_unit_export_call(lua_State *L)
{
    const char *name;
    int t;
    if (lua_gettop(L) != 3)
        lua_settop(L, 3);
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "export: name must be a string");
    name = lua_tostring(L, 2);
    t = lua_type(L, 3);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        return luaL_error(L, "export '%s': a string or number expected, got %s", name,
                          lua_typename(L, t));
    lua_pushvalue(L, lua_upvalueindex(1));
    if (lua_rawget(L, 1) != LUA_TTABLE)
        return luaL_error(L, "the unit has no exports table");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, 4) != LUA_TNIL)
        return luaL_error(L, "export '%s' is set twice", name);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, 4);
    lua_pushvalue(L, 3);
    return 1;
}

/* core.unit_export() -> the method u:export (above) */
static int l_unit_export(lua_State *L)
{
    lua_pushliteral(L, "exported");
    lua_pushcclosure(L, l_unit_export_call, 1);
    return 1;
}

/* core.unit_namespace() -> the method u:namespace (above) */
static int l_unit_namespace(lua_State *L)
{
    lua_pushliteral(L, "ns");
    lua_pushliteral(L, "encoder");
    luaL_getmetatable(L, ENCODER_MT);
    lua_pushliteral(L, "rows");
    lua_pushcclosure(L, l_unit_namespace_call, 4);
    return 1;
}

/* encoder:image() -> string: the output file's bytes */
static int l_encoder_image(lua_State *L)
{
    nvs_encoder *e = check_encoder(L);
    size_t len;
    const uint8_t *image = nvs_encoder_image(e, &len);
    lua_pushlstring(L, (const char *)image, len);
    return 1;
}

/* encoder:reset(): empty again, ready for the next unit */
static int l_encoder_reset(lua_State *L)
{
    nvs_encoder_reset(check_encoder(L));
    return 0;
}

/* ---- codecs ----------------------------------------------------------------- */

/* core.hex_decode(text) -> bytes | nil, message */
static int l_hex_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    uint8_t *out = (uint8_t *)luaL_buffinitsize(L, &b, len / 2 + 1);
    int rc = nvs_hex_decode(s, len, out);
    if (rc != NVS_CODEC_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, nvs_codec_strerror(rc));
        return 2;
    }
    luaL_pushresultsize(&b, len / 2);
    return 1;
}

/* core.hex_encode(bytes) -> text */
static int l_hex_encode(lua_State *L)
{
    size_t len;
    const uint8_t *s = (const uint8_t *)luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 2 * len + 1);
    nvs_hex_encode(s, len, out);
    luaL_pushresultsize(&b, 2 * len);
    return 1;
}

/* core.csv_row(fields) -> line | nil
 * The record csv.format_row makes of a list of strings and integers, in
 * one pass (a batch writes one per unit): a field is quoted only when it
 * holds ',', '"', CR or LF, quotes doubled, the line ending in CRLF.
 * nil for a field of another type: format_row then names it. */
/* Writes integer v in decimal at the end of text[24] (what snprintf's
 * %lld writes, without its cost: a batch writes several per unit) and
 * returns where it starts. */
static size_t decimal_at(char text[24], lua_Integer v)
{
    size_t at = 24;
    /* The magnitude as unsigned: -v would overflow for the smallest. */
    lua_Unsigned m = v < 0 ? 0u - (lua_Unsigned)v : (lua_Unsigned)v;
    do {
        text[--at] = (char)('0' + m % 10);
        m /= 10;
    } while (m != 0);
    if (v < 0)
        text[--at] = '-';
    return at;
}

/* Adds integer v in decimal to b. */
static void add_integer(luaL_Buffer *b, lua_Integer v)
{
    char text[24];
    size_t at = decimal_at(text, v);
    luaL_addlstring(b, text + at, sizeof text - at);
}

static void add_csv_field(luaL_Buffer *b, const char *s, size_t len);

/* core.decimal_name(prefix, n, suffix) -> prefix .. n .. suffix, n an
 * integer in decimal: what string.format gives for a name pattern
 * prefix%dsuffix, without the cost of its parsing and snprintf (a batch
 * names every unit so). */
static int l_decimal_name(lua_State *L)
{
    size_t plen, slen;
    const char *prefix = luaL_checklstring(L, 1, &plen);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *suffix = luaL_checklstring(L, 3, &slen);
    char digits[24], name[256];
    size_t at = decimal_at(digits, n), dlen = sizeof digits - at;
    if (plen + dlen + slen <= sizeof name) {
        /* The usual name, made on the C stack: one string pushed. */
        memcpy(name, prefix, plen);
        memcpy(name + plen, digits + at, dlen);
        memcpy(name + plen + dlen, suffix, slen);
        lua_pushlstring(L, name, plen + dlen + slen);
    } else {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addlstring(&b, prefix, plen);
        luaL_addlstring(&b, digits + at, dlen);
        luaL_addlstring(&b, suffix, slen);
        luaL_pushresult(&b);
    }
    return 1;
}

static int l_csv_row(lua_State *L)
{
    lua_Integer i, n;
    luaL_Buffer b;
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (lua_Integer)luaL_len(L, 1);
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, ',');
        if (lua_geti(L, 1, i) == LUA_TSTRING) {
            size_t len;
            /* The table keeps the string alive once it is off the stack. */
            const char *s = lua_tolstring(L, -1, &len);
            lua_pop(L, 1);
            add_csv_field(&b, s, len);
        } else if (lua_isinteger(L, -1)) {
            lua_Integer v = lua_tointeger(L, -1);
            lua_pop(L, 1);
            add_integer(&b, v);
        } else {
            lua_pushnil(L);
            return 1;
        }
    }
    luaL_addlstring(&b, "\r\n", 2);
    luaL_pushresult(&b);
    return 1;
}

/* core.base64_decode(text) -> bytes | nil, message */
static int l_base64_decode(lua_State *L)
{
    size_t len, outlen = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    uint8_t *out;
    int rc;
    luaL_argcheck(L, len < 0x40000000u, 1, "text too long");
    out = (uint8_t *)luaL_buffinitsize(L, &b, len / 4 * 3 + 3);
    rc = nvs_base64_decode(s, len, out, &outlen);
    if (rc != NVS_CODEC_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, nvs_codec_strerror(rc));
        return 2;
    }
    luaL_pushresultsize(&b, outlen);
    return 1;
}

/* core.base64_encode(bytes) -> text */
static int l_base64_encode(lua_State *L)
{
    size_t len;
    const uint8_t *s = (const uint8_t *)luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char *out;
    luaL_argcheck(L, len < 0x40000000u, 1, "data too long");
    out = luaL_buffinitsize(L, &b, 4 * ((len + 2) / 3) + 1);
    luaL_pushresultsize(&b, nvs_base64_encode(s, len, out));
    return 1;
}

/* core.crc32(bytes) -> integer, the NVS flavour (seeded with 0xFFFFFFFF) */
static int l_crc32(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_pushinteger(L, (lua_Integer)nvs_crc32(s, len));
    return 1;
}

/* ---- plain CSV records ------------------------------------------------------ */

/* The plain record line at byte `pos` (1-based) of `text`, for the two
 * functions below: its start and the length of its text without the '\n'.
 * Returns the position of the next line, or 0 when the line is not plain
 * (the Lua reader then parses it). */
static lua_Integer check_plain_line(lua_State *L, const char **line, size_t *text_len)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_Integer pos = luaL_checkinteger(L, 2);
    int comments = lua_toboolean(L, 3);
    size_t n;
    luaL_argcheck(L, pos >= 1 && (lua_Unsigned)pos <= (lua_Unsigned)len + 1, 2, "out of range");
    *line = text + (pos - 1);
    n = nvs_csv_plain_line(*line, len - (size_t)(pos - 1), comments);
    *text_len = n == 0 ? 0 : n - 1;
    return n == 0 ? 0 : pos + (lua_Integer)n;
}

/* The number of fields of a record line: one more than its commas. */
static size_t count_fields(const char *line, size_t len)
{
    size_t count = 1;
    const char *comma;
    while ((comma = memchr(line, ',', len)) != NULL) {
        len -= (size_t)(comma - line) + 1;
        line = comma + 1;
        count++;
    }
    return count;
}

/* csv_plain_fields(text, pos, comments) -> fields, next pos | nil: the
 * fields of the plain record line at pos (see nvs_csv.h). */
static int l_csv_plain_fields(lua_State *L)
{
    const char *line, *field, *comma;
    size_t text_len, left;
    lua_Integer next = check_plain_line(L, &line, &text_len);
    lua_Integer i;
    if (next == 0) {
        luaL_pushfail(L);
        return 1;
    }
    lua_createtable(L, (int)count_fields(line, text_len), 0);
    field = line;
    left = text_len;
    for (i = 1; (comma = memchr(field, ',', left)) != NULL; i++) {
        lua_pushlstring(L, field, (size_t)(comma - field));
        lua_rawseti(L, -2, i);
        left -= (size_t)(comma - field) + 1;
        field = comma + 1;
    }
    lua_pushlstring(L, field, left);
    lua_rawseti(L, -2, i);
    lua_pushinteger(L, next);
    return 2;
}

/* csv_plain_count(text, pos, comments) -> count, next pos [, field] | nil:
 * the number of fields of the plain record line at pos, and its only field
 * when it has one. */
static int l_csv_plain_count(lua_State *L)
{
    const char *line;
    size_t text_len, count;
    lua_Integer next = check_plain_line(L, &line, &text_len);
    if (next == 0) {
        luaL_pushfail(L);
        return 1;
    }
    count = count_fields(line, text_len);
    lua_pushinteger(L, (lua_Integer)count);
    lua_pushinteger(L, next);
    if (count > 1)
        return 2;
    lua_pushlstring(L, line, text_len);
    return 3;
}

/* ---- files ------------------------------------------------------------------- */

/* Pushes fail, "path: reason" and the errno value for a file write that
 * failed with negative errno rc; returns 3. */
static int push_file_error(lua_State *L, const char *path, int rc)
{
    luaL_pushfail(L);
    if (rc == -EEXIST)
        lua_pushfstring(L, "%s: already exists", path);
    else
        lua_pushfstring(L, "%s: %s", path, strerror(-rc));
    lua_pushinteger(L, -rc);
    return 3;
}

/* How a file is written: the names Lua passes (encoder:write, write_keys),
 * in the order of the enum.  One open/write/close, over an existing file
 * ("direct") or refusing one ("new"); or atomically through a temporary
 * file, over an existing file ("replace") or refusing one ("atomic_new"),
 * as core.write_file does. */
static const char *const write_modes[] = {"direct", "new", "replace", "atomic_new", NULL};
enum { WRITE_DIRECT, WRITE_DIRECT_NEW, WRITE_REPLACE, WRITE_ATOMIC_NEW };

/* Writes len bytes to path as `how` (the enum above) says; 0 or -errno.
 * `folder` is NVS_CURRENT_FOLDER or an output folder (opt_folder) in
 * which `path` is a name. */
static int write_as(int folder, const char *path, const void *data, size_t len, mode_t mode,
                    int how)
{
    if (how == WRITE_DIRECT || how == WRITE_DIRECT_NEW)
        return nvs_write_direct_at(folder, path, data, len, mode, how == WRITE_DIRECT_NEW);
    return nvs_write_file_at(folder, path, data, len, mode, how == WRITE_REPLACE);
}

/* ---- output folders ----------------------------------------------------------- */

/* A folder opened once for the many files of a batch (nvs_folder_open):
 * encoder:write, write_keys and folder:rename take names in it.  Its path
 * is the userdata's user value, to name files in messages. */
#define FOLDER_MT "nvsgen.folder"

typedef struct {
    int fd; /* -1 once closed */
} lfolder;

/* core.folder(path) -> folder | nil, message, errno */
static int l_folder_new(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lfolder *f = (lfolder *)lua_newuserdatauv(L, sizeof *f, 1);
    int fd;
    f->fd = -1;
    luaL_setmetatable(L, FOLDER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    fd = nvs_folder_open(path);
    if (fd < 0)
        return push_file_error(L, path, fd);
    f->fd = fd;
    return 1;
}

static lfolder *check_folder(lua_State *L, int arg)
{
    lfolder *f = (lfolder *)luaL_checkudata(L, arg, FOLDER_MT);
    luaL_argcheck(L, f->fd >= 0, arg, "folder is closed");
    return f;
}

/* The descriptor of the optional folder at `arg` (or NVS_CURRENT_FOLDER). */
static int opt_folder(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return NVS_CURRENT_FOLDER;
    return check_folder(L, arg)->fd;
}

/* How messages name file `name`: as it is, or, given a folder at `arg`,
 * joined to the folder's path (pushed on the stack, only on failures). */
static const char *shown_path(lua_State *L, int arg, const char *name)
{
    size_t len;
    const char *dir;
    if (lua_isnoneornil(L, arg))
        return name;
    lua_getiuservalue(L, arg, 1);
    dir = lua_tolstring(L, -1, &len);
    if (strcmp(dir, ".") == 0)
        return name;
    return lua_pushfstring(L, len > 0 && dir[len - 1] == '/' ? "%s%s" : "%s/%s", dir, name);
}

/* folder:rename(from, to) -> true | nil, message, errno: names in the folder */
static int l_folder_rename(lua_State *L)
{
    lfolder *f = check_folder(L, 1);
    const char *from = luaL_checkstring(L, 2);
    const char *to = luaL_checkstring(L, 3);
    int rc = nvs_rename_at(f->fd, from, to);
    if (rc != 0)
        return push_file_error(L, shown_path(L, 1, from), rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* folder:close(), also __gc and __close */
static int l_folder_close(lua_State *L)
{
    lfolder *f = (lfolder *)luaL_checkudata(L, 1, FOLDER_MT);
    if (f->fd >= 0)
        nvs_folder_close(f->fd);
    f->fd = -1;
    return 0;
}

static int l_folder_tostring(lua_State *L)
{
    lfolder *f = (lfolder *)luaL_checkudata(L, 1, FOLDER_MT);
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "nvsgen.folder (%s%s)", lua_tostring(L, -1), f->fd < 0 ? ", closed" : "");
    return 1;
}

static const luaL_Reg folder_methods[] = {
    {"rename", l_folder_rename}, {"close", l_folder_close}, {NULL, NULL}};

static const luaL_Reg folder_metamethods[] = {{"__gc", l_folder_close},
                                              {"__close", l_folder_close},
                                              {"__tostring", l_folder_tostring},
                                              {NULL, NULL}};

/* ---- batch files and processes ------------------------------------------------
 * What the batch driver needs beyond writing files: a manifest appended in
 * whole records, renames that refuse a name in the way, the folder's lock,
 * stop requests and the workers' watch pipe (nvs_file, nvs_proc). */

#define APPEND_MT "nvsgen.append_file"
#define LOCK_MT "nvsgen.folder_lock"

typedef struct {
    int fd; /* -1 once closed */
    int locked;
} lappend;

static const char *const open_hows[] = {"existing", "create", "new", NULL};

/* core.open_append(folder, name, how, mode [, locked]) -> file | nil, message, errno
 * how: "existing", "create" or "new" (nvs_open_append_at). */
static int l_open_append(lua_State *L)
{
    lfolder *f = check_folder(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int how = luaL_checkoption(L, 3, NULL, open_hows);
    lua_Integer mode = luaL_checkinteger(L, 4);
    int locked = lua_toboolean(L, 5);
    lappend *a;
    int fd;
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 4, "invalid mode");
    lua_settop(L, 5);
    a = (lappend *)lua_newuserdatauv(L, sizeof *a, 1); /* at 6 */
    a->fd = -1;
    a->locked = locked;
    luaL_setmetatable(L, APPEND_MT);
    lua_pushstring(L, shown_path(L, 1, name)); /* the path messages name */
    lua_setiuservalue(L, 6, 1);
    lua_settop(L, 6);
    fd = nvs_open_append_at(f->fd, name, how, (mode_t)mode);
    if (fd == -EINVAL || fd == -EMLINK) {
        const char *shown;
        lua_getiuservalue(L, 6, 1);
        shown = lua_tostring(L, -1);
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", shown,
                        fd == -EINVAL ? "not a plain file (a link or a folder?)"
                                      : "has other hard links");
        lua_pushinteger(L, -fd);
        return 3;
    }
    if (fd < 0) {
        lua_getiuservalue(L, 6, 1);
        return push_file_error(L, lua_tostring(L, -1), fd);
    }
    a->fd = fd;
    return 1;
}

static lappend *check_append(lua_State *L)
{
    lappend *a = (lappend *)luaL_checkudata(L, 1, APPEND_MT);
    luaL_argcheck(L, a->fd >= 0, 1, "file is closed");
    return a;
}

static int append_error(lua_State *L, int rc)
{
    lua_getiuservalue(L, 1, 1);
    return push_file_error(L, lua_tostring(L, -1), rc);
}

/* file:append(data [, sync]) -> new length | nil, message, errno */
static int l_append(lua_State *L)
{
    lappend *a = check_append(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    off_t end = 0;
    int rc = nvs_append(a->fd, data, len, a->locked, lua_toboolean(L, 3), &end);
    if (rc != 0)
        return append_error(L, rc);
    lua_pushinteger(L, (lua_Integer)end);
    return 1;
}

/* file:truncate(length) -> true | nil, message, errno */
static int l_append_truncate(lua_State *L)
{
    lappend *a = check_append(L);
    lua_Integer len = luaL_checkinteger(L, 2);
    luaL_argcheck(L, len >= 0, 2, "negative length");
    if (ftruncate(a->fd, (off_t)len) < 0)
        return append_error(L, -errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_append_close(lua_State *L)
{
    lappend *a = (lappend *)luaL_checkudata(L, 1, APPEND_MT);
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    return 0;
}

/* folder:rename_new(from, to [, replace]) -> true | nil, message, errno
 * Refuses an existing `to` unless replace. */
static int l_folder_rename_new(lua_State *L)
{
    lfolder *f = check_folder(L, 1);
    const char *from = luaL_checkstring(L, 2);
    const char *to = luaL_checkstring(L, 3);
    int rc = nvs_rename_new_at(f->fd, from, to, lua_toboolean(L, 4));
    if (rc != 0)
        return push_file_error(L, shown_path(L, 1, rc == -EEXIST ? to : from), rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* folder:remove(name) -> true | nil, message, errno */
static int l_folder_remove(lua_State *L)
{
    lfolder *f = check_folder(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int rc = nvs_remove_at(f->fd, name);
    if (rc != 0)
        return push_file_error(L, shown_path(L, 1, name), rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* folder:sync() -> true | nil, message, errno */
static int l_folder_sync(lua_State *L)
{
    lfolder *f = check_folder(L, 1);
    int rc = nvs_sync_folder(f->fd);
    if (rc != 0) {
        lua_getiuservalue(L, 1, 1);
        return push_file_error(L, lua_tostring(L, -1), rc);
    }
    lua_pushboolean(L, 1);
    return 1;
}

typedef struct {
    int fd; /* -1 once released */
} llock;

static llock *new_lock(lua_State *L)
{
    llock *k = (llock *)lua_newuserdatauv(L, sizeof *k, 0);
    k->fd = -1;
    luaL_setmetatable(L, LOCK_MT);
    return k;
}

/* core.lock_take(folder[, name]) -> lock | nil, message, errno (EAGAIN:
 * held): the lock of file `name` in the folder, or of the folder itself. */
static int l_lock_take(lua_State *L)
{
    lfolder *f = check_folder(L, 1);
    const char *name = luaL_optstring(L, 2, NULL);
    llock *k = new_lock(L);
    int fd = nvs_lock_take(f->fd, name);
    if (fd < 0) {
        const char *shown;
        if (name != NULL) {
            shown = shown_path(L, 1, name);
        } else {
            lua_getiuservalue(L, 1, 1); /* the folder's path */
            shown = lua_tostring(L, -1);
        }
        if (fd == -EINVAL) {
            /* `shown` is already on the stack, below the three results. */
            luaL_pushfail(L);
            lua_pushfstring(L, "%s: not a plain file (a link, or a file with other hard links)", shown);
            lua_pushinteger(L, EINVAL);
            return 3;
        }
        return push_file_error(L, shown, fd);
    }
    k->fd = fd;
    return 1;
}

/* core.lock_adopt(fd, folder[, name]) -> lock | nil, message, errno: the
 * lock of file `name` in the folder, or of the folder itself, that this
 * process inherited as `fd`. */
static int l_lock_adopt(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    lfolder *f = check_folder(L, 2);
    const char *name = luaL_optstring(L, 3, NULL);
    llock *k;
    int rc;
    luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "invalid descriptor");
    k = new_lock(L);
    rc = nvs_lock_adopt((int)fd, f->fd, name);
    if (rc != 0) {
        if (name != NULL)
            return push_file_error(L, shown_path(L, 2, name), rc);
        lua_getiuservalue(L, 2, 1); /* the folder's path */
        return push_file_error(L, lua_tostring(L, -1), rc);
    }
    k->fd = (int)fd;
    return 1;
}

/* core.lock_held(folder, name) -> boolean | nil, message, errno: whether
 * another open file holds the lock of file `name` in the folder. */
static int l_lock_held(lua_State *L)
{
    lfolder *f = check_folder(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int rc = nvs_lock_held(f->fd, name);
    if (rc < 0)
        return push_file_error(L, shown_path(L, 1, name), rc);
    lua_pushboolean(L, rc);
    return 1;
}

static llock *check_lock(lua_State *L)
{
    llock *k = (llock *)luaL_checkudata(L, 1, LOCK_MT);
    luaL_argcheck(L, k->fd >= 0, 1, "lock is released");
    return k;
}

/* lock:fd() -> descriptor */
static int l_lock_fd(lua_State *L)
{
    lua_pushinteger(L, check_lock(L)->fd);
    return 1;
}

/* lock:release([folder, name]): removes the lock file first when given */
static int l_lock_release(lua_State *L)
{
    llock *k = (llock *)luaL_checkudata(L, 1, LOCK_MT);
    if (k->fd >= 0) {
        int remove = !lua_isnoneornil(L, 2);
        int folder = remove ? check_folder(L, 2)->fd : -1;
        nvs_lock_release(k->fd, folder, remove ? luaL_checkstring(L, 3) : "", remove);
    }
    k->fd = -1;
    return 0;
}

/* core.fd_inherit(fd, inherit) -> true | nil, message */
static int l_fd_inherit(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    int rc;
    luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "invalid descriptor");
    rc = nvs_fd_inherit((int)fd, lua_toboolean(L, 2));
    if (rc != 0)
        return push_file_error(L, "descriptor", rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.fd_close(fd) */
static int l_fd_close(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "invalid descriptor");
    close((int)fd);
    return 0;
}

static int l_signals_catch(lua_State *L)
{
    int rc = nvs_signals_catch();
    if (rc != 0)
        return push_file_error(L, "sigaction", rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_signals_default(lua_State *L)
{
    (void)L;
    nvs_signals_default();
    return 0;
}

/* ---- stopping a running unit ----------------------------------------------
 * A recipe's unit that loops or waits must not keep a stopped batch alive,
 * yet watching for the request while every unit runs (a count hook) slows
 * all of them.  So nothing is hooked until a stop request comes: the
 * signal handler then sets a hook (lua_sethook may be called from a signal
 * handler, as lua.c does for SIGINT), and the hook raises the batch's stop
 * value while the unit runner (core.run_units) runs. */

/* The thread running the batch's units, while core.stop_units is set. */
static lua_State *volatile units_thread;
/* How many core.run_units calls are running in units_thread: the hook
 * looks at this count, not at the stack, which a recipe recursing deeply
 * makes too long to walk at every event. */
static int units_running;
/* Registry keys (their addresses) of the stop value and of units_thread
 * (kept there so that it is not collected while the handler may use it). */
static const char unit_stop_key = 's';
static const char units_thread_key = 't';

static void unit_stop_hook(lua_State *L, lua_Debug *event)
{
    (void)event;
    if (units_running > 0) {
        /* The hook stays: raised again should the unit catch it. */
        lua_rawgetp(L, LUA_REGISTRYINDEX, &unit_stop_key);
        lua_error(L);
    }
    /* Between units: the batch looks at the request itself. */
    lua_sethook(L, NULL, 0, 0);
}

static void stop_running_unit(int sig)
{
    lua_State *L = units_thread;
    (void)sig;
    if (L != NULL)
        lua_sethook(L, unit_stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1000);
}

static int run_units_from(lua_State *L, lua_Integer done);

/* A unit function's error (at the top of the stack) as core.run_units
 * gives it: raised, or, when called protected (argument 3), returned after
 * false. */
static int units_failed(lua_State *L)
{
    if (!lua_toboolean(L, 3))
        return lua_error(L);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

/* Where core.run_units goes on once the unit function it called (through
 * lua_pcallk) has yielded and then returned or raised. */
static int run_units_k(lua_State *L, int status, lua_KContext done)
{
    if (status != LUA_OK && status != LUA_YIELD) {
        units_running--;
        return units_failed(L);
    }
    return run_units_from(L, (lua_Integer)done);
}

/* Calls units[done + 1](u), ... units[#units](u); true when called
 * protected, else nothing. */
static int run_units_from(lua_State *L, lua_Integer done)
{
    lua_Integer i, n = luaL_len(L, 1);
    for (i = done + 1; i <= n; i++) {
        lua_geti(L, 1, i);
        lua_pushvalue(L, 2);
        /* A unit may yield (a batch run in a coroutine), as through pcall. */
        if (lua_pcallk(L, 1, 0, 0, (lua_KContext)i, run_units_k) != LUA_OK) {
            units_running--;
            return units_failed(L);
        }
    }
    units_running--;
    if (!lua_toboolean(L, 3))
        return 0;
    lua_pushboolean(L, 1);
    return 1;
}

/* core.run_units(units, u [, protected]): calls units[1](u), ...,
 * units[#units](u) (a recipe's unit functions); what they raise is raised,
 * or with `protected` returned after false (true when none raised), as
 * pcall would give it, without the cost of a pcall around the call.
 * While it runs, a stop request (core.stop_units) raises the stop value
 * inside it. */
static int l_run_units(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 3);
    if (units_thread == L && nvs_stop_signal() != 0) {
        /* The request came after the batch last looked, and the hook it
         * set may have removed itself since, between units. */
        lua_rawgetp(L, LUA_REGISTRYINDEX, &unit_stop_key);
        return units_failed(L);
    }
    units_running++;
    return run_units_from(L, 0);
}

/* core.stop_units(stop_value) | core.stop_units(nil)
 * From now on (or no longer, with nil), a stop request makes the code
 * running inside core.run_units in this thread raise `stop_value`, again
 * and again until it has left core.run_units. */
static int l_stop_units(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        nvs_signals_on_stop(NULL);
        units_thread = NULL;
        units_running = 0;
        lua_sethook(L, NULL, 0, 0);
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &unit_stop_key);
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &units_thread_key);
        return 0;
    }
    lua_settop(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &unit_stop_key);
    /* (A batch abandoned in a coroutine left its count.) */
    units_running = 0;
    lua_pushthread(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &units_thread_key);
    units_thread = L;
    nvs_signals_on_stop(stop_running_unit);
    /* A request that came before is seen by the batch between units. */
    return 0;
}

/* core.stop_signal() -> signal number | nil */
static int l_stop_signal(lua_State *L)
{
    int sig = nvs_stop_signal();
    if (sig == 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, sig);
    return 1;
}

/* core.signal_reraise(sig): dies of `sig` (returns only if it does not). */
static int l_signal_reraise(lua_State *L)
{
    lua_Integer sig = luaL_checkinteger(L, 1);
    luaL_argcheck(L, sig > 0 && sig < 65, 1, "not a signal number");
    nvs_signal_reraise((int)sig);
    return 0;
}

/* core.watch_open() -> reading end's descriptor | nil, message */
static int l_watch_open(lua_State *L)
{
    int fd = nvs_watch_open();
    if (fd < 0)
        return push_file_error(L, "pipe", fd);
    lua_pushinteger(L, fd);
    return 1;
}

static int l_watch_close(lua_State *L)
{
    (void)L;
    nvs_watch_close();
    return 0;
}

/* core.watch_gone(fd) -> boolean */
static int l_watch_gone(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "invalid descriptor");
    lua_pushboolean(L, nvs_watch_gone((int)fd));
    return 1;
}

/* core.exit_guard(message | nil): see nvs_exit_guard */
static int l_exit_guard(lua_State *L)
{
    int rc = nvs_exit_guard(luaL_optstring(L, 1, NULL));
    if (rc != 0)
        return push_file_error(L, "atexit", rc);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg batch_folder_methods[] = {
    {"rename_new", l_folder_rename_new}, {"remove", l_folder_remove}, {"sync", l_folder_sync},
    {NULL, NULL}};

static const luaL_Reg append_methods[] = {
    {"append", l_append}, {"truncate", l_append_truncate}, {"close", l_append_close},
    {NULL, NULL}};

static const luaL_Reg lock_methods[] = {{"fd", l_lock_fd}, {"release", l_lock_release}, {NULL, NULL}};

static const luaL_Reg batch_functions[] = {
    {"open_append", l_open_append}, {"lock_take", l_lock_take},
    {"lock_adopt", l_lock_adopt},   {"fd_inherit", l_fd_inherit},
    {"fd_close", l_fd_close},       {"signals_catch", l_signals_catch},
    {"signals_default", l_signals_default}, {"stop_signal", l_stop_signal},
    {"stop_units", l_stop_units},
    {"run_units", l_run_units},
    {"watch_open", l_watch_open},   {"watch_close", l_watch_close},
    {"watch_gone", l_watch_gone},   {"exit_guard", l_exit_guard},
    {"signal_reraise", l_signal_reraise}, {"lock_held", l_lock_held},
    {NULL, NULL}};

/* Adds the functions above to the module table on top of the stack, and
 * their classes. */
static void open_batch(lua_State *L)
{
    luaL_getmetatable(L, FOLDER_MT);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, batch_folder_methods, 0);
    lua_pop(L, 2);
    static const luaL_Reg append_meta[] = {{"__gc", l_append_close}, {NULL, NULL}};
    static const luaL_Reg lock_meta[] = {{"__gc", l_lock_release}, {NULL, NULL}};
    new_class(L, APPEND_MT, append_meta, append_methods);
    new_class(L, LOCK_MT, lock_meta, lock_methods);
    lua_pop(L, 2);
    luaL_setfuncs(L, batch_functions, 0);
}

/* ---- end of batch files and processes ---------------------------------------- */

/* core.write_file(path, data [, mode [, replace [, folder]]]) -> true | nil, message
 * Atomic: a temporary file renamed (or linked, when not replacing) into
 * place.  With a folder, path is a name in it.  `replace` may also name
 * how to write, as encoder:write does ("direct", "new", "replace",
 * "atomic_new"): "new" for a batch's pending files, which need no
 * temporary file of their own. */
static int l_write_file(lua_State *L)
{
    int how = lua_type(L, 4) == LUA_TSTRING           ? luaL_checkoption(L, 4, NULL, write_modes)
              : lua_isnoneornil(L, 4) || lua_toboolean(L, 4) ? WRITE_REPLACE
                                                          : WRITE_ATOMIC_NEW;
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    lua_Integer mode = luaL_optinteger(L, 3, 0644);
    int folder = opt_folder(L, 5);
    int rc;
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 3, "invalid mode");
    rc = write_as(folder, path, data, len, (mode_t)mode, how);
    if (rc != 0)
        return push_file_error(L, shown_path(L, 5, path), rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* A file's bytes on the C heap while they become a Lua string: owned by a
 * userdata of this class, so a memory error raised by lua_pushlstring
 * frees them through __gc instead of leaking them. */
#define FILE_BYTES_MT "nvsgen.file_bytes"

typedef struct {
    unsigned char *data;
} file_bytes;

static int l_file_bytes_gc(lua_State *L)
{
    file_bytes *box = (file_bytes *)luaL_checkudata(L, 1, FILE_BYTES_MT);
    free(box->data);
    box->data = NULL;
    return 0;
}

/* core.read_file(path) -> bytes | nil, "path: reason", errno */
static int l_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    file_bytes *box = (file_bytes *)lua_newuserdatauv(L, sizeof *box, 0);
    size_t len;
    int rc;
    box->data = NULL;
    luaL_setmetatable(L, FILE_BYTES_MT);
    rc = nvs_read_file(path, &box->data, &len);
    if (rc != 0)
        return push_file_error(L, path, rc);
    lua_pushlstring(L, (const char *)box->data, len);
    free(box->data);
    box->data = NULL;
    return 1;
}

/* ---- cryptography ----------------------------------------------------------- */

/* An XTS context: the keyed cipher for one 64-byte key, reused for every
 * image encrypted with that key.  ctx is NULL only once closed. */
typedef struct {
    nvs_xts_ctx *ctx;
} lxts;

static lxts *check_xts(lua_State *L)
{
    lxts *x = (lxts *)luaL_checkudata(L, 1, XTS_MT);
    luaL_argcheck(L, x->ctx != NULL, 1, "xts context is closed");
    return x;
}

/* Pushes fail and the message for crypto status rc; returns 2. */
static int push_crypto_error(lua_State *L, int rc)
{
    luaL_pushfail(L);
    lua_pushstring(L, nvs_crypto_strerror(rc));
    return 2;
}

/* Reads argument idx as a 64-byte XTS key; pushes fail, message and returns
 * NULL if it has another length (data, not a programming mistake). */
static const uint8_t *get_xts_key(lua_State *L, int idx)
{
    size_t len;
    const char *key = luaL_checklstring(L, idx, &len);
    if (len != NVS_XTS_KEY_SIZE) {
        luaL_pushfail(L);
        lua_pushfstring(L, "key is %I bytes long, 64 are needed", (lua_Integer)len);
        return NULL;
    }
    return (const uint8_t *)key;
}

/* core.xts(key) -> xts | nil, message */
static int l_xts_new(lua_State *L)
{
    const uint8_t *key = get_xts_key(L, 1);
    lxts *x;
    int rc;
    if (key == NULL)
        return 2;
    /* The userdata first: making it may raise, and then nothing is held. */
    x = (lxts *)lua_newuserdatauv(L, sizeof *x, 0);
    x->ctx = nvs_xts_new(key, &rc);
    if (x->ctx == NULL)
        return push_crypto_error(L, rc);
    luaL_setmetatable(L, XTS_MT);
    return 1;
}

static int l_xts_gc(lua_State *L)
{
    lxts *x = (lxts *)luaL_checkudata(L, 1, XTS_MT);
    nvs_xts_free(x->ctx);
    x->ctx = NULL;
    return 0;
}

static int l_xts_tostring(lua_State *L)
{
    lxts *x = (lxts *)luaL_checkudata(L, 1, XTS_MT);
    lua_pushstring(L, x->ctx == NULL ? "nvsgen.xts (closed)" : "nvsgen.xts");
    return 1;
}

/* The bytes of argument idx: a string, or an encoder's current image. */
static const uint8_t *get_image(lua_State *L, int idx, size_t *len)
{
    nvs_encoder *e = (nvs_encoder *)luaL_testudata(L, idx, ENCODER_MT);
    if (e != NULL) {
        luaL_argcheck(L, e->image != NULL, idx, "encoder is closed");
        return nvs_encoder_image(e, len);
    }
    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_typeerror(L, idx, "string or encoder");
    return (const uint8_t *)lua_tolstring(L, idx, len);
}

/* Copies an image into a new string, encrypted or decrypted entry by entry
 * as its bitmaps say.  ctx may be NULL: then key (64 bytes) keys a context
 * for this call only, freed before anything can raise.  Pushes the result
 * or fail and a message. */
static int crypt_image(lua_State *L, nvs_xts_ctx *ctx, const uint8_t *key, int idx, int encrypt)
{
    size_t len;
    const uint8_t *image = get_image(L, idx, &len);
    luaL_Buffer b;
    uint8_t *out;
    int rc;
    if (len % NVS_PAGE_SIZE != 0)
        return push_crypto_error(L, NVS_CRYPTO_EIMAGE_SIZE);
    out = (uint8_t *)luaL_buffinitsize(L, &b, len);
    memcpy(out, image, len);
    if (ctx != NULL) {
        rc = nvs_xts_image(ctx, out, len, encrypt);
    } else {
        nvs_xts_ctx *once = nvs_xts_new(key, &rc);
        if (once != NULL) {
            rc = nvs_xts_image(once, out, len, encrypt);
            nvs_xts_free(once);
        }
    }
    if (rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, rc);
    luaL_pushresultsize(&b, len);
    return 1;
}

/* xts:rekey(key) -> xts | nil, message: the same context, keyed anew */
static int l_xts_rekey(lua_State *L)
{
    lxts *x = check_xts(L);
    const uint8_t *key = get_xts_key(L, 2);
    int rc;
    if (key == NULL)
        return 2;
    rc = nvs_xts_rekey(x->ctx, key);
    if (rc != NVS_CRYPTO_OK) {
        /* A key refused before use leaves the old one; after an OpenSSL
         * failure the context is closed, so that nothing is encrypted with
         * a key half set. */
        if (rc != NVS_CRYPTO_EKEY_HALVES) {
            nvs_xts_free(x->ctx);
            x->ctx = NULL;
        }
        return push_crypto_error(L, rc);
    }
    lua_settop(L, 1);
    return 1;
}

/* xts:encrypt(image | encoder) -> encrypted image | nil, message */
static int l_xts_encrypt(lua_State *L)
{
    return crypt_image(L, check_xts(L)->ctx, NULL, 2, 1);
}

/* xts:decrypt(image) -> plain image | nil, message */
static int l_xts_decrypt(lua_State *L)
{
    return crypt_image(L, check_xts(L)->ctx, NULL, 2, 0);
}

/* core.encrypt_image(key, image | encoder) -> encrypted image | nil, message
 * One call per unit for a batch with a new key per image. */
static int l_encrypt_image(lua_State *L)
{
    const uint8_t *key = get_xts_key(L, 1);
    if (key == NULL)
        return 2;
    return crypt_image(L, NULL, key, 2, 1);
}

/* core.decrypt_image(key, image) -> plain image | nil, message */
static int l_decrypt_image(lua_State *L)
{
    const uint8_t *key = get_xts_key(L, 1);
    if (key == NULL)
        return 2;
    return crypt_image(L, NULL, key, 2, 0);
}

/* core.keys_build(key) -> 4096-byte keys partition | nil, message */
static int l_keys_build(lua_State *L)
{
    const uint8_t *key = get_xts_key(L, 1);
    luaL_Buffer b;
    uint8_t *out;
    int rc;
    if (key == NULL)
        return 2;
    out = (uint8_t *)luaL_buffinitsize(L, &b, NVS_KEYS_PARTITION_SIZE);
    rc = nvs_keys_build(out, key);
    if (rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, rc);
    luaL_pushresultsize(&b, NVS_KEYS_PARTITION_SIZE);
    return 1;
}

/* core.keys_parse(bytes) -> 64-byte key | nil, message */
static int l_keys_parse(lua_State *L)
{
    size_t len;
    const uint8_t *buf = (const uint8_t *)luaL_checklstring(L, 1, &len);
    uint8_t key[NVS_XTS_KEY_SIZE];
    int rc = nvs_keys_parse(buf, len, key);
    if (rc == NVS_CRYPTO_EKEYS_SIZE) {
        luaL_pushfail(L);
        lua_pushfstring(L, "keys partition is %I bytes long, 4096 are needed", (lua_Integer)len);
        return 2;
    }
    if (rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, rc);
    lua_pushlstring(L, (const char *)key, sizeof key);
    return 1;
}

/* core.key_from_hmac(hmac_key) -> 64-byte key | nil, message */
static int l_key_from_hmac(lua_State *L)
{
    size_t len;
    const uint8_t *hmac = (const uint8_t *)luaL_checklstring(L, 1, &len);
    uint8_t key[NVS_XTS_KEY_SIZE];
    int rc;
    if (len != NVS_HMAC_KEY_SIZE) {
        luaL_pushfail(L);
        lua_pushfstring(L, "hmac key is %I bytes long, 32 are needed", (lua_Integer)len);
        return 2;
    }
    rc = nvs_keys_from_hmac(key, hmac, len);
    if (rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, rc);
    lua_pushlstring(L, (const char *)key, sizeof key);
    return 1;
}

/* core.generate_key() -> 64 random bytes whose halves differ | nil, message */
static int l_generate_key(lua_State *L)
{
    uint8_t key[NVS_XTS_KEY_SIZE];
    int rc = nvs_keys_generate(key);
    if (rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, rc);
    lua_pushlstring(L, (const char *)key, sizeof key);
    return 1;
}

/* core.random_bytes(n) -> n bytes from the OS CSPRNG | nil, message */
static int l_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_Buffer b;
    uint8_t *out;
    int rc;
    luaL_argcheck(L, n >= 0 && n <= 0x40000000, 1, "out of range");
    out = (uint8_t *)luaL_buffinitsize(L, &b, (size_t)n);
    rc = nvs_random_bytes(out, (size_t)n);
    if (rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, rc);
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

/* Pushes n (0 to 2^30) random hex digits from the OS CSPRNG, or fail and
 * a message. */
static int push_random_hex(lua_State *L, lua_Integer n)
{
    size_t bytes, used;
    luaL_Buffer b;
    uint8_t random[256];
    char *out;
    bytes = ((size_t)n + 1) / 2;
    /* What of `random` is ever written, wiped after (all of it, unit after
     * unit, for a 16-byte secret would cost more than making it). */
    used = bytes < sizeof random ? bytes : sizeof random;
    out = luaL_buffinitsize(L, &b, 2 * bytes + 1);
    while (bytes > 0) {
        size_t step = bytes < sizeof random ? bytes : sizeof random;
        int rc = nvs_random_bytes(random, step);
        if (rc != NVS_CRYPTO_OK) {
            nvs_wipe(random, used);
            return push_crypto_error(L, rc);
        }
        nvs_hex_encode(random, step, out);
        out += 2 * step;
        bytes -= step;
    }
    nvs_wipe(random, used);
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

/* core.random_hex(n) -> n lowercase hex digits from the CSPRNG (what
 * hex_encode(random_bytes(ceil(n / 2))) cut to n gives, in one call: a
 * recipe's per-unit secrets) */
static int l_random_hex(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 0x40000000, 1, "out of range");
    return push_random_hex(L, n);
}

/* u:random_hex(n) for a unit whose random source is the OS CSPRNG: n
 * random hex digits; a count that is not an integer from 0 to 2^30
 * raises at the recipe's line. */
static int l_unit_random_hex(lua_State *L)
{
    lua_Integer n;
    if (!lua_isinteger(L, 2) || (n = lua_tointeger(L, 2)) < 0 || n > 0x40000000)
        return luaL_error(L, "random_hex: an integer count from 0 to %d expected", 0x40000000);
    return push_random_hex(L, n);
}

/* core.sha256(data [, hex]) -> 32 raw bytes, or 64 hex digits if hex */
static int l_sha256(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    int hex = lua_toboolean(L, 2);
    uint8_t digest[NVS_SHA256_SIZE];
    int rc = nvs_sha256(data, len, digest);
    if (rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, rc);
    if (hex) {
        char text[2 * NVS_SHA256_SIZE + 1];
        nvs_hex_encode(digest, sizeof digest, text);
        lua_pushlstring(L, text, 2 * NVS_SHA256_SIZE);
    } else {
        lua_pushlstring(L, (const char *)digest, sizeof digest);
    }
    return 1;
}

/* core.pbkdf2_sha1(password, salt, iterations, length) -> bytes | nil, message */
static int l_pbkdf2_sha1(lua_State *L)
{
    size_t plen, slen;
    const char *pass = luaL_checklstring(L, 1, &plen);
    const char *salt = luaL_checklstring(L, 2, &slen);
    lua_Integer iterations = luaL_checkinteger(L, 3);
    lua_Integer length = luaL_checkinteger(L, 4);
    luaL_Buffer b;
    uint8_t *out;
    int rc;
    luaL_argcheck(L, iterations >= 1 && iterations <= 0x7fffffff, 3, "out of range");
    luaL_argcheck(L, length >= 1 && length <= 0x100000, 4, "out of range");
    out = (uint8_t *)luaL_buffinitsize(L, &b, (size_t)length);
    rc = nvs_pbkdf2_sha1(pass, plen, salt, slen, (unsigned)iterations, out, (size_t)length);
    if (rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, rc);
    luaL_pushresultsize(&b, (size_t)length);
    return 1;
}

/* The bytes of e's image as they are written: its buffer, or with x an
 * encrypted copy (*copy, malloc'd: the caller frees it).  NVS_CRYPTO_OK
 * or an nvs_crypto error. */
static int image_bytes(nvs_encoder *e, const lxts *x, const uint8_t **data, size_t *len,
                       uint8_t **copy)
{
    *copy = NULL;
    *data = nvs_encoder_image(e, len);
    if (x == NULL)
        return NVS_CRYPTO_OK;
    if (*len % NVS_PAGE_SIZE != 0)
        return NVS_CRYPTO_EIMAGE_SIZE;
    *copy = (uint8_t *)malloc(*len);
    if (*copy == NULL)
        return NVS_CRYPTO_ENOMEM;
    memcpy(*copy, *data, *len);
    *data = *copy;
    return nvs_xts_image(x->ctx, *copy, *len, 1);
}

/* Pushes the 64 hex digits of a SHA-256 digest. */
static void push_digest_hex(lua_State *L, const uint8_t digest[NVS_SHA256_SIZE])
{
    char text[2 * NVS_SHA256_SIZE];
    nvs_hex_encode(digest, NVS_SHA256_SIZE, text);
    lua_pushlstring(L, text, sizeof text);
}

/* encoder:write(path, how [, mode [, xts [, hash [, folder]]]]) -> bytes
 *                        written [, sha256 hex] | nil, message, errno
 * Writes the encoder's image (encrypted with xts if given) straight from its
 * buffer, the batch's hot path: no Lua string of 24 KB per unit.  With hash
 * the SHA-256 of exactly the bytes written comes back as 64 hex digits.
 * With a folder (core.folder), path is a name in it.
 * The encrypted copy is the only heap memory, freed before anything can
 * raise (every argument is checked first). */
static int l_encoder_write(lua_State *L)
{
    nvs_encoder *e = check_encoder(L);
    const char *path = luaL_checkstring(L, 2);
    int how = luaL_checkoption(L, 3, NULL, write_modes);
    lua_Integer mode = luaL_optinteger(L, 4, 0644);
    lxts *x = lua_isnoneornil(L, 5) ? NULL : (lxts *)luaL_checkudata(L, 5, XTS_MT);
    int hash = lua_toboolean(L, 6);
    int folder = opt_folder(L, 7);
    uint8_t digest[NVS_SHA256_SIZE];
    uint8_t *copy;
    const uint8_t *data;
    size_t len;
    int write_rc = 0, crypto_rc; /* -errno; enum nvs_crypto_err */
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 4, "invalid mode");
    luaL_argcheck(L, x == NULL || x->ctx != NULL, 5, "xts context is closed");
    crypto_rc = image_bytes(e, x, &data, &len, &copy);
    if (crypto_rc == NVS_CRYPTO_OK) {
        write_rc = write_as(folder, path, data, len, (mode_t)mode, how);
        if (write_rc == 0 && hash)
            crypto_rc = nvs_sha256(data, len, digest);
    }
    free(copy);
    if (crypto_rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, crypto_rc);
    if (write_rc != 0)
        return push_file_error(L, shown_path(L, 7, path), write_rc);
    lua_pushinteger(L, (lua_Integer)len);
    if (!hash)
        return 1;
    push_digest_hex(L, digest);
    return 2;
}

/* core.write_keys(path, key, how [, folder]) -> true | nil, message [, errno]
 * The keys partition of a 64-byte key, mode 0600, written as encoder:write's
 * `how` says (with a folder, path is a name in it).  It is built in a
 * buffer wiped afterwards: no copy of the keys stays behind in a Lua
 * string. */
static int l_write_keys(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int how = luaL_checkoption(L, 3, NULL, write_modes);
    int folder = opt_folder(L, 4);
    const uint8_t *key;
    uint8_t keys[NVS_KEYS_PARTITION_SIZE];
    int rc;
    lua_settop(L, 4);
    key = get_xts_key(L, 2);
    if (key == NULL) {
        /* get_xts_key left fail and a message (at 6): it names the file */
        const char *shown = shown_path(L, 4, path);
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", shown, lua_tostring(L, 6));
        return 2;
    }
    nvs_keys_build(keys, key);
    rc = write_as(folder, path, keys, sizeof keys, 0600, how);
    nvs_wipe(keys, sizeof keys);
    if (rc != 0)
        return push_file_error(L, shown_path(L, 4, path), rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- staged units ------------------------------------------------------------ */

/* A batch's staged units (nvs_stage): the driver's per-unit files and
 * manifest records, written and kept in C so that a unit costs the Lua
 * side one call.  Its user value is the folder (kept open and alive, and
 * what messages name files with). */
#define STAGE_MT "nvsgen.stage"

typedef struct {
    nvs_stage *stage; /* NULL once freed */
} lstage;

/* core.stage(folder) -> stage */
static int l_stage_new(lua_State *L)
{
    lfolder *f = check_folder(L, 1);
    lstage *st = (lstage *)lua_newuserdatauv(L, sizeof *st, 1);
    st->stage = NULL;
    luaL_setmetatable(L, STAGE_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    st->stage = nvs_stage_new(f->fd);
    if (st->stage == NULL)
        return luaL_error(L, "not enough memory");
    return 1;
}

/* The stage at argument 1, its folder still open. */
static nvs_stage *check_stage(lua_State *L)
{
    lstage *st = (lstage *)luaL_checkudata(L, 1, STAGE_MT);
    lfolder *f;
    luaL_argcheck(L, st->stage != NULL, 1, "stage is freed");
    lua_getiuservalue(L, 1, 1);
    f = (lfolder *)lua_touserdata(L, -1);
    luaL_argcheck(L, f != NULL && f->fd >= 0, 1, "the stage's folder is closed");
    lua_pop(L, 1);
    return st->stage;
}

/* Pushes fail, "FOLDER/NAME[SUFFIX]: reason", errno (stage at 1). */
static int push_stage_error(lua_State *L, const char *name, const char *suffix, int rc)
{
    int folder;
    const char *file;
    lua_getiuservalue(L, 1, 1);
    folder = lua_gettop(L);
    file = lua_pushfstring(L, "%s%s", name, suffix);
    return push_file_error(L, shown_path(L, folder, file), rc);
}

/* stage:file(name, data, mode) -> true | nil, message, errno
 * A file of the unit being staged (a keys file, the unit's CSV, a file of
 * a unit of several). */
static int l_stage_file(lua_State *L)
{
    nvs_stage *s = check_stage(L);
    const char *name = luaL_checkstring(L, 2);
    size_t len;
    const char *data = luaL_checklstring(L, 3, &len);
    lua_Integer mode = luaL_checkinteger(L, 4);
    int rc;
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 4, "invalid mode");
    rc = nvs_stage_write(s, name, data, len, (mode_t)mode);
    if (rc != 0)
        return push_stage_error(L, name, NVS_PENDING_SUFFIX, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* stage:keys(name, key) -> true | nil, message [, errno]
 * The unit's keys partition of a 64-byte key, 0600, built in a buffer that
 * is wiped afterwards. */
static int l_stage_keys(lua_State *L)
{
    nvs_stage *s = check_stage(L);
    const char *name = luaL_checkstring(L, 2);
    const uint8_t *key;
    uint8_t keys[NVS_KEYS_PARTITION_SIZE];
    int rc;
    lua_settop(L, 3);
    key = get_xts_key(L, 3);
    if (key == NULL)
        return 2;
    nvs_keys_build(keys, key);
    rc = nvs_stage_write(s, name, keys, sizeof keys, 0600);
    nvs_wipe(keys, sizeof keys);
    if (rc != 0)
        return push_stage_error(L, name, NVS_PENDING_SUFFIX, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* Adds one CSV field (RFC 4180: quoted when it holds a comma, a quote or a
 * line break, quotes doubled). */
static void add_csv_field(luaL_Buffer *b, const char *s, size_t len)
{
    size_t k;
    for (k = 0; k < len && s[k] != ',' && s[k] != '"' && s[k] != '\r' && s[k] != '\n'; k++)
        ;
    if (k == len) {
        luaL_addlstring(b, s, len);
        return;
    }
    luaL_addchar(b, '"');
    for (k = 0; k < len; k++) {
        if (s[k] == '"')
            luaL_addchar(b, '"');
        luaL_addchar(b, s[k]);
    }
    luaL_addchar(b, '"');
}

/* Whether the key at the top of the stack is one of the strings of the
 * list at `columns`. */
static int is_column(lua_State *L, int columns)
{
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, columns);
    for (i = 1; i <= n; i++) {
        int same;
        lua_rawgeti(L, columns, i);
        same = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
        if (same)
            return 1;
    }
    return 0;
}

/* stage:image(encoder, name, xts, serial, keys_name, exported, columns)
 *   -> units staged | nil, message, errno | false, export
 * The batch's hot path: ends the unit being staged with its image (the
 * encoder's, encrypted with xts if given) written as NAME.part, and its
 * manifest record: serial, name, size, SHA-256, keys_name, then the value
 * of each of the manifest's export columns in `exported` (a string or a
 * number; nothing when the unit exported none).  An export that is not a
 * column is refused (false and its name) before anything is written.
 * On failure the unit's files are removed. */
static int l_stage_image(lua_State *L)
{
    nvs_stage *s = check_stage(L);
    nvs_encoder *e = (nvs_encoder *)luaL_checkudata(L, 2, ENCODER_MT);
    const char *name = luaL_checkstring(L, 3);
    lxts *x = lua_isnoneornil(L, 4) ? NULL : (lxts *)luaL_checkudata(L, 4, XTS_MT);
    lua_Integer serial = luaL_checkinteger(L, 5);
    size_t keys_len, record_len;
    const char *keys_name = luaL_checklstring(L, 6, &keys_len);
    uint8_t digest[NVS_SHA256_SIZE];
    uint8_t *copy;
    const uint8_t *data;
    const char *record;
    size_t len;
    int rc, crypto_rc;
    luaL_Buffer b;
    luaL_argcheck(L, e->image != NULL, 2, "encoder is closed");
    luaL_argcheck(L, x == NULL || x->ctx != NULL, 4, "xts context is closed");
    luaL_checktype(L, 7, LUA_TTABLE);
    luaL_checktype(L, 8, LUA_TTABLE);
    lua_settop(L, 8);
    lua_pushnil(L);
    while (lua_next(L, 7) != 0) {
        lua_pop(L, 1);
        if (!is_column(L, 8)) {
            nvs_stage_abandon(s);
            lua_pushboolean(L, 0);
            lua_insert(L, -2);
            return 2;
        }
    }
    crypto_rc = image_bytes(e, x, &data, &len, &copy);
    rc = 0;
    if (crypto_rc == NVS_CRYPTO_OK) {
        rc = nvs_stage_write(s, name, data, len, 0644);
        if (rc == 0)
            crypto_rc = nvs_sha256(data, len, digest);
    }
    free(copy);
    if (crypto_rc != NVS_CRYPTO_OK || rc != 0) {
        nvs_stage_abandon(s);
        if (rc != 0)
            return push_stage_error(L, name, NVS_PENDING_SUFFIX, rc);
        return push_crypto_error(L, crypto_rc);
    }
    luaL_buffinit(L, &b);
    add_integer(&b, serial);
    luaL_addchar(&b, ',');
    add_csv_field(&b, name, strlen(name));
    luaL_addchar(&b, ',');
    add_integer(&b, (lua_Integer)len);
    luaL_addchar(&b, ',');
    {
        char hex[2 * NVS_SHA256_SIZE];
        nvs_hex_encode(digest, sizeof digest, hex);
        luaL_addlstring(&b, hex, sizeof hex);
    }
    luaL_addchar(&b, ',');
    add_csv_field(&b, keys_name, keys_len);
    {
        lua_Integer i, n = (lua_Integer)lua_rawlen(L, 8);
        for (i = 1; i <= n; i++) {
            /* A number's text (as tostring writes it) is copied out: the
             * value is popped before the buffer is added to, which may
             * move the buffer onto the stack's top (a string stays alive
             * in `exported`). */
            char number[64];
            const char *v = NULL;
            size_t vlen = 0;
            luaL_addchar(&b, ',');
            lua_rawgeti(L, 8, i);
            /* the column's value: a string, a number or nothing */
            if (lua_rawget(L, 7) != LUA_TNIL) {
                int is_number = lua_type(L, -1) == LUA_TNUMBER;
                v = lua_tolstring(L, -1, &vlen);
                if (v != NULL && is_number) {
                    if (vlen >= sizeof number)
                        vlen = sizeof number - 1;
                    memcpy(number, v, vlen);
                    v = number;
                }
            }
            lua_pop(L, 1);
            if (v != NULL)
                add_csv_field(&b, v, vlen);
        }
    }
    luaL_addlstring(&b, "\r\n", 2);
    /* The record is copied from the buffer: no Lua string is made of it
     * (the buffer's stack slot is dropped with the arguments). */
    record = luaL_buffaddr(&b);
    record_len = luaL_bufflen(&b);
    if (nvs_stage_end_unit(s, record, record_len) != 0) {
        nvs_stage_abandon(s);
        return luaL_error(L, "not enough memory");
    }
    lua_settop(L, 8);
    lua_pushinteger(L, (lua_Integer)nvs_stage_units(s));
    return 1;
}

/* stage:record(text) -> units staged: ends the unit being staged (its
 * files given by stage:file) with its manifest record. */
static int l_stage_record(lua_State *L)
{
    nvs_stage *s = check_stage(L);
    size_t len;
    const char *record = luaL_checklstring(L, 2, &len);
    if (nvs_stage_end_unit(s, record, len) != 0)
        return luaL_error(L, "not enough memory");
    lua_pushinteger(L, (lua_Integer)nvs_stage_units(s));
    return 1;
}

/* stage:abandon(): removes the files of the unit being staged. */
static int l_stage_abandon(lua_State *L)
{
    nvs_stage_abandon(check_stage(L));
    return 0;
}

/* stage:units() -> the number of units staged */
static int l_stage_units(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)nvs_stage_units(check_stage(L)));
    return 1;
}

/* stage:records(units) -> the records of the first `units` units */
static int l_stage_records(lua_State *L)
{
    nvs_stage *s = check_stage(L);
    lua_Integer units = luaL_checkinteger(L, 2);
    size_t len;
    const char *text;
    luaL_argcheck(L, units >= 0, 2, "negative count");
    text = nvs_stage_records(s, (size_t)units, &len);
    lua_pushlstring(L, text, len);
    return 1;
}

/* stage:drop_newest(): the newest unit's files removed, staged no longer */
static int l_stage_drop_newest(lua_State *L)
{
    nvs_stage_drop_newest(check_stage(L));
    return 0;
}

/* stage:put_in_place([replace]) -> true | nil, message, errno, name
 * Renames every staged file to its name (an existing name refused unless
 * replace); on failure `name` is the file it stopped at, and the files
 * from there on keep their pending names.  The stage is empty after. */
static int l_stage_put_in_place(lua_State *L)
{
    nvs_stage *s = check_stage(L);
    const char *failed = NULL;
    int rc = nvs_stage_put_in_place(s, lua_toboolean(L, 2), &failed);
    if (rc != 0) {
        lua_settop(L, 1);
        lua_pushstring(L, failed);
        /* as folder:rename_new names it: the name taken, or the file */
        if (rc == -EEXIST)
            push_stage_error(L, failed, "", rc);
        else
            push_stage_error(L, failed, NVS_PENDING_SUFFIX, rc);
        lua_pushvalue(L, 2);
        return 4;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* stage:discard(): every staged file removed, the stage empty */
static int l_stage_discard(lua_State *L)
{
    nvs_stage_discard(check_stage(L));
    return 0;
}

/* __gc: the memory freed; pending files stay (a rerun deals with them). */
static int l_stage_gc(lua_State *L)
{
    lstage *st = (lstage *)luaL_checkudata(L, 1, STAGE_MT);
    nvs_stage_free(st->stage);
    st->stage = NULL;
    return 0;
}

static const luaL_Reg stage_methods[] = {
    {"file", l_stage_file},       {"keys", l_stage_keys},
    {"image", l_stage_image},     {"record", l_stage_record},
    {"abandon", l_stage_abandon}, {"units", l_stage_units},
    {"records", l_stage_records}, {"drop_newest", l_stage_drop_newest},
    {"put_in_place", l_stage_put_in_place}, {"discard", l_stage_discard},
    {NULL, NULL}};

static const luaL_Reg stage_metamethods[] = {{"__gc", l_stage_gc}, {NULL, NULL}};

static const luaL_Reg xts_methods[] = {
    {"encrypt", l_xts_encrypt}, {"decrypt", l_xts_decrypt}, {"rekey", l_xts_rekey}, {NULL, NULL}};

static const luaL_Reg xts_metamethods[] = {
    {"__gc", l_xts_gc}, {"__close", l_xts_gc}, {"__tostring", l_xts_tostring}, {NULL, NULL}};

/* ---- the image reader ------------------------------------------------------- */

/* While nvs_read()'s result is turned into tables it lives in a userdata of
 * this class: a memory error raised by Lua half-way then frees it through
 * __gc instead of leaking it. */
#define READ_RESULT_MT "nvsgen.read_result"

static int l_read_result_gc(lua_State *L)
{
    nvs_read_free((nvs_read_result *)luaL_checkudata(L, 1, READ_RESULT_MT));
    return 0;
}

/* t[name] = integer, t being on the top of the stack. */
static void set_int(lua_State *L, const char *name, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, name);
}

static void set_bool(lua_State *L, const char *name, int v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, name);
}

static void set_str(lua_State *L, const char *name, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, name);
}

/* A u64 above 2^63 - 1 does not fit a Lua integer: its decimal text, the
 * form encoder:put() accepts for it. */
static void push_u64(lua_State *L, uint64_t u)
{
    if (u > (uint64_t)INT64_MAX) {
        char text[24];
        snprintf(text, sizeof text, "%" PRIu64, u);
        lua_pushstring(L, text);
    } else {
        lua_pushinteger(L, (lua_Integer)u);
    }
}

/* Pushes the table of one page. */
static void push_page(lua_State *L, const nvs_read_page *p, size_t index)
{
    lua_createtable(L, 0, 16);
    set_int(L, "index", (lua_Integer)index);
    set_str(L, "state", nvs_read_page_state_name(p->state));
    set_int(L, "state_word", (lua_Integer)p->state);
    set_int(L, "seq", (lua_Integer)p->seq);
    set_int(L, "version", p->version == NVS_VERSION1_BYTE   ? 1
                          : p->version == NVS_VERSION2_BYTE ? 2
                                                            : 0);
    set_int(L, "version_byte", p->version);
    set_bool(L, "blank", p->blank);
    set_bool(L, "header_ok", p->header_ok);
    set_bool(L, "loaded", p->loaded);
    set_int(L, "crc_stored", (lua_Integer)p->crc_stored);
    set_int(L, "crc_computed", (lua_Integer)p->crc_computed);
    lua_createtable(L, 0, 4);
    set_int(L, "empty", p->bitmap_empty);
    set_int(L, "written", p->bitmap_written);
    set_int(L, "erased", p->bitmap_erased);
    set_int(L, "illegal", p->bitmap_illegal);
    lua_setfield(L, -2, "bitmap");
    set_int(L, "used", p->used);
    set_int(L, "erased", p->erased);
    set_int(L, "free", p->free);
}

/* Pushes the table of one item: where it lies, its names and its value. */
static void push_item(lua_State *L, const nvs_read_result *r, const nvs_read_item *it)
{
    const char *kind = nvs_read_type_name(it->type);
    lua_createtable(L, 0, 12);
    set_int(L, "page", (lua_Integer)it->page);
    set_int(L, "entry", (lua_Integer)it->entry);
    set_int(L, "ns_index", it->ns_index);
    set_str(L, "namespace", it->ns_name != NULL ? it->ns_name : "");
    set_str(L, "key", it->key);
    set_str(L, "nvs_type", kind);
    set_int(L, "span", it->span);
    switch (it->type) {
    case NVS_TYPE_U64:
        push_u64(L, it->u);
        break;
    case NVS_TYPE_FLOAT:
    case NVS_TYPE_DOUBLE:
        lua_pushnumber(L, (lua_Number)it->f);
        break;
    case NVS_TYPE_STR:
        /* the stored size counts the NUL, the value does not */
        lua_pushlstring(L, (const char *)it->data,
                        it->size > 0 && it->data[it->size - 1] == 0 ? it->size - 1 : it->size);
        break;
    case NVS_TYPE_BLOB:
    case NVS_TYPE_BLOB_IDX:
        lua_pushlstring(L, (const char *)it->data, it->size);
        break;
    default:
        lua_pushinteger(L, (lua_Integer)it->i);
        break;
    }
    lua_setfield(L, -2, "value");
    if (it->type == NVS_TYPE_STR || it->type == NVS_TYPE_BLOB || it->type == NVS_TYPE_BLOB_IDX)
        set_int(L, "size", (lua_Integer)it->size);
    if (it->type == NVS_TYPE_BLOB || it->type == NVS_TYPE_BLOB_IDX) {
        /* the kind a recipe names, whichever format the blob is stored in */
        kind = "blob";
        set_int(L, "blob_version", it->type == NVS_TYPE_BLOB ? 1 : 2);
    }
    set_str(L, "type", kind);
    if (it->type == NVS_TYPE_BLOB_IDX) {
        size_t k;
        set_int(L, "chunk_start", it->chunk_start);
        lua_createtable(L, it->chunk_count, 0);
        for (k = 0; k < it->chunk_count && it->first_chunk + k < r->n_chunks; k++) {
            const nvs_read_chunk *ch = &r->chunks[it->first_chunk + k];
            lua_createtable(L, 0, 4);
            set_int(L, "page", (lua_Integer)ch->page);
            set_int(L, "entry", (lua_Integer)ch->entry);
            set_int(L, "chunk_index", ch->chunk_index);
            set_int(L, "size", (lua_Integer)ch->size);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        lua_setfield(L, -2, "chunks");
    }
}

/* Pushes the table of one problem; page and entry are left out where the
 * problem concerns the whole image or the whole page. */
static void push_problem(lua_State *L, const nvs_read_problem *pb)
{
    lua_createtable(L, 0, 5);
    if (pb->page >= 0)
        set_int(L, "page", pb->page);
    if (pb->entry >= 0)
        set_int(L, "entry", pb->entry);
    set_str(L, "severity", pb->severity == NVS_SEVERITY_ERROR ? "error" : "warning");
    set_int(L, "code", pb->code);
    set_str(L, "reason", pb->reason);
}

/* core.read(image [, read_only [, problems_only]]) -> table | nil, message
 * The image is plain (decrypted).  With problems_only the items are left out
 * (an empty list): a caller that prints only the problems does not hold a
 * table per item.  Pages, entries and problems are numbered
 * from 0 as in the image.  Stack: the result userdata sits below the table
 * being built until the table is complete. */
static int l_read(lua_State *L)
{
    size_t len, k;
    const uint8_t *image = get_image(L, 1, &len);
    unsigned flags = lua_toboolean(L, 2) ? NVS_READ_READ_ONLY : 0u;
    int problems_only = lua_toboolean(L, 3);
    nvs_read_result *r;
    int rc;
    /* zeroed and given its metatable before nvs_read() fills it: __gc may
     * run on it at any point after */
    r = (nvs_read_result *)lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, READ_RESULT_MT);
    rc = nvs_read(image, len, flags, r);
    if (rc != NVS_READ_OK) {
        nvs_read_free(r);
        luaL_pushfail(L);
        lua_pushstring(L, rc == NVS_READ_ENOMEM ? "not enough memory" : "invalid argument");
        return 2;
    }
    lua_createtable(L, 0, 8);
    lua_createtable(L, (int)r->n_pages, 0);
    for (k = 0; k < r->n_pages; k++) {
        push_page(L, &r->pages[k], k);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "pages");
    lua_createtable(L, (int)r->n_namespaces, 0);
    for (k = 0; k < r->n_namespaces; k++) {
        const nvs_read_namespace *ns = &r->namespaces[k];
        lua_createtable(L, 0, 4);
        set_int(L, "index", ns->index);
        set_str(L, "name", ns->name);
        set_int(L, "page", (lua_Integer)ns->page);
        set_int(L, "entry", (lua_Integer)ns->entry);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "namespaces");
    lua_createtable(L, problems_only ? 0 : (int)r->n_items, 0);
    for (k = 0; !problems_only && k < r->n_items; k++) {
        push_item(L, r, &r->items[k]);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "items");
    lua_createtable(L, (int)r->n_problems, 0);
    for (k = 0; k < r->n_problems; k++) {
        push_problem(L, &r->problems[k]);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    lua_setfield(L, -2, "problems");
    lua_createtable(L, 0, 5);
    set_int(L, "used_entries", (lua_Integer)r->used_entries);
    set_int(L, "free_entries", (lua_Integer)r->free_entries);
    set_int(L, "total_entries", (lua_Integer)r->total_entries);
    set_int(L, "available_entries", (lua_Integer)r->available_entries);
    set_int(L, "namespace_count", (lua_Integer)r->namespace_count);
    lua_setfield(L, -2, "stats");
    set_int(L, "errors", (lua_Integer)r->n_errors);
    set_int(L, "warnings", (lua_Integer)r->n_warnings);
    set_bool(L, "read_only", r->read_only);
    /* the tables hold copies of everything: release the C result now
     * rather than at the next collection */
    nvs_read_free(r);
    return 1;
}

/* ==== identity: keys, certificates, requests, KDFs, Matter codes ============
 * Everything of nvs_identity.h and nvs_matter.h, registered on the core
 * table by register_identity() at the end of this block. */

#define KEY_MT "nvsgen.key"
#define CERT_MT "nvsgen.cert"
#define CSR_MT "nvsgen.csr"
#define IDBUF_MT "nvsgen.idbuf"

/* A key: private unless loaded as a public key; a sealed key (a CA's)
 * never gives its private part out. */
typedef struct {
    EVP_PKEY *pkey;
    int has_private;
    int sealed;
} lkey;

typedef struct {
    X509 *x;
} lcert;

typedef struct {
    X509_REQ *req;
} lcsr;

/* An encoding from the core (OPENSSL_malloc'd, may hold a private key),
 * owned by a userdata anchored on the stack so that a memory error raised
 * while it becomes a Lua string still frees (and wipes) it. */
typedef struct {
    uint8_t *p;
    size_t n;
} idbuf;

static int l_idbuf_gc(lua_State *L)
{
    idbuf *b = (idbuf *)luaL_checkudata(L, 1, IDBUF_MT);
    OPENSSL_clear_free(b->p, b->n);
    b->p = NULL;
    b->n = 0;
    return 0;
}

static idbuf *push_idbuf(lua_State *L)
{
    idbuf *b = (idbuf *)lua_newuserdatauv(L, sizeof *b, 0);
    b->p = NULL;
    b->n = 0;
    luaL_setmetatable(L, IDBUF_MT);
    return b;
}

/* Pushes the buffer's bytes as a string, then wipes and frees it. */
static int idbuf_result(lua_State *L, idbuf *b)
{
    lua_pushlstring(L, (const char *)b->p, b->n);
    OPENSSL_clear_free(b->p, b->n);
    b->p = NULL;
    b->n = 0;
    return 1;
}

static int push_id_error(lua_State *L, int rc)
{
    luaL_pushfail(L);
    lua_pushstring(L, nvs_id_strerror(rc));
    return 2;
}

static lkey *check_key(lua_State *L, int idx)
{
    lkey *k = (lkey *)luaL_checkudata(L, idx, KEY_MT);
    luaL_argcheck(L, k->pkey != NULL, idx, "key is freed");
    return k;
}

static lcert *check_cert(lua_State *L, int idx)
{
    lcert *c = (lcert *)luaL_checkudata(L, idx, CERT_MT);
    luaL_argcheck(L, c->x != NULL, idx, "certificate is freed");
    return c;
}

/* The certificate with its public key decoded (see nvs_id_cert_complete);
 * raises only on memory exhaustion. */
static X509 *whole_cert(lua_State *L, lcert *c)
{
    int rc = nvs_id_cert_complete(&c->x);
    if (rc != NVS_ID_OK)
        luaL_error(L, "certificate: %s", nvs_id_strerror(rc));
    return c->x;
}

/* A new, empty key userdata on the stack (metatable set once it holds a key). */
static lkey *new_key(lua_State *L)
{
    lkey *k = (lkey *)lua_newuserdatauv(L, sizeof *k, 0);
    k->pkey = NULL;
    k->has_private = 0;
    k->sealed = 0;
    return k;
}

/* core.key_generate(type) -> key | nil, message */
static int l_key_generate(lua_State *L)
{
    const char *type = luaL_checkstring(L, 1);
    lkey *k = new_key(L);
    int rc;
    k->pkey = nvs_id_key_generate(type, &rc);
    if (k->pkey == NULL) {
        luaL_pushfail(L);
        if (rc == NVS_ID_EKEYTYPE)
            lua_pushfstring(L, "unknown key type '%s' (p256, p384, ed25519, rsa2048, rsa3072)",
                            type);
        else
            lua_pushstring(L, nvs_id_strerror(rc));
        return 2;
    }
    k->has_private = 1;
    luaL_setmetatable(L, KEY_MT);
    return 1;
}

/* core.key_load(bytes [, public]) -> key | nil, message */
static int l_key_load(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    int public_only = lua_toboolean(L, 2);
    lkey *k = new_key(L);
    int rc;
    k->pkey = public_only ? nvs_id_pubkey_load(data, len, &rc) : nvs_id_key_load(data, len, &rc);
    if (k->pkey == NULL) {
        luaL_pushfail(L);
        lua_pushstring(L, public_only ? "not a public key in PEM or DER" : nvs_id_strerror(rc));
        return 2;
    }
    k->has_private = !public_only;
    luaL_setmetatable(L, KEY_MT);
    return 1;
}

/* core.key_read(path) -> key | nil, "path: message": the file's bytes
 * never become a Lua string (which nothing could wipe): read, parsed and
 * wiped here. For a CA's key, kept for a whole batch. */
static int l_key_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lkey *k = new_key(L);
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = nvs_read_file(path, &data, &len);
    if (rc != 0) {
        push_file_error(L, path, rc);
        lua_pop(L, 1); /* nil and the message, as the other key readers */
        return 2;
    }
    k->pkey = nvs_id_key_load(data, len, &rc);
    nvs_wipe(data, len);
    free(data);
    if (k->pkey == NULL) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", path, nvs_id_strerror(rc));
        return 2;
    }
    k->has_private = 1;
    luaL_setmetatable(L, KEY_MT);
    return 1;
}

static int l_key_gc(lua_State *L)
{
    lkey *k = (lkey *)luaL_checkudata(L, 1, KEY_MT);
    /* OpenSSL clears the private scalar or seed when it frees the key */
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
    return 0;
}

static int l_key_tostring(lua_State *L)
{
    lkey *k = (lkey *)luaL_checkudata(L, 1, KEY_MT);
    const char *type = k->pkey != NULL ? nvs_id_key_type(k->pkey) : NULL;
    lua_pushfstring(L, "nvsgen.key (%s%s)", k->pkey == NULL ? "freed" : type ? type : "other",
                    k->pkey != NULL && !k->has_private ? ", public" : "");
    return 1;
}

/* key:type() -> "p256" | "p384" | "ed25519" | "rsa2048" | "rsa3072" | "rsa" | nil */
static int l_key_type(lua_State *L)
{
    const char *type = nvs_id_key_type(check_key(L, 1)->pkey);
    if (type == NULL)
        luaL_pushfail(L);
    else
        lua_pushstring(L, type);
    return 1;
}

/* key:has_private() -> boolean */
static int l_key_has_private(lua_State *L)
{
    lkey *k = check_key(L, 1);
    lua_pushboolean(L, k->has_private && !k->sealed);
    return 1;
}

/* key:seal(): its private part is never exported again */
static int l_key_seal(lua_State *L)
{
    check_key(L, 1)->sealed = 1;
    lua_settop(L, 1);
    return 1;
}

/* key:<form>() -> bytes | nil, message; the form is the closure's upvalue */
static int l_key_export(lua_State *L)
{
    lkey *k = check_key(L, 1);
    int form = (int)lua_tointeger(L, lua_upvalueindex(1));
    int private_form = form == NVS_ID_PRIV_PKCS8_DER || form == NVS_ID_PRIV_SEC1_DER ||
                       form == NVS_ID_PRIV_PEM || form == NVS_ID_PRIV_RAW;
    idbuf *b;
    int rc;
    if (private_form && k->sealed) {
        luaL_pushfail(L);
        lua_pushstring(L, "the private key of a CA is never exported");
        return 2;
    }
    if (private_form && !k->has_private)
        return push_id_error(L, NVS_ID_EPUBLIC);
    b = push_idbuf(L);
    rc = nvs_id_key_export(k->pkey, form, &b->p, &b->n);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    return idbuf_result(L, b);
}

/* key:matches(other) -> boolean: same public key (other a key or certificate) */
static int l_key_matches(lua_State *L)
{
    lkey *k = check_key(L, 1);
    lcert *c = (lcert *)luaL_testudata(L, 2, CERT_MT);
    if (c != NULL) {
        luaL_argcheck(L, c->x != NULL, 2, "certificate is freed");
        lua_pushboolean(L, nvs_id_cert_check_key(whole_cert(L, c), k->pkey) == NVS_ID_OK);
    } else {
        lua_pushboolean(L, nvs_id_key_public_equal(k->pkey, check_key(L, 2)->pkey));
    }
    return 1;
}

/* Reads the flat list {name1, value1, name2, value2, ...} at idx (nil:
 * none) into a userdata-held array left on the stack; returns the array
 * and its pair count. The strings stay alive in the table. */
static nvs_id_pair *get_pairs(lua_State *L, int idx, size_t *n, const char *what)
{
    nvs_id_pair *pairs;
    lua_Integer len, i;
    *n = 0;
    if (lua_isnoneornil(L, idx)) {
        lua_pushnil(L);
        return NULL;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    len = luaL_len(L, idx);
    if (len % 2 != 0)
        luaL_error(L, "%s: names and values must alternate", what);
    pairs = (nvs_id_pair *)lua_newuserdatauv(L, sizeof *pairs * (size_t)(len / 2 + 1), 0);
    for (i = 0; i < len; i++) {
        const char *s;
        lua_geti(L, idx, i + 1);
        s = lua_tostring(L, -1);
        if (s == NULL || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: item %d is not a string", what, (int)(i + 1));
        lua_pop(L, 1); /* still referenced by the table */
        if (i % 2 == 0)
            pairs[i / 2].name = s;
        else
            pairs[i / 2].value = s;
    }
    *n = (size_t)(len / 2);
    return pairs;
}

/* Pushes fail, the message, and the 1-based index of the refused pair. */
static int push_pair_error(lua_State *L, int rc, size_t bad)
{
    luaL_pushfail(L);
    lua_pushstring(L, nvs_id_strerror(rc));
    if (rc == NVS_ID_ESUBJECT || rc == NVS_ID_EEXTENSION) {
        lua_pushinteger(L, (lua_Integer)bad + 1);
        return 3;
    }
    return 2;
}

static lcert *new_cert(lua_State *L)
{
    lcert *c = (lcert *)lua_newuserdatauv(L, sizeof *c, 0);
    c->x = NULL;
    return c;
}

/* core.cert_issue(subject, extensions, not_before, not_after, subject_key,
 *                 issuer_cert|nil, issuer_key) -> cert | nil, message [, index] */
static int l_cert_issue(lua_State *L)
{
    nvs_id_cert_spec spec;
    lkey *subject_key, *issuer_key;
    lcert *issuer = NULL, *c;
    size_t bad = 0;
    int rc;
    lua_settop(L, 7); /* the arrays made below go above the arguments */
    memset(&spec, 0, sizeof spec);
    spec.not_before = (int64_t)luaL_checkinteger(L, 3);
    spec.not_after = (int64_t)luaL_checkinteger(L, 4);
    subject_key = check_key(L, 5);
    if (!lua_isnil(L, 6))
        issuer = check_cert(L, 6);
    issuer_key = check_key(L, 7);
    luaL_argcheck(L, issuer_key->has_private, 7, "issuer key has no private part");
    spec.subject = get_pairs(L, 1, &spec.n_subject, "subject");
    spec.extensions = get_pairs(L, 2, &spec.n_extensions, "extensions");
    c = new_cert(L);
    rc = nvs_id_cert_issue(&spec, subject_key->pkey, issuer ? issuer->x : NULL,
                           issuer_key->pkey, &c->x, &bad);
    if (rc != NVS_ID_OK)
        return push_pair_error(L, rc, bad);
    luaL_setmetatable(L, CERT_MT);
    return 1;
}

/* core.cert_load(bytes) -> cert | nil, message */
static int l_cert_load(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    lcert *c = new_cert(L);
    int rc;
    c->x = nvs_id_cert_load(data, len, &rc);
    if (c->x == NULL)
        return push_id_error(L, rc);
    luaL_setmetatable(L, CERT_MT);
    return 1;
}

static int l_cert_gc(lua_State *L)
{
    lcert *c = (lcert *)luaL_checkudata(L, 1, CERT_MT);
    X509_free(c->x);
    c->x = NULL;
    return 0;
}

static int l_cert_tostring(lua_State *L)
{
    lcert *c = (lcert *)luaL_checkudata(L, 1, CERT_MT);
    lua_pushstring(L, c->x == NULL ? "nvsgen.cert (freed)" : "nvsgen.cert");
    return 1;
}

/* cert:der() / cert:pem() -> bytes (upvalue: pem) */
static int l_cert_export(lua_State *L)
{
    lcert *c = check_cert(L, 1);
    idbuf *b = push_idbuf(L);
    int rc = nvs_id_cert_export(c->x, (int)lua_tointeger(L, lua_upvalueindex(1)), &b->p, &b->n);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    return idbuf_result(L, b);
}

/* Pushes an X509_NAME as one RFC 2253 line; values of attributes OpenSSL
 * has no name for (Matter's vendor ID) as text rather than a hex dump. */
static int push_name(lua_State *L, const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;
    if (bio == NULL || X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~XN_FLAG_DUMP_UNKNOWN_FIELDS) < 0) {
        BIO_free(bio);
        return push_id_error(L, NVS_ID_EOPENSSL);
    }
    n = BIO_get_mem_data(bio, &p);
    /* copy before freeing: the push may raise, so hold nothing across it */
    {
        luaL_Buffer lb;
        luaL_buffinit(L, &lb);
        luaL_addlstring(&lb, p != NULL ? p : "", n > 0 ? (size_t)n : 0);
        BIO_free(bio);
        luaL_pushresult(&lb);
    }
    return 1;
}

/* cert:subject() / cert:issuer() -> "CN=...,O=..." (upvalue: issuer) */
static int l_cert_name(lua_State *L)
{
    lcert *c = check_cert(L, 1);
    return push_name(L, lua_tointeger(L, lua_upvalueindex(1)) ? X509_get_issuer_name(c->x)
                                                               : X509_get_subject_name(c->x));
}

/* cert:serial() -> the serial number's bytes (big-endian, as in DER) */
static int l_cert_serial(lua_State *L)
{
    lcert *c = check_cert(L, 1);
    const ASN1_INTEGER *s = X509_get0_serialNumber(c->x);
    lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
    return 1;
}

/* cert:public_key() -> key (public only) */
static int l_cert_public_key(lua_State *L)
{
    lcert *c = check_cert(L, 1);
    lkey *k;
    whole_cert(L, c);
    k = new_key(L);
    k->pkey = X509_get_pubkey(c->x);
    if (k->pkey == NULL)
        return push_id_error(L, NVS_ID_ECERT);
    luaL_setmetatable(L, KEY_MT);
    return 1;
}

/* cert:validity() -> not_before, not_after ("YYYY-MM-DD HH:MM:SS", UTC) | nil, message */
static int l_cert_validity(lua_State *L)
{
    char nb[NVS_ID_TIME_TEXT], na[NVS_ID_TIME_TEXT];
    int rc = nvs_id_cert_validity(check_cert(L, 1)->x, nb, na);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    lua_pushstring(L, nb);
    lua_pushstring(L, na);
    return 2;
}

/* cert:key_id() -> the subject key identifier's bytes | nil when it has none */
static int l_cert_key_id(lua_State *L)
{
    const uint8_t *id = NULL;
    size_t n = 0;
    if (nvs_id_cert_key_id(whole_cert(L, check_cert(L, 1)), &id, &n) != NVS_ID_OK) {
        luaL_pushfail(L);
        return 1;
    }
    lua_pushlstring(L, (const char *)id, n);
    return 1;
}

/* cert:is_ca() -> boolean */
static int l_cert_is_ca(lua_State *L)
{
    /* OpenSSL caches what it finds in the certificate: whole first */
    lua_pushboolean(L, nvs_id_cert_check_ca(whole_cert(L, check_cert(L, 1))) == NVS_ID_OK);
    return 1;
}

/* Reads the list of certificates at idx into a userdata-held array. */
static X509 **get_certs(lua_State *L, int idx, size_t *n)
{
    X509 **list;
    lua_Integer len, i;
    *n = 0;
    if (lua_isnoneornil(L, idx)) {
        lua_pushnil(L);
        return NULL;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    len = luaL_len(L, idx);
    list = (X509 **)lua_newuserdatauv(L, sizeof *list * (size_t)(len + 1), 0);
    for (i = 0; i < len; i++) {
        lcert *c;
        lua_geti(L, idx, i + 1);
        c = (lcert *)luaL_testudata(L, -1, CERT_MT);
        if (c == NULL || c->x == NULL)
            luaL_error(L, "certificate list: item %d is not a certificate", (int)(i + 1));
        list[i] = whole_cert(L, c);
        lua_pop(L, 1);
    }
    *n = (size_t)len;
    return list;
}

/* cert:verify(roots [, chain [, at]]) -> true | nil, reason
 * OpenSSL's X509_verify_cert against the trusted roots. */
static int l_cert_verify(lua_State *L)
{
    lcert *c = check_cert(L, 1);
    int64_t at = (int64_t)luaL_optinteger(L, 4, 0);
    size_t n_roots, n_chain;
    X509 **roots, **chain;
    const char *reason = NULL;
    int rc;
    lua_settop(L, 4); /* the arrays made below go above the arguments */
    whole_cert(L, c);
    roots = get_certs(L, 2, &n_roots);
    chain = get_certs(L, 3, &n_chain);
    rc = nvs_id_cert_verify(c->x, roots, n_roots, chain, n_chain, at, &reason);
    if (rc == NVS_ID_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    luaL_pushfail(L);
    lua_pushstring(L, reason != NULL ? reason : nvs_id_strerror(rc));
    return 2;
}

/* core.csr_make(subject, extensions, key) -> csr | nil, message [, index] */
static int l_csr_make(lua_State *L)
{
    size_t n_subject, n_ext, bad = 0;
    lkey *k = check_key(L, 3);
    lua_settop(L, 3); /* the arrays made below go above the arguments */
    const nvs_id_pair *subject, *ext;
    lcsr *r;
    int rc;
    luaL_argcheck(L, k->has_private, 3, "key has no private part");
    subject = get_pairs(L, 1, &n_subject, "subject");
    ext = get_pairs(L, 2, &n_ext, "extensions");
    r = (lcsr *)lua_newuserdatauv(L, sizeof *r, 0);
    r->req = NULL;
    rc = nvs_id_csr_make(subject, n_subject, ext, n_ext, k->pkey, &r->req, &bad);
    if (rc != NVS_ID_OK)
        return push_pair_error(L, rc, bad);
    luaL_setmetatable(L, CSR_MT);
    return 1;
}

static int l_csr_gc(lua_State *L)
{
    lcsr *r = (lcsr *)luaL_checkudata(L, 1, CSR_MT);
    X509_REQ_free(r->req);
    r->req = NULL;
    return 0;
}

/* csr:der() / csr:pem() (upvalue: pem) */
static int l_csr_export(lua_State *L)
{
    lcsr *r = (lcsr *)luaL_checkudata(L, 1, CSR_MT);
    idbuf *b;
    int rc;
    luaL_argcheck(L, r->req != NULL, 1, "request is freed");
    b = push_idbuf(L);
    rc = nvs_id_csr_export(r->req, (int)lua_tointeger(L, lua_upvalueindex(1)), &b->p, &b->n);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    return idbuf_result(L, b);
}

/* csr:subject() */
static int l_csr_subject(lua_State *L)
{
    lcsr *r = (lcsr *)luaL_checkudata(L, 1, CSR_MT);
    luaL_argcheck(L, r->req != NULL, 1, "request is freed");
    return push_name(L, X509_REQ_get_subject_name(r->req));
}

/* core.pbkdf2(digest, password, salt, iterations, length) -> bytes | nil, message */
static int l_pbkdf2(lua_State *L)
{
    const char *digest = luaL_checkstring(L, 1);
    size_t plen, slen;
    const char *pass = luaL_checklstring(L, 2, &plen);
    const char *salt = luaL_checklstring(L, 3, &slen);
    lua_Integer iterations = luaL_checkinteger(L, 4);
    lua_Integer length = luaL_checkinteger(L, 5);
    luaL_Buffer b;
    uint8_t *out;
    int rc;
    luaL_argcheck(L, iterations >= 1 && iterations <= 0x7fffffff, 4, "out of range");
    luaL_argcheck(L, length >= 1 && length <= 0x100000, 5, "out of range");
    out = (uint8_t *)luaL_buffinitsize(L, &b, (size_t)length);
    rc = nvs_id_pbkdf2(digest, pass, plen, salt, slen, (unsigned)iterations, out,
                       (size_t)length);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    luaL_pushresultsize(&b, (size_t)length);
    return 1;
}

/* core.hkdf(digest, key, salt, info, length) -> bytes | nil, message */
static int l_hkdf(lua_State *L)
{
    const char *digest = luaL_checkstring(L, 1);
    size_t klen, slen, ilen;
    const char *key = luaL_checklstring(L, 2, &klen);
    const char *salt = luaL_checklstring(L, 3, &slen);
    const char *info = luaL_checklstring(L, 4, &ilen);
    lua_Integer length = luaL_checkinteger(L, 5);
    luaL_Buffer b;
    uint8_t *out;
    int rc;
    luaL_argcheck(L, length >= 1 && length <= 255 * 64, 5, "out of range");
    out = (uint8_t *)luaL_buffinitsize(L, &b, (size_t)length);
    rc = nvs_id_hkdf(digest, key, klen, salt, slen, info, ilen, out, (size_t)length);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    luaL_pushresultsize(&b, (size_t)length);
    return 1;
}

/* core.hmac(digest, key, data) -> bytes | nil, message */
static int l_hmac(lua_State *L)
{
    const char *digest = luaL_checkstring(L, 1);
    size_t klen, dlen, n = 0;
    const char *key = luaL_checklstring(L, 2, &klen);
    const char *data = luaL_checklstring(L, 3, &dlen);
    uint8_t out[NVS_ID_MAX_DIGEST];
    int rc = nvs_id_hmac(digest, key, klen, data, dlen, out, &n);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    lua_pushlstring(L, (const char *)out, n);
    return 1;
}

/* core.digest(digest, data) -> bytes | nil, message */
static int l_digest(lua_State *L)
{
    const char *digest = luaL_checkstring(L, 1);
    size_t dlen, n = 0;
    const char *data = luaL_checklstring(L, 2, &dlen);
    uint8_t out[NVS_ID_MAX_DIGEST];
    int rc = nvs_id_digest(digest, data, dlen, out, &n);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    lua_pushlstring(L, (const char *)out, n);
    return 1;
}

/* core.random_int(lo, hi) -> uniform integer in [lo, hi] | nil, message.
 * Lua integers are signed: flipping the top bit maps them in order onto
 * the unsigned range the core draws from. */
static int l_random_int(lua_State *L)
{
    lua_Integer lo = luaL_checkinteger(L, 1);
    lua_Integer hi = luaL_checkinteger(L, 2);
    const uint64_t flip = (uint64_t)1 << 63;
    uint64_t v = 0;
    int rc;
    luaL_argcheck(L, lo <= hi, 2, "interval is empty");
    rc = nvs_id_random_uniform((uint64_t)lo ^ flip, (uint64_t)hi ^ flip, &v);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    lua_pushinteger(L, (lua_Integer)(v ^ flip));
    return 1;
}

/* core.uuid4() -> "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" | nil, message */
static int l_uuid4(lua_State *L)
{
    char text[37];
    int rc = nvs_id_uuid4(text);
    if (rc != NVS_ID_OK)
        return push_id_error(L, rc);
    lua_pushstring(L, text);
    return 1;
}

static int push_matter_error(lua_State *L, int rc)
{
    luaL_pushfail(L);
    lua_pushstring(L, nvs_matter_strerror(rc));
    return 2;
}

/* core.matter_verifier(passcode, salt, iterations) -> 97 bytes | nil, message */
static int l_matter_verifier(lua_State *L)
{
    lua_Integer passcode = luaL_checkinteger(L, 1);
    size_t slen;
    const char *salt = luaL_checklstring(L, 2, &slen);
    lua_Integer iterations = luaL_checkinteger(L, 3);
    uint8_t out[NVS_MATTER_VERIFIER_SIZE];
    int rc;
    if (passcode < 0 || passcode > 0xffffffff)
        return push_matter_error(L, NVS_MATTER_EPASSCODE);
    if (iterations < 0 || iterations > 0x7fffffff)
        return push_matter_error(L, NVS_MATTER_EITERATIONS);
    rc = nvs_matter_verifier((uint32_t)passcode, (const uint8_t *)salt, slen,
                             (unsigned)iterations, out);
    if (rc != NVS_MATTER_OK)
        return push_matter_error(L, rc);
    lua_pushlstring(L, (const char *)out, sizeof out);
    return 1;
}

/* core.matter_passcode_valid(n) -> boolean */
static int l_matter_passcode_valid(lua_State *L)
{
    lua_Integer p = luaL_checkinteger(L, 1);
    lua_pushboolean(L, p >= 0 && p <= 0xffffffff && nvs_matter_passcode_valid((uint32_t)p));
    return 1;
}

/* Reads field `name` of the table at 1 as an unsigned integer (default
 * dflt when nil); an out-of-range value is left for the core to refuse. */
static unsigned payload_field(lua_State *L, const char *name, lua_Integer dflt)
{
    lua_Integer v;
    int isnum = 0;
    lua_getfield(L, 1, name);
    if (lua_isnil(L, -1)) {
        v = dflt;
    } else {
        v = lua_tointegerx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "payload field '%s': an integer expected", name);
    }
    lua_pop(L, 1);
    if (v < 0 || v > 0x7fffffff)
        v = 0x7fffffff; /* refused by the core as out of range */
    return (unsigned)v;
}

/* core.matter_codes{vendor_id=, product_id=, discriminator=, passcode=
 *   [, flow=0] [, discovery=2] [, version=0]} -> qr, manual | nil, message */
static int l_matter_codes(lua_State *L)
{
    nvs_matter_payload p;
    char qr[NVS_MATTER_QR_SIZE], manual[NVS_MATTER_MANUAL_SIZE];
    int rc;
    luaL_checktype(L, 1, LUA_TTABLE);
    p.version = payload_field(L, "version", 0);
    p.vendor_id = payload_field(L, "vendor_id", -1);
    p.product_id = payload_field(L, "product_id", -1);
    p.flow = payload_field(L, "flow", 0);
    p.discovery = payload_field(L, "discovery", 2);
    p.discriminator = payload_field(L, "discriminator", -1);
    p.passcode = payload_field(L, "passcode", -1);
    rc = nvs_matter_qr(&p, qr);
    if (rc == NVS_MATTER_OK)
        rc = nvs_matter_manual(&p, manual);
    if (rc != NVS_MATTER_OK)
        return push_matter_error(L, rc);
    lua_pushstring(L, qr);
    lua_pushstring(L, manual);
    return 2;
}

/* core.base38_encode(bytes) -> text */
static int l_base38_encode(lua_State *L)
{
    size_t len;
    const char *in = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char *out;
    luaL_argcheck(L, len <= 0x1000000, 1, "too long");
    out = luaL_buffinitsize(L, &b, (len / 3 + 1) * 5 + 1);
    luaL_pushresultsize(&b, nvs_base38_encode((const uint8_t *)in, len, out));
    return 1;
}

/* core.verhoeff(digits) -> check digit 0-9 | nil */
static int l_verhoeff(lua_State *L)
{
    size_t len;
    const char *digits = luaL_checklstring(L, 1, &len);
    int c = nvs_verhoeff_check(digits, len);
    if (c < 0)
        luaL_pushfail(L);
    else
        lua_pushinteger(L, c);
    return 1;
}

static const luaL_Reg identity_functions[] = {
    {"key_generate", l_key_generate},
    {"key_load", l_key_load},
    {"key_read", l_key_read},
    {"cert_issue", l_cert_issue},
    {"cert_load", l_cert_load},
    {"csr_make", l_csr_make},
    {"pbkdf2", l_pbkdf2},
    {"hkdf", l_hkdf},
    {"hmac", l_hmac},
    {"digest", l_digest},
    {"random_int", l_random_int},
    {"uuid4", l_uuid4},
    {"matter_verifier", l_matter_verifier},
    {"matter_passcode_valid", l_matter_passcode_valid},
    {"matter_codes", l_matter_codes},
    {"base38_encode", l_base38_encode},
    {"verhoeff", l_verhoeff},
    {NULL, NULL}};

static const struct {
    const char *name;
    int form;
} key_forms[] = {
    {"private_der", NVS_ID_PRIV_PKCS8_DER}, {"private_sec1", NVS_ID_PRIV_SEC1_DER},
    {"private_pem", NVS_ID_PRIV_PEM},       {"private_raw", NVS_ID_PRIV_RAW},
    {"public_der", NVS_ID_PUB_DER},         {"public_pem", NVS_ID_PUB_PEM},
    {"public_raw", NVS_ID_PUB_RAW},
};

/* Adds a closure of f with integer upvalue v as field `name` of the table on top. */
static void set_closure(lua_State *L, const char *name, lua_CFunction f, int v)
{
    lua_pushinteger(L, v);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, -2, name);
}

/* Registers the classes, and the functions into the core table on top. */
static void register_identity(lua_State *L)
{
    static const luaL_Reg key_meta[] = {
        {"__gc", l_key_gc}, {"__close", l_key_gc}, {"__tostring", l_key_tostring}, {NULL, NULL}};
    static const luaL_Reg key_methods[] = {{"type", l_key_type},
                                           {"has_private", l_key_has_private},
                                           {"seal", l_key_seal},
                                           {"matches", l_key_matches},
                                           {NULL, NULL}};
    static const luaL_Reg cert_meta[] = {{"__gc", l_cert_gc},
                                         {"__close", l_cert_gc},
                                         {"__tostring", l_cert_tostring},
                                         {NULL, NULL}};
    static const luaL_Reg cert_methods[] = {{"serial", l_cert_serial},
                                            {"public_key", l_cert_public_key},
                                            {"is_ca", l_cert_is_ca},
                                            {"validity", l_cert_validity},
                                            {"key_id", l_cert_key_id},
                                            {"verify", l_cert_verify},
                                            {NULL, NULL}};
    static const luaL_Reg csr_meta[] = {{"__gc", l_csr_gc}, {"__close", l_csr_gc}, {NULL, NULL}};
    static const luaL_Reg csr_methods[] = {{"subject", l_csr_subject}, {NULL, NULL}};
    static const luaL_Reg idbuf_meta[] = {{"__gc", l_idbuf_gc}, {NULL, NULL}};
    size_t i;

    new_class(L, KEY_MT, key_meta, key_methods);
    for (i = 0; i < sizeof key_forms / sizeof key_forms[0]; i++)
        set_closure(L, key_forms[i].name, l_key_export, key_forms[i].form);
    lua_pop(L, 1);
    new_class(L, CERT_MT, cert_meta, cert_methods);
    set_closure(L, "der", l_cert_export, 0);
    set_closure(L, "pem", l_cert_export, 1);
    set_closure(L, "subject", l_cert_name, 0);
    set_closure(L, "issuer", l_cert_name, 1);
    lua_pop(L, 1);
    new_class(L, CSR_MT, csr_meta, csr_methods);
    set_closure(L, "der", l_csr_export, 0);
    set_closure(L, "pem", l_csr_export, 1);
    lua_pop(L, 1);
    luaL_newmetatable(L, IDBUF_MT);
    luaL_setfuncs(L, idbuf_meta, 0);
    lua_pop(L, 1);
    luaL_setfuncs(L, identity_functions, 0);
}

/* ==== end of identity ====================================================== */

/* ---- module ----------------------------------------------------------------- */

static const luaL_Reg encoder_methods[] = {
    {"put", l_encoder_put},     {"namespace", l_encoder_namespace},
    {"image", l_encoder_image}, {"reset", l_encoder_reset},
    {"write", l_encoder_write},
    {NULL, NULL}};

static const luaL_Reg encoder_metamethods[] = {{"__gc", l_encoder_gc},
                                               {"__close", l_encoder_gc},
                                               {"__tostring", l_encoder_tostring},
                                               {NULL, NULL}};

/* ---- read-back: partition tables ---------------------------------------------
 * Bindings the read-back features (flash dumps, their partition tables)
 * add; kept together here. */

/* core.md5(data) -> 16 raw bytes: the digest entry of a partition table. */
static int l_md5(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    uint8_t out[NVS_MD5_SIZE];
    int rc = nvs_md5(data, len, out);
    if (rc != NVS_CRYPTO_OK)
        return push_crypto_error(L, rc);
    lua_pushlstring(L, (const char *)out, sizeof out);
    return 1;
}

/* ---- end of read-back bindings ------------------------------------------- */

/* ---- mfg_gen units --------------------------------------------------------------
 * The plain rows of an mfg_gen batch made in C (nvs_mfg.h): nvsgen.mfg sets
 * a maker up once per batch, then hands it stretches of the values file's
 * read buffer; every row it leaves ("lua") is made by the Lua code. */

#define MFG_MT "nvsgen.mfg_maker"

typedef struct {
    nvs_mfg m;
    int ready;
} lmfg;

/* The longest name (prefix, id, suffix) the maker builds itself. */
#define MFG_NAME_MAX 1024

static lmfg *check_mfg(lua_State *L)
{
    lmfg *x = (lmfg *)luaL_checkudata(L, 1, MFG_MT);
    luaL_argcheck(L, x->ready, 1, "maker is closed");
    return x;
}

static int l_mfg_gc(lua_State *L)
{
    lmfg *x = (lmfg *)luaL_checkudata(L, 1, MFG_MT);
    if (x->ready)
        nvs_mfg_free(&x->m);
    x->ready = 0;
    return 0;
}

/* The string field `name` of the table at `idx`, or NULL (len 0). */
static const char *opt_field(lua_State *L, int idx, const char *name, size_t *len)
{
    const char *s = NULL;
    *len = 0;
    lua_getfield(L, idx, name);
    if (lua_type(L, -1) == LUA_TSTRING)
        s = lua_tolstring(L, -1, len);
    lua_pop(L, 1); /* the table keeps it */
    return s;
}

static const char *const mfg_kinds[] = {"namespace", "text",    "skip",   "string",
                                        "hex2bin",   "base64", "binary", "file", NULL};
static const int mfg_kind_codes[] = {NVS_MFG_NAMESPACE, NVS_MFG_TEXT,   NVS_MFG_SKIP,
                                     NVS_MFG_STRING,    NVS_MFG_HEX,    NVS_MFG_BASE64,
                                     NVS_MFG_BINARY,    NVS_MFG_FILE};

/* An integer kind's NVS type ("u8" ... "i64"), or 0. */
static unsigned integer_kind_type(const char *name)
{
    int k;
    for (k = 0; kind_names[k] != NULL; k++)
        if (strcmp(kind_names[k], name) == 0) {
            unsigned type = kind_types[k];
            return type == NVS_TYPE_FLOAT || type == NVS_TYPE_DOUBLE || type == NVS_TYPE_STR ||
                           type == NVS_TYPE_BLOB
                       ? 0
                       : type;
        }
    return 0;
}
static const char *const mfg_keys[] = {"plain", "fixed", "fixed_file", "keygen", NULL};

/* Sets up the maker at index 1 from the table at index 2 (core.mfg_maker). */
static int mfg_setup(lua_State *L, lmfg *x)
{
    lua_Integer size, version, i, n;
    size_t len, klen;
    int rc;
    lua_getfield(L, 2, "size");
    lua_getfield(L, 2, "version");
    size = luaL_checkinteger(L, -2);
    version = luaL_checkinteger(L, -1);
    lua_pop(L, 2);
    luaL_argcheck(L, size > 0 && version >= 1 && version <= 2, 2, "bad size or version");
    luaL_argcheck(L, lua_getfield(L, 2, "header") == LUA_TTABLE, 2, "header expected");
    n = (lua_Integer)luaL_len(L, -1);
    luaL_argcheck(L, n >= 1 && n < 100000, 2, "bad header");
    rc = nvs_mfg_init(&x->m, (size_t)size, (unsigned)version, (size_t)n);
    if (rc != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, nvs_encoder_strerror(rc));
        return 2;
    }
    x->ready = 1;
    for (i = 1; i <= n && rc == 0; i++) {
        const char *name;
        lua_geti(L, -1, i);
        name = luaL_checklstring(L, -1, &len);
        rc = nvs_mfg_set_column(&x->m, (size_t)(i - 1), name, len);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    luaL_argcheck(L, lua_getfield(L, 2, "items") == LUA_TTABLE, 2, "items expected");
    n = (lua_Integer)luaL_len(L, -1);
    for (i = 1; i <= n && rc == 0; i++) {
        int kind;
        unsigned type = 0;
        const char *text, *key;
        luaL_argcheck(L, lua_geti(L, -1, i) == LUA_TTABLE, 2, "a table per item expected");
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        lua_geti(L, -3, 3);
        key = luaL_checklstring(L, -2, &klen);
        text = luaL_checklstring(L, -1, &len);
        type = integer_kind_type(luaL_checkstring(L, -3));
        kind = type != 0 ? NVS_MFG_INT : mfg_kind_codes[luaL_checkoption(L, -3, NULL, mfg_kinds)];
        rc = nvs_mfg_add_item(&x->m, kind, type, key, klen, text, len);
        lua_pop(L, 4);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "fill") == LUA_TTABLE) {
        n = (lua_Integer)luaL_len(L, -1);
        for (i = 1; i <= n && rc == 0; i++) {
            lua_Integer col;
            const char *value;
            luaL_argcheck(L, lua_geti(L, -1, i) == LUA_TTABLE, 2, "a table per item expected");
            lua_geti(L, -1, 1);
            lua_geti(L, -2, 2);
            col = luaL_checkinteger(L, -2);
            value = luaL_checklstring(L, -1, &len);
            luaL_argcheck(L, col >= 1 && (size_t)col <= x->m.ncols, 2, "bad fill column");
            rc = nvs_mfg_add_fill(&x->m, (size_t)(col - 1), value, len);
            lua_pop(L, 3);
        }
    }
    lua_pop(L, 1);
    if (rc == 0) {
        int keys;
        const uint8_t *k = NULL;
        lua_getfield(L, 2, "encryption");
        keys = luaL_checkoption(L, -1, "plain", mfg_keys);
        lua_pop(L, 1);
        if (keys == NVS_MFG_FIXED || keys == NVS_MFG_FIXED_FILE) {
            k = (const uint8_t *)opt_field(L, 2, "key", &len);
            luaL_argcheck(L, k != NULL && len == NVS_XTS_KEY_SIZE, 2, "a 64-byte key is needed");
        }
        rc = nvs_mfg_set_keys(&x->m, keys, k);
        if (rc != 0) {
            luaL_pushfail(L);
            lua_pushstring(L, nvs_crypto_strerror(rc));
            return 2;
        }
    }
    if (rc != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, nvs_encoder_strerror(rc));
        return 2;
    }
    return 0;
}

/* core.mfg_maker(spec) -> maker | nil, message
 * spec: size, version, header (the values file's columns), items (per
 * config row { kind, key, text }: kind "namespace", "text", "skip",
 * "string", an integer kind ("u8"...), "hex2bin", "base64", "binary" or
 * "file"; text the row's CSV line, or its start before the value), fill
 * ({ column, value } per REPEAT column), fileid (a column's name),
 * numbering ({ start, width }), names ({ csv, bin, keys }: the start of
 * each file's name), keys_suffix, encryption ("plain", "fixed",
 * "fixed_file", "keygen"), key (64 bytes).  The table is kept: run reads
 * it. */
static int l_mfg_new(lua_State *L)
{
    lmfg *x;
    int results;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    x = (lmfg *)lua_newuserdatauv(L, sizeof *x, 1);
    memset(x, 0, sizeof *x);
    luaL_setmetatable(L, MFG_MT);
    lua_insert(L, 1); /* maker at 1, spec at 2 */
    results = mfg_setup(L, x);
    if (results != 0)
        return results;
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, 1);
    return 1;
}

/* Appends `len` bytes to the name being built in `buf` (at *used): 0, or
 * -1 when it would not fit. */
static int name_add(char *buf, size_t *used, const char *s, size_t len)
{
    if (len >= MFG_NAME_MAX - *used)
        return -1;
    memcpy(buf + *used, s, len);
    *used += len;
    buf[*used] = '\0';
    return 0;
}

/* What names a unit's files and what is printed for it, read once per
 * call from the spec (and the report pieces): the strings stay in their
 * tables, which the call holds. */
typedef struct {
    const char *fileid, *csv, *bin, *keys, *suffix;
    size_t fileid_len, csv_len, bin_len, keys_len, suffix_len;
    int numbered;
    lua_Integer start, width;
    const char *piece[4];
    size_t piece_len[4];
    int pieces;
} mfg_names;

/* Reads the names of the spec at `spec` (and the report pieces of the
 * table at `report`, if not 0) into n. */
static void mfg_names_get(lua_State *L, int spec, int report, mfg_names *n)
{
    int i;
    memset(n, 0, sizeof *n);
    n->fileid = opt_field(L, spec, "fileid", &n->fileid_len);
    n->suffix = opt_field(L, spec, "keys_suffix", &n->suffix_len);
    if (n->suffix == NULL)
        n->suffix = "";
    if (lua_getfield(L, spec, "numbering") == LUA_TTABLE) {
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        n->numbered = 1;
        n->start = lua_tointeger(L, -2);
        n->width = lua_tointeger(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, spec, "names") == LUA_TTABLE) {
        n->csv = opt_field(L, -1, "csv", &n->csv_len);
        n->bin = opt_field(L, -1, "bin", &n->bin_len);
        n->keys = opt_field(L, -1, "keys", &n->keys_len);
    }
    lua_pop(L, 1);
    if (report == 0)
        return;
    n->pieces = (int)luaL_len(L, report);
    if (n->pieces > 4)
        n->pieces = 4;
    for (i = 0; i < n->pieces; i++) {
        lua_geti(L, report, i + 1);
        n->piece[i] = lua_tolstring(L, -1, &n->piece_len[i]);
        lua_pop(L, 1); /* the table keeps it */
        if (n->piece[i] == NULL)
            n->piece[i] = "";
    }
}

/* Decimal text of v in `text` (room for 21 characters); its length. */
static size_t decimal_text(char *text, lua_Unsigned v)
{
    char digits[24];
    size_t n = 0, i;
    do {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++)
        text[i] = digits[n - 1 - i];
    return n;
}

/* The id of unit `number` in its files' names (nvsgen.mfg's file_id),
 * from the row split last, in `id`: 0, or -1 for an id the maker leaves to
 * Lua (a '.' or '/' in it, which changes a keys file's name; too long). */
static int mfg_unit_id(const lmfg *x, const mfg_names *nm, lua_Integer number, char *id,
                       size_t *idlen)
{
    char digits[32];
    const char *raw = NULL;
    size_t rawlen = 0;
    *idlen = 0;
    id[0] = '\0';
    if (nm->fileid != NULL) {
        size_t i, fl = nm->fileid_len;
        for (i = 0; i < x->m.ncols && raw == NULL; i++)
            if ((x->m.header_len[i] == fl && memcmp(x->m.header[i], nm->fileid, fl) == 0) ||
                (x->m.field_len[i] == fl && memcmp(x->m.field[i], nm->fileid, fl) == 0)) {
                raw = x->m.field[i];
                rawlen = x->m.field_len[i];
            }
        if (raw == NULL)
            return -1;
    } else {
        if (number < 0)
            return -1;
        rawlen = decimal_text(digits, (lua_Unsigned)number);
        raw = digits;
    }
    if (memchr(raw, '.', rawlen) != NULL || memchr(raw, '/', rawlen) != NULL)
        return -1;
    if (nm->numbered) {
        /* start + number - 1 with Lua's wrap-around */
        lua_Integer n = (lua_Integer)((lua_Unsigned)nm->start + (lua_Unsigned)number - 1u);
        lua_Integer width = nm->width;
        char text[32];
        size_t tlen;
        if (n == LUA_MININTEGER)
            return -1;
        tlen = decimal_text(text, (lua_Unsigned)(n < 0 ? -n : n));
        if (n < 0)
            name_add(id, idlen, "-", 1);
        for (; width > (lua_Integer)(tlen + (n < 0 ? 1 : 0)); width--)
            if (name_add(id, idlen, "0", 1) != 0)
                return -1;
        if (name_add(id, idlen, text, tlen) != 0 || name_add(id, idlen, "-", 1) != 0)
            return -1;
    }
    return name_add(id, idlen, raw, rawlen);
}

/* The descriptor of folder `name` of the folders table at `idx`, or -1. */
static int mfg_folder(lua_State *L, int idx, const char *name)
{
    int fd = -1;
    if (lua_getfield(L, idx, name) != LUA_TNIL)
        fd = check_folder(L, lua_gettop(L))->fd;
    lua_pop(L, 1);
    return fd;
}

/* A name: `start`, the id, `end`.  0 or -1 (too long, or no start). */
static int unit_name(char *buf, const char *start, size_t slen, const char *id, size_t idlen,
                     const char *end, size_t elen)
{
    size_t used = 0;
    if (start == NULL || name_add(buf, &used, start, slen) != 0 ||
        name_add(buf, &used, id, idlen) != 0 || name_add(buf, &used, end, elen) != 0)
        return -1;
    return 0;
}

/* Writes the unit made last under the names of unit `id` (folders: csv,
 * bin, keys descriptors): 0 or -1. */
static int mfg_write_unit(lmfg *x, const mfg_names *nm, const int folders[3], const char *id,
                          size_t idlen)
{
    char csv_name[MFG_NAME_MAX], bin_name[MFG_NAME_MAX], keys_name[MFG_NAME_MAX];
    if (unit_name(csv_name, nm->csv, nm->csv_len, id, idlen, ".csv", 4) != 0 ||
        unit_name(bin_name, nm->bin, nm->bin_len, id, idlen, ".bin", 4) != 0)
        return -1;
    keys_name[0] = '\0';
    if (x->m.keys == NVS_MFG_FIXED_FILE || x->m.keys == NVS_MFG_KEYGEN) {
        if (folders[2] < 0 ||
            unit_name(keys_name, nm->keys, nm->keys_len, id, idlen, nm->suffix, nm->suffix_len) != 0)
            return -1;
    }
    return nvs_mfg_write(&x->m, folders[0], csv_name, folders[1], bin_name, folders[2],
                         keys_name) == 0
               ? 0
               : -1;
}

/* Adds what is printed for unit `id` to b: the report pieces around it
 * (r1 id r2 id r3, or with a keys file r1 id r2 id SUFFIX r3 id r4). */
static void mfg_report(luaL_Buffer *b, const mfg_names *nm, const char *id, size_t idlen)
{
    int i;
    for (i = 0; i < nm->pieces; i++) {
        luaL_addlstring(b, nm->piece[i], nm->piece_len[i]);
        if (i == nm->pieces - 1)
            break;
        luaL_addlstring(b, id, idlen);
        if (i == 1 && nm->pieces == 4) /* the keys file's name */
            luaL_addlstring(b, nm->suffix, nm->suffix_len);
    }
}

static const char *const mfg_modes[] = {"check", "write", "skip", NULL};
enum { MFG_CHECK, MFG_WRITE, MFG_SKIP };

/* maker:run(mode, text, pos, number, limit, line [, extra [, report]])
 *   -> pos, number, why [, report]
 * Takes the plain record lines of `text` from byte `pos` on, units
 * number + 1 up to `limit`, the first on line `line` + 1: "check" builds
 * each (a unit's id recorded in `extra`, a table, for --fileid), "write"
 * builds and writes it (`extra`: the folders, { csv, bin, keys }; given
 * `report`, the pieces of what is printed for a unit around its id, what
 * is printed for the units comes back as one string), "skip" only passes
 * over it.  Stops at `limit` (why: "limit"), or before
 * a row Lua must take (why: "lua"): a line that is not plain or has
 * another number of fields, the end of the text, a row the maker leaves,
 * a repeated id, a write that failed (nothing of the unit left) or a stop
 * signal.  Returns where it stopped and the last unit taken. */
static int l_mfg_run(lua_State *L)
{
    lmfg *x = check_mfg(L);
    int mode = luaL_checkoption(L, 2, NULL, mfg_modes);
    size_t len;
    const char *text = luaL_checklstring(L, 3, &len);
    lua_Integer pos = luaL_checkinteger(L, 4);
    lua_Integer number = luaL_checkinteger(L, 5);
    lua_Integer limit = luaL_checkinteger(L, 6);
    lua_Integer line = luaL_checkinteger(L, 7);
    int extra = lua_istable(L, 8) ? 8 : 0, report = mode == MFG_WRITE && lua_istable(L, 9);
    int folders[3] = {-1, -1, -1};
    const char *why = "limit";
    char id[MFG_NAME_MAX];
    size_t idlen;
    mfg_names nm;
    luaL_Buffer b;
    luaL_argcheck(L, pos >= 1 && (lua_Unsigned)pos <= (lua_Unsigned)len + 1, 4, "out of range");
    luaL_argcheck(L, mode != MFG_WRITE || extra != 0, 8, "folders expected");
    lua_settop(L, 9);
    lua_getiuservalue(L, 1, 1); /* the spec, at 10 */
    mfg_names_get(L, 10, report ? 9 : 0, &nm);
    if (mode == MFG_WRITE) {
        folders[0] = mfg_folder(L, extra, "csv");
        folders[1] = mfg_folder(L, extra, "bin");
        folders[2] = mfg_folder(L, extra, "keys");
    }
    if (report)
        luaL_buffinit(L, &b);
    while (number < limit) {
        const char *start = text + (pos - 1);
        size_t n;
        if (mode != MFG_SKIP && nvs_stop_signal() != 0) {
            why = "lua";
            break;
        }
        n = nvs_csv_plain_line(start, len - (size_t)(pos - 1), 0);
        /* A record of one field may be white space only, which the reader
         * drops: Lua's to judge. */
        if (n == 0 || x->m.ncols < 2 || count_fields(start, n - 1) != x->m.ncols) {
            why = "lua";
            break;
        }
        if (mode != MFG_SKIP) {
            nvs_mfg_split(&x->m, start, n - 1, (long)(number + 1));
            /* (a check needs the id only to find one used twice) */
            if (nvs_mfg_build(&x->m, mode == MFG_CHECK) != NVS_MFG_OK ||
                ((mode == MFG_WRITE || extra != 0) &&
                 mfg_unit_id(x, &nm, number + 1, id, &idlen) != 0)) {
                why = "lua";
                break;
            }
            if (mode == MFG_CHECK && extra != 0) {
                int taken = lua_getfield(L, extra, id) != LUA_TNIL;
                lua_pop(L, 1);
                if (taken) {
                    why = "lua";
                    break;
                }
                lua_pushinteger(L, line + 1);
                lua_setfield(L, extra, id);
            }
            if (mode == MFG_WRITE) {
                if (mfg_write_unit(x, &nm, folders, id, idlen) != 0) {
                    why = "lua";
                    break;
                }
                if (report)
                    mfg_report(&b, &nm, id, idlen);
            }
        }
        pos += (lua_Integer)n;
        number++;
        line++;
    }
    if (report)
        luaL_pushresult(&b);
    lua_pushinteger(L, pos);
    lua_pushinteger(L, number);
    lua_pushstring(L, why);
    if (!report)
        return 3;
    lua_rotate(L, -4, -1); /* the report last */
    return 4;
}

/* maker:reports(first, last, report) -> text | nil
 * What is printed for units first to last of a batch whose ids are their
 * numbers (no fileid): `report`'s pieces around each id, as run gives
 * them; nil when an id is one the maker leaves to Lua. */
static int l_mfg_reports(lua_State *L)
{
    lmfg *x = check_mfg(L);
    lua_Integer number = luaL_checkinteger(L, 2), last = luaL_checkinteger(L, 3);
    char id[MFG_NAME_MAX];
    size_t idlen;
    mfg_names nm;
    luaL_Buffer b;
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_settop(L, 4);
    lua_getiuservalue(L, 1, 1); /* the spec, at 5 */
    mfg_names_get(L, 5, 4, &nm);
    luaL_argcheck(L, nm.fileid == NULL, 1, "the ids are a column's");
    luaL_buffinit(L, &b);
    for (; number <= last; number++) {
        if (mfg_unit_id(x, &nm, number, id, &idlen) != 0) {
            luaL_pushresult(&b);
            luaL_pushfail(L);
            return 1;
        }
        mfg_report(&b, &nm, id, idlen);
    }
    luaL_pushresult(&b);
    return 1;
}

static void open_mfg(lua_State *L)
{
    static const luaL_Reg meta[] = {{"__gc", l_mfg_gc}, {NULL, NULL}};
    static const luaL_Reg methods[] = {
        {"run", l_mfg_run}, {"reports", l_mfg_reports}, {"close", l_mfg_gc}, {NULL, NULL}};
    new_class(L, MFG_MT, meta, methods);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_mfg_new);
    lua_setfield(L, -2, "mfg_maker");
}

/* ---- end of mfg_gen units --------------------------------------------------- */

static const luaL_Reg core_functions[] = {
    {"item_method", l_item_method},
    {"encoder", l_encoder_new},         {"hex_decode", l_hex_decode},
    {"hex_encode", l_hex_encode},       {"base64_decode", l_base64_decode},
    {"csv_row", l_csv_row},             {"decimal_name", l_decimal_name},
    {"base64_encode", l_base64_encode}, {"crc32", l_crc32},
    {"write_file", l_write_file},
    {"read_file", l_read_file},
    {"xts", l_xts_new},                 {"encrypt_image", l_encrypt_image},
    {"decrypt_image", l_decrypt_image}, {"keys_build", l_keys_build},
    {"write_keys", l_write_keys},       {"folder", l_folder_new},
    {"stage", l_stage_new},
    {"keys_parse", l_keys_parse},       {"key_from_hmac", l_key_from_hmac},
    {"generate_key", l_generate_key},   {"random_bytes", l_random_bytes},
    {"random_hex", l_random_hex},       {"unit_random_hex", l_unit_random_hex},
    {"unit_namespace", l_unit_namespace}, {"unit_export", l_unit_export},
    {"sha256", l_sha256},               {"pbkdf2_sha1", l_pbkdf2_sha1},
    {"read", l_read},
    {"md5", l_md5}, /* read-back */
    {"csv_plain_fields", l_csv_plain_fields}, {"csv_plain_count", l_csv_plain_count},
    {NULL, NULL}};

/* The module's one exported symbol (see nvs_visibility.h). */
NVS_EXPORT int luaopen_nvsgen_core(lua_State *L);

NVS_EXPORT int luaopen_nvsgen_core(lua_State *L)
{
    new_class(L, ENCODER_MT, encoder_metamethods, encoder_methods);
    new_class(L, XTS_MT, xts_metamethods, xts_methods);
    new_class(L, FOLDER_MT, folder_metamethods, folder_methods);
    new_class(L, STAGE_MT, stage_metamethods, stage_methods);
    lua_pop(L, 4);
    luaL_newmetatable(L, READ_RESULT_MT);
    lua_pushcfunction(L, l_read_result_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, FILE_BYTES_MT);
    lua_pushcfunction(L, l_file_bytes_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, core_functions);
    /* The errno value file writes return third when the file exists and
     * is not to be replaced: Lua code compares with it, not with a number
     * that differs between systems. */
    lua_pushinteger(L, EEXIST);
    lua_setfield(L, -2, "EEXIST");
    register_identity(L);
    open_batch(L);
    open_mfg(L);
    return 1;
}
