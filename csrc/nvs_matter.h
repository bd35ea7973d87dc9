/*
 * nvs_matter.h - what a Matter device's factory data needs besides its
 * certificates: the SPAKE2+ verifier of its passcode (through OpenSSL 3),
 * the passcode rules, and its onboarding payloads (the "MT:" QR code text
 * in base-38 and the manual pairing code with its Verhoeff check digit).
 * Nothing here knows about Lua or keeps global state.
 */
#ifndef NVS_MATTER_H
#define NVS_MATTER_H

#include <stddef.h>
#include <stdint.h>

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

enum nvs_matter_err {
    NVS_MATTER_OK = 0,
    NVS_MATTER_EINVAL = -1,       /* NULL pointer */
    NVS_MATTER_EPASSCODE = -2,    /* passcode out of range or forbidden */
    NVS_MATTER_ESALT = -3,        /* salt not 16 to 32 bytes */
    NVS_MATTER_EITERATIONS = -4,  /* iterations not 1000 to 100000 */
    NVS_MATTER_EFIELD = -5,       /* a payload field too large for its bits */
    NVS_MATTER_EOPENSSL = -6      /* OpenSSL failed */
};

const char *nvs_matter_strerror(int err);

#define NVS_MATTER_PASSCODE_MAX 99999998u
#define NVS_MATTER_SALT_MIN 16u
#define NVS_MATTER_SALT_MAX 32u
#define NVS_MATTER_ITERATIONS_MIN 1000u
#define NVS_MATTER_ITERATIONS_MAX 100000u
#define NVS_MATTER_VERIFIER_SIZE 97u /* w0 (32) then L uncompressed (65) */

/* 1 if passcode may be used: 1 to 99999998 and none of 11111111 ...
 * 99999999, 12345678, 87654321 (00000000 is out of range already). */
int nvs_matter_passcode_valid(uint32_t passcode);

/*
 * The SPAKE2+ verifier: ws = PBKDF2-HMAC-SHA256(passcode as 4 bytes
 * little-endian, salt, iterations, 80 bytes); w0 = ws[0:40] mod n,
 * w1 = ws[40:80] mod n (n the P-256 group order); out = w0 (32 bytes,
 * big-endian) then L = w1 * G as an uncompressed point (65 bytes).
 */
int nvs_matter_verifier(uint32_t passcode, const uint8_t *salt, size_t salt_len,
                        unsigned iterations, uint8_t out[NVS_MATTER_VERIFIER_SIZE]);

typedef struct {
    unsigned version;       /* 3 bits, 0 */
    unsigned vendor_id;     /* 16 bits */
    unsigned product_id;    /* 16 bits */
    unsigned flow;          /* 2 bits: 0 standard, 1 user intent, 2 custom */
    unsigned discovery;     /* 8 bits: 1 SoftAP, 2 BLE, 4 on-network (may be or'ed) */
    unsigned discriminator; /* 12 bits */
    uint32_t passcode;      /* 27 bits, a valid passcode */
} nvs_matter_payload;

#define NVS_MATTER_QR_SIZE 23u     /* "MT:" + 19 characters + NUL */
#define NVS_MATTER_MANUAL_SIZE 22u /* 11 or 21 digits + NUL */

/* The QR code text of a payload without optional data. */
int nvs_matter_qr(const nvs_matter_payload *p, char out[NVS_MATTER_QR_SIZE]);

/* The manual pairing code: 11 digits, or 21 with the vendor and product
 * IDs when the flow is not standard; the last digit is the check digit. */
int nvs_matter_manual(const nvs_matter_payload *p, char out[NVS_MATTER_MANUAL_SIZE]);

/* Base-38 of len bytes (3 bytes to 5 characters, 2 to 4, 1 to 2); out
 * receives the characters and a NUL; returns their count. */
size_t nvs_base38_encode(const uint8_t *in, size_t len, char *out);

/* The Verhoeff check digit (0-9) of n decimal digits, or -1 if one of
 * them is not a digit. */
int nvs_verhoeff_check(const char *digits, size_t n);

NVS_HIDDEN_END

#endif
