//! Follow-up messages (answer, documents, objection) are rendered in the hub's one
//! follow-up schema, referring to the application and its message, and a vendor's
//! stock `xmllint` validates them with the published schema file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::process::Command;

use common::{DRESDEN, MELDEBESCHEINIGUNG, mappings_root, preparer};
use kopplung_core::conversation::{FollowUpInput, FollowUpKind};
use kopplung_core::store::{Attachment, AttachmentContent, PrepareInput};
use openssl::hash::{MessageDigest, hash};
use time::macros::datetime;
use uuid::Uuid;

fn follow_up(kind: FollowUpKind, refers_to: Option<&str>, text: Option<&str>) -> PrepareInput {
    let photo = b"\x89PNG\r\n\x1a\n not really a photo".to_vec();
    PrepareInput {
        id: Uuid::new_v4(),
        receipt: "K7QX-2M4P/0a1b2c3d".into(),
        service_key: MELDEBESCHEINIGUNG.into(),
        region: DRESDEN.into(),
        payload: serde_json::json!({ "text": text }),
        attachments: vec![Attachment {
            filename: "nachweis.png".into(),
            media_type: "image/png".into(),
            sha512: hex(&hash(MessageDigest::sha512(), &photo).unwrap()),
            size: photo.len() as u64,
            content: AttachmentContent::Inline(photo),
            slot: None,
        }],
        created_at: datetime!(2026-12-01 08:15:00 UTC),
        authentication: None,
        follow_up: Some(FollowUpInput {
            kind,
            refers_to: refers_to.map(str::to_owned),
            parent_id: Uuid::parse_str("0193a0b4-1111-7000-8000-000000000001").unwrap(),
            parent_receipt: "K7QX-2M4P".into(),
            parent_message_id: Uuid::parse_str("0193a0b4-2222-7000-8000-000000000002").unwrap(),
            parent_created_at: datetime!(2026-11-30 10:00:00 UTC),
        }),
        reply_channel: None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Validates `xml` with stock xmllint against the schema the hub publishes.
fn xmllint(xml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nachricht.xml");
    std::fs::write(&file, xml).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(mappings_root().join(kopplung_transformers::follow_up::SCHEMA))
        .arg(&file)
        .output()
        .expect("xmllint (libxml2-utils) must be installed");
    assert!(
        out.status.success(),
        "{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_answer_refers_to_the_application_its_message_and_the_query() {
    let pki = tempfile::tempdir().unwrap();
    let preparer = preparer(pki.path());
    let message_id = Uuid::new_v4();
    let input = follow_up(
        FollowUpKind::Antwort,
        Some("q-1"),
        Some("Das Foto liegt bei; Größe <1 MB & lesbar."),
    );
    let xml = preparer
        .render_message("manual", message_id, &input)
        .unwrap();
    xmllint(&xml);
    for expected in [
        "<fol:antwort.0201 xmlns:fol=\"urn:kopplung:folgenachricht:1.0\"",
        &format!("<nachrichtenUUID>{message_id}</nachrichtenUUID>"),
        "<code>meldewesen.antwort.0201</code>",
        "<antragsID>0193a0b4-1111-7000-8000-000000000001</antragsID>",
        "<antragsnummer>K7QX-2M4P</antragsnummer>",
        "<nachrichtenUUID>0193a0b4-2222-7000-8000-000000000002</nachrichtenUUID>",
        "<ereignisID>q-1</ereignisID>",
        "<code>146120000000</code>",
        "<name>Dresden, Stadt</name>",
        "<eingangszeitpunkt>2026-12-01T08:15:00Z</eingangszeitpunkt>",
        "<text>Das Foto liegt bei; Größe &lt;1 MB &amp; lesbar.</text>",
        "<dateiname>nachweis.png</dateiname>",
    ] {
        assert!(xml.contains(expected), "{expected} in\n{xml}");
    }
}

#[test]
fn documents_without_a_note_and_an_objection_validate_too() {
    let pki = tempfile::tempdir().unwrap();
    let preparer = preparer(pki.path());
    let documents = preparer
        .render_message(
            "manual",
            Uuid::new_v4(),
            &follow_up(FollowUpKind::Nachreichung, None, None),
        )
        .unwrap();
    xmllint(&documents);
    assert!(documents.contains("<fol:nachreichung.0202 "));
    assert!(!documents.contains("<text>") && !documents.contains("<ereignisID>"));

    let objection = preparer
        .render_message(
            "manual",
            Uuid::new_v4(),
            &follow_up(
                FollowUpKind::Widerspruch,
                Some("d-1"),
                Some("Die Gebühr ist zu hoch."),
            ),
        )
        .unwrap();
    xmllint(&objection);
    assert!(objection.contains("<code>meldewesen.widerspruch.0203</code>"));
    assert!(objection.contains("<ereignisID>d-1</ereignisID>"));
}

#[test]
fn a_payment_record_carries_the_payment_and_is_refused_without_it() {
    let pki = tempfile::tempdir().unwrap();
    let preparer = preparer(pki.path());
    let mut paid = follow_up(FollowUpKind::Zahlung, Some("d-1"), None);
    paid.attachments.clear();
    paid.payload = serde_json::json!({"text": null, "zahlung": {
        "betrag": "108.00", "verwendungszweck": "Hundesteuer für 1 Hund",
        "referenz": "PAY-4711", "zeitpunkt": "2026-12-06T10:15:00Z"}});
    let xml = preparer
        .render_message("manual", Uuid::new_v4(), &paid)
        .unwrap();
    xmllint(&xml);
    for expected in [
        "<fol:zahlung.0204 ",
        "<code>meldewesen.zahlung.0204</code>",
        "<ereignisID>d-1</ereignisID>",
        "<betrag waehrung=\"EUR\">108.00</betrag>",
        "<verwendungszweck>Hundesteuer für 1 Hund</verwendungszweck>",
        "<referenz>PAY-4711</referenz>",
    ] {
        assert!(xml.contains(expected), "{expected} in\n{xml}");
    }
    // Without its payment the schema refuses it: nothing half is delivered.
    paid.payload = serde_json::json!({"text": null});
    let error = preparer
        .render_message("manual", Uuid::new_v4(), &paid)
        .unwrap_err();
    assert!(error.to_string().contains("zahlung"), "{error}");
}
