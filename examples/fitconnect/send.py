"""Submits a Mängelanzeige to kopplung as a FIT-Connect sender, with FIT-Connect's
community Python SDK (PyPI `fitconnect`; scripts/demo installs it into
target/fitconnect-venv). See docs/fit-connect.md.

    target/fitconnect-venv/bin/python examples/fitconnect/send.py \\
      --hub http://127.0.0.1:8080 --client onlinedienst-demo \\
      --secret-file demo-data/fitconnect/onlinedienst-demo \\
      --ars 146120000000 --attachment foto-dokumentation.pdf
"""
import argparse
import sys

import requests
from fitconnect import Environment, FITConnectClient

MAENGELANZEIGE = "99999001000000"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--hub", default="http://127.0.0.1:8080")
parser.add_argument("--client", required=True, help="the sender's client_id")
parser.add_argument("--secret-file", required=True, help="a file holding its client_secret")
parser.add_argument("--ars", default="146120000000", help="the municipality (12-digit ARS)")
parser.add_argument("--attachment", help="a PDF to attach")
args = parser.parse_args()

# 1. Which destination is responsible (FIT-Connect's Routing API, answered by the hub).
routes = requests.get(
    f"{args.hub}/fitconnect/v1/routes",
    params={"leikaKey": MAENGELANZEIGE, "ars": args.ars},
    timeout=10,
).json()
if not routes.get("routes"):
    sys.exit(f"no destination takes a Mängelanzeige for {args.ars}: {routes}")
route = routes["routes"][0]
destination = route["destinationId"]
print(f"route: {route.get('destinationName')} → destination {destination}")

# 2. The SDK, pointed at the hub instead of FIT-Connect's test environment.
secret = open(args.secret_file, encoding="utf-8").read().strip()
sdk = FITConnectClient(Environment.TESTING, args.client, secret)
sdk.token_url = f"{args.hub}/fitconnect/token"
sdk.submission_api_url = f"{args.hub}/fitconnect/v1"

# 3. The data as the service's JSON Schema describes it (`submissionSchemas`).
schema = route["destinationParameters"]["submissionSchemas"][0]["schemaUri"]
data = {
    "$schema": schema,
    "region": args.ars,
    "data": {
        "kategorie": "strassenschaden",
        "beschreibung": "Tiefes Schlagloch vor der Hausnummer 12, Radfahrer weichen aus.",
        "ort": {"strasse": "Prager Straße", "hausnummer": "12"},
    },
}
attachments = [open(args.attachment, "rb").read()] if args.attachment else []
answer = sdk.submission(
    destination, f"urn:de:fim:leika:leistung:{MAENGELANZEIGE}", data=data, attachments=attachments
)
if answer.get("status") != "submitted":
    sys.exit(f"refused: {answer}")
print(
    f"submitted: submission {answer['submissionId']}, case {answer['caseId']}, receipt {answer['receipt']}"
)
