/*
 * nvs_mfg.h - mfg_gen's units made from plain values rows, without Lua.
 *
 * A mass manufacturing batch turns each row of a values file into a unit
 * CSV (the config's rows with that row's values) and the image of that CSV.
 * Nearly every row is plain text whose values need no more than the common
 * conversions; this maker handles exactly those and says "not mine" for
 * anything else (a conversion it does not know, a value that would fail, a
 * file it cannot read), so that the caller's general code makes that row
 * and words its message.  It must therefore never succeed where the general
 * code would fail, nor make other bytes than it does.
 */
#ifndef NVS_MFG_H
#define NVS_MFG_H

#include <stddef.h>
#include <stdint.h>

#include "nvs_crypto.h"
#include "nvs_encoder.h"
#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

/* What a config row becomes in a unit. */
enum nvs_mfg_kind {
    NVS_MFG_NAMESPACE, /* selects (or creates) namespace `key` */
    NVS_MFG_TEXT,      /* a CSV line only (a namespace row the CSV reader drops) */
    NVS_MFG_SKIP,      /* a data row whose CSV line the reader drops: value in the CSV only */
    NVS_MFG_STRING,    /* data,string: the value's bytes */
    NVS_MFG_INT,       /* data,<integer type>: decimal text */
    NVS_MFG_HEX,       /* data,hex2bin: hex digits, an even number of them */
    NVS_MFG_BASE64,    /* data,base64: ASCII text decoded as binascii does */
    NVS_MFG_BINARY,    /* data,binary: the value's bytes as a blob */
    NVS_MFG_FILE       /* file,binary: the bytes of the file the value names */
};

/* How the images are encrypted. */
enum nvs_mfg_keys {
    NVS_MFG_PLAIN,     /* not */
    NVS_MFG_FIXED,     /* every image with one key, no keys file */
    NVS_MFG_FIXED_FILE, /* one key, and a keys file per unit */
    NVS_MFG_KEYGEN     /* a new key per unit, and its keys file */
};

/* The maker's statuses beyond the encoder's and negative errno values. */
enum { NVS_MFG_OK = 0, NVS_MFG_NOT_MINE = 1 };

typedef struct nvs_mfg_item {
    int kind;
    unsigned type;        /* NVS_MFG_INT: the NVS_TYPE_ */
    char *key;            /* the config row's key (NUL-terminated) */
    size_t klen;
    char *text;           /* the CSV line, or its start before the value */
    size_t text_len;
    /* the value of the row being made: its bytes and their length, or
     * its integer */
    const uint8_t *data;
    size_t len;
    int64_t bits;
    /* decoded values (hex2bin, base64) and a file's bytes (NVS_MFG_FILE,
     * whose path is kept while checking: a file named again is not read
     * again then) */
    uint8_t *buf;
    size_t buf_cap;
    char *file_path;
    size_t checked_len;   /* the length in the last row checked by building it */
} nvs_mfg_item;

typedef struct nvs_mfg {
    nvs_encoder enc;
    nvs_mfg_item *items;
    size_t nitems;
    char **header;        /* the values file's column names */
    size_t *header_len;
    size_t ncols;
    size_t *fill_cols;    /* REPEAT: columns (from 0) every row after the first takes */
    size_t nfill;         /* from the first row, whose values are kept here: */
    char **first;
    size_t *first_len;
    /* the row being made: its fields */
    const char **field;
    size_t *field_len;
    /* the unit CSV made with the image */
    char *csv;
    size_t csv_len, csv_cap;
    int checked;          /* a row was checked by building it (checked_len) */
    /* encryption */
    int keys;
    nvs_xts_ctx *xts;
    uint8_t key[NVS_XTS_KEY_SIZE];
    uint8_t *encrypted;
} nvs_mfg;

/* Prepares a maker for images of `size` bytes in `version`, with `ncols`
 * columns in the values file.  0 or a status (nvs_encoder's, NVS_ERR_NOMEM). */
int nvs_mfg_init(nvs_mfg *m, size_t size, unsigned version, size_t ncols);

/* Releases everything; safe on a zeroed maker, and twice. */
void nvs_mfg_free(nvs_mfg *m);

/* Column `col` (from 0) is named `name`. */
int nvs_mfg_set_column(nvs_mfg *m, size_t col, const char *name, size_t len);

/* Adds the next config row: its kind, the integer type (NVS_MFG_INT), its
 * key, and its CSV text (the whole line for NVS_MFG_NAMESPACE and
 * NVS_MFG_TEXT, the start before the value for the others). */
int nvs_mfg_add_item(nvs_mfg *m, int kind, unsigned type, const char *key, size_t klen,
                     const char *text, size_t text_len);

/* REPEAT: every row after the first takes column `col`'s value from the
 * first row, `value`. */
int nvs_mfg_add_fill(nvs_mfg *m, size_t col, const char *value, size_t len);

/* Sets how images are encrypted: `key` (64 bytes) for NVS_MFG_FIXED and
 * NVS_MFG_FIXED_FILE, NULL otherwise.  0 or an nvs_crypto status. */
int nvs_mfg_set_keys(nvs_mfg *m, int keys, const uint8_t *key);

/* Splits the plain record `line` (`len` bytes, no '\n', exactly ncols
 * fields separated by commas) into m->field, the REPEAT values filled in
 * for a row after the first (`number` > 1). */
void nvs_mfg_split(nvs_mfg *m, const char *line, size_t len, long number);

/* Makes the unit of the row split last: its image in m->enc, its CSV in
 * m->csv.  `checking`: only says whether the row makes a unit (no CSV;
 * no image either when its values have the lengths of the last row built
 * while checking; a file value read for an earlier row from the same path
 * is not read again).  NVS_MFG_OK, or NVS_MFG_NOT_MINE (the general code
 * must make this row). */
int nvs_mfg_build(nvs_mfg *m, int checking);

/* Writes the unit made last: its CSV (`csv_name` in folder `csv_dir`),
 * keys file (`keys_name` in `keys_dir`, for the modes that write one) and
 * image (`bin_name` in `bin_dir`, encrypted as nvs_mfg_set_keys said), each
 * created new and atomically, in that order; a failure removes the files
 * written before.  0, a negative errno value or an nvs_crypto status. */
int nvs_mfg_write(nvs_mfg *m, int csv_dir, const char *csv_name, int bin_dir,
                  const char *bin_name, int keys_dir, const char *keys_name);

NVS_HIDDEN_END

#endif
