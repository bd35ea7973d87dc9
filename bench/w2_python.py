#!/usr/bin/env python3
"""bench/w2_python.py: benchmark W2's unit as a Python tool would make it
with the `cryptography` package (Debian's python3-cryptography) and
hashlib: passcode, discriminator, salt, SPAKE2+ verifier at 1,000
iterations, a P-256 key and its DAC signed by the PAI, then the image file
written under a pending name, hashed and renamed, as floor.c's "matter"
mode does in C. Prints the seconds taken.

Usage: w2_python.py DIR N FIRST PAI_CERT PAI_KEY
"""
import base64
import datetime
import hashlib
import os
import secrets
import sys
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
FORBIDDEN = {11111111 * k for k in range(1, 10)} | {12345678, 87654321}
VID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.37244.2.1")
PID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.37244.2.2")
NO_EXPIRY = datetime.datetime(9999, 12, 31, 23, 59, 59)


def verifier(passcode, salt, iterations):
    ws = hashlib.pbkdf2_hmac("sha256", passcode.to_bytes(4, "little"), salt, iterations, 80)
    w0 = int.from_bytes(ws[:40], "big") % ORDER
    w1 = int.from_bytes(ws[40:], "big") % ORDER
    point = ec.derive_private_key(w1, ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return w0.to_bytes(32, "big") + point


def unit(pai, pai_key, pai_ski):
    while True:
        passcode = 1 + secrets.randbelow(99999998)
        if passcode not in FORBIDDEN:
            break
    discriminator = secrets.randbelow(4096)
    salt = os.urandom(32)
    v = verifier(passcode, salt, 1000)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, str(uuid.uuid4())),
        x509.NameAttribute(VID_OID, "FFF1"),
        x509.NameAttribute(PID_OID, "8001"),
    ])
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(pai.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime.now(datetime.timezone.utc)).not_valid_after(NO_EXPIRY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(pai_ski),
                           critical=False)
            .sign(pai_key, hashes.SHA256()))
    parts = [
        discriminator.to_bytes(4, "little"), base64.b64encode(salt), os.urandom(16),
        cert.public_bytes(serialization.Encoding.DER),
        key.private_numbers().private_value.to_bytes(32, "big"),
        key.public_key().public_bytes(serialization.Encoding.X962,
                                      serialization.PublicFormat.UncompressedPoint),
        base64.b64encode(v), cert.public_bytes(serialization.Encoding.PEM),
    ]
    return b"".join(parts)


def main():
    out, n, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(sys.argv[4], "rb") as f:
        pai = x509.load_pem_x509_certificate(f.read())
    with open(sys.argv[5], "rb") as f:
        pai_key = serialization.load_pem_private_key(f.read(), password=None)
    pai_ski = pai.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    image = bytearray(b"\xff" * 0x6000)
    t0 = time.monotonic()
    for i in range(first, first + n):
        data = unit(pai, pai_key, pai_ski)
        image[8:8 + len(data)] = data
        image[0:8] = i.to_bytes(8, "little")
        hashlib.sha256(image).hexdigest()
        name = os.path.join(out, "unit-%d.bin" % i)
        with open(name + ".part", "wb") as f:
            f.write(image)
        os.rename(name + ".part", name)
    print("%.6f" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
