/*
 * nvs_encoder.h - builds an NVS partition image item by item.
 *
 * The encoder lays items out exactly as Espressif's nvs_partition_gen.py
 * does (page filling rules, chunking of version-2 blobs), so that the same
 * input gives the same bytes, and enforces the limits the firmware enforces.
 * It knows nothing of Lua: the caller passes byte strings with lengths and
 * gets back error codes; nvs_encoder_error_detail() gives the numbers that
 * make a message useful (the size that was asked, the limit).
 */
#ifndef NVS_ENCODER_H
#define NVS_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "nvs_format.h"
#include "nvs_keymap.h"
#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

enum nvs_encoder_status {
    NVS_OK = 0,
    NVS_ERR_NOMEM = -1,
    NVS_ERR_SIZE = -2,          /* partition size not a multiple of 4096 or < 4096 */
    NVS_ERR_VERSION = -3,       /* version neither 1 nor 2 */
    NVS_ERR_KEY_EMPTY = -4,
    NVS_ERR_KEY_TOO_LONG = -5,  /* more than 15 bytes */
    NVS_ERR_KEY_NUL = -6,       /* a NUL byte inside the key */
    NVS_ERR_NO_NAMESPACE = -7,  /* a data item before any namespace */
    NVS_ERR_TOO_MANY_NAMESPACES = -8,
    NVS_ERR_DUPLICATE_KEY = -9,
    NVS_ERR_RANGE = -10,        /* integer out of the type's range */
    NVS_ERR_NAN = -11,          /* the firmware refuses NaN floats */
    NVS_ERR_TOO_LONG = -12,     /* string or blob above its limit */
    NVS_ERR_FULL = -13,         /* no page left for the item */
    NVS_ERR_TYPE = -14,         /* not a type this call writes */
    NVS_ERR_TOO_MANY_CHUNKS = -15,
    NVS_ERR_STR_NUL = -16       /* a NUL byte inside a string value */
};

typedef struct nvs_encoder {
    uint8_t *image;        /* size bytes, owned by the encoder */
    size_t size;           /* partition size in bytes */
    unsigned data_pages;   /* pages items may use (the last one is reserved) */
    unsigned version;      /* 1 or 2 */
    unsigned page;         /* index of the page being filled */
    unsigned used;         /* entries used on that page */
    unsigned ns_current;   /* namespace index items go to, 0 before any */
    unsigned ns_count;     /* namespaces created so far */
    char ns_names[NVS_NAMESPACE_MAX][NVS_KEY_MAX + 1];
    nvs_keymap keys;       /* (namespace, key) pairs written, to refuse repeats */
    size_t detail_value;   /* with some errors: the size or count asked, or
                            * the position of a NUL byte (from 0) */
    size_t detail_limit;   /* with some errors: the limit it broke */
} nvs_encoder;

/* Prepares an empty partition of `size` bytes in format `version` (1 or 2).
 * Below 0x3000 bytes the partition is read-only: no reserved page. */
int nvs_encoder_init(nvs_encoder *e, size_t size, unsigned version);

/* Releases what init allocated; safe on a zeroed or freed encoder. */
void nvs_encoder_free(nvs_encoder *e);

/* Empties the partition for the next unit, keeping size and buffers. */
void nvs_encoder_reset(nvs_encoder *e);

/* Selects namespace `name`, creating its entry the first time it is named. */
int nvs_encoder_namespace(nvs_encoder *e, const char *name, size_t len);

/* Writes a fixed-size integer; `type` is one of the NVS_TYPE_[UI](8|16|32|64).
 * Signed types take `value` as is; unsigned ones take it as uint64_t bits,
 * so u64 values above INT64_MAX arrive as negative int64_t. */
int nvs_encoder_put_int(nvs_encoder *e, const char *key, size_t klen,
                        unsigned type, int64_t value);

/* Writes a float (NVS_TYPE_FLOAT, stored as IEEE 754 single) or a double. */
int nvs_encoder_put_real(nvs_encoder *e, const char *key, size_t klen,
                         unsigned type, double value);

/* Writes a string of `len` bytes; the encoder adds the terminating NUL.
 * A NUL byte inside is refused (NVS_ERR_STR_NUL, detail_value = the bytes
 * before it): the firmware would read the string only up to it. */
int nvs_encoder_put_str(nvs_encoder *e, const char *key, size_t klen,
                        const uint8_t *s, size_t len);

/* Writes a blob: one entry group in version 1, chunks plus index in 2. */
int nvs_encoder_put_blob(nvs_encoder *e, const char *key, size_t klen,
                         const uint8_t *data, size_t len);

/* The image bytes and how many of them form the output file: the whole
 * partition, or only the pages used for a read-only partition. */
const uint8_t *nvs_encoder_image(const nvs_encoder *e, size_t *len);

/* A plain lowercase sentence for a status code. */
const char *nvs_encoder_strerror(int status);

NVS_HIDDEN_END

#endif
