/*
 * nvs_matter.c - SPAKE2+ verifier (PBKDF2 and P-256 arithmetic from
 * OpenSSL 3), passcode rules and Matter onboarding payloads.
 */
#include "nvs_matter.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

const char *nvs_matter_strerror(int err)
{
    switch (err) {
    case NVS_MATTER_OK:
        return "success";
    case NVS_MATTER_EINVAL:
        return "invalid argument";
    case NVS_MATTER_EPASSCODE:
        return "passcode out of range (1 to 99999998) or forbidden";
    case NVS_MATTER_ESALT:
        return "salt must be 16 to 32 bytes";
    case NVS_MATTER_EITERATIONS:
        return "iterations must be 1000 to 100000";
    case NVS_MATTER_EFIELD:
        return "payload field out of range";
    case NVS_MATTER_EOPENSSL:
        return "openssl operation failed";
    default:
        return "unknown error";
    }
}

int nvs_matter_passcode_valid(uint32_t passcode)
{
    if (passcode < 1 || passcode > NVS_MATTER_PASSCODE_MAX)
        return 0;
    /* 11111111 ... 99999999: eight equal digits */
    if (passcode % 11111111u == 0)
        return 0;
    return passcode != 12345678u && passcode != 87654321u;
}

/* x = the big-endian number in[0:len) mod the order, as 32 bytes. */
static int reduce(const uint8_t *in, size_t len, const BIGNUM *order, BN_CTX *ctx,
                  BIGNUM *x)
{
    return BN_bin2bn(in, (int)len, x) != NULL && BN_nnmod(x, x, order, ctx);
}

int nvs_matter_verifier(uint32_t passcode, const uint8_t *salt, size_t salt_len,
                        unsigned iterations, uint8_t out[NVS_MATTER_VERIFIER_SIZE])
{
    uint8_t pw[4], ws[80];
    EC_GROUP *group = NULL;
    EC_POINT *L = NULL;
    BN_CTX *ctx = NULL;
    BIGNUM *w0, *w1;
    const BIGNUM *order;
    int rc = NVS_MATTER_EOPENSSL;

    if (salt == NULL || out == NULL)
        return NVS_MATTER_EINVAL;
    if (!nvs_matter_passcode_valid(passcode))
        return NVS_MATTER_EPASSCODE;
    if (salt_len < NVS_MATTER_SALT_MIN || salt_len > NVS_MATTER_SALT_MAX)
        return NVS_MATTER_ESALT;
    if (iterations < NVS_MATTER_ITERATIONS_MIN || iterations > NVS_MATTER_ITERATIONS_MAX)
        return NVS_MATTER_EITERATIONS;
    pw[0] = (uint8_t)passcode;
    pw[1] = (uint8_t)(passcode >> 8);
    pw[2] = (uint8_t)(passcode >> 16);
    pw[3] = (uint8_t)(passcode >> 24);
    if (!PKCS5_PBKDF2_HMAC((const char *)pw, sizeof pw, salt, (int)salt_len, (int)iterations,
                           EVP_sha256(), sizeof ws, ws))
        goto done;
    group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    ctx = BN_CTX_secure_new();
    if (group == NULL || ctx == NULL)
        goto done;
    BN_CTX_start(ctx);
    w0 = BN_CTX_get(ctx);
    w1 = BN_CTX_get(ctx);
    order = EC_GROUP_get0_order(group);
    L = EC_POINT_new(group);
    if (w1 == NULL || order == NULL || L == NULL ||
        !reduce(ws, 40, order, ctx, w0) || !reduce(ws + 40, 40, order, ctx, w1) ||
        BN_bn2binpad(w0, out, 32) != 32 ||
        !EC_POINT_mul(group, L, w1, NULL, NULL, ctx) ||
        EC_POINT_point2oct(group, L, POINT_CONVERSION_UNCOMPRESSED, out + 32, 65, ctx) != 65)
        goto done;
    rc = NVS_MATTER_OK;
done:
    if (ctx != NULL) {
        BN_CTX_end(ctx); /* the secure context wipes w0 and w1 */
        BN_CTX_free(ctx);
    }
    EC_POINT_free(L);
    EC_GROUP_free(group);
    OPENSSL_cleanse(ws, sizeof ws);
    OPENSSL_cleanse(pw, sizeof pw);
    if (rc != NVS_MATTER_OK) {
        OPENSSL_cleanse(out, NVS_MATTER_VERIFIER_SIZE);
        ERR_clear_error();
    }
    return rc;
}

/* ---- onboarding payloads ------------------------------------------------------ */

static int payload_fields_ok(const nvs_matter_payload *p)
{
    return p->version <= 7 && p->vendor_id <= 0xFFFF && p->product_id <= 0xFFFF &&
           p->flow <= 2 && p->discovery <= 0xFF && p->discriminator <= 0xFFF;
}

/* Appends the low `bits` bits of value at bit offset *pos, least
 * significant bit first: the QR payload's fields follow one another from
 * the first byte's lowest bit up. */
static void put_bits(uint8_t *buf, unsigned *pos, uint32_t value, unsigned bits)
{
    unsigned i;

    for (i = 0; i < bits; i++, (*pos)++)
        if ((value >> i) & 1u)
            buf[*pos / 8] = (uint8_t)(buf[*pos / 8] | (1u << (*pos % 8)));
}

static const char base38_alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-.";

size_t nvs_base38_encode(const uint8_t *in, size_t len, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < len; i += 3) {
        size_t left = len - i, take = 3, k;
        unsigned digits = 5;
        uint32_t v = 0;
        /* a chunk is read little-endian and written least significant
         * digit first: 3 bytes need 5 digits, 2 need 4, 1 needs 2 */
        if (left < 3) {
            take = left;
            digits = left == 2 ? 4 : 2;
        }
        for (k = 0; k < take; k++)
            v |= (uint32_t)in[i + k] << (8 * k);
        for (k = 0; k < digits; k++) {
            out[o++] = base38_alphabet[v % 38];
            v /= 38;
        }
    }
    out[o] = '\0';
    return o;
}

int nvs_matter_qr(const nvs_matter_payload *p, char out[NVS_MATTER_QR_SIZE])
{
    uint8_t bits[11];
    unsigned pos = 0;

    if (p == NULL || out == NULL)
        return NVS_MATTER_EINVAL;
    if (!payload_fields_ok(p))
        return NVS_MATTER_EFIELD;
    if (!nvs_matter_passcode_valid(p->passcode))
        return NVS_MATTER_EPASSCODE;
    memset(bits, 0, sizeof bits);
    put_bits(bits, &pos, p->version, 3);
    put_bits(bits, &pos, p->vendor_id, 16);
    put_bits(bits, &pos, p->product_id, 16);
    put_bits(bits, &pos, p->flow, 2);
    put_bits(bits, &pos, p->discovery, 8);
    put_bits(bits, &pos, p->discriminator, 12);
    put_bits(bits, &pos, p->passcode, 27);
    /* 4 padding bits stay 0: 88 bits in all */
    memcpy(out, "MT:", 3);
    nvs_base38_encode(bits, sizeof bits, out + 3);
    return NVS_MATTER_OK;
}

/* The dihedral group D5 on 0-9: d(j, k), the Verhoeff scheme's product. */
static int d5(int j, int k)
{
    if (j < 5 && k < 5)
        return (j + k) % 5;
    if (j < 5)
        return 5 + (j + k - 5) % 5;
    if (k < 5)
        return 5 + (j - 5 - k + 5) % 5;
    return (j - k + 5) % 5;
}

/* The scheme's permutation applied `times` times to digit x. */
static int perm(int x, int times)
{
    static const int p1[10] = {1, 5, 7, 6, 2, 8, 3, 0, 9, 4};
    while (times-- > 0)
        x = p1[x];
    return x;
}

int nvs_verhoeff_check(const char *digits, size_t n)
{
    static const int inverse[10] = {0, 4, 3, 2, 1, 5, 6, 7, 8, 9};
    int c = 0;
    size_t i;

    if (digits == NULL)
        return -1;
    /* the rightmost digit gets the permutation once, the next twice, ...
     * (the check digit itself, to be appended, would take position 0) */
    for (i = 0; i < n; i++) {
        char ch = digits[n - 1 - i];
        if (ch < '0' || ch > '9')
            return -1;
        c = d5(c, perm(ch - '0', (int)((i + 1) % 8)));
    }
    return inverse[c];
}

int nvs_matter_manual(const nvs_matter_payload *p, char out[NVS_MATTER_MANUAL_SIZE])
{
    unsigned short_disc, vid_pid_present;
    int n, check;

    if (p == NULL || out == NULL)
        return NVS_MATTER_EINVAL;
    if (!payload_fields_ok(p))
        return NVS_MATTER_EFIELD;
    if (!nvs_matter_passcode_valid(p->passcode))
        return NVS_MATTER_EPASSCODE;
    /* the manual code carries the discriminator's top 4 bits only */
    short_disc = p->discriminator >> 8;
    vid_pid_present = p->flow != 0;
    n = snprintf(out, NVS_MATTER_MANUAL_SIZE, "%u%05u%04u",
                 (vid_pid_present << 2) | (short_disc >> 2),
                 ((short_disc & 3u) << 14) | (unsigned)(p->passcode & 0x3FFFu),
                 (unsigned)(p->passcode >> 14));
    if (vid_pid_present)
        n += snprintf(out + n, NVS_MATTER_MANUAL_SIZE - (size_t)n, "%05u%05u", p->vendor_id,
                      p->product_id);
    check = nvs_verhoeff_check(out, (size_t)n);
    if (check < 0)
        return NVS_MATTER_EINVAL;
    out[n] = (char)('0' + check);
    out[n + 1] = '\0';
    return NVS_MATTER_OK;
}
