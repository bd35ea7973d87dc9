/*
 * nvs_crypto.h - the cryptography an NVS image needs, on top of OpenSSL 3.
 *
 * XTS-AES-256 of NVS entries, the 4096-byte keys partition, the HMAC-based
 * key derivation, OS randomness, SHA-256 and PBKDF2-HMAC-SHA1 (Wi-Fi PMK).
 * Nothing here knows about Lua or allocates a buffer for the caller: every
 * function writes into memory the caller owns and returns NVS_CRYPTO_OK (0)
 * or a negative enum nvs_crypto_err.  Two things are kept for the whole
 * process: random bytes drawn ahead for small requests (nvs_random_bytes;
 * under a lock, wiped as they are handed out and at exit) and the SHA-256
 * algorithm, looked up in OpenSSL once.
 */
#ifndef NVS_CRYPTO_H
#define NVS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "nvs_format.h"
#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

enum nvs_crypto_err {
    NVS_CRYPTO_OK = 0,
    NVS_CRYPTO_EINVAL = -1,      /* NULL pointer or length out of range */
    NVS_CRYPTO_ENOMEM = -2,      /* allocation failed */
    NVS_CRYPTO_EOPENSSL = -3,    /* OpenSSL refused or failed an operation */
    NVS_CRYPTO_EKEY_HALVES = -4, /* XTS key whose two halves are equal */
    NVS_CRYPTO_EOFFSET = -5,     /* entries not inside one page's entry area */
    NVS_CRYPTO_EIMAGE_SIZE = -6, /* image not a whole number of pages */
    NVS_CRYPTO_EKEYS_SIZE = -7,  /* keys partition not 4096 bytes */
    NVS_CRYPTO_EKEYS_CRC = -8,   /* keys partition CRC mismatch */
    NVS_CRYPTO_EHMAC_KEY = -9,   /* HMAC key not 32 bytes */
    NVS_CRYPTO_ERANDOM = -10     /* the OS random generator failed */
};

/* A plain lowercase message for an error code (never NULL). */
const char *nvs_crypto_strerror(int err);

/* ------------------------------------------------------------------------
 * XTS-AES-256 of entries.  Each 32-byte entry is one XTS data unit whose
 * tweak is its byte offset in the partition, so entries can be encrypted
 * independently and in any order.
 */

#define NVS_XTS_TWEAK_SIZE 16u

/* Byte offset in the partition of entry `index` (0..125) of page `page`:
 * the XTS tweak of that entry. */
static inline uint64_t nvs_xts_entry_offset(uint32_t page, unsigned index)
{
    return (uint64_t)page * NVS_PAGE_SIZE + NVS_FIRST_ENTRY_OFFSET +
           (uint64_t)index * NVS_ENTRY_SIZE;
}

/* A keyed cipher, reusable for any number of calls (one thread at a time). */
typedef struct nvs_xts_ctx nvs_xts_ctx;

/*
 * Key a new context with the 64 bytes of a keys partition (encryption key,
 * then tweak key).  Returns NULL on failure and, if err is not NULL, stores
 * the reason there (NVS_CRYPTO_EKEY_HALVES for a key whose halves match).
 */
nvs_xts_ctx *nvs_xts_new(const uint8_t key[NVS_XTS_KEY_SIZE], int *err);

/*
 * Key an existing context anew, cheaper than a new one (a batch with a key
 * per unit).  A key whose halves match is refused (NVS_CRYPTO_EKEY_HALVES)
 * and the old key stays; after any other failure the context has no usable
 * key and must be freed.
 */
int nvs_xts_rekey(nvs_xts_ctx *ctx, const uint8_t key[NVS_XTS_KEY_SIZE]);

/* Wipe and free a context; NULL is allowed. */
void nvs_xts_free(nvs_xts_ctx *ctx);

/*
 * Encrypt (encrypt != 0) or decrypt in place n consecutive entries of one
 * page, the first at partition offset first_offset (see nvs_xts_entry_offset).
 * The entries must lie inside the entry area of a single page: an offset
 * that is not an entry's, or a run that reaches the next page, gives
 * NVS_CRYPTO_EOFFSET and leaves buf untouched.  n == 0 does nothing.
 */
int nvs_xts_apply(nvs_xts_ctx *ctx, uint8_t *buf, size_t n_entries,
                  uint64_t first_offset, int encrypt);

/*
 * Encrypt or decrypt in place the entries of one 4096-byte page, page number
 * page_index in the partition, that the page's bitmap marks as holding data
 * (written or erased; empty ones are skipped).  The header and the bitmap
 * are read, never changed.
 */
int nvs_xts_page(nvs_xts_ctx *ctx, uint8_t page[NVS_PAGE_SIZE],
                 uint32_t page_index, int encrypt);

/* nvs_xts_page over every page of an image; len must be a multiple of 4096. */
int nvs_xts_image(nvs_xts_ctx *ctx, uint8_t *image, size_t len, int encrypt);

/* One-shot nvs_xts_apply with a context made and freed inside the call. */
int nvs_xts_crypt(const uint8_t key[NVS_XTS_KEY_SIZE], uint8_t *buf,
                  size_t n_entries, uint64_t first_offset, int encrypt);

/* ------------------------------------------------------------------------
 * The keys partition: key @0, tweak key @32, CRC32 of those 64 bytes @64
 * (little-endian, zlib crc32 seeded with 0xFFFFFFFF), the rest 0xFF.
 */

/* Lay out a keys partition holding key. */
int nvs_keys_build(uint8_t out[NVS_KEYS_PARTITION_SIZE],
                   const uint8_t key[NVS_XTS_KEY_SIZE]);

/*
 * Check a keys partition and copy its 64-byte key out: NVS_CRYPTO_EKEYS_SIZE
 * unless len is 4096, NVS_CRYPTO_EKEYS_CRC if the CRC does not match.
 */
int nvs_keys_parse(const uint8_t *buf, size_t len,
                   uint8_t key[NVS_XTS_KEY_SIZE]);

/* A fresh random XTS key from the OS CSPRNG (halves always differ). */
int nvs_keys_generate(uint8_t key[NVS_XTS_KEY_SIZE]);

/*
 * The HMAC-based scheme: key = HMAC-SHA256(hmac_key, 5A 5A BE AE x 8) then
 * HMAC-SHA256(hmac_key, A5 A5 DE CE x 8).  The HMAC key must be exactly
 * NVS_HMAC_KEY_SIZE bytes (NVS_CRYPTO_EHMAC_KEY otherwise), as the eFuse
 * key block the firmware uses is.
 */
#define NVS_HMAC_KEY_SIZE 32u
int nvs_keys_from_hmac(uint8_t key[NVS_XTS_KEY_SIZE], const uint8_t *hmac_key,
                       size_t hmac_key_len);

/* ------------------------------------------------------------------------
 * Randomness and hashes.
 */

/* Overwrite len bytes holding a secret, in a way the compiler keeps. */
void nvs_wipe(void *buf, size_t len);

/* len bytes from the OS CSPRNG (OpenSSL's private DRBG). */
int nvs_random_bytes(uint8_t *buf, size_t len);

#define NVS_SHA256_SIZE 32u

/* SHA-256 of one buffer. */
int nvs_sha256(const void *data, size_t len, uint8_t out[NVS_SHA256_SIZE]);

/* Incremental SHA-256: new, update any number of times, final, free. */
typedef struct nvs_sha256_ctx nvs_sha256_ctx;
nvs_sha256_ctx *nvs_sha256_new(void);
int nvs_sha256_update(nvs_sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest; the context is then ready for a new message. */
int nvs_sha256_final(nvs_sha256_ctx *ctx, uint8_t out[NVS_SHA256_SIZE]);
void nvs_sha256_free(nvs_sha256_ctx *ctx);

/*
 * PBKDF2-HMAC-SHA1.  The Wi-Fi PMK is nvs_pbkdf2_sha1(passphrase, ssid,
 * NVS_WIFI_PMK_ITERATIONS, pmk, NVS_WIFI_PMK_SIZE).
 */
#define NVS_WIFI_PMK_ITERATIONS 4096u
#define NVS_WIFI_PMK_SIZE 32u
int nvs_pbkdf2_sha1(const void *pass, size_t pass_len, const void *salt,
                    size_t salt_len, unsigned iterations, uint8_t *out,
                    size_t out_len);

NVS_HIDDEN_END

#endif
