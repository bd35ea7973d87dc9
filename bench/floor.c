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
 *             once, SHA-256 fetched once).  Run as two processes side by
 *             side it shows the best a 2-core machine can do, before any
 *             image is built;
 *   keys      required, plus the 4096-byte keys file a batch with a key per
 *             unit writes beside each image (no key made, nothing
 *             encrypted): the best such a batch can do.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

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

int main(int argc, char **argv)
{
    long n = argc > 2 ? strtol(argv[2], NULL, 0) : 10000;
    long size = argc > 3 ? strtol(argv[3], NULL, 0) : 0x6000;
    const char *mode = argc > 4 ? argv[4] : "plain";
    long first = argc > 5 ? strtol(argv[5], NULL, 0) : 0;
    int keys = strcmp(mode, "keys") == 0;
    int required = keys || strcmp(mode, "required") == 0;
    char path[4096], pending[4200], keys_path[4200];
    unsigned char keys_data[4096];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned char *data;
    EVP_MD *sha256;
    int dir;
    double t0;
    long i;
    if (argc < 2 || n <= 0 || size <= 0 || first < 0 || (!required && strcmp(mode, "plain") != 0)) {
        fprintf(stderr, "usage: floor DIR [N [SIZE [plain|required|keys [FIRST]]]]\n");
        return 2;
    }
    data = malloc((size_t)size);
    if (data == NULL)
        return 1;
    memset(data, 0xff, (size_t)size);
    memset(keys_data, 0xff, sizeof keys_data);
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    dir = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (sha256 == NULL || dir < 0) {
        perror(argv[1]);
        free(data);
        return 1;
    }
    t0 = now();
    for (i = first; i < first + n; i++) {
        /* Make each file differ a little, as the images do. */
        memcpy(data, &i, sizeof i);
        if (!required) {
            /* The simplest loop: a path per file. */
            snprintf(path, sizeof path, "%s/unit-%ld.bin", argv[1], i);
            if (write_file(AT_FDCWD, path, data, (size_t)size) != 0)
                return 1;
            continue;
        }
        snprintf(path, sizeof path, "unit-%ld.bin", i);
        snprintf(pending, sizeof pending, "%s.part", path);
        if (!EVP_Digest(data, (size_t)size, digest, NULL, sha256, NULL)) {
            fprintf(stderr, "SHA-256 failed\n");
            return 1;
        }
        if (keys) {
            memcpy(keys_data, &i, sizeof i);
            snprintf(keys_path, sizeof keys_path, "%s-keys.bin", path);
            if (write_file(dir, keys_path, keys_data, sizeof keys_data) != 0)
                return 1;
        }
        if (write_file(dir, pending, data, (size_t)size) != 0)
            return 1;
        if (renameat(dir, pending, dir, path) != 0) {
            perror(path);
            return 1;
        }
    }
    printf("%.6f\n", now() - t0);
    close(dir);
    EVP_MD_free(sha256);
    free(data);
    return 0;
}
