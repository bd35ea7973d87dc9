/*
 * nvs_file.c - atomic, permission-aware file writes (POSIX).
 */
#include "nvs_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int nvs_write_file(const char *path, const void *data, size_t len, mode_t mode, int replace)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    int fd, rc;
    if (tmp == NULL)
        return -ENOMEM;
    /* A dot-prefixed name would be nicer, but the folder part of `path` is
     * not parsed here; the suffix marks it as ours and unfinished. */
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        free(tmp);
        return rc;
    }
    /* mkstemp creates the file 0600; widen it only when asked. */
    rc = fchmod(fd, mode) < 0 ? -errno : 0;
    if (rc == 0)
        rc = write_all(fd, (const unsigned char *)data, len);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0) {
        if (replace)
            rc = rename(tmp, path) < 0 ? -errno : 0;
        else
            rc = link(tmp, path) < 0 ? -errno : 0;
    }
    /* After a rename the temporary name is gone; after link or a failure it
     * must go. */
    if (!replace || rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}
