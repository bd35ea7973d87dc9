/*
 * test_stage.c - checks for nvs_stage.c, in a fresh folder under /tmp.
 *
 *   test_stage
 *
 * Units are staged, dropped, abandoned, discarded and put in place; after
 * each step the folder must hold exactly the files expected, and the
 * records exactly the bytes staged.  Prints "N passed, N failed"; exits 1
 * on a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvs_file.h"
#include "nvs_stage.h"

static int n_passed, n_failed;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    if (ok) {
        n_passed++;
        return;
    }
    n_failed++;
    printf("FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static char dir[64];

/* The names in the test folder, sorted and joined with spaces. */
static const char *listing(void)
{
    static char out[4096];
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort), k;
    out[0] = '\0';
    for (k = 0; k < n; k++) {
        if (names[k]->d_name[0] != '.') {
            if (out[0] != '\0')
                strcat(out, " ");
            strcat(out, names[k]->d_name);
        }
        free(names[k]);
    }
    free(names);
    return out;
}

static void same_listing(const char *want, const char *step)
{
    const char *got = listing();
    check(strcmp(got, want) == 0, "%s: folder holds '%s', expected '%s'", step, got, want);
}

static void same_records(const nvs_stage *s, size_t units, const char *want)
{
    size_t len;
    const char *got = nvs_stage_records(s, units, &len);
    check(len == strlen(want) && memcmp(got, want, len) == 0, "records of %zu units: '%.*s', expected '%s'",
          units, (int)len, got, want);
}

static mode_t mode_of(int folder, const char *name)
{
    struct stat st;
    return fstatat(folder, name, &st, 0) == 0 ? st.st_mode & 07777 : 0;
}

int main(void)
{
    nvs_stage *s;
    int folder, rc;
    const char *failed = NULL;
    strcpy(dir, "/tmp/nvsgen-test-stage-XXXXXX");
    if (mkdtemp(dir) == NULL || (folder = nvs_folder_open(dir)) < 0) {
        perror("test folder");
        return 1;
    }
    s = nvs_stage_new(folder);
    check(s != NULL, "a stage is made");
    if (s == NULL)
        return 1;

    /* Two units, staged: pending names only, records kept in order. */
    check(nvs_stage_write(s, "u1-keys.bin", "k1", 2, 0600) == 0, "u1 keys written");
    check(nvs_stage_write(s, "u1.bin", "image1", 6, 0644) == 0, "u1 image written");
    check(nvs_stage_end_unit(s, "1,u1\r\n", 6) == 0, "u1 ended");
    check(nvs_stage_write(s, "u2.bin", "image2", 6, 0644) == 0, "u2 image written");
    check(nvs_stage_end_unit(s, "2,u2\r\n", 6) == 0, "u2 ended");
    check(nvs_stage_units(s) == 2, "2 units staged");
    same_listing("u1-keys.bin.part u1.bin.part u2.bin.part", "staged");
    same_records(s, 2, "1,u1\r\n2,u2\r\n");
    same_records(s, 1, "1,u1\r\n");
    check(mode_of(folder, "u1-keys.bin.part") == 0600, "keys file is 0600");

    /* A unit half-way abandoned: its files go, the ended units stay. */
    check(nvs_stage_write(s, "u3-keys.bin", "k3", 2, 0600) == 0, "u3 keys written");
    nvs_stage_abandon(s);
    same_listing("u1-keys.bin.part u1.bin.part u2.bin.part", "abandoned");

    /* A name planted at a pending name is refused and left alone. */
    check(nvs_write_direct_at(folder, "u3.bin.part", "theirs", 6, 0644, 1) == 0, "planted");
    rc = nvs_stage_write(s, "u3.bin", "image3", 6, 0644);
    check(rc == -EEXIST, "planted pending name refused (%d)", rc);
    same_listing("u1-keys.bin.part u1.bin.part u2.bin.part u3.bin.part", "planted");
    nvs_remove_at(folder, "u3.bin.part");

    /* The newest unit dropped (a full disk): its files and record go. */
    nvs_stage_drop_newest(s);
    check(nvs_stage_units(s) == 1, "1 unit left after the drop");
    same_listing("u1-keys.bin.part u1.bin.part", "dropped");
    same_records(s, 1, "1,u1\r\n");

    /* Put in place: every file under its name, the stage empty. */
    rc = nvs_stage_put_in_place(s, 0, &failed);
    check(rc == 0, "put in place (%d)", rc);
    check(nvs_stage_units(s) == 0, "stage empty after");
    same_listing("u1-keys.bin u1.bin", "in place");

    /* A name taken in the meantime is refused; the files from there on
     * keep their pending names, the stage is empty. */
    check(nvs_stage_write(s, "u4.bin", "image4", 6, 0644) == 0, "u4 image written");
    check(nvs_stage_end_unit(s, "4,u4\r\n", 6) == 0, "u4 ended");
    check(nvs_stage_write(s, "u1.bin", "again", 5, 0644) == 0, "u1 again written");
    check(nvs_stage_write(s, "u5.bin", "image5", 6, 0644) == 0, "u5 image written");
    check(nvs_stage_end_unit(s, "1,u1\r\n5,u5\r\n", 12) == 0, "u1+u5 ended");
    rc = nvs_stage_put_in_place(s, 0, &failed);
    check(rc == -EEXIST && failed != NULL && strcmp(failed, "u1.bin") == 0, "taken name refused (%d %s)",
          rc, failed ? failed : "(null)");
    check(nvs_stage_units(s) == 0, "stage empty after a failure");
    same_listing("u1-keys.bin u1.bin u1.bin.part u4.bin u5.bin.part", "taken");
    nvs_remove_at(folder, "u1.bin.part");
    nvs_remove_at(folder, "u5.bin.part");

    /* Discard: every pending file goes, the one being staged too. */
    check(nvs_stage_write(s, "u6.bin", "image6", 6, 0644) == 0, "u6 image written");
    check(nvs_stage_end_unit(s, "6,u6\r\n", 6) == 0, "u6 ended");
    check(nvs_stage_write(s, "u7.bin", "image7", 6, 0644) == 0, "u7 image written");
    nvs_stage_discard(s);
    check(nvs_stage_units(s) == 0, "stage empty after the discard");
    same_listing("u1-keys.bin u1.bin u4.bin", "discarded");

    /* A name too long for a path is refused before anything is written. */
    {
        char name[5000];
        memset(name, 'a', sizeof name - 1);
        name[sizeof name - 1] = '\0';
        check(nvs_stage_write(s, name, "x", 1, 0644) == -ENAMETOOLONG, "long name refused");
    }

    nvs_stage_free(s);
    nvs_remove_at(folder, "u1-keys.bin");
    nvs_remove_at(folder, "u1.bin");
    nvs_remove_at(folder, "u4.bin");
    nvs_folder_close(folder);
    rmdir(dir);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
