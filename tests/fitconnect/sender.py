"""A FIT-Connect sender against kopplung, with FIT-Connect's community Python SDK
(PyPI `fitconnect`, unmodified): its environment's two addresses point at the hub.

Run by tests/tests/fitconnect.rs; prints one JSON object with what each case gave.
Environment: KOPPLUNG_URL, DESTINATION, LEIKA, REGION, SENDER_ID, SENDER_SECRET,
FOREIGN_ID, FOREIGN_SECRET, PDF (a file to attach).
"""
import copy
import hashlib
import json
import os
import sys
import uuid

from fitconnect import Environment, FITConnectClient

env = os.environ
base = env["KOPPLUNG_URL"]


def client(client_id, secret):
    sdk = FITConnectClient(Environment.TESTING, client_id, secret)
    sdk.token_url = f"{base}/fitconnect/token"
    sdk.submission_api_url = f"{base}/fitconnect/v1"
    return sdk


sender = client(env["SENDER_ID"], env["SENDER_SECRET"])
destination = env["DESTINATION"]
leika = f"urn:de:fim:leika:leistung:{env['LEIKA']}"
pdf = open(env["PDF"], "rb").read()

# The data document the hub publishes a schema for (`submissionSchemas` of the
# destination): the region and the form's data.
schema_uri = f"{base}/fitconnect/v1/schemas/{env['LEIKA']}.schema.json"
data = {
    "$schema": schema_uri,
    "region": env["REGION"],
    "data": {
        "kategorie": "strassenschaden",
        "beschreibung": "Tiefes Schlagloch vor der Hausnummer, Radfahrer weichen aus.",
        "ort": {"strasse": "Prager Straße", "hausnummer": "12"},
    },
}
results = {}

# 1. The all-in-one submission with one attachment.
results["sent"] = sender.submission(destination, leika, data=data, attachments=[pdf])
# The same PUT again (a sender that lost the answer): the first answer.
results["repeated"] = sender.submit_submission(
    destination, results["sent"]["submissionId"], metadata={"again": True}, data=data
)


def metadata_for(data_bytes, attachments):
    return {
        "$schema": "https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json",
        "contentStructure": {
            "data": {
                "hash": {"type": "sha512", "content": hashlib.sha512(data_bytes).hexdigest()},
                "submissionSchema": {"schemaUri": schema_uri, "mimeType": "application/json"},
            },
            "attachments": attachments,
        },
    }


def attachment_entry(attachment_id, content):
    return {
        "attachmentId": attachment_id,
        "hash": {"type": "sha512", "content": hashlib.sha512(content).hexdigest()},
        "mimeType": "application/pdf",
        "purpose": "attachment",
    }


def refused(metadata, attach=True):
    """Announces, uploads the PDF and submits `metadata(attachment_id)` with the data
    through the SDK's primitives; the hub's answer."""
    created = sender.create_submission(destination, leika, 1 if attach else 0)
    submission_id = created["submissionId"]
    attachment_id = created["announcedAttachments"][0] if attach else None
    if attach:
        sender.upload_attachment(destination, submission_id, attachment_id, attachment=pdf)
    return sender.submit_submission(
        destination, submission_id, metadata=metadata(attachment_id), data=data
    )


data_bytes = json.dumps(data).encode("utf-8")
# 2. The data's hash is of other bytes.
results["wrong_data_hash"] = refused(
    lambda a: metadata_for(data_bytes + b" ", [attachment_entry(a, pdf)])
)
# 3. The attachment's hash is of other bytes.
results["wrong_attachment_hash"] = refused(
    lambda a: metadata_for(data_bytes, [attachment_entry(a, pdf + b"x")])
)
# 4. Metadata that violates the official schema (a hash type it does not know).
def bad_schema(a):
    metadata = metadata_for(data_bytes, [attachment_entry(a, pdf)])
    metadata["contentStructure"]["data"]["hash"]["type"] = "md5"
    return metadata
results["schema_violation"] = refused(bad_schema)
# 5. An attachment announced and described, never uploaded.
created = sender.create_submission(destination, leika, 1)
results["missing_attachment"] = sender.submit_submission(
    destination,
    created["submissionId"],
    metadata=metadata_for(data_bytes, [attachment_entry(created["announcedAttachments"][0], pdf)]),
    data=data,
)

# 6. Data that inflates beyond what the hub takes: a few KiB of zip DEF, refused
# before it is read (the SDK's own encryption compresses).
bomb = sender.create_submission(destination, leika, 0)
results["data_bomb"] = sender.submit_submission(
    destination,
    bomb["submissionId"],
    metadata=metadata_for(data_bytes, []),
    data_encrypted=sender.encrypt(destination, b"0" * (30 * 1024 * 1024)),
)

# 7. A destination the hub does not have; 8. a token whose scope does not reach it.
for case, sdk, target in [
    ("unknown_destination", sender, str(uuid.uuid4())),
    ("foreign_token", client(env["FOREIGN_ID"], env["FOREIGN_SECRET"]), destination),
]:
    try:
        sdk.create_submission(target, leika, 0)
        results[case] = "created"
    except ValueError as error:
        results[case] = " ".join(str(a) for a in error.args)

json.dump(results, sys.stdout)
