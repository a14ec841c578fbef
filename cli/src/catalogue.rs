//! `kopplung mapping catalogue`: the message catalogue for vendors (`docs/messages.md`),
//! generated from the mappings so that it cannot drift from what the hub sends: per
//! service its message type, schema and one full example message rendered from a
//! fixture, and one full example of every event a procedure sends back.
//!
//! The output depends on the mappings only (fixed ids and times, no clock), so a test
//! can compare the committed file with a fresh rendering.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use kopplung_transformers::Mapping;
use kopplung_transformers::fixtures;
use kopplung_transformers::receipt::{
    EventDocument, Receipt, ReceiptEvent, ReceiptProblem, set_claims,
};

// The fixtures' fixed ids: the example events answer the example messages.
use fixtures::{APPLICATION_ID, CREATED, MESSAGE_ID};

const PROCEDURE: &str = "dresden-maengel";

/// The smallest document that passes the hub's check of a declared PDF (`%PDF-`).
const EXAMPLE_PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

/// The catalogue of `mappings` (sorted by folder) as Markdown.
pub fn render(mappings: &[Mapping]) -> anyhow::Result<String> {
    let mut out = String::new();
    write!(
        out,
        "{HEADER}Every example uses the fixed ids and times of the mappings' fixtures: \
         message id (`nachrichtenUUID`) `{MESSAGE_ID}`, application id (`antragsID`) \
         `{APPLICATION_ID}`, created `{CREATED}`; the reading authority is a placeholder \
         (`dvdv:test:leser`). A real message has its own UUIDv7, times, authority and the \
         citizen's data. Each message arrives sealed (signed by the hub, encrypted for you) \
         as vendors.md describes; below is the XML inside.\n\n## Services\n\n"
    )?;
    out.push_str("| service | LeiKa key | message type | schema | example |\n");
    out.push_str("|---|---|---|---|---|\n");
    let mut sections = String::new();
    for mapping in mappings {
        let folder = folder_name(mapping);
        let schema = format!("mappings/{folder}/{}", mapping.info.message.schema);
        let fixture = example_fixture(mapping)?;
        let xml = fixtures::render_input(mapping, &fixture.input)
            .map_err(|failure| anyhow::anyhow!("{failure}"))?;
        let decision = match mapping.info.decision.document {
            kopplung_transformers::mapping::DecisionDocument::PdfA => {
                "- Decision (Bescheid): its document must be PDF/A; the hub refuses another with \
                 `422 bad-document` ([vendors.md](vendors.md#events-in-progress-questions-the-decision)).\n"
            }
            kopplung_transformers::mapping::DecisionDocument::Any => "",
        };
        writeln!(
            out,
            "| {} | {} | `{}` | `{schema}` | [{folder}](#{folder}) |",
            mapping.info.name, mapping.info.key, mapping.info.message.message_type,
        )?;
        writeln!(
            sections,
            "\n## {folder}\n\n\
             {} (LeiKa key {}{}): message type `{}`, standard {} {}.\n\n\
             - Schema: `{schema}`; the hub publishes it with everything it imports at \
             `GET /api/v1/schemas/{folder}/{}` (the bundle: `GET /api/v1/schemas`).\n\
             {decision}\
             - Example: rendered from the fixture \
             `mappings/{folder}/fixtures/{}.input.json`.\n\n\
             ```xml\n{}\n```",
            mapping.info.name,
            mapping.info.key,
            if mapping.info.local { ", local" } else { "" },
            mapping.info.message.message_type,
            mapping.info.message.standard,
            mapping.info.message.version,
            mapping.info.message.schema,
            fixture.name,
            xml.trim_end(),
        )?;
    }
    out.push_str(&sections);
    follow_ups(mappings, &mut out)?;
    out.push_str(EVENTS_HEADER);
    for receipt in example_events() {
        let json = serde_json::to_string_pretty(&receipt)?;
        let mut claims = set_claims(&receipt)?;
        // NumericDate as a vendor writes it: whole seconds, an integer.
        if let Some(iat) = claims.get("iat").and_then(serde_json::Value::as_f64) {
            claims.insert("iat".into(), serde_json::json!(iat as i64));
        }
        let claims = serde_json::to_string_pretty(&claims)?;
        writeln!(
            out,
            "\n### `{}`\n\n{}\n\n`cms` profile, the JSON you sign:\n\n```json\n{json}\n```\n\n\
             `jose` profile, the claims of the Security Event Token:\n\n```json\n{claims}\n```",
            event_name(receipt.event),
            event_text(receipt.event),
        )?;
    }
    Ok(out)
}

/// The citizen's messages after the application (answer, documents later, objection,
/// payment record): the message types of every service, and one example of each kind
/// rendered from the follow-up template's fixtures.
fn follow_ups(mappings: &[Mapping], out: &mut String) -> anyhow::Result<()> {
    use kopplung_transformers::follow_up::{ELEMENTS, SCHEMA, message_type};
    let Some(root) = mappings.first().and_then(|m| m.folder.parent()) else {
        return Ok(());
    };
    let examples = fixtures::follow_up_fixtures(root)?;
    if examples.is_empty() || mappings.iter().all(|m| m.follow_ups.is_none()) {
        return Ok(());
    }
    write!(
        out,
        "{FOLLOW_UPS_HEADER}- Schema, the same for every service: `mappings/{SCHEMA}`; the \
         hub publishes it with its imports at `GET /api/v1/schemas/{SCHEMA}`.\n\
         - The type's first part is the family of the service's own message type; services \
         of one family (Meldewesen) share the types, and `bezug/leistung` names the \
         service.\n\
         - In the examples the follow-up message has its own id `{}`; `bezug` names the \
         application (`antragsID`, `antragsnummer`) and the application's own message \
         (`nachrichtenUUID` `{MESSAGE_ID}`), and `ereignisID` the event it answers or \
         objects to (the `receipt_id` of your query or decision).\n\n\
         | service |{}\n|---|{}\n",
        fixtures::FOLLOW_UP_MESSAGE_ID,
        ELEMENTS
            .iter()
            .map(|(kind, _)| format!(" {kind} |"))
            .collect::<String>(),
        "---|".repeat(ELEMENTS.len()),
    )?;
    for mapping in mappings.iter().filter(|m| m.follow_ups.is_some()) {
        let own = &mapping.info.message.message_type;
        let types: String = ELEMENTS
            .iter()
            .map(|(_, element)| format!(" `{}` |", message_type(own, element)))
            .collect();
        writeln!(out, "| {} |{types}", mapping.info.name)?;
    }
    for fixture in examples {
        let xml = fixtures::render_follow_up(mappings, &fixture.input)
            .map_err(|failure| anyhow::anyhow!("{failure}"))?;
        let input = fixture
            .input
            .strip_prefix(root.parent().unwrap_or(root))
            .unwrap_or(&fixture.input);
        writeln!(
            out,
            "\n### `{}`\n\nRendered from the fixture `{}`.\n\n```xml\n{}\n```",
            fixture.name,
            input.display(),
            xml.trim_end()
        )?;
    }
    Ok(())
}

const FOLLOW_UPS_HEADER: &str = "\n## What the citizen sends after the application\n\n\
The citizen's answer to your query (`antwort`), documents sent later (`nachreichung`), an \
objection to your decision (`widerspruch`) and, to the accounting procedure (HKR) the \
routing table names, a record of a paid fee (`zahlung`) reach you as messages of their \
own, sealed like the application, on the same transport. Each service has its own \
message type of each kind; what to answer: \
[vendors.md](vendors.md#follow-up-messages-of-the-citizen).\n\n";

/// Writes the catalogue to `out`.
pub fn write(mappings: &[Mapping], out: &Path) -> anyhow::Result<()> {
    let text = render(mappings)?;
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))
}

const HEADER: &str = "# Message catalogue\n\n\
Generated from the mappings by `kopplung mapping catalogue --out docs/messages.md`; do \
not edit it by hand (a test fails when it differs from what the command generates). \
How to open, check and answer these messages: [vendors.md](vendors.md).\n\n";

const EVENTS_HEADER: &str = "\n## What a procedure sends back\n\n\
Every answer is signed with the procedure's signing key: in the `cms` profile the JSON \
below as CMS SignedData (`openssl cms -sign -binary -nodetach -outform DER -md sha256`), \
in the `jose` profile the claims below as a Security Event Token (header \
`{\"alg\": \"ES256\" | \"PS512\", \"typ\": \"secevent+jwt\"}`). The keys are exactly \
these (whitespace and key order do not matter); `issued_at` is an RFC 3339 time with an \
offset, `iat` seconds since 1970. The examples answer the example message above \
(procedure `dresden-maengel`). A receipt (`accept`, `reject`) goes to `POST \
/api/v1/procedures/<id>/receipts`, the others to `…/events` — or on your reply queue, in \
the HTTP answer (receipt), with the pull acknowledgement (receipt) or as a file in \
`incoming` (file drop); see vendors.md.\n";

fn example_events() -> Vec<Receipt> {
    let event = |id: &str, event, minute: u32| Receipt {
        receipt_id: format!("{id}-{MESSAGE_ID}"),
        procedure: PROCEDURE.into(),
        message_id: MESSAGE_ID.into(),
        application_id: APPLICATION_ID.into(),
        event,
        problems: Vec::new(),
        message: None,
        document: None,
        appeal: None,
        fee: None,
        issued_at: format!("2026-01-01T12:{minute:02}:00Z"),
    };
    let accept = event("eingang", ReceiptEvent::Accept, 1);
    let mut reject = event("ablehnung", ReceiptEvent::Reject, 1);
    reject.problems = vec![ReceiptProblem {
        kind: "urn:example:problem:schema".into(),
        title: "Die Nachricht entspricht nicht ihrem Schema".into(),
        detail: Some("Element 'beschreibung': fehlt.".into()),
    }];
    let in_progress = event("bearbeitung", ReceiptEvent::InProgress, 5);
    let mut query = event("rueckfrage-1", ReceiptEvent::Query, 6);
    query.message = Some("Bitte senden Sie uns ein Foto der Stelle.".into());
    let mut decision = event("bescheid", ReceiptEvent::Decision, 7);
    decision.message = Some("Der Schaden wird bis zum 15. Dezember behoben.".into());
    decision.document = Some(EventDocument {
        filename: "bescheid.pdf".into(),
        media_type: "application/pdf".into(),
        content_base64: base64_of(EXAMPLE_PDF),
    });
    vec![accept, reject, in_progress, query, decision]
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn event_name(event: ReceiptEvent) -> &'static str {
    match event {
        ReceiptEvent::Accept => "accept",
        ReceiptEvent::Reject => "reject",
        ReceiptEvent::InProgress => "in_progress",
        ReceiptEvent::Query => "query",
        ReceiptEvent::Decision => "decision",
    }
}

fn event_text(event: ReceiptEvent) -> &'static str {
    match event {
        ReceiptEvent::Accept => {
            "The receipt (Eingangsbestätigung): the message arrived and is formally in order; \
             the application becomes `received`."
        }
        ReceiptEvent::Reject => {
            "The message is refused, with RFC 7807 problems (`problems` required; the hub \
             keeps only their `type`); the application becomes `rejected` (final)."
        }
        ReceiptEvent::InProgress => {
            "The authority works on the application (after `accept`); it becomes `in_progress`."
        }
        ReceiptEvent::Query => {
            "A question to the citizen (Rückfrage, `message` required); the application \
             becomes `query`."
        }
        ReceiptEvent::Decision => {
            "The decision (Bescheid) with its document (`document` required; `content_base64` \
             is the whole file, at most 16 MiB per event); the application becomes `decided` \
             (final)."
        }
    }
}

/// The fixture a service's example comes from: `vollstaendig`, else the first one.
fn example_fixture(mapping: &Mapping) -> anyhow::Result<fixtures::Fixture> {
    let mut list = fixtures::fixtures_of(mapping)?;
    let index = list
        .iter()
        .position(|fixture| fixture.name == "vollstaendig")
        .unwrap_or(0);
    if list.is_empty() {
        anyhow::bail!("{}: no fixtures", mapping.folder.join("fixtures").display());
    }
    Ok(list.swap_remove(index))
}

fn folder_name(mapping: &Mapping) -> String {
    mapping
        .folder
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
        .to_owned()
}
