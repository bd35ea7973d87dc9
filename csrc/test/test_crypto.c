/*
 * test_crypto.c - checks for nvs_crypto.c.
 *
 *   test_crypto [--bench] [IDF_SAMPLES_DIR [RANDOM_DIR]]
 *
 * Without directories only the self-contained checks run (known-answer
 * values of SHA-256 and PBKDF2, argument and error handling).  With the
 * vector directories (the layout of vectors/idf-samples and vectors/random)
 * it also checks XTS against images the reference encrypted, and the keys
 * partitions it wrote.  Prints "N passed, N failed"; exits 1 on a failure.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "../nvs_crypto.h"

static int n_passed, n_failed;

static void check(int ok, const char *what)
{
    if (ok) {
        n_passed++;
    } else {
        n_failed++;
        printf("FAIL: %s\n", what);
    }
}

static void check_rc(int rc, int want, const char *what)
{
    if (rc == want) {
        n_passed++;
    } else {
        n_failed++;
        printf("FAIL: %s: got %d (%s), want %d (%s)\n", what, rc,
               nvs_crypto_strerror(rc), want, nvs_crypto_strerror(want));
    }
}

/* dir/rel into path; 0 if it does not fit. */
static int make_path(char *path, size_t size, const char *dir, const char *rel)
{
    int n = snprintf(path, size, "%s/%s", dir, rel);

    return n >= 0 && (size_t)n < size;
}

/* Whole file into a malloc'd buffer; NULL (and a message) if unreadable. */
static uint8_t *load(const char *dir, const char *rel, size_t *len)
{
    char path[4096];
    FILE *f;
    uint8_t *buf = NULL;
    long size;

    if (!make_path(path, sizeof path, dir, rel)) {
        printf("path too long: %s/%s\n", dir, rel);
        return NULL;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        printf("cannot open %s\n", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size + 1);
        if (buf != NULL && fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)size;
    }
    fclose(f);
    if (buf == NULL)
        printf("cannot read %s\n", path);
    return buf;
}

static int file_exists(const char *dir, const char *rel)
{
    char path[4096];
    FILE *f;

    if (!make_path(path, sizeof path, dir, rel))
        return 0;
    f = fopen(path, "rb");
    if (f != NULL)
        fclose(f);
    return f != NULL;
}

static void unhex(uint8_t *out, const char *hex)
{
    size_t i;

    for (i = 0; hex[2 * i] != '\0'; i++) {
        unsigned v;

        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static unsigned entry_state(const uint8_t *page, unsigned i)
{
    return (page[NVS_BITMAP_OFFSET + i / 4] >> (2 * (i % 4))) & 3u;
}

static uint32_t crc(const void *p, size_t n)
{
    return (uint32_t)crc32(0xFFFFFFFFUL, p, (uInt)n);
}

/* ------------------------------------------------------------------------ */

static void test_strerror(void)
{
    int code, other;
    int ok = 1;

    for (code = NVS_CRYPTO_OK; code >= NVS_CRYPTO_ERANDOM; code--) {
        const char *m = nvs_crypto_strerror(code);
        size_t i, n = strlen(m);

        if (n == 0 || m[n - 1] == '.' || strcmp(m, "unknown error") == 0)
            ok = 0;
        for (i = 0; i < n; i++)
            if (isupper((unsigned char)m[i]))
                ok = 0;
        for (other = code - 1; other >= NVS_CRYPTO_ERANDOM; other--)
            if (strcmp(m, nvs_crypto_strerror(other)) == 0)
                ok = 0;
    }
    check(ok, "strerror: distinct lowercase messages for every code");
    check(strcmp(nvs_crypto_strerror(-999), "unknown error") == 0 &&
              strcmp(nvs_crypto_strerror(1), "unknown error") == 0,
          "strerror: unknown code");
}

static void test_sha256(void)
{
    uint8_t want[32], got[32], got2[32], big[1000];
    nvs_sha256_ctx *ctx;
    size_t i;

    unhex(want,
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check(nvs_sha256("abc", 3, got) == 0 && memcmp(got, want, 32) == 0,
          "sha256: abc");
    unhex(want,
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check(nvs_sha256(NULL, 0, got) == 0 && memcmp(got, want, 32) == 0,
          "sha256: empty input, NULL pointer");
    check_rc(nvs_sha256(NULL, 1, got), NVS_CRYPTO_EINVAL, "sha256: NULL data");

    for (i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    nvs_sha256(big, sizeof big, want);
    ctx = nvs_sha256_new();
    check(ctx != NULL, "sha256: new context");
    if (ctx == NULL)
        return;
    nvs_sha256_update(ctx, big, 1);
    nvs_sha256_update(ctx, big + 1, 0);
    nvs_sha256_update(ctx, big + 1, 500);
    nvs_sha256_update(ctx, big + 501, sizeof big - 501);
    check(nvs_sha256_final(ctx, got) == 0 && memcmp(got, want, 32) == 0,
          "sha256: incremental equals one-shot");
    /* final leaves the context ready for the next message */
    nvs_sha256_update(ctx, big, sizeof big);
    check(nvs_sha256_final(ctx, got2) == 0 && memcmp(got2, want, 32) == 0,
          "sha256: context reusable after final");
    nvs_sha256_free(ctx);
    nvs_sha256_free(NULL);
}

static void test_pbkdf2(void)
{
    /* Published PBKDF2-HMAC-SHA1 answers (RFC 6070; the 802.11i PMK). */
    static const struct {
        const char *pass, *salt;
        unsigned iter;
        size_t len;
        const char *hex;
    } kat[] = {
        {"password", "salt", 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
        {"password", "salt", 2, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
        {"password", "salt", 4096, 20,
         "4b007901b765489abead49d926f721d065a429c1"},
        {"password", "IEEE", NVS_WIFI_PMK_ITERATIONS, NVS_WIFI_PMK_SIZE,
         "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"},
    };
    uint8_t want[32], got[32];
    size_t k;

    for (k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        char what[80];

        unhex(want, kat[k].hex);
        snprintf(what, sizeof what, "pbkdf2-sha1: %s/%s/%u", kat[k].pass,
                 kat[k].salt, kat[k].iter);
        check(nvs_pbkdf2_sha1(kat[k].pass, strlen(kat[k].pass), kat[k].salt,
                              strlen(kat[k].salt), kat[k].iter, got,
                              kat[k].len) == 0 &&
                  memcmp(got, want, kat[k].len) == 0,
              what);
    }
    check_rc(nvs_pbkdf2_sha1("p", 1, "s", 1, 0, got, 32), NVS_CRYPTO_EINVAL,
             "pbkdf2-sha1: zero iterations");
    check_rc(nvs_pbkdf2_sha1("p", 1, "s", 1, 1, got, 0), NVS_CRYPTO_EINVAL,
             "pbkdf2-sha1: zero output length");
    check_rc(nvs_pbkdf2_sha1(NULL, 0, "s", 1, 1, got, 32), NVS_CRYPTO_OK,
             "pbkdf2-sha1: empty password");
}

static void test_random(void)
{
    uint8_t a[64], b[64], keys[NVS_KEYS_PARTITION_SIZE], back[64];

    check_rc(nvs_random_bytes(NULL, 0), NVS_CRYPTO_OK, "random: zero bytes");
    check_rc(nvs_random_bytes(NULL, 1), NVS_CRYPTO_EINVAL, "random: NULL");
    check(nvs_random_bytes(a, sizeof a) == 0 &&
              nvs_random_bytes(b, sizeof b) == 0 && memcmp(a, b, 64) != 0,
          "random: two draws differ");
    /* Small draws come from a pool: consecutive ones differ, and a forked
     * child does not repeat what its parent draws next. */
    {
        uint8_t seen[300][16];
        int fds[2], status = 0, distinct = 1;
        size_t i, j;
        pid_t pid;

        for (i = 0; i < 300 && distinct; i++) {
            distinct = nvs_random_bytes(seen[i], 16) == NVS_CRYPTO_OK;
            for (j = 0; j < i && distinct; j++)
                distinct = memcmp(seen[i], seen[j], 16) != 0;
        }
        check(distinct, "random: 300 small draws (past a pool refill) all differ");
        if (pipe(fds) == 0 && (pid = fork()) >= 0) {
            if (pid == 0) {
                ssize_t w = -1;
                if (nvs_random_bytes(a, 16) == NVS_CRYPTO_OK)
                    w = write(fds[1], a, 16);
                _exit(w == 16 ? 0 : 1);
            }
            check(nvs_random_bytes(b, 16) == NVS_CRYPTO_OK && read(fds[0], a, 16) == 16 &&
                      waitpid(pid, &status, 0) == pid && status == 0 && memcmp(a, b, 16) != 0,
                  "random: a forked child draws other bytes than its parent");
            close(fds[0]);
            close(fds[1]);
        } else {
            check(0, "random: pipe and fork for the fork check");
        }
    }
    check(nvs_keys_generate(a) == 0 && nvs_keys_generate(b) == 0 &&
              memcmp(a, b, 64) != 0 && memcmp(a, a + 32, 32) != 0,
          "keys: generated keys differ, halves differ");
    check(nvs_keys_build(keys, a) == 0 &&
              nvs_keys_parse(keys, sizeof keys, back) == 0 &&
              memcmp(a, back, 64) == 0,
          "keys: build then parse gives the key back");
}

static void test_keys_errors(void)
{
    uint8_t key[64], keys[NVS_KEYS_PARTITION_SIZE], out[64];
    size_t i;
    int ok = 1;

    for (i = 0; i < 64; i++)
        key[i] = (uint8_t)i;
    nvs_keys_build(keys, key);
    for (i = 68; i < sizeof keys; i++)
        if (keys[i] != 0xFF)
            ok = 0;
    check(ok && nvs_get_u32(keys + 64) == crc(key, 64),
          "keys: layout key, crc, 0xFF fill");
    check_rc(nvs_keys_parse(keys, 4095, out), NVS_CRYPTO_EKEYS_SIZE,
             "keys: short partition");
    check_rc(nvs_keys_parse(keys, 64, out), NVS_CRYPTO_EKEYS_SIZE,
             "keys: bare 64-byte key");
    keys[5] ^= 1;
    check_rc(nvs_keys_parse(keys, sizeof keys, out), NVS_CRYPTO_EKEYS_CRC,
             "keys: corrupted key byte");
    keys[5] ^= 1;
    keys[66] ^= 0x80;
    check_rc(nvs_keys_parse(keys, sizeof keys, out), NVS_CRYPTO_EKEYS_CRC,
             "keys: corrupted crc");
    keys[66] ^= 0x80;
    keys[100] = 0;
    check_rc(nvs_keys_parse(keys, sizeof keys, out), NVS_CRYPTO_OK,
             "keys: bytes after the crc are not checked");
    check_rc(nvs_keys_from_hmac(out, key, 31), NVS_CRYPTO_EHMAC_KEY,
             "hmac: 31-byte key refused");
    check_rc(nvs_keys_from_hmac(out, key, 33), NVS_CRYPTO_EHMAC_KEY,
             "hmac: 33-byte key refused");
}

static void test_xts_api(void)
{
    uint8_t key[64], same[64], buf[4 * 32], ref[4 * 32], tmp[32 * 126];
    nvs_xts_ctx *ctx;
    size_t i;
    int err = 12345;

    for (i = 0; i < 64; i++)
        key[i] = (uint8_t)(i * 13 + 1);
    memset(same, 0x42, sizeof same);
    check(nvs_xts_new(same, &err) == NULL && err == NVS_CRYPTO_EKEY_HALVES,
          "xts: equal key halves refused by new");
    check_rc(nvs_xts_crypt(same, buf, 1, 64, 1), NVS_CRYPTO_EKEY_HALVES,
             "xts: equal key halves refused by crypt (encrypt)");
    check_rc(nvs_xts_crypt(same, buf, 1, 64, 0), NVS_CRYPTO_EKEY_HALVES,
             "xts: equal key halves refused by crypt (decrypt)");
    check(nvs_xts_new(NULL, &err) == NULL && err == NVS_CRYPTO_EINVAL,
          "xts: NULL key");
    nvs_xts_free(NULL);

    ctx = nvs_xts_new(key, NULL);
    check(ctx != NULL, "xts: new");
    if (ctx == NULL)
        return;

    memset(buf, 0x5A, sizeof buf);
    memcpy(ref, buf, sizeof buf);
    check_rc(nvs_xts_apply(ctx, buf, 1, 0, 1), NVS_CRYPTO_EOFFSET,
             "xts: header offset refused");
    check_rc(nvs_xts_apply(ctx, buf, 1, 32, 1), NVS_CRYPTO_EOFFSET,
             "xts: bitmap offset refused");
    check_rc(nvs_xts_apply(ctx, buf, 1, 80, 1), NVS_CRYPTO_EOFFSET,
             "xts: unaligned offset refused");
    check_rc(nvs_xts_apply(ctx, buf, 2, 4096 - 32, 1), NVS_CRYPTO_EOFFSET,
             "xts: run into the next page refused");
    check_rc(nvs_xts_apply(ctx, tmp, 127, 64, 1), NVS_CRYPTO_EOFFSET,
             "xts: 127 entries refused");
    check(memcmp(buf, ref, sizeof buf) == 0, "xts: refused call leaves data");
    check_rc(nvs_xts_apply(ctx, NULL, 0, 64, 1), NVS_CRYPTO_OK,
             "xts: zero entries");
    check_rc(nvs_xts_apply(ctx, tmp, 126, nvs_xts_entry_offset(3, 0), 1),
             NVS_CRYPTO_OK, "xts: a full page of entries");
    check_rc(nvs_xts_image(ctx, tmp, 4095, 1), NVS_CRYPTO_EIMAGE_SIZE,
             "xts: image not whole pages");

    /* Each entry on its own, tweak = its offset: a run equals one-by-one,
     * equal plaintexts at different offsets encrypt differently. */
    check_rc(nvs_xts_apply(ctx, buf, 4, nvs_xts_entry_offset(2, 7), 1),
             NVS_CRYPTO_OK, "xts: encrypt a run");
    for (i = 0; i < 4; i++)
        nvs_xts_crypt(key, ref + 32 * i, 1, nvs_xts_entry_offset(2, 7 + i), 1);
    check(memcmp(buf, ref, sizeof buf) == 0,
          "xts: run equals entries one by one");
    check(memcmp(buf, buf + 32, 32) != 0, "xts: offset changes ciphertext");
    /* both directions from one context, interleaved */
    nvs_xts_apply(ctx, buf, 2, nvs_xts_entry_offset(2, 7), 0);
    nvs_xts_apply(ctx, buf + 64, 2, nvs_xts_entry_offset(2, 9), 1);
    nvs_xts_apply(ctx, buf + 64, 2, nvs_xts_entry_offset(2, 9), 0);
    nvs_xts_apply(ctx, buf + 64, 2, nvs_xts_entry_offset(2, 9), 0);
    for (i = 0; i < sizeof buf && buf[i] == 0x5A; i++)
        ;
    check(i == sizeof buf, "xts: decrypt restores, one context both ways");
    /* offsets past 4 GiB use the upper tweak bytes */
    memset(buf, 0x11, 32);
    nvs_xts_apply(ctx, buf, 1, nvs_xts_entry_offset(0x100000, 5), 1);
    memset(ref, 0x11, 32);
    nvs_xts_apply(ctx, ref, 1, nvs_xts_entry_offset(0, 5), 1);
    check(memcmp(buf, ref, 32) != 0, "xts: large offsets reach the tweak");
    nvs_xts_apply(ctx, buf, 1, nvs_xts_entry_offset(0x100000, 5), 0);
    check(buf[0] == 0x11 && buf[31] == 0x11, "xts: large offset round trip");

    /* rekey: the same context under another key works as a new one; a
     * refused key leaves the old one */
    memset(buf, 0x33, 64);
    memset(ref, 0x33, 64);
    for (i = 0; i < 64; i++)
        same[i] = (uint8_t)(255 - i);
    check_rc(nvs_xts_rekey(ctx, same), NVS_CRYPTO_OK, "xts: rekey");
    nvs_xts_apply(ctx, buf, 2, nvs_xts_entry_offset(1, 3), 1);
    nvs_xts_crypt(same, ref, 2, nvs_xts_entry_offset(1, 3), 1);
    check(memcmp(buf, ref, 64) == 0, "xts: rekeyed context encrypts with the new key");
    memset(tmp, 0x42, 64);
    check_rc(nvs_xts_rekey(ctx, tmp), NVS_CRYPTO_EKEY_HALVES, "xts: rekey refuses equal halves");
    nvs_xts_apply(ctx, buf, 2, nvs_xts_entry_offset(1, 3), 0);
    check(buf[0] == 0x33 && buf[63] == 0x33, "xts: refused rekey keeps the key");
    check_rc(nvs_xts_rekey(NULL, same), NVS_CRYPTO_EINVAL, "xts: rekey NULL context");
    nvs_xts_free(ctx);
}

/* ------------------------------------------------------------------------
 * Vectors
 */

static int load_key(const char *dir, const char *rel, uint8_t key[64])
{
    size_t len = 0;
    uint8_t *keys = load(dir, rel, &len);
    int rc;

    if (keys == NULL)
        return -1;
    rc = nvs_keys_parse(keys, len, key);
    free(keys);
    return rc;
}

/*
 * plain_rel encrypted with the keys in key_rel must give enc_rel, and back.
 */
static void test_xts_pair(const char *dir, const char *plain_rel,
                          const char *enc_rel, const char *key_rel)
{
    uint8_t key[64];
    uint8_t *plain, *enc, *work;
    size_t plain_len = 0, enc_len = 0, p;
    nvs_xts_ctx *ctx;
    char what[256];
    int same_meta = 1, runs_ok = 1;

    snprintf(what, sizeof what, "vector %s: keys partition parses", key_rel);
    check_rc(load_key(dir, key_rel, key), NVS_CRYPTO_OK, what);
    plain = load(dir, plain_rel, &plain_len);
    enc = load(dir, enc_rel, &enc_len);
    ctx = nvs_xts_new(key, NULL);
    work = malloc(plain_len + 1);
    snprintf(what, sizeof what, "vector %s: inputs loaded", enc_rel);
    check(plain != NULL && enc != NULL && ctx != NULL && work != NULL &&
              plain_len == enc_len && plain_len % NVS_PAGE_SIZE == 0,
          what);
    if (plain == NULL || enc == NULL || ctx == NULL || work == NULL ||
        plain_len != enc_len)
        goto out;

    memcpy(work, plain, plain_len);
    snprintf(what, sizeof what, "vector %s: encrypting %s gives it", enc_rel,
             plain_rel);
    check(nvs_xts_image(ctx, work, plain_len, 1) == 0 &&
              memcmp(work, enc, enc_len) == 0,
          what);

    memcpy(work, enc, enc_len);
    snprintf(what, sizeof what, "vector %s: decrypting gives %s", enc_rel,
             plain_rel);
    check(nvs_xts_image(ctx, work, enc_len, 0) == 0 &&
              memcmp(work, plain, plain_len) == 0,
          what);

    /* The same through nvs_xts_apply, page by page, over the runs of
     * written entries; and the metadata the vector leaves plain. */
    memcpy(work, plain, plain_len);
    for (p = 0; p < plain_len / NVS_PAGE_SIZE; p++) {
        uint8_t *pg = work + p * NVS_PAGE_SIZE;
        unsigned i = 0;

        if (memcmp(pg, enc + p * NVS_PAGE_SIZE, NVS_FIRST_ENTRY_OFFSET) != 0)
            same_meta = 0;
        while (i < NVS_ENTRIES_PER_PAGE) {
            unsigned j = i;

            while (j < NVS_ENTRIES_PER_PAGE &&
                   entry_state(pg, j) != NVS_ENTRY_STATE_EMPTY)
                j++;
            if (j > i &&
                nvs_xts_apply(ctx, pg + NVS_FIRST_ENTRY_OFFSET + 32 * i, j - i,
                              nvs_xts_entry_offset(p, i), 1) != 0)
                runs_ok = 0;
            i = j + 1;
        }
    }
    snprintf(what, sizeof what, "vector %s: headers and bitmaps plain",
             enc_rel);
    check(same_meta, what);
    snprintf(what, sizeof what, "vector %s: runs via nvs_xts_apply", enc_rel);
    check(runs_ok && memcmp(work, enc, enc_len) == 0, what);

out:
    nvs_xts_free(ctx);
    free(plain);
    free(enc);
    free(work);
}

static void test_hmac_pair(const char *dir, const char *hmac_rel,
                           const char *keys_rel)
{
    uint8_t key[64], keys[NVS_KEYS_PARTITION_SIZE];
    uint8_t *hk, *want;
    size_t hk_len = 0, want_len = 0;
    char what[256];

    hk = load(dir, hmac_rel, &hk_len);
    want = load(dir, keys_rel, &want_len);
    snprintf(what, sizeof what, "hmac: %s derives %s", hmac_rel, keys_rel);
    check(hk != NULL && want != NULL &&
              nvs_keys_from_hmac(key, hk, hk_len) == 0 &&
              nvs_keys_build(keys, key) == 0 && want_len == sizeof keys &&
              memcmp(keys, want, sizeof keys) == 0,
          what);
    free(hk);
    free(want);
}

static void test_idf_samples(const char *dir)
{
    test_xts_pair(dir, "multipage-v2/expected.bin",
                  "multipage-v2-encrypted/expected.bin",
                  "multipage-v2-encrypted/testdata/sample_encryption_keys.bin");
    test_xts_pair(dir, "singlepage-v1/expected.bin",
                  "singlepage-v1-encrypted/expected.bin",
                  "singlepage-v1-encrypted/testdata/"
                  "sample_encryption_keys.bin");
    test_xts_pair(dir, "multipage-v2-decrypt/expected.bin",
                  "multipage-v2-decrypt/encrypted.bin",
                  "multipage-v2-decrypt/keys.bin");
    test_hmac_pair(dir, "hmac-generate-key/hmac_key.bin",
                   "hmac-generate-key/expected_keys.bin");
    test_hmac_pair(dir, "multipage-v2/testdata/sample_hmac_key.bin",
                   "multipage-v2/testdata/sample_encryption_keys_hmac.bin");
    {
        uint8_t key[64], back[NVS_KEYS_PARTITION_SIZE];
        size_t len = 0;
        uint8_t *file = load(dir,
                             "multipage-v2-encrypted/testdata/"
                             "sample_encryption_keys.bin",
                             &len);

        check(file != NULL && nvs_keys_parse(file, len, key) == 0 &&
                  nvs_keys_build(back, key) == 0 && len == sizeof back &&
                  memcmp(back, file, len) == 0,
              "keys: rebuilding the sample keys file gives it back");
        free(file);
    }
}

/*
 * Every encrypted random case: decrypting must give items whose header
 * CRCs hold, and encrypting again must give the file back.
 */
static void test_random_cases(const char *dir)
{
    int c, tested = 0;

    for (c = 0; c < 1000; c++) {
        char cdir[4096], name[16], what[4200];
        uint8_t key[64];
        uint8_t *args, *img, *orig;
        size_t args_len = 0, len = 0, p;
        nvs_xts_ctx *ctx;
        int ok = 1;

        snprintf(name, sizeof name, "case%04d", c);
        if (!make_path(cdir, sizeof cdir, dir, name))
            break;
        if (!file_exists(cdir, "args.txt"))
            break;
        if (!file_exists(cdir, "keys.bin") ||
            !file_exists(cdir, "expected.bin"))
            continue;
        args = load(cdir, "args.txt", &args_len);
        if (args == NULL)
            continue;
        args[args_len] = '\0';
        if (strncmp((char *)args, "encrypt\n", 8) != 0) {
            free(args);
            continue;
        }
        free(args);
        tested++;
        img = load(cdir, "expected.bin", &len);
        orig = img != NULL ? malloc(len + 1) : NULL;
        ctx = load_key(cdir, "keys.bin", key) == 0 ? nvs_xts_new(key, NULL)
                                                   : NULL;
        if (img == NULL || orig == NULL || ctx == NULL) {
            ok = 0;
            goto next;
        }
        memcpy(orig, img, len);
        if (nvs_xts_image(ctx, img, len, 0) != 0)
            ok = 0;
        for (p = 0; ok && p < len / NVS_PAGE_SIZE; p++) {
            const uint8_t *pg = img + p * NVS_PAGE_SIZE;
            unsigned i = 0;

            if (nvs_get_u32(pg) == NVS_PAGE_EMPTY)
                continue;
            while (i < NVS_ENTRIES_PER_PAGE) {
                const uint8_t *e = pg + NVS_FIRST_ENTRY_OFFSET + 32 * i;
                uint8_t crcbuf[28];

                if (entry_state(pg, i) == NVS_ENTRY_STATE_EMPTY) {
                    i++;
                    continue;
                }
                memcpy(crcbuf, e, 4);
                memcpy(crcbuf + 4, e + 8, 24);
                if (e[NVS_ENTRY_SPAN] == 0 ||
                    nvs_get_u32(e + NVS_ENTRY_CRC) != crc(crcbuf, 28)) {
                    ok = 0;
                    break;
                }
                i += e[NVS_ENTRY_SPAN];
            }
        }
        if (ok && (nvs_xts_image(ctx, img, len, 1) != 0 ||
                   memcmp(img, orig, len) != 0))
            ok = 0;
    next:
        snprintf(what, sizeof what,
                 "random %s: decrypts to valid items, re-encrypts", name);
        check(ok, what);
        nvs_xts_free(ctx);
        free(img);
        free(orig);
    }
    check(tested > 0, "random: found encrypted cases");
    printf("random: %d encrypted cases checked\n", tested);
}

/* Not a check: how many images per second, with a fresh key per image. */
static void bench(const char *dir)
{
    uint8_t key[64];
    uint8_t *plain, *work;
    size_t len = 0;
    int i, n = 20000, written = 0;
    unsigned e;
    clock_t t0;
    double secs;

    plain = load(dir, "multipage-v2/expected.bin", &len);
    if (plain == NULL)
        return;
    work = malloc(len);
    for (e = 0; e < NVS_ENTRIES_PER_PAGE * (len / NVS_PAGE_SIZE); e++)
        if (entry_state(plain + (e / 126) * NVS_PAGE_SIZE, e % 126) !=
            NVS_ENTRY_STATE_EMPTY)
            written++;
    t0 = clock();
    for (i = 0; work != NULL && i < n; i++) {
        nvs_xts_ctx *ctx;

        memcpy(work, plain, len);
        nvs_keys_generate(key);
        ctx = nvs_xts_new(key, NULL);
        nvs_xts_image(ctx, work, len, 1);
        nvs_xts_free(ctx);
    }
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("bench: %d images of %d entries in %.2f s: %.0f images/s, "
           "%.0f ns/entry\n",
           n, written, secs, n / secs, secs * 1e9 / ((double)n * written));
    free(plain);
    free(work);
}

int main(int argc, char **argv)
{
    int a = 1, do_bench = 0;

    if (a < argc && strcmp(argv[a], "--bench") == 0) {
        do_bench = 1;
        a++;
    }
    test_strerror();
    test_sha256();
    test_pbkdf2();
    test_random();
    test_keys_errors();
    test_xts_api();
    if (a < argc)
        test_idf_samples(argv[a]);
    else
        printf("no vector directory given: vector checks skipped\n");
    if (a + 1 < argc)
        test_random_cases(argv[a + 1]);
    if (do_bench && a < argc)
        bench(argv[a]);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed == 0 ? 0 : 1;
}
