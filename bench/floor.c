/*
 * floor.c - the reference loops of the batch benchmark.
 *
 * Usage: floor DIR [N [SIZE [MODE [FIRST]]]]
 *
 * Writes N files of SIZE bytes (units FIRST .. FIRST+N-1) into DIR and
 * prints the seconds it took.  MODE says how much of a batch's work each
 * file costs:
 *   plain     open/write/close and nothing else: the floor the targets of
 *             the benchmark are relative to;
 *   required  what the batch driver must do for every image whatever its
 *             language: the unit's W1 image built by the project's C
 *             encoder (csrc/nvs_encoder.c: namespace mass_prod, the seven
 *             items of bench/w1.lua, the secret from OpenSSL's CSPRNG),
 *             written under a pending name, its
 *             SHA-256 for the manifest, the rename into place, done as
 *             the driver does them (names relative to the folder opened
 *             once, SHA-256 fetched once), and what makes "a record before
 *             the image it describes" survive a power cut: units are
 *             committed in groups (at least GROUP units and COMMIT_SECONDS
 *             since the last commit, or GROUP_MAX units), each group's
 *             files put on the disk (syncfs), its manifest lines appended
 *             and flushed (fdatasync), and only then its files renamed.
 *             Run as two processes side by side it shows the best a
 *             2-core machine can do, before any image is built;
 *   keys      required, plus what a key per unit adds: the key made
 *             (OpenSSL's CSPRNG), the image encrypted with it by the C
 *             core (nvs_xts_image: every page, each entry its own AES-XTS
 *             data unit as the format wants), and the 4096-byte keys file
 *             beside the image: the best such a batch can do;
 *   mfg       what mfg_gen must do for every unit whatever its language:
 *             read the unit's value file (DIR/cert.der, 1,200 bytes, made
 *             before the clock starts), build the unit's W1 image with the
 *             C encoder (its values as a values row gives them), then
 *             write the unit's CSV (300 bytes, to DIR/csv) and its image
 *             (to DIR/bin), each atomically as mfg_gen does (an unnamed
 *             file linked into its folder opened once; Linux only);
 *   mfgkeys   mfg, plus what --keygen adds: the key made, the image's
 *             entries encrypted with it (as in keys mode), and the keys
 *             file written atomically into DIR/keys;
 *   matter    required, after the work of a Matter unit (benchmark W2,
 *             matter_unit.c): passcode, SPAKE2+ verifier at 1,000
 *             iterations, a P-256 key and its DAC signed by the PAI in
 *             $BENCH_PAI_CERT and $BENCH_PAI_KEY, the results in the image.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* O_TMPFILE, AT_EMPTY_PATH */
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "matter_unit.h"
#include "nvs_codec.h"
#include "nvs_crypto.h"
#include "nvs_encoder.h"

enum mode { PLAIN, REQUIRED, KEYS, MFG, MATTER, MFGKEYS };

/* What every unit's loop needs: the output folder (opened once), the
 * image's bytes, the fetched SHA-256. */
typedef struct {
    const char *dir_path;
    int dir;
    const unsigned char *data;
    size_t size;
    EVP_MD *sha256;
    /* the W1 image of the unit (required, keys, mfg, mfgkeys) */
    nvs_encoder encoder;
    char secret[32]; /* its DeviceSecret, for the manifest */
    /* keys modes: the C core's AES-XTS context, rekeyed per unit, and the
     * encrypted copy of the image */
    nvs_xts_ctx *xts;
    unsigned char *encrypted;
    /* mfg mode (used only where O_TMPFILE is defined, which cppcheck
     * does not see) */
    /* cppcheck-suppress unusedStructMember */
    int csv_dir;
    /* cppcheck-suppress unusedStructMember */
    int bin_dir;
    /* cppcheck-suppress unusedStructMember */
    int keys_dir;
} bench;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `path` is relative to the folder `dir` (or to the current folder,
 * AT_FDCWD). */
static int write_file(int dir, const char *path, const unsigned char *data, size_t size)
{
    int fd = openat(dir, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

static int plain_unit(const bench *b, long i)
{
    char path[4200];
    /* The simplest loop: a path per file. */
    snprintf(path, sizeof path, "%s/unit-%ld.bin", b->dir_path, i);
    return write_file(AT_FDCWD, path, b->data, b->size);
}

/* The 1,200-byte certificate every W1 unit holds (bench/w1.lua's CERT). */
static unsigned char w1_cert[1200];

/* Builds unit `serial`'s W1 image in b->encoder (bench/w1.lua's items);
 * `secret` is the DeviceSecret's 32 hex digits, or NULL for 16 bytes from
 * the CSPRNG (as u:random_hex(32)); `cert` the Cert blob. b->data and b->size become the image. */
static int build_w1(bench *b, long serial, const char *secret, const unsigned char *cert,
                    size_t cert_len)
{
    nvs_encoder *e = &b->encoder;
    char name[32], hex[33];
    unsigned char mac[6] = {0x24, 0x0a};
    int n = snprintf(name, sizeof name, "acme-%ld", serial), k, rc;
    if (secret == NULL) {
        unsigned char random[16];
        if (nvs_random_bytes(random, sizeof random) != 0)
            return -1;
        nvs_hex_encode(random, sizeof random, hex);
        secret = hex;
    }
    memcpy(b->secret, secret, 32);
    for (k = 0; k < 4; k++)
        mac[2 + k] = (unsigned char)((unsigned long)serial >> (24 - 8 * k));
    nvs_encoder_reset(e);
    rc = nvs_encoder_namespace(e, "mass_prod", 9);
    if (rc == 0)
        rc = nvs_encoder_put_str(e, "ProductID", 9, (const uint8_t *)"ACME-W1", 7);
    if (rc == 0)
        rc = nvs_encoder_put_str(e, "DeviceName", 10, (const uint8_t *)name, (size_t)n);
    if (rc == 0)
        rc = nvs_encoder_put_str(e, "DeviceSecret", 12, (const uint8_t *)secret, 32);
    if (rc == 0)
        rc = nvs_encoder_put_int(e, "Serial", 6, NVS_TYPE_U32, serial);
    if (rc == 0)
        rc = nvs_encoder_put_blob(e, "MAC", 3, mac, sizeof mac);
    if (rc == 0)
        rc = nvs_encoder_put_int(e, "HwRev", 5, NVS_TYPE_U8, 3);
    if (rc == 0)
        rc = nvs_encoder_put_blob(e, "Cert", 4, cert, cert_len);
    if (rc != 0) {
        fprintf(stderr, "encoder: %s\n", nvs_encoder_strerror(rc));
        return -1;
    }
    b->data = nvs_encoder_image(e, &b->size);
    return 0;
}

/* A new key in `keys_data` (the keys partition, as nvs_keys_build makes it), and
 * the image encrypted with it by the C core into b->encrypted, which
 * becomes b->data. */
static int new_key_encrypt(bench *b, unsigned char keys_data[4096])
{
    uint8_t key[NVS_XTS_KEY_SIZE];
    if (nvs_keys_generate(key) != 0 || nvs_xts_rekey(b->xts, key) != 0 ||
        nvs_keys_build(keys_data, key) != 0) {
        fprintf(stderr, "key failed\n");
        return -1;
    }
    memcpy(b->encrypted, b->data, b->size);
    if (nvs_xts_image(b->xts, b->encrypted, b->size, 1) != 0) {
        fprintf(stderr, "encryption failed\n");
        return -1;
    }
    b->data = b->encrypted;
    return 0;
}

/* What a key per unit adds: the key made, the image encrypted with it,
 * and the keys file written (pending) beside the image of unit i. */
static int key_unit(bench *b, long i)
{
    unsigned char keys_data[4096];
    char keys_path[80];
    if (new_key_encrypt(b, keys_data) != 0)
        return -1;
    snprintf(keys_path, sizeof keys_path, "unit-%ld-keys.bin.part", i);
    return write_file(b->dir, keys_path, keys_data, sizeof keys_data);
}

/* The batch driver's commit cadence (nvsgen.batch GROUP, GROUP_MAX,
 * COMMIT_SECONDS). */
#define GROUP 256
#define GROUP_MAX 4096
#define COMMIT_SECONDS 0.5

/* The units staged since the last commit, and the manifest they go to. */
typedef struct {
    long first, count;
    double committed;
    int manifest;
    int keys; /* a keys file per unit to rename too */
    char *records; /* the staged units' manifest records */
    size_t records_len;
} group;

/* Room for GROUP_MAX records (serial, image, size, SHA-256, keys file,
 * DeviceSecret). */
#define RECORD_MAX 192

/* Commits the staged units: files on the disk, their records appended
 * and flushed, then the renames. */
static int commit_group(const bench *b, group *g)
{
    char path[64], pending[80];
    long i;
    if (g->count == 0)
        return 0;
    if (syncfs(b->dir) != 0) {
        perror("syncfs");
        return -1;
    }
    if (write(g->manifest, g->records, g->records_len) != (ssize_t)g->records_len) {
        perror("manifest");
        return -1;
    }
    g->records_len = 0;
    if (fdatasync(g->manifest) != 0) {
        perror("fdatasync");
        return -1;
    }
    for (i = g->first; i < g->first + g->count; i++) {
        int k;
        /* the keys file (if any), then the image, as the driver does */
        for (k = g->keys ? 0 : 1; k < 2; k++) {
            snprintf(path, sizeof path, k == 0 ? "unit-%ld-keys.bin" : "unit-%ld.bin", i);
            snprintf(pending, sizeof pending, "%s.part", path);
            if (renameat(b->dir, pending, b->dir, path) != 0) {
                perror(path);
                return -1;
            }
        }
    }
    g->first += g->count;
    g->count = 0;
    g->committed = now();
    return 0;
}

/* Unit i's pending image (and keys file), its record staged. */
static int required_unit(bench *b, group *g, long i, int keys)
{
    char path[64], pending[80], hash[2 * NVS_SHA256_SIZE + 1];
    unsigned char digest[EVP_MAX_MD_SIZE];
    snprintf(path, sizeof path, "unit-%ld.bin", i);
    snprintf(pending, sizeof pending, "%s.part", path);
    if (keys && key_unit(b, i) != 0)
        return -1;
    if (!EVP_Digest(b->data, b->size, digest, NULL, b->sha256, NULL)) {
        fprintf(stderr, "SHA-256 failed\n");
        return -1;
    }
    if (write_file(b->dir, pending, b->data, b->size) != 0)
        return -1;
    nvs_hex_encode(digest, NVS_SHA256_SIZE, hash);
    hash[2 * NVS_SHA256_SIZE] = '\0';
    g->records_len += (size_t)snprintf(g->records + g->records_len, RECORD_MAX,
                                       "%ld,%s,%zu,%s,%s,%.32s\n", i, path, b->size, hash,
                                       keys ? "keys" : "", b->secret);
    g->count++;
    if (g->count >= GROUP && (g->count >= GROUP_MAX || now() - g->committed >= COMMIT_SECONDS))
        return commit_group(b, g);
    return 0;
}

#ifdef O_TMPFILE
/* An unnamed file in `dir`, given its name once complete. */
static int write_atomic(int dir, const char *name, const void *data, size_t size)
{
    int fd = openat(dir, ".", O_TMPFILE | O_WRONLY, 0644);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size ||
        linkat(fd, "", dir, name, AT_EMPTY_PATH) != 0) {
        perror(name);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return close(fd);
}

static int mfg_unit(bench *b, long i, int keys)
{
    char name[64], text[300];
    unsigned char value[4096], keys_data[4096];
    struct stat st;
    int fd = openat(b->dir, "cert.der", O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0 || read(fd, value, sizeof value) != st.st_size) {
        perror("cert.der");
        return -1;
    }
    close(fd);
    if (build_w1(b, i, "0123456789abcdef0123456789abcdef", value, (size_t)st.st_size) != 0)
        return -1;
    if (keys) {
        /* What --keygen adds: the key made, the image encrypted, the keys
         * file written atomically into keys/ (as mfg_gen names it). */
        if (new_key_encrypt(b, keys_data) != 0)
            return -1;
        snprintf(name, sizeof name, "keys-unit-%ld.bin", i);
        if (write_atomic(b->keys_dir, name, keys_data, sizeof keys_data) != 0)
            return -1;
    }
    memset(text, 'x', sizeof text);
    snprintf(name, sizeof name, "unit-%ld.csv", i);
    if (write_atomic(b->csv_dir, name, text, sizeof text) != 0)
        return -1;
    snprintf(name, sizeof name, "unit-%ld.bin", i);
    return write_atomic(b->bin_dir, name, b->data, b->size);
}

/* The subfolders and the value file of the mfg loop, made before the clock
 * starts (either of two processes may make them first). */
static int mfg_setup(bench *b)
{
    unsigned char cert[1200];
    char temp[64];
    /* Written under this process's own name and renamed into place: the
     * other process may already be reading it. */
    memset(cert, 0x30, sizeof cert);
    snprintf(temp, sizeof temp, "cert.der.%ld", (long)getpid());
    if (write_file(b->dir, temp, cert, sizeof cert) != 0)
        return -1;
    if (renameat(b->dir, temp, b->dir, "cert.der") != 0) {
        perror("cert.der");
        return -1;
    }
    mkdirat(b->dir, "csv", 0755);
    mkdirat(b->dir, "bin", 0755);
    mkdirat(b->dir, "keys", 0755);
    b->csv_dir = openat(b->dir, "csv", O_RDONLY | O_DIRECTORY);
    b->bin_dir = openat(b->dir, "bin", O_RDONLY | O_DIRECTORY);
    b->keys_dir = openat(b->dir, "keys", O_RDONLY | O_DIRECTORY);
    if (b->csv_dir < 0 || b->bin_dir < 0 || b->keys_dir < 0) {
        perror("csv, bin, keys");
        return -1;
    }
    return 0;
}
#else
static int mfg_unit(bench *b, long i, int keys)
{
    (void)b;
    (void)i;
    (void)keys;
    return -1;
}

static int mfg_setup(bench *b)
{
    (void)b;
    fprintf(stderr, "mfg mode needs O_TMPFILE (Linux)\n");
    return -1;
}
#endif

static int parse_mode(const char *name)
{
    static const char *const names[] = {"plain", "required", "keys", "mfg", "matter", "mfgkeys"};
    int m;
    for (m = 0; m < 6; m++)
        if (strcmp(name, names[m]) == 0)
            return m;
    return -1;
}

int main(int argc, char **argv)
{
    long n = argc > 2 ? strtol(argv[2], NULL, 0) : 10000;
    long size = argc > 3 ? strtol(argv[3], NULL, 0) : 0x6000;
    int mode = parse_mode(argc > 4 ? argv[4] : "plain");
    long first = argc > 5 ? strtol(argv[5], NULL, 0) : 0;
    bench b = {0};
    matter_bench mb = {0};
    group g = {0};
    unsigned char *plain, keys_data[NVS_XTS_KEY_SIZE];
    double t0;
    long i;
    int rc = 0;
    if (argc < 2 || n <= 0 || size <= 0 || first < 0 || mode < 0) {
        fprintf(stderr, "usage: floor DIR [N [SIZE [plain|required|keys|mfg|matter|mfgkeys [FIRST]]]]\n");
        return 2;
    }
    b.dir_path = argv[1];
    b.size = (size_t)size;
    plain = malloc(b.size);
    b.encrypted = malloc(b.size);
    b.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    memset(keys_data, 0x5a, sizeof keys_data);
    keys_data[0] = 1; /* (the halves must differ) */
    b.xts = nvs_xts_new(keys_data, NULL);
    g.records = malloc((size_t)GROUP_MAX * RECORD_MAX);
    b.dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (plain == NULL || b.encrypted == NULL || b.sha256 == NULL || b.xts == NULL ||
        g.records == NULL || nvs_encoder_init(&b.encoder, b.size, 2) != 0 || b.dir < 0) {
        perror(argv[1]);
        rc = 1;
    }
    else if ((mode == MFG || mode == MFGKEYS) && mfg_setup(&b) != 0)
        rc = 1;
    else if (mode == MATTER &&
             matter_setup(&mb, getenv("BENCH_PAI_CERT") ? getenv("BENCH_PAI_CERT") : "",
                          getenv("BENCH_PAI_KEY") ? getenv("BENCH_PAI_KEY") : "") != 0)
        rc = 1;
    if (rc != 0)
        goto done;
    memset(plain, 0xff, b.size);
    memset(w1_cert, 0x30, sizeof w1_cert);
    t0 = now();
    g.first = first;
    g.keys = mode == KEYS;
    g.committed = t0;
    if (mode == REQUIRED || mode == KEYS || mode == MATTER) {
        char name[64];
        snprintf(name, sizeof name, "manifest-%ld.csv", first);
        g.manifest = openat(b.dir, name, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (g.manifest < 0) {
            perror(name);
            rc = 1;
        }
    }
    for (i = first; rc == 0 && i < first + n; i++) {
        /* Make each file differ a little, as the images do. */
        b.data = plain;
        b.size = (size_t)size;
        memcpy(plain, &i, sizeof i);
        switch (mode) {
        case PLAIN:
            rc = plain_unit(&b, i);
            break;
        case REQUIRED:
        case KEYS:
            rc = build_w1(&b, i, NULL, w1_cert, sizeof w1_cert);
            if (rc == 0)
                rc = required_unit(&b, &g, i, mode == KEYS);
            break;
        case MATTER:
            rc = matter_unit(&mb, plain + sizeof i, b.size - sizeof i);
            if (rc == 0)
                rc = required_unit(&b, &g, i, 0);
            break;
        default:
            rc = mfg_unit(&b, i, mode == MFGKEYS);
            break;
        }
    }
    if (rc == 0 && g.manifest > 0)
        rc = commit_group(&b, &g);
    if (rc == 0)
        printf("%.6f\n", now() - t0);
    if (g.manifest > 0)
        close(g.manifest);
done:
    if (b.dir >= 0)
        close(b.dir);
    EVP_MD_free(b.sha256);
    nvs_xts_free(b.xts);
    nvs_encoder_free(&b.encoder);
    free(b.encrypted);
    free(g.records);
    free(plain);
    return rc == 0 ? 0 : 1;
}
