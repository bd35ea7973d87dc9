/*
 * nvs_codec.c - hex and base64 as the reference generator reads them.
 */
#include "nvs_codec.h"

#include <stdlib.h>

#include <openssl/evp.h>

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int nvs_hex_decode(const char *in, size_t len, uint8_t *out)
{
    size_t i;
    if (len % 2 != 0)
        return NVS_CODEC_ODD_LENGTH;
    for (i = 0; i < len; i += 2) {
        int hi = hex_value((unsigned char)in[i]);
        int lo = hex_value((unsigned char)in[i + 1]);
        if (hi < 0 || lo < 0)
            return NVS_CODEC_NOT_HEX;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return NVS_CODEC_OK;
}

void nvs_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

static int is_base64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int nvs_base64_decode(const char *in, size_t len, uint8_t *out, size_t *outlen)
{
    /* First keep only what Python's decoder would use, then let OpenSSL
     * decode the cleaned, re-padded text. */
    char *clean = malloc(len + 4);
    size_t n = 0, i, padded;
    unsigned quad = 0, pads = 0, tail;
    int done = 0, decoded;
    if (clean == NULL)
        return NVS_CODEC_NOMEM;
    for (i = 0; i < len && !done; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '=') {
            /* A pad only counts once two data characters of its group are
             * in, and a complete padding ends the data. */
            if (quad >= 2 && quad + ++pads >= 4)
                done = 1;
            continue;
        }
        if (!is_base64_char(c))
            continue;
        pads = 0;
        clean[n++] = (char)c;
        quad = (quad + 1) % 4;
    }
    if (!done && quad != 0) {
        free(clean);
        return quad == 1 ? NVS_CODEC_B64_LENGTH : NVS_CODEC_B64_PADDING;
    }
    tail = (unsigned)(n % 4);
    padded = n;
    if (tail != 0) {
        while (padded % 4 != 0)
            clean[padded++] = '=';
    }
    decoded = padded == 0 ? 0 : EVP_DecodeBlock(out, (const unsigned char *)clean, (int)padded);
    free(clean);
    if (decoded < 0)
        return NVS_CODEC_B64_PADDING;
    *outlen = n / 4 * 3 + (tail == 2 ? 1 : tail == 3 ? 2 : 0);
    return NVS_CODEC_OK;
}

size_t nvs_base64_encode(const uint8_t *in, size_t len, char *out)
{
    if (len == 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

const char *nvs_codec_strerror(int status)
{
    switch (status) {
    case NVS_CODEC_OK:
        return "no error";
    case NVS_CODEC_ODD_LENGTH:
        return "odd number of hex digits";
    case NVS_CODEC_NOT_HEX:
        return "not a hex digit";
    case NVS_CODEC_B64_LENGTH:
        return "invalid base64: data characters are one more than a multiple of 4";
    case NVS_CODEC_B64_PADDING:
        return "invalid base64: incorrect padding";
    case NVS_CODEC_NOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}
