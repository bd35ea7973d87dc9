/*
 * nvs_reader.h - parses an NVS partition image and checks it the way the
 * firmware's loader does.
 *
 * nvs_read() takes a plain (decrypted) image and fills a result with the
 * pages, the namespaces, the values a firmware would return for each key,
 * and a list of problems.  The reader replays what ESP-IDF's nvs_flash does
 * when it mounts the partition (Page::load, PageManager::load, Storage::init)
 * and when it reads a key: an entry or a value the firmware would erase,
 * ignore or fail to find is never reported as a value, only as a problem.
 *
 * Everything in the result is owned by it (no pointer into the image
 * survives), so the image may be freed right after the call.  Nothing here
 * knows about Lua; the binding turns the arrays into tables.
 */
#ifndef NVS_READER_H
#define NVS_READER_H

#include <stddef.h>
#include <stdint.h>

#include "nvs_format.h"
#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

/* nvs_read() return values. */
enum nvs_read_status {
    NVS_READ_OK = 0,
    NVS_READ_EINVAL = -1, /* a NULL argument */
    NVS_READ_ENOMEM = -2  /* an allocation failed; the result is emptied */
};

/* nvs_read() flags. */
#define NVS_READ_READ_ONLY 1u /* mount as read-only: no power-loss recovery,
                                 no free page needed.  Images of fewer than
                                 3 pages are always read as read-only. */

enum nvs_read_severity {
    NVS_SEVERITY_WARNING = 1, /* the firmware copes, but no correct
                                 generator writes this */
    NVS_SEVERITY_ERROR = 2    /* the firmware erases, skips or cannot find
                                 data, or refuses the partition */
};

/* One code per kind of problem; the reason string says the same in words,
 * with the numbers and names filled in. */
enum nvs_read_problem_code {
    /* image level (page -1) */
    NVS_PB_IMAGE_SIZE = 1,       /* image size N is not a multiple of 4096 */
    NVS_PB_IMAGE_EMPTY,          /* image holds no page */
    NVS_PB_NO_FREE_PAGE,         /* no empty page: firmware refuses ... */
    /* page level (entry -1) */
    NVS_PB_PAGE_NOT_BLANK,       /* uninitialized page is not blank */
    NVS_PB_PAGE_CRC,             /* page header crc mismatch */
    NVS_PB_PAGE_VERSION,         /* unknown page version 0xNN */
    NVS_PB_PAGE_STATE,           /* unknown page state 0xNNNNNNNN */
    NVS_PB_PAGE_CORRUPT,         /* page is marked corrupt */
    NVS_PB_PAGE_FREEING,         /* page is in freeing state */
    NVS_PB_PAGE_DISCARDED,       /* active page discarded ... */
    NVS_PB_PAGE_SEQ_DUP,         /* duplicate sequence number */
    NVS_PB_PAGE_VERSION_MIX,     /* page version differs ... */
    NVS_PB_PAGE_ACTIVE_MANY,     /* more than one active page */
    /* entry level: the page loader */
    NVS_PB_ENTRY_ILLEGAL,        /* illegal entry state in bitmap */
    NVS_PB_ENTRY_TORN,           /* bitmap marks entry empty but entry is written */
    NVS_PB_ENTRY_TORN_AFTER,     /* N written entries after a half-written one */
    NVS_PB_ENTRY_STRAY_DATA,     /* bitmap marks entry empty but entry holds data */
    NVS_PB_ENTRY_PAST_FREE,      /* written entry after the first empty entry */
    NVS_PB_ENTRY_BLANK,          /* bitmap marks entry written but entry is empty */
    NVS_PB_ENTRY_CRC,            /* entry crc mismatch */
    NVS_PB_ENTRY_TYPE,           /* unknown item type 0xNN */
    NVS_PB_ENTRY_SPAN_FIXED,     /* span N of a fixed-size item is not 1 */
    NVS_PB_ENTRY_IDX_SPAN,       /* blob index span N is not 1 */
    NVS_PB_ENTRY_IDX_CHUNK,      /* blob index chunk index 0xNN is not 0xff */
    NVS_PB_ENTRY_IDX_TOO_BIG,    /* blob index size N exceeds 508000 */
    NVS_PB_ENTRY_DATA_CHUNK,     /* blob data chunk index is 0xff */
    NVS_PB_ENTRY_SIZE_PAST,      /* data size N runs past the end of the page */
    NVS_PB_ENTRY_SPAN_PAST,      /* span runs past the end of the page */
    NVS_PB_ENTRY_SPAN_SIZE,      /* span N does not match data size N */
    NVS_PB_ENTRY_SPAN_UNWRITTEN, /* item spans entries not marked written */
    NVS_PB_ENTRY_RUN,            /* N more entries without a valid header
                                    (after one reported just before) */
    NVS_PB_DUP_KEY,              /* duplicate key 'k' in namespace 'ns' */
    NVS_PB_DUP_CHUNK,            /* duplicate blob chunk N of 'k' ... */
    /* namespaces */
    NVS_PB_NS_DUP_NAME,          /* duplicate namespace 'n' */
    NVS_PB_NS_DUP_INDEX,         /* namespace index N used by 'a' and 'b' */
    NVS_PB_NS_BAD_INDEX,         /* namespace 'n' has invalid index N */
    NVS_PB_NS_WRONG_TYPE,        /* entry of type 0xNN in namespace 0 ... */
    NVS_PB_NS_HIDDEN,            /* namespace entry hidden by ... */
    NVS_PB_NS_UNKNOWN,           /* item in unknown namespace N */
    NVS_PB_NS_UNREACHABLE,       /* item in namespace N cannot be opened ... */
    /* keys and values */
    NVS_PB_KEY_UNTERMINATED,     /* key is not nul-terminated */
    NVS_PB_KEY_PADDING,          /* key has bytes other than nul after its end */
    NVS_PB_KEY_EMPTY,            /* empty key */
    NVS_PB_STR_CRC,              /* string data crc mismatch */
    NVS_PB_STR_NO_NUL,           /* string is not nul-terminated */
    NVS_PB_BLOB_CRC,             /* blob data crc mismatch */
    NVS_PB_BLOB_ORPHAN,          /* blob data chunk N of 'k' has no blob index */
    NVS_PB_BLOB_MISSING,         /* blob index chunk N missing */
    NVS_PB_BLOB_SIZE,            /* blob index size N does not match chunks N */
    NVS_PB_BLOB_START,           /* blob index chunk start 0xNN is neither ... */
    NVS_PB_BLOB_V1_IN_V2,        /* version-1 blob in a version-2 page */
    NVS_PB_BLOB_V2_IN_V1,        /* blob data/index in a version-1 page */
    NVS_PB_FLOAT_NAN             /* float value is nan */
};

#define NVS_READ_REASON_MAX 200

typedef struct nvs_read_problem {
    int32_t page;  /* page index in the image, -1 for the whole image */
    int32_t entry; /* entry index 0..125, -1 for the whole page */
    int severity;  /* enum nvs_read_severity */
    int code;      /* enum nvs_read_problem_code */
    char reason[NVS_READ_REASON_MAX]; /* lowercase, no final period */
} nvs_read_problem;

/* A page as found, and its entry counts after the firmware loaded it. */
typedef struct nvs_read_page {
    uint32_t state;        /* raw state word (NVS_PAGE_*) */
    uint32_t seq;          /* sequence number (meaningful when header_ok) */
    uint8_t version;       /* raw version byte: 0xFF v1, 0xFE v2 */
    uint8_t blank;         /* 1: all 4096 bytes are 0xFF */
    uint8_t header_ok;     /* 1: not blank and the header CRC matches */
    uint8_t loaded;        /* 1: the firmware keeps its entries (header ok,
                              known version, state active/full/freeing) */
    uint32_t crc_stored;   /* header CRC field */
    uint32_t crc_computed; /* CRC of header bytes 4..27 */
    /* bitmap as stored */
    uint16_t bitmap_empty, bitmap_written, bitmap_erased, bitmap_illegal;
    /* after the firmware's load and clean-up: what storage_info shows.
     * A page the firmware does not load counts all 126 entries free. */
    uint16_t used, erased, free;
} nvs_read_page;

typedef struct nvs_read_namespace {
    uint8_t index;                 /* value of the entry */
    char name[NVS_KEY_MAX + 1];    /* NUL-terminated (at most 15 bytes) */
    uint32_t page, entry;          /* where the entry lies */
} nvs_read_namespace;

/* One chunk of a version-2 blob. */
typedef struct nvs_read_chunk {
    uint32_t page, entry;
    uint8_t chunk_index;
    uint32_t size;
} nvs_read_chunk;

/* A value the firmware returns for its key. */
typedef struct nvs_read_item {
    uint32_t page, entry;      /* the item's first entry (for a version-2
                                  blob: its blob index entry) */
    uint8_t ns_index;
    const char *ns_name;       /* points into the result */
    uint8_t type;              /* enum nvs_type: U8..DOUBLE, STR, BLOB
                                  (0x41, version 1) or BLOB_IDX (version 2) */
    uint8_t span;
    uint8_t chunk_index;       /* 0xFF */
    char key[NVS_KEY_MAX + 1]; /* NUL-terminated */
    /* fixed-size types: u is the stored bits zero-extended, i the value
     * sign-extended for signed types (equal to u otherwise), f the value of
     * a float or double (0 for the integer types) */
    uint64_t u;
    int64_t i;
    double f;
    /* strings and blobs: the bytes (a string's size counts its NUL);
     * owned by the result; NULL with size 0 for other types */
    const uint8_t *data;
    size_t size;
    /* version-2 blobs: the index fields, and chunks[first_chunk ..
     * first_chunk + chunk_count - 1] of the result */
    uint8_t chunk_start;
    uint8_t chunk_count;
    size_t first_chunk;
} nvs_read_item;

typedef struct nvs_read_result {
    nvs_read_page *pages;
    size_t n_pages;
    nvs_read_namespace *namespaces; /* in the order the firmware loads them */
    size_t n_namespaces;
    nvs_read_item *items;           /* page sequence order, entry order */
    size_t n_items;
    nvs_read_chunk *chunks;
    size_t n_chunks;
    nvs_read_problem *problems;     /* sorted by page, then entry */
    size_t n_problems;
    size_t n_errors, n_warnings;
    /* nvs_get_stats() after mounting (entries) */
    size_t used_entries, free_entries, total_entries, available_entries;
    size_t namespace_count;
    int read_only;                  /* 1: read as a read-only mount */
    uint8_t *bytes;                 /* private: storage behind data */
} nvs_read_result;

/*
 * Parses `len` bytes of `image`.  Any length is accepted: whole pages are
 * read and a tail shorter than a page is reported as a problem.  Returns
 * NVS_READ_OK (problems do not make the call fail), NVS_READ_EINVAL or
 * NVS_READ_ENOMEM.  `out` is always left valid to pass to nvs_read_free(),
 * also on failure.
 */
int nvs_read(const uint8_t *image, size_t len, unsigned flags,
             nvs_read_result *out);

/* Releases everything nvs_read() put into `r` and zeroes it; safe on a
 * zeroed or already freed result. */
void nvs_read_free(nvs_read_result *r);

/* "empty", "active", "full", "freeing", "corrupt" or "unknown". */
const char *nvs_read_page_state_name(uint32_t state);

/* "u8", "i8", ..., "float", "double", "string", "blob" (0x41),
 * "blob_data", "blob_index", or "unknown". */
const char *nvs_read_type_name(unsigned type);

NVS_HIDDEN_END

#endif
