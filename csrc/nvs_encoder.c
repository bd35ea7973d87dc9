/*
 * nvs_encoder.c - lays items out on NVS pages as the reference generator does.
 *
 * Placement rules (those of the reference, pinned by the vectors under
 * spec/fixtures/vectors):
 *  - a fixed-size item or a namespace entry goes on the current page while
 *    it has a free entry;
 *  - a string or version-1 blob of span s stays on the current page only if
 *    used + s < 126, i.e. it never ends on the last entry; an item that needs
 *    all 126 entries gets a fresh page of its own (the reference refuses it);
 *  - a version-2 blob is never moved whole: its chunks take the room left on
 *    each page, then the blob index follows the last chunk.
 * Every check that can fail runs before any byte is written, so an error
 * leaves the partition exactly as it was.
 */
#include "nvs_encoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- pages -------------------------------------------------------------- */

static uint8_t *page_base(const nvs_encoder *e, unsigned page)
{
    return e->image + (size_t)page * NVS_PAGE_SIZE;
}

static void start_page(nvs_encoder *e, unsigned page)
{
    uint8_t *p = page_base(e, page);
    nvs_put_u32(p, NVS_PAGE_ACTIVE);
    nvs_put_u32(p + 4, page); /* sequence number = page index */
    p[8] = e->version == 1 ? NVS_VERSION1_BYTE : NVS_VERSION2_BYTE;
    nvs_put_u32(p + 28, nvs_page_header_crc(p));
    e->page = page;
    e->used = 0;
}

static int next_page(nvs_encoder *e)
{
    if (e->page + 1 >= e->data_pages)
        return NVS_ERR_FULL;
    nvs_put_u32(page_base(e, e->page), NVS_PAGE_FULL);
    start_page(e, e->page + 1);
    return NVS_OK;
}

/* Marks `n` entries from the current position written and returns the first. */
static uint8_t *claim_entries(nvs_encoder *e, unsigned n)
{
    uint8_t *p = page_base(e, e->page);
    uint8_t *first = p + NVS_FIRST_ENTRY_OFFSET + e->used * NVS_ENTRY_SIZE;
    unsigned i;
    for (i = 0; i < n; i++) {
        unsigned bit = (e->used + i) * 2;
        /* 11 (empty) -> 10 (written): clear the low bit of the pair. */
        p[NVS_BITMAP_OFFSET + bit / 8] &= (uint8_t) ~(1u << (bit % 8));
    }
    e->used += n;
    return first;
}

/* ---- entries ------------------------------------------------------------ */

static void entry_header(uint8_t entry[NVS_ENTRY_SIZE], unsigned ns, unsigned type,
                         unsigned span, unsigned chunk, const uint8_t key[NVS_KEY_MAX + 1])
{
    memset(entry, 0xFF, NVS_ENTRY_SIZE);
    entry[NVS_ENTRY_NS] = (uint8_t)ns;
    entry[NVS_ENTRY_TYPE] = (uint8_t)type;
    entry[NVS_ENTRY_SPAN] = (uint8_t)span;
    entry[NVS_ENTRY_CHUNK] = (uint8_t)chunk;
    memcpy(entry + NVS_ENTRY_KEY, key, NVS_KEY_MAX + 1);
}

static void seal_entry(uint8_t entry[NVS_ENTRY_SIZE])
{
    nvs_put_u32(entry + NVS_ENTRY_CRC, nvs_entry_crc(entry));
}

/* Writes a variable-length header entry and its payload at the current spot. */
static void write_varlen(nvs_encoder *e, unsigned ns, unsigned type, unsigned chunk,
                         const uint8_t key[NVS_KEY_MAX + 1], const uint8_t *data,
                         size_t len, const uint8_t *tail, size_t tail_len)
{
    size_t total = len + tail_len;
    unsigned payload_entries = (unsigned)((total + NVS_ENTRY_SIZE - 1) / NVS_ENTRY_SIZE);
    uint8_t *entry = claim_entries(e, 1 + payload_entries);
    uint32_t crc = nvs_crc32(data, len);
    if (tail_len > 0)
        crc = nvs_crc32_update(crc, tail, tail_len);
    entry_header(entry, ns, type, 1 + payload_entries, chunk, key);
    nvs_put_u16(entry + NVS_ENTRY_DATA, (uint16_t)total);
    nvs_put_u32(entry + NVS_ENTRY_DATA + 4, crc);
    seal_entry(entry);
    /* Payload entries start as 0xFF (fresh page), so the padding is there. */
    if (len > 0)
        memcpy(entry + NVS_ENTRY_SIZE, data, len);
    if (tail_len > 0)
        memcpy(entry + NVS_ENTRY_SIZE + len, tail, tail_len);
}

/* ---- keys and namespaces ------------------------------------------------ */

static int make_key(uint8_t out[NVS_KEY_MAX + 1], const char *key, size_t klen)
{
    if (klen == 0)
        return NVS_ERR_KEY_EMPTY;
    if (klen > NVS_KEY_MAX)
        return NVS_ERR_KEY_TOO_LONG;
    if (memchr(key, '\0', klen) != NULL)
        return NVS_ERR_KEY_NUL;
    memset(out, 0, NVS_KEY_MAX + 1);
    memcpy(out, key, klen);
    return NVS_OK;
}

/* Checks that `key` can take a new item in the current namespace. */
static int check_item_key(nvs_encoder *e, uint8_t out[NVS_KEY_MAX + 1],
                          const char *key, size_t klen)
{
    int rc = make_key(out, key, klen);
    if (rc != NVS_OK)
        return rc;
    if (e->ns_current == 0)
        return NVS_ERR_NO_NAMESPACE;
    if (nvs_keymap_get(&e->keys, (uint8_t)e->ns_current, (const char *)out) != NVS_KEYMAP_NONE)
        return NVS_ERR_DUPLICATE_KEY;
    /* Make room now so that remembering the key later cannot fail. */
    if ((e->keys.n + 1) * 2 > e->keys.cap && nvs_keymap_reserve(&e->keys, 1) != 0)
        return NVS_ERR_NOMEM;
    return NVS_OK;
}

static void remember_key(nvs_encoder *e, const uint8_t key[NVS_KEY_MAX + 1])
{
    /* cannot fail: check_item_key made room */
    nvs_keymap_add(&e->keys, (uint8_t)e->ns_current, (const char *)key, 1);
}

/* Room for a fixed-size entry: the current page while it has a free entry. */
static int make_room_for_entry(nvs_encoder *e)
{
    return e->used < NVS_ENTRIES_PER_PAGE ? NVS_OK : next_page(e);
}

static void write_fixed(nvs_encoder *e, unsigned ns, unsigned type,
                        const uint8_t key[NVS_KEY_MAX + 1], const uint8_t *value, unsigned size)
{
    uint8_t *entry = claim_entries(e, 1);
    entry_header(entry, ns, type, 1, NVS_CHUNK_ANY, key);
    memcpy(entry + NVS_ENTRY_DATA, value, size);
    seal_entry(entry);
}

int nvs_encoder_namespace(nvs_encoder *e, const char *name, size_t len)
{
    uint8_t key[NVS_KEY_MAX + 1];
    unsigned i;
    uint8_t index;
    int rc = make_key(key, name, len);
    if (rc != NVS_OK)
        return rc;
    for (i = 0; i < e->ns_count; i++) {
        if (memcmp(e->ns_names[i], key, NVS_KEY_MAX + 1) == 0) {
            /* Returning to a namespace: the reference keeps writing under the
             * newest one here, which firmware cannot find; use the right one. */
            e->ns_current = i + 1;
            return NVS_OK;
        }
    }
    if (e->ns_count >= NVS_NAMESPACE_MAX) {
        e->detail_limit = NVS_NAMESPACE_MAX;
        return NVS_ERR_TOO_MANY_NAMESPACES;
    }
    rc = make_room_for_entry(e);
    if (rc != NVS_OK)
        return rc;
    index = (uint8_t)(e->ns_count + 1);
    write_fixed(e, 0, NVS_TYPE_U8, key, &index, 1);
    memcpy(e->ns_names[e->ns_count], key, NVS_KEY_MAX + 1);
    e->ns_count++;
    e->ns_current = index;
    return NVS_OK;
}

/* ---- fixed-size values -------------------------------------------------- */

static int int_in_range(unsigned type, int64_t v)
{
    switch (type) {
    case NVS_TYPE_U8:
        return v >= 0 && v <= UINT8_MAX;
    case NVS_TYPE_I8:
        return v >= INT8_MIN && v <= INT8_MAX;
    case NVS_TYPE_U16:
        return v >= 0 && v <= UINT16_MAX;
    case NVS_TYPE_I16:
        return v >= INT16_MIN && v <= INT16_MAX;
    case NVS_TYPE_U32:
        return v >= 0 && v <= (int64_t)UINT32_MAX;
    case NVS_TYPE_I32:
        return v >= INT32_MIN && v <= INT32_MAX;
    default: /* u64 bits and i64 take any 64-bit pattern */
        return 1;
    }
}

static int put_fixed(nvs_encoder *e, const char *key, size_t klen, unsigned type,
                     const uint8_t *value, unsigned size)
{
    uint8_t k[NVS_KEY_MAX + 1];
    int rc = check_item_key(e, k, key, klen);
    if (rc == NVS_OK)
        rc = make_room_for_entry(e);
    if (rc != NVS_OK)
        return rc;
    write_fixed(e, e->ns_current, type, k, value, size);
    remember_key(e, k);
    return NVS_OK;
}

int nvs_encoder_put_int(nvs_encoder *e, const char *key, size_t klen,
                        unsigned type, int64_t value)
{
    uint8_t bytes[8];
    unsigned size = nvs_fixed_type_size(type);
    if (size == 0 || type == NVS_TYPE_FLOAT || type == NVS_TYPE_DOUBLE)
        return NVS_ERR_TYPE;
    if (!int_in_range(type, value))
        return NVS_ERR_RANGE;
    nvs_put_u64(bytes, (uint64_t)value);
    return put_fixed(e, key, klen, type, bytes, size);
}

int nvs_encoder_put_real(nvs_encoder *e, const char *key, size_t klen,
                         unsigned type, double value)
{
    uint8_t bytes[8];
    if (type != NVS_TYPE_FLOAT && type != NVS_TYPE_DOUBLE)
        return NVS_ERR_TYPE;
    if (isnan(value))
        return NVS_ERR_NAN;
    if (type == NVS_TYPE_FLOAT) {
        float f = (float)value;
        uint32_t bits;
        /* A finite double that a float cannot hold would become infinity. */
        if (isinf(f) && !isinf(value))
            return NVS_ERR_RANGE;
        memcpy(&bits, &f, sizeof bits);
        nvs_put_u32(bytes, bits);
        return put_fixed(e, key, klen, type, bytes, 4);
    } else {
        uint64_t bits;
        memcpy(&bits, &value, sizeof bits);
        nvs_put_u64(bytes, bits);
        return put_fixed(e, key, klen, type, bytes, 8);
    }
}

/* ---- strings and version-1 blobs ---------------------------------------- */

static unsigned span_of(size_t len)
{
    return 1 + (unsigned)((len + NVS_ENTRY_SIZE - 1) / NVS_ENTRY_SIZE);
}

/* One item whose header and payload must share a page. */
static int put_single_page(nvs_encoder *e, const char *key, size_t klen, unsigned type,
                           const uint8_t *data, size_t len, const uint8_t *tail,
                           size_t tail_len, size_t limit)
{
    uint8_t k[NVS_KEY_MAX + 1];
    size_t total = len + tail_len;
    unsigned span;
    int rc;
    if (total > limit) {
        e->detail_value = total;
        e->detail_limit = limit;
        return NVS_ERR_TOO_LONG;
    }
    rc = check_item_key(e, k, key, klen);
    if (rc != NVS_OK)
        return rc;
    span = span_of(total);
    if (span == NVS_ENTRIES_PER_PAGE) {
        if (e->used > 0)
            rc = next_page(e);
    } else if (e->used + span >= NVS_ENTRIES_PER_PAGE) {
        rc = next_page(e);
    }
    if (rc != NVS_OK)
        return rc;
    write_varlen(e, e->ns_current, type, NVS_CHUNK_ANY, k, data, len, tail, tail_len);
    remember_key(e, k);
    return NVS_OK;
}

int nvs_encoder_put_str(nvs_encoder *e, const char *key, size_t klen,
                        const uint8_t *s, size_t len)
{
    static const uint8_t nul = 0;
    size_t limit = e->version == 1 ? NVS_BLOB_MAX_V1 : NVS_STR_MAX_V2;
    const uint8_t *inner_nul = len > 0 ? (const uint8_t *)memchr(s, 0, len) : NULL;
    if (inner_nul != NULL) {
        e->detail_value = (size_t)(inner_nul - s);
        return NVS_ERR_STR_NUL;
    }
    return put_single_page(e, key, klen, NVS_TYPE_STR, s, len, &nul, 1, limit);
}

/* ---- version-2 blobs ---------------------------------------------------- */

/* Moves the blob walk to the next page (really, when `write`); 0 if none is left. */
static int blob_next_page(nvs_encoder *e, unsigned *page, unsigned *used, int write)
{
    if (*page + 1 >= e->data_pages)
        return 0;
    if (write)
        next_page(e);
    (*page)++;
    *used = 0;
    return 1;
}

/* Walks the chunking of a blob of `len` bytes from the current position.
 * With `write` == 0 it only checks that the pages and chunk indices suffice,
 * moving nothing; with `write` == 1 it writes the chunks and the index. */
static int blob_chunks(nvs_encoder *e, const uint8_t k[NVS_KEY_MAX + 1],
                       const uint8_t *data, size_t len, int write)
{
    unsigned page = e->page, used = e->used, chunks = 0;
    size_t offset = 0, remaining = len;
    if (used >= NVS_ENTRIES_PER_PAGE && !blob_next_page(e, &page, &used, write))
        return NVS_ERR_FULL;
    for (;;) {
        size_t room = (size_t)(NVS_ENTRIES_PER_PAGE - used - 1) * NVS_ENTRY_SIZE;
        size_t chunk = remaining < room ? remaining : room;
        if (chunks >= NVS_BLOB_CHUNKS_MAX) {
            e->detail_limit = NVS_BLOB_CHUNKS_MAX;
            return NVS_ERR_TOO_MANY_CHUNKS;
        }
        if (write)
            write_varlen(e, e->ns_current, NVS_TYPE_BLOB_DATA, chunks, k,
                         data + offset, chunk, NULL, 0);
        used += span_of(chunk);
        chunks++;
        remaining -= chunk;
        offset += chunk;
        if ((remaining > 0 || room - chunk < NVS_ENTRY_SIZE) &&
            !blob_next_page(e, &page, &used, write))
            return NVS_ERR_FULL;
        if (remaining == 0)
            break;
    }
    if (write) {
        uint8_t *entry = claim_entries(e, 1);
        entry_header(entry, e->ns_current, NVS_TYPE_BLOB_IDX, 1, NVS_CHUNK_ANY, k);
        nvs_put_u32(entry + NVS_ENTRY_DATA, (uint32_t)len);
        entry[NVS_ENTRY_DATA + 4] = (uint8_t)chunks;
        entry[NVS_ENTRY_DATA + 5] = 0; /* chunk start: version offset 0 */
        seal_entry(entry);
    }
    return NVS_OK;
}

int nvs_encoder_put_blob(nvs_encoder *e, const char *key, size_t klen,
                         const uint8_t *data, size_t len)
{
    uint8_t k[NVS_KEY_MAX + 1];
    int rc;
    if (e->version == 1)
        return put_single_page(e, key, klen, NVS_TYPE_BLOB, data, len, NULL, 0,
                               NVS_BLOB_MAX_V1);
    if (len > NVS_BLOB_MAX_V2) {
        e->detail_value = len;
        e->detail_limit = NVS_BLOB_MAX_V2;
        return NVS_ERR_TOO_LONG;
    }
    rc = check_item_key(e, k, key, klen);
    if (rc == NVS_OK)
        rc = blob_chunks(e, k, data, len, 0);
    if (rc != NVS_OK)
        return rc;
    blob_chunks(e, k, data, len, 1);
    remember_key(e, k);
    return NVS_OK;
}

/* ---- life cycle --------------------------------------------------------- */

int nvs_encoder_init(nvs_encoder *e, size_t size, unsigned version)
{
    size_t pages;
    memset(e, 0, sizeof *e);
    if (size < NVS_PAGE_SIZE || size % NVS_PAGE_SIZE != 0)
        return NVS_ERR_SIZE;
    if (version != 1 && version != 2)
        return NVS_ERR_VERSION;
    pages = size / NVS_PAGE_SIZE;
    if (pages > 0xFFFFFFFFu)
        return NVS_ERR_SIZE;
    e->image = malloc(size);
    if (e->image == NULL) {
        nvs_encoder_free(e);
        return NVS_ERR_NOMEM;
    }
    e->size = size;
    e->version = version;
    /* Below 0x3000 the partition is read-only and keeps no reserved page. */
    e->data_pages = (unsigned)(pages < 3 ? pages : pages - 1);
    memset(e->image, 0xFF, size);
    nvs_encoder_reset(e);
    return NVS_OK;
}

void nvs_encoder_free(nvs_encoder *e)
{
    free(e->image);
    nvs_keymap_free(&e->keys);
    e->image = NULL;
}

void nvs_encoder_reset(nvs_encoder *e)
{
    /* Only pages up to the current one were ever written (init erased the
     * whole image): a batch resets its encoder for every unit, and most
     * units fill one page of several. */
    size_t used = (size_t)(e->page + 1) * NVS_PAGE_SIZE;
    memset(e->image, 0xFF, used < e->size ? used : e->size);
    nvs_keymap_clear(&e->keys);
    e->ns_current = 0;
    e->ns_count = 0;
    start_page(e, 0);
}

const uint8_t *nvs_encoder_image(const nvs_encoder *e, size_t *len)
{
    int read_only = e->size < 3 * NVS_PAGE_SIZE;
    *len = read_only ? (size_t)(e->page + 1) * NVS_PAGE_SIZE : e->size;
    return e->image;
}

const char *nvs_encoder_strerror(int status)
{
    switch (status) {
    case NVS_OK:
        return "no error";
    case NVS_ERR_NOMEM:
        return "out of memory";
    case NVS_ERR_SIZE:
        return "partition size must be a multiple of 4096 and at least 4096";
    case NVS_ERR_VERSION:
        return "version must be 1 or 2";
    case NVS_ERR_KEY_EMPTY:
        return "key is empty";
    case NVS_ERR_KEY_TOO_LONG:
        return "key longer than 15 bytes";
    case NVS_ERR_KEY_NUL:
        return "key contains a NUL byte";
    case NVS_ERR_NO_NAMESPACE:
        return "no namespace selected";
    case NVS_ERR_TOO_MANY_NAMESPACES:
        return "more than 254 namespaces";
    case NVS_ERR_DUPLICATE_KEY:
        return "key already set in this namespace";
    case NVS_ERR_RANGE:
        return "value out of range";
    case NVS_ERR_NAN:
        return "NaN is not allowed";
    case NVS_ERR_TOO_LONG:
        return "value too long";
    case NVS_ERR_FULL:
        return "partition full";
    case NVS_ERR_TYPE:
        return "wrong type";
    case NVS_ERR_TOO_MANY_CHUNKS:
        return "blob needs more than 128 chunks";
    case NVS_ERR_STR_NUL:
        return "string contains a NUL byte";
    default:
        return "unknown error";
    }
}
