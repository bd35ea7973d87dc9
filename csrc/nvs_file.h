/*
 * nvs_file.h - output files that are never seen half-written, and whole-file reads.
 */
#ifndef NVS_FILE_H
#define NVS_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes `len` bytes to `path` through a temporary file in the same folder
 * that is renamed into place once complete, so a reader (or a batch killed
 * at any moment) sees either the old state or the whole new file.
 * `mode` sets the permissions (0600 for secrets).  With `replace` == 0 an
 * existing `path` is left alone and -EEXIST returned; the check and the
 * creation are one atomic step (link), so two writers cannot both win.
 * Returns 0 or a negative errno value. */
int nvs_write_file(const char *path, const void *data, size_t len, mode_t mode, int replace);

/* Writes `len` bytes to `path` with one open/write/close and nothing else:
 * for files whose completeness the caller vouches for some other way (a
 * pending name renamed later, a record written after).  With `exclusive`
 * an existing `path` is refused (-EEXIST), otherwise it is truncated.
 * `mode` applies, less the umask, to a file it creates.  Returns 0 or a
 * negative errno value. */
int nvs_write_direct(const char *path, const void *data, size_t len, mode_t mode, int exclusive);

/* Reads the whole file at `path` into a new buffer (malloc'd, NUL after
 * the last byte so text can be used in place; the caller frees it) and
 * its length.  One open, fstat, read and close for a file whose size
 * fstat gives, so a per-unit certificate costs a few system calls and
 * no stdio.  Returns 0 or a negative errno value (-EISDIR for a folder). */
int nvs_read_file(const char *path, unsigned char **data, size_t *len);

#endif
