/*
 * nvs_keymap.c - open addressing with linear probing, kept at most half
 * full so that probes stay short; keys are at most 17 bytes, so they live
 * in the table itself.
 */
#include "nvs_keymap.h"

#include <stdlib.h>
#include <string.h>

#define FIRST_CAP 64u

static void make_key(uint8_t out[NVS_KEYMAP_KEY_SIZE], uint8_t ns, const char *key)
{
    unsigned i;
    memset(out, 0, NVS_KEYMAP_KEY_SIZE);
    out[0] = ns;
    for (i = 0; i < NVS_KEY_MAX && key[i]; i++)
        out[1 + i] = (uint8_t)key[i];
}

/* The slot holding k, or the free slot where it belongs; cap must be > 0. */
static size_t find_slot(const nvs_keymap *m, const uint8_t k[NVS_KEYMAP_KEY_SIZE])
{
    /* FNV-1a: keys are short, and this only spreads them over the table. */
    uint32_t h = 2166136261u;
    unsigned i;
    size_t s;
    for (i = 0; i < NVS_KEYMAP_KEY_SIZE; i++)
        h = (h ^ k[i]) * 16777619u;
    for (s = h & (m->cap - 1);
         m->vals[s] != NVS_KEYMAP_NONE && memcmp(m->keys[s], k, NVS_KEYMAP_KEY_SIZE) != 0;
         s = (s + 1) & (m->cap - 1))
        ;
    return s;
}

size_t nvs_keymap_get(const nvs_keymap *m, uint8_t ns, const char *key)
{
    uint8_t k[NVS_KEYMAP_KEY_SIZE];
    if (m->cap == 0)
        return NVS_KEYMAP_NONE;
    make_key(k, ns, key);
    return m->vals[find_slot(m, k)];
}

int nvs_keymap_reserve(nvs_keymap *m, size_t more)
{
    nvs_keymap big;
    size_t cap = m->cap ? m->cap : FIRST_CAP, j;
    if (more > ((size_t)-1) / 4 - m->n)
        return -1;
    while ((m->n + more) * 2 > cap) {
        if (cap > ((size_t)-1) / 2 / sizeof *m->keys)
            return -1;
        cap *= 2;
    }
    if (cap == m->cap)
        return 0;
    big.cap = cap;
    big.n = m->n;
    big.keys = (uint8_t(*)[NVS_KEYMAP_KEY_SIZE])malloc(cap * sizeof *big.keys);
    big.vals = (size_t *)malloc(cap * sizeof *big.vals);
    if (big.keys == NULL || big.vals == NULL) {
        free(big.keys);
        free(big.vals);
        return -1;
    }
    for (j = 0; j < cap; j++)
        big.vals[j] = NVS_KEYMAP_NONE;
    for (j = 0; j < m->cap; j++)
        if (m->vals[j] != NVS_KEYMAP_NONE) {
            size_t s = find_slot(&big, m->keys[j]);
            memcpy(big.keys[s], m->keys[j], NVS_KEYMAP_KEY_SIZE);
            big.vals[s] = m->vals[j];
        }
    free(m->keys);
    free(m->vals);
    *m = big;
    return 0;
}

size_t nvs_keymap_add(nvs_keymap *m, uint8_t ns, const char *key, size_t val)
{
    uint8_t k[NVS_KEYMAP_KEY_SIZE];
    size_t s;
    if ((m->n + 1) * 2 > m->cap && nvs_keymap_reserve(m, 1) != 0)
        return NVS_KEYMAP_NONE;
    make_key(k, ns, key);
    s = find_slot(m, k);
    if (m->vals[s] == NVS_KEYMAP_NONE) {
        memcpy(m->keys[s], k, NVS_KEYMAP_KEY_SIZE);
        m->vals[s] = val;
        m->n++;
    }
    return m->vals[s];
}

void nvs_keymap_clear(nvs_keymap *m)
{
    /* NVS_KEYMAP_NONE is SIZE_MAX, all bits set: one memset frees every
     * slot (an encoder clears its map for every unit of a batch). */
    if (m->cap > 0)
        memset(m->vals, 0xFF, m->cap * sizeof *m->vals);
    m->n = 0;
}

void nvs_keymap_free(nvs_keymap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
