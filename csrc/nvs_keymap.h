/*
 * nvs_keymap.h - a map from (namespace index, key) to a number, the index
 * the encoder (which keys a namespace already holds) and the reader (which
 * entry holds a key) both need.
 *
 * Keys are compared as the firmware compares them: the first NVS_KEY_MAX
 * bytes of the name, up to its NUL.  A zeroed nvs_keymap is an empty map;
 * memory is taken only as keys are added.
 */
#ifndef NVS_KEYMAP_H
#define NVS_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

#include "nvs_format.h"
#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

/* What nvs_keymap_get returns for a key the map does not hold, and what
 * nvs_keymap_add returns when it runs out of memory: never a value. */
#define NVS_KEYMAP_NONE ((size_t)-1)

/* Namespace byte, then the key NUL-padded to NVS_KEY_MAX + 1 bytes. */
#define NVS_KEYMAP_KEY_SIZE (1u + NVS_KEY_MAX + 1u)

typedef struct nvs_keymap {
    uint8_t (*keys)[NVS_KEYMAP_KEY_SIZE];
    size_t *vals;   /* NVS_KEYMAP_NONE marks a free slot */
    size_t cap;     /* 0 or a power of two, at least twice n */
    size_t n;       /* keys held */
} nvs_keymap;

/* The value stored for (ns, key), or NVS_KEYMAP_NONE. */
size_t nvs_keymap_get(const nvs_keymap *m, uint8_t ns, const char *key);

/* Makes room for `more` new keys, so that adding them cannot fail:
 * 0, or -1 when out of memory (the map is left as it was). */
int nvs_keymap_reserve(nvs_keymap *m, size_t more);

/* Stores `val` (anything but NVS_KEYMAP_NONE) for (ns, key) unless the key
 * is there already; returns the value now stored for it, or
 * NVS_KEYMAP_NONE when out of memory (the map is left as it was). */
size_t nvs_keymap_add(nvs_keymap *m, uint8_t ns, const char *key, size_t val);

/* Forgets every key, keeping the memory for the next use. */
void nvs_keymap_clear(nvs_keymap *m);

/* Releases the memory; the map is then empty (zeroed). */
void nvs_keymap_free(nvs_keymap *m);

NVS_HIDDEN_END

#endif
