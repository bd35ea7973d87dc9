/*
 * nvs_reader.c - reads an NVS partition image the way the firmware mounts it.
 *
 * The reader keeps, for every page, the model the firmware keeps in RAM: the
 * entry-state table (which the loader rewrites as it erases entries), the
 * 24-bit hash list it uses to find keys, and the index of the first free
 * entry.  It then replays, in the firmware's order: the page loader (which
 * erases inconsistent or half-written entries and, on the active page,
 * older duplicates), the page manager's power-loss recovery (a duplicate of
 * the last item written, an interrupted page move), and the storage start-up
 * (namespace table, orphan blob chunks).  Finally every item is looked up
 * the way nvs_get_*() would look it up: what the firmware would not return
 * for that key is reported as a problem instead of a value.
 *
 * Every entry index is below 126 and every variable-length payload is checked
 * against the room left on its page before it is touched, so no input can
 * make the reader leave its page.
 */
#include "nvs_reader.h"
#include "nvs_keymap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPP NVS_ENTRIES_PER_PAGE
#define NONE 0xFFFFFFFFu

#define NS_ANY 0xFFu
#define CHUNK_ANY 0xFFu
#define VER_ANY 0xFFu
#define ENTRY_STATE_ILLEGAL 1u

/* Page.findItem() answers. */
enum { FIND_OK, FIND_NOT_FOUND, FIND_TYPE_MISMATCH };

struct hash_node {
    uint32_t hash;
    uint8_t index;
    uint8_t live;
};

/* A page as the firmware models it after Page::load(). */
struct page_model {
    const uint8_t *raw;
    uint32_t number;       /* page index in the image */
    uint32_t state;        /* state the firmware works with */
    uint32_t seq;
    uint8_t version;
    uint8_t loaded;        /* entries were loaded (active/full/freeing) */
    uint8_t in_list;       /* in the page manager's list of used pages */
    uint8_t refused;       /* a version the firmware refuses */
    uint8_t table[EPP];    /* entry states, as the loader leaves them */
    uint32_t next_free;    /* NONE or an index; clamped to 126 when used */
    struct hash_node hash[EPP];
    unsigned n_hash;
};

struct raw_problem {
    int32_t page, entry;
    int severity, code;
    unsigned seq;
    int has_ns;
    uint8_t ns;
    uint8_t key_len, key2_len;
    uint8_t key[16], key2[16];
    uint64_t a, b, c;
};

/* A live hash-list node of some page: where storage_find() must look. */
struct node_ref {
    uint32_t hash;
    size_t pos;     /* position of its page in the page list */
    size_t next;    /* next node with the same bucket, NONE at the end */
};

struct item_extra {
    size_t data_off;
    size_t ns_entry; /* index in namespaces of the name to show */
};

struct ctx {
    const uint8_t *image;
    size_t len;
    size_t npages;
    struct page_model *pm;
    size_t *order;         /* page list, by sequence number */
    size_t n_order;
    int read_only;
    int nomem;

    struct raw_problem *probs;
    size_t n_probs, cap_probs;
    nvs_read_namespace *ns;
    size_t n_ns, cap_ns;
    nvs_read_item *items;
    struct item_extra *extra;
    size_t n_items, cap_items, cap_extra;
    nvs_read_chunk *chunks;
    size_t n_chunks, cap_chunks;
    uint8_t *bytes;
    size_t n_bytes, cap_bytes;
    void *grown;           /* what grow() returned last */

    /* indexes that keep the passes linear in the image size */
    nvs_keymap ns_by_name;         /* name -> first namespace entry */
    size_t ns_first[256];          /* index -> first namespace entry */
    size_t ns_open[256];           /* index -> entry of a name opening it */
    nvs_keymap blob_keys;          /* (ns, key) -> owned[] slot */
    uint32_t (*owned)[8];          /* chunk indices some blob index owns */
    size_t n_owned, cap_owned;
    nvs_keymap taken;              /* (ns, key) -> accepted item */
    size_t *node_head;             /* hash -> first node (nodes below) */
    size_t node_mask;
    struct node_ref *nodes;        /* live hash nodes, page order */
    size_t n_nodes;
};

/* ---- small helpers ---------------------------------------------------- */

/* Makes room for `need` elements of `size` bytes in the array `p` holding
 * *cap: returns the array to use from now on, or NULL (p is left as it was,
 * nomem is set). */
static void *grow(struct ctx *c, void *p, size_t *cap, size_t need, size_t size)
{
    size_t n;
    void *q;
    if (c->nomem)
        return NULL;
    if (need <= *cap)
        return p;
    n = *cap ? *cap : 16;
    while (n < need) {
        if (n > ((size_t)-1) / 2) {
            c->nomem = 1;
            return NULL;
        }
        n *= 2;
    }
    if (n > ((size_t)-1) / size) {
        c->nomem = 1;
        return NULL;
    }
    q = realloc(p, n * size);
    if (!q) {
        c->nomem = 1;
        return NULL;
    }
    *cap = n;
    return q;
}

/* Grows the array c->arr (capacity c->capf) to `need` elements; 1 if done. */
#define GROW(arr, capf, need, size)                                          \
    ((c->grown = grow(c, c->arr, &c->capf, (need), (size))) != NULL &&       \
     (c->arr = c->grown, 1))

static const uint8_t *entry_at(const struct page_model *p, unsigned i)
{
    return p->raw + NVS_FIRST_ENTRY_OFFSET + (size_t)i * NVS_ENTRY_SIZE;
}

static int is_blank(const uint8_t *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (b[i] != 0xFF)
            return 0;
    return 1;
}

static int is_var_type(unsigned t)
{
    return t == NVS_TYPE_STR || t == NVS_TYPE_BLOB || t == NVS_TYPE_BLOB_DATA;
}

static int is_fixed_type(unsigned t)
{
    switch (t) {
    case NVS_TYPE_U8: case NVS_TYPE_I8: case NVS_TYPE_U16: case NVS_TYPE_I16:
    case NVS_TYPE_U32: case NVS_TYPE_I32: case NVS_TYPE_U64: case NVS_TYPE_I64:
    case NVS_TYPE_FLOAT: case NVS_TYPE_DOUBLE:
        return 1;
    default:
        return 0;
    }
}

static unsigned version_number(uint8_t v)
{
    return v == NVS_VERSION1_BYTE ? 1u : v == NVS_VERSION2_BYTE ? 2u : 0u;
}

/* The key as the firmware copies it out of an entry: at most 15 bytes. */
static void entry_key(const uint8_t *e, char out[NVS_KEY_MAX + 1])
{
    unsigned k;
    for (k = 0; k < NVS_KEY_MAX && e[NVS_ENTRY_KEY + k]; k++)
        out[k] = (char)e[NVS_ENTRY_KEY + k];
    out[k] = 0;
}

/* strncmp(query, entry key, 15) == 0 */
static int key_matches(const char *query, const uint8_t *e)
{
    unsigned k;
    for (k = 0; k < NVS_KEY_MAX; k++) {
        uint8_t a = (uint8_t)query[k], b = e[NVS_ENTRY_KEY + k];
        if (a != b)
            return 0;
        if (a == 0)
            return 1;
    }
    return 1;
}

/* The firmware's 24-bit item hash: CRC32 over namespace, the 16 key bytes
 * and the chunk index (the type and the value are left out). */
static uint32_t item_hash(uint8_t ns, const uint8_t key[16], uint8_t chunk)
{
    uint8_t buf[18];
    buf[0] = ns;
    memcpy(buf + 1, key, 16);
    buf[17] = chunk;
    return nvs_crc32(buf, sizeof buf) & 0xFFFFFFu;
}

static uint32_t entry_hash(const uint8_t *e)
{
    return item_hash(e[NVS_ENTRY_NS], e + NVS_ENTRY_KEY, e[NVS_ENTRY_CHUNK]);
}

/* A lookup key as the firmware builds it: the name NUL-padded to 16 bytes. */
static uint32_t query_hash(uint8_t ns, const char *key, uint8_t chunk)
{
    uint8_t k[16];
    unsigned i;
    memset(k, 0, sizeof k);
    for (i = 0; i < NVS_KEY_MAX && key[i]; i++)
        k[i] = (uint8_t)key[i];
    return item_hash(ns, k, chunk);
}

/* ---- the (namespace, key) maps ------------------------------------------ */

/* nvs_keymap with the reader's conventions: NONE for a missing key, and an
 * allocation failure recorded in c->nomem (after which nothing is added). */
static size_t map_get(const nvs_keymap *m, uint8_t ns, const char *key)
{
    size_t v = nvs_keymap_get(m, ns, key);
    return v == NVS_KEYMAP_NONE ? NONE : v;
}

/* Adds the pair unless the key is there; returns the value now stored
 * (NONE when out of memory). */
static size_t map_add(struct ctx *c, nvs_keymap *m, uint8_t ns, const char *key, size_t val)
{
    size_t v;
    if (c->nomem)
        return NONE;
    v = nvs_keymap_add(m, ns, key, val);
    if (v == NVS_KEYMAP_NONE) {
        c->nomem = 1;
        return NONE;
    }
    return v;
}

/* ---- problems ----------------------------------------------------------- */

static struct raw_problem *problem(struct ctx *c, int32_t page, int32_t entry,
                                   int severity, int code)
{
    struct raw_problem *p;
    if (!GROW(probs, cap_probs, c->n_probs + 1, sizeof *c->probs))
        return NULL;
    p = &c->probs[c->n_probs];
    memset(p, 0, sizeof *p);
    p->page = page;
    p->entry = entry;
    p->severity = severity;
    p->code = code;
    p->seq = (unsigned)c->n_probs++;
    return p;
}

static void problem_n(struct ctx *c, int32_t page, int32_t entry, int sev,
                      int code, uint64_t a, uint64_t b, uint64_t cc)
{
    struct raw_problem *p = problem(c, page, entry, sev, code);
    if (p) {
        p->a = a;
        p->b = b;
        p->c = cc;
    }
}

/* Keeps a namespace name (NUL-terminated, at most 15 characters) in one of
 * a problem's key fields, which hold no terminator. */
static void copy_name(uint8_t key[16], uint8_t *len, const char *name)
{
    *len = (uint8_t)strlen(name);
    memcpy(key, name, *len);
}

/* A problem about the item in entry `i` of page `p`: keeps its namespace
 * index and its key for the message. */
static struct raw_problem *problem_item(struct ctx *c, const struct page_model *p,
                                        unsigned i, int sev, int code)
{
    struct raw_problem *r = problem(c, (int32_t)p->number, (int32_t)i, sev, code);
    if (r) {
        const uint8_t *e = entry_at(p, i);
        unsigned k;
        r->has_ns = 1;
        r->ns = e[NVS_ENTRY_NS];
        for (k = 0; k < NVS_KEY_MAX && e[NVS_ENTRY_KEY + k]; k++)
            r->key[k] = e[NVS_ENTRY_KEY + k];
        r->key_len = (uint8_t)k;
    }
    return r;
}

/* ---- the firmware's view of one entry header ---------------------------- */

struct header_fault {
    int code;
    uint32_t a, b;
};

/* Item::checkHeaderConsistency(): CRC, a known type, and a span and size
 * that fit the type and the room left on the page from entry `index`.
 * An all-0xFF entry gets its own reason: the bitmap lied about it. */
static int header_ok(const uint8_t *e, unsigned index, struct header_fault *f)
{
    unsigned type = e[NVS_ENTRY_TYPE], span = e[NVS_ENTRY_SPAN];
    unsigned chunk = e[NVS_ENTRY_CHUNK];
    struct header_fault dummy;
    if (!f)
        f = &dummy;
    f->code = 0;
    f->a = f->b = 0;
    if (is_blank(e, NVS_ENTRY_SIZE)) {
        f->code = NVS_PB_ENTRY_BLANK;
        return 0;
    }
    if (nvs_get_u32(e + NVS_ENTRY_CRC) != nvs_entry_crc(e)) {
        f->code = NVS_PB_ENTRY_CRC;
        return 0;
    }
    if (is_fixed_type(type)) {
        if (span != 1) {
            f->code = NVS_PB_ENTRY_SPAN_FIXED;
            f->a = span;
            return 0;
        }
        return 1;
    }
    if (type == NVS_TYPE_BLOB_IDX) {
        uint32_t size = nvs_get_u32(e + NVS_ENTRY_DATA);
        if (span != 1) {
            f->code = NVS_PB_ENTRY_IDX_SPAN;
            f->a = span;
            return 0;
        }
        if (chunk != CHUNK_ANY) {
            f->code = NVS_PB_ENTRY_IDX_CHUNK;
            f->a = chunk;
            return 0;
        }
        if (size > NVS_BLOB_MAX_V2) {
            f->code = NVS_PB_ENTRY_IDX_TOO_BIG;
            f->a = size;
            return 0;
        }
        return 1;
    }
    if (is_var_type(type)) {
        unsigned size = nvs_get_u16(e + NVS_ENTRY_DATA);
        unsigned room = (EPP - index - 1) * NVS_ENTRY_SIZE;
        if (type == NVS_TYPE_BLOB_DATA && chunk == CHUNK_ANY) {
            f->code = NVS_PB_ENTRY_DATA_CHUNK;
            return 0;
        }
        if (size > room) {
            f->code = NVS_PB_ENTRY_SIZE_PAST;
            f->a = size;
            return 0;
        }
        if (span > EPP - index) {
            f->code = NVS_PB_ENTRY_SPAN_PAST;
            f->a = span;
            return 0;
        }
        if (span != (size + NVS_ENTRY_SIZE - 1) / NVS_ENTRY_SIZE + 1) {
            f->code = NVS_PB_ENTRY_SPAN_SIZE;
            f->a = span;
            f->b = size;
            return 0;
        }
        return 1;
    }
    f->code = NVS_PB_ENTRY_TYPE;
    f->a = type;
    return 0;
}

/* ---- the page model: hash list, erase, find ----------------------------- */

static void hash_insert(struct page_model *p, unsigned index)
{
    if (p->n_hash >= EPP)
        return; /* each entry is inserted at most once: cannot happen */
    p->hash[p->n_hash].hash = entry_hash(entry_at(p, index));
    p->hash[p->n_hash].index = (uint8_t)index;
    p->hash[p->n_hash].live = 1;
    p->n_hash++;
}

static void hash_erase(struct page_model *p, unsigned index)
{
    unsigned k;
    for (k = 0; k < p->n_hash; k++)
        if (p->hash[k].live && p->hash[k].index == index) {
            p->hash[k].live = 0;
            return;
        }
}

/* First live node, in insertion order, with index >= start and this hash. */
static unsigned hash_find(const struct page_model *p, unsigned start, uint32_t h)
{
    unsigned k;
    for (k = 0; k < p->n_hash; k++)
        if (p->hash[k].live && p->hash[k].index >= start && p->hash[k].hash == h)
            return p->hash[k].index;
    return NONE;
}

static unsigned page_end(const struct page_model *p)
{
    return p->next_free > EPP ? EPP : p->next_free;
}

/* Page::eraseEntryAndSpan(): a consistent item goes with its payload, an
 * inconsistent header alone (its span cannot be trusted). */
static void erase_entry(struct page_model *p, unsigned index)
{
    unsigned span = 1, k;
    if (p->table[index] == NVS_ENTRY_STATE_WRITTEN) {
        const uint8_t *e = entry_at(p, index);
        hash_erase(p, index);
        if (header_ok(e, index, NULL))
            span = e[NVS_ENTRY_SPAN];
    }
    for (k = index; k < index + span; k++)
        p->table[k] = NVS_ENTRY_STATE_ERASED;
    if (p->next_free != NONE && index + span > p->next_free)
        p->next_free = index + span;
}

/* Page::findItem(): from entry *index on, the first item matching the
 * namespace (NS_ANY: any), type (NVS_TYPE_ANY: any), key (NULL: any),
 * chunk index and blob-index version, with the firmware's quirks: the hash
 * list decides where a keyed search starts, and a key held by another type
 * stops the search with a type mismatch. */
static int page_find(struct page_model *p, unsigned ns, unsigned type,
                     const char *key, unsigned chunk, unsigned chunk_start,
                     unsigned *index)
{
    unsigned start = 0, end, i, next;
    if (!p->loaded || !p->in_list)
        return FIND_NOT_FOUND;
    if (*index >= EPP)
        return FIND_NOT_FOUND;
    start = *index;
    end = page_end(p);
    if (ns != NS_ANY && key && (type != NVS_TYPE_BLOB_DATA || chunk != CHUNK_ANY)) {
        unsigned hit = hash_find(p, start, query_hash((uint8_t)ns, key, (uint8_t)chunk));
        if (hit == NONE)
            return FIND_NOT_FOUND;
        start = hit;
    }
    for (i = start; i < end; i = next) {
        const uint8_t *e;
        unsigned et, ec;
        next = i + 1;
        if (p->table[i] != NVS_ENTRY_STATE_WRITTEN)
            continue;
        e = entry_at(p, i);
        if (!header_ok(e, i, NULL)) {
            /* the loader erased these already; kept for safety */
            erase_entry(p, i);
            continue;
        }
        et = e[NVS_ENTRY_TYPE];
        ec = e[NVS_ENTRY_CHUNK];
        if (is_var_type(et))
            next = i + e[NVS_ENTRY_SPAN];
        if (ns != NS_ANY && e[NVS_ENTRY_NS] != ns)
            continue;
        if (key && !key_matches(key, e))
            continue;
        if (chunk != CHUNK_ANY && type == NVS_TYPE_BLOB_DATA && ec != chunk)
            continue;
        if (chunk == CHUNK_ANY && type == NVS_TYPE_BLOB_DATA && et != NVS_TYPE_BLOB_DATA)
            continue;
        if (chunk == CHUNK_ANY && type == NVS_TYPE_BLOB && et == NVS_TYPE_BLOB_IDX)
            return FIND_TYPE_MISMATCH;
        if (chunk == CHUNK_ANY && type == NVS_TYPE_BLOB && et == NVS_TYPE_BLOB_DATA)
            continue;
        if (type == NVS_TYPE_BLOB_IDX && ec != CHUNK_ANY)
            continue;
        if (type == NVS_TYPE_BLOB_IDX && chunk_start != VER_ANY &&
            e[NVS_ENTRY_DATA + 5] != chunk_start)
            continue;
        if (type != NVS_TYPE_ANY && et != type) {
            if (!key && ns == NS_ANY && chunk == CHUNK_ANY)
                continue;
            *index = i;
            return FIND_TYPE_MISMATCH;
        }
        *index = i;
        return FIND_OK;
    }
    return FIND_NOT_FOUND;
}

/* Storage::findItem(): the first page, in sequence order, that answers OK.
 * A keyed search can only succeed on a page whose hash list holds the key's
 * hash: once the node index is built only those pages are asked. */
static int storage_find(struct ctx *c, unsigned ns, unsigned type, const char *key,
                        unsigned chunk, size_t *page, unsigned *index)
{
    size_t k;
    if (c->node_head && ns != NS_ANY && key &&
        (type != NVS_TYPE_BLOB_DATA || chunk != CHUNK_ANY)) {
        uint32_t h = query_hash((uint8_t)ns, key, (uint8_t)chunk);
        size_t n, last = NONE;
        for (n = c->node_head[h & c->node_mask]; n != NONE; n = c->nodes[n].next) {
            unsigned i = 0;
            k = c->nodes[n].pos;
            if (c->nodes[n].hash != h || k == last)
                continue;
            last = k;
            if (page_find(&c->pm[c->order[k]], ns, type, key, chunk, VER_ANY, &i) == FIND_OK) {
                *page = c->order[k];
                *index = i;
                return 1;
            }
        }
        return 0;
    }
    for (k = 0; k < c->n_order; k++) {
        unsigned i = 0;
        if (page_find(&c->pm[c->order[k]], ns, type, key, chunk, VER_ANY, &i) == FIND_OK) {
            *page = c->order[k];
            *index = i;
            return 1;
        }
    }
    return 0;
}

/* Indexes the live hash nodes of every page by hash, in page-list order. */
static void build_node_index(struct ctx *c)
{
    size_t k, total = 0, nb = 64, n;
    unsigned j;
    for (k = 0; k < c->n_order; k++)
        total += c->pm[c->order[k]].n_hash;
    while (nb < total * 2 && nb < ((size_t)-1) / 4 / sizeof *c->node_head)
        nb *= 2;
    c->node_head = (size_t *)malloc(nb * sizeof *c->node_head);
    c->nodes = (struct node_ref *)malloc((total ? total : 1) * sizeof *c->nodes);
    if (!c->node_head || !c->nodes) {
        c->nomem = 1;
        return;
    }
    c->node_mask = nb - 1;
    for (k = 0; k < nb; k++)
        c->node_head[k] = NONE;
    for (k = 0; k < c->n_order; k++) {
        const struct page_model *p = &c->pm[c->order[k]];
        for (j = 0; j < p->n_hash; j++)
            if (p->hash[j].live) {
                c->nodes[c->n_nodes].hash = p->hash[j].hash;
                c->nodes[c->n_nodes].pos = k;
                c->n_nodes++;
            }
    }
    /* push in reverse so every chain runs in page-list order */
    for (n = c->n_nodes; n-- > 0;) {
        size_t b = c->nodes[n].hash & c->node_mask;
        c->nodes[n].next = c->node_head[b];
        c->node_head[b] = n;
    }
}

/* ---- Page::load() --------------------------------------------------------- */

/* An inconsistent header right after another one is usually payload of the
 * first (its span was lost): one problem covers the whole run. */
struct fault_run {
    unsigned last;   /* entry of the previous inconsistent header, or NONE */
    size_t problem;  /* the run's problem in c->probs, or NONE */
};

/* Page::load() on the header of entry `i`: a consistent one goes into the
 * page's hash; an inconsistent one is erased and reported.  Returns whether
 * the header was consistent. */
static int admit_entry(struct ctx *c, struct page_model *p, unsigned i,
                       struct fault_run *run)
{
    struct header_fault f;
    if (header_ok(entry_at(p, i), i, &f)) {
        hash_insert(p, i);
        return 1;
    }
    erase_entry(p, i);
    if (run->last != NONE && run->last + 1 == i) {
        if (run->problem != NONE && run->problem < c->n_probs) {
            c->probs[run->problem].a++;
        } else {
            run->problem = c->n_probs;
            problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_ERROR,
                      NVS_PB_ENTRY_RUN, 1, 0, 0);
        }
    } else {
        run->problem = NONE;
        problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_ERROR, f.code,
                  f.a, f.b, 0);
    }
    run->last = i;
    return 0;
}

/* A duplicate found on load: the older copy is erased. */
static void report_duplicate(struct ctx *c, const struct page_model *p, unsigned i)
{
    const uint8_t *e = entry_at(p, i);
    struct raw_problem *r;
    int code = e[NVS_ENTRY_TYPE] == NVS_TYPE_BLOB_DATA ? NVS_PB_DUP_CHUNK
             : e[NVS_ENTRY_NS] == 0 ? NVS_PB_NS_DUP_NAME : NVS_PB_DUP_KEY;
    r = problem_item(c, p, i, NVS_SEVERITY_ERROR, code);
    if (r)
        r->a = e[NVS_ENTRY_CHUNK];
}

static void load_active(struct ctx *c, struct page_model *p)
{
    unsigned i, span, end, last = NONE, nf = NONE;
    size_t torn_run = NONE;
    struct fault_run run = {NONE, NONE};

    for (i = 0; i < EPP; i++)
        if (p->table[i] == NVS_ENTRY_STATE_EMPTY) {
            nf = i;
            break;
        }
    /* a write cut short: the entry holds data but the bitmap never said so */
    while (nf < EPP && nvs_get_u32(entry_at(p, nf)) != 0xFFFFFFFFu) {
        int was_empty = p->table[nf] == NVS_ENTRY_STATE_EMPTY;
        p->table[nf] = NVS_ENTRY_STATE_ERASED;
        if (was_empty) {
            torn_run = NONE;
            problem_n(c, (int32_t)p->number, (int32_t)nf, NVS_SEVERITY_ERROR,
                      NVS_PB_ENTRY_TORN, 0, 0, 0);
        } else if (torn_run != NONE && torn_run < c->n_probs) {
            c->probs[torn_run].a++;
        } else {
            torn_run = c->n_probs;
            problem_n(c, (int32_t)p->number, (int32_t)nf, NVS_SEVERITY_ERROR,
                      NVS_PB_ENTRY_TORN_AFTER, 1, 0, 0);
        }
        nf++;
    }
    p->next_free = nf;
    end = page_end(p);

    for (i = 0; i < end; i += span) {
        const uint8_t *e;
        unsigned dup;
        span = 1;
        if (p->table[i] == NVS_ENTRY_STATE_ERASED || p->table[i] == NVS_ENTRY_STATE_EMPTY) {
            last = NONE;
            continue;
        }
        if (p->table[i] == ENTRY_STATE_ILLEGAL) {
            last = NONE;
            erase_entry(p, i);
            problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_ERROR,
                      NVS_PB_ENTRY_ILLEGAL, 0, 0, 0);
            continue;
        }
        last = i;
        e = entry_at(p, i);
        if (!admit_entry(c, p, i, &run))
            continue;
        dup = hash_find(p, 0, entry_hash(e));
        if (is_var_type(e[NVS_ENTRY_TYPE])) {
            unsigned j;
            int need_erase = 0;
            span = e[NVS_ENTRY_SPAN];
            for (j = i; j < i + span; j++)
                if (p->table[j] != NVS_ENTRY_STATE_WRITTEN) {
                    need_erase = 1;
                    break;
                }
            if (need_erase) {
                last = NONE;
                erase_entry(p, i);
                problem_item(c, p, i, NVS_SEVERITY_ERROR, NVS_PB_ENTRY_SPAN_UNWRITTEN);
                continue;
            }
        }
        if (dup < i) {
            report_duplicate(c, p, dup);
            erase_entry(p, dup);
        }
    }

    /* the last item written may duplicate one the hash did not catch */
    if (last != NONE) {
        const uint8_t *e = entry_at(p, last);
        char key[NVS_KEY_MAX + 1];
        unsigned at = 0;
        entry_key(e, key);
        if (page_find(p, e[NVS_ENTRY_NS], e[NVS_ENTRY_TYPE], key, CHUNK_ANY, VER_ANY,
                      &at) == FIND_OK && at < last) {
            report_duplicate(c, p, at);
            erase_entry(p, at);
        }
    }

    for (i = end; i < EPP; i++)
        if (p->table[i] == NVS_ENTRY_STATE_WRITTEN) {
            unsigned n = 0, j;
            for (j = i; j < EPP; j++)
                n += p->table[j] == NVS_ENTRY_STATE_WRITTEN;
            problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_ERROR,
                      NVS_PB_ENTRY_PAST_FREE, n, 0, 0);
            break;
        }
}

static void load_full(struct ctx *c, struct page_model *p)
{
    unsigned i, j;
    struct fault_run run = {NONE, NONE};
    for (i = 0; i < EPP; i++) {
        const uint8_t *e;
        unsigned span;
        if (p->table[i] != NVS_ENTRY_STATE_WRITTEN) {
            if (p->table[i] == ENTRY_STATE_ILLEGAL)
                problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_ERROR,
                          NVS_PB_ENTRY_ILLEGAL, 0, 0, 0);
            continue;
        }
        e = entry_at(p, i);
        if (!admit_entry(c, p, i, &run))
            continue;
        span = e[NVS_ENTRY_SPAN];
        if (is_var_type(e[NVS_ENTRY_TYPE]))
            for (j = i + 1; j < i + span; j++)
                if (p->table[j] != NVS_ENTRY_STATE_WRITTEN) {
                    erase_entry(p, i);
                    problem_item(c, p, i, NVS_SEVERITY_ERROR, NVS_PB_ENTRY_SPAN_UNWRITTEN);
                    break;
                }
        i += span - 1;
    }
}

static void load_page(struct ctx *c, struct page_model *p)
{
    const uint8_t *raw = p->raw;
    unsigned i;
    uint32_t state = nvs_get_u32(raw);

    p->state = state;
    p->next_free = NONE;
    if (state == NVS_PAGE_EMPTY) {
        if (!is_blank(raw, NVS_PAGE_SIZE)) {
            p->state = NVS_PAGE_CORRUPT;
            problem_n(c, (int32_t)p->number, -1, NVS_SEVERITY_ERROR,
                      NVS_PB_PAGE_NOT_BLANK, 0, 0, 0);
        }
        return;
    }
    if (nvs_get_u32(raw + 28) != nvs_page_header_crc(raw)) {
        p->state = NVS_PAGE_CORRUPT;
        problem_n(c, (int32_t)p->number, -1, NVS_SEVERITY_ERROR, NVS_PB_PAGE_CRC, 0, 0, 0);
        return;
    }
    p->seq = nvs_get_u32(raw + 4);
    p->version = raw[8];
    if (p->version < NVS_VERSION2_BYTE) {
        p->refused = 1;
        problem_n(c, (int32_t)p->number, -1, NVS_SEVERITY_ERROR, NVS_PB_PAGE_VERSION,
                  p->version, 0, 0);
        return;
    }
    if (state != NVS_PAGE_ACTIVE && state != NVS_PAGE_FULL && state != NVS_PAGE_FREEING) {
        if (state == NVS_PAGE_CORRUPT)
            problem_n(c, (int32_t)p->number, -1, NVS_SEVERITY_WARNING,
                      NVS_PB_PAGE_CORRUPT, 0, 0, 0);
        else
            problem_n(c, (int32_t)p->number, -1, NVS_SEVERITY_ERROR,
                      NVS_PB_PAGE_STATE, state, 0, 0);
        p->state = NVS_PAGE_CORRUPT;
        return;
    }
    p->loaded = 1;
    p->in_list = 1;
    for (i = 0; i < EPP; i++)
        p->table[i] = (uint8_t)((raw[NVS_BITMAP_OFFSET + i / 4] >> ((i % 4) * 2)) & 3u);
    if (state == NVS_PAGE_ACTIVE)
        load_active(c, p);
    else
        load_full(c, p);
    /* entries the firmware will write over: flash cannot turn 0 bits to 1 */
    for (i = 0; i < EPP; i++)
        if (p->table[i] == NVS_ENTRY_STATE_EMPTY && !is_blank(entry_at(p, i), NVS_ENTRY_SIZE))
            problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_WARNING,
                      NVS_PB_ENTRY_STRAY_DATA, 0, 0, 0);
}

/* ---- PageManager::load() -------------------------------------------------- */

static void remove_from_order(struct ctx *c, size_t k)
{
    memmove(c->order + k, c->order + k + 1, (c->n_order - k - 1) * sizeof *c->order);
    c->n_order--;
}

/* The newest item may duplicate an older one if power failed between writing
 * it and erasing the old one: the loader erases the old one. */
static void recover_last_item(struct ctx *c)
{
    struct page_model *last = &c->pm[c->order[c->n_order - 1]];
    unsigned at = 0, found = NONE;
    const uint8_t *e;
    char key[NVS_KEY_MAX + 1];
    size_t k;
    int pass;

    while (page_find(last, NS_ANY, NVS_TYPE_ANY, NULL, CHUNK_ANY, VER_ANY, &at) == FIND_OK) {
        found = at;
        at += entry_at(last, at)[NVS_ENTRY_SPAN];
    }
    if (found == NONE)
        return;
    e = entry_at(last, found);
    entry_key(e, key);
    for (pass = 0; pass < 2; pass++) {
        unsigned type = pass ? NVS_TYPE_BLOB : e[NVS_ENTRY_TYPE];
        if (pass && e[NVS_ENTRY_TYPE] != NVS_TYPE_BLOB_IDX)
            return;
        for (k = 0; k + 1 < c->n_order; k++) {
            struct page_model *q = &c->pm[c->order[k]];
            unsigned i = 0;
            if (q->state == NVS_PAGE_FREEING)
                continue;
            if (page_find(q, e[NVS_ENTRY_NS], type, key, e[NVS_ENTRY_CHUNK], VER_ANY, &i)
                == FIND_OK) {
                report_duplicate(c, q, i);
                erase_entry(q, i);
                return;
            }
        }
    }
}

/* A page left in FREEING state: the firmware drops the newest page if it is
 * active (it was the copy being made), then copies the freeing page anew. */
static void recover_freeing(struct ctx *c)
{
    size_t k;
    for (k = 0; k < c->n_order; k++) {
        struct page_model *q = &c->pm[c->order[k]];
        struct page_model *newest;
        size_t qi;
        if (q->state != NVS_PAGE_FREEING)
            continue;
        problem_n(c, (int32_t)q->number, -1, NVS_SEVERITY_WARNING, NVS_PB_PAGE_FREEING,
                  0, 0, 0);
        newest = &c->pm[c->order[c->n_order - 1]];
        if (newest->state == NVS_PAGE_ACTIVE) {
            problem_n(c, (int32_t)newest->number, -1, NVS_SEVERITY_ERROR,
                      NVS_PB_PAGE_DISCARDED, q->number, 0, 0);
            newest->in_list = 0;
            remove_from_order(c, c->n_order - 1);
        }
        /* the copy becomes the newest page, active, in the same entry order */
        qi = c->order[k];
        remove_from_order(c, k);
        c->order[c->n_order++] = qi;
        q->state = NVS_PAGE_ACTIVE;
        return;
    }
}

static void page_manager_load(struct ctx *c)
{
    size_t k, j, n_free = 0, ref = NONE;
    size_t last_active = NONE;

    for (k = 0; k < c->npages; k++) {
        if (!c->pm[k].in_list)
            continue;
        /* insertion sort by sequence number: equal numbers keep page order */
        j = c->n_order;
        while (j > 0 && c->pm[c->order[j - 1]].seq > c->pm[k].seq) {
            c->order[j] = c->order[j - 1];
            j--;
        }
        c->order[j] = k;
        c->n_order++;
    }
    for (k = 0; k < c->n_order; k++) {
        struct page_model *p = &c->pm[c->order[k]];
        if (k > 0 && c->pm[c->order[k - 1]].seq == p->seq)
            problem_n(c, (int32_t)p->number, -1, NVS_SEVERITY_WARNING, NVS_PB_PAGE_SEQ_DUP,
                      p->seq, c->pm[c->order[k - 1]].number, 0);
        if (ref == NONE)
            ref = c->order[k];
        else if (p->version != c->pm[ref].version)
            problem_n(c, (int32_t)p->number, -1, NVS_SEVERITY_WARNING,
                      NVS_PB_PAGE_VERSION_MIX, version_number(p->version),
                      version_number(c->pm[ref].version), c->pm[ref].number);
        if (p->state == NVS_PAGE_ACTIVE)
            last_active = c->order[k];
    }
    for (k = 0; k < c->n_order; k++) {
        struct page_model *p = &c->pm[c->order[k]];
        if (p->state == NVS_PAGE_ACTIVE && c->order[k] != last_active)
            problem_n(c, (int32_t)p->number, -1, NVS_SEVERITY_WARNING,
                      NVS_PB_PAGE_ACTIVE_MANY, c->pm[last_active].number, 0, 0);
    }
    if (c->read_only || c->n_order == 0)
        return;
    recover_last_item(c);
    recover_freeing(c);
    for (k = 0; k < c->npages; k++)
        n_free += !c->pm[k].in_list && !c->pm[k].refused;
    if (n_free == 0)
        problem_n(c, -1, -1, NVS_SEVERITY_ERROR, NVS_PB_NO_FREE_PAGE, 0, 0, 0);
}

/* ---- Storage::init() ----------------------------------------------------- */

static void add_namespace(struct ctx *c, const struct page_model *p, unsigned i)
{
    const uint8_t *e = entry_at(p, i);
    nvs_read_namespace *n;
    if (!GROW(ns, cap_ns, c->n_ns + 1, sizeof *c->ns))
        return;
    n = &c->ns[c->n_ns++];
    memset(n, 0, sizeof *n);
    n->index = e[NVS_ENTRY_DATA];
    entry_key(e, n->name);
    n->page = p->number;
    n->entry = i;
}

static void load_namespaces(struct ctx *c)
{
    size_t k;
    for (k = 0; k < c->n_order && !c->nomem; k++) {
        struct page_model *p = &c->pm[c->order[k]];
        unsigned at = 0;
        int r;
        while ((r = page_find(p, 0, NVS_TYPE_U8, NULL, CHUNK_ANY, VER_ANY, &at)) == FIND_OK) {
            add_namespace(c, p, at);
            at++;
        }
        if (r != FIND_TYPE_MISMATCH)
            continue;
        /* the firmware stops reading this page's namespaces here */
        problem_n(c, (int32_t)p->number, (int32_t)at, NVS_SEVERITY_ERROR,
                  NVS_PB_NS_WRONG_TYPE, entry_at(p, at)[NVS_ENTRY_TYPE], 0, 0);
        at += entry_at(p, at)[NVS_ENTRY_SPAN];
        while (page_find(p, 0, NVS_TYPE_ANY, NULL, CHUNK_ANY, VER_ANY, &at) == FIND_OK) {
            const uint8_t *e = entry_at(p, at);
            if (e[NVS_ENTRY_TYPE] == NVS_TYPE_U8)
                problem_item(c, p, at, NVS_SEVERITY_ERROR, NVS_PB_NS_HIDDEN);
            else
                problem_n(c, (int32_t)p->number, (int32_t)at, NVS_SEVERITY_ERROR,
                          NVS_PB_NS_WRONG_TYPE, e[NVS_ENTRY_TYPE], 0, 0);
            at += e[NVS_ENTRY_SPAN];
        }
    }
    for (k = 0; k < 256; k++)
        c->ns_first[k] = c->ns_open[k] = NONE;
    for (k = 0; k < c->n_ns && !c->nomem; k++) {
        const nvs_read_namespace *n = &c->ns[k];
        size_t by_name = map_add(c, &c->ns_by_name, 0, n->name, k);
        size_t by_index = c->ns_first[n->index];
        struct raw_problem *r;
        if (by_name == NONE)
            return;
        /* index 255 means "any namespace" to the firmware's searches: it
         * opens no namespace of its own */
        if (by_index == NONE && n->index != NS_ANY)
            c->ns_first[n->index] = k;
        /* nvs_open() takes the first entry of a name */
        if (by_name == k && c->ns_open[n->index] == NONE && n->index != NS_ANY)
            c->ns_open[n->index] = k;
        if (n->index == 0 || n->index == NS_ANY) {
            r = problem(c, (int32_t)n->page, (int32_t)n->entry, NVS_SEVERITY_ERROR,
                        NVS_PB_NS_BAD_INDEX);
            if (r) {
                r->a = n->index;
                copy_name(r->key, &r->key_len, n->name);
            }
        }
        if (by_name != k) {
            r = problem(c, (int32_t)n->page, (int32_t)n->entry,
                        c->ns[by_name].index == n->index ? NVS_SEVERITY_WARNING
                                                         : NVS_SEVERITY_ERROR,
                        NVS_PB_NS_DUP_NAME);
            if (r) {
                copy_name(r->key, &r->key_len, n->name);
            }
        } else if (by_index != NONE) {
            const nvs_read_namespace *o = &c->ns[by_index];
            r = problem(c, (int32_t)n->page, (int32_t)n->entry, NVS_SEVERITY_WARNING,
                        NVS_PB_NS_DUP_INDEX);
            if (r) {
                r->a = n->index;
                copy_name(r->key, &r->key_len, o->name);
                copy_name(r->key2, &r->key2_len, n->name);
            }
        }
    }
}

/* Storage::populateBlobIndices() then eraseOrphanDataBlobs(): a chunk no
 * blob index claims (same namespace and key, chunk index within the
 * index's [start, start + count)) is erased.  Claims are kept as one
 * 256-bit set of chunk indices per (namespace, key). */
static void erase_orphan_chunks(struct ctx *c)
{
    size_t k;
    for (k = 0; k < c->n_order && !c->nomem; k++) {
        struct page_model *p = &c->pm[c->order[k]];
        unsigned at = 0;
        while (!c->nomem &&
               page_find(p, NS_ANY, NVS_TYPE_BLOB_IDX, NULL, CHUNK_ANY, VER_ANY, &at) == FIND_OK) {
            const uint8_t *e = entry_at(p, at);
            char key[NVS_KEY_MAX + 1];
            unsigned start = e[NVS_ENTRY_DATA + 5], end = start + e[NVS_ENTRY_DATA + 4], ch;
            size_t slot;
            entry_key(e, key);
            slot = map_add(c, &c->blob_keys, e[NVS_ENTRY_NS], key, c->n_owned);
            if (slot == NONE)
                return;
            if (slot == c->n_owned) {
                if (!GROW(owned, cap_owned, c->n_owned + 1, sizeof *c->owned))
                    return;
                memset(c->owned[c->n_owned], 0, sizeof *c->owned);
                c->n_owned++;
            }
            for (ch = start; ch < end && ch < 256; ch++)
                c->owned[slot][ch / 32] |= 1u << (ch % 32);
            at++;
        }
    }
    for (k = 0; k < c->n_order && !c->nomem; k++) {
        struct page_model *p = &c->pm[c->order[k]];
        unsigned at = 0;
        while (page_find(p, NS_ANY, NVS_TYPE_BLOB_DATA, NULL, CHUNK_ANY, VER_ANY, &at) == FIND_OK) {
            const uint8_t *e = entry_at(p, at);
            unsigned chunk = e[NVS_ENTRY_CHUNK], span = e[NVS_ENTRY_SPAN];
            char key[NVS_KEY_MAX + 1];
            size_t slot;
            entry_key(e, key);
            slot = map_get(&c->blob_keys, e[NVS_ENTRY_NS], key);
            if (slot == NONE || !((c->owned[slot][chunk / 32] >> (chunk % 32)) & 1u)) {
                unsigned i = 0;
                if (page_find(p, e[NVS_ENTRY_NS], NVS_TYPE_BLOB_DATA, key, chunk, VER_ANY, &i)
                    == FIND_OK) {
                    struct raw_problem *r = problem_item(c, p, i, NVS_SEVERITY_ERROR,
                                                         NVS_PB_BLOB_ORPHAN);
                    if (r)
                        r->a = entry_at(p, i)[NVS_ENTRY_CHUNK];
                    erase_entry(p, i);
                }
            }
            at += span;
        }
    }
}

/* ---- values, as nvs_get_*() finds them ----------------------------------- */

static size_t append_bytes(struct ctx *c, const uint8_t *b, size_t n)
{
    size_t off = c->n_bytes;
    if (n == 0)
        return off;
    if (c->n_bytes > ((size_t)-1) - n ||
        !GROW(bytes, cap_bytes, c->n_bytes + n, 1))
        return off;
    memcpy(c->bytes + off, b, n);
    c->n_bytes += n;
    return off;
}

static nvs_read_item *new_item(struct ctx *c, const struct page_model *p, unsigned i,
                               size_t ns_entry)
{
    const uint8_t *e = entry_at(p, i);
    nvs_read_item *it;
    if (!GROW(items, cap_items, c->n_items + 1, sizeof *c->items) ||
        !GROW(extra, cap_extra, c->n_items + 1, sizeof *c->extra))
        return NULL;
    it = &c->items[c->n_items];
    memset(it, 0, sizeof *it);
    entry_key(e, it->key);
    if (map_add(c, &c->taken, e[NVS_ENTRY_NS], it->key, c->n_items) == NONE)
        return NULL;
    c->extra[c->n_items].data_off = c->n_bytes;
    c->extra[c->n_items].ns_entry = ns_entry;
    c->n_items++;
    it->page = p->number;
    it->entry = i;
    it->ns_index = e[NVS_ENTRY_NS];
    it->type = e[NVS_ENTRY_TYPE];
    it->span = e[NVS_ENTRY_SPAN];
    it->chunk_index = e[NVS_ENTRY_CHUNK];
    return it;
}

static void set_fixed_value(struct ctx *c, const struct page_model *p, unsigned i,
                            nvs_read_item *it)
{
    const uint8_t *d = entry_at(p, i) + NVS_ENTRY_DATA;
    unsigned width = nvs_fixed_type_size(it->type), k;
    uint64_t u = 0;
    if (width > 8)
        width = 8;
    for (k = 0; k < width; k++)
        u |= (uint64_t)d[k] << (8 * k);
    it->u = u;
    it->i = (int64_t)u;
    if ((it->type & 0xF0u) == 0x10u && width > 0 && width < 8 &&
        (u >> (8 * width - 1)) & 1u)
        it->i = (int64_t)(u | (~(uint64_t)0 << (8 * width)));
    if (it->type == NVS_TYPE_FLOAT) {
        float fv;
        uint32_t bits = nvs_get_u32(d);
        memcpy(&fv, &bits, sizeof fv);
        it->f = fv;
    } else if (it->type == NVS_TYPE_DOUBLE) {
        double dv;
        uint64_t bits = nvs_get_u64(d);
        memcpy(&dv, &bits, sizeof dv);
        it->f = dv;
    }
    if ((it->type == NVS_TYPE_FLOAT || it->type == NVS_TYPE_DOUBLE) && isnan(it->f))
        problem_item(c, p, i, NVS_SEVERITY_WARNING, NVS_PB_FLOAT_NAN);
}

/* A string or version-1 blob: payload CRC as Page::readItem() checks it. */
static int var_payload_ok(const struct page_model *p, unsigned i)
{
    const uint8_t *e = entry_at(p, i);
    size_t size = nvs_get_u16(e + NVS_ENTRY_DATA);
    /* header_ok() bounded size by the room after entry i */
    return nvs_crc32(entry_at(p, i) + NVS_ENTRY_SIZE, size) == nvs_get_u32(e + NVS_ENTRY_DATA + 4);
}

/* Storage::readMultiPageBlob(): every chunk found, intact, sizes adding up. */
static int read_v2_blob(struct ctx *c, const struct page_model *p, unsigned i,
                        const char *key, size_t ns_entry)
{
    const uint8_t *e = entry_at(p, i);
    unsigned ns = e[NVS_ENTRY_NS];
    uint32_t size = nvs_get_u32(e + NVS_ENTRY_DATA);
    unsigned count = e[NVS_ENTRY_DATA + 4], start = e[NVS_ENTRY_DATA + 5], n;
    size_t cp[256];
    unsigned ci[256];
    uint64_t total = 0;
    int ok = 1;
    nvs_read_item *it;
    struct raw_problem *r;

    for (n = 0; n < count; n++) {
        unsigned want = (start + n) & 0xFFu;
        /* chunk 0xFF: the firmware's search matches any chunk, then asserts
         * the index it wanted, which no chunk can carry */
        if (want == CHUNK_ANY ||
            !storage_find(c, ns, NVS_TYPE_BLOB_DATA, key, want, &cp[n], &ci[n]) ||
            entry_at(&c->pm[cp[n]], ci[n])[NVS_ENTRY_CHUNK] != want) {
            r = problem_item(c, p, i, NVS_SEVERITY_ERROR, NVS_PB_BLOB_MISSING);
            if (r)
                r->a = want;
            ok = 0;
            continue;
        }
        if (!var_payload_ok(&c->pm[cp[n]], ci[n])) {
            problem_item(c, &c->pm[cp[n]], ci[n], NVS_SEVERITY_ERROR, NVS_PB_BLOB_CRC);
            ok = 0;
            continue;
        }
        total += nvs_get_u16(entry_at(&c->pm[cp[n]], ci[n]) + NVS_ENTRY_DATA);
    }
    if (ok && total != size) {
        r = problem_item(c, p, i, NVS_SEVERITY_ERROR, NVS_PB_BLOB_SIZE);
        if (r) {
            r->a = size;
            r->b = total;
        }
        ok = 0;
    }
    if (!ok)
        return 0;
    it = new_item(c, p, i, ns_entry);
    if (!it)
        return 0;
    it->chunk_start = (uint8_t)start;
    it->chunk_count = (uint8_t)count;
    it->first_chunk = c->n_chunks;
    it->size = size;
    for (n = 0; n < count; n++) {
        const struct page_model *q = &c->pm[cp[n]];
        const uint8_t *ce = entry_at(q, ci[n]);
        unsigned csize = nvs_get_u16(ce + NVS_ENTRY_DATA);
        nvs_read_chunk *ch;
        if (!GROW(chunks, cap_chunks, c->n_chunks + 1, sizeof *c->chunks))
            return 0;
        ch = &c->chunks[c->n_chunks++];
        ch->page = q->number;
        ch->entry = ci[n];
        ch->chunk_index = ce[NVS_ENTRY_CHUNK];
        ch->size = csize;
        append_bytes(c, ce + NVS_ENTRY_SIZE, csize);
    }
    if (start != 0 && start != 0x80) {
        r = problem_item(c, p, i, NVS_SEVERITY_WARNING, NVS_PB_BLOB_START);
        if (r)
            r->a = start;
    }
    return 1;
}

static void read_item(struct ctx *c, struct page_model *p, unsigned i)
{
    const uint8_t *e = entry_at(p, i);
    unsigned ns = e[NVS_ENTRY_NS], type = e[NVS_ENTRY_TYPE], k;
    char key[NVS_KEY_MAX + 1];
    size_t fp, ns_entry, j;
    unsigned fi;
    nvs_read_item *it;

    if (ns == 0)
        return; /* the namespace table */
    entry_key(e, key);
    if (type == NVS_TYPE_BLOB_DATA) {
        if (p->version == NVS_VERSION1_BYTE)
            problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_WARNING,
                      NVS_PB_BLOB_V2_IN_V1, type, 0, 0);
        if (c->ns_first[ns] != NONE &&
            (!storage_find(c, ns, NVS_TYPE_BLOB_DATA, key, e[NVS_ENTRY_CHUNK], &fp, &fi) ||
             fp != p->number || fi != i)) {
            struct raw_problem *r = problem_item(c, p, i, NVS_SEVERITY_ERROR, NVS_PB_DUP_CHUNK);
            if (r)
                r->a = e[NVS_ENTRY_CHUNK];
        }
        return;
    }
    if (type == NVS_TYPE_BLOB && p->version == NVS_VERSION2_BYTE)
        problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_WARNING,
                  NVS_PB_BLOB_V1_IN_V2, 0, 0, 0);
    if (type == NVS_TYPE_BLOB_IDX && p->version == NVS_VERSION1_BYTE)
        problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_WARNING,
                  NVS_PB_BLOB_V2_IN_V1, type, 0, 0);

    /* a lookup hashes the name NUL-padded: other padding is never found */
    if (e[NVS_ENTRY_KEY + NVS_KEY_MAX] != 0) {
        problem_item(c, p, i, NVS_SEVERITY_ERROR, NVS_PB_KEY_UNTERMINATED);
        return;
    }
    for (k = (unsigned)strlen(key); k < 16; k++)
        if (e[NVS_ENTRY_KEY + k] != 0) {
            problem_item(c, p, i, NVS_SEVERITY_ERROR, NVS_PB_KEY_PADDING);
            return;
        }
    if (key[0] == 0)
        problem_item(c, p, i, NVS_SEVERITY_WARNING, NVS_PB_KEY_EMPTY);

    j = c->ns_first[ns];
    if (j == NONE) {
        problem_n(c, (int32_t)p->number, (int32_t)i, NVS_SEVERITY_ERROR,
                  NVS_PB_NS_UNKNOWN, ns, 0, 0);
        return;
    }
    ns_entry = c->ns_open[ns];
    if (ns_entry == NONE) {
        /* every name given to this index opens another one */
        size_t first = map_get(&c->ns_by_name, 0, c->ns[j].name);
        struct raw_problem *r = problem(c, (int32_t)p->number, (int32_t)i,
                                        NVS_SEVERITY_ERROR, NVS_PB_NS_UNREACHABLE);
        if (r && first != NONE) {
            r->a = ns;
            r->b = c->ns[first].index;
            copy_name(r->key, &r->key_len, c->ns[j].name);
        }
        return;
    }

    /* is this the entry nvs_get_*() returns for its key?  One value per
     * key: a key already read under another type is a duplicate too. */
    if (map_get(&c->taken, (uint8_t)ns, key) != NONE ||
        (type == NVS_TYPE_BLOB &&
         storage_find(c, ns, NVS_TYPE_BLOB_IDX, key, CHUNK_ANY, &fp, &fi)) ||
        !storage_find(c, ns, type, key, CHUNK_ANY, &fp, &fi) || fp != p->number || fi != i) {
        problem_item(c, p, i, NVS_SEVERITY_ERROR, NVS_PB_DUP_KEY);
        return;
    }

    if (is_fixed_type(type)) {
        it = new_item(c, p, i, ns_entry);
        if (it)
            set_fixed_value(c, p, i, it);
    } else if (type == NVS_TYPE_STR || type == NVS_TYPE_BLOB) {
        size_t size = nvs_get_u16(e + NVS_ENTRY_DATA);
        const uint8_t *payload = entry_at(p, i) + NVS_ENTRY_SIZE;
        if (!var_payload_ok(p, i)) {
            problem_item(c, p, i, NVS_SEVERITY_ERROR,
                         type == NVS_TYPE_STR ? NVS_PB_STR_CRC : NVS_PB_BLOB_CRC);
            return;
        }
        if (type == NVS_TYPE_STR && (size == 0 || payload[size - 1] != 0))
            problem_item(c, p, i, NVS_SEVERITY_WARNING, NVS_PB_STR_NO_NUL);
        it = new_item(c, p, i, ns_entry);
        if (it) {
            it->size = size;
            append_bytes(c, payload, size);
        }
    } else if (type == NVS_TYPE_BLOB_IDX) {
        read_v2_blob(c, p, i, key, ns_entry);
    }
}

static void read_values(struct ctx *c)
{
    size_t k;
    build_node_index(c);
    for (k = 0; k < c->n_order && !c->nomem; k++) {
        struct page_model *p = &c->pm[c->order[k]];
        unsigned at = 0;
        while (!c->nomem &&
               page_find(p, NS_ANY, NVS_TYPE_ANY, NULL, CHUNK_ANY, VER_ANY, &at) == FIND_OK) {
            unsigned span = entry_at(p, at)[NVS_ENTRY_SPAN];
            read_item(c, p, at);
            at += span;
        }
    }
}

/* ---- the result ----------------------------------------------------------- */

static void escape_key(char *out, size_t cap, const uint8_t *k, size_t n)
{
    size_t i, o = 0;
    for (i = 0; i < n && o + 5 < cap; i++) {
        if (k[i] >= 0x20 && k[i] < 0x7F && k[i] != '\'' && k[i] != '\\')
            out[o++] = (char)k[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", k[i]);
    }
    out[o] = 0;
}

/* "'name'" of the first namespace with this index, else the number. */
static void namespace_label(const struct ctx *c, char *out, size_t cap, unsigned ns)
{
    size_t k;
    for (k = 0; k < c->n_ns; k++)
        if (c->ns[k].index == ns) {
            char esc[64];
            escape_key(esc, sizeof esc, (const uint8_t *)c->ns[k].name,
                       strlen(c->ns[k].name));
            snprintf(out, cap, "'%s'", esc);
            return;
        }
    snprintf(out, cap, "%u", ns);
}

static void format_reason(const struct ctx *c, const struct raw_problem *r, char *out)
{
    const size_t cap = NVS_READ_REASON_MAX;
    char key[64], key2[64], ns[68];
    unsigned a = (unsigned)r->a, b = (unsigned)r->b, cc = (unsigned)r->c;
    escape_key(key, sizeof key, r->key, r->key_len);
    escape_key(key2, sizeof key2, r->key2, r->key2_len);
    namespace_label(c, ns, sizeof ns, r->ns);
    switch (r->code) {
    case NVS_PB_IMAGE_SIZE:
        snprintf(out, cap, "image size %llu is not a multiple of 4096", (unsigned long long)r->a);
        break;
    case NVS_PB_IMAGE_EMPTY: snprintf(out, cap, "image holds no page"); break;
    case NVS_PB_NO_FREE_PAGE:
        snprintf(out, cap, "no empty page left: firmware refuses to mount it read-write");
        break;
    case NVS_PB_PAGE_NOT_BLANK: snprintf(out, cap, "uninitialized page is not blank"); break;
    case NVS_PB_PAGE_CRC: snprintf(out, cap, "page header crc mismatch"); break;
    case NVS_PB_PAGE_VERSION:
        snprintf(out, cap, "unknown page version 0x%02x: firmware refuses the partition", a);
        break;
    case NVS_PB_PAGE_STATE: snprintf(out, cap, "unknown page state 0x%08x", a); break;
    case NVS_PB_PAGE_CORRUPT: snprintf(out, cap, "page is marked corrupt"); break;
    case NVS_PB_PAGE_FREEING:
        snprintf(out, cap, "page is in freeing state: firmware moves its items to a new page");
        break;
    case NVS_PB_PAGE_DISCARDED:
        snprintf(out, cap, "active page discarded: page %u is in freeing state", a);
        break;
    case NVS_PB_PAGE_SEQ_DUP:
        snprintf(out, cap, "duplicate sequence number %u (also page %u)", a, b);
        break;
    case NVS_PB_PAGE_VERSION_MIX:
        snprintf(out, cap, "page version %u differs from version %u of page %u", a, b, cc);
        break;
    case NVS_PB_PAGE_ACTIVE_MANY:
        snprintf(out, cap, "more than one active page (also page %u)", a);
        break;
    case NVS_PB_ENTRY_ILLEGAL: snprintf(out, cap, "illegal entry state in bitmap"); break;
    case NVS_PB_ENTRY_TORN:
        snprintf(out, cap, "bitmap marks entry empty but entry is written");
        break;
    case NVS_PB_ENTRY_TORN_AFTER:
        snprintf(out, cap, "%u written %s after a half-written one erased", a,
                 a == 1 ? "entry" : "entries");
        break;
    case NVS_PB_ENTRY_STRAY_DATA:
        snprintf(out, cap, "bitmap marks entry empty but entry holds data");
        break;
    case NVS_PB_ENTRY_PAST_FREE:
        snprintf(out, cap, "%u written entries after the first empty entry are ignored", a);
        break;
    case NVS_PB_ENTRY_BLANK:
        snprintf(out, cap, "bitmap marks entry written but entry is empty");
        break;
    case NVS_PB_ENTRY_CRC: snprintf(out, cap, "entry crc mismatch"); break;
    case NVS_PB_ENTRY_TYPE: snprintf(out, cap, "unknown item type 0x%02x", a); break;
    case NVS_PB_ENTRY_SPAN_FIXED:
        snprintf(out, cap, "span %u of a fixed-size item is not 1", a);
        break;
    case NVS_PB_ENTRY_IDX_SPAN: snprintf(out, cap, "blob index span %u is not 1", a); break;
    case NVS_PB_ENTRY_IDX_CHUNK:
        snprintf(out, cap, "blob index chunk index 0x%02x is not 0xff", a);
        break;
    case NVS_PB_ENTRY_IDX_TOO_BIG:
        snprintf(out, cap, "blob index size %u exceeds %u", a, (unsigned)NVS_BLOB_MAX_V2);
        break;
    case NVS_PB_ENTRY_DATA_CHUNK: snprintf(out, cap, "blob data chunk index is 0xff"); break;
    case NVS_PB_ENTRY_SIZE_PAST:
        snprintf(out, cap, "data size %u runs past the end of the page", a);
        break;
    case NVS_PB_ENTRY_SPAN_PAST: snprintf(out, cap, "span runs past the end of the page"); break;
    case NVS_PB_ENTRY_SPAN_SIZE:
        snprintf(out, cap, "span %u does not match data size %u", a, b);
        break;
    case NVS_PB_ENTRY_RUN:
        snprintf(out, cap, "%u more %s without a valid item header", a,
                 a == 1 ? "entry" : "entries");
        break;
    case NVS_PB_ENTRY_SPAN_UNWRITTEN:
        snprintf(out, cap, "item spans entries not marked written");
        break;
    case NVS_PB_DUP_KEY:
        snprintf(out, cap, "duplicate key '%s' in namespace %s", key, ns);
        break;
    case NVS_PB_DUP_CHUNK:
        snprintf(out, cap, "duplicate blob chunk %u of '%s' in namespace %s", a, key, ns);
        break;
    case NVS_PB_NS_DUP_NAME: snprintf(out, cap, "duplicate namespace '%s'", key); break;
    case NVS_PB_NS_DUP_INDEX:
        snprintf(out, cap, "namespace index %u used by '%s' and '%s'", a, key, key2);
        break;
    case NVS_PB_NS_BAD_INDEX:
        snprintf(out, cap, "namespace '%s' has invalid index %u", key, a);
        break;
    case NVS_PB_NS_WRONG_TYPE:
        snprintf(out, cap, "entry of type 0x%02x in namespace 0 hides the namespaces after it", a);
        break;
    case NVS_PB_NS_HIDDEN:
        snprintf(out, cap, "namespace '%s' hidden by an entry of another type before it", key);
        break;
    case NVS_PB_NS_UNKNOWN: snprintf(out, cap, "item in unknown namespace %u", a); break;
    case NVS_PB_NS_UNREACHABLE:
        snprintf(out, cap, "item in namespace %u cannot be opened: '%s' opens namespace %u",
                 a, key, b);
        break;
    case NVS_PB_KEY_UNTERMINATED: snprintf(out, cap, "key is not nul-terminated"); break;
    case NVS_PB_KEY_PADDING:
        snprintf(out, cap, "key '%s' has bytes other than nul after its end", key);
        break;
    case NVS_PB_KEY_EMPTY: snprintf(out, cap, "empty key"); break;
    case NVS_PB_STR_CRC: snprintf(out, cap, "string data crc mismatch"); break;
    case NVS_PB_STR_NO_NUL: snprintf(out, cap, "string is not nul-terminated"); break;
    case NVS_PB_BLOB_CRC: snprintf(out, cap, "blob data crc mismatch"); break;
    case NVS_PB_BLOB_ORPHAN:
        snprintf(out, cap, "blob data chunk %u of '%s' has no blob index", a, key);
        break;
    case NVS_PB_BLOB_MISSING: snprintf(out, cap, "blob index chunk %u missing", a); break;
    case NVS_PB_BLOB_SIZE:
        snprintf(out, cap, "blob index size %u does not match chunks %u", a, b);
        break;
    case NVS_PB_BLOB_START:
        snprintf(out, cap, "blob index chunk start 0x%02x is neither 0x00 nor 0x80", a);
        break;
    case NVS_PB_BLOB_V1_IN_V2: snprintf(out, cap, "version-1 blob in a version-2 page"); break;
    case NVS_PB_BLOB_V2_IN_V1:
        snprintf(out, cap, "%s in a version-1 page",
                 a == NVS_TYPE_BLOB_IDX ? "blob index" : "blob data");
        break;
    case NVS_PB_FLOAT_NAN: snprintf(out, cap, "float value is nan"); break;
    default: snprintf(out, cap, "problem %d", r->code); break;
    }
}

static int problem_order(const void *x, const void *y)
{
    const struct raw_problem *a = (const struct raw_problem *)x;
    const struct raw_problem *b = (const struct raw_problem *)y;
    if (a->page != b->page)
        return a->page < b->page ? -1 : 1;
    if (a->entry != b->entry)
        return a->entry < b->entry ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void fill_pages(struct ctx *c, nvs_read_result *out)
{
    size_t k;
    unsigned i;
    for (k = 0; k < c->npages; k++) {
        const struct page_model *p = &c->pm[k];
        nvs_read_page *o = &out->pages[k];
        const uint8_t *raw = p->raw;
        memset(o, 0, sizeof *o);
        o->state = nvs_get_u32(raw);
        o->seq = nvs_get_u32(raw + 4);
        o->version = raw[8];
        o->crc_stored = nvs_get_u32(raw + 28);
        o->crc_computed = nvs_page_header_crc(raw);
        o->blank = (uint8_t)is_blank(raw, NVS_PAGE_SIZE);
        o->header_ok = (uint8_t)(!o->blank && o->crc_stored == o->crc_computed);
        o->loaded = p->loaded;
        for (i = 0; i < EPP; i++) {
            unsigned s = (raw[NVS_BITMAP_OFFSET + i / 4] >> ((i % 4) * 2)) & 3u;
            o->bitmap_empty += s == NVS_ENTRY_STATE_EMPTY;
            o->bitmap_written += s == NVS_ENTRY_STATE_WRITTEN;
            o->bitmap_erased += s == NVS_ENTRY_STATE_ERASED;
            o->bitmap_illegal += s == ENTRY_STATE_ILLEGAL;
        }
        if (p->loaded && p->in_list) {
            for (i = 0; i < EPP; i++) {
                o->used += p->table[i] == NVS_ENTRY_STATE_WRITTEN;
                o->erased += p->table[i] == NVS_ENTRY_STATE_ERASED;
            }
            out->used_entries += o->used;
        }
        o->free = (uint16_t)(EPP - o->used - o->erased);
        out->free_entries += EPP - o->used;
        out->total_entries += EPP;
    }
    out->available_entries = out->free_entries >= EPP ? out->free_entries - EPP : 0;
}

static int build_result(struct ctx *c, nvs_read_result *out)
{
    size_t k;
    if (c->npages) {
        out->pages = (nvs_read_page *)calloc(c->npages, sizeof *out->pages);
        if (!out->pages)
            return 0;
        out->n_pages = c->npages;
        fill_pages(c, out);
    }
    if (c->n_probs) {
        out->problems = (nvs_read_problem *)calloc(c->n_probs, sizeof *out->problems);
        if (!out->problems)
            return 0;
        qsort(c->probs, c->n_probs, sizeof *c->probs, problem_order);
        for (k = 0; k < c->n_probs; k++) {
            nvs_read_problem *o = &out->problems[k];
            o->page = c->probs[k].page;
            o->entry = c->probs[k].entry;
            o->severity = c->probs[k].severity;
            o->code = c->probs[k].code;
            format_reason(c, &c->probs[k], o->reason);
            if (o->severity == NVS_SEVERITY_ERROR)
                out->n_errors++;
            else
                out->n_warnings++;
        }
        out->n_problems = c->n_probs;
    }
    /* hand the arrays over; pointers into them are set last */
    out->namespaces = c->ns;
    out->n_namespaces = c->n_ns;
    out->namespace_count = c->n_ns;
    c->ns = NULL;
    out->chunks = c->chunks;
    out->n_chunks = c->n_chunks;
    c->chunks = NULL;
    out->bytes = c->bytes;
    c->bytes = NULL;
    out->items = c->items;
    out->n_items = c->n_items;
    c->items = NULL;
    for (k = 0; k < out->n_items; k++) {
        nvs_read_item *it = &out->items[k];
        it->ns_name = out->namespaces[c->extra[k].ns_entry].name;
        if (it->type == NVS_TYPE_STR || it->type == NVS_TYPE_BLOB ||
            it->type == NVS_TYPE_BLOB_IDX)
            it->data = it->size ? out->bytes + c->extra[k].data_off : out->bytes;
    }
    return 1;
}

static void free_ctx(struct ctx *c)
{
    free(c->pm);
    free(c->order);
    free(c->probs);
    free(c->ns);
    free(c->items);
    free(c->extra);
    free(c->chunks);
    free(c->bytes);
    free(c->owned);
    free(c->node_head);
    free(c->nodes);
    nvs_keymap_free(&c->ns_by_name);
    nvs_keymap_free(&c->blob_keys);
    nvs_keymap_free(&c->taken);
}

int nvs_read(const uint8_t *image, size_t len, unsigned flags, nvs_read_result *out)
{
    struct ctx c;
    size_t k;
    if (!out)
        return NVS_READ_EINVAL;
    memset(out, 0, sizeof *out);
    if (!image && len)
        return NVS_READ_EINVAL;
    memset(&c, 0, sizeof c);
    c.image = image;
    c.len = len;
    c.npages = len / NVS_PAGE_SIZE;
    c.read_only = (flags & NVS_READ_READ_ONLY) || c.npages < 3;
    out->read_only = c.read_only;

    if (len % NVS_PAGE_SIZE)
        problem_n(&c, -1, -1, NVS_SEVERITY_ERROR, NVS_PB_IMAGE_SIZE, len, 0, 0);
    if (c.npages == 0)
        problem_n(&c, -1, -1, NVS_SEVERITY_ERROR, NVS_PB_IMAGE_EMPTY, 0, 0, 0);
    if (c.npages) {
        c.pm = (struct page_model *)calloc(c.npages, sizeof *c.pm);
        c.order = (size_t *)calloc(c.npages, sizeof *c.order);
        if (!c.pm || !c.order)
            c.nomem = 1;
    }
    for (k = 0; k < c.npages && !c.nomem; k++) {
        c.pm[k].raw = image + k * NVS_PAGE_SIZE;
        c.pm[k].number = (uint32_t)k;
        load_page(&c, &c.pm[k]);
    }
    if (!c.nomem)
        page_manager_load(&c);
    if (!c.nomem)
        load_namespaces(&c);
    if (!c.nomem)
        erase_orphan_chunks(&c);
    if (!c.nomem)
        read_values(&c);
    if (c.nomem || !build_result(&c, out)) {
        free_ctx(&c);
        nvs_read_free(out);
        return NVS_READ_ENOMEM;
    }
    free_ctx(&c);
    return NVS_READ_OK;
}

void nvs_read_free(nvs_read_result *r)
{
    if (!r)
        return;
    free(r->pages);
    free(r->namespaces);
    free(r->items);
    free(r->chunks);
    free(r->problems);
    free(r->bytes);
    memset(r, 0, sizeof *r);
}

const char *nvs_read_page_state_name(uint32_t state)
{
    switch (state) {
    case NVS_PAGE_EMPTY: return "empty";
    case NVS_PAGE_ACTIVE: return "active";
    case NVS_PAGE_FULL: return "full";
    case NVS_PAGE_FREEING: return "freeing";
    case NVS_PAGE_CORRUPT: return "corrupt";
    default: return "unknown";
    }
}

const char *nvs_read_type_name(unsigned type)
{
    switch (type) {
    case NVS_TYPE_U8: return "u8";
    case NVS_TYPE_I8: return "i8";
    case NVS_TYPE_U16: return "u16";
    case NVS_TYPE_I16: return "i16";
    case NVS_TYPE_U32: return "u32";
    case NVS_TYPE_I32: return "i32";
    case NVS_TYPE_U64: return "u64";
    case NVS_TYPE_I64: return "i64";
    case NVS_TYPE_FLOAT: return "float";
    case NVS_TYPE_DOUBLE: return "double";
    case NVS_TYPE_STR: return "string";
    case NVS_TYPE_BLOB: return "blob";
    case NVS_TYPE_BLOB_DATA: return "blob_data";
    case NVS_TYPE_BLOB_IDX: return "blob_index";
    default: return "unknown";
    }
}
