"""Collects a procedure's submissions from kopplung as a FIT-Connect subscriber, with
FIT-Connect's community Python SDK (PyPI `fitconnect`), checks them with the SDK's own
functions, stores them, and accepts each with a signed Security Event Token. See
docs/fit-connect.md, "For subscribers".

    python examples/fitconnect/collect.py --hub https://kopplung.example \\
      --client bautzen-fachverfahren --secret-file client-secret \\
      --destination <destination id> --encryption-key abonnent.key \\
      --signing-key signatur.key --out eingang/
"""
import argparse
import json
import os
import time
import uuid

from fitconnect import Environment, FITConnectClient
from jwcrypto import jwk, jwt

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--hub", required=True)
parser.add_argument("--client", required=True)
parser.add_argument("--secret-file", required=True)
parser.add_argument("--destination", required=True, help="your destination id (the events' iss)")
parser.add_argument("--encryption-key", required=True, help="PEM: your RSA-4096 decryption key")
parser.add_argument("--signing-key", required=True, help="PEM: the key of your receipt_certificate")
parser.add_argument("--out", default=".", help="where each submission is stored")
args = parser.parse_args()

secret = open(args.secret_file, encoding="utf-8").read().strip()
sdk = FITConnectClient(Environment.TESTING, args.client, secret)
sdk.token_url = f"{args.hub}/fitconnect/token"
sdk.submission_api_url = f"{args.hub}/fitconnect/v1"
private_key = jwk.JWK.from_pem(open(args.encryption_key, "rb").read())
signing_key = jwk.JWK.from_pem(open(args.signing_key, "rb").read())
algorithm = "PS512" if signing_key.get("kty") == "RSA" else "ES256"

for listed in sdk.available_submissions():
    submission_id = listed["submissionId"]
    submission = sdk._get_submission(submission_id)
    metadata = sdk.decrypt_json(private_key, submission["encryptedMetadata"])
    sdk._validate_metadata_schema(metadata)
    data = sdk.decrypt(private_key, submission["encryptedData"])
    sdk.verify_metadata_data_hash(metadata, data)
    folder = os.path.join(args.out, submission_id)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "nachricht.xml"), "wb") as file:
        file.write(data)
    with open(os.path.join(folder, "metadata.json"), "w", encoding="utf-8") as file:
        json.dump(metadata, file, ensure_ascii=False, indent=2)
    names = {a["attachmentId"]: a.get("filename") for a in metadata["contentStructure"]["attachments"]}
    for attachment_id in submission["attachments"]:
        jwe = sdk._authorized_get(f"/submissions/{submission_id}/attachments/{attachment_id}").text
        content = sdk.decrypt(private_key, jwe)
        sdk.verify_metadata_attachment_hash(metadata, attachment_id, content)
        with open(os.path.join(folder, names.get(attachment_id) or attachment_id), "wb") as file:
            file.write(content)
    # Stored: accept it (or reject it with problems, `reject-submission`).
    token = jwt.JWT(
        header={"alg": algorithm, "typ": "secevent+jwt", "kid": signing_key.thumbprint()},
        claims={
            "$schema": "https://schema.fitko.de/fit-connect/set-payload/1.0.0/set-payload.schema.json",
            "jti": str(uuid.uuid4()),
            "iss": args.destination,
            "iat": int(time.time()),
            "sub": f"submission:{submission_id}",
            "txn": f"case:{submission['caseId']}",
            "events": {"https://schema.fitko.de/fit-connect/events/accept-submission": {}},
        },
    )
    token.make_signed_token(signing_key)
    answer = sdk._authorized_post(f"/cases/{submission['caseId']}/events", data=token.serialize())
    print(f"{submission_id}: stored in {folder}, accept → {answer.status_code}")
