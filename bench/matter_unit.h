/*
 * matter_unit.h - the per-unit work of benchmark W2 (a Matter unit) in
 * bare C, for floor.c's "matter" mode: the same OpenSSL calls as the
 * recipe examples/matter.lua makes through nvsgen, with nothing around
 * them.
 */
#ifndef MATTER_UNIT_H
#define MATTER_UNIT_H

#include <stddef.h>

#include <openssl/types.h>

typedef struct {
    X509 *pai;
    EVP_PKEY *pai_key;
    int iterations;
} matter_bench;

/* Loads the PAI (certificate and key, PEM files); 0 or -1. */
int matter_setup(matter_bench *m, const char *cert_path, const char *key_path);

/* One unit: passcode, discriminator, salt, SPAKE2+ verifier, DAC key and
 * certificate; its outputs (as the recipe stores them) are copied into
 * image[0 .. size). 0 or -1. */
int matter_unit(const matter_bench *m, unsigned char *image, size_t size);

#endif
