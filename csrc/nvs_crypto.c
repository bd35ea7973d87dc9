/*
 * nvs_crypto.c - XTS-AES of NVS entries, keys partitions, key derivation,
 * randomness and hashes, all through OpenSSL 3's EVP layer (CRC from zlib).
 */
#include "nvs_crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <zlib.h>

const char *nvs_crypto_strerror(int err)
{
    switch (err) {
    case NVS_CRYPTO_OK:
        return "success";
    case NVS_CRYPTO_EINVAL:
        return "invalid argument";
    case NVS_CRYPTO_ENOMEM:
        return "out of memory";
    case NVS_CRYPTO_EOPENSSL:
        return "openssl operation failed";
    case NVS_CRYPTO_EKEY_HALVES:
        return "xts key rejected: encryption key and tweak key are equal";
    case NVS_CRYPTO_EOFFSET:
        return "entries not inside the entry area of one page";
    case NVS_CRYPTO_EIMAGE_SIZE:
        return "image size is not a multiple of 4096";
    case NVS_CRYPTO_EKEYS_SIZE:
        return "keys partition is not 4096 bytes";
    case NVS_CRYPTO_EKEYS_CRC:
        return "keys partition crc mismatch";
    case NVS_CRYPTO_EHMAC_KEY:
        return "hmac key is not 32 bytes";
    case NVS_CRYPTO_ERANDOM:
        return "os random generator failed";
    default:
        return "unknown error";
    }
}

/*
 * OpenSSL keeps a per-thread error queue; once a failure has been turned
 * into one of our codes, drop what it queued so it cannot be mistaken later
 * for the cause of an unrelated failure.
 */
static int openssl_failed(void)
{
    ERR_clear_error();
    return NVS_CRYPTO_EOPENSSL;
}

static uint32_t keys_crc(const uint8_t key[NVS_XTS_KEY_SIZE])
{
    return (uint32_t)crc32(0xFFFFFFFFUL, key, (uInt)NVS_XTS_KEY_SIZE);
}

static int key_halves_equal(const uint8_t key[NVS_XTS_KEY_SIZE])
{
    return CRYPTO_memcmp(key, key + NVS_XTS_KEY_SIZE / 2,
                         NVS_XTS_KEY_SIZE / 2) == 0;
}

/* ------------------------------------------------------------------------
 * XTS
 */

/*
 * Two cipher contexts, keyed once: OpenSSL's AES key schedule differs by
 * direction, so flipping one context between encryption and decryption
 * would mean re-keying it.  Per entry only the tweak (the IV) is reset.
 */
struct nvs_xts_ctx {
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
};

void nvs_xts_free(nvs_xts_ctx *ctx)
{
    if (ctx == NULL)
        return;
    /* EVP_CIPHER_CTX_free wipes the key schedule. */
    EVP_CIPHER_CTX_free(ctx->enc);
    EVP_CIPHER_CTX_free(ctx->dec);
    free(ctx);
}

static void set_err(int *err, int code)
{
    if (err != NULL)
        *err = code;
}

nvs_xts_ctx *nvs_xts_new(const uint8_t key[NVS_XTS_KEY_SIZE], int *err)
{
    nvs_xts_ctx *ctx;
    EVP_CIPHER *cipher;
    int ok;

    if (key == NULL) {
        set_err(err, NVS_CRYPTO_EINVAL);
        return NULL;
    }
    /* OpenSSL refuses this only when encrypting; refuse it both ways. */
    if (key_halves_equal(key)) {
        set_err(err, NVS_CRYPTO_EKEY_HALVES);
        return NULL;
    }
    ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        set_err(err, NVS_CRYPTO_ENOMEM);
        return NULL;
    }
    ctx->enc = EVP_CIPHER_CTX_new();
    ctx->dec = EVP_CIPHER_CTX_new();
    if (ctx->enc == NULL || ctx->dec == NULL) {
        nvs_xts_free(ctx);
        set_err(err, NVS_CRYPTO_ENOMEM);
        return NULL;
    }
    /* An explicit fetch: the legacy EVP_aes_256_xts() would be looked up
     * again in the provider store by every keyed init. */
    cipher = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
    if (cipher == NULL) {
        nvs_xts_free(ctx);
        set_err(err, openssl_failed());
        return NULL;
    }
    ok = EVP_CipherInit_ex2(ctx->enc, cipher, key, NULL, 1, NULL) &&
         EVP_CipherInit_ex2(ctx->dec, cipher, key, NULL, 0, NULL);
    EVP_CIPHER_free(cipher); /* the contexts hold their own references */
    if (!ok) {
        nvs_xts_free(ctx);
        set_err(err, openssl_failed());
        return NULL;
    }
    set_err(err, NVS_CRYPTO_OK);
    return ctx;
}

int nvs_xts_rekey(nvs_xts_ctx *ctx, const uint8_t key[NVS_XTS_KEY_SIZE])
{
    if (ctx == NULL || key == NULL)
        return NVS_CRYPTO_EINVAL;
    if (key_halves_equal(key))
        return NVS_CRYPTO_EKEY_HALVES;
    /* The contexts keep their cipher: only the key schedules are made. */
    if (!EVP_CipherInit_ex2(ctx->enc, NULL, key, NULL, 1, NULL) ||
        !EVP_CipherInit_ex2(ctx->dec, NULL, key, NULL, 0, NULL))
        return openssl_failed();
    return NVS_CRYPTO_OK;
}

/* Each entry is one XTS data unit: reset the tweak, transform 32 bytes. */
static int xts_run(EVP_CIPHER_CTX *c, uint8_t *buf, size_t n, uint64_t offset)
{
    uint8_t tweak[NVS_XTS_TWEAK_SIZE];
    size_t i;

    memset(tweak, 0, sizeof tweak);
    for (i = 0; i < n; i++, buf += NVS_ENTRY_SIZE, offset += NVS_ENTRY_SIZE) {
        int outl = 0;

        nvs_put_u64(tweak, offset); /* bytes 8..15 stay zero */
        if (!EVP_CipherInit_ex2(c, NULL, NULL, tweak, -1, NULL) ||
            !EVP_CipherUpdate(c, buf, &outl, buf, (int)NVS_ENTRY_SIZE) ||
            outl != (int)NVS_ENTRY_SIZE)
            return openssl_failed();
    }
    return NVS_CRYPTO_OK;
}

int nvs_xts_apply(nvs_xts_ctx *ctx, uint8_t *buf, size_t n_entries,
                  uint64_t first_offset, int encrypt)
{
    uint64_t in_page;

    if (ctx == NULL || (buf == NULL && n_entries != 0))
        return NVS_CRYPTO_EINVAL;
    in_page = first_offset % NVS_PAGE_SIZE;
    if (in_page % NVS_ENTRY_SIZE != 0 || in_page < NVS_FIRST_ENTRY_OFFSET ||
        n_entries > NVS_ENTRIES_PER_PAGE ||
        in_page + (uint64_t)n_entries * NVS_ENTRY_SIZE > NVS_PAGE_SIZE)
        return NVS_CRYPTO_EOFFSET;
    return xts_run(encrypt ? ctx->enc : ctx->dec, buf, n_entries,
                   first_offset);
}

int nvs_xts_page(nvs_xts_ctx *ctx, uint8_t page[NVS_PAGE_SIZE],
                 uint32_t page_index, int encrypt)
{
    EVP_CIPHER_CTX *c;
    const uint8_t *bitmap;
    unsigned i;

    if (ctx == NULL || page == NULL)
        return NVS_CRYPTO_EINVAL;
    c = encrypt ? ctx->enc : ctx->dec;
    bitmap = page + NVS_BITMAP_OFFSET;
    for (i = 0; i < NVS_ENTRIES_PER_PAGE; i++) {
        unsigned state = (bitmap[i / 4] >> (2 * (i % 4))) & 3u;
        int rc;

        /* Erased entries keep the bytes written while they were live, so
         * they are ciphertext too; only never-written ones are plain 0xFF. */
        if (state == NVS_ENTRY_STATE_EMPTY)
            continue;
        rc = xts_run(c, page + NVS_FIRST_ENTRY_OFFSET + i * NVS_ENTRY_SIZE, 1,
                     nvs_xts_entry_offset(page_index, i));
        if (rc != NVS_CRYPTO_OK)
            return rc;
    }
    return NVS_CRYPTO_OK;
}

int nvs_xts_image(nvs_xts_ctx *ctx, uint8_t *image, size_t len, int encrypt)
{
    size_t pages, p;

    if (ctx == NULL || (image == NULL && len != 0))
        return NVS_CRYPTO_EINVAL;
    if (len % NVS_PAGE_SIZE != 0)
        return NVS_CRYPTO_EIMAGE_SIZE;
    pages = len / NVS_PAGE_SIZE;
    if (pages > (size_t)UINT32_MAX)
        return NVS_CRYPTO_EIMAGE_SIZE;
    for (p = 0; p < pages; p++) {
        int rc = nvs_xts_page(ctx, image + p * NVS_PAGE_SIZE, (uint32_t)p,
                              encrypt);
        if (rc != NVS_CRYPTO_OK)
            return rc;
    }
    return NVS_CRYPTO_OK;
}

int nvs_xts_crypt(const uint8_t key[NVS_XTS_KEY_SIZE], uint8_t *buf,
                  size_t n_entries, uint64_t first_offset, int encrypt)
{
    int rc;
    nvs_xts_ctx *ctx = nvs_xts_new(key, &rc);

    if (ctx == NULL)
        return rc;
    rc = nvs_xts_apply(ctx, buf, n_entries, first_offset, encrypt);
    nvs_xts_free(ctx);
    return rc;
}

/* ------------------------------------------------------------------------
 * Keys partition
 */

int nvs_keys_build(uint8_t out[NVS_KEYS_PARTITION_SIZE],
                   const uint8_t key[NVS_XTS_KEY_SIZE])
{
    if (out == NULL || key == NULL)
        return NVS_CRYPTO_EINVAL;
    memset(out, 0xFF, NVS_KEYS_PARTITION_SIZE);
    memcpy(out, key, NVS_XTS_KEY_SIZE);
    nvs_put_u32(out + NVS_XTS_KEY_SIZE, keys_crc(key));
    return NVS_CRYPTO_OK;
}

int nvs_keys_parse(const uint8_t *buf, size_t len,
                   uint8_t key[NVS_XTS_KEY_SIZE])
{
    if (buf == NULL || key == NULL)
        return NVS_CRYPTO_EINVAL;
    if (len != NVS_KEYS_PARTITION_SIZE)
        return NVS_CRYPTO_EKEYS_SIZE;
    if (nvs_get_u32(buf + NVS_XTS_KEY_SIZE) != keys_crc(buf))
        return NVS_CRYPTO_EKEYS_CRC;
    memcpy(key, buf, NVS_XTS_KEY_SIZE);
    return NVS_CRYPTO_OK;
}

int nvs_keys_generate(uint8_t key[NVS_XTS_KEY_SIZE])
{
    int tries;

    if (key == NULL)
        return NVS_CRYPTO_EINVAL;
    /* Equal halves (odds 2^-256) would be unusable; a broken generator that
     * keeps producing them must not hang us. */
    for (tries = 0; tries < 4; tries++) {
        int rc = nvs_random_bytes(key, NVS_XTS_KEY_SIZE);

        if (rc != NVS_CRYPTO_OK)
            return rc;
        if (!key_halves_equal(key))
            return NVS_CRYPTO_OK;
    }
    OPENSSL_cleanse(key, NVS_XTS_KEY_SIZE);
    return NVS_CRYPTO_ERANDOM;
}

static const uint8_t hmac_ekey_seed[4] = {0x5A, 0x5A, 0xBE, 0xAE};
static const uint8_t hmac_tkey_seed[4] = {0xA5, 0xA5, 0xDE, 0xCE};

/* out = HMAC-SHA256(hmac_key, element repeated 8 times) */
static int hmac_half(uint8_t out[32], const uint8_t *hmac_key,
                     const uint8_t element[4])
{
    uint8_t seed[32];
    unsigned int outl = 0;
    unsigned i;

    for (i = 0; i < sizeof seed; i += 4)
        memcpy(seed + i, element, 4);
    if (HMAC(EVP_sha256(), hmac_key, (int)NVS_HMAC_KEY_SIZE, seed,
             sizeof seed, out, &outl) == NULL ||
        outl != 32)
        return openssl_failed();
    return NVS_CRYPTO_OK;
}

int nvs_keys_from_hmac(uint8_t key[NVS_XTS_KEY_SIZE], const uint8_t *hmac_key,
                       size_t hmac_key_len)
{
    int rc;

    if (key == NULL || hmac_key == NULL)
        return NVS_CRYPTO_EINVAL;
    if (hmac_key_len != NVS_HMAC_KEY_SIZE)
        return NVS_CRYPTO_EHMAC_KEY;
    rc = hmac_half(key, hmac_key, hmac_ekey_seed);
    if (rc == NVS_CRYPTO_OK)
        rc = hmac_half(key + NVS_XTS_KEY_SIZE / 2, hmac_key, hmac_tkey_seed);
    if (rc != NVS_CRYPTO_OK)
        OPENSSL_cleanse(key, NVS_XTS_KEY_SIZE);
    return rc;
}

/* ------------------------------------------------------------------------
 * Randomness, hashes
 */

void nvs_wipe(void *buf, size_t len)
{
    if (buf != NULL)
        OPENSSL_cleanse(buf, len);
}

/* Draws len bytes from OpenSSL's private DRBG. */
static int drbg_bytes(uint8_t *buf, size_t len)
{
    /* RAND_priv_bytes takes an int length. */
    const size_t step = (size_t)1 << 30;

    while (len > 0) {
        size_t n = len < step ? len : step;

        if (RAND_priv_bytes(buf, (int)n) != 1) {
            ERR_clear_error();
            return NVS_CRYPTO_ERANDOM;
        }
        buf += n;
        len -= n;
    }
    return NVS_CRYPTO_OK;
}

/*
 * Small requests (a secret, a key per unit) are served from a pool filled
 * by one DRBG call: each call costs about as much as a kilobyte of output,
 * and a batch makes one or two small requests per unit (measured from Lua:
 * a key and a 16-byte secret take 0.8 us from the pool, 4.1 to 4.5 us
 * drawn directly; a batch of 10,000 units with a key each, 1.06 s of CPU
 * against 1.15 s, median of ten).  Bytes handed out are wiped at once, so
 * it never holds a secret that was given away; the bytes not handed out
 * yet are wiped at exit (or when the module is unloaded), and without that
 * wipe registered no pool is used.  A forked child (same pool, other
 * process) refills first so that two processes never hand out the same
 * bytes.  A lock keeps two threads from taking the same bytes.
 */
#define POOL_SIZE 4096u
#define POOL_MAX_REQUEST 256u

static struct {
    pthread_mutex_t lock;
    uint8_t bytes[POOL_SIZE];
    size_t used; /* bytes[used..] are not handed out yet */
    pid_t pid;   /* the process that filled it; 0: never filled */
} pool = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int pool_usable; /* the wipe at exit is registered */

static void pool_wipe(void)
{
    pthread_mutex_lock(&pool.lock);
    OPENSSL_cleanse(pool.bytes, POOL_SIZE);
    pool.used = POOL_SIZE;
    pool.pid = 0;
    pthread_mutex_unlock(&pool.lock);
}

/* atexit from a shared object also runs when the object is unloaded. */
static void pool_register_wipe(void)
{
    pool_usable = atexit(pool_wipe) == 0;
}

int nvs_random_bytes(uint8_t *buf, size_t len)
{
    pid_t pid;

    if (buf == NULL && len != 0)
        return NVS_CRYPTO_EINVAL;
    pthread_once(&pool_once, pool_register_wipe);
    if (len > POOL_MAX_REQUEST || !pool_usable)
        return drbg_bytes(buf, len);
    pid = getpid();
    pthread_mutex_lock(&pool.lock);
    if (pool.pid != pid || POOL_SIZE - pool.used < len) {
        int rc = drbg_bytes(pool.bytes, POOL_SIZE);

        if (rc != NVS_CRYPTO_OK) {
            OPENSSL_cleanse(pool.bytes, POOL_SIZE);
            pool.pid = 0;
            pthread_mutex_unlock(&pool.lock);
            return rc;
        }
        pool.used = 0;
        pool.pid = pid;
    }
    memcpy(buf, pool.bytes + pool.used, len);
    OPENSSL_cleanse(pool.bytes + pool.used, len);
    pool.used += len;
    pthread_mutex_unlock(&pool.lock);
    return NVS_CRYPTO_OK;
}

/* SHA-256 fetched from the provider once: EVP_sha256() makes OpenSSL 3
 * look the algorithm up again on every digest (a lock and name compares,
 * more than half of the cost of hashing a short input).  Where the fetch
 * fails, EVP_sha256() still works the slow way. */
static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    ERR_clear_error();
}

static const EVP_MD *sha256_md(void)
{
    pthread_once(&sha256_once, fetch_sha256);
    return sha256_fetched != NULL ? sha256_fetched : EVP_sha256();
}

int nvs_sha256(const void *data, size_t len, uint8_t out[NVS_SHA256_SIZE])
{
    if ((data == NULL && len != 0) || out == NULL)
        return NVS_CRYPTO_EINVAL;
    if (!EVP_Digest(len != 0 ? data : "", len, out, NULL, sha256_md(), NULL))
        return openssl_failed();
    return NVS_CRYPTO_OK;
}

struct nvs_sha256_ctx {
    EVP_MD_CTX *md;
};

nvs_sha256_ctx *nvs_sha256_new(void)
{
    nvs_sha256_ctx *ctx = malloc(sizeof *ctx);

    if (ctx == NULL)
        return NULL;
    ctx->md = EVP_MD_CTX_new();
    if (ctx->md == NULL || !EVP_DigestInit_ex(ctx->md, sha256_md(), NULL)) {
        ERR_clear_error();
        nvs_sha256_free(ctx);
        return NULL;
    }
    return ctx;
}

int nvs_sha256_update(nvs_sha256_ctx *ctx, const void *data, size_t len)
{
    if (ctx == NULL || (data == NULL && len != 0))
        return NVS_CRYPTO_EINVAL;
    if (len != 0 && !EVP_DigestUpdate(ctx->md, data, len))
        return openssl_failed();
    return NVS_CRYPTO_OK;
}

int nvs_sha256_final(nvs_sha256_ctx *ctx, uint8_t out[NVS_SHA256_SIZE])
{
    if (ctx == NULL || out == NULL)
        return NVS_CRYPTO_EINVAL;
    if (!EVP_DigestFinal_ex(ctx->md, out, NULL) ||
        !EVP_DigestInit_ex(ctx->md, sha256_md(), NULL))
        return openssl_failed();
    return NVS_CRYPTO_OK;
}

void nvs_sha256_free(nvs_sha256_ctx *ctx)
{
    if (ctx == NULL)
        return;
    EVP_MD_CTX_free(ctx->md);
    free(ctx);
}

int nvs_pbkdf2_sha1(const void *pass, size_t pass_len, const void *salt,
                    size_t salt_len, unsigned iterations, uint8_t *out,
                    size_t out_len)
{
    if ((pass == NULL && pass_len != 0) || (salt == NULL && salt_len != 0) ||
        out == NULL || out_len == 0 || iterations == 0)
        return NVS_CRYPTO_EINVAL;
    if (pass_len > INT_MAX || salt_len > INT_MAX || out_len > INT_MAX ||
        iterations > INT_MAX)
        return NVS_CRYPTO_EINVAL;
    /* Empty inputs may come as NULL; OpenSSL gets a real (empty) string. */
    if (!PKCS5_PBKDF2_HMAC_SHA1(pass_len != 0 ? pass : "", (int)pass_len,
                                salt_len != 0 ? salt : (const void *)"",
                                (int)salt_len, (int)iterations, (int)out_len,
                                out))
        return openssl_failed();
    return NVS_CRYPTO_OK;
}
