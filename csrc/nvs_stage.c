/*
 * nvs_stage.c - a batch's units staged: files under pending names, records
 * kept until the group of units is committed (see nvs_stage.h).
 */
#include "nvs_stage.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "nvs_file.h"

struct nvs_stage {
    int folder;
    /* The staged files' names, each NUL-terminated, one after the other;
     * file k's starts at name_at[k]. */
    char *names;
    size_t names_len, names_cap;
    size_t *name_at;
    size_t files, files_cap;
    /* The records, one after the other. */
    char *records;
    size_t records_len, records_cap;
    /* Per unit ended: the files and record bytes staged up to its end. */
    struct unit_end {
        size_t files, records;
    } *ends;
    size_t units, units_cap;
};

/* `items`, a block of *cap items of `size` bytes, with room for `need`:
 * the same block, or a larger one (*cap updated); NULL when out of memory
 * (`items` is then left as it was). */
static void *room(void *items, size_t *cap, size_t need, size_t size)
{
    size_t want = *cap ? *cap : 64;
    void *grown;
    if (need <= *cap)
        return items;
    while (want < need) {
        if (want > (size_t)-1 / 2 / size)
            return NULL;
        want *= 2;
    }
    grown = realloc(items, want * size);
    if (grown != NULL)
        *cap = want;
    return grown;
}

nvs_stage *nvs_stage_new(int folder)
{
    nvs_stage *s = (nvs_stage *)calloc(1, sizeof *s);
    if (s != NULL)
        s->folder = folder;
    return s;
}

void nvs_stage_free(nvs_stage *s)
{
    if (s == NULL)
        return;
    free(s->names);
    free(s->name_at);
    free(s->records);
    free(s->ends);
    free(s);
}

/* `name` NVS_PENDING_SUFFIX in `out` (PATH_MAX bytes): 0 or -ENAMETOOLONG. */
static int pending_name(const char *name, char *out)
{
    size_t len = strlen(name);
    if (len + sizeof NVS_PENDING_SUFFIX > PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(out, name, len);
    memcpy(out + len, NVS_PENDING_SUFFIX, sizeof NVS_PENDING_SUFFIX);
    return 0;
}

static void remove_pending(const nvs_stage *s, size_t file)
{
    char pending[PATH_MAX];
    if (pending_name(s->names + s->name_at[file], pending) == 0)
        nvs_remove_at(s->folder, pending);
}

int nvs_stage_write(nvs_stage *s, const char *name, const void *data, size_t len, mode_t mode)
{
    char pending[PATH_MAX];
    size_t name_len = strlen(name) + 1;
    int rc = pending_name(name, pending);
    /* Room first: a file written is always one the stage can remove. */
    if (rc == 0) {
        char *names = (char *)room(s->names, &s->names_cap, s->names_len + name_len, 1);
        if (names == NULL)
            rc = -ENOMEM;
        else
            s->names = names;
    }
    if (rc == 0) {
        size_t *name_at = (size_t *)room(s->name_at, &s->files_cap, s->files + 1, sizeof *s->name_at);
        if (name_at == NULL)
            rc = -ENOMEM;
        else
            s->name_at = name_at;
    }
    if (rc == 0) {
        rc = nvs_write_direct_at(s->folder, pending, data, len, mode, 1);
        /* A file cut short (a full disk) is removed; one that was there
         * already (-EEXIST) is not ours to remove. */
        if (rc != 0 && rc != -EEXIST)
            nvs_remove_at(s->folder, pending);
    }
    if (rc != 0)
        return rc;
    memcpy(s->names + s->names_len, name, name_len);
    s->name_at[s->files++] = s->names_len;
    s->names_len += name_len;
    return 0;
}

int nvs_stage_end_unit(nvs_stage *s, const char *record, size_t len)
{
    char *records = (char *)room(s->records, &s->records_cap, s->records_len + len, 1);
    struct unit_end *ends;
    if (records == NULL)
        return -ENOMEM;
    s->records = records;
    ends = (struct unit_end *)room(s->ends, &s->units_cap, s->units + 1, sizeof *s->ends);
    if (ends == NULL)
        return -ENOMEM;
    s->ends = ends;
    memcpy(s->records + s->records_len, record, len);
    s->records_len += len;
    s->ends[s->units].files = s->files;
    s->ends[s->units].records = s->records_len;
    s->units++;
    return 0;
}

/* Removes files `from` .. the last, which are staged no longer. */
static void remove_from(nvs_stage *s, size_t from)
{
    size_t k;
    if (from >= s->files)
        return;
    for (k = from; k < s->files; k++)
        remove_pending(s, k);
    /* The names before file `from` end where its name starts. */
    s->names_len = s->name_at[from];
    s->files = from;
}

void nvs_stage_abandon(nvs_stage *s)
{
    remove_from(s, s->units ? s->ends[s->units - 1].files : 0);
}

size_t nvs_stage_units(const nvs_stage *s)
{
    return s->units;
}

const char *nvs_stage_records(const nvs_stage *s, size_t units, size_t *len)
{
    if (units > s->units)
        units = s->units;
    *len = units ? s->ends[units - 1].records : 0;
    return s->records;
}

void nvs_stage_drop_newest(nvs_stage *s)
{
    if (s->units == 0)
        return;
    /* The unit being staged, if any, goes with it. */
    s->units--;
    remove_from(s, s->units ? s->ends[s->units - 1].files : 0);
    s->records_len = s->units ? s->ends[s->units - 1].records : 0;
}

static void clear(nvs_stage *s)
{
    s->files = s->names_len = s->records_len = s->units = 0;
}

int nvs_stage_put_in_place(nvs_stage *s, int replace, const char **failed)
{
    char pending[PATH_MAX];
    size_t k;
    int rc = 0;
    for (k = 0; k < s->files && rc == 0; k++) {
        const char *name = s->names + s->name_at[k];
        rc = pending_name(name, pending);
        if (rc == 0)
            rc = nvs_rename_new_at(s->folder, pending, name, replace);
        if (rc != 0)
            *failed = name;
    }
    /* Names stay readable until the next write (clear keeps the bytes). */
    clear(s);
    return rc;
}

void nvs_stage_discard(nvs_stage *s)
{
    remove_from(s, 0);
    clear(s);
}
