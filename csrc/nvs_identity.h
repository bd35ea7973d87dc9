/*
 * nvs_identity.h - per-unit identity through OpenSSL 3: keys, X.509
 * certificates signed by a CA, certificate requests (PKCS#10), KDFs, MACs
 * and digests, and uniform random integers.
 *
 * Keys, certificates and requests are OpenSSL's own objects (EVP_PKEY,
 * X509, X509_REQ), freed with EVP_PKEY_free, X509_free, X509_REQ_free.
 * Encodings come back in a buffer from OPENSSL_malloc that the caller
 * releases with OPENSSL_clear_free (it may hold a private key).  Functions
 * return NVS_ID_OK (0) or a negative enum nvs_id_err; nothing here knows
 * about Lua or keeps global state.
 */
#ifndef NVS_IDENTITY_H
#define NVS_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>
#include <openssl/x509.h>

#include "nvs_visibility.h"

NVS_HIDDEN_BEGIN

enum nvs_id_err {
    NVS_ID_OK = 0,
    NVS_ID_EINVAL = -1,       /* NULL pointer or value out of range */
    NVS_ID_ENOMEM = -2,       /* allocation failed */
    NVS_ID_EOPENSSL = -3,     /* OpenSSL refused or failed an operation */
    NVS_ID_EKEYTYPE = -4,     /* unknown key type */
    NVS_ID_EKEY = -5,         /* not a private key in PEM or DER */
    NVS_ID_ECERT = -6,        /* not an X.509 certificate in PEM or DER */
    NVS_ID_EMISMATCH = -7,    /* key does not match the certificate */
    NVS_ID_EFORM = -8,        /* encoding not available for this key type */
    NVS_ID_ESUBJECT = -9,     /* subject field unknown or value refused */
    NVS_ID_EEXTENSION = -10,  /* extension unknown or value refused */
    NVS_ID_EVALIDITY = -11,   /* not-after before not-before */
    NVS_ID_EDIGEST = -12,     /* unknown digest name */
    NVS_ID_ERANDOM = -13,     /* the OS random generator failed */
    NVS_ID_ENOTCA = -14,      /* issuer certificate is not a CA */
    NVS_ID_EPUBLIC = -15,     /* the key holds no private part */
    NVS_ID_EENCRYPTED = -16   /* an encrypted private key (no passphrase is asked) */
};

/* A plain lowercase message for an error code (never NULL). */
const char *nvs_id_strerror(int err);

/* ------------------------------------------------------------------------
 * Keys
 */

/* Key types by name: "p256", "p384", "ed25519", "rsa2048", "rsa3072". */
EVP_PKEY *nvs_id_key_generate(const char *type, int *err);

/* A private key in PEM (PKCS#8, SEC1 or PKCS#1, unencrypted) or DER. */
EVP_PKEY *nvs_id_key_load(const void *data, size_t len, int *err);

/* A public key in PEM or DER (SubjectPublicKeyInfo). */
EVP_PKEY *nvs_id_pubkey_load(const void *data, size_t len, int *err);

/* The type name of a key ("p256", ...), or NULL for another kind. */
const char *nvs_id_key_type(const EVP_PKEY *key);

enum nvs_id_form {
    NVS_ID_PRIV_PKCS8_DER = 0, /* PrivateKeyInfo */
    NVS_ID_PRIV_SEC1_DER,      /* ECPrivateKey (EC only) */
    NVS_ID_PRIV_PEM,           /* "PRIVATE KEY" (PKCS#8) */
    NVS_ID_PRIV_RAW,           /* EC scalar, big-endian, curve size; Ed25519 32 bytes */
    NVS_ID_PUB_DER,            /* SubjectPublicKeyInfo */
    NVS_ID_PUB_PEM,            /* "PUBLIC KEY" */
    NVS_ID_PUB_RAW             /* EC uncompressed point (04 x y); Ed25519 32 bytes */
};

int nvs_id_key_export(const EVP_PKEY *key, int form, uint8_t **out, size_t *len);

/* 1 if both keys have the same public key, 0 if not. */
int nvs_id_key_public_equal(const EVP_PKEY *a, const EVP_PKEY *b);

/* ------------------------------------------------------------------------
 * Certificates and requests
 */

/* A name-value pair: a subject field ("CN", "O", "serialNumber", or a
 * dotted OID such as "1.3.6.1.4.1.37244.2.1", value as UTF-8), or an
 * extension (OpenSSL's name, "basicConstraints", and its value in
 * OpenSSL's configuration syntax, "critical,CA:FALSE"). */
typedef struct {
    const char *name;
    const char *value;
} nvs_id_pair;

typedef struct {
    const nvs_id_pair *subject;
    size_t n_subject;
    const nvs_id_pair *extensions;
    size_t n_extensions;
    int64_t not_before; /* seconds since 1970 (UTC) */
    int64_t not_after;
} nvs_id_cert_spec;

#define NVS_ID_SERIAL_SIZE 16u

/*
 * Issues an X.509 v3 certificate for subject_key's public key, signed by
 * issuer_key as issuer (issuer NULL: self-signed, issuer_key must then be
 * subject_key).  The serial number is 16 random bytes, positive.  On a
 * subject or extension failure, *bad (if not NULL) is the index of the
 * refused pair.  Ed25519 signs without a digest, P-384 with SHA-384,
 * everything else with SHA-256.
 */
int nvs_id_cert_issue(const nvs_id_cert_spec *spec, EVP_PKEY *subject_key,
                      X509 *issuer, EVP_PKEY *issuer_key, X509 **out, size_t *bad);

/*
 * A certificate issued here holds an EC public key as its encoded bytes
 * only (decoding is OpenSSL 3.0's slowest step, and issuing never needs
 * it); before its key is used (checks, verification) this makes it whole,
 * replacing *x by the same certificate parsed again. Nothing to do for a
 * loaded certificate.
 */
int nvs_id_cert_complete(X509 **x);

/* A certificate in PEM or DER. */
X509 *nvs_id_cert_load(const void *data, size_t len, int *err);

/* DER (pem == 0) or PEM of a certificate. */
int nvs_id_cert_export(X509 *cert, int pem, uint8_t **out, size_t *len);

/* NVS_ID_OK if key's public part is the certificate's, else NVS_ID_EMISMATCH. */
int nvs_id_cert_check_key(X509 *cert, EVP_PKEY *key);

/* NVS_ID_OK if cert is a CA certificate (basicConstraints CA:TRUE). */
int nvs_id_cert_check_ca(X509 *cert);

/* The certificate's validity dates as "YYYY-MM-DD HH:MM:SS" (UTC). */
#define NVS_ID_TIME_TEXT 32
int nvs_id_cert_validity(const X509 *cert, char not_before[NVS_ID_TIME_TEXT],
                         char not_after[NVS_ID_TIME_TEXT]);

/* The subject key identifier's bytes (owned by cert), or NVS_ID_ECERT
 * when the certificate has none. */
int nvs_id_cert_key_id(X509 *cert, const uint8_t **id, size_t *len);

/* Sets this process's core file size limit to 0 (once): called when a
 * private key is made or read. */
void nvs_id_no_core_dumps(void);

/*
 * OpenSSL's own chain verification (X509_verify_cert) of cert against the
 * trusted roots (each a trust anchor, be it self-signed or an intermediate
 * such as a PAI), with untrusted intermediates, at time `at` (seconds since
 * 1970; 0 for now).  NVS_ID_OK, or NVS_ID_EMISMATCH with *reason set to
 * OpenSSL's message.
 */
int nvs_id_cert_verify(X509 *cert, X509 *const *roots, size_t n_roots,
                       X509 *const *chain, size_t n_chain, int64_t at,
                       const char **reason);

/* A PKCS#10 request for key's public key, signed by key. */
int nvs_id_csr_make(const nvs_id_pair *subject, size_t n_subject,
                    const nvs_id_pair *extensions, size_t n_extensions,
                    EVP_PKEY *key, X509_REQ **out, size_t *bad);

int nvs_id_csr_export(X509_REQ *req, int pem, uint8_t **out, size_t *len);

/* ------------------------------------------------------------------------
 * KDFs, MACs, digests ("SHA256", "SHA384", "SHA512", "SHA1" by name)
 */

#define NVS_ID_MAX_DIGEST 64u

int nvs_id_pbkdf2(const char *digest, const void *pass, size_t pass_len,
                  const void *salt, size_t salt_len, unsigned iterations,
                  uint8_t *out, size_t out_len);

int nvs_id_hkdf(const char *digest, const void *key, size_t key_len,
                const void *salt, size_t salt_len, const void *info,
                size_t info_len, uint8_t *out, size_t out_len);

/* HMAC; *out_len receives the digest size. */
int nvs_id_hmac(const char *digest, const void *key, size_t key_len,
                const void *data, size_t len, uint8_t out[NVS_ID_MAX_DIGEST],
                size_t *out_len);

int nvs_id_digest(const char *digest, const void *data, size_t len,
                  uint8_t out[NVS_ID_MAX_DIGEST], size_t *out_len);

/* ------------------------------------------------------------------------
 * Randomness
 */

/*
 * A uniform integer in [lo, hi] (as unsigned 64-bit values, lo <= hi) from
 * the OS CSPRNG: draws falling in the incomplete last block of the range
 * are rejected, so there is no modulo bias.
 */
int nvs_id_random_uniform(uint64_t lo, uint64_t hi, uint64_t *out);

/* A version-4 UUID as 36 characters and a NUL (lowercase hex). */
int nvs_id_uuid4(char out[37]);

NVS_HIDDEN_END

#endif
