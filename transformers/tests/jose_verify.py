#!/usr/bin/env python3
"""Opens a kopplung message of the `jose` profile with jwcrypto, as a vendor would.

usage: jose_verify.py [--reports OUT] JWE_FILE RECIPIENT_CERT RECIPIENT_KEY CA_CERT [HUB_SHA256]
       jose_verify.py --attachment JWE_FILE RECIPIENT_CERT RECIPIENT_KEY

A message: decrypts the compact JWE (RSA-OAEP-256, A256GCM) with the recipient's key,
checks alg, enc, kid and cty, verifies the inner JWS (PS512 or ES256) with the leaf
certificate of its x5c, checks that this certificate chains to CA_CERT (signatures and
validity periods) and, if HUB_SHA256 is given, that its SHA-256 fingerprint is that one
(hex, colons allowed: the output of `openssl x509 -fingerprint -sha256`). Writes the
payload, the XML message, to stdout; with --reports, the applicant's Identification
Reports from the JWS header's authenticationInformation (each verified as the hub's) to
OUT as a JSON list.

An attachment: decrypts and checks alg, enc and kid; writes the bytes to stdout (check
them against the SHA-512 in the message).

Anything refused: a reason on stderr and exit status 1. Requires jwcrypto (1.5) and the
cryptography package it installs. The transformers tests run this script (tests/jose.rs).
The part between the two marker lines is the snippet in docs/vendors.md ("The `jose`
profile"), verbatim: a test checks that.
"""

import sys

# >>> docs/vendors.md
import base64
import datetime
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from jwcrypto import jwe, jwk, jws


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decrypt(compact: str, recipient_cert_pem: bytes, recipient_key_pem: bytes):
    """Decrypts the JWE; returns its protected header and its plaintext."""
    recipient = x509.load_pem_x509_certificate(recipient_cert_pem)
    kid = b64url(recipient.fingerprint(hashes.SHA256()))
    envelope = jwe.JWE(algs=["RSA-OAEP-256", "A256GCM"])  # nothing else is accepted
    envelope.deserialize(compact, key=jwk.JWK.from_pem(recipient_key_pem))
    header = envelope.jose_header
    if header.get("alg") != "RSA-OAEP-256" or header.get("enc") != "A256GCM":
        raise ValueError("not RSA-OAEP-256 with A256GCM")
    if header.get("kid") != kid:
        raise ValueError("not encrypted for this certificate (kid)")
    return header, envelope.payload


def check_chain(leaf, intermediates, anchors):
    """The leaf chains to one of the anchors: signatures and validity periods."""
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = leaf
    for _ in range(len(intermediates) + 1):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ValueError("certificate not valid now: " + cert.subject.rfc4514_string())
        for anchor in anchors:
            if anchor.subject == cert.issuer:
                cert.verify_directly_issued_by(anchor)  # raises if the signature is wrong
                return
        issuer = next((c for c in intermediates if c.subject == cert.issuer), None)
        if issuer is None:
            break
        if not issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise ValueError("an intermediate certificate is no CA")
        cert.verify_directly_issued_by(issuer)
        cert = issuer
    raise ValueError("the signer does not chain to the CA")


def open_message(compact, recipient_cert_pem, recipient_key_pem, ca_pem, pin=None) -> bytes:
    header, signed = decrypt(compact, recipient_cert_pem, recipient_key_pem)
    if header.get("cty") != "JOSE":
        raise ValueError("the JWE does not carry a JWS (cty)")

    message = jws.JWS()
    message.allowed_algs = ["PS512", "ES256"]  # nothing else is accepted
    message.deserialize(signed.decode("ascii"))
    signer_header = message.jose_header
    if signer_header.get("cty") != "application/xml":
        raise ValueError("the JWS does not carry XML (cty)")
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in signer_header["x5c"]]
    leaf = chain[0]
    check_chain(leaf, chain[1:], x509.load_pem_x509_certificates(ca_pem))
    if pin is not None:
        fingerprint = leaf.fingerprint(hashes.SHA256()).hex()
        if fingerprint != pin.replace(":", "").lower():
            raise ValueError("the signer is not the pinned hub certificate")
    # Raises if the signature is wrong; PS512 needs an RSA key, ES256 an EC P-256 key.
    hub_key = jwk.JWK.from_pem(leaf.public_bytes(serialization.Encoding.PEM))
    message.verify(hub_key)
    return message.payload, identification_reports(signer_header, hub_key)


def identification_reports(signer_header, hub_key) -> list:
    """The applicant's identification (FIT-Connect's authenticationInformation): each
    Identification Report, verified as signed by the hub. Empty: anonymous."""
    reports = []
    for entry in signer_header.get("authenticationInformation", []):
        if entry.get("type") != "identificationReport":
            raise ValueError("unknown authenticationInformation type: " + str(entry.get("type")))
        report = jws.JWS()
        report.allowed_algs = ["PS512", "ES256"]
        report.deserialize(entry["content"])
        if report.jose_header.get("typ") != "JWT" or report.jose_header.get("x5c") != signer_header["x5c"]:
            raise ValueError("the identification report is not the hub's")
        report.verify(hub_key)  # raises if the signature is wrong
        reports.append(json.loads(report.payload))
    return reports


def open_attachment(compact, recipient_cert_pem, recipient_key_pem) -> bytes:
    return decrypt(compact, recipient_cert_pem, recipient_key_pem)[1]
# <<< docs/vendors.md


def main(args):
    def read(path):
        with open(path, "rb") as f:
            return f.read()

    reports_file = None
    if args[:1] == ["--reports"] and len(args) > 1:
        reports_file, args = args[1], args[2:]
    if args[:1] == ["--attachment"] and len(args) == 4:
        content = open_attachment(read(args[1]).decode("ascii").strip(), read(args[2]), read(args[3]))
    elif len(args) in (4, 5):
        pin = args[4] if len(args) == 5 else None
        compact = read(args[0]).decode("ascii").strip()
        content, reports = open_message(compact, read(args[1]), read(args[2]), read(args[3]), pin)
        if reports_file is not None:
            with open(reports_file, "w", encoding="utf-8") as f:
                json.dump(reports, f)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.buffer.write(content)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # anything refused: no output, exit status 1
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
