#!/usr/bin/env python3
"""Reads and checks the applicant's identification of a kopplung message, as a vendor would.

usage: nachweis_check.py MESSAGE_XML

Reads `antrag/authentifizierung` of the (already decrypted and verified) XML message.
Without it: prints {"authentifizierung": null} (an anonymous submission). With it: if the
message carries the identity provider's assertion (`nachweis`), checks that its SHA-256
is `nachweisSHA256`, fetches the issuer's keys (OpenID Connect discovery at `aussteller`,
then its JWKS), verifies the assertion's signature (RS256 or ES256) and that it names
the same issuer, subject and authentication time. Prints the block and the assertion's
claims as JSON.

Anything refused: a reason on stderr and exit status 1. Requires jwcrypto (1.5). The
hub's end-to-end test runs this script (tests/tests/identity_to_procedure.rs). The part
between the two marker lines is the snippet in docs/vendors.md ("Who applied"),
verbatim: a test checks that.
"""

import sys

# >>> docs/vendors.md
import datetime
import hashlib
import json
import urllib.request
import xml.etree.ElementTree as ET

from jwcrypto import jwk, jws


def authentifizierung(message_xml: bytes):
    """The block as a dict (codes for vertrauensniveau and identifizierungsmittel), or
    None: an anonymous submission."""
    block = ET.fromstring(message_xml).find("antrag/authentifizierung")
    if block is None:
        return None
    return {child.tag: (child.findtext("code") or child.text or "").strip() for child in block}


def fetch_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def check_nachweis(auth: dict) -> dict:
    """Checks the forwarded assertion (an OpenID Connect ID token) against the block and
    its issuer's keys; returns its claims. Raises if anything does not hold."""
    nachweis = auth["nachweis"]
    if hashlib.sha256(nachweis.encode("ascii")).hexdigest() != auth["nachweisSHA256"]:
        raise ValueError("nachweis does not match nachweisSHA256")
    issuer = auth["aussteller"]
    discovery = fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if discovery["issuer"] != issuer:
        raise ValueError("the discovery document names another issuer")
    keys = jwk.JWKSet.from_json(json.dumps(fetch_json(discovery["jwks_uri"])))
    token = jws.JWS()
    token.allowed_algs = ["RS256", "ES256"]  # what the hub accepts from identity providers
    token.deserialize(nachweis)
    key = keys.get_key(token.jose_header.get("kid"))
    if key is None:
        raise ValueError("the issuer no longer publishes the key; ask the hub operator")
    token.verify(key)  # raises if the signature is wrong
    # Not `exp`: the token expired minutes after the hub checked it at intake; the
    # signature still proves that the issuer issued it.
    claims = json.loads(token.payload)
    if claims.get("iss") != issuer or claims.get("sub") != auth["pseudonym"]:
        raise ValueError("the assertion names another issuer or subject")
    zeitpunkt = datetime.datetime.fromisoformat(auth["zeitpunkt"].replace("Z", "+00:00"))
    if claims.get("auth_time") != int(zeitpunkt.timestamp()):
        raise ValueError("the assertion's auth_time is not zeitpunkt")
    return claims
# <<< docs/vendors.md


def main(args):
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], "rb") as f:
        auth = authentifizierung(f.read())
    claims = None
    if auth is not None and auth.get("nachweis"):
        claims = check_nachweis(auth)
    json.dump({"authentifizierung": auth, "claims": claims}, sys.stdout)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # anything refused: no output, exit status 1
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
