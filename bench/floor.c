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
 *             language: the image written under a pending name, its
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
 *             (OpenSSL's CSPRNG), the image's 53 written entries (as
 *             many as a W1 image has) encrypted with it, each its own
 *             AES-XTS data unit as the format wants, and the 4096-byte
 *             keys file beside the image: the best such a batch can do;
 *   mfg       what mfg_gen must do for every unit whatever its language:
 *             read the unit's value file (DIR/cert.der, 1,200 bytes, made
 *             before the clock starts), then write the unit's CSV (300
 *             bytes, to DIR/csv) and its image (to DIR/bin), each
 *             atomically as mfg_gen does (an unnamed file linked into its
 *             folder opened once; Linux only);
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

enum mode { PLAIN, REQUIRED, KEYS, MFG, MATTER, MFGKEYS };

/* What every unit's loop needs: the output folder (opened once), the
 * image's bytes, the fetched SHA-256. */
typedef struct {
    const char *dir_path;
    int dir;
    unsigned char *data;
    size_t size;
    EVP_MD *sha256;
    /* keys mode: AES-256-XTS, fetched once, and a context rekeyed per unit */
    EVP_CIPHER *xts;
    EVP_CIPHER_CTX *xts_ctx;
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

/* Entries written in a W1 image, each encrypted as one XTS data unit. */
#define W1_ENTRIES 53

/* A new key in `keys_data` (the keys file: the key, the rest 0xFF), and
 * the image's first W1_ENTRIES entries encrypted with it (an entry's tweak
 * is its offset). */
static int new_key_encrypt(const bench *b, unsigned char keys_data[4096])
{
    unsigned char tweak[16] = {0};
    long e;
    memset(keys_data, 0xff, 4096);
    if (RAND_bytes(keys_data, 64) != 1 ||
        !EVP_CipherInit_ex2(b->xts_ctx, b->xts, keys_data, NULL, 1, NULL)) {
        fprintf(stderr, "key failed\n");
        return -1;
    }
    for (e = 0; e < W1_ENTRIES; e++) {
        long offset = 64 + 32 * e; /* after the page header and bitmap */
        unsigned char *entry = b->data + offset;
        int outl;
        memcpy(tweak, &offset, sizeof offset); /* little-endian x86 */
        if (!EVP_CipherInit_ex2(b->xts_ctx, NULL, NULL, tweak, -1, NULL) ||
            !EVP_CipherUpdate(b->xts_ctx, entry, &outl, entry, 32)) {
            fprintf(stderr, "encryption failed\n");
            return -1;
        }
    }
    return 0;
}

/* What a key per unit adds: the key made, the image encrypted with it,
 * and the keys file written beside the image `path`. */
static int key_unit(const bench *b, const char *path)
{
    unsigned char keys_data[4096];
    char keys_path[80];
    if (new_key_encrypt(b, keys_data) != 0)
        return -1;
    snprintf(keys_path, sizeof keys_path, "%s-keys.bin", path);
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
} group;

/* Commits the staged units: files on the disk, their records appended
 * and flushed, then the renames. */
static int commit_group(const bench *b, group *g)
{
    char path[64], pending[80], record[128];
    long i;
    if (g->count == 0)
        return 0;
    if (syncfs(b->dir) != 0) {
        perror("syncfs");
        return -1;
    }
    for (i = g->first; i < g->first + g->count; i++) {
        int len = snprintf(record, sizeof record, "%ld,unit-%ld.bin,%zu,<sha256>\n", i, i, b->size);
        if (write(g->manifest, record, (size_t)len) != len) {
            perror("manifest");
            return -1;
        }
    }
    if (fdatasync(g->manifest) != 0) {
        perror("fdatasync");
        return -1;
    }
    for (i = g->first; i < g->first + g->count; i++) {
        snprintf(path, sizeof path, "unit-%ld.bin", i);
        snprintf(pending, sizeof pending, "%s.part", path);
        if (renameat(b->dir, pending, b->dir, path) != 0) {
            perror(path);
            return -1;
        }
    }
    g->first += g->count;
    g->count = 0;
    g->committed = now();
    return 0;
}

static int required_unit(const bench *b, group *g, long i, int keys)
{
    char path[64], pending[80];
    unsigned char digest[EVP_MAX_MD_SIZE];
    snprintf(path, sizeof path, "unit-%ld.bin", i);
    snprintf(pending, sizeof pending, "%s.part", path);
    if (keys && key_unit(b, path) != 0)
        return -1;
    if (!EVP_Digest(b->data, b->size, digest, NULL, b->sha256, NULL)) {
        fprintf(stderr, "SHA-256 failed\n");
        return -1;
    }
    if (write_file(b->dir, pending, b->data, b->size) != 0)
        return -1;
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

static int mfg_unit(const bench *b, long i)
{
    char name[64], value[4096], text[300];
    struct stat st;
    int fd = openat(b->dir, "cert.der", O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0 || read(fd, value, sizeof value) != st.st_size) {
        perror("cert.der");
        return -1;
    }
    close(fd);
    memset(text, 'x', sizeof text);
    snprintf(name, sizeof name, "unit-%ld.csv", i);
    if (write_atomic(b->csv_dir, name, text, sizeof text) != 0)
        return -1;
    snprintf(name, sizeof name, "unit-%ld.bin", i);
    return write_atomic(b->bin_dir, name, b->data, b->size);
}

/* What mfg_gen --keygen adds to a unit: the key made, the image encrypted,
 * the keys file written atomically into keys/ (as mfg_gen names it). */
static int mfg_keys_unit(const bench *b, long i)
{
    unsigned char keys_data[4096];
    char name[64];
    if (new_key_encrypt(b, keys_data) != 0)
        return -1;
    snprintf(name, sizeof name, "keys-unit-%ld.bin", i);
    if (write_atomic(b->keys_dir, name, keys_data, sizeof keys_data) != 0)
        return -1;
    return mfg_unit(b, i);
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
static int mfg_unit(const bench *b, long i)
{
    (void)b;
    (void)i;
    return -1;
}

static int mfg_keys_unit(const bench *b, long i)
{
    (void)b;
    (void)i;
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
    double t0;
    long i;
    int rc = 0;
    if (argc < 2 || n <= 0 || size <= 0 || first < 0 || mode < 0) {
        fprintf(stderr, "usage: floor DIR [N [SIZE [plain|required|keys|mfg|matter|mfgkeys [FIRST]]]]\n");
        return 2;
    }
    b.dir_path = argv[1];
    b.size = (size_t)size;
    b.data = malloc(b.size);
    b.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    b.xts = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
    b.xts_ctx = EVP_CIPHER_CTX_new();
    b.dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (b.data == NULL || b.sha256 == NULL || b.xts == NULL || b.xts_ctx == NULL || b.dir < 0) {
        perror(argv[1]);
        return 1;
    }
    memset(b.data, 0xff, b.size);
    if ((mode == MFG || mode == MFGKEYS) && mfg_setup(&b) != 0)
        return 1;
    if (mode == MATTER && matter_setup(&mb, getenv("BENCH_PAI_CERT") ? getenv("BENCH_PAI_CERT") : "",
                                       getenv("BENCH_PAI_KEY") ? getenv("BENCH_PAI_KEY") : "") != 0)
        return 1;
    t0 = now();
    g.first = first;
    g.committed = t0;
    if (mode == REQUIRED || mode == KEYS || mode == MATTER) {
        char name[64];
        snprintf(name, sizeof name, "manifest-%ld.csv", first);
        g.manifest = openat(b.dir, name, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (g.manifest < 0) {
            perror(name);
            return 1;
        }
    }
    for (i = first; rc == 0 && i < first + n; i++) {
        /* Make each file differ a little, as the images do. */
        memcpy(b.data, &i, sizeof i);
        switch (mode) {
        case PLAIN:
            rc = plain_unit(&b, i);
            break;
        case REQUIRED:
        case KEYS:
            rc = required_unit(&b, &g, i, mode == KEYS);
            break;
        case MFGKEYS:
            rc = mfg_keys_unit(&b, i);
            break;
        case MATTER:
            rc = matter_unit(&mb, b.data + sizeof i, b.size - sizeof i);
            if (rc == 0)
                rc = required_unit(&b, &g, i, 0);
            break;
        default:
            rc = mfg_unit(&b, i);
            break;
        }
    }
    if (rc == 0 && g.manifest > 0)
        rc = commit_group(&b, &g);
    if (rc != 0)
        return 1;
    printf("%.6f\n", now() - t0);
    if (g.manifest > 0)
        close(g.manifest);
    close(b.dir);
    EVP_MD_free(b.sha256);
    EVP_CIPHER_CTX_free(b.xts_ctx);
    EVP_CIPHER_free(b.xts);
    free(b.data);
    return 0;
}
