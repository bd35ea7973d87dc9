/*
 * nvs_format.h - the on-flash layout of an ESP-IDF NVS partition.
 *
 * Constants and tiny helpers shared by the encoder, the reader and the
 * crypto code.  Nothing here knows about Lua.  All multi-byte integers on
 * flash are little-endian; the helpers below make that explicit so the code
 * is correct on any host.
 */
#ifndef NVS_FORMAT_H
#define NVS_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

#define NVS_PAGE_SIZE 4096u
#define NVS_ENTRY_SIZE 32u
#define NVS_ENTRIES_PER_PAGE 126u
#define NVS_HEADER_SIZE 32u
#define NVS_BITMAP_OFFSET 32u
#define NVS_BITMAP_SIZE 32u
#define NVS_FIRST_ENTRY_OFFSET 64u

/* Page states (u32 at offset 0 of a page). */
#define NVS_PAGE_EMPTY 0xFFFFFFFFu
#define NVS_PAGE_ACTIVE 0xFFFFFFFEu
#define NVS_PAGE_FULL 0xFFFFFFFCu
#define NVS_PAGE_FREEING 0xFFFFFFF8u
#define NVS_PAGE_CORRUPT 0xFFFFFFF0u

/* Page format version byte (offset 8 of a page header). */
#define NVS_VERSION1_BYTE 0xFFu
#define NVS_VERSION2_BYTE 0xFEu

/* Entry states in the bitmap: two bits per entry. */
#define NVS_ENTRY_STATE_EMPTY 3u
#define NVS_ENTRY_STATE_WRITTEN 2u
#define NVS_ENTRY_STATE_ERASED 0u

/* Item types (byte 1 of an entry). */
enum nvs_type {
    NVS_TYPE_U8 = 0x01,
    NVS_TYPE_I8 = 0x11,
    NVS_TYPE_U16 = 0x02,
    NVS_TYPE_I16 = 0x12,
    NVS_TYPE_U32 = 0x04,
    NVS_TYPE_I32 = 0x14,
    NVS_TYPE_U64 = 0x08,
    NVS_TYPE_I64 = 0x18,
    NVS_TYPE_FLOAT = 0x24,
    NVS_TYPE_DOUBLE = 0x28,
    NVS_TYPE_STR = 0x21,
    NVS_TYPE_BLOB = 0x41,
    NVS_TYPE_BLOB_DATA = 0x42,
    NVS_TYPE_BLOB_IDX = 0x48,
    NVS_TYPE_ANY = 0xFF
};

/* Byte offsets inside a 32-byte entry. */
#define NVS_ENTRY_NS 0u
#define NVS_ENTRY_TYPE 1u
#define NVS_ENTRY_SPAN 2u
#define NVS_ENTRY_CHUNK 3u
#define NVS_ENTRY_CRC 4u
#define NVS_ENTRY_KEY 8u
#define NVS_ENTRY_DATA 24u

#define NVS_KEY_MAX 15u         /* bytes, the 16th is the NUL */
#define NVS_CHUNK_ANY 0xFFu
#define NVS_NAMESPACE_MAX 254u  /* indices 1..254; 0 holds the namespace table */

/* Size limits the firmware and the reference generator enforce. */
#define NVS_STR_MAX_V2 4000u    /* NUL included: 125 payload entries */
#define NVS_BLOB_MAX_V1 1984u   /* also the string limit in version 1 */
#define NVS_BLOB_MAX_V2 508000u /* the firmware rejects a larger blob index */
/* Chunk indices of a blob written at version offset 0 stay below 0x80,
 * where the firmware starts the other version's indices: 128 chunks, enough
 * for 508000 bytes even when the first chunk starts mid-page. */
#define NVS_BLOB_CHUNKS_MAX 128u

/* Encryption: a keys partition holds the XTS key pair and its CRC. */
#define NVS_XTS_KEY_SIZE 64u
#define NVS_KEYS_PARTITION_SIZE 4096u

static inline uint16_t nvs_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t nvs_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline void nvs_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void nvs_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void nvs_put_u64(uint8_t *p, uint64_t v)
{
    nvs_put_u32(p, (uint32_t)v);
    nvs_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t nvs_get_u64(const uint8_t *p)
{
    return (uint64_t)nvs_get_u32(p) | ((uint64_t)nvs_get_u32(p + 4) << 32);
}

/* CRC32 as ESP-IDF computes it: zlib's crc32 seeded with 0xFFFFFFFF. */
uint32_t nvs_crc32(const void *data, size_t len);

/* Continues a CRC32 over more bytes: nvs_crc32(a+b) ==
 * nvs_crc32_update(nvs_crc32(a), b). */
uint32_t nvs_crc32_update(uint32_t crc, const void *data, size_t len);

/* The CRC of an entry: bytes 0..3 and 8..31, skipping the CRC field itself. */
uint32_t nvs_entry_crc(const uint8_t entry[NVS_ENTRY_SIZE]);

/* The CRC of a page header: bytes 4..27. */
uint32_t nvs_page_header_crc(const uint8_t page[NVS_HEADER_SIZE]);

/* Size in bytes of the value of a fixed-size type, 0 for other types. */
unsigned nvs_fixed_type_size(unsigned type);

/* The 64-bit pattern an integer item of `type` (U8..I64) stores for the
 * value of sign `negative` and `magnitude` (two's complement for a negative
 * one; -0 is 0).  1 with *bits set when the value is in the type's range,
 * 0 otherwise. */
int nvs_integer_bits(unsigned type, int negative, uint64_t magnitude, int64_t *bits);

NVS_HIDDEN_END

#endif
