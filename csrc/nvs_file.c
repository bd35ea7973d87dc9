/*
 * nvs_file.c - atomic, permission-aware file writes and whole-file reads (POSIX).
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* O_TMPFILE, linkat */
#endif
#include "nvs_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
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

/* The process's umask, read once from /proc (reading it with umask() would
 * change it for a moment); -1 where it cannot be read. */
static int process_umask(void)
{
    static int cached = -2;
    if (cached == -2) {
        FILE *f = fopen("/proc/self/status", "r");
        char line[128];
        unsigned mask;
        cached = -1;
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            if (sscanf(line, "Umask: %o", &mask) == 1) {
                cached = (int)(mask & 0777);
                break;
            }
        if (f != NULL)
            fclose(f);
    }
    return cached;
}

/* Gives fd exactly `mode`, whatever the umask; skips the system call when
 * the umask left the mode it was created with as wanted (most files). */
static int set_mode(int fd, mode_t mode)
{
    int mask = process_umask();
    if (mask >= 0 && mode <= 0777 && (mode & (mode_t)mask) == 0)
        return 0;
    return fchmod(fd, mode) < 0 ? -errno : 0;
}

#ifdef O_TMPFILE
/* Names an unnamed file `name` in `folder`: by its descriptor where the
 * process may (it needs CAP_DAC_READ_SEARCH on older kernels; remembered
 * after the first refusal), else through its /proc/self/fd link.  Returns
 * 0 or errno. */
static int link_unnamed(int fd, int folder, const char *name)
{
    static int empty_path_ok = 1;
    char proc[64];
#ifdef AT_EMPTY_PATH
    if (empty_path_ok) {
        if (linkat(fd, "", folder, name, AT_EMPTY_PATH) == 0)
            return 0;
        if (errno != EPERM && errno != ENOENT && errno != EINVAL)
            return errno;
        empty_path_ok = 0;
    }
#else
    (void)empty_path_ok;
#endif
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, folder, name, AT_SYMLINK_FOLLOW) < 0 ? errno : 0;
}

/* Linux, no replacing: an unnamed file in the folder `name` goes in, given
 * its name by linkat once complete.  One directory change per file instead
 * of three (create, link, unlink), and nothing to clean up if the process
 * dies.  Returns 1 when the folder's file system (or a missing /proc) does
 * not allow it, so that the caller takes the portable way. */
static int write_unnamed(int folder, const char *name, const void *data, size_t len, mode_t mode)
{
    const char *slash = strrchr(name, '/');
    size_t dlen = slash == NULL ? 1 : slash == name ? 1 : (size_t)(slash - name);
    char *dir = malloc(dlen + 1);
    int fd, rc;
    if (dir == NULL)
        return -ENOMEM;
    if (slash == NULL)
        memcpy(dir, ".", 1);
    else
        memcpy(dir, name, dlen);
    dir[dlen] = '\0';
    fd = openat(folder, dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode & 0777);
    rc = fd < 0 ? errno : 0;
    free(dir);
    if (fd < 0)
        return rc == EOPNOTSUPP || rc == EISDIR || rc == EINVAL ? 1 : -rc;
    rc = set_mode(fd, mode); /* exactly `mode`, whatever the umask */
    if (rc == 0)
        rc = write_all(fd, (const unsigned char *)data, len);
    if (rc == 0) {
        rc = link_unnamed(fd, folder, name);
        if (rc != 0)
            rc = rc == ENOENT ? 1 : -rc; /* ENOENT: no /proc (the folder exists) */
    }
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}
#endif

/* Creates a new file `tmp` (mode 0600) in `folder`: `tmp` holds a name
 * ending in ".tmp-XXXXXX", whose last six characters are replaced until a
 * name is free, as mkstemp(3) does (which knows no folder descriptor).
 * O_EXCL makes a name that is taken, or a planted link, a retry, never a
 * file shared with someone else.  Returns the descriptor or a negative
 * errno value. */
static int create_temporary(int folder, char *tmp)
{
    static const char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static unsigned long counter;
    char *x = tmp + strlen(tmp) - 6;
    int attempt;
    for (attempt = 0; attempt < 1000; attempt++) {
        struct timespec ts;
        unsigned long long v;
        int i, fd;
        clock_gettime(CLOCK_REALTIME, &ts);
        /* Names need only be unlikely to be taken: O_EXCL does the rest. */
        v = ((unsigned long long)ts.tv_nsec << 16) ^ (unsigned long long)ts.tv_sec ^
            ((unsigned long long)getpid() << 32) ^ (++counter * 0x9E3779B97F4A7C15ULL);
        for (i = 0; i < 6; i++) {
            x[i] = letters[v % (sizeof letters - 1)];
            v /= sizeof letters - 1;
        }
        fd = openat(folder, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd < 0 ? -errno : fd;
    }
    return -EEXIST;
}

int nvs_write_direct_at(int folder, const char *name, const void *data, size_t len, mode_t mode,
                        int exclusive)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL | O_NOFOLLOW : O_TRUNC);
    int fd = openat(folder, name, flags, mode & 07777);
    int rc;
    if (fd < 0)
        return -errno;
    rc = write_all(fd, (const unsigned char *)data, len);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

int nvs_folder_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void nvs_folder_close(int folder)
{
    close(folder);
}

int nvs_rename_at(int folder, const char *from, const char *to)
{
    return renameat(folder, from, folder, to) < 0 ? -errno : 0;
}

int nvs_write_file_at(int folder, const char *name, const void *data, size_t len, mode_t mode,
                      int replace)
{
    size_t nlen = strlen(name);
    char *tmp;
    int fd, rc;
#ifdef O_TMPFILE
    if (!replace) {
        rc = write_unnamed(folder, name, data, len, mode);
        if (rc <= 0)
            return rc;
    }
#endif
    tmp = malloc(nlen + 16);
    if (tmp == NULL)
        return -ENOMEM;
    /* A dot-prefixed name would be nicer, but the folder part of `name` is
     * not parsed here; the suffix marks it as ours and unfinished. */
    memcpy(tmp, name, nlen);
    memcpy(tmp + nlen, ".tmp-XXXXXX", 12);
    fd = create_temporary(folder, tmp);
    if (fd < 0) {
        free(tmp);
        return fd;
    }
    /* The file is created 0600; widen it only when asked. */
    rc = fchmod(fd, mode) < 0 ? -errno : 0;
    if (rc == 0)
        rc = write_all(fd, (const unsigned char *)data, len);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0) {
        if (replace)
            rc = renameat(folder, tmp, folder, name) < 0 ? -errno : 0;
        else
            rc = linkat(folder, tmp, folder, name, 0) < 0 ? -errno : 0;
    }
    /* After a rename the temporary name is gone; after link or a failure it
     * must go. */
    if (!replace || rc != 0)
        unlinkat(folder, tmp, 0);
    free(tmp);
    return rc;
}

int nvs_open_append_at(int folder, const char *name, int how, mode_t mode)
{
    int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC;
    struct stat st;
    int fd, rc = 0;
    if (how == NVS_OPEN_CREATE)
        flags |= O_CREAT;
    else if (how == NVS_OPEN_NEW)
        flags |= O_CREAT | O_EXCL;
    fd = openat(folder, name, flags, mode & 07777);
    if (fd < 0)
        return errno == ELOOP ? -EINVAL : -errno; /* ELOOP: a symbolic link */
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (st.st_nlink > 1)
        rc = -EMLINK;
    else if ((st.st_mode & 07777) != (mode & 07777) && fchmod(fd, mode & 07777) < 0)
        rc = -errno;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int nvs_append(int fd, const void *data, size_t len, int locked, int sync, off_t *end)
{
    off_t before;
    int rc = 0;
    if (locked) {
        while (flock(fd, LOCK_EX) < 0)
            if (errno != EINTR)
                return -errno;
    }
    before = lseek(fd, 0, SEEK_END);
    if (before < 0)
        rc = -errno;
    if (rc == 0) {
        rc = write_all(fd, (const unsigned char *)data, len);
        /* A part of the bytes may have gone in: take them out again (only
         * safe while the appenders take turns). */
        if (rc != 0 && locked)
            (void)ftruncate(fd, before);
    }
    if (rc == 0 && sync && fdatasync(fd) < 0)
        rc = -errno;
    /* Where this write ended: the offset an O_APPEND write leaves on this
     * open file (another process may have appended since `before`). */
    if (rc == 0 && end != NULL && (*end = lseek(fd, 0, SEEK_CUR)) < 0)
        rc = -errno;
    if (locked)
        flock(fd, LOCK_UN);
    return rc;
}

int nvs_rename_new_at(int folder, const char *from, const char *to, int replace)
{
    if (replace)
        return nvs_rename_at(folder, from, to);
#if defined(__linux__) && defined(RENAME_NOREPLACE)
    if (renameat2(folder, from, folder, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
#endif
    /* Where renaming cannot refuse an existing name, a link can. */
    if (linkat(folder, from, folder, to, 0) < 0)
        return -errno;
    return unlinkat(folder, from, 0) < 0 ? -errno : 0;
}

int nvs_remove_at(int folder, const char *name)
{
    if (unlinkat(folder, name, 0) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int nvs_sync_folder(int folder)
{
#ifdef __linux__
    return syncfs(folder) < 0 ? -errno : 0;
#else
    (void)folder;
    sync();
    return 0;
#endif
}

int nvs_read_file(const char *path, unsigned char **data, size_t *len)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t cap, used = 0;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    /* The size is a hint: files of /proc say 0, a file may grow. One byte
     * more than the size lets the first read see the end of the file. */
    cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    for (;;) {
        ssize_t n;
        if (buf == NULL || used == cap) {
            unsigned char *grown;
            if (buf != NULL) {
                if (cap > ((size_t)-1 - 1) / 2) {
                    rc = -EFBIG; /* the doubled size (and its NUL) would wrap */
                    break;
                }
                cap *= 2;
            }
            grown = realloc(buf, cap + 1);
            if (grown == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = grown;
        }
        n = read(fd, buf + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        /* As much as fstat said: the whole file, without one more read to
         * see its end (files of /proc and /sys say other sizes and are
         * read to the end). */
        if (S_ISREG(st.st_mode) && (off_t)used == st.st_size)
            break;
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[used] = 0;
    *data = buf;
    *len = used;
    return 0;
}
