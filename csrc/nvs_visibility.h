/*
 * nvs_visibility.h - keeps the C core's functions out of the symbols the
 * module exports, whatever flags the compiler is given.
 *
 * nvsgen.core exports one symbol, luaopen_nvsgen_core.  A visibility flag
 * on the command line would do it for the Makefile, but luarocks' builtin
 * build passes no compiler flags, so each core header brackets its
 * declarations with NVS_HIDDEN_BEGIN and NVS_HIDDEN_END (a definition
 * keeps the visibility of its first declaration), and NVS_EXPORT marks the
 * one function the module exports.  The core's test programs and fuzz
 * targets link the core statically, where hidden changes nothing.
 */
#ifndef NVS_VISIBILITY_H
#define NVS_VISIBILITY_H

#if defined(__GNUC__)
#define NVS_HIDDEN_BEGIN _Pragma("GCC visibility push(hidden)")
#define NVS_HIDDEN_END _Pragma("GCC visibility pop")
#define NVS_EXPORT __attribute__((visibility("default")))
#else
#define NVS_HIDDEN_BEGIN
#define NVS_HIDDEN_END
#define NVS_EXPORT
#endif

#endif
