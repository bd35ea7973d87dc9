/*
 * fuzz_reader.c - libFuzzer target for nvs_read().
 *
 * Any input is read as an image, as is, both read-write and read-only.
 * Random bytes seldom carry valid CRCs, so most would stop at the first
 * check: when the input is one byte longer than a whole number of pages,
 * that last byte instead tells the target to repair CRCs before reading
 * (bit 0: page headers, bit 1: string and blob payloads, bit 2: entry
 * headers), which lets mutations of a seed image reach the loader's later
 * rules.  The result is then walked to let the sanitizers see every byte
 * the reader handed out, and its invariants are checked.
 *
 * Build (see README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc \
 *       fuzz/fuzz_reader.c csrc/nvs_reader.c csrc/nvs_keymap.c csrc/nvs_format.c -lz
 * With -DFUZZ_STANDALONE it builds with any compiler into a program that
 * runs the files named on its command line (to replay a crash).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvs_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIX_PAGE_CRC 1u
#define FIX_PAYLOAD_CRC 2u
#define FIX_ENTRY_CRC 4u

static void repair(uint8_t *img, size_t len, unsigned how)
{
    size_t pg;
    unsigned i;
    for (pg = 0; pg + NVS_PAGE_SIZE <= len; pg += NVS_PAGE_SIZE) {
        uint8_t *page = img + pg;
        if ((how & FIX_PAGE_CRC) && nvs_get_u32(page) != NVS_PAGE_EMPTY)
            nvs_put_u32(page + 28, nvs_page_header_crc(page));
        for (i = 0; i < NVS_ENTRIES_PER_PAGE; i++) {
            uint8_t *e = page + NVS_FIRST_ENTRY_OFFSET + i * NVS_ENTRY_SIZE;
            unsigned type = e[NVS_ENTRY_TYPE];
            if ((how & FIX_PAYLOAD_CRC) &&
                (type == NVS_TYPE_STR || type == NVS_TYPE_BLOB || type == NVS_TYPE_BLOB_DATA)) {
                unsigned sz = nvs_get_u16(e + NVS_ENTRY_DATA);
                if (sz <= (NVS_ENTRIES_PER_PAGE - i - 1) * NVS_ENTRY_SIZE)
                    nvs_put_u32(e + NVS_ENTRY_DATA + 4, nvs_crc32(e + NVS_ENTRY_SIZE, sz));
            }
            if ((how & FIX_ENTRY_CRC) && nvs_get_u32(e) != 0xFFFFFFFFu)
                nvs_put_u32(e + NVS_ENTRY_CRC, nvs_entry_crc(e));
        }
    }
}

/* Touches everything the result points to; aborts on a broken invariant. */
static void walk(const nvs_read_result *r)
{
    volatile unsigned sink = 0;
    size_t k, b;
    if (r->n_errors + r->n_warnings != r->n_problems)
        abort();
    for (k = 0; k < r->n_problems; k++) {
        const nvs_read_problem *p = &r->problems[k];
        if (p->page < -1 || (p->page >= 0 && (size_t)p->page >= r->n_pages) ||
            p->entry < -1 || p->entry >= (int32_t)NVS_ENTRIES_PER_PAGE ||
            memchr(p->reason, 0, sizeof p->reason) == NULL || p->reason[0] == 0)
            abort();
        if (k > 0 && (r->problems[k - 1].page > p->page ||
                      (r->problems[k - 1].page == p->page && r->problems[k - 1].entry > p->entry)))
            abort();
    }
    for (k = 0; k < r->n_pages; k++) {
        const nvs_read_page *p = &r->pages[k];
        if (p->used + p->erased + p->free != NVS_ENTRIES_PER_PAGE)
            abort();
    }
    for (k = 0; k < r->n_items; k++) {
        const nvs_read_item *it = &r->items[k];
        if (it->page >= r->n_pages || it->entry >= NVS_ENTRIES_PER_PAGE || !it->ns_name ||
            strlen(it->ns_name) > NVS_KEY_MAX || strlen(it->key) > NVS_KEY_MAX)
            abort();
        if (it->size && !it->data)
            abort();
        for (b = 0; b < it->size; b++)
            sink += it->data[b];
        if (it->type == NVS_TYPE_BLOB_IDX) {
            size_t total = 0;
            if (it->first_chunk + it->chunk_count > r->n_chunks)
                abort();
            for (b = 0; b < it->chunk_count; b++)
                total += r->chunks[it->first_chunk + b].size;
            if (total != it->size)
                abort();
        }
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nvs_read_result r;
    const uint8_t *img = data;
    uint8_t *copy = NULL;
    size_t len = size;

    if (size % NVS_PAGE_SIZE == 1 && size > 1) {
        len = size - 1;
        copy = (uint8_t *)malloc(len);
        if (!copy)
            return 0;
        memcpy(copy, data, len);
        repair(copy, len, data[len]);
        img = copy;
    }
    if (nvs_read(img, len, 0, &r) == NVS_READ_OK)
        walk(&r);
    nvs_read_free(&r);
    if (nvs_read(img, len, NVS_READ_READ_ONLY, &r) == NVS_READ_OK)
        walk(&r);
    nvs_read_free(&r);
    free(copy);
    return 0;
}

#ifdef FUZZ_STANDALONE
int main(int argc, char **argv)
{
    int k;
    for (k = 1; k < argc; k++) {
        FILE *f = fopen(argv[k], "rb");
        uint8_t *buf = NULL;
        long n;
        if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
            fprintf(stderr, "%s: cannot read\n", argv[k]);
            if (f)
                fclose(f);
            return 1;
        }
        buf = (uint8_t *)malloc(n ? (size_t)n : 1);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
            fprintf(stderr, "%s: cannot read\n", argv[k]);
            free(buf);
            fclose(f);
            return 1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
    }
    return 0;
}
#endif
