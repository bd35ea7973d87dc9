/*
 * nvs_format.c - checksums and type facts shared by encoder and reader.
 */
#include "nvs_format.h"

#include <zlib.h>

uint32_t nvs_crc32(const void *data, size_t len)
{
    /* ESP-IDF seeds with 0xFFFFFFFF (esp_rom_crc32_le(0xffffffff, ...)),
     * which zlib reproduces when given the same initial value. */
    return nvs_crc32_update(0xFFFFFFFFu, data, len);
}

uint32_t nvs_crc32_update(uint32_t start, const void *data, size_t len)
{
    uLong crc = start;
    const Bytef *p = (const Bytef *)data;
    while (len > 0) {
        uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
        crc = crc32(crc, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)crc;
}

uint32_t nvs_entry_crc(const uint8_t entry[NVS_ENTRY_SIZE])
{
    uint8_t buf[NVS_ENTRY_SIZE - 4];
    unsigned i;
    for (i = 0; i < 4; i++)
        buf[i] = entry[i];
    for (i = 8; i < NVS_ENTRY_SIZE; i++)
        buf[i - 4] = entry[i];
    return nvs_crc32(buf, sizeof buf);
}

uint32_t nvs_page_header_crc(const uint8_t page[NVS_HEADER_SIZE])
{
    return nvs_crc32(page + 4, 24);
}

unsigned nvs_fixed_type_size(unsigned type)
{
    switch (type) {
    case NVS_TYPE_U8:
    case NVS_TYPE_I8:
        return 1;
    case NVS_TYPE_U16:
    case NVS_TYPE_I16:
        return 2;
    case NVS_TYPE_U32:
    case NVS_TYPE_I32:
        return 4;
    case NVS_TYPE_U64:
    case NVS_TYPE_I64:
    case NVS_TYPE_DOUBLE:
        return 8;
    case NVS_TYPE_FLOAT:
        return 4;
    default:
        return 0;
    }
}

int nvs_integer_bits(unsigned type, int negative, uint64_t magnitude, int64_t *bits)
{
    unsigned size = nvs_fixed_type_size(type);
    int is_signed = (type & 0x10) != 0;
    uint64_t max = size == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * size)) - 1;
    if (is_signed)
        max >>= 1; /* the largest positive value */
    if (negative && magnitude != 0) {
        if (!is_signed || magnitude > max + 1)
            return 0;
        *bits = (int64_t)(0 - magnitude); /* two's complement */
        return 1;
    }
    if (magnitude > max)
        return 0;
    *bits = (int64_t)magnitude;
    return 1;
}
