"""A FIT-Connect sender submits a Meldebescheinigung — a service that needs the
applicant identified at level substanziell and a fee — with FIT-Connect's community
Python SDK (unmodified): the citizen's identification report in
`authenticationInformation`, the booked payment in `paymentInformation`; then the same
without the identification report.

Run by tests/tests/fitconnect.rs; prints one JSON object.
Environment: KOPPLUNG_URL, DESTINATION, LEIKA, REGION, SENDER_ID, SENDER_SECRET,
REPORT (the identification report, a signed token of the citizen's Nutzerkonto).
"""
import json
import os
import sys

from fitconnect import Environment, FITConnectClient

env = os.environ
base = env["KOPPLUNG_URL"]
sdk = FITConnectClient(Environment.TESTING, env["SENDER_ID"], env["SENDER_SECRET"])
sdk.token_url = f"{base}/fitconnect/token"
sdk.submission_api_url = f"{base}/fitconnect/v1"
leika = f"urn:de:fim:leika:leistung:{env['LEIKA']}"
data = {
    "$schema": f"{base}/fitconnect/v1/schemas/{env['LEIKA']}.schema.json",
    "region": env["REGION"],
    "data": {
        "art": "einfach",
        "person": {
            "familienname": "Hartmann",
            "vornamen": "Sabine",
            "geburtsdatum": "1979-06-23",
            "geburtsort": "Dresden",
        },
        "anschrift": {
            "strasse": "Prager Straße",
            "hausnummer": "21",
            "postleitzahl": "01069",
            "ort": "Dresden",
        },
        "verwendungszweck": "zur Vorlage beim Arbeitgeber",
        "zustellung": "post",
    },
}


def metadata(identified):
    metadata = {
        "$schema": "https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json",
        "contentStructure": {"attachments": []},
        "paymentInformation": {
            "transactionReference": "XBZ-2026-0000815",
            "transactionId": "tx-0815",
            "paymentMethod": "CREDITCARD",
            "status": "BOOKED",
        },
    }
    if identified:
        metadata["authenticationInformation"] = [
            {"type": "identificationReport", "version": "1.0.0", "content": env["REPORT"]}
        ]
    return metadata


results = {
    "identified": sdk.submission(env["DESTINATION"], leika, metadata=metadata(True), data=data),
    "anonymous": sdk.submission(env["DESTINATION"], leika, metadata=metadata(False), data=data),
}
json.dump(results, sys.stdout)
