//! The audit trail (Laufzettel) as an operator and an auditor use it: `kopplung audit
//! verify` beside a running hub, `kopplung audit export` checked with stock `openssl cms`,
//! and a change to the database named by its seq. Against the real broker.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine;
use kopplung_tests::{HubSetup, TestHub, amqp, delete_queue, drain, kopplung_bin};
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
    Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.der",
            "-content",
            "laufzettel.json",
            "-CAfile",
        ])
        .arg(ca)
        .args(["-out", "/dev/null"])
        .current_dir(dir)
        .output()
        .expect("openssl on PATH")
}

fn sha256_hex(bytes: &[u8]) -> String {
    openssl::sha::sha256(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
    let verify = kopplung(&["audit", "verify"], &data_dir, None);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    assert_eq!(text(&verify.stdout), "audit trail intact: 3 entries\n");

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
    let delivered_hash = sha256_hex(&received[0].body);
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
    let edit = Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE audit_log SET detail = 'X' || substr(detail, 2) WHERE seq = 2;")
        .output()
        .expect("sqlite3 (apt-get install sqlite3)");
    assert!(edit.status.success(), "sqlite3: {}", text(&edit.stderr));
    let verify = kopplung(&["audit", "verify"], &data_dir, Some(&config));
    assert!(!verify.status.success(), "a changed trail verified");
    let complaint = text(&verify.stderr);
    assert!(
        complaint.contains("audit trail broken at seq 2: hash mismatch"),
        "{complaint}"
    );
    // The hub does not sign an export of a broken trail.
    let export = kopplung(&["audit", "export", &id], &data_dir, Some(&config));
    assert!(!export.status.success());
    assert!(export.stdout.is_empty());
    assert!(
        text(&export.stderr).contains("seq 2"),
        "{}",
        text(&export.stderr)
    );
}
