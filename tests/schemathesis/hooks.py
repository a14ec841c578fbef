"""Checks of kopplung's own for schemathesis (tests/tests/schemathesis.rs loads this file
through SCHEMATHESIS_HOOKS).

`POST /api/v1/applications` is the one operation whose request a static document cannot
describe completely: which services and municipalities exist and what each service's
form demands are the deployment's catalogue (`GET /api/v1/services`, `GET
/api/v1/regions`), not the API's. So schemathesis's `positive_data_acceptance` is
switched off for it (tests/schemathesis/schemathesis.toml) and replaced by
`catalogue_refusals_only`: a schema-valid application may be refused only for what the
catalogue decides. A refusal for anything the document states (a malformed key, a file
name, base64, the shape of an attachment or of `applicant`) fails the run, as
`positive_data_acceptance` would.
"""

import json

import schemathesis

OPERATION = ("POST", "/api/v1/applications")
PROBLEM = "urn:kopplung:problem:"

# Field errors that only the deployment's catalogue decides: a well-formed key of a service
# it does not offer, an ARS of no municipality it knows. (A malformed key or ARS has a
# message of its own, and the document's patterns exclude it.)
CATALOGUE_FIELD_ERRORS = {
    "service": {"unbekannte Leistung"},
    "region": {"unbekannte Gemeinde"},
}


def _catalogue_error(error):
    field = error.get("field", "")
    message = error.get("message", "")
    if field in CATALOGUE_FIELD_ERRORS:
        return message in CATALOGUE_FIELD_ERRORS[field]
    # The service's form (`data.…`) and its attachment rules (count, media types, size,
    # the content's file signature, uploads of this client).
    if field.startswith("data.") or field == "data":
        return True
    if field == "attachments":
        return message.startswith("höchstens ")
    # A required attachment slot of the service's form that its data calls for.
    if field.startswith("attachments.") and not field.startswith("attachments["):
        return message == "Pflichtfeld"
    if field.startswith("attachments["):
        part = field.rsplit(".", 1)[-1]
        if part == "media_type":
            return message.startswith("erlaubt sind: ")
        if part == "content_base64":
            return message == "der Inhalt passt nicht zum angegebenen Medientyp"
        if part == "upload":
            return True
        # The service's attachment slots: which exist, which the data calls for.
        if part == "slot":
            return message.startswith("unbekannte Anlagenart ") or message.endswith(
                "ist für diesen Antrag nicht vorgesehen"
            )
    return False


@schemathesis.check
def catalogue_refusals_only(ctx, response, case):
    if (case.method.upper(), case.path) != OPERATION:
        return None
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status in (401, 403, 404, 409, 429) or status >= 500:
        # Accepted, or refused for who asks (403: the applicant's identification), or a
        # server error (not_a_server_error's to report).
        return None
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    kind = problem.get("type", "")
    if status == 422 and kind == PROBLEM + "no-route":
        return None
    if status == 413 and kind == PROBLEM + "attachment-too-large":
        return None
    # Two rules of `applicant` that JSON Schema cannot state: a statement dated more than
    # 60 seconds ahead of the hub's clock (`authenticated_at` is any RFC 3339 time to the
    # document), and an assertion whose three base64url parts (the document's pattern)
    # do not decode to a JSON header and claims: the content of a JWS, like its
    # signature (403), is the identity provider's to vouch for.
    if status == 422 and kind == PROBLEM + "authentication-malformed":
        detail = problem.get("detail", "")
        if detail.endswith("authenticated_at lies in the future") or detail.startswith(
            "the assertion must be a compact JWS"
        ):
            return None
    if status == 422 and kind == PROBLEM + "validation":
        errors = problem.get("errors", [])
        refused = [e for e in errors if not _catalogue_error(e)]
        if errors and not refused:
            return None
        raise AssertionError(
            "A schema-valid application was refused for what the document states "
            f"(not the catalogue): {refused or problem}"
        )
    raise AssertionError(
        f"A schema-valid application was refused with {status} {kind or response.text[:200]}"
    )


# A Security Event Token (a compact JWS, ASCII) is sent as it is: the example receipt the
# test gives the event operations of the `jose` procedure.
# Anything else generated for it goes out as its text (or JSON), for the hub to refuse.
@schemathesis.serializer("application/jose")
def compact_jws(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode("utf-8")
