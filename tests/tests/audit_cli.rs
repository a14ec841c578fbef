//! The audit trail (Laufzettel) as an operator and an auditor use it: `kopplung audit
//! verify` beside a running hub, `kopplung audit export` and checkpoints checked with
//! stock `openssl cms`, and a tamper table: changes to the database — to entries, to the
//! stored content they bind, a tail removed with its sequence — each named by its entry.
//! Against the real broker (and PostgreSQL for a truncated tail there).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine;
use kopplung_tests::shared::answer;
use kopplung_tests::{
    HubSetup, PostgresDatabase, TestHub, amqp, copy_dir, delete_queue, drain, kopplung_bin,
    psql_in, sign_cms_receipt,
};
use serde_json::{Value, json};

fn kopplung(args: &[&str], data_dir: &Path, config: Option<&Path>) -> Output {
    let mut command = Command::new(kopplung_bin());
    command.args(args).arg("--data-dir").arg(data_dir);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.output().expect("run kopplung")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `openssl cms -verify` of a detached signature, exactly as docs/operations.md shows it.
fn openssl_verify(dir: &Path, ca: &Path) -> Output {
    openssl_verify_files(dir, ca, "sig.der", "laufzettel.json")
}

fn openssl_verify_files(dir: &Path, ca: &Path, signature: &str, content: &str) -> Output {
    Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-in", signature, "-content", content,
            "-CAfile",
        ])
        .arg(ca)
        .args(["-out", "/dev/null"])
        .current_dir(dir)
        .output()
        .expect("openssl on PATH")
}

/// `kopplung audit verify` must find the trail intact, with `entries` entries all
/// re-hashed; what it said.
fn verify_intact(data_dir: &Path, entries: usize) -> String {
    let verify = kopplung(&["audit", "verify"], data_dir, None);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let said = text(&verify.stdout);
    assert!(
        said.starts_with(&format!("audit trail intact: {entries} entries\n")),
        "{said}"
    );
    kopplung_tests::assert_has(&said, format!("\ncontent: {entries} entries re-hashed"));
    said
}

#[tokio::test]
async fn the_laufzettel_verifies_exports_with_openssl_and_names_tampering() {
    let broker = amqp().await;
    let mut hub = TestHub::start(HubSetup::default()).await;
    let body = json!({
        "service": "99999001000000",
        "region": "146120000000",
        "data": {
            "kategorie": "strassenschaden",
            "beschreibung": "Schlagloch vor der Hausnummer 7a",
            "ort": {"strasse": "Kesselsdorfer Straße", "hausnummer": "7a"},
            "kontakt": {"name": "Jörg Müller-Lüdenscheidt", "email": "joerg@example.org"}
        }
    });
    let id = hub.submit_accepted(&body, None).await;
    hub.wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    let queue = hub.queue("dresden-maengel");
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 1);
    delete_queue(&broker, &queue).await;
    let data_dir = hub.data_dir();
    let config = hub.config_path();

    // Beside the running hub (which holds the data directory's lock).
    verify_intact(&data_dir, 3);

    let export = kopplung(&["audit", "export", &id], &data_dir, Some(&config));
    assert!(export.status.success(), "{}", text(&export.stderr));
    let export: Value = serde_json::from_slice(&export.stdout).unwrap();
    let laufzettel = export["laufzettel"].as_str().unwrap();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(export["signature"].as_str().unwrap())
        .unwrap();

    // What the Laufzettel says: three linked entries, the delivered message by its hash,
    // and nothing of what the citizen wrote.
    let parsed: Value = serde_json::from_str(laufzettel).unwrap();
    assert_eq!(parsed["application_id"], id.as_str());
    assert!(parsed["exported_at"].is_string());
    let entries = parsed["entries"].as_array().unwrap();
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "prepared", "delivered"]);
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["prev_hash"], "0".repeat(64));
    assert_eq!(entries[1]["prev_hash"], entries[0]["hash"]);
    assert_eq!(entries[0]["message_sha256"], Value::Null);
    let delivered_hash = hex::encode(openssl::sha::sha256(&received[0].body));
    assert_eq!(entries[1]["message_sha256"], delivered_hash.as_str());
    assert_eq!(entries[2]["message_sha256"], delivered_hash.as_str());
    for private in ["Jörg", "Müller", "joerg@", "Schlagloch", "Kesselsdorfer"] {
        assert!(!laufzettel.contains(private), "{private} in {laufzettel}");
    }

    // The auditor's side: stock openssl against the hub's CA.
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("laufzettel.json"), laufzettel).unwrap();
    std::fs::write(work.path().join("sig.der"), &signature).unwrap();
    let ca = hub.pki_dir().join("ca.crt");
    let checked = openssl_verify(work.path(), &ca);
    assert!(checked.status.success(), "{}", text(&checked.stderr));

    // The export carries a checkpoint covering the entries, which openssl checks the same
    // way (docs/operations.md).
    let checkpoints = export["checkpoints"].as_array().unwrap();
    let newest = checkpoints.last().unwrap();
    assert!(newest["seq"].as_i64().unwrap() >= 3, "{newest}");
    std::fs::write(
        work.path().join("statement.txt"),
        newest["statement"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        work.path().join("statement.der"),
        base64::engine::general_purpose::STANDARD
            .decode(newest["signature"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let checked = openssl_verify_files(work.path(), &ca, "statement.der", "statement.txt");
    assert!(checked.status.success(), "{}", text(&checked.stderr));

    // One flipped byte and the signature no longer fits.
    let mut changed = laufzettel.as_bytes().to_vec();
    let position = laufzettel.find("delivered").unwrap();
    changed[position] ^= 0x01;
    std::fs::write(work.path().join("laufzettel.json"), &changed).unwrap();
    let refused = openssl_verify(work.path(), &ca);
    assert!(!refused.status.success(), "a changed Laufzettel verified");

    // Someone edits the database behind the hub's back.
    hub.kill();
    let db = data_dir.join("kopplung.db");
    sqlite3(
        &db,
        "UPDATE audit_log SET detail = 'X' || substr(detail, 2) WHERE seq = 2;",
    );
    let verify = kopplung(&["audit", "verify"], &data_dir, Some(&config));
    assert!(!verify.status.success(), "a changed trail verified");
    let complaint = text(&verify.stderr);
    kopplung_tests::assert_has(&complaint, "audit trail broken at seq 2: hash mismatch");
    // The hub does not sign an export of a broken trail.
    let export = kopplung(&["audit", "export", &id], &data_dir, Some(&config));
    assert!(!export.status.success());
    assert!(export.stdout.is_empty());
    kopplung_tests::assert_has(text(&export.stderr), "seq 2");
}

/// Runs SQL on a SQLite file with the `sqlite3` command line; its output.
fn sqlite3(db: &Path, sql: &str) -> String {
    kopplung_tests::shared::sqlite3(db, sql, false)
}

/// An application of the Mängelmelder with a name in it.
fn maengel(n: usize) -> Value {
    json!({
        "service": "99999001000000",
        "region": "146120000000",
        "data": {
            "kategorie": "strassenschaden",
            "beschreibung": format!("Schlagloch Nummer {n} vor dem Haus"),
            "ort": {"strasse": "Kesselsdorfer Straße", "hausnummer": "7a"},
            "kontakt": {"name": "Jörg Müller-Lüdenscheidt", "email": "joerg@example.org"}
        }
    })
}

/// A Gewerbeanmeldung in Dresden with an inline attachment and one uploaded (streamed,
/// three chunks); returns the application's and the upload's id.
async fn with_attachments(hub: &TestHub) -> (String, String) {
    use base64::engine::general_purpose::STANDARD;
    let big: Vec<u8> = b"%PDF-1.7\n"
        .iter()
        .copied()
        .chain((0..2_200_000u32).map(|i| (i % 251) as u8))
        .collect();
    let (_, uploaded) = answer(
        reqwest::Client::new()
            .post(hub.url("/api/v1/attachments"))
            .query(&[("filename", "Lageplan Nguyen.pdf")])
            .bearer_auth(&hub.token)
            .header("content-type", "application/pdf")
            .body(big),
    )
    .await;
    let upload = uploaded["id"].as_str().unwrap().to_owned();
    let mut body = kopplung_tests::shared::fixture_request(
        "gewerbeanmeldung/fixtures/minimal",
        "99050012104000",
        "146120000000",
    );
    body["attachments"] = json!([
        {"filename": "Mietvertrag Nguyen.pdf", "media_type": "application/pdf",
         "content_base64": STANDARD.encode(b"%PDF-1.7\nMietvertrag")},
        {"upload": upload},
    ]);
    let id = hub.submit_accepted(&body, None).await;
    hub.wait_for_status(&id, "delivered", Duration::from_secs(60))
        .await;
    (id, upload)
}

/// The procedure confirms receipt and decides, with a document, as signed events.
async fn receive_and_decide(hub: &TestHub, id: &str) {
    let status = hub.status(id).await;
    let message_id = status["delivery"]["message_id"].as_str().unwrap();
    let pki = hub.pki_dir();
    let client = reqwest::Client::new();
    // Issued now: the hub refuses events older than a week.
    let now = kopplung_tests::now_rfc3339();
    for event in [
        json!({"receipt_id": format!("accept-{id}"), "procedure": "dresden-maengel",
               "message_id": message_id, "application_id": id, "event": "accept",
               "issued_at": now}),
        json!({"receipt_id": format!("decision-{id}"), "procedure": "dresden-maengel",
               "message_id": message_id, "application_id": id, "event": "decision",
               "issued_at": now, "message": "Das Schlagloch wird geschlossen.",
               "document": {"filename": "bescheid-mueller.pdf", "media_type": "application/pdf",
                            "content_base64": "JVBERi0xLjcKYmVzY2hlaWQ="}}),
    ] {
        let answer = client
            .post(hub.url("/api/v1/procedures/dresden-maengel/events"))
            .body(sign_cms_receipt(&pki, "dresden-maengel", &event))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    }
    assert_eq!(hub.status(id).await["status"], "decided");
}

/// One row of the tamper table.
struct Case {
    what: &'static str,
    sql: String,
    /// What `audit verify` must say (on standard error).
    expected: String,
    /// Checkpoints held outside to verify with.
    outside: Option<std::path::PathBuf>,
}

#[tokio::test]
async fn the_tamper_table_each_change_is_named_by_its_entry() {
    let broker = amqp().await;
    let mut hub = TestHub::start(HubSetup {
        extra_config: "[audit]\ncheckpoint_secs = 1\n".into(),
        ..HubSetup::default()
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(hub.submit_accepted(&maengel(n), None).await);
    }
    for id in &ids {
        hub.wait_for_status(id, "delivered", Duration::from_secs(30))
            .await;
        receive_and_decide(&hub, id).await;
    }
    let (d, upload) = with_attachments(&hub).await;
    // Beside the running hub: intact, everything compared, periodic checkpoints there.
    let data_dir = hub.data_dir();
    let verify = kopplung(&["audit", "verify"], &data_dir, None);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    // Shutdown signs the head.
    assert!(hub.terminate(Duration::from_secs(30)).success());
    let db = data_dir.join("kopplung.db");
    let head: i64 = sqlite3(&db, "SELECT max(seq) FROM audit_log")
        .parse()
        .unwrap();
    assert_eq!(
        head, 18,
        "five entries per decided application, three for the last"
    );
    let checkpointed: i64 = sqlite3(&db, "SELECT max(seq) FROM audit_checkpoints")
        .parse()
        .unwrap();
    assert_eq!(checkpointed, head, "the shutdown checkpoint names the head");
    let said = verify_intact(&data_dir, 18);
    kopplung_tests::assert_has(
        &said,
        "signatures verified; the newest that holds names seq 18",
    );
    // An outside party keeps the checkpoints.
    let saved = tempfile::tempdir().unwrap();
    let checkpoints = kopplung(&["audit", "checkpoints"], &data_dir, None);
    assert!(
        checkpoints.status.success(),
        "{}",
        text(&checkpoints.stderr)
    );
    let held = saved.path().join("checkpoints.json");
    std::fs::write(&held, &checkpoints.stdout).unwrap();

    let seq_of = |id: &str, status: &str| -> i64 {
        sqlite3(
            &db,
            &format!(
                "SELECT seq FROM audit_log WHERE application_id = '{id}' AND status = '{status}'"
            ),
        )
        .parse()
        .unwrap()
    };
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    let cut = head - 4;
    // The first checkpoint the cut leaves without its entry (checkpoints are read by seq,
    // stored and exported alike): a periodic one may name an entry between cut and head.
    let first_cut = sqlite3(
        &db,
        &format!(
            "SELECT seq || ' ' || at FROM audit_checkpoints WHERE seq > {cut} ORDER BY seq, id LIMIT 1"
        ),
    );
    let (first_cut_seq, first_cut_at) = first_cut.split_once(' ').unwrap();
    let cases = vec![
        Case {
            what: "payload edit",
            sql: format!(
                "UPDATE applications SET payload = replace(payload, 'Müller', 'Maier') WHERE id = '{a}'"
            ),
            expected: format!(
                "audit trail broken: payload (form data and attachments) does not match the hash in entry seq {} of application {a}",
                seq_of(a, "accepted")
            ),
            outside: None,
        },
        Case {
            what: "uploaded attachment edit",
            sql: format!(
                "UPDATE upload_chunks SET content = CAST(X'00' || substr(content, 2) AS BLOB) WHERE upload_id = '{upload}' AND seq = 1"
            ),
            expected: format!(
                "audit trail broken: payload (form data and attachments) does not match the hash in entry seq {} of application {d}",
                seq_of(&d, "accepted")
            ),
            outside: None,
        },
        Case {
            what: "sealed message edit",
            sql: format!(
                "UPDATE deliveries SET sealed = CAST(X'00' || substr(sealed, 2) AS BLOB) WHERE application_id = '{b}'"
            ),
            expected: format!(
                "audit trail broken: sealed message does not match the hash in entry seq {} of application {b}",
                seq_of(b, "prepared")
            ),
            outside: None,
        },
        Case {
            what: "receipt edit",
            sql: format!(
                "UPDATE receipts SET signed = CAST(X'00' || substr(signed, 2) AS BLOB) WHERE application_id = '{c}' AND event = 'received'"
            ),
            expected: format!(
                "audit trail broken: signed receipt does not match the hash in entry seq {} of application {c}",
                seq_of(c, "received")
            ),
            outside: None,
        },
        Case {
            what: "document edit",
            sql: format!(
                "UPDATE documents SET content = CAST('%PDF-1.7 forged' AS BLOB) WHERE application_id = '{a}'"
            ),
            expected: format!(
                "audit trail broken: decision document does not match the hash in entry seq {} of application {a}",
                seq_of(a, "decided")
            ),
            outside: None,
        },
        Case {
            what: "middle-row delete",
            sql: "DELETE FROM audit_log WHERE seq = 7".into(),
            expected: "audit trail broken at seq 8: gap in seq: expected seq 7".into(),
            outside: None,
        },
        Case {
            what: "tail truncation with sequence reset",
            sql: format!(
                "DELETE FROM audit_log WHERE seq > {cut}; UPDATE sqlite_sequence SET seq = {cut} WHERE name = 'audit_log';"
            ),
            expected: format!(
                "audit trail broken: seq {first_cut_seq} named by the checkpoint of {first_cut_at} is missing (the chain ends at seq {cut})"
            ),
            outside: None,
        },
        Case {
            what: "tail truncation with the stored checkpoints removed",
            sql: format!(
                "DELETE FROM audit_log WHERE seq > {cut}; UPDATE sqlite_sequence SET seq = {cut} WHERE name = 'audit_log'; DELETE FROM audit_checkpoints WHERE seq > {cut};"
            ),
            expected: format!(
                "audit trail broken: seq {first_cut_seq} named by the checkpoint of {first_cut_at} (from {}) is missing (the chain ends at seq {cut})",
                held.display()
            ),
            outside: Some(held.clone()),
        },
    ];
    let mut named = 0;
    for case in &cases {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(&data_dir, copy.path());
        sqlite3(&copy.path().join("kopplung.db"), &case.sql);
        let mut args = vec!["audit", "verify"];
        let outside = case.outside.as_ref().map(|p| p.display().to_string());
        if let Some(file) = &outside {
            args.extend(["--checkpoints", file.as_str()]);
        }
        let verify = kopplung(&args, copy.path(), None);
        let complaint = text(&verify.stderr);
        assert!(!verify.status.success(), "{}: not detected", case.what);
        assert!(
            complaint.contains(&case.expected),
            "{}: expected\n  {}\ngot\n  {complaint}",
            case.what,
            case.expected
        );
        for private in [
            "Jörg",
            "Müller",
            "Maier",
            "joerg@",
            "Schlagloch",
            "bescheid-mueller",
            "Nguyen",
            "Lageplan",
        ] {
            assert!(
                !complaint.contains(private),
                "{}: {private} in {complaint}",
                case.what
            );
        }
        named += 1;
        eprintln!("TAMPER {}: {}", case.what, complaint.trim());
        if case.outside.is_some() {
            // Without the checkpoints held outside, the store alone cannot tell.
            let alone = kopplung(&["audit", "verify"], copy.path(), None);
            assert!(alone.status.success(), "{}", text(&alone.stderr));
        }
    }
    eprintln!(
        "SUMMARY audit-tamper: store=sqlite cases={} detected={named} named_by_entry={named} personal_data_in_output=0",
        cases.len()
    );
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
    delete_queue(&broker, &hub.queue("dresden-buergerbuero")).await;
}

#[tokio::test]
async fn a_truncated_tail_on_postgresql_is_named_by_its_checkpoint() {
    let broker = amqp().await;
    let database = PostgresDatabase::create();
    let mut hub = TestHub::start(HubSetup {
        extra_config: format!("[store]\npostgres_url = \"{}\"\n", database.url()),
        ..HubSetup::default()
    })
    .await;
    for n in 0..2 {
        let id = hub.submit_accepted(&maengel(n), None).await;
        hub.wait_for_status(&id, "delivered", Duration::from_secs(30))
            .await;
    }
    assert!(hub.terminate(Duration::from_secs(30)).success());
    let (data_dir, config) = (hub.data_dir(), hub.config_path());
    let verify = kopplung(&["audit", "verify"], &data_dir, Some(&config));
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let head: i64 = psql_in(&database.name, "SELECT max(seq) FROM audit_log")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(head, 6);
    // The instance's own chain, named by its id; its checkpoints (format 2) name its
    // head in `heads`.
    let chain = std::fs::read_to_string(data_dir.join("instance-id")).unwrap();
    let chain = chain.trim();
    assert_eq!(
        psql_in(&database.name, "SELECT DISTINCT chain FROM audit_log").trim(),
        chain
    );
    let at = psql_in(
        &database.name,
        &format!(
            "SELECT at FROM audit_checkpoints WHERE heads = 'chain {chain} seq {head} hash ' || (SELECT hash FROM audit_log WHERE seq = {head}) || E'\\n' ORDER BY id DESC LIMIT 1"
        ),
    );
    assert!(!at.trim().is_empty(), "a checkpoint names the head");
    psql_in(
        &database.name,
        "DELETE FROM audit_log WHERE seq > 4; UPDATE audit_chains SET seq = 4;",
    );
    let verify = kopplung(&["audit", "verify"], &data_dir, Some(&config));
    assert!(!verify.status.success(), "a truncated tail verified");
    let complaint = text(&verify.stderr);
    let expected = format!(
        "audit trail broken: seq 6 of chain {chain} named by the checkpoint of {} is missing (the chain ends at seq 4)",
        at.trim()
    );
    assert!(complaint.contains(&expected), "{complaint}");
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}
