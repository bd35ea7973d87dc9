/*
 * floor.c - the speed floor for the batch benchmark: writes N files of SIZE
 * bytes into DIR with open/write/close and nothing else, and prints the
 * seconds it took.  Usage: floor DIR [N [SIZE]]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 2 ? strtol(argv[2], NULL, 0) : 10000;
    long size = argc > 3 ? strtol(argv[3], NULL, 0) : 0x6000;
    char path[4096];
    unsigned char *data;
    double t0;
    long i;
    if (argc < 2 || n <= 0 || size <= 0) {
        fprintf(stderr, "usage: floor DIR [N [SIZE]]\n");
        return 2;
    }
    data = malloc((size_t)size);
    if (data == NULL)
        return 1;
    memset(data, 0xff, (size_t)size);
    t0 = now();
    for (i = 0; i < n; i++) {
        int fd;
        /* Make each file differ a little, as the images do. */
        memcpy(data, &i, sizeof i);
        snprintf(path, sizeof path, "%s/unit-%ld.bin", argv[1], i);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, data, (size_t)size) != (ssize_t)size || close(fd) != 0) {
            perror(path);
            return 1;
        }
    }
    printf("%.6f\n", now() - t0);
    free(data);
    return 0;
}
