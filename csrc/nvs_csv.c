/*
 * nvs_csv.c - the common case of a CSV record, recognised without Lua.
 */
#include "nvs_csv.h"

#include <string.h>

/* The length of the UTF-8 sequence of two or more bytes at s (n bytes
 * left), or 0 when it is not well formed.  The second byte's range is what
 * rules out overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned lead = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t width, i;
    if (lead >= 0xC2 && lead <= 0xDF) {
        width = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        width = 3;
        if (lead == 0xE0)
            lo = 0xA0; /* below U+0800: overlong */
        else if (lead == 0xED)
            hi = 0x9F; /* U+D800..U+DFFF: surrogates */
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        width = 4;
        if (lead == 0xF0)
            lo = 0x90; /* below U+10000: overlong */
        else if (lead == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (width > n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < width; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return width;
}

size_t nvs_csv_plain_line(const char *text, size_t len, int comments)
{
    const unsigned char *s = (const unsigned char *)text;
    const unsigned char *newline = memchr(s, '\n', len);
    size_t n, i = 0;
    if (newline == NULL || newline == s)
        return 0;
    if (comments && s[0] == '#')
        return 0;
    n = (size_t)(newline - s);
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c == '"' || c == 0)
                return 0;
            i++;
        } else {
            size_t width = utf8_sequence(s + i, n - i);
            if (width == 0)
                return 0;
            i += width;
        }
    }
    return n + 1;
}
