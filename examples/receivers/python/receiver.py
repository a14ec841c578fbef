#!/usr/bin/env python3
"""An example receiver of a specialist procedure (Fachverfahren), written from
docs/vendors.md alone, with the Python standard library, the `openssl` command line
and `xmllint` (profile `cms`).

It takes messages over HTTP push (`http`: it listens for the hub's POSTs) or the pull
API (`pull`: it polls the hub), and for each message:

1. de-duplicates on the message id (a message seen before gets the same answer again);
2. decrypts it with the procedure's key and verifies the hub's signature against the
   CA, pinning the hub's certificate by its SHA-256 fingerprint;
3. validates the XML against the message type's schema bundle fetched from the hub
   (GET /api/v1/schemas);
4. answers with a signed receipt (`accept`, or `reject` naming the schema problem):
   the HTTP answer's body, or with the pull acknowledgement;
5. later sends a signed decision with a PDF to the hub's events endpoint, retrying
   until a hub took it.

Usage (the demo's files; see docs/vendors.md, "Where the demo keeps them"):

    receiver.py http --listen 127.0.0.1:9201 --path /eingang --hub http://127.0.0.1:8080 \
        --procedure dresden-maengel --data-dir demo-data --state state/
    receiver.py pull ... (the same options; the token is <data-dir>/procedure-tokens/<id>)
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

MINIMAL_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
               b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
               b"trailer<</Root 1 0 R>>\n%%EOF\n")


def log(message, **fields):
    # Ids and outcomes only: never the content of an application.
    extra = " ".join(f"{key}={value}" for key, value in fields.items())
    print(f"{datetime.now(timezone.utc).isoformat()} {message} {extra}", file=sys.stderr, flush=True)


def run(*command, stdin=None):
    done = subprocess.run(command, input=stdin, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} {command[1]}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


class Procedure:
    def __init__(self, args):
        pki = os.path.join(args.data_dir, "pki")
        self.id = args.procedure
        self.hub = args.hub.rstrip("/")
        self.ca = os.path.join(pki, "ca.crt")
        self.cert = os.path.join(pki, "procedures", f"{self.id}.crt")
        self.key = os.path.join(pki, "procedures", f"{self.id}.key")
        self.signing_cert = os.path.join(pki, "procedures", f"{self.id}-signatur.crt")
        self.signing_key = os.path.join(pki, "procedures", f"{self.id}-signatur.key")
        self.hub_fingerprint = self.fingerprint(os.path.join(pki, "hub.crt"))
        with open(os.path.join(args.data_dir, "procedure-tokens", self.id)) as token:
            self.token = token.read().strip()
        self.state = args.state
        for folder in ("answers", "pending", "schemas"):
            os.makedirs(os.path.join(self.state, folder), exist_ok=True)
        self.lock = threading.Lock()

    @staticmethod
    def fingerprint(certificate):
        out = run("openssl", "x509", "-in", certificate, "-noout", "-fingerprint", "-sha256")
        return out.decode().strip().split("=", 1)[1]

    # --- talking to the hub -------------------------------------------------------

    def request(self, method, path, body=None, content_type=None, token=True):
        request = urllib.request.Request(self.hub + path, data=body, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        if token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def schema_for(self, message_type):
        """The message type's schema bundle, stored under its paths; None if unknown."""
        bundles = json.loads(self.request("GET", "/api/v1/schemas", token=False))["schemas"]
        for bundle in bundles:
            if bundle["message_type"] != message_type:
                continue
            root = os.path.join(self.state, "schemas", bundle["version"])
            for file in bundle["files"]:
                target = os.path.join(root, file["path"])
                if not os.path.exists(target):
                    content = self.request("GET", file["url"], token=False)
                    if hashlib.sha256(content).hexdigest() != file["sha256"]:
                        raise RuntimeError(f"schema file {file['path']}: hash differs")
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as out:
                        out.write(content)
            return os.path.join(root, bundle["schema"])
        return None

    # --- opening a message --------------------------------------------------------

    def open(self, sealed):
        """Decrypts and verifies; the XML, or raises ValueError for a forged message."""
        with tempfile.TemporaryDirectory() as work:
            path = lambda name: os.path.join(work, name)
            with open(path("nachricht.p7m"), "wb") as out:
                out.write(sealed)
            try:
                run("openssl", "cms", "-decrypt", "-binary", "-inform", "DER",
                    "-in", path("nachricht.p7m"), "-recip", self.cert, "-inkey", self.key,
                    "-out", path("signiert.der"))
                run("openssl", "cms", "-verify", "-binary", "-inform", "DER",
                    "-in", path("signiert.der"), "-CAfile", self.ca,
                    "-signer", path("absender.pem"), "-out", path("nachricht.xml"))
            except RuntimeError as error:
                raise ValueError(str(error)) from error
            if self.fingerprint(path("absender.pem")) != self.hub_fingerprint:
                raise ValueError("signed by someone else than the hub")
            with open(path("nachricht.xml"), "rb") as xml:
                return xml.read()

    def schema_problems(self, xml, message_type):
        schema = self.schema_for(message_type)
        if schema is None:
            return [{"type": "urn:example:problem:unknown-message-type",
                     "title": "Unbekannter Nachrichtentyp"}]
        checked = subprocess.run(["xmllint", "--noout", "--schema", schema, "-"],
                                 input=xml, capture_output=True)
        if checked.returncode != 0:
            return [{"type": "urn:example:problem:schema",
                     "title": "Die Nachricht entspricht nicht ihrem Schema"}]
        return []

    # --- answering ----------------------------------------------------------------

    def sign(self, event):
        return run("openssl", "cms", "-sign", "-binary", "-nodetach", "-outform", "DER",
                   "-md", "sha256", "-signer", self.signing_cert, "-inkey", self.signing_key,
                   stdin=json.dumps(event).encode())

    def event(self, message_id, application_id, kind, **content):
        # The receipt id follows from message and event: a retry is the same receipt.
        receipt_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.id}/{message_id}/{kind}"))
        event = {"receipt_id": receipt_id, "procedure": self.id, "message_id": message_id,
                 "application_id": application_id, "event": kind,
                 "issued_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        event.update(content)
        return event

    def handle(self, message_id, message_type, sealed):
        """The signed receipt for a message (the same one for a message seen before)."""
        with self.lock:
            stored = os.path.join(self.state, "answers", f"{message_id}.p7m")
            if os.path.exists(stored):
                log("message seen before: same receipt", message_id=message_id)
                with open(stored, "rb") as answer:
                    return answer.read()
            xml = self.open(sealed)
            text = xml.decode()
            # The ids from the signed XML, not from unsigned headers.
            message_id = re.search(r"<nachrichtenUUID>([^<]+)<", text).group(1)
            application_id = re.search(r"<antragsID>([^<]+)<", text).group(1)
            problems = self.schema_problems(xml, message_type)
            if problems:
                receipt = self.event(message_id, application_id, "reject", problems=problems)
            else:
                receipt = self.event(message_id, application_id, "accept")
                # The decision is stored before the message is acknowledged.
                with open(os.path.join(self.state, "pending", f"{message_id}.json"), "w") as out:
                    json.dump({"message_id": message_id, "application_id": application_id}, out)
            signed = self.sign(receipt)
            with open(stored + ".tmp", "wb") as out:
                out.write(signed)
                out.flush()
                os.fsync(out.fileno())
            os.rename(stored + ".tmp", stored)
            log("message taken", message_id=message_id, event=receipt["event"])
            return signed

    def send_decisions(self):
        """Sends every pending decision until a hub took it (docs/vendors.md)."""
        folder = os.path.join(self.state, "pending")
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name)) as pending:
                ids = json.load(pending)
            decision = self.event(
                ids["message_id"], ids["application_id"], "decision",
                message="Ihr Anliegen wurde bearbeitet.",
                document={"filename": "bescheid.pdf", "media_type": "application/pdf",
                          "content_base64": base64.b64encode(MINIMAL_PDF).decode()})
            try:
                self.request("POST", f"/api/v1/procedures/{self.id}/events",
                             self.sign(decision), "application/pkcs7-mime")
            except urllib.error.HTTPError as error:
                problem = json.loads(error.read() or b"{}").get("type", "")
                taken = error.code == 409 and not problem.endswith("event-out-of-order")
                later = error.code in (403, 404, 408, 409, 429) or error.code >= 500
                if not taken and later:
                    log("decision not taken yet", message_id=ids["message_id"], status=error.code)
                    continue
                if not taken:
                    # Refused for good: sending again will not help. Keep it for a person.
                    os.rename(os.path.join(folder, name),
                              os.path.join(self.state, "refused-" + name))
                    log("ERROR decision refused, kept aside", message_id=ids["message_id"],
                        problem=problem)
                    continue
            except OSError as error:
                log("hub not reachable", error=error)
                return
            os.remove(os.path.join(folder, name))
            log("decision sent", message_id=ids["message_id"])


def serve_http(procedure, listen, path):
    host, port = listen.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != path:
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length", "0"))
            if length > 16 << 20:
                self.send_error(413)
                return
            body = self.rfile.read(length)
            try:
                signed = procedure.handle(self.headers.get("Idempotency-Key", ""),
                                          self.headers.get("X-Kopplung-Message-Type", ""), body)
            except ValueError as error:
                log("message refused", reason=error)
                self.send_error(400)
                return
            except Exception as error:  # anything else: ask the hub to come again
                log("try again later", reason=error)
                self.send_response(503)
                self.send_header("Retry-After", "5")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/pkcs7-mime; smime-type=signed-data")
            self.send_header("Content-Length", str(len(signed)))
            self.end_headers()
            self.wfile.write(signed)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    log("receiving over HTTP", listen=listen, path=path)
    server.serve_forever()


def poll(procedure):
    listing = json.loads(procedure.request("GET", f"/api/v1/procedures/{procedure.id}/messages"))
    for message in listing["messages"]:
        message_id = message["message_id"]
        sealed = procedure.request("GET", f"/api/v1/procedures/{procedure.id}/messages/{message_id}")
        if hashlib.sha256(sealed).hexdigest() != message["sha256"]:
            log("download damaged, again later", message_id=message_id)
            continue
        try:
            receipt = procedure.handle(message_id, message["message_type"], sealed)
        except ValueError as error:
            # Not from the hub: do not acknowledge; tell the operator.
            log("message refused", message_id=message_id, reason=error)
            continue
        procedure.request("POST", f"/api/v1/procedures/{procedure.id}/messages/{message_id}/ack",
                          receipt, "application/pkcs7-mime")
        log("collected and acknowledged", message_id=message_id)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("transport", choices=["http", "pull"])
    parser.add_argument("--hub", required=True)
    parser.add_argument("--procedure", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--listen", default="127.0.0.1:9201")
    parser.add_argument("--path", default="/eingang")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    procedure = Procedure(args)
    if args.transport == "http":
        threading.Thread(target=serve_http, args=(procedure, args.listen, args.path),
                         daemon=True).start()
    while True:
        try:
            if args.transport == "pull":
                poll(procedure)
            procedure.send_decisions()
        except OSError as error:
            log("hub not reachable", error=error)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
