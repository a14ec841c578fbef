#!/usr/bin/env python3
"""An example receiver of a specialist procedure (Fachverfahren), written from
docs/vendors.md alone, with the Python standard library, the `openssl` command line
and `xmllint` (profile `cms`); for AMQP also `pika`.

It takes messages over HTTP push (`http`: it listens for the hub's POSTs), the pull
API (`pull`: it polls the hub), AMQP (`amqp`: it consumes the procedure's durable
queue) or a file drop (`file`: it imports from the exchange folder), and for each
message:

1. de-duplicates on the message id (a message seen before gets the same answer again);
2. decrypts it with the procedure's key and verifies the hub's signature against the
   CA, pinning the hub's certificate by its SHA-256 fingerprint;
3. validates the XML against the message type's schema bundle fetched from the hub
   (GET /api/v1/schemas);
4. answers with a signed receipt (`accept`, or `reject` naming the schema problem):
   the HTTP answer's body, with the pull acknowledgement, on the reply queue or to the
   receipts endpoint (AMQP; the message is acknowledged only after the hub or the
   broker took the receipt), or as a file in the exchange folder's `incoming`;
5. later sends a signed decision with a PDF the same way, until a hub took it.

Usage (the demo's files; see docs/vendors.md, "Where the demo keeps them"):

    receiver.py http --listen 127.0.0.1:9201 --path /eingang --hub http://127.0.0.1:8080 \
        --procedure dresden-maengel --data-dir demo-data --state state/
    receiver.py pull ... (the same options; the token is <data-dir>/procedure-tokens/<id>)
    receiver.py amqp ... --amqp amqp://guest:guest@127.0.0.1:5672/%2f \
        --queue kopplung.dresden-maengel [--reply-queue kopplung.dresden-maengel.events]
    receiver.py file ... --exchange demo-data/exchange/dresden-maengel
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

# Enough for a service that takes any PDF (the Mängelanzeige this example decides on). A
# service that demands PDF/A (docs/vendors.md, "PDF/A decisions") refuses it with
# 422 bad-document: send what your document generator wrote as PDF/A instead.
MINIMAL_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
               b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
               b"trailer<</Root 1 0 R>>\n%%EOF\n")

# What became of an answer handed to the hub.
TAKEN, LATER, REFUSED = "taken", "later", "refused"


def log(message, **fields):
    # Ids and outcomes only: never the content of an application.
    extra = " ".join(f"{key}={value}" for key, value in fields.items())
    print(f"{datetime.now(timezone.utc).isoformat()} {message} {extra}", file=sys.stderr, flush=True)


def run(*command, stdin=None):
    done = subprocess.run(command, input=stdin, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} {command[1]}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def write_atomically(path, content):
    """Whole or absent: a temporary name starting with `.`, fsync, rename."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.tmp")
    with open(temporary, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.rename(temporary, path)


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
        for folder in ("answers", "pending", "schemas", "refused"):
            os.makedirs(os.path.join(self.state, folder), exist_ok=True)
        self.lock = threading.Lock()
        # Where answers go besides the HTTP API: a reply queue (AMQP) or `incoming`.
        self.reply_queue = None
        self.incoming = None

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

    def keep_refused(self, message_id, sealed, reason):
        """A message that does not open is kept for a person, never dropped."""
        name = hashlib.sha256(sealed).hexdigest()[:16]
        write_atomically(os.path.join(self.state, "refused", f"{name}.msg"), sealed)
        log("ERROR message refused (not from the hub or not for us); kept aside",
            message_id=message_id, reason=reason, file=f"refused/{name}.msg")

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
        """The signed receipt for a message (the same one for a message seen before),
        and the message id from the signed XML."""
        with self.lock:
            stored = os.path.join(self.state, "answers", f"{message_id}.p7m")
            if os.path.exists(stored):
                log("message seen before: same receipt", message_id=message_id)
                with open(stored, "rb") as answer:
                    return answer.read(), message_id
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
                pending = {"message_id": message_id, "application_id": application_id}
                write_atomically(os.path.join(self.state, "pending", f"{message_id}.json"),
                                 json.dumps(pending).encode())
            signed = self.sign(receipt)
            write_atomically(os.path.join(self.state, "answers", f"{message_id}.p7m"), signed)
            log("message taken", message_id=message_id, event=receipt["event"])
            return signed, message_id

    def post(self, path, signed):
        """Sends a signed answer to the hub's API: taken, later, or refused (with the
        problem type), as docs/vendors.md ("keep every answer until a hub took it")."""
        try:
            self.request("POST", f"/api/v1/procedures/{self.id}/{path}", signed,
                         "application/pkcs7-mime")
            return TAKEN, ""
        except urllib.error.HTTPError as error:
            problem = json.loads(error.read() or b"{}").get("type", "")
            if error.code == 409 and not problem.endswith("event-out-of-order"):
                return TAKEN, problem  # the hub has it already, or the case is closed
            if error.code in (403, 404, 408, 409, 429) or error.code >= 500:
                return LATER, f"{error.code} {problem}"
            return REFUSED, problem
        except OSError as error:
            return LATER, str(error)

    def send(self, signed, kind, message_id):
        """Hands a signed answer (a receipt or an event) to the hub on this procedure's
        channel: a reply queue, the `incoming` folder, else the HTTP API."""
        if self.incoming is not None:
            return self.leave_file(signed, kind, message_id)
        if self.reply_queue is not None:
            return self.reply_queue(signed)
        return self.post("receipts" if kind == "receipt" else "events", signed)

    def leave_file(self, signed, kind, message_id):
        """File drop: the answer is left in `incoming` once; its fate is where the hub
        moved it (`taken/`, or `refused/` with the problem beside it)."""
        name = f"{kind}-{message_id}.p7m"
        if os.path.exists(os.path.join(self.incoming, name)):
            return LATER, "not read by the hub yet"
        if os.path.exists(os.path.join(self.incoming, "taken", name)):
            return TAKEN, ""
        problem = os.path.join(self.incoming, "refused", name + ".problem.json")
        if os.path.exists(problem):
            with open(problem) as document:
                return REFUSED, json.load(document).get("type", "")
        write_atomically(os.path.join(self.incoming, name), signed)
        return LATER, "left in the incoming folder"

    def send_decisions(self):
        """Sends every pending decision until a hub took it (docs/vendors.md)."""
        folder = os.path.join(self.state, "pending")
        for name in sorted(os.listdir(folder)):
            if name.startswith("."):
                continue
            with open(os.path.join(folder, name)) as pending:
                ids = json.load(pending)
            decision = self.event(
                ids["message_id"], ids["application_id"], "decision",
                message="Ihr Anliegen wurde bearbeitet.",
                document={"filename": "bescheid.pdf", "media_type": "application/pdf",
                          "content_base64": base64.b64encode(MINIMAL_PDF).decode()})
            outcome, reason = self.send(self.sign(decision), "decision", ids["message_id"])
            if outcome == LATER:
                log("decision not taken yet", message_id=ids["message_id"], reason=reason)
                continue
            if outcome == REFUSED:
                # Refused for good: sending again will not help. Keep it for a person.
                os.rename(os.path.join(folder, name),
                          os.path.join(self.state, "refused", "decision-" + name))
                log("ERROR decision refused, kept aside", message_id=ids["message_id"],
                    problem=reason)
                continue
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
                signed, _ = procedure.handle(self.headers.get("Idempotency-Key", ""),
                                             self.headers.get("X-Kopplung-Message-Type", ""),
                                             body)
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
            receipt, _ = procedure.handle(message_id, message["message_type"], sealed)
        except ValueError as error:
            # Not from the hub: do not acknowledge; tell the operator.
            log("message refused", message_id=message_id, reason=error)
            continue
        procedure.request("POST", f"/api/v1/procedures/{procedure.id}/messages/{message_id}/ack",
                          receipt, "application/pkcs7-mime")
        log("collected and acknowledged", message_id=message_id)


def receive_amqp(procedure, args):
    """Consumes the procedure's queue with manual acknowledgement; a message is
    acknowledged only after its receipt was taken (by the broker on the reply queue,
    else by the hub's receipts endpoint). Pending decisions go out between messages."""
    import pika  # only this transport needs a library beyond the standard one
    from pika.exceptions import AMQPError, ChannelClosedByBroker, NackError, UnroutableError

    waiting = False
    while True:
        connection = None
        try:
            connection = pika.BlockingConnection(pika.URLParameters(args.amqp))
            channel = connection.channel()
            try:
                channel.queue_declare(args.queue, passive=True)
            except ChannelClosedByBroker:
                # The hub declares the queue before its first message for us.
                if not waiting:
                    log("queue not there yet; waiting", queue=args.queue)
                waiting = True
                connection.close()
                time.sleep(args.interval)
                continue
            channel.confirm_delivery()
            channel.basic_qos(prefetch_count=4)
            if args.reply_queue:
                def publish(signed):
                    try:
                        # Default exchange, persistent, mandatory: a missing queue is an
                        # error, not a silent loss; returns once the broker confirmed.
                        channel.basic_publish("", args.reply_queue, signed,
                                              pika.BasicProperties(delivery_mode=2),
                                              mandatory=True)
                        return TAKEN, ""
                    except (UnroutableError, NackError) as error:
                        return LATER, type(error).__name__
                procedure.reply_queue = publish
            log("consuming", queue=args.queue, reply_queue=args.reply_queue or "-")
            for method, properties, body in channel.consume(
                    args.queue, inactivity_timeout=args.interval):
                if method is not None:
                    take_amqp_message(procedure, channel, method, properties, body, args)
                procedure.send_decisions()
        except AMQPError as error:
            log("broker connection lost; again", error=type(error).__name__)
        finally:
            procedure.reply_queue = None
            if connection is not None and connection.is_open:
                try:
                    connection.close()
                except AMQPError:
                    pass
        time.sleep(args.interval)


def take_amqp_message(procedure, channel, method, properties, body, args):
    # message_id and type are unsigned: only for de-duplication and the schema choice;
    # the ids of the answer come from the verified XML.
    message_id = properties.message_id or ""
    try:
        receipt, message_id = procedure.handle(message_id, properties.type or "", body)
    except ValueError as error:
        procedure.keep_refused(message_id, body, error)
        channel.basic_nack(method.delivery_tag, requeue=False)
        return
    except (RuntimeError, OSError) as error:
        log("cannot take it now; back into the queue", message_id=message_id, reason=error)
        time.sleep(args.interval)
        channel.basic_nack(method.delivery_tag, requeue=True)
        return
    outcome, reason = procedure.send(receipt, "receipt", message_id)
    if outcome == LATER:
        # Not acknowledged: the broker keeps the message and hands it out again.
        log("receipt not taken yet; back into the queue", message_id=message_id, reason=reason)
        time.sleep(args.interval)
        channel.basic_nack(method.delivery_tag, requeue=True)
        return
    if outcome == REFUSED:
        # Stored, but the hub refuses our receipt for good: a person must look.
        log("ERROR receipt refused by the hub", message_id=message_id, problem=reason)
    channel.basic_ack(method.delivery_tag)
    log("consumed and acknowledged", message_id=message_id,
        via="reply-queue" if procedure.reply_queue else "receipts-endpoint")


def import_files(procedure, outgoing):
    """File drop: imports each message whose manifest is there (oldest name first),
    leaves the receipt in `incoming`, then removes message and manifest."""
    for name in sorted(os.listdir(outgoing)):
        if name.startswith(".") or not name.endswith(".manifest.json"):
            continue
        with open(os.path.join(outgoing, name)) as file:
            manifest = json.load(file)
        if "/" in manifest["file"] or manifest["file"].startswith("."):
            log("ERROR manifest names no file beside it", manifest=name)
            continue
        message_file = os.path.join(outgoing, manifest["file"])
        try:
            with open(message_file, "rb") as file:
                sealed = file.read()
        except FileNotFoundError:
            log("manifest without its message, again later", message_id=manifest["message_id"])
            continue
        if hashlib.sha256(sealed).hexdigest() != manifest["sha256"]:
            log("copy incomplete, again later", message_id=manifest["message_id"])
            continue
        try:
            receipt, message_id = procedure.handle(manifest["message_id"],
                                                   manifest["message_type"], sealed)
        except ValueError as error:
            procedure.keep_refused(manifest["message_id"], sealed, error)
        else:
            procedure.leave_file(receipt, "receipt", message_id)
            log("imported; receipt left in incoming", message_id=message_id)
        os.remove(message_file)
        os.remove(os.path.join(outgoing, name))


def report_refused(procedure, reported):
    """Every answer the hub refused (moved to `incoming/refused/` with its problem
    document beside it), logged once for a person to fix and sign again."""
    folder = os.path.join(procedure.incoming, "refused")
    if not os.path.isdir(folder):
        return
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".problem.json") or name in reported:
            continue
        with open(os.path.join(folder, name)) as document:
            problem = json.load(document)
        reported.add(name)
        log("ERROR answer refused by the hub", file=name[: -len(".problem.json")],
            problem=problem.get("type", ""), title=json.dumps(problem.get("title", "")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("transport", choices=["http", "pull", "amqp", "file"])
    parser.add_argument("--hub", required=True)
    parser.add_argument("--procedure", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--listen", default="127.0.0.1:9201")
    parser.add_argument("--path", default="/eingang")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/%2f")
    parser.add_argument("--queue", help="amqp: the procedure's queue")
    parser.add_argument("--reply-queue", help="amqp: the reply queue, if the operator set one")
    parser.add_argument("--exchange", help="file: the exchange folder agreed with the operator")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    procedure = Procedure(args)
    if args.transport == "amqp":
        if not args.queue:
            parser.error("amqp needs --queue")
        receive_amqp(procedure, args)
        return
    if args.transport == "file":
        if not args.exchange:
            parser.error("file needs --exchange")
        outgoing = os.path.join(args.exchange, "outgoing")
        procedure.incoming = os.path.join(args.exchange, "incoming")
        for folder in (outgoing, procedure.incoming):
            os.makedirs(folder, exist_ok=True)
        log("importing files", folder=outgoing)
    if args.transport == "http":
        threading.Thread(target=serve_http, args=(procedure, args.listen, args.path),
                         daemon=True).start()
    reported = set()
    while True:
        try:
            if args.transport == "pull":
                poll(procedure)
            if args.transport == "file":
                import_files(procedure, outgoing)
                report_refused(procedure, reported)
            procedure.send_decisions()
        except OSError as error:
            log("hub not reachable", error=error)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
