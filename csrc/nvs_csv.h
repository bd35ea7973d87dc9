/*
 * nvs_csv.h - the common case of a CSV record, recognised without Lua.
 *
 * Values files hold thousands of records, nearly all of them one line of
 * comma-separated text.  The Lua reader hands such a line to this test and
 * keeps its own parser for everything else (quotes, line 1 with its byte
 * order mark, blank and comment lines, bad UTF-8), so this code only has to
 * say "plain" exactly when that parser would read the line as plain text.
 */
#ifndef NVS_CSV_H
#define NVS_CSV_H

#include <stddef.h>

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

/* The length, through its '\n', of the line at the start of `text` (`len`
 * bytes) when it is a plain record: complete (a '\n' within len), not empty,
 * not a comment (a first '#' when `comments` is set), free of quote
 * characters and NUL bytes, and valid UTF-8 (as RFC 3629 defines it: no
 * overlong forms, no surrogates, nothing above U+10FFFF).  0 otherwise.
 * The record's fields are the text between its commas, '\n' excluded. */
size_t nvs_csv_plain_line(const char *text, size_t len, int comments);

NVS_HIDDEN_END

#endif
