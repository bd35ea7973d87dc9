/*
 * test_identity.c - checks for nvs_matter.c and nvs_identity.c without Lua:
 * the published Matter examples (verifier, QR code, manual code), base-38
 * and Verhoeff, the passcode rules, uniform draws at the edges of their
 * range, and a certificate issued, checked against its key and verified.
 * Prints "N passed, N failed"; exits 1 on a failure.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "../nvs_codec.h"
#include "../nvs_identity.h"
#include "../nvs_matter.h"

static int n_passed, n_failed;

static void check(int ok, const char *what)
{
    if (ok) {
        n_passed++;
    } else {
        n_failed++;
        printf("FAIL: %s\n", what);
    }
}

static void test_matter(void)
{
    static const char published[] =
        "uWFwqugDNGiEck/po7KHwwMwwqZgN10XuyBajPGuyzUEV/iree4lOrao5GuwnlQ65CJzbeUB49s31EH+"
        "NEkg0JVI5MGCQGMMT/SRPFNRODm3wH/MBiehuFc6FJ/NH6Rmzw==";
    uint8_t v[NVS_MATTER_VERIFIER_SIZE];
    char b64[140], qr[NVS_MATTER_QR_SIZE], manual[NVS_MATTER_MANUAL_SIZE];
    nvs_matter_payload p = {0, 0xFFF1, 0x8001, 0, 4, 3840, 20202021};
    size_t n;

    check(nvs_matter_verifier(20202021, (const uint8_t *)"SPAKE2P Key Salt", 16, 1000, v) ==
              NVS_MATTER_OK, "verifier of the published inputs");
    n = nvs_base64_encode(v, sizeof v, b64);
    b64[n] = '\0';
    check(strcmp(b64, published) == 0, "verifier matches the published value");
    check(nvs_matter_verifier(11111111, (const uint8_t *)"SPAKE2P Key Salt", 16, 1000, v) ==
              NVS_MATTER_EPASSCODE, "forbidden passcode refused");
    check(nvs_matter_qr(&p, qr) == NVS_MATTER_OK && strcmp(qr, "MT:-24J0AFN00KA0648G00") == 0,
          "published QR code");
    check(nvs_matter_manual(&p, manual) == NVS_MATTER_OK && strcmp(manual, "34970112332") == 0,
          "published manual code");
    p.flow = 2;
    check(nvs_matter_manual(&p, manual) == NVS_MATTER_OK &&
              strcmp(manual, "749701123365521327694") == 0, "published long manual code");
    p.discriminator = 0x1000;
    check(nvs_matter_qr(&p, qr) == NVS_MATTER_EFIELD, "13-bit discriminator refused");
    check(nvs_verhoeff_check("236", 3) == 3, "Verhoeff of 236");
    check(nvs_verhoeff_check("2x6", 3) == -1, "Verhoeff refuses a non-digit");
    check(nvs_base38_encode((const uint8_t *)"\xff", 1, qr) == 2 && strcmp(qr, "R6") == 0,
          "base-38 of one byte");
    check(!nvs_matter_passcode_valid(0) && !nvs_matter_passcode_valid(99999999) &&
              !nvs_matter_passcode_valid(12345678) && !nvs_matter_passcode_valid(87654321) &&
              !nvs_matter_passcode_valid(55555555) && nvs_matter_passcode_valid(1) &&
              nvs_matter_passcode_valid(99999998), "passcode rules");
}

static void test_random(void)
{
    uint64_t v = 0;
    int i, lo_seen = 0, hi_seen = 0, inside = 1;

    for (i = 0; i < 2000; i++) {
        if (nvs_id_random_uniform(10, 13, &v) != NVS_ID_OK || v < 10 || v > 13)
            inside = 0;
        lo_seen |= v == 10;
        hi_seen |= v == 13;
    }
    check(inside && lo_seen && hi_seen, "uniform draws cover [10, 13] and stay in it");
    check(nvs_id_random_uniform(0, UINT64_MAX, &v) == NVS_ID_OK, "the whole 64-bit range");
    check(nvs_id_random_uniform(5, 5, &v) == NVS_ID_OK && v == 5, "a range of one value");
    check(nvs_id_random_uniform(6, 5, &v) == NVS_ID_EINVAL, "an empty range refused");
}

static void test_certificate(void)
{
    static const nvs_id_pair subject[] = {{"CN", "unit"}, {"1.3.6.1.4.1.37244.2.1", "FFF1"}};
    static const nvs_id_pair ca_subject[] = {{"CN", "ca"}};
    static const nvs_id_pair ca_ext[] = {{"basicConstraints", "critical,CA:TRUE"},
                                         {"subjectKeyIdentifier", "hash"}};
    static const nvs_id_pair bad_ext[] = {{"keyUsage", "bogus"}};
    nvs_id_cert_spec spec = {ca_subject, 1, ca_ext, 2, 0, 4102444800};
    EVP_PKEY *ca_key = nvs_id_key_generate("p256", NULL);
    EVP_PKEY *key = nvs_id_key_generate("p256", NULL);
    X509 *ca = NULL, *cert = NULL;
    const char *reason = NULL;
    size_t bad = 99;
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    int rc;

    check(ca_key != NULL && key != NULL, "keys made");
    check(nvs_id_cert_issue(&spec, ca_key, NULL, ca_key, &ca, NULL) == NVS_ID_OK, "CA issued");
    spec.subject = subject;
    spec.n_subject = 2;
    spec.extensions = bad_ext;
    spec.n_extensions = 1;
    check(nvs_id_cert_issue(&spec, key, ca, ca_key, &cert, &bad) == NVS_ID_EEXTENSION && bad == 0,
          "a bad extension is refused and named");
    spec.n_extensions = 0;
    check(nvs_id_cert_issue(&spec, key, ca, ca_key, &cert, NULL) == NVS_ID_OK, "certificate issued");
    check(nvs_id_cert_complete(&cert) == NVS_ID_OK && nvs_id_cert_complete(&ca) == NVS_ID_OK,
          "certificates made whole");
    check(nvs_id_cert_check_key(cert, key) == NVS_ID_OK, "the key is the certificate's");
    check(nvs_id_cert_check_key(cert, ca_key) == NVS_ID_EMISMATCH, "another key is not");
    rc = nvs_id_cert_verify(cert, &ca, 1, NULL, 0, 0, &reason);
    check(rc == NVS_ID_OK, reason != NULL ? reason : "certificate verifies against its CA");
    check(nvs_id_key_export(key, NVS_ID_PRIV_RAW, &raw, &raw_len) == NVS_ID_OK && raw_len == 32,
          "raw scalar of 32 bytes");
    OPENSSL_clear_free(raw, raw_len);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
}

int main(void)
{
    test_matter();
    test_random();
    test_certificate();
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed == 0 ? 0 : 1;
}
