"""Verifies an ID token of the demo Servicekonto as a relying party of another ecosystem
would: python jwcrypto, the provider's published JWKS, RS256 only. Prints the header and
the claims as JSON; exits non-zero when the signature does not hold.

    python verify_id_token.py jwks.json id_token.txt
"""
import json
import sys

from jwcrypto import jwk, jws

keys = jwk.JWKSet.from_json(open(sys.argv[1], encoding="utf-8").read())
token = open(sys.argv[2], encoding="utf-8").read().strip()
signed = jws.JWS()
signed.deserialize(token)
header = signed.jose_header
key = keys.get_key(header["kid"])
if key is None:
    sys.exit(f"no key {header['kid']} in the JWKS")
signed.verify(key, alg="RS256")
print(json.dumps({"header": header, "claims": json.loads(signed.payload)}))
