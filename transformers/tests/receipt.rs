//! Signed receipts in both profiles: they verify against the procedure's certificate
//! only, and one flipped byte is detected.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use kopplung_transformers::pki::{PkiLayout, init_demo_pki};
use kopplung_transformers::receipt::{
    EventDocument, Receipt, ReceiptEvent, ReceiptProblem, sign_cms, sign_set, verify_cms,
    verify_set,
};
use kopplung_transformers::seal::{TrustAnchors, load_certificate};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

fn receipt(event: ReceiptEvent) -> Receipt {
    Receipt {
        receipt_id: "7f0c1e38-5d1a-4c5e-9a2b-1d2e3f4a5b6c".into(),
        procedure: "dresden-maengel".into(),
        message_id: "0428020a-bbfa-40b2-bfe4-a91daa0e73de".into(),
        application_id: "f2e7e9bb-7a23-45a4-b4c0-6a4c93a75164".into(),
        problems: if event == ReceiptEvent::Reject {
            vec![ReceiptProblem {
                kind: "urn:example:problem:unzustaendig".into(),
                title: "Nicht zuständig".into(),
                detail: None,
            }]
        } else {
            vec![]
        },
        message: (event == ReceiptEvent::Decision)
            .then(|| "Ihrem Antrag wird stattgegeben.".into()),
        document: (event == ReceiptEvent::Decision).then(|| EventDocument {
            filename: "bescheid.pdf".into(),
            media_type: "application/pdf".into(),
            content_base64: "JVBERi0xLjQK".into(),
        }),
        event,
        appeal: None,
        fee: None,
        issued_at: "2026-11-30T10:00:00Z".into(),
    }
}

/// A new demo PKI's hub identity, standing in for a procedure's signing certificate and
/// key, and its CA as the trust anchor.
fn signer() -> (X509, PKey<Private>, TrustAnchors) {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &[]).unwrap();
    (
        load_certificate(&pki.hub_cert()).unwrap(),
        PKey::private_key_from_pem(&std::fs::read(pki.hub_key()).unwrap()).unwrap(),
        TrustAnchors::load(&pki.ca_cert()).unwrap(),
    )
}

#[test]
fn receipts_verify_only_with_the_procedure_certificate_and_detect_tampering() {
    let (cert, key, anchors) = signer();
    let (stranger, _, _) = signer();

    for event in [
        ReceiptEvent::Accept,
        ReceiptEvent::Reject,
        ReceiptEvent::Decision,
    ] {
        let r = receipt(event);
        let cms = sign_cms(&r, &cert, &key).unwrap();
        assert_eq!(verify_cms(&cms, &cert, &anchors).unwrap(), r);
        // One byte of the signed content, and one of the signature (at the end).
        let content_at = cms
            .windows(b"receipt_id".len())
            .position(|w| w == b"receipt_id")
            .unwrap();
        for at in [content_at, cms.len() - 2] {
            let mut flipped = cms.clone();
            flipped[at] ^= 0x01;
            assert!(verify_cms(&flipped, &cert, &anchors).is_err(), "byte {at}");
        }
        assert!(verify_cms(&cms, &stranger, &anchors).is_err());

        let set = sign_set(&r, &cert, &key).unwrap();
        assert_eq!(verify_set(&set, &cert, &anchors).unwrap(), r);
        let mut bytes = set.clone().into_bytes();
        let at = bytes.len() - 10; // inside the signature
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        assert!(verify_set(&String::from_utf8(bytes).unwrap(), &cert, &anchors).is_err());
        assert!(verify_set(&set, &stranger, &anchors).is_err());
    }
}

#[test]
fn the_content_hash_ignores_only_the_time_of_issue() {
    let first = receipt(ReceiptEvent::Decision);
    let mut again = first.clone();
    again.issued_at = "2026-11-30T10:05:00Z".into();
    assert_eq!(first.content_sha256(), again.content_sha256());
    let mut other = first.clone();
    other.message = Some("Ihr Antrag wird abgelehnt.".into());
    assert_ne!(first.content_sha256(), other.content_sha256());
}

#[test]
fn signed_content_that_is_no_receipt_is_malformed_not_unverifiable() {
    use kopplung_transformers::Error;
    use openssl::cms::{CMSOptions, CmsContentInfo};
    let (cert, key, anchors) = signer();
    // A receipt without `event`, signed correctly: the procedure's fault is the content.
    let json = br#"{"receipt_id":"r","procedure":"p","message_id":"m","application_id":"a","issued_at":"2026-11-30T10:00:00Z"}"#;
    let cms = CmsContentInfo::sign(
        Some(&cert),
        Some(&key),
        None,
        Some(json),
        CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap();
    let error = verify_cms(&cms, &cert, &anchors).unwrap_err();
    assert!(
        matches!(&error, Error::ReceiptMalformed(reason) if reason.contains("event")),
        "{error}"
    );
    // A decision without its document verifies: what it lacks is the core's to say.
    let mut decision = receipt(ReceiptEvent::Decision);
    decision.document = None;
    let cms = sign_cms(&decision, &cert, &key).unwrap();
    assert_eq!(verify_cms(&cms, &cert, &anchors).unwrap(), decision);
}
