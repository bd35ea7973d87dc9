/*
 * nvs_identity.c - keys, certificates, requests, KDFs and uniform random
 * integers for per-unit identity, all through OpenSSL 3 (libcrypto).
 */
#include "nvs_identity.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "nvs_crypto.h"

const char *nvs_id_strerror(int err)
{
    switch (err) {
    case NVS_ID_OK:
        return "success";
    case NVS_ID_EINVAL:
        return "invalid argument";
    case NVS_ID_ENOMEM:
        return "out of memory";
    case NVS_ID_EOPENSSL:
        return "openssl operation failed";
    case NVS_ID_EKEYTYPE:
        return "unknown key type";
    case NVS_ID_EKEY:
        return "not a private key in PEM or DER";
    case NVS_ID_ECERT:
        return "not an X.509 certificate in PEM or DER";
    case NVS_ID_EMISMATCH:
        return "key does not match certificate";
    case NVS_ID_EFORM:
        return "encoding not available for this key type";
    case NVS_ID_ESUBJECT:
        return "subject field refused";
    case NVS_ID_EEXTENSION:
        return "extension refused";
    case NVS_ID_EVALIDITY:
        return "not-after is before not-before";
    case NVS_ID_EDIGEST:
        return "unknown digest";
    case NVS_ID_ERANDOM:
        return "os random generator failed";
    case NVS_ID_ENOTCA:
        return "certificate is not a CA certificate";
    case NVS_ID_EPUBLIC:
        return "key holds no private part";
    case NVS_ID_EENCRYPTED:
        return "an encrypted private key (decrypt it first: no passphrase is asked for)";
    default:
        return "unknown error";
    }
}

/* A core file of this process would hold every private key it has made
 * or read, a CA's included: once the first one exists, none is written
 * (soft and hard limits, so nothing later raises it again). Only the
 * limit: PR_SET_DUMPABLE would also make /proc/self/fd the root's, which
 * nvs_file's writes use. */
static void limit_core(void)
{
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
}

void nvs_id_no_core_dumps(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&once, limit_core);
}

/* Turns an OpenSSL failure into code rc after dropping its error queue, so a
 * stale entry is never taken later for the cause of another failure. */
static int failed(int rc)
{
    ERR_clear_error();
    return rc;
}

static void set_err(int *err, int rc)
{
    if (err != NULL)
        *err = rc;
}

/* A PEM reader must never prompt on the terminal for a passphrase: an
 * encrypted key is refused as unreadable. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int contains(const void *data, size_t len, const char *tag)
{
    const char *p = (const char *)data;
    size_t i, n = strlen(tag);

    for (i = 0; i + n <= len; i++)
        if (memcmp(p + i, tag, n) == 0)
            return 1;
    return 0;
}

static int looks_like_pem(const void *data, size_t len)
{
    return contains(data, len, "-----BEGIN");
}

/* PKCS#8 "ENCRYPTED PRIVATE KEY" or a traditional key's "Proc-Type: 4,ENCRYPTED". */
static int looks_encrypted_pem(const void *data, size_t len)
{
    return contains(data, len, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
           contains(data, len, "Proc-Type: 4,ENCRYPTED");
}

/* Copies a memory BIO's contents into an OPENSSL_malloc'd buffer. */
static int bio_take(BIO *b, uint8_t **out, size_t *len)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);

    if (n <= 0 || p == NULL)
        return NVS_ID_EOPENSSL;
    *out = (uint8_t *)OPENSSL_malloc((size_t)n);
    if (*out == NULL)
        return NVS_ID_ENOMEM;
    memcpy(*out, p, (size_t)n);
    *len = (size_t)n;
    return NVS_ID_OK;
}

/* Takes ownership of an i2d_* result: n > 0 bytes at buf. */
static int der_take(int n, uint8_t *buf, uint8_t **out, size_t *len)
{
    if (n <= 0 || buf == NULL)
        return failed(NVS_ID_EOPENSSL);
    *out = buf;
    *len = (size_t)n;
    return NVS_ID_OK;
}

/* ---- keys ------------------------------------------------------------------ */

/* Public points are given uncompressed whatever form the key was read in. */
static void prefer_uncompressed(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "EC"))
        (void)EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                             OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED);
    ERR_clear_error();
}

EVP_PKEY *nvs_id_key_generate(const char *type, int *err)
{
    EVP_PKEY *key = NULL;

    if (type == NULL) {
        set_err(err, NVS_ID_EINVAL);
        return NULL;
    }
    if (strcmp(type, "p256") == 0)
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (strcmp(type, "p384") == 0)
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    else if (strcmp(type, "ed25519") == 0)
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else if (strcmp(type, "rsa2048") == 0)
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else if (strcmp(type, "rsa3072") == 0)
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    else {
        set_err(err, NVS_ID_EKEYTYPE);
        return NULL;
    }
    if (key == NULL) {
        set_err(err, failed(NVS_ID_EOPENSSL));
        return NULL;
    }
    nvs_id_no_core_dumps();
    prefer_uncompressed(key);
    set_err(err, NVS_ID_OK);
    return key;
}

/* A key from PEM or DER: the private key when `private`, else the public
 * key (SubjectPublicKeyInfo).  NULL for bytes that are neither. */
static EVP_PKEY *parse_key(const void *data, size_t len, int private)
{
    EVP_PKEY *key = NULL;
    if (looks_like_pem(data, len)) {
        BIO *b = BIO_new_mem_buf(data, (int)len);
        if (b != NULL) {
            key = private ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL)
                          : PEM_read_bio_PUBKEY(b, NULL, no_passphrase, NULL);
            BIO_free(b);
        }
    } else {
        const unsigned char *p = (const unsigned char *)data;
        key = private ? d2i_AutoPrivateKey(NULL, &p, (long)len) : d2i_PUBKEY(NULL, &p, (long)len);
    }
    return key;
}

EVP_PKEY *nvs_id_key_load(const void *data, size_t len, int *err)
{
    EVP_PKEY *key;

    if (data == NULL || len == 0 || len > INT_MAX) {
        set_err(err, NVS_ID_EKEY);
        return NULL;
    }
    key = parse_key(data, len, 1);
    if (key == NULL) {
        int pem = looks_like_pem(data, len);
        set_err(err, failed(pem && looks_encrypted_pem(data, len) ? NVS_ID_EENCRYPTED
                                                                   : NVS_ID_EKEY));
        return NULL;
    }
    nvs_id_no_core_dumps();
    prefer_uncompressed(key);
    set_err(err, NVS_ID_OK);
    return key;
}

EVP_PKEY *nvs_id_pubkey_load(const void *data, size_t len, int *err)
{
    EVP_PKEY *key;

    if (data == NULL || len == 0 || len > INT_MAX) {
        set_err(err, NVS_ID_EKEY);
        return NULL;
    }
    key = parse_key(data, len, 0);
    if (key == NULL) {
        set_err(err, failed(NVS_ID_EKEY));
        return NULL;
    }
    prefer_uncompressed(key);
    set_err(err, NVS_ID_OK);
    return key;
}

const char *nvs_id_key_type(const EVP_PKEY *key)
{
    if (key == NULL)
        return NULL;
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64];
        size_t n = 0;
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof group, &n)) {
            ERR_clear_error();
            return NULL;
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
            return "p256";
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
            return "p384";
        return NULL;
    }
    if (EVP_PKEY_is_a(key, "ED25519"))
        return "ed25519";
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        return bits == 2048 ? "rsa2048" : bits == 3072 ? "rsa3072" : "rsa";
    }
    return NULL;
}

/* The raw private scalar (EC, curve size, big-endian) or seed (Ed25519). */
static int export_raw_private(const EVP_PKEY *key, uint8_t **out, size_t *len)
{
    if (EVP_PKEY_is_a(key, "EC")) {
        BIGNUM *d = NULL;
        int size = (EVP_PKEY_get_bits(key) + 7) / 8;
        uint8_t *buf;
        if (size <= 0 || !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d))
            return failed(NVS_ID_EPUBLIC);
        buf = (uint8_t *)OPENSSL_malloc((size_t)size);
        if (buf == NULL) {
            BN_clear_free(d);
            return NVS_ID_ENOMEM;
        }
        if (BN_bn2binpad(d, buf, size) != size) {
            BN_clear_free(d);
            OPENSSL_clear_free(buf, (size_t)size);
            return failed(NVS_ID_EOPENSSL);
        }
        BN_clear_free(d);
        *out = buf;
        *len = (size_t)size;
        return NVS_ID_OK;
    }
    if (EVP_PKEY_is_a(key, "ED25519")) {
        size_t n = 0;
        uint8_t *buf;
        if (!EVP_PKEY_get_raw_private_key(key, NULL, &n) || n == 0)
            return failed(NVS_ID_EPUBLIC);
        buf = (uint8_t *)OPENSSL_malloc(n);
        if (buf == NULL)
            return NVS_ID_ENOMEM;
        if (!EVP_PKEY_get_raw_private_key(key, buf, &n)) {
            OPENSSL_clear_free(buf, n);
            return failed(NVS_ID_EOPENSSL);
        }
        *out = buf;
        *len = n;
        return NVS_ID_OK;
    }
    return NVS_ID_EFORM;
}

static int export_raw_public(const EVP_PKEY *key, uint8_t **out, size_t *len)
{
    uint8_t buf[160];
    size_t n = 0;

    if (EVP_PKEY_is_a(key, "EC")) {
        if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf,
                                             sizeof buf, &n))
            return failed(NVS_ID_EOPENSSL);
        if (n == 0 || buf[0] != 0x04)
            return NVS_ID_EFORM;
    } else if (EVP_PKEY_is_a(key, "ED25519")) {
        n = sizeof buf;
        if (!EVP_PKEY_get_raw_public_key(key, buf, &n))
            return failed(NVS_ID_EOPENSSL);
    } else {
        return NVS_ID_EFORM;
    }
    *out = (uint8_t *)OPENSSL_malloc(n);
    if (*out == NULL)
        return NVS_ID_ENOMEM;
    memcpy(*out, buf, n);
    *len = n;
    return NVS_ID_OK;
}

int nvs_id_key_export(const EVP_PKEY *key, int form, uint8_t **out, size_t *len)
{
    uint8_t *buf = NULL;
    BIO *b;
    int rc, n;

    if (key == NULL || out == NULL || len == NULL)
        return NVS_ID_EINVAL;
    *out = NULL;
    *len = 0;
    switch (form) {
    case NVS_ID_PRIV_PKCS8_DER: {
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
        if (p8 == NULL)
            return failed(NVS_ID_EPUBLIC);
        n = i2d_PKCS8_PRIV_KEY_INFO(p8, &buf);
        PKCS8_PRIV_KEY_INFO_free(p8);
        return der_take(n, buf, out, len);
    }
    case NVS_ID_PRIV_SEC1_DER:
        if (!EVP_PKEY_is_a(key, "EC"))
            return NVS_ID_EFORM;
        n = i2d_PrivateKey(key, &buf);
        return der_take(n, buf, out, len);
    case NVS_ID_PRIV_RAW:
        return export_raw_private(key, out, len);
    case NVS_ID_PUB_DER:
        n = i2d_PUBKEY(key, &buf);
        return der_take(n, buf, out, len);
    case NVS_ID_PUB_RAW:
        return export_raw_public(key, out, len);
    case NVS_ID_PRIV_PEM:
    case NVS_ID_PUB_PEM:
        /* secure memory: the BIO's buffer is wiped when freed */
        b = BIO_new(form == NVS_ID_PRIV_PEM ? BIO_s_secmem() : BIO_s_mem());
        if (b == NULL)
            return failed(NVS_ID_ENOMEM);
        if (form == NVS_ID_PRIV_PEM ? !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                                    : !PEM_write_bio_PUBKEY(b, key)) {
            BIO_free(b);
            return failed(NVS_ID_EPUBLIC);
        }
        rc = bio_take(b, out, len);
        BIO_free(b);
        return rc;
    default:
        return NVS_ID_EINVAL;
    }
}

int nvs_id_key_public_equal(const EVP_PKEY *a, const EVP_PKEY *b)
{
    int eq;

    if (a == NULL || b == NULL)
        return 0;
    eq = EVP_PKEY_eq(a, b);
    ERR_clear_error();
    return eq == 1;
}

/* ---- certificates and requests --------------------------------------------- */

static const EVP_MD *signing_digest(const EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "ED25519"))
        return NULL;
    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) == 384)
        return EVP_sha384();
    return EVP_sha256();
}

static int build_name(X509_NAME *name, const nvs_id_pair *pairs, size_t n, size_t *bad)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (pairs[i].name == NULL || pairs[i].value == NULL ||
            !X509_NAME_add_entry_by_txt(name, pairs[i].name, MBSTRING_UTF8,
                                        (const unsigned char *)pairs[i].value, -1, -1, 0)) {
            if (bad != NULL)
                *bad = i;
            return failed(NVS_ID_ESUBJECT);
        }
    }
    return NVS_ID_OK;
}

/* Makes extension i of pairs in ctx; NULL (with *bad set) when refused. */
static X509_EXTENSION *make_extension(X509V3_CTX *ctx, const nvs_id_pair *pairs, size_t i,
                                      size_t *bad)
{
    X509_EXTENSION *ext = NULL;

    if (pairs[i].name != NULL && pairs[i].value != NULL)
        ext = X509V3_EXT_nconf(NULL, ctx, pairs[i].name, pairs[i].value);
    if (ext == NULL && bad != NULL)
        *bad = i;
    return ext;
}

/*
 * OpenSSL 3.0 encodes a key for X509_set_pubkey through its encoder
 * machinery, about half a millisecond a time, more than the signature; an
 * EC key's SubjectPublicKeyInfo is only its curve's name and its point,
 * so for EC keys those two are set in the certificate's key field directly
 * (still OpenSSL's own ASN.1 types). Other keys take the general way.
 */
static int set_public_key(X509 *x, EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "EC")) {
        unsigned char point[160];
        char group[64];
        size_t n = 0, glen = 0;
        int curve = NID_undef;
        if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                            sizeof point, &n) &&
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &glen))
            curve = OBJ_txt2nid(group);
        if (curve != NID_undef) {
            unsigned char *copy = (unsigned char *)OPENSSL_memdup(point, n);
            if (copy != NULL &&
                X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x),
                                       OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                                       OBJ_nid2obj(curve), copy, (int)n))
                return 1;
            OPENSSL_free(copy);
        }
        ERR_clear_error();
    }
    return X509_set_pubkey(x, key);
}

static int set_random_serial(X509 *x)
{
    uint8_t raw[NVS_ID_SERIAL_SIZE];
    BIGNUM *bn;
    ASN1_INTEGER *serial;
    int ok;

    if (nvs_random_bytes(raw, sizeof raw) != NVS_CRYPTO_OK)
        return NVS_ID_ERANDOM;
    /* Positive (top bit clear) and always 16 bytes long in DER. */
    raw[0] = (uint8_t)((raw[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(raw, sizeof raw, NULL);
    serial = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    ok = serial != NULL && X509_set_serialNumber(x, serial);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok ? NVS_ID_OK : failed(NVS_ID_EOPENSSL);
}

int nvs_id_cert_issue(const nvs_id_cert_spec *spec, EVP_PKEY *subject_key,
                      X509 *issuer, EVP_PKEY *issuer_key, X509 **out, size_t *bad)
{
    X509 *x = NULL;
    X509_NAME *name = NULL;
    X509V3_CTX ctx;
    size_t i;
    int rc;

    if (spec == NULL || subject_key == NULL || issuer_key == NULL || out == NULL ||
        (spec->n_subject > 0 && spec->subject == NULL) ||
        (spec->n_extensions > 0 && spec->extensions == NULL))
        return NVS_ID_EINVAL;
    *out = NULL;
    if (spec->not_after < spec->not_before)
        return NVS_ID_EVALIDITY;
    x = X509_new();
    name = X509_NAME_new();
    if (x == NULL || name == NULL) {
        rc = failed(NVS_ID_ENOMEM);
        goto done;
    }
    rc = build_name(name, spec->subject, spec->n_subject, bad);
    if (rc != NVS_ID_OK)
        goto done;
    rc = set_random_serial(x);
    if (rc != NVS_ID_OK)
        goto done;
    if (!X509_set_version(x, 2) || !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)spec->not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)spec->not_after) == NULL ||
        !set_public_key(x, subject_key)) {
        rc = failed(NVS_ID_EOPENSSL);
        goto done;
    }
    /* A self-signed certificate is its own issuer: its subject key
     * identifier, once added, is the authority key identifier's source. */
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    for (i = 0; i < spec->n_extensions; i++) {
        X509_EXTENSION *ext = make_extension(&ctx, spec->extensions, i, bad);
        int added;
        if (ext == NULL) {
            rc = failed(NVS_ID_EEXTENSION);
            goto done;
        }
        added = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        if (!added) {
            rc = failed(NVS_ID_EOPENSSL);
            goto done;
        }
    }
    if (X509_sign(x, issuer_key, signing_digest(issuer_key)) <= 0) {
        rc = failed(NVS_ID_EOPENSSL);
        goto done;
    }
    *out = x;
    x = NULL;
    rc = NVS_ID_OK;
done:
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

int nvs_id_cert_complete(X509 **x)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    X509 *whole;
    int n;

    if (x == NULL || *x == NULL)
        return NVS_ID_EINVAL;
    if (X509_get0_pubkey(*x) != NULL)
        return NVS_ID_OK;
    ERR_clear_error();
    n = i2d_X509(*x, &der);
    if (n <= 0)
        return failed(NVS_ID_EOPENSSL);
    p = der;
    whole = d2i_X509(NULL, &p, n);
    OPENSSL_free(der);
    if (whole == NULL)
        return failed(NVS_ID_ECERT);
    X509_free(*x);
    *x = whole;
    return NVS_ID_OK;
}

X509 *nvs_id_cert_load(const void *data, size_t len, int *err)
{
    X509 *x = NULL;

    if (data == NULL || len == 0 || len > INT_MAX) {
        set_err(err, NVS_ID_ECERT);
        return NULL;
    }
    if (looks_like_pem(data, len)) {
        BIO *b = BIO_new_mem_buf(data, (int)len);
        if (b != NULL) {
            x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
            BIO_free(b);
        }
    } else {
        const unsigned char *p = (const unsigned char *)data;
        x = d2i_X509(NULL, &p, (long)len);
        /* bytes after the certificate: not a certificate file */
        if (x != NULL && p != (const unsigned char *)data + len) {
            X509_free(x);
            x = NULL;
        }
    }
    if (x == NULL) {
        set_err(err, failed(NVS_ID_ECERT));
        return NULL;
    }
    set_err(err, NVS_ID_OK);
    return x;
}

int nvs_id_cert_export(X509 *cert, int pem, uint8_t **out, size_t *len)
{
    uint8_t *buf = NULL;
    BIO *b;
    int rc;

    if (cert == NULL || out == NULL || len == NULL)
        return NVS_ID_EINVAL;
    if (!pem) {
        int n = i2d_X509(cert, &buf);
        return der_take(n, buf, out, len);
    }
    b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return failed(NVS_ID_ENOMEM);
    if (!PEM_write_bio_X509(b, cert)) {
        BIO_free(b);
        return failed(NVS_ID_EOPENSSL);
    }
    rc = bio_take(b, out, len);
    BIO_free(b);
    return rc;
}

int nvs_id_cert_check_key(X509 *cert, EVP_PKEY *key)
{
    EVP_PKEY *pub;

    if (cert == NULL || key == NULL)
        return NVS_ID_EINVAL;
    pub = X509_get0_pubkey(cert);
    if (pub == NULL)
        return failed(NVS_ID_ECERT);
    return nvs_id_key_public_equal(pub, key) ? NVS_ID_OK : NVS_ID_EMISMATCH;
}

/* "YYYY-MM-DD HH:MM:SS" of an ASN.1 time (UTC), or -1. */
static int time_text(const ASN1_TIME *t, char out[NVS_ID_TIME_TEXT])
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
        ERR_clear_error();
        return -1;
    }
    snprintf(out, NVS_ID_TIME_TEXT, "%04d-%02d-%02d %02d:%02d:%02d", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100);
    return 0;
}

int nvs_id_cert_validity(const X509 *cert, char not_before[NVS_ID_TIME_TEXT],
                         char not_after[NVS_ID_TIME_TEXT])
{
    if (cert == NULL || not_before == NULL || not_after == NULL)
        return NVS_ID_EINVAL;
    if (time_text(X509_get0_notBefore(cert), not_before) != 0 ||
        time_text(X509_get0_notAfter(cert), not_after) != 0)
        return NVS_ID_ECERT;
    return NVS_ID_OK;
}

int nvs_id_cert_key_id(X509 *cert, const uint8_t **id, size_t *len)
{
    const ASN1_OCTET_STRING *ski;

    if (cert == NULL || id == NULL || len == NULL)
        return NVS_ID_EINVAL;
    ski = X509_get0_subject_key_id(cert);
    ERR_clear_error();
    if (ski == NULL)
        return NVS_ID_ECERT;
    *id = ASN1_STRING_get0_data(ski);
    *len = (size_t)ASN1_STRING_length(ski);
    return NVS_ID_OK;
}

int nvs_id_cert_check_ca(X509 *cert)
{
    int ca;

    if (cert == NULL)
        return NVS_ID_EINVAL;
    /* 1: basicConstraints CA:TRUE (and keyCertSign if keyUsage is there).
     * X509_check_ca also says yes to a version 1 certificate or to
     * keyUsage keyCertSign without basicConstraints, which RFC 5280 does
     * not let a CA be and which verifiers refuse as issuers. */
    ca = X509_check_ca(cert);
    ERR_clear_error();
    return ca == 1 ? NVS_ID_OK : NVS_ID_ENOTCA;
}

int nvs_id_cert_verify(X509 *cert, X509 *const *roots, size_t n_roots,
                       X509 *const *chain, size_t n_chain, int64_t at,
                       const char **reason)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    size_t i;
    int rc = NVS_ID_EOPENSSL;

    if (reason != NULL)
        *reason = NULL;
    if (cert == NULL || (n_roots > 0 && roots == NULL) || (n_chain > 0 && chain == NULL)) {
        rc = NVS_ID_EINVAL;
        goto done;
    }
    if (store == NULL || ctx == NULL || untrusted == NULL)
        goto done;
    /* every root given is trusted as it is, an intermediate (a PAI) too */
    if (!X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN))
        goto done;
    for (i = 0; i < n_roots; i++)
        if (!X509_STORE_add_cert(store, roots[i]))
            goto done;
    for (i = 0; i < n_chain; i++)
        if (!sk_X509_push(untrusted, chain[i]))
            goto done;
    if (!X509_STORE_CTX_init(ctx, store, cert, untrusted))
        goto done;
    if (at != 0)
        X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
    if (X509_verify_cert(ctx) == 1) {
        rc = NVS_ID_OK;
    } else {
        rc = NVS_ID_EMISMATCH;
        if (reason != NULL)
            *reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    }
done:
    ERR_clear_error();
    sk_X509_free(untrusted); /* the certificates stay the caller's */
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

int nvs_id_csr_make(const nvs_id_pair *subject, size_t n_subject,
                    const nvs_id_pair *extensions, size_t n_extensions,
                    EVP_PKEY *key, X509_REQ **out, size_t *bad)
{
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509V3_CTX ctx;
    size_t i;
    int rc;

    if (key == NULL || out == NULL || (n_subject > 0 && subject == NULL) ||
        (n_extensions > 0 && extensions == NULL))
        return NVS_ID_EINVAL;
    *out = NULL;
    req = X509_REQ_new();
    name = X509_NAME_new();
    if (req == NULL || name == NULL) {
        rc = failed(NVS_ID_ENOMEM);
        goto done;
    }
    rc = build_name(name, subject, n_subject, bad);
    if (rc != NVS_ID_OK)
        goto done;
    if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
        !X509_REQ_set_pubkey(req, key)) {
        rc = failed(NVS_ID_EOPENSSL);
        goto done;
    }
    if (n_extensions > 0) {
        exts = sk_X509_EXTENSION_new_null();
        if (exts == NULL) {
            rc = failed(NVS_ID_ENOMEM);
            goto done;
        }
        X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
        for (i = 0; i < n_extensions; i++) {
            X509_EXTENSION *ext = make_extension(&ctx, extensions, i, bad);
            if (ext == NULL) {
                rc = failed(NVS_ID_EEXTENSION);
                goto done;
            }
            if (!sk_X509_EXTENSION_push(exts, ext)) {
                X509_EXTENSION_free(ext);
                rc = failed(NVS_ID_ENOMEM);
                goto done;
            }
        }
        if (!X509_REQ_add_extensions(req, exts)) {
            rc = failed(NVS_ID_EOPENSSL);
            goto done;
        }
    }
    if (X509_REQ_sign(req, key, signing_digest(key)) <= 0) {
        rc = failed(NVS_ID_EOPENSSL);
        goto done;
    }
    *out = req;
    req = NULL;
    rc = NVS_ID_OK;
done:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return rc;
}

int nvs_id_csr_export(X509_REQ *req, int pem, uint8_t **out, size_t *len)
{
    uint8_t *buf = NULL;
    BIO *b;
    int rc;

    if (req == NULL || out == NULL || len == NULL)
        return NVS_ID_EINVAL;
    if (!pem) {
        int n = i2d_X509_REQ(req, &buf);
        return der_take(n, buf, out, len);
    }
    b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return failed(NVS_ID_ENOMEM);
    if (!PEM_write_bio_X509_REQ(b, req)) {
        BIO_free(b);
        return failed(NVS_ID_EOPENSSL);
    }
    rc = bio_take(b, out, len);
    BIO_free(b);
    return rc;
}

/* ---- KDFs, MACs, digests ----------------------------------------------------- */

static const EVP_MD *digest_by_name(const char *name)
{
    if (name == NULL)
        return NULL;
    if (strcmp(name, "SHA256") == 0)
        return EVP_sha256();
    if (strcmp(name, "SHA512") == 0)
        return EVP_sha512();
    if (strcmp(name, "SHA384") == 0)
        return EVP_sha384();
    if (strcmp(name, "SHA1") == 0)
        return EVP_sha1();
    return NULL;
}

int nvs_id_pbkdf2(const char *digest, const void *pass, size_t pass_len,
                  const void *salt, size_t salt_len, unsigned iterations,
                  uint8_t *out, size_t out_len)
{
    const EVP_MD *md = digest_by_name(digest);

    if (md == NULL)
        return NVS_ID_EDIGEST;
    if ((pass == NULL && pass_len) || (salt == NULL && salt_len) || out == NULL ||
        iterations == 0 || iterations > INT_MAX || pass_len > INT_MAX ||
        salt_len > INT_MAX || out_len == 0 || out_len > INT_MAX)
        return NVS_ID_EINVAL;
    if (!PKCS5_PBKDF2_HMAC((const char *)pass, (int)pass_len, (const unsigned char *)salt,
                           (int)salt_len, (int)iterations, md, (int)out_len, out))
        return failed(NVS_ID_EOPENSSL);
    return NVS_ID_OK;
}

int nvs_id_hkdf(const char *digest, const void *key, size_t key_len,
                const void *salt, size_t salt_len, const void *info,
                size_t info_len, uint8_t *out, size_t out_len)
{
    EVP_KDF *kdf;
    EVP_KDF_CTX *ctx;
    OSSL_PARAM params[5];
    size_t n = 0;
    int ok;

    if (digest_by_name(digest) == NULL)
        return NVS_ID_EDIGEST;
    if ((key == NULL && key_len) || (salt == NULL && salt_len) ||
        (info == NULL && info_len) || out == NULL || out_len == 0)
        return NVS_ID_EINVAL;
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        return failed(NVS_ID_EOPENSSL);
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)(uintptr_t)digest, 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)key,
                                                    key_len);
    if (salt_len > 0)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                        (void *)(uintptr_t)salt, salt_len);
    if (info_len > 0)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                        (void *)(uintptr_t)info, info_len);
    params[n] = OSSL_PARAM_construct_end();
    ok = EVP_KDF_derive(ctx, out, out_len, params);
    EVP_KDF_CTX_free(ctx);
    return ok > 0 ? NVS_ID_OK : failed(NVS_ID_EOPENSSL);
}

int nvs_id_hmac(const char *digest, const void *key, size_t key_len,
                const void *data, size_t len, uint8_t out[NVS_ID_MAX_DIGEST],
                size_t *out_len)
{
    const EVP_MD *md = digest_by_name(digest);
    unsigned int n = 0;

    if (md == NULL)
        return NVS_ID_EDIGEST;
    if ((key == NULL && key_len) || (data == NULL && len) || out == NULL ||
        out_len == NULL || key_len > INT_MAX)
        return NVS_ID_EINVAL;
    /* HMAC() takes a NULL key as "reuse the last one": never pass NULL. */
    if (HMAC(md, key_len ? key : "", (int)key_len, (const unsigned char *)(len ? data : ""),
             len, out, &n) == NULL)
        return failed(NVS_ID_EOPENSSL);
    *out_len = n;
    return NVS_ID_OK;
}

int nvs_id_digest(const char *digest, const void *data, size_t len,
                  uint8_t out[NVS_ID_MAX_DIGEST], size_t *out_len)
{
    const EVP_MD *md = digest_by_name(digest);
    unsigned int n = 0;

    if (md == NULL)
        return NVS_ID_EDIGEST;
    if ((data == NULL && len) || out == NULL || out_len == NULL)
        return NVS_ID_EINVAL;
    if (!EVP_Digest(len ? data : "", len, out, &n, md, NULL))
        return failed(NVS_ID_EOPENSSL);
    *out_len = n;
    return NVS_ID_OK;
}

/* ---- randomness -------------------------------------------------------------- */

static int random_u64(uint64_t *v)
{
    uint8_t b[8];
    int i;

    if (nvs_random_bytes(b, sizeof b) != NVS_CRYPTO_OK)
        return NVS_ID_ERANDOM;
    *v = 0;
    for (i = 0; i < 8; i++)
        *v = (*v << 8) | b[i];
    return NVS_ID_OK;
}

int nvs_id_random_uniform(uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t span, reject_below, v;

    if (out == NULL || hi < lo)
        return NVS_ID_EINVAL;
    if (hi - lo == UINT64_MAX) /* the whole 2^64 range */
        return random_u64(out);
    span = hi - lo + 1;
    /* 2^64 mod span: the draws below it would make the low values of the
     * range more likely than the others. */
    reject_below = (0 - span) % span;
    do {
        int rc = random_u64(&v);
        if (rc != NVS_ID_OK)
            return rc;
    } while (v < reject_below);
    *out = lo + v % span;
    return NVS_ID_OK;
}

int nvs_id_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    size_t i, o = 0;

    if (out == NULL)
        return NVS_ID_EINVAL;
    if (nvs_random_bytes(b, sizeof b) != NVS_CRYPTO_OK)
        return NVS_ID_ERANDOM;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return NVS_ID_OK;
}
