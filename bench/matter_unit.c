/*
 * matter_unit.c - benchmark W2's unit in bare C (see matter_unit.h).
 */
#include "matter_unit.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

int matter_setup(matter_bench *m, const char *cert_path, const char *key_path)
{
    FILE *f = fopen(cert_path, "r");
    if (f == NULL) {
        perror(cert_path);
        return -1;
    }
    m->pai = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(key_path, "r");
    if (f == NULL) {
        perror(key_path);
        return -1;
    }
    m->pai_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    m->iterations = 1000;
    return m->pai != NULL && m->pai_key != NULL ? 0 : -1;
}

static unsigned long random_below(unsigned long n)
{
    unsigned long v, limit = (0xFFFFFFFFul / n) * n;
    unsigned char b[4];
    do {
        if (RAND_bytes(b, 4) != 1)
            return 0;
        v = (unsigned long)b[0] << 24 | (unsigned long)b[1] << 16 | (unsigned long)b[2] << 8 | b[3];
    } while (v >= limit);
    return v % n;
}

static int verifier(unsigned long passcode, const unsigned char *salt, int iterations,
                    unsigned char out[97])
{
    unsigned char pw[4] = {(unsigned char)passcode, (unsigned char)(passcode >> 8),
                           (unsigned char)(passcode >> 16), (unsigned char)(passcode >> 24)};
    unsigned char ws[80];
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *w0 = BN_new(), *w1 = BN_new();
    EC_POINT *L = g != NULL ? EC_POINT_new(g) : NULL;
    int ok = L != NULL && ctx != NULL && w0 != NULL && w1 != NULL &&
             PKCS5_PBKDF2_HMAC((const char *)pw, 4, salt, 32, iterations, EVP_sha256(), 80, ws) &&
             BN_bin2bn(ws, 40, w0) && BN_nnmod(w0, w0, EC_GROUP_get0_order(g), ctx) &&
             BN_bin2bn(ws + 40, 40, w1) && BN_nnmod(w1, w1, EC_GROUP_get0_order(g), ctx) &&
             BN_bn2binpad(w0, out, 32) == 32 && EC_POINT_mul(g, L, w1, NULL, NULL, ctx) &&
             EC_POINT_point2oct(g, L, POINT_CONVERSION_UNCOMPRESSED, out + 32, 65, ctx) == 65;
    EC_POINT_free(L);
    BN_clear_free(w0);
    BN_clear_free(w1);
    BN_CTX_free(ctx);
    EC_GROUP_free(g);
    return ok ? 0 : -1;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, const char *name, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_nconf(NULL, ctx, name, value);
    int ok = e != NULL && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* The DAC for key, signed by the PAI; NULL on failure. */
static X509 *dac(const matter_bench *m, EVP_PKEY *key, const char *cn)
{
    unsigned char serial[16], point[65];
    size_t n = 0;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    X509V3_CTX ctx;
    unsigned char *copy;
    int ok;
    if (x == NULL || name == NULL || RAND_bytes(serial, 16) != 1)
        goto fail;
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(serial, 16, NULL);
    sn = BN_to_ASN1_INTEGER(bn, NULL);
    ok = sn != NULL && X509_set_serialNumber(x, sn) && X509_set_version(x, 2) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) &&
         X509_NAME_add_entry_by_txt(name, "1.3.6.1.4.1.37244.2.1", MBSTRING_UTF8,
                                    (const unsigned char *)"FFF1", -1, -1, 0) &&
         X509_NAME_add_entry_by_txt(name, "1.3.6.1.4.1.37244.2.2", MBSTRING_UTF8,
                                    (const unsigned char *)"8001", -1, -1, 0) &&
         X509_set_subject_name(x, name) && X509_set_issuer_name(x, X509_get_subject_name(m->pai)) &&
         ASN1_TIME_set(X509_getm_notBefore(x), time(NULL)) != NULL &&
         ASN1_TIME_set(X509_getm_notAfter(x), (time_t)253402300799) != NULL &&
         EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         sizeof point, &n);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    X509_NAME_free(name);
    /* the key's curve and point, as nvsgen sets them (no encoder) */
    copy = ok ? OPENSSL_memdup(point, n) : NULL;
    if (copy == NULL ||
        !X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), copy, (int)n)) {
        OPENSSL_free(copy);
        X509_free(x);
        return NULL;
    }
    X509V3_set_ctx(&ctx, m->pai, x, NULL, NULL, 0);
    if (!add_ext(x, &ctx, "basicConstraints", "critical,CA:FALSE") ||
        !add_ext(x, &ctx, "keyUsage", "critical,digitalSignature") ||
        !add_ext(x, &ctx, "subjectKeyIdentifier", "hash") ||
        !add_ext(x, &ctx, "authorityKeyIdentifier", "keyid:always") ||
        X509_sign(x, m->pai_key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
fail:
    X509_NAME_free(name);
    X509_free(x);
    return NULL;
}

/* Copies len bytes at *at into the image, as the encoder stores a value. */
static void put(unsigned char *image, size_t size, size_t *at, const void *data, size_t len)
{
    if (*at + len > size)
        len = size - *at;
    memcpy(image + *at, data, len);
    *at += len;
}

int matter_unit(const matter_bench *m, unsigned char *image, size_t size)
{
    unsigned char salt[32], rd[16], id[16], v[97], d[32], pub[65];
    char salt64[48], v64[136], cn[40];
    unsigned char *der = NULL;
    unsigned long passcode, discriminator;
    size_t at = 0, n = 0;
    EVP_PKEY *key;
    BIGNUM *priv = NULL;
    X509 *x;
    BIO *bio;
    char *pem = NULL;
    long pem_len;
    int der_len, i;
    do
        passcode = 1 + random_below(99999998ul);
    while (passcode % 11111111ul == 0 || passcode == 12345678ul || passcode == 87654321ul);
    discriminator = random_below(4096);
    if (RAND_bytes(salt, 32) != 1 || RAND_bytes(rd, 16) != 1 || RAND_bytes(id, 16) != 1 ||
        verifier(passcode, salt, m->iterations, v) != 0)
        return -1;
    EVP_EncodeBlock((unsigned char *)salt64, salt, 32);
    EVP_EncodeBlock((unsigned char *)v64, v, 97);
    for (i = 0; i < 16; i++)
        snprintf(cn + 2 * i, 3, "%02x", id[i]);
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL || !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) ||
        BN_bn2binpad(priv, d, 32) != 32 ||
        !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, 65, &n))
        return -1;
    BN_clear_free(priv);
    x = dac(m, key, cn);
    EVP_PKEY_free(key);
    if (x == NULL)
        return -1;
    der_len = i2d_X509(x, &der);
    bio = BIO_new(BIO_s_mem());
    if (der_len <= 0 || bio == NULL || !PEM_write_bio_X509(bio, x))
        return -1;
    pem_len = BIO_get_mem_data(bio, &pem);
    put(image, size, &at, &discriminator, sizeof discriminator);
    put(image, size, &at, salt64, strlen(salt64));
    put(image, size, &at, rd, sizeof rd);
    put(image, size, &at, der, (size_t)der_len);
    put(image, size, &at, d, sizeof d);
    put(image, size, &at, pub, n);
    put(image, size, &at, v64, strlen(v64));
    put(image, size, &at, pem, (size_t)pem_len); /* stands for the manifest line */
    OPENSSL_cleanse(d, sizeof d);
    OPENSSL_free(der);
    BIO_free(bio);
    X509_free(x);
    return 0;
}
