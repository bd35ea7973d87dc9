/*
 * nvs_stage.h - a batch's units staged: files under pending names, records
 * kept until the group of units is committed.
 *
 * A unit's files are written under their names plus NVS_PENDING_SUFFIX,
 * each created new (never through a planted link, never over another's
 * file).  Once the records of a group of units are on the disk (the
 * caller appends them to its manifest), the files are renamed to their
 * names.  Keeping the names and records here, in C, spares the batch
 * driver a few Lua strings and table stores per file of every unit.
 */
#ifndef NVS_STAGE_H
#define NVS_STAGE_H

#include <stddef.h>
#include <sys/types.h>

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

/* What a staged file's name ends with until its unit is recorded. */
#define NVS_PENDING_SUFFIX ".part"

typedef struct nvs_stage nvs_stage;

/* An empty stage for the files of folder `folder` (nvs_folder_open's
 * descriptor, which stays the caller's), or NULL when out of memory. */
nvs_stage *nvs_stage_new(int folder);
void nvs_stage_free(nvs_stage *s);

/* Writes `len` bytes as file `name` NVS_PENDING_SUFFIX, created new with
 * `mode`, as a file of the unit being staged.  Returns 0 or a negative
 * errno value (the file is then not there, the unit's others are). */
int nvs_stage_write(nvs_stage *s, const char *name, const void *data, size_t len, mode_t mode);

/* Ends the unit being staged (its files those written since the last
 * unit ended) with its manifest record.  0, or -ENOMEM. */
int nvs_stage_end_unit(nvs_stage *s, const char *record, size_t len);

/* Removes the pending files of the unit being staged (one that failed
 * half-way); the units ended before stay. */
void nvs_stage_abandon(nvs_stage *s);

/* The number of units staged (ended). */
size_t nvs_stage_units(const nvs_stage *s);

/* The records of the first `units` units staged, one after the other
 * (*len bytes; not NUL-terminated). */
const char *nvs_stage_records(const nvs_stage *s, size_t units, size_t *len);

/* Removes the pending files of the newest unit staged, which is staged no
 * longer (what a full disk leaves no room to record). */
void nvs_stage_drop_newest(nvs_stage *s);

/* Renames every staged file from its pending name to its name, in the
 * order written; with `replace` == 0 a name that exists is left alone
 * (-EEXIST).  Returns 0, or a negative errno value with *failed set to
 * the name it stopped at (valid until the stage is next changed; the
 * files from there on keep their pending names).  The stage is empty
 * afterwards either way. */
int nvs_stage_put_in_place(nvs_stage *s, int replace, const char **failed);

/* Removes the pending files of every unit staged, and of the unit being
 * staged; the stage is empty. */
void nvs_stage_discard(nvs_stage *s);

NVS_HIDDEN_END

#endif
