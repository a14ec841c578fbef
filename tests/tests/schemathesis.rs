//! schemathesis (PyPI, pinned in `tests/src/vendor.rs`) against a real hub with the demo's
//! routing table and the OpenAPI document it serves at `/api/v1/openapi.json`: every
//! operation, with a valid token of each role, from requests the document allows. A run
//! fails on a server error, on a schema-valid request refused (schemathesis's
//! `positive_data_acceptance`; for `POST /api/v1/applications`, whose content the
//! deployment's catalogue decides, `tests/schemathesis/hooks.py`), and on an answer whose
//! status, content type, headers or body the document does not describe. The checks and the
//! tokens per security scheme are in `tests/schemathesis/schemathesis.toml`.
//!
//! A signed receipt or event (`POST /api/v1/procedures/{id}/events`, `…/receipts`,
//! `…/events/check`, and the acknowledgement with a receipt) needs a signature with the
//! procedure's key of this hub's PKI, so generated bodies are refused with 403
//! `receipt-unverifiable` (checked for server errors and the conformance of the answers).
//! The jose procedure's run is therefore given its real signed receipt as the example of
//! the event operations, and the test checks that it was recorded. A `cms` receipt (DER)
//! cannot be an example in a JSON document, nor does the acknowledgement get one
//! (tests/tests/openapi.rs and tests/tests/receipts.rs send both signed).

use kopplung_tests::keys::{CHEMNITZ, DRESDEN, LEIPZIG, MAENGEL, MELDEBESCHEINIGUNG};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use kopplung_tests::{
    ADMIN_TOKEN, AUDITOR_TOKEN, HubSetup, OTHER_TOKEN, TestHub, amqp, deliver_over, now_rfc3339,
    now_unix, procedure_token, schemathesis_command, shared::fixture_request,
    shared::refuse_publishes, sign_cms_receipt, sign_set_with_jwcrypto, token_sha256, workspace,
};
use serde_json::{Value, json};

/// Dresden's Mängelanzeige procedure (`cms`) and Leipzig's citizens' office (`jose`),
/// both pulling their messages here, with their API tokens as pull tokens.
const CMS_PROCEDURE: &str = "dresden-maengel";
const JOSE_PROCEDURE: &str = "leipzig-buergerbuero";
/// Chemnitz's Mängelanzeige procedure, whose queue refuses every message: its
/// applications become dead letters after three attempts.
const DEAD_LETTERS: &str = "chemnitz-maengel";

/// Test cases per operation and run: enough for each phase (examples, coverage of the
/// boundaries, fuzzing, stateful) to reach every operation, and the whole test within
/// about two minutes on two cores.
const EXAMPLES: &str = "25";

/// Who calls in one run of schemathesis: the tokens of the security schemes, the
/// procedure of `/api/v1/procedures/{id}` and the data the run starts from.
struct Caller<'a> {
    role: &'a str,
    client: &'a str,
    admin: &'a str,
    procedure: &'a str,
    application: &'a str,
    message: &'a str,
    /// A document of `application` (in its mailbox).
    document: &'a str,
    /// A dead letter (of `DEAD_LETTERS`).
    dead_letter: &'a str,
    /// Only the operations whose path matches (all when `None`).
    paths: Option<&'a str>,
}

/// What a run reports: how many operations it tested and how many requests it sent.
struct Report {
    operations: usize,
    cases: usize,
}

/// Runs schemathesis against `document` (a file) as `caller`; panics
/// with schemathesis's report if it finds anything.
fn run(hub: &TestHub, document: &str, caller: &Caller<'_>) -> Report {
    let (passed, output) = schemathesis(hub, document, caller);
    if !passed {
        // The hub's warnings and errors (no personal data: the hub logs none).
        let log = hub.log();
        let noted: Vec<&str> = log
            .lines()
            .filter(|line| {
                line.contains("WARN") || line.contains("ERROR") || line.contains("panicked")
            })
            .collect();
        panic!(
            "schemathesis found problems ({}):\n{output}\nthe hub's log, warnings and errors:\n{}",
            caller.role,
            noted[noted.len().saturating_sub(40)..].join("\n")
        );
    }
    // Shown with `--nocapture`: the warnings say what the run could not reach.
    eprintln!("schemathesis as {}:\n{output}", caller.role);
    report(&output)
}

/// Runs schemathesis; whether it passed, and its report.
fn schemathesis(hub: &TestHub, document: &str, caller: &Caller<'_>) -> (bool, String) {
    let work = tempfile::tempdir().expect("temp dir");
    let schemathesis_dir = workspace().join("tests/schemathesis");
    let mut command = Command::new(schemathesis_command());
    command
        .arg("--config-file")
        .arg(schemathesis_dir.join("schemathesis.toml"))
        .arg("run")
        .arg(document)
        .args(["--url", &hub.url("/")])
        .args(["--mode", "positive", "--max-examples", EXAMPLES])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "30"])
        .current_dir(work.path())
        .env("SCHEMATHESIS_HOOKS", schemathesis_dir.join("hooks.py"))
        .env("KOPPLUNG_CLIENT_TOKEN", caller.client)
        .env("KOPPLUNG_ADMIN_TOKEN", caller.admin)
        .env("KOPPLUNG_PROCEDURE", caller.procedure)
        .env(
            "KOPPLUNG_PROCEDURE_TOKEN",
            procedure_token(caller.procedure),
        )
        .env("KOPPLUNG_APPLICATION", caller.application)
        .env("KOPPLUNG_MESSAGE", caller.message)
        .env("KOPPLUNG_DOCUMENT", caller.document)
        .env("KOPPLUNG_DEAD_LETTER", caller.dead_letter)
        .env("KOPPLUNG_DEAD_LETTERS", DEAD_LETTERS);
    if let Some(paths) = caller.paths {
        command.args(["--include-path-regex", paths]);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("schemathesis does not run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The figures of schemathesis's summary (`Tested: 35`, `1234 generated`).
fn report(output: &str) -> Report {
    let number_after = |label: &str| -> usize {
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `{label}` in the report:\n{output}"))
    };
    let cases = output
        .lines()
        .filter_map(|line| line.trim().split_once(" generated"))
        .find_map(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no number of test cases in the report:\n{output}"));
    Report {
        operations: number_after("Tested:"),
        cases,
    }
}

/// The operations of the document whose path matches `paths` (a regex prefix such as
/// `^/api/v1/admin/`, matched here as a plain prefix).
fn operations(doc: &Value, prefix: &str) -> usize {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(path, _)| path.starts_with(prefix))
        .map(|(_, item)| item.as_object().expect("path item").len())
        .sum()
}

fn pull(procedure: &str) -> String {
    format!(
        "transport = \"pull\"\ntoken_sha256 = \"{}\"",
        token_sha256(&procedure_token(procedure))
    )
}

/// The message id of `application`'s message, once `procedure` lists it for pickup.
async fn message_for(hub: &TestHub, procedure: &str, application: &str) -> String {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed: Value = client
            .get(hub.url(&format!("/api/v1/procedures/{procedure}/messages")))
            .bearer_auth(procedure_token(procedure))
            .send()
            .await
            .expect("list pickups")
            .json()
            .await
            .expect("pickups");
        let found = listed["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["application_id"] == application)
            .and_then(|m| m["message_id"].as_str().map(str::to_owned));
        if let Some(message) = found {
            return message;
        }
        assert!(
            Instant::now() < deadline,
            "{procedure} never listed {application}:\n{}",
            hub.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The cms procedure takes its message and reports progress with a document (signed as
/// a vendor signs, with `openssl cms`): the document's id.
async fn progress_with_document(hub: &TestHub, application: &str, message: &str) -> String {
    let client = reqwest::Client::new();
    let procedure = format!("/api/v1/procedures/{CMS_PROCEDURE}");
    acknowledge(hub, CMS_PROCEDURE, message).await;
    let event = |receipt_id: &str, kind: &str| {
        json!({
            "receipt_id": receipt_id,
            "procedure": CMS_PROCEDURE,
            "message_id": message,
            "application_id": application,
            "event": kind,
            "issued_at": now_rfc3339(),
        })
    };
    let mut progress = event("schemathesis-2", "in_progress");
    progress["document"] = json!({
        "filename": "Lageplan.pdf",
        "media_type": "application/pdf",
        "content_base64": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 Plan"),
    });
    for event in [event("schemathesis-1", "accept"), progress] {
        let recorded = client
            .post(hub.url(&format!("{procedure}/events")))
            .header("content-type", "application/pkcs7-mime")
            .body(sign_cms_receipt(&hub.pki_dir(), CMS_PROCEDURE, &event))
            .send()
            .await
            .expect("event");
        assert_eq!(
            recorded.status(),
            200,
            "the event: {}",
            recorded.text().await.unwrap_or_default()
        );
    }
    let shown = hub.status(application).await;
    shown["documents"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no document: {shown}"))
        .to_owned()
}

/// `procedure` takes `message` (pull), without a receipt.
async fn acknowledge(hub: &TestHub, procedure: &str, message: &str) {
    let acked = reqwest::Client::new()
        .post(hub.url(&format!(
            "/api/v1/procedures/{procedure}/messages/{message}/ack"
        )))
        .bearer_auth(procedure_token(procedure))
        .send()
        .await
        .expect("ack");
    assert_eq!(acked.status(), 200, "the acknowledgement");
}

/// The jose procedure's receipt (accept) of `message`: a Security Event Token signed with
/// jwcrypto, as a vendor signs it (docs/vendors.md).
fn jwcrypto_set(hub: &TestHub, application: &str, message: &str) -> String {
    let claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "iss": JOSE_PROCEDURE,
        "iat": now_unix(),
        "sub": format!("message:{message}"),
        "txn": format!("application:{application}"),
        "events": {"urn:kopplung:events:accept": {}},
    });
    let signed = sign_set_with_jwcrypto(&hub.pki_dir(), JOSE_PROCEDURE, &claims);
    String::from_utf8(signed)
        .expect("a compact JWS")
        .trim()
        .to_owned()
}

/// The document with `receipt` as the example body (`application/jose`) of the event
/// operations of procedures.
fn with_receipt_example(doc: &Value, receipt: &str) -> Value {
    let mut doc = doc.clone();
    for path in [
        "/api/v1/procedures/{id}/events",
        "/api/v1/procedures/{id}/receipts",
        "/api/v1/procedures/{id}/events/check",
    ] {
        let pointer = format!(
            "/paths/{}/post/requestBody/content/application~1jose",
            path.replace('~', "~0").replace('/', "~1")
        );
        let media = doc
            .pointer_mut(&pointer)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no {pointer}"));
        media.insert(
            "examples".into(),
            json!({"receipt": {"summary": "The procedure's signed receipt", "value": receipt}}),
        );
    }
    doc
}

/// An upload of the client (a PNG by its signature), for a message with an attachment
/// fetched by claim check.
async fn upload(hub: &TestHub) -> String {
    let answer: Value = reqwest::Client::new()
        .post(hub.url("/api/v1/attachments?filename=Foto.png"))
        .bearer_auth(&hub.token)
        .header("content-type", "image/png")
        .body(b"\x89PNG\r\n\x1a\n0123456789".to_vec())
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("upload answer");
    answer["id"].as_str().expect("an upload id").to_owned()
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_no_refused_valid_request_and_no_undocumented_answer() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup {
        edit_routing: |routing| {
            routing.replacen(
                ".chemnitz-maengel\"\n",
                ".chemnitz-maengel\"\n\n[procedure.retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 50\n",
                1,
            )
        },
        rewrite_routing: Some(Arc::new(|routing| {
            let routing = deliver_over(&routing, CMS_PROCEDURE, &pull(CMS_PROCEDURE));
            deliver_over(&routing, JOSE_PROCEDURE, &pull(JOSE_PROCEDURE))
        })),
        ..HubSetup::default()
    })
    .await;
    let doc = served_document(&hub).await;

    refuse_publishes(&broker, &hub.queue(DEAD_LETTERS)).await;

    // What the runs start from: an application with an uploaded attachment waiting for
    // the cms procedure, one for the jose procedure, and a dead letter.
    let mut maengel = json!({"service": MAENGEL, "region": DRESDEN, "data": {
        "kategorie": "muell", "beschreibung": "Sperrmüll am Elbufer abgeladen",
        "ort": {"strasse": "Terrassenufer"}}});
    maengel["attachments"] = json!([{"upload": upload(&hub).await}]);
    let cms_application = hub.submit_accepted(&maengel, None).await;
    let cms_message = message_for(&hub, CMS_PROCEDURE, &cms_application).await;
    let document_id = progress_with_document(&hub, &cms_application, &cms_message).await;
    let jose_application = hub
        .submit_accepted(
            &fixture_request(
                "meldebescheinigung/fixtures/minimal",
                MELDEBESCHEINIGUNG,
                LEIPZIG,
            ),
            None,
        )
        .await;
    let jose_message = message_for(&hub, JOSE_PROCEDURE, &jose_application).await;
    acknowledge(&hub, JOSE_PROCEDURE, &jose_message).await;
    maengel["region"] = json!(CHEMNITZ);
    maengel["attachments"] = json!([]);
    let dead_letter = hub.submit_accepted(&maengel, None).await;
    hub.wait_for_status(&dead_letter, "dead_lettered", Duration::from_secs(30))
        .await;

    // The document as the hub serves it, from a file: schemathesis leaves out the operation
    // that serves a document it was given by URL.
    let (work, file) = document_file(&doc);
    let document = path_str(&file);
    let everyone = Caller {
        role: "the client, an operator and the cms procedure",
        client: &hub.token,
        admin: ADMIN_TOKEN,
        procedure: CMS_PROCEDURE,
        application: &cms_application,
        message: &cms_message,
        document: &document_id,
        dead_letter: &dead_letter,
        paths: None,
    };
    // For the jose procedure's run, its signed receipt (a Security Event Token, which
    // only this hub's PKI makes valid) as the example of the event operations: the run
    // sends it, the hub records it (200), and the same again is a duplicate (200).
    let receipt = jwcrypto_set(&hub, &jose_application, &jose_message);
    let jose_file = work.path().join("openapi-with-receipt.json");
    std::fs::write(
        &jose_file,
        serde_json::to_vec(&with_receipt_example(&doc, &receipt)).expect("JSON"),
    )
    .expect("write");
    let runs = [
        (
            Caller {
                role: "an auditor (read-only admin)",
                admin: AUDITOR_TOKEN,
                paths: Some("^/api/v1/admin/"),
                ..everyone
            },
            "/api/v1/admin/",
            document,
        ),
        (
            Caller {
                role: "the jose procedure",
                procedure: JOSE_PROCEDURE,
                application: &jose_application,
                message: &jose_message,
                paths: Some("^/api/v1/procedures/"),
                ..everyone
            },
            "/api/v1/procedures/",
            path_str(&jose_file),
        ),
        (
            Caller {
                role: "another client",
                client: OTHER_TOKEN,
                paths: Some("^/api/v1/(applications|attachments)"),
                ..everyone
            },
            "/api/v1/",
            document,
        ),
    ];
    let all = run(&hub, document, &everyone);
    assert_eq!(
        all.operations,
        operations(&doc, "/"),
        "not every operation was tested"
    );
    let mut cases = all.cases;
    for (caller, prefix, document) in &runs {
        let report = run(&hub, document, caller);
        assert!(report.operations > 0, "{}: nothing tested", caller.role);
        assert!(report.operations <= operations(&doc, prefix));
        cases += report.cases;
    }
    // The signed receipt went through schemathesis and was recorded.
    assert_eq!(hub.status(&jose_application).await["status"], "received");
    eprintln!(
        "schemathesis: {} operations, {cases} requests, no problem found",
        all.operations
    );
}

/// The runs can fail: against a document whose pattern for the ARS is taken away, a
/// schema-valid request is refused (`GET /api/v1/responsibility?region=…` with a region
/// that is no ARS is a 400); without the pattern of the LeiKa key, an application with a
/// malformed key is refused for its form, which `hooks.py` tells from the catalogue's
/// refusals. Each report names the failure.
#[tokio::test]
async fn a_document_looser_than_the_hub_fails_the_run() {
    let hub = TestHub::start(HubSetup::default()).await;
    let served = served_document(&hub).await;
    let none = "00000000-0000-4000-8000-000000000000";
    for (schema, paths, expected) in [
        (
            "Ars",
            "^/api/v1/responsibility",
            ["Schema-valid request rejected", "bad-query"],
        ),
        (
            "ServiceKey",
            "^/api/v1/applications$",
            ["catalogue_refusals_only", "14-stelliger Leistungsschlüssel"],
        ),
    ] {
        let mut doc = served.clone();
        doc.pointer_mut(&format!("/components/schemas/{schema}"))
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no schema {schema}"))
            .remove("pattern")
            .unwrap_or_else(|| panic!("{schema} has no pattern"));
        let (_work, loose) = document_file(&doc);
        let caller = Caller {
            role: "anyone",
            client: &hub.token,
            admin: ADMIN_TOKEN,
            procedure: CMS_PROCEDURE,
            application: none,
            message: none,
            document: none,
            dead_letter: none,
            paths: Some(paths),
        };
        let (passed, output) = schemathesis(&hub, path_str(&loose), &caller);
        assert!(
            !passed,
            "the document without {schema}'s pattern passed:\n{output}"
        );
        for text in expected {
            assert!(
                output.contains(text),
                "no `{text}` in the report:\n{output}"
            );
        }
    }
}

/// The OpenAPI document the hub serves.
async fn served_document(hub: &TestHub) -> Value {
    reqwest::get(hub.url("/api/v1/openapi.json"))
        .await
        .expect("the document")
        .json()
        .await
        .expect("the document is JSON")
}

/// `doc` written to `openapi.json` in a new folder (kept while the folder lives).
fn document_file(doc: &Value) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(doc).expect("JSON")).expect("write");
    (work, file)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
