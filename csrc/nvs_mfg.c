/*
 * nvs_mfg.c - mfg_gen's units made from plain values rows (see nvs_mfg.h).
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* O_CLOEXEC with older C libraries */
#endif
#include "nvs_mfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvs_codec.h"
#include "nvs_file.h"

/* ---- memory ------------------------------------------------------------------ */

/* Makes room for `need` bytes in *buf (capacity *cap).  0 or NVS_ERR_NOMEM. */
static int reserve(void **buf, size_t *cap, size_t need)
{
    void *grown;
    size_t n = *cap == 0 ? 256 : *cap;
    if (need <= *cap)
        return 0;
    while (n < need) {
        if (n > (size_t)-1 / 2)
            return NVS_ERR_NOMEM;
        n *= 2;
    }
    grown = realloc(*buf, n);
    if (grown == NULL)
        return NVS_ERR_NOMEM;
    *buf = grown;
    *cap = n;
    return 0;
}

/* A NUL-terminated copy of `len` bytes, or NULL. */
static char *copy_bytes(const char *s, size_t len)
{
    char *c = (char *)malloc(len + 1);
    if (c != NULL) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

int nvs_mfg_init(nvs_mfg *m, size_t size, unsigned version, size_t ncols)
{
    int rc;
    memset(m, 0, sizeof *m);
    rc = nvs_encoder_init(&m->enc, size, version);
    if (rc != NVS_OK)
        return rc;
    m->ncols = ncols;
    m->header = (char **)calloc(ncols + 1, sizeof *m->header);
    m->header_len = (size_t *)calloc(ncols + 1, sizeof *m->header_len);
    m->field = (const char **)calloc(ncols + 1, sizeof *m->field);
    m->field_len = (size_t *)calloc(ncols + 1, sizeof *m->field_len);
    if (m->header == NULL || m->header_len == NULL || m->field == NULL || m->field_len == NULL) {
        nvs_mfg_free(m);
        return NVS_ERR_NOMEM;
    }
    return 0;
}

void nvs_mfg_free(nvs_mfg *m)
{
    size_t i;
    nvs_encoder_free(&m->enc);
    for (i = 0; i < m->nitems; i++) {
        free(m->items[i].key);
        free(m->items[i].text);
        free(m->items[i].buf);
        free(m->items[i].file_path);
    }
    free(m->items);
    if (m->header != NULL)
        for (i = 0; i < m->ncols; i++)
            free(m->header[i]);
    free(m->header);
    free(m->header_len);
    for (i = 0; i < m->nfill; i++)
        free(m->first[i]);
    free(m->first);
    free(m->first_len);
    free(m->fill_cols);
    free((void *)m->field);
    free(m->field_len);
    free(m->csv);
    nvs_xts_free(m->xts);
    nvs_wipe(m->key, sizeof m->key);
    free(m->encrypted);
    memset(m, 0, sizeof *m);
}

int nvs_mfg_set_column(nvs_mfg *m, size_t col, const char *name, size_t len)
{
    char *c;
    if (col >= m->ncols)
        return NVS_ERR_SIZE;
    c = copy_bytes(name, len);
    if (c == NULL)
        return NVS_ERR_NOMEM;
    free(m->header[col]);
    m->header[col] = c;
    m->header_len[col] = len;
    return 0;
}

int nvs_mfg_add_item(nvs_mfg *m, int kind, unsigned type, const char *key, size_t klen,
                     const char *text, size_t text_len)
{
    nvs_mfg_item *items = (nvs_mfg_item *)realloc(m->items, (m->nitems + 1) * sizeof *items);
    nvs_mfg_item *it;
    if (items == NULL)
        return NVS_ERR_NOMEM;
    m->items = items;
    it = &items[m->nitems];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->type = type;
    it->key = copy_bytes(key, klen);
    it->klen = klen;
    it->text = copy_bytes(text, text_len);
    it->text_len = text_len;
    if (it->key == NULL || it->text == NULL) {
        free(it->key);
        free(it->text);
        return NVS_ERR_NOMEM;
    }
    m->nitems++;
    return 0;
}

int nvs_mfg_add_fill(nvs_mfg *m, size_t col, const char *value, size_t len)
{
    size_t *cols = (size_t *)realloc(m->fill_cols, (m->nfill + 1) * sizeof *cols);
    char **first;
    size_t *first_len;
    if (cols == NULL)
        return NVS_ERR_NOMEM;
    m->fill_cols = cols;
    first = (char **)realloc(m->first, (m->nfill + 1) * sizeof *first);
    if (first == NULL)
        return NVS_ERR_NOMEM;
    m->first = first;
    first_len = (size_t *)realloc(m->first_len, (m->nfill + 1) * sizeof *first_len);
    if (first_len == NULL)
        return NVS_ERR_NOMEM;
    m->first_len = first_len;
    if (col >= m->ncols)
        return NVS_ERR_SIZE;
    first[m->nfill] = copy_bytes(value, len);
    if (first[m->nfill] == NULL)
        return NVS_ERR_NOMEM;
    first_len[m->nfill] = len;
    cols[m->nfill] = col;
    m->nfill++;
    return 0;
}

int nvs_mfg_set_keys(nvs_mfg *m, int keys, const uint8_t *key)
{
    static const uint8_t placeholder[NVS_XTS_KEY_SIZE] = {1}; /* halves differ */
    int rc = 0;
    m->keys = keys;
    if (keys == NVS_MFG_PLAIN)
        return 0;
    if (m->encrypted == NULL) {
        m->encrypted = (uint8_t *)malloc(m->enc.size);
        if (m->encrypted == NULL)
            return NVS_CRYPTO_ENOMEM;
    }
    if (key != NULL)
        memcpy(m->key, key, sizeof m->key);
    if (m->xts == NULL)
        m->xts = nvs_xts_new(key != NULL ? key : placeholder, &rc);
    else if (key != NULL)
        rc = nvs_xts_rekey(m->xts, key);
    return m->xts == NULL && rc == 0 ? NVS_CRYPTO_ENOMEM : rc;
}

/* ---- a row ---------------------------------------------------------------------- */

void nvs_mfg_split(nvs_mfg *m, const char *line, size_t len, long number)
{
    size_t i = 0;
    const char *comma;
    while (i + 1 < m->ncols && (comma = (const char *)memchr(line, ',', len)) != NULL) {
        m->field[i] = line;
        m->field_len[i] = (size_t)(comma - line);
        len -= (size_t)(comma - line) + 1;
        line = comma + 1;
        i++;
    }
    m->field[i] = line;
    m->field_len[i] = len;
    if (number > 1)
        for (i = 0; i < m->nfill; i++) {
            m->field[m->fill_cols[i]] = m->first[i];
            m->field_len[m->fill_cols[i]] = m->first_len[i];
        }
}

static int same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Appends `len` bytes to the unit CSV. */
static int csv_add(nvs_mfg *m, const char *s, size_t len)
{
    if (reserve((void **)&m->csv, &m->csv_cap, m->csv_len + len) != 0)
        return NVS_ERR_NOMEM;
    memcpy(m->csv + m->csv_len, s, len);
    m->csv_len += len;
    return 0;
}

/* Decimal text as the general code takes it without rewriting it: "0", or
 * an optional '-' and digits without a leading zero.  The value as the
 * 64-bit pattern of `type` when it is in its range; 0 otherwise. */
static int decimal_bits(const char *s, size_t len, unsigned type, int64_t *bits)
{
    int negative = 0;
    uint64_t v = 0;
    size_t i = 0;
    if (len == 1 && s[0] == '0') {
        *bits = 0;
        return 1;
    }
    if (len > 0 && s[0] == '-') {
        negative = 1;
        i = 1;
    }
    if (i == len || s[i] < '1' || s[i] > '9')
        return 0;
    for (; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return nvs_integer_bits(type, negative, v, bits);
}

/* Reads the regular file at `path` into the item's buffer.  0, or nonzero
 * for anything the general code should look at (its message). */
static int read_value_file(nvs_mfg_item *it, const char *path)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (uint64_t)st.st_size > (uint64_t)((size_t)-1 / 2) ||
        reserve((void **)&it->buf, &it->buf_cap, (size_t)st.st_size + 1) != 0) {
        close(fd);
        return -1;
    }
    /* One byte more than the size: a file that grew is left to the general
     * code, which reads it to its end. */
    n = read(fd, it->buf, (size_t)st.st_size + 1);
    close(fd);
    if (n < 0 || n != (ssize_t)st.st_size)
        return -1;
    it->len = (size_t)n;
    return 0;
}

/* The file value `path` (`len` bytes) of item `it` in its buffer: read, or
 * while checking kept from the last row that named the same path. */
static int file_value(nvs_mfg_item *it, const char *path, size_t len, int checking)
{
    char *c;
    if (checking && it->file_path != NULL && strlen(it->file_path) == len &&
        memcmp(it->file_path, path, len) == 0)
        return 0;
    free(it->file_path);
    it->file_path = NULL;
    c = copy_bytes(path, len); /* the path as a C string */
    if (c == NULL || memchr(path, '\0', len) != NULL || read_value_file(it, c) != 0) {
        free(c);
        return -1;
    }
    if (checking)
        it->file_path = c;
    else
        free(c);
    return 0;
}

static int is_hex_digit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Converts the value `v` (`len` bytes) of data item `it` as the general
 * code would: it->data and it->len (bytes), or it->bits (integers).  0, or
 * nonzero for a value the general code must look at. */
static int convert(nvs_mfg_item *it, const char *v, size_t len, int checking)
{
    size_t i;
    switch (it->kind) {
    case NVS_MFG_STRING:
        /* (a NUL byte, refused by the encoder, never comes from a plain line) */
        if (memchr(v, '\0', len) != NULL)
            return -1;
        /* fall through */
    case NVS_MFG_BINARY:
        it->data = (const uint8_t *)v;
        it->len = len;
        return 0;
    case NVS_MFG_INT:
        it->len = 0;
        return decimal_bits(v, len, it->type, &it->bits) ? 0 : -1;
    case NVS_MFG_HEX:
        if (len % 2 != 0)
            return -1;
        for (i = 0; i < len; i++)
            if (!is_hex_digit(v[i]))
                return -1;
        if (reserve((void **)&it->buf, &it->buf_cap, len / 2 + 1) != 0 ||
            nvs_hex_decode(v, len, it->buf) != NVS_CODEC_OK)
            return -1;
        it->data = it->buf;
        it->len = len / 2;
        return 0;
    case NVS_MFG_BASE64:
        for (i = 0; i < len; i++)
            if ((unsigned char)v[i] >= 0x80)
                return -1;
        if (reserve((void **)&it->buf, &it->buf_cap, len / 4 * 3 + 3) != 0 ||
            nvs_base64_decode(v, len, it->buf, &it->len) != NVS_CODEC_OK)
            return -1;
        it->data = it->buf;
        return 0;
    case NVS_MFG_FILE:
        if (file_value(it, v, len, checking) != 0)
            return -1;
        it->data = it->buf;
        return 0;
    default:
        return -1;
    }
}

/* Adds data item `it`, converted, to the image.  An encoder status. */
static int put_item(nvs_encoder *e, const nvs_mfg_item *it)
{
    switch (it->kind) {
    case NVS_MFG_STRING:
        return nvs_encoder_put_str(e, it->key, it->klen, it->data, it->len);
    case NVS_MFG_INT:
        return nvs_encoder_put_int(e, it->key, it->klen, it->type, it->bits);
    default:
        return nvs_encoder_put_blob(e, it->key, it->klen, it->data, it->len);
    }
}

/* Where an item's entries go depends on the items before it (their keys
 * and types: the same in every row) and on the lengths of their values,
 * never on the bytes (a NUL byte in a string aside, which convert
 * refuses), and integers were range-checked by convert: so a row whose
 * values have the lengths of a row already built fits as that one did,
 * and the check builds only rows with other lengths. */
int nvs_mfg_build(nvs_mfg *m, int checking)
{
    size_t i, p = 0;
    int known = checking && m->checked;
    if (!checking) {
        m->csv_len = 0;
        if (csv_add(m, "key,type,encoding,value\r\n", 25) != 0)
            return NVS_MFG_NOT_MINE;
    }
    for (i = 0; i < m->nitems; i++) {
        nvs_mfg_item *it = &m->items[i];
        const char *v;
        size_t vlen;
        if (it->kind == NVS_MFG_NAMESPACE || it->kind == NVS_MFG_TEXT) {
            if (!checking && csv_add(m, it->text, it->text_len) != 0)
                return NVS_MFG_NOT_MINE;
            continue;
        }
        /* The value is the next field named by the key, or holding it
         * (mfg_gen.py's walk over the header and the row together). */
        while (p < m->ncols && !same(m->header[p], m->header_len[p], it->key, it->klen) &&
               !same(m->field[p], m->field_len[p], it->key, it->klen))
            p++;
        if (p == m->ncols)
            return NVS_MFG_NOT_MINE;
        v = m->field[p];
        vlen = m->field_len[p];
        p++;
        if (!checking && (csv_add(m, it->text, it->text_len) != 0 || csv_add(m, v, vlen) != 0 ||
                          csv_add(m, "\r\n", 2) != 0))
            return NVS_MFG_NOT_MINE;
        if (it->kind == NVS_MFG_SKIP)
            continue;
        if (convert(it, v, vlen, checking) != 0)
            return NVS_MFG_NOT_MINE;
        if (it->len != it->checked_len)
            known = 0;
    }
    if (known)
        return NVS_MFG_OK;
    nvs_encoder_reset(&m->enc);
    for (i = 0; i < m->nitems; i++) {
        const nvs_mfg_item *it = &m->items[i];
        int rc = NVS_OK;
        if (it->kind == NVS_MFG_NAMESPACE)
            rc = nvs_encoder_namespace(&m->enc, it->key, it->klen);
        else if (it->kind != NVS_MFG_TEXT && it->kind != NVS_MFG_SKIP)
            rc = put_item(&m->enc, it);
        if (rc != NVS_OK)
            return NVS_MFG_NOT_MINE;
    }
    if (checking) {
        for (i = 0; i < m->nitems; i++)
            m->items[i].checked_len = m->items[i].len;
        m->checked = 1;
    }
    return NVS_MFG_OK;
}

/* ---- writing -------------------------------------------------------------------- */

int nvs_mfg_write(nvs_mfg *m, int csv_dir, const char *csv_name, int bin_dir,
                  const char *bin_name, int keys_dir, const char *keys_name)
{
    size_t len;
    const uint8_t *image = nvs_encoder_image(&m->enc, &len);
    int rc, keys_done = 0;
    /* The order of the general code: CSV, keys, image (last: a unit with
     * an image has all its files). */
    rc = nvs_write_file_at(csv_dir, csv_name, m->csv, m->csv_len, 0644, 0);
    if (rc != 0)
        return rc;
    if (m->keys != NVS_MFG_PLAIN) {
        rc = len % NVS_PAGE_SIZE != 0 ? NVS_CRYPTO_EIMAGE_SIZE : 0;
        if (rc == 0 && m->keys == NVS_MFG_KEYGEN) {
            rc = nvs_keys_generate(m->key);
            if (rc == 0)
                rc = nvs_xts_rekey(m->xts, m->key);
        }
        if (rc == 0 && m->keys != NVS_MFG_FIXED) {
            uint8_t keys_data[NVS_KEYS_PARTITION_SIZE];
            rc = nvs_keys_build(keys_data, m->key);
            if (rc == 0)
                rc = nvs_write_file_at(keys_dir, keys_name, keys_data, sizeof keys_data, 0600, 0);
            nvs_wipe(keys_data, sizeof keys_data);
            keys_done = rc == 0;
        }
        if (m->keys == NVS_MFG_KEYGEN)
            nvs_wipe(m->key, sizeof m->key);
        if (rc == 0) {
            memcpy(m->encrypted, image, len);
            rc = nvs_xts_image(m->xts, m->encrypted, len, 1);
            image = m->encrypted;
        }
    }
    if (rc == 0)
        rc = nvs_write_file_at(bin_dir, bin_name, image, len, 0644, 0);
    if (rc != 0) {
        if (keys_done)
            nvs_remove_at(keys_dir, keys_name);
        nvs_remove_at(csv_dir, csv_name);
    }
    return rc;
}
