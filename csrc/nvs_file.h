/*
 * nvs_file.h - output files that are never seen half-written, and whole-file reads.
 */
#ifndef NVS_FILE_H
#define NVS_FILE_H

#include <fcntl.h> /* AT_FDCWD */
#include <stddef.h>
#include <sys/types.h>

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

/* A batch names thousands of files in one output folder.  Opened once
 * (nvs_folder_open), the folder's descriptor lets each file be named by
 * its name alone (openat, renameat): the kernel then does not walk the
 * folder's path again for every create and rename.  nvs_folder_open
 * returns a descriptor (the caller closes it) or a negative errno value. */
int nvs_folder_open(const char *path);
void nvs_folder_close(int folder);
/* The `folder` argument that means the process's current folder: names
 * are then paths, relative to it or absolute. */
#define NVS_CURRENT_FOLDER AT_FDCWD

/* Writes `len` bytes to file `name` in `folder` through a temporary file
 * in the same folder that is renamed into place once complete, so a
 * reader (or a batch killed at any moment) sees either the old state or
 * the whole new file.  `mode` sets the permissions (0600 for secrets).
 * With `replace` == 0 an existing file is left alone and -EEXIST
 * returned; the check and the creation are one atomic step (link), so two
 * writers cannot both win.  Returns 0 or a negative errno value. */
int nvs_write_file_at(int folder, const char *name, const void *data, size_t len, mode_t mode,
                      int replace);

/* Writes `len` bytes to file `name` in `folder` with one open/write/close
 * and nothing else: for files whose completeness the caller vouches for
 * some other way (a pending name renamed later, a record written after).
 * With `exclusive` an existing file is refused (-EEXIST), otherwise it is
 * truncated.  `mode` applies, less the umask, to a file it creates.
 * Returns 0 or a negative errno value. */
int nvs_write_direct_at(int folder, const char *name, const void *data, size_t len, mode_t mode,
                        int exclusive);

/* rename(2) of `from` to `to`, both names in `folder`: 0 or a negative
 * errno value. */
int nvs_rename_at(int folder, const char *from, const char *to);

/* How nvs_open_append_at treats an existing file. */
enum { NVS_OPEN_EXISTING, NVS_OPEN_CREATE, NVS_OPEN_NEW };

/* Opens file `name` in `folder` for appending (a batch's manifest and
 * chunk file): O_APPEND, never through a symbolic link (O_NOFOLLOW), and
 * only a plain file with no other hard link (-EINVAL, -EMLINK otherwise),
 * so a name planted by someone else is refused rather than written
 * through.  `how` is one of the enum above.  The file gets exactly `mode`
 * (a file that had other permissions is changed), so a file of secrets
 * stays owner-only whoever made it.  Returns the descriptor or a negative
 * errno value. */
int nvs_open_append_at(int folder, const char *name, int how, mode_t mode);

/* Appends `len` bytes to `fd` (from nvs_open_append_at).  With `locked`,
 * the processes appending to the file take turns (flock) and the append
 * goes in whole or not at all: on a short write (a full disk) the file is
 * cut back to where it ended, so no half record stays behind.  (Without,
 * appends of one byte, as the chunk file's, need no cutting back.)  With
 * `sync` the bytes are on the disk (fdatasync) before it returns.  Sets
 * *end to where this write ended.  Returns 0 or a negative errno value. */
int nvs_append(int fd, const void *data, size_t len, int locked, int sync, off_t *end);

/* Like nvs_rename_at, but with `replace` == 0 an existing `to` is left
 * alone and -EEXIST returned, in one atomic step (renameat2's
 * RENAME_NOREPLACE, or link and unlink where the file system lacks it). */
int nvs_rename_new_at(int folder, const char *from, const char *to, int replace);

/* Removes `name` from `folder` (never what a link points to); a name that
 * is not there is no error.  Returns 0 or a negative errno value. */
int nvs_remove_at(int folder, const char *name);

/* Puts everything written to the file system of `folder` on the disk
 * (syncfs; sync where there is none).  Returns 0 or a negative errno. */
int nvs_sync_folder(int folder);

/* Reads the whole file at `path` into a new buffer (malloc'd, NUL after
 * the last byte so text can be used in place; the caller frees it) and
 * its length.  One open, fstat, read and close for a file whose size
 * fstat gives, so a per-unit certificate costs a few system calls and
 * no stdio.  Returns 0 or a negative errno value (-EISDIR for a folder). */
int nvs_read_file(const char *path, unsigned char **data, size_t *len);

NVS_HIDDEN_END

#endif
