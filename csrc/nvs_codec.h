/*
 * nvs_codec.h - the text encodings of the reference CSV format.
 *
 * hex2bin and base64 values must decode exactly as Python's binascii does in
 * the reference generator, including what its base64 decoder tolerates.
 */
#ifndef NVS_CODEC_H
#define NVS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

enum nvs_codec_status {
    NVS_CODEC_OK = 0,
    NVS_CODEC_ODD_LENGTH = -1,     /* hex: odd number of digits */
    NVS_CODEC_NOT_HEX = -2,        /* hex: a character that is not a digit */
    NVS_CODEC_B64_LENGTH = -3,     /* base64: one character more than a multiple of 4 */
    NVS_CODEC_B64_PADDING = -4,    /* base64: data ends in an unpadded partial group */
    NVS_CODEC_NOMEM = -5
};

/* Decodes `len` hex digits (either case) into `out` (len / 2 bytes). */
int nvs_hex_decode(const char *in, size_t len, uint8_t *out);

/* Writes 2 * len lowercase hex digits to `out`. */
void nvs_hex_encode(const uint8_t *in, size_t len, char *out);

/* Decodes base64 as Python's binascii.a2b_base64 does by default: characters
 * outside the alphabet are skipped, and a complete padding ends the data.
 * `out` must hold len / 4 * 3 + 3 bytes; *outlen receives the size. */
int nvs_base64_decode(const char *in, size_t len, uint8_t *out, size_t *outlen);

/* Standard base64 with padding; `out` must hold 4 * ((len + 2) / 3) + 1
 * bytes (a NUL follows). Returns the number of characters written. */
size_t nvs_base64_encode(const uint8_t *in, size_t len, char *out);

/* A plain lowercase sentence for a status code. */
const char *nvs_codec_strerror(int status);

NVS_HIDDEN_END

#endif
