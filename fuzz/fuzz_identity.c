/*
 * fuzz_identity.c - libFuzzer target for the identity parsers: any input
 * is read as a certificate, a private key and a public key (PEM or DER,
 * as nvs_identity.c tells them apart); what parses is encoded again, and
 * a parsed certificate is checked against a parsed key. Also the Matter
 * encodings of its first bytes (base-38, Verhoeff).
 *
 * Build (see README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc fuzz/fuzz_identity.c \
 *       csrc/nvs_identity.c csrc/nvs_matter.c csrc/nvs_crypto.c csrc/nvs_format.c -lcrypto -lz
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "nvs_identity.h"
#include "nvs_matter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509 *cert = nvs_id_cert_load(data, size, NULL);
    EVP_PKEY *key = nvs_id_key_load(data, size, NULL);
    EVP_PKEY *pub = nvs_id_pubkey_load(data, size, NULL);
    uint8_t *out = NULL;
    size_t len = 0, n = size < 64 ? size : 64;
    char text[64 / 3 * 5 + 8];
    int form;

    if (cert != NULL) {
        if (nvs_id_cert_export(cert, 1, &out, &len) == NVS_ID_OK)
            OPENSSL_free(out);
        if (key != NULL)
            (void)nvs_id_cert_check_key(cert, key);
        (void)nvs_id_cert_check_ca(cert);
    }
    for (form = NVS_ID_PRIV_PKCS8_DER; form <= NVS_ID_PUB_RAW; form++) {
        if (key != NULL && nvs_id_key_export(key, form, &out, &len) == NVS_ID_OK)
            OPENSSL_clear_free(out, len);
        if (pub != NULL && form >= NVS_ID_PUB_DER &&
            nvs_id_key_export(pub, form, &out, &len) == NVS_ID_OK)
            OPENSSL_free(out);
    }
    if (nvs_base38_encode(data, n, text) != (n / 3) * 5 + (n % 3 == 2 ? 4 : n % 3 == 1 ? 2 : 0))
        abort();
    (void)nvs_verhoeff_check((const char *)data, n);
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(pub);
    return 0;
}
