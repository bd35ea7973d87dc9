/*
 * test_reader.c - checks for nvs_reader.c.
 *
 *   test_reader IMAGE...
 *
 * Each IMAGE is a plain partition image that must read back with no problem
 * (the vectors' expected.bin files).  Images holding ESP-IDF's sample CSVs
 * (namespace "dummyNamespace" or "storage") have their values checked
 * against the CSV, and the dummyNamespace ones are then corrupted in many
 * ways, each of which must be reported at the right page and entry.
 * Prints "N passed, N failed"; exits 1 on a failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvs_reader.h"

static int n_passed, n_failed;
static const char *current = "";

static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    if (ok) {
        n_passed++;
        return;
    }
    n_failed++;
    printf("FAIL [%s]: ", current);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void dump_problems(const nvs_read_result *r)
{
    size_t k;
    for (k = 0; k < r->n_problems && k < 20; k++)
        printf("    page %ld entry %ld %s: %s\n", (long)r->problems[k].page,
               (long)r->problems[k].entry,
               r->problems[k].severity == NVS_SEVERITY_ERROR ? "error" : "warning",
               r->problems[k].reason);
}

static uint8_t *load_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        size_t got;
        if (n == cap) {
            uint8_t *q;
            cap = cap ? cap * 2 : 65536;
            q = (uint8_t *)realloc(buf, cap);
            if (!q) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = q;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* The file `name` next to `image_path` (in its folder), or NULL. */
static uint8_t *load_sibling(const char *image_path, const char *name, size_t *len)
{
    char path[4096];
    const char *slash = strrchr(image_path, '/');
    int dir_len = slash ? (int)(slash - image_path) : 1;
    snprintf(path, sizeof path, "%.*s/%s", dir_len, slash ? image_path : ".", name);
    return load_file(path, len);
}

static const nvs_read_item *find_item(const nvs_read_result *r, const char *ns,
                                      const char *key)
{
    size_t k;
    for (k = 0; k < r->n_items; k++)
        if (strcmp(r->items[k].ns_name, ns) == 0 && strcmp(r->items[k].key, key) == 0)
            return &r->items[k];
    return NULL;
}

static const nvs_read_problem *find_problem(const nvs_read_result *r, long page,
                                            long entry, int code)
{
    size_t k;
    for (k = 0; k < r->n_problems; k++)
        if (r->problems[k].page == page && r->problems[k].entry == entry &&
            r->problems[k].code == code)
            return &r->problems[k];
    return NULL;
}

static uint8_t *entry_ptr(uint8_t *img, uint32_t page, uint32_t entry)
{
    return img + (size_t)page * NVS_PAGE_SIZE + NVS_FIRST_ENTRY_OFFSET +
           (size_t)entry * NVS_ENTRY_SIZE;
}

static void fix_entry_crc(uint8_t *img, uint32_t page, uint32_t entry)
{
    uint8_t *e = entry_ptr(img, page, entry);
    nvs_put_u32(e + NVS_ENTRY_CRC, nvs_entry_crc(e));
}

static unsigned get_state(const uint8_t *img, uint32_t page, unsigned entry)
{
    return (img[(size_t)page * NVS_PAGE_SIZE + NVS_BITMAP_OFFSET + entry / 4] >>
            ((entry % 4) * 2)) & 3u;
}

static void set_state(uint8_t *img, uint32_t page, unsigned entry, unsigned st)
{
    uint8_t *b = &img[(size_t)page * NVS_PAGE_SIZE + NVS_BITMAP_OFFSET + entry / 4];
    unsigned sh = (entry % 4) * 2;
    *b = (uint8_t)((*b & ~(3u << sh)) | (st << sh));
}

/* The active page of a clean image and its first empty entry. */
static int active_page(const nvs_read_result *r, const uint8_t *img, uint32_t *page,
                       unsigned *first_empty)
{
    size_t k;
    unsigned i;
    for (k = 0; k < r->n_pages; k++)
        if (r->pages[k].state == NVS_PAGE_ACTIVE) {
            *page = (uint32_t)k;
            for (i = 0; i < NVS_ENTRIES_PER_PAGE; i++)
                if (get_state(img, (uint32_t)k, i) == NVS_ENTRY_STATE_EMPTY) {
                    *first_empty = i;
                    return 1;
                }
        }
    return 0;
}

/* Reads a modified copy of an image; the caller frees the result. */
static int read_copy(const uint8_t *img, size_t len, unsigned flags, nvs_read_result *r)
{
    int rc = nvs_read(img, len, flags, r);
    check(rc == NVS_READ_OK, "nvs_read returned %d", rc);
    return rc == NVS_READ_OK;
}

static void expect_problem(const nvs_read_result *r, long page, long entry, int code,
                           const char *reason, const char *what)
{
    const nvs_read_problem *p = find_problem(r, page, entry, code);
    check(p != NULL, "%s: no problem %d at page %ld entry %ld", what, code, page, entry);
    if (!p) {
        dump_problems(r);
        return;
    }
    if (reason)
        check(strcmp(p->reason, reason) == 0, "%s: reason '%s', expected '%s'", what,
              p->reason, reason);
}

static const char LOREM[] =
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"
    "Fusce quis risus justo.\n"
    "Suspendisse egestas in nisi sit amet auctor.\n"
    "Pellentesque rhoncus dictum sodales.\n"
    "In justo erat, viverra at interdum eget, interdum vel dui.";

static void expect_int(const nvs_read_result *r, const char *ns, const char *key,
                       unsigned type, long long value)
{
    const nvs_read_item *it = find_item(r, ns, key);
    check(it != NULL, "%s/%s missing", ns, key);
    if (!it)
        return;
    check(it->type == type, "%s/%s type 0x%02x", ns, key, it->type);
    check(it->i == value, "%s/%s = %lld, expected %lld", ns, key, (long long)it->i, value);
}

static void expect_bytes(const nvs_read_result *r, const char *ns, const char *key,
                         unsigned type, const void *data, size_t size)
{
    const nvs_read_item *it = find_item(r, ns, key);
    check(it != NULL, "%s/%s missing", ns, key);
    if (!it)
        return;
    check(it->type == type, "%s/%s type 0x%02x, expected 0x%02x", ns, key, it->type, type);
    check(it->size == size && (size == 0 || memcmp(it->data, data, size) == 0),
          "%s/%s: %zu bytes differ from the %zu expected", ns, key, it->size, size);
}

/* The values of ESP-IDF's sample_*_blob.csv. */
static void check_sample_values(const char *path, const nvs_read_result *r, int v1)
{
    static const uint8_t hex[] = {0x01, 0x02, 0x03, 0xab, 0xcd, 0xef};
    static const uint8_t hexfile[] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    static const uint8_t b64file[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0xab, 0xcd, 0xef};
    const char *ns = "dummyNamespace";
    unsigned blob = v1 ? NVS_TYPE_BLOB : NVS_TYPE_BLOB_IDX;
    uint8_t *f;
    size_t n;

    expect_int(r, ns, "dummyU8Key", NVS_TYPE_U8, 127);
    expect_int(r, ns, "dummyI8Key", NVS_TYPE_I8, -128);
    expect_int(r, ns, "dummyU16Key", NVS_TYPE_U16, 32768);
    expect_int(r, ns, "dummyU32Key", NVS_TYPE_U32, 4294967295LL);
    expect_int(r, ns, "dummyI32Key", NVS_TYPE_I32, -2147483648LL);
    expect_bytes(r, ns, "dummyStringKey", NVS_TYPE_STR, LOREM, sizeof LOREM);
    expect_bytes(r, ns, "dummyHex2BinKey", blob, hex, sizeof hex);
    expect_bytes(r, ns, "dummyBase64Key", blob, "123abc", 6);
    expect_bytes(r, ns, "hexFileKey", blob, hexfile, sizeof hexfile);
    expect_bytes(r, ns, "base64FileKey", blob, b64file, sizeof b64file);
    expect_bytes(r, ns, "stringFileKey", NVS_TYPE_STR, "abcdefghijklmnopqrstuvwxyz", 27);
    check(r->n_items == 14, "%zu items, expected 14", r->n_items);
    check(r->n_namespaces == 1 && r->namespaces[0].index == 1,
          "one namespace with index 1");

    if ((f = load_sibling(path, "testdata/sample_blob.bin", &n)) != NULL) {
        expect_bytes(r, ns, "blobFileAKey", blob, f, n);
        expect_bytes(r, ns, "blobFileBKey", blob, f, n);
        free(f);
    }
    f = load_sibling(path, "testdata/sample_multipage_blob.bin", &n);
    if (f && find_item(r, ns, "binFileKey") && find_item(r, ns, "binFileKey")->size != n) {
        free(f);
        f = load_sibling(path, "testdata/sample_singlepage_blob.bin", &n);
    }
    if (f) {
        expect_bytes(r, ns, "binFileKey", blob, f, n);
        free(f);
    }
}

static void check_storage_values(const nvs_read_result *r)
{
    expect_int(r, "storage", "u8_key", NVS_TYPE_U8, 255);
    expect_int(r, "storage", "i8_key", NVS_TYPE_I8, -128);
    expect_int(r, "storage", "u16_key", NVS_TYPE_U16, 65535);
    expect_int(r, "storage", "u32_key", NVS_TYPE_U32, 4294967295LL);
    expect_int(r, "storage", "i32_key", NVS_TYPE_I32, -2147483648LL);
    expect_bytes(r, "storage", "str_key", NVS_TYPE_STR, LOREM, sizeof LOREM);
}

/* Damage a sample image in one place at a time. */
static void corrupt_sample(const uint8_t *orig, size_t len, const nvs_read_result *clean)
{
    const char *ns = "dummyNamespace";
    const nvs_read_item *u8 = find_item(clean, ns, "dummyU8Key");
    const nvs_read_item *str = find_item(clean, ns, "dummyStringKey");
    const nvs_read_item *bin = find_item(clean, ns, "binFileKey");
    uint8_t *img = (uint8_t *)malloc(len);
    nvs_read_result r;
    uint32_t ap;
    unsigned fe;

    if (!img || !u8 || !str || !bin) {
        check(0, "sample image lacks its items");
        free(img);
        return;
    }

    /* a page header */
    memcpy(img, orig, len);
    img[4] ^= 0x01;
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, 0, -1, NVS_PB_PAGE_CRC, "page header crc mismatch", "header flip");
        check(find_item(&r, ns, "dummyU8Key") == NULL, "header flip: u8 still read");
        nvs_read_free(&r);
    }

    /* an entry header (a key byte) */
    memcpy(img, orig, len);
    entry_ptr(img, u8->page, u8->entry)[NVS_ENTRY_KEY + 1] ^= 0x20;
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, u8->page, u8->entry, NVS_PB_ENTRY_CRC, "entry crc mismatch",
                       "entry flip");
        check(find_item(&r, ns, "dummyU8Key") == NULL, "entry flip: u8 still read");
        check(find_item(&r, ns, "dummyI8Key") != NULL, "entry flip: i8 lost");
        nvs_read_free(&r);
    }

    /* string payload */
    memcpy(img, orig, len);
    entry_ptr(img, str->page, str->entry + 1)[3] ^= 0x40;
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, str->page, str->entry, NVS_PB_STR_CRC, "string data crc mismatch",
                       "string flip");
        check(find_item(&r, ns, "dummyStringKey") == NULL, "string flip: still read");
        check(r.n_problems == 1, "string flip: %zu problems", r.n_problems);
        nvs_read_free(&r);
    }

    /* blob payload (the first chunk of a version-2 blob) */
    memcpy(img, orig, len);
    {
        uint32_t bp = bin->page, be = bin->entry;
        if (bin->type == NVS_TYPE_BLOB_IDX) {
            bp = clean->chunks[bin->first_chunk].page;
            be = clean->chunks[bin->first_chunk].entry;
        }
        entry_ptr(img, bp, be + 1)[0] ^= 0xFF;
        if (read_copy(img, len, 0, &r)) {
            expect_problem(&r, bp, be, NVS_PB_BLOB_CRC, "blob data crc mismatch", "blob flip");
            check(find_item(&r, ns, "binFileKey") == NULL, "blob flip: still read");
            nvs_read_free(&r);
        }
    }

    /* the bitmap: an empty entry marked written */
    memcpy(img, orig, len);
    if (active_page(clean, orig, &ap, &fe)) {
        set_state(img, ap, fe, NVS_ENTRY_STATE_WRITTEN);
        if (read_copy(img, len, 0, &r)) {
            expect_problem(&r, ap, fe, NVS_PB_ENTRY_BLANK,
                           "bitmap marks entry written but entry is empty", "bitmap flip");
            check(r.n_items == clean->n_items, "bitmap flip: items lost");
            nvs_read_free(&r);
        }
        /* a write cut short: data without its bitmap bits */
        memcpy(img, orig, len);
        memcpy(entry_ptr(img, ap, fe), entry_ptr(img, u8->page, u8->entry), NVS_ENTRY_SIZE);
        if (read_copy(img, len, 0, &r)) {
            expect_problem(&r, ap, fe, NVS_PB_ENTRY_TORN,
                           "bitmap marks entry empty but entry is written", "torn write");
            nvs_read_free(&r);
        }
        /* stray bytes in an empty entry */
        memcpy(img, orig, len);
        entry_ptr(img, ap, fe)[20] = 0;
        if (read_copy(img, len, 0, &r)) {
            expect_problem(&r, ap, fe, NVS_PB_ENTRY_STRAY_DATA, NULL, "stray data");
            check(r.n_errors == 0, "stray data: an error");
            nvs_read_free(&r);
        }
        /* a duplicate written last (a new value, power lost before the
         * old one was erased): the firmware keeps the new one */
        memcpy(img, orig, len);
        memcpy(entry_ptr(img, ap, fe), entry_ptr(img, u8->page, u8->entry), NVS_ENTRY_SIZE);
        entry_ptr(img, ap, fe)[NVS_ENTRY_DATA] = 1;
        fix_entry_crc(img, ap, fe);
        set_state(img, ap, fe, NVS_ENTRY_STATE_WRITTEN);
        if (read_copy(img, len, 0, &r)) {
            const nvs_read_item *it = find_item(&r, ns, "dummyU8Key");
            expect_problem(&r, u8->page, u8->entry, NVS_PB_DUP_KEY,
                           "duplicate key 'dummyU8Key' in namespace 'dummyNamespace'",
                           "duplicate");
            check(it && it->u == 1 && it->page == ap && it->entry == fe,
                  "duplicate: the new value is not the one read");
            nvs_read_free(&r);
        }
        /* read-only, with the duplicate on another page, the old one wins */
        if (u8->page != ap && read_copy(img, len, NVS_READ_READ_ONLY, &r)) {
            const nvs_read_item *it = find_item(&r, ns, "dummyU8Key");
            expect_problem(&r, ap, fe, NVS_PB_DUP_KEY, NULL, "read-only duplicate");
            check(it && it->u == 127, "read-only duplicate: the old value is not read");
            nvs_read_free(&r);
        }
    } else {
        check(0, "no active page with an empty entry");
    }

    /* an item in a namespace nobody declared */
    memcpy(img, orig, len);
    entry_ptr(img, u8->page, u8->entry)[NVS_ENTRY_NS] = 7;
    fix_entry_crc(img, u8->page, u8->entry);
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, u8->page, u8->entry, NVS_PB_NS_UNKNOWN,
                       "item in unknown namespace 7", "unknown namespace");
        nvs_read_free(&r);
    }

    /* a span running off the page */
    memcpy(img, orig, len);
    entry_ptr(img, str->page, str->entry)[NVS_ENTRY_SPAN] =
        (uint8_t)(NVS_ENTRIES_PER_PAGE - str->entry + 1);
    fix_entry_crc(img, str->page, str->entry);
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, str->page, str->entry, NVS_PB_ENTRY_SPAN_PAST,
                       "span runs past the end of the page", "span");
        check(find_item(&r, ns, "dummyStringKey") == NULL, "span: string still read");
        nvs_read_free(&r);
    }

    /* a string's size that does not match its span */
    memcpy(img, orig, len);
    nvs_put_u16(entry_ptr(img, str->page, str->entry) + NVS_ENTRY_DATA, 40);
    fix_entry_crc(img, str->page, str->entry);
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, str->page, str->entry, NVS_PB_ENTRY_SPAN_SIZE, NULL, "span/size");
        nvs_read_free(&r);
    }

    /* a fixed-size item with a span */
    memcpy(img, orig, len);
    entry_ptr(img, u8->page, u8->entry)[NVS_ENTRY_SPAN] = 2;
    fix_entry_crc(img, u8->page, u8->entry);
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, u8->page, u8->entry, NVS_PB_ENTRY_SPAN_FIXED,
                       "span 2 of a fixed-size item is not 1", "fixed span");
        nvs_read_free(&r);
    }

    /* an unknown type */
    memcpy(img, orig, len);
    entry_ptr(img, u8->page, u8->entry)[NVS_ENTRY_TYPE] = 0x33;
    fix_entry_crc(img, u8->page, u8->entry);
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, u8->page, u8->entry, NVS_PB_ENTRY_TYPE, "unknown item type 0x33",
                       "type");
        nvs_read_free(&r);
    }

    /* garbage after the key's terminator: no lookup can find the item */
    memcpy(img, orig, len);
    entry_ptr(img, u8->page, u8->entry)[NVS_ENTRY_KEY + 14] = 'x';
    fix_entry_crc(img, u8->page, u8->entry);
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, u8->page, u8->entry, NVS_PB_KEY_PADDING, NULL, "key padding");
        check(find_item(&r, ns, "dummyU8Key") == NULL, "key padding: still read");
        nvs_read_free(&r);
    }

    /* the string's payload entry marked erased */
    memcpy(img, orig, len);
    set_state(img, str->page, str->entry + 1, NVS_ENTRY_STATE_ERASED);
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, str->page, str->entry, NVS_PB_ENTRY_SPAN_UNWRITTEN,
                       "item spans entries not marked written", "payload erased");
        nvs_read_free(&r);
    }

    /* an illegal bitmap state */
    memcpy(img, orig, len);
    set_state(img, u8->page, u8->entry, 1);
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, u8->page, u8->entry, NVS_PB_ENTRY_ILLEGAL, NULL, "illegal state");
        nvs_read_free(&r);
    }

    /* an unknown page state, and a version the firmware does not know */
    memcpy(img, orig, len);
    nvs_put_u32(img, 0xFFFFFF00u);
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, 0, -1, NVS_PB_PAGE_STATE, "unknown page state 0xffffff00",
                       "page state");
        nvs_read_free(&r);
    }
    memcpy(img, orig, len);
    img[8] = 0xFD;
    nvs_put_u32(img + 28, nvs_page_header_crc(img));
    if (read_copy(img, len, 0, &r)) {
        expect_problem(&r, 0, -1, NVS_PB_PAGE_VERSION, NULL, "page version");
        nvs_read_free(&r);
    }

    /* floats and doubles (retyped integers) */
    memcpy(img, orig, len);
    {
        const nvs_read_item *u32 = find_item(clean, ns, "dummyU32Key");
        const nvs_read_item *i32 = find_item(clean, ns, "dummyI32Key");
        uint8_t *e1 = entry_ptr(img, u32->page, u32->entry);
        uint8_t *e2 = entry_ptr(img, u8->page, u8->entry);
        uint8_t *e3 = entry_ptr(img, i32->page, i32->entry);
        e1[NVS_ENTRY_TYPE] = NVS_TYPE_FLOAT;
        nvs_put_u32(e1 + NVS_ENTRY_DATA, 0x3FC00000u); /* 1.5f */
        e2[NVS_ENTRY_TYPE] = NVS_TYPE_DOUBLE;
        nvs_put_u64(e2 + NVS_ENTRY_DATA, 0xC002000000000000ull); /* -2.25 */
        e3[NVS_ENTRY_TYPE] = NVS_TYPE_FLOAT;
        nvs_put_u32(e3 + NVS_ENTRY_DATA, 0x7FC00000u); /* NaN */
        fix_entry_crc(img, u32->page, u32->entry);
        fix_entry_crc(img, u8->page, u8->entry);
        fix_entry_crc(img, i32->page, i32->entry);
        if (read_copy(img, len, 0, &r)) {
            const nvs_read_item *f = find_item(&r, ns, "dummyU32Key");
            const nvs_read_item *d = find_item(&r, ns, "dummyU8Key");
            check(f && f->type == NVS_TYPE_FLOAT && f->f == 1.5 && f->u == 0x3FC00000u,
                  "float value");
            check(d && d->type == NVS_TYPE_DOUBLE && d->f == -2.25, "double value");
            expect_problem(&r, i32->page, i32->entry, NVS_PB_FLOAT_NAN, "float value is nan",
                           "nan");
            check(r.n_errors == 0, "floats: %zu errors", r.n_errors);
            nvs_read_free(&r);
        }
    }

    /* a version-1 blob (the string retyped) in a version-2 page */
    if (bin->type == NVS_TYPE_BLOB_IDX) {
        memcpy(img, orig, len);
        entry_ptr(img, str->page, str->entry)[NVS_ENTRY_TYPE] = NVS_TYPE_BLOB;
        fix_entry_crc(img, str->page, str->entry);
        if (read_copy(img, len, 0, &r)) {
            expect_problem(&r, str->page, str->entry, NVS_PB_BLOB_V1_IN_V2,
                           "version-1 blob in a version-2 page", "v1 blob");
            check(r.n_errors == 0, "v1 blob: %zu errors", r.n_errors);
            expect_bytes(&r, ns, "dummyStringKey", NVS_TYPE_BLOB, LOREM, sizeof LOREM);
            nvs_read_free(&r);
        }
    }

    /* a namespace declared twice (read-only: no power-loss recovery) */
    if (active_page(clean, orig, &ap, &fe) && u8->page != ap) {
        const nvs_read_namespace *n0 = &clean->namespaces[0];
        memcpy(img, orig, len);
        memcpy(entry_ptr(img, ap, fe), entry_ptr(img, n0->page, n0->entry), NVS_ENTRY_SIZE);
        entry_ptr(img, ap, fe)[NVS_ENTRY_DATA] = 2;
        fix_entry_crc(img, ap, fe);
        set_state(img, ap, fe, NVS_ENTRY_STATE_WRITTEN);
        if (read_copy(img, len, NVS_READ_READ_ONLY, &r)) {
            expect_problem(&r, ap, fe, NVS_PB_NS_DUP_NAME,
                           "duplicate namespace 'dummyNamespace'", "namespace twice");
            check(r.n_items == clean->n_items, "namespace twice: items lost");
            nvs_read_free(&r);
        }
        /* read-write: the firmware takes the new entry for a rewrite and
         * erases the old one, which orphans every item of index 1 */
        if (read_copy(img, len, 0, &r)) {
            expect_problem(&r, n0->page, n0->entry, NVS_PB_NS_DUP_NAME, NULL,
                           "namespace rewritten");
            expect_problem(&r, u8->page, u8->entry, NVS_PB_NS_UNKNOWN,
                           "item in unknown namespace 1", "namespace rewritten");
            check(r.n_items == 0, "namespace rewritten: %zu items", r.n_items);
            nvs_read_free(&r);
        }
    }

    /* a trailing partial page */
    if (read_copy(orig, len - 100, 0, &r)) {
        expect_problem(&r, -1, -1, NVS_PB_IMAGE_SIZE, NULL, "partial page");
        nvs_read_free(&r);
    }

    /* version-2 blobs: index and chunks */
    if (bin->type == NVS_TYPE_BLOB_IDX && bin->chunk_count >= 2) {
        const nvs_read_chunk *c1 = &clean->chunks[bin->first_chunk + 1];
        char want[100];
        unsigned k, span;

        memcpy(img, orig, len);
        nvs_put_u32(entry_ptr(img, bin->page, bin->entry) + NVS_ENTRY_DATA,
                    (uint32_t)bin->size + 1);
        fix_entry_crc(img, bin->page, bin->entry);
        snprintf(want, sizeof want, "blob index size %zu does not match chunks %zu",
                 bin->size + 1, bin->size);
        if (read_copy(img, len, 0, &r)) {
            expect_problem(&r, bin->page, bin->entry, NVS_PB_BLOB_SIZE, want, "blob size");
            check(find_item(&r, ns, "binFileKey") == NULL, "blob size: still read");
            nvs_read_free(&r);
        }

        memcpy(img, orig, len);
        span = entry_ptr(img, c1->page, c1->entry)[NVS_ENTRY_SPAN];
        for (k = 0; k < span; k++)
            set_state(img, c1->page, c1->entry + k, NVS_ENTRY_STATE_ERASED);
        if (read_copy(img, len, 0, &r)) {
            snprintf(want, sizeof want, "blob index chunk %u missing", c1->chunk_index);
            expect_problem(&r, bin->page, bin->entry, NVS_PB_BLOB_MISSING, want,
                           "missing chunk");
            nvs_read_free(&r);
        }

        memcpy(img, orig, len);
        set_state(img, bin->page, bin->entry, NVS_ENTRY_STATE_ERASED);
        if (read_copy(img, len, 0, &r)) {
            snprintf(want, sizeof want, "blob data chunk %u of 'binFileKey' has no blob index",
                     c1->chunk_index);
            expect_problem(&r, c1->page, c1->entry, NVS_PB_BLOB_ORPHAN, want, "orphan");
            nvs_read_free(&r);
        }

        /* a page move interrupted: page 0 still in freeing state */
        memcpy(img, orig, len);
        nvs_put_u32(img, NVS_PAGE_FREEING);
        if (active_page(clean, orig, &ap, &fe) && ap != 0 && read_copy(img, len, 0, &r)) {
            expect_problem(&r, 0, -1, NVS_PB_PAGE_FREEING, NULL, "freeing");
            expect_problem(&r, ap, -1, NVS_PB_PAGE_DISCARDED, NULL, "freeing");
            nvs_read_free(&r);
        }

        /* no empty page left */
        memcpy(img, orig, len);
        if (clean->pages[len / NVS_PAGE_SIZE - 1].blank) {
            uint8_t *last = img + len - NVS_PAGE_SIZE;
            nvs_put_u32(last, NVS_PAGE_FULL);
            nvs_put_u32(last + 4, 1000);
            last[8] = NVS_VERSION2_BYTE;
            nvs_put_u32(last + 28, nvs_page_header_crc(last));
            if (read_copy(img, len, 0, &r)) {
                expect_problem(&r, -1, -1, NVS_PB_NO_FREE_PAGE, NULL, "no free page");
                nvs_read_free(&r);
            }
        }
    }
    free(img);
}

static void test_image(const char *path)
{
    size_t len = 0, k, used = 0, written = 0;
    uint8_t *img = load_file(path, &len);
    nvs_read_result r;
    int rc;

    current = path;
    check(img != NULL, "cannot read %s", path);
    if (!img)
        return;
    rc = nvs_read(img, len, 0, &r);
    check(rc == NVS_READ_OK, "nvs_read returned %d", rc);
    if (rc != NVS_READ_OK) {
        free(img);
        return;
    }
    check(r.n_problems == 0, "%zu problems", r.n_problems);
    if (r.n_problems)
        dump_problems(&r);
    check(r.n_pages == len / NVS_PAGE_SIZE, "page count");
    for (k = 0; k < r.n_pages; k++) {
        used += r.pages[k].used;
        written += r.pages[k].bitmap_written;
    }
    check(used == written && used == r.used_entries, "used entries %zu, written %zu",
          used, written);
    check(r.total_entries == r.n_pages * NVS_ENTRIES_PER_PAGE, "total entries");

    if (find_item(&r, "dummyNamespace", "dummyU8Key")) {
        int v1 = r.pages[0].version == NVS_VERSION1_BYTE;
        check_sample_values(path, &r, v1);
        corrupt_sample(img, len, &r);
        current = path;
    }
    if (find_item(&r, "storage", "u8_key"))
        check_storage_values(&r);
    nvs_read_free(&r);
    free(img);
}

static void test_edges(void)
{
    nvs_read_result r;
    uint8_t *img;
    size_t len = 3 * NVS_PAGE_SIZE;
    uint8_t byte = 0;

    current = "edges";
    check(nvs_read(&byte, 1, 0, NULL) == NVS_READ_EINVAL, "NULL result accepted");
    check(nvs_read(NULL, 10, 0, &r) == NVS_READ_EINVAL, "NULL image accepted");
    nvs_read_free(&r);
    nvs_read_free(NULL);

    check(nvs_read(NULL, 0, 0, &r) == NVS_READ_OK && r.n_problems == 1 &&
          r.problems[0].code == NVS_PB_IMAGE_EMPTY, "empty image");
    nvs_read_free(&r);
    nvs_read_free(&r);

    img = (uint8_t *)malloc(len);
    if (!img) {
        check(0, "out of memory");
        return;
    }
    memset(img, 0xFF, len);
    check(nvs_read(img, len, 0, &r) == NVS_READ_OK && r.n_problems == 0 && r.n_items == 0 &&
          r.free_entries == 3 * NVS_ENTRIES_PER_PAGE &&
          r.available_entries == 2 * NVS_ENTRIES_PER_PAGE, "blank image");
    nvs_read_free(&r);

    img[NVS_PAGE_SIZE + 100] = 0;
    check(nvs_read(img, len, 0, &r) == NVS_READ_OK &&
          find_problem(&r, 1, -1, NVS_PB_PAGE_NOT_BLANK) != NULL, "dirty blank page");
    nvs_read_free(&r);
    free(img);
}

int main(int argc, char **argv)
{
    int k;
    test_edges();
    for (k = 1; k < argc; k++)
        test_image(argv[k]);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
