"""A FIT-Connect subscriber against kopplung, with FIT-Connect's community Python SDK
(PyPI `fitconnect`, unmodified; its two addresses point at the hub): it lists its
submissions, fetches one, decrypts metadata, data and attachments with its own key,
checks the metadata against the official schema and every hash with the SDK's own
functions, and answers with signed events (the SDK has none: it posts them with its
own authorised request, as FIT-Connect defines them).

Run by tests/tests/fitconnect_subscriber.rs; prints one JSON object.
Environment: KOPPLUNG_URL, CLIENT_ID, CLIENT_SECRET, SUBMISSION, DESTINATION,
ENCRYPTION_KEY and SIGNING_KEY (PEM files of the subscriber).
"""
import base64
import json
import os
import sys
import time
import uuid

from jwcrypto import jwk, jwt
from fitconnect import Environment, FITConnectClient

env = os.environ
base = env["KOPPLUNG_URL"]
sdk = FITConnectClient(Environment.TESTING, env["CLIENT_ID"], env["CLIENT_SECRET"])
sdk.token_url = f"{base}/fitconnect/token"
sdk.submission_api_url = f"{base}/fitconnect/v1"
submission_id = env["SUBMISSION"]
private_key = jwk.JWK.from_pem(open(env["ENCRYPTION_KEY"], "rb").read())
signing_key = jwk.JWK.from_pem(open(env["SIGNING_KEY"], "rb").read())
results = {}

results["listed"] = sdk.available_submissions()
submission = sdk._get_submission(submission_id)
case_id = submission["caseId"]
results["serviceType"] = submission["serviceType"]

metadata = sdk.decrypt_json(private_key, submission["encryptedMetadata"])
sdk._validate_metadata_schema(metadata)  # raises if it violates the official schema
results["metadata"] = metadata
data = sdk.decrypt(private_key, submission["encryptedData"])
sdk.verify_metadata_data_hash(metadata, data)  # raises on a wrong hash
results["data"] = data.decode("utf-8")
results["attachments"] = {}
for attachment_id in submission["attachments"]:
    response = sdk._authorized_get(f"/submissions/{submission_id}/attachments/{attachment_id}")
    content = sdk.decrypt(private_key, response.text)
    sdk.verify_metadata_attachment_hash(metadata, attachment_id, content)
    results["attachments"][attachment_id] = base64.b64encode(content).decode()
# The SDK's hash check catches a changed byte.
try:
    sdk.verify_metadata_data_hash(metadata, data + b" ")
    results["tampered_data_detected"] = False
except ValueError:
    results["tampered_data_detected"] = True


def event(key, event_name="accept-submission", body=None):
    claims = {
        "$schema": "https://schema.fitko.de/fit-connect/set-payload/1.0.0/set-payload.schema.json",
        "jti": str(uuid.uuid4()),
        "iss": env["DESTINATION"],
        "iat": int(time.time()),
        "sub": f"submission:{submission_id}",
        "txn": f"case:{case_id}",
        "events": {f"https://schema.fitko.de/fit-connect/events/{event_name}": body or {}},
    }
    token = jwt.JWT(
        header={"alg": "PS512", "typ": "secevent+jwt", "kid": key.thumbprint()},
        claims=claims,
    )
    token.make_signed_token(key)
    return token.serialize()


def post(token):
    response = sdk._authorized_post(f"/cases/{case_id}/events", data=token)
    body = response.json() if response.content else None
    return {"status": response.status_code, "body": body}


# A token signed with a key that is not the subscriber's: refused.
forger = jwk.JWK.generate(kty="RSA", size=4096)
results["forged"] = post(event(forger))
accept = event(signing_key)
results["accepted"] = post(accept)
# The same token again: a replay, which changes nothing.
results["replayed"] = post(accept)
# The authority rejects it after all (allowed after a receipt), with its problems.
problems = {
    "problems": [
        {
            "type": "https://schema.fitko.de/fit-connect/events/problems/technical-error",
            "title": "Technischer Fehler",
            "detail": "Die Einreichung konnte nicht verarbeitet werden.",
            "instance": "submission",
        }
    ]
}
results["rejected"] = post(event(signing_key, "reject-submission", problems))
log = sdk._authorized_get(f"/cases/{case_id}/events").json()
results["event_log"] = log
json.dump(results, sys.stdout)
