//! Signed receipts from procedures, made with the vendors' own tools: `openssl cms -sign`
//! for the cms profile, Python jwcrypto for the jose profile's Security Event Token. The
//! hub verifies them against the procedure's certificate; a tampered or foreign receipt
//! is refused and changes nothing.

use kopplung_tests::keys::MAENGEL;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use kopplung_tests::shared::answer;
use kopplung_tests::{
    HubSetup, TestHub, amqp, delete_queue, drain_and_delete, sign_cms_receipt,
    sign_set_with_jwcrypto,
};
use serde_json::{Value, json};

const MAENGEL_MINIMAL: &str = "maengelanzeige/fixtures/minimal";
const GEWERBE: &str = "99050012104000";
const GEWERBE_MINIMAL: &str = "gewerbeanmeldung/fixtures/minimal";
const MELDE: &str = "99115003000000";
const MELDE_MINIMAL: &str = "meldebescheinigung/fixtures/minimal";

async fn post_receipt(
    hub: &TestHub,
    procedure: &str,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, Value) {
    answer(
        reqwest::Client::new()
            .post(hub.url(&format!("/api/v1/procedures/{procedure}/receipts")))
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

/// Posts a receipt the hub must refuse (403): the application stays delivered.
async fn refused_receipt(
    hub: &TestHub,
    id: &str,
    procedure: &str,
    body: Vec<u8>,
    content_type: &str,
) {
    let (code, answer) = post_receipt(hub, procedure, body, content_type).await;
    assert_eq!(code, 403, "{answer}");
    assert_eq!(hub.status(id).await["status"], "delivered");
}

/// The broker, a hub, and the hub's PKI folder (whose procedure keys sign the receipts).
async fn hub_with_pki() -> (lapin::Connection, TestHub, PathBuf) {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let pki = hub.pki_dir();
    (broker, hub, pki)
}

/// The decision whose answer is `(code, answer)` was taken: the application is decided.
/// Then the procedure's queue goes.
async fn assert_decided(
    broker: &lapin::Connection,
    hub: &TestHub,
    id: &str,
    (code, answer): (u16, Value),
    procedure: &str,
) {
    assert_eq!(code, 200, "{answer}");
    assert_eq!(hub.status(id).await["status"], "decided");
    delete_queue(broker, &hub.queue(procedure)).await;
}

/// The event `kind` (`accept`, `decision`, …) of `procedure` as receipt `receipt_id` for
/// the delivered application whose status is `status`, issued now.
fn event_for(status: &Value, procedure: &str, receipt_id: &str, kind: &str) -> Value {
    json!({
        "receipt_id": receipt_id,
        "procedure": procedure,
        "message_id": status["delivery"]["message_id"],
        "application_id": status["id"],
        "event": kind,
        "issued_at": kopplung_tests::now_rfc3339()
    })
}

/// The decision `event` with its `message` and `content` as its document (declared a PDF).
fn decision_with(mut event: Value, message: &str, content: &[u8]) -> Value {
    event["message"] = json!(message);
    event["document"] = json!({
        "filename": "bescheid.pdf",
        "media_type": "application/pdf",
        "content_base64": base64::engine::general_purpose::STANDARD.encode(content)
    });
    event
}

async fn delivered(hub: &TestHub, service: &str, region: &str, fixture: &str) -> Value {
    let body = kopplung_tests::shared::fixture_request(fixture, service, region);
    let id = hub.submit_accepted(&body, None).await;
    hub.wait_for_status(&id, "delivered", Duration::from_secs(60))
        .await
}

#[tokio::test]
async fn cms_receipts_signed_with_openssl_are_verified_and_tampering_is_refused() {
    let (broker, hub, pki) = hub_with_pki().await;
    let status = delivered(&hub, MAENGEL, "146120000000", MAENGEL_MINIMAL).await;
    let id = status["id"].as_str().unwrap();
    let message_id = status["delivery"]["message_id"].as_str().unwrap();
    let receipt = json!({
        "receipt_id": "8d4c6a5e-0b6f-4a57-9c39-0d8d2f0f3a11",
        "procedure": "dresden-maengel",
        "message_id": message_id,
        "application_id": id,
        "event": "accept",
        "issued_at": kopplung_tests::now_rfc3339()
    });
    let signed = sign_cms_receipt(&pki, "dresden-maengel", &receipt);

    // Tampered content: refused, nothing changes.
    let at = signed
        .windows(b"accept".len())
        .position(|w| w == b"accept")
        .unwrap();
    let mut tampered = signed.clone();
    tampered[at] ^= 0x20;
    let (code, problem) =
        post_receipt(&hub, "dresden-maengel", tampered, "application/pkcs7-mime").await;
    assert_eq!(code, 403, "{problem}");
    assert_eq!(problem["type"], "urn:kopplung:problem:receipt-unverifiable");
    // Signed by another procedure's key: refused.
    let foreign = sign_cms_receipt(&pki, "leipzig-maengel", &receipt);
    refused_receipt(
        &hub,
        id,
        "dresden-maengel",
        foreign,
        "application/pkcs7-mime",
    )
    .await;

    let (code, answer) = post_receipt(
        &hub,
        "dresden-maengel",
        signed.clone(),
        "application/pkcs7-mime",
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["status"], "received");
    let after = hub.status(id).await;
    assert_eq!(after["status"], "received");
    let last = after["history"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .contains("8d4c6a5e-0b6f-4a57-9c39-0d8d2f0f3a11")
    );
    // Again: recognised, nothing changes.
    let (code, answer) =
        post_receipt(&hub, "dresden-maengel", signed, "application/pkcs7-mime").await;
    assert_eq!((code, answer["duplicate"].clone()), (200, json!(true)));
    assert_eq!(hub.status(id).await["history"].as_array().unwrap().len(), 4);

    // A receipt for a message this procedure never got.
    let mut stranger = receipt.clone();
    stranger["receipt_id"] = json!("9e5d7b6f-1c70-4b68-8d4a-1e9e3a1b4c22");
    stranger["message_id"] = json!("00000000-0000-4000-8000-00000000abcd");
    let (code, _) = post_receipt(
        &hub,
        "dresden-maengel",
        sign_cms_receipt(&pki, "dresden-maengel", &stranger),
        "application/pkcs7-mime",
    )
    .await;
    assert_eq!(code, 422);
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}

#[tokio::test]
async fn what_an_event_lacks_or_misdeclares_is_named_and_a_rebuilt_receipt_is_the_same() {
    let (broker, hub, pki) = hub_with_pki().await;
    let status = delivered(&hub, MAENGEL, "146120000000", MAENGEL_MINIMAL).await;
    let id = status["id"].as_str().unwrap();
    let post = async |event: &Value| {
        let signed = sign_cms_receipt(&pki, "dresden-maengel", event);
        post_receipt(&hub, "dresden-maengel", signed, "application/pkcs7-mime").await
    };
    let event =
        |receipt_id: &str, kind: &str| event_for(&status, "dresden-maengel", receipt_id, kind);
    let refused = async |event: &Value, code: u16, kind: &str| {
        let (status, problem) = post(event).await;
        assert_eq!(status, code, "{problem}");
        assert_eq!(problem["type"], format!("urn:kopplung:problem:{kind}"));
        problem
    };

    let accept = event("eingang-1", "accept");
    assert_eq!(post(&accept).await.0, 200);
    // A retry that rebuilds the receipt (a new issued_at, signed anew): the same receipt.
    let mut rebuilt = accept.clone();
    rebuilt["issued_at"] = json!("2000-01-01T00:00:00Z");
    refused(&rebuilt, 422, "event-too-old").await;
    rebuilt["issued_at"] = json!(kopplung_tests::now_rfc3339());
    let (code, answer) = post(&rebuilt).await;
    assert_eq!(
        (code, answer["duplicate"].clone()),
        (200, json!(true)),
        "{answer}"
    );
    // Other content under the same id is another receipt.
    refused(&event("eingang-1", "in_progress"), 409, "receipt-id-reused").await;

    // Signed correctly, but lacking what the kind needs: named, never "unverifiable".
    let problem = refused(&event("bescheid-1", "decision"), 422, "missing-field").await;
    assert!(
        problem["title"].as_str().unwrap().contains("document"),
        "{problem}"
    );
    let problem = refused(&event("abgelehnt-1", "reject"), 422, "missing-field").await;
    assert!(
        problem["title"].as_str().unwrap().contains("problems"),
        "{problem}"
    );
    let mut no_event = event("ohne-art", "accept");
    no_event.as_object_mut().unwrap().remove("event");
    let problem = refused(&no_event, 422, "malformed-event").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("event"),
        "{problem}"
    );

    // A document that is not what it declares.
    let with_document = |content: &[u8]| {
        decision_with(
            event("bescheid-2", "decision"),
            "Ihrem Antrag wird stattgegeben.",
            content,
        )
    };
    let problem = refused(&with_document(b"hello\n"), 422, "bad-document").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("media_type"),
        "{problem}"
    );
    assert_eq!(
        hub.status(id).await["status"],
        "received",
        "nothing changed"
    );
    let answer = post(&with_document(b"%PDF-1.7\nBescheid")).await;
    assert_decided(&broker, &hub, id, answer, "dresden-maengel").await;
}

/// The Gewerbeanmeldung demands PDF/A of its decision (`[decision] document = "pdf/a"`):
/// a plain PDF is refused with the reason, by the dry run too, and nothing is recorded;
/// the reference procedure's PDF/A is taken.
#[tokio::test]
async fn a_service_that_demands_pdf_a_refuses_a_plain_pdf_decision() {
    let (broker, hub, pki) = hub_with_pki().await;
    let status = delivered(&hub, GEWERBE, "146120000000", GEWERBE_MINIMAL).await;
    let id = status["id"].as_str().unwrap();
    let procedure = status["delivery"]["procedure"].as_str().unwrap().to_owned();
    assert_eq!(procedure, "dresden-buergerbuero");
    let post = async |channel: &str, event: &Value| {
        let signed = sign_cms_receipt(&pki, &procedure, event);
        answer(
            reqwest::Client::new()
                .post(hub.url(&format!("/api/v1/procedures/{procedure}/{channel}")))
                .header("content-type", "application/pkcs7-mime")
                .body(signed),
        )
        .await
    };
    let event = |receipt_id: &str, kind: &str| event_for(&status, &procedure, receipt_id, kind);
    let decision = |receipt_id: &str, content: &[u8]| {
        decision_with(
            event(receipt_id, "decision"),
            "Ihre Gewerbeanmeldung ist eingetragen.",
            content,
        )
    };
    assert_eq!(post("events", &event("eingang", "accept")).await.0, 200);
    let history_before = hub.status(id).await["history"].as_array().unwrap().len();

    let plain = decision("bescheid-1", b"%PDF-1.7\nBescheid");
    for channel in ["events", "events/check", "receipts"] {
        let (code, problem) = post(channel, &plain).await;
        assert_eq!(code, 422, "{channel}: {problem}");
        assert_eq!(problem["type"], "urn:kopplung:problem:bad-document");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("the service requires PDF/A"),
            "{problem}"
        );
    }
    let unchanged = hub.status(id).await;
    assert_eq!(unchanged["status"], "received", "nothing recorded");
    assert_eq!(
        unchanged["history"].as_array().unwrap().len(),
        history_before
    );
    assert!(unchanged["documents"].as_array().is_none_or(Vec::is_empty));

    let writer = kopplung_procedure_sim::bescheid::Writer::load(std::path::Path::new(
        kopplung_procedure_sim::bescheid::FONT,
    ))
    .unwrap();
    let pdfa = writer
        .pdf(
            "Bescheid",
            &["Ihre Gewerbeanmeldung ist eingetragen (Müller, Straße).".into()],
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    let (code, checked) = post("events/check", &decision("bescheid-2", &pdfa)).await;
    assert_eq!(
        (code, checked["would_record"].clone()),
        (200, json!(true)),
        "{checked}"
    );
    let answer = post("events", &decision("bescheid-2", &pdfa)).await;
    assert_decided(&broker, &hub, id, answer, "dresden-buergerbuero").await;
}

#[tokio::test]
async fn jose_receipts_from_jwcrypto_accept_or_reject() {
    let (broker, hub, pki) = hub_with_pki().await;
    for (event, expected) in [("accept", "received"), ("reject", "rejected")] {
        let status = delivered(&hub, MELDE, "147130000000", MELDE_MINIMAL).await;
        let id = status["id"].as_str().unwrap();
        let message_id = status["delivery"]["message_id"].as_str().unwrap();
        let event_claim = if event == "accept" {
            json!({"urn:kopplung:events:accept": {}})
        } else {
            json!({"urn:kopplung:events:reject": {"problems": [
                {"type": "urn:example:problem:nicht-zustaendig", "title": "Nicht zuständig"}
            ]}})
        };
        let claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "iss": "leipzig-buergerbuero",
            "iat": kopplung_tests::now_unix(),
            "sub": format!("message:{message_id}"),
            "txn": format!("application:{id}"),
            "events": event_claim
        });
        let token = sign_set_with_jwcrypto(&pki, "leipzig-buergerbuero", &claims);
        // One flipped character of the signature: refused.
        let mut tampered = String::from_utf8(token.clone())
            .unwrap()
            .trim()
            .to_owned()
            .into_bytes();
        let at = tampered.len() - 5;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        refused_receipt(
            &hub,
            id,
            "leipzig-buergerbuero",
            tampered,
            "application/secevent+jwt",
        )
        .await;

        let (code, answer) = post_receipt(
            &hub,
            "leipzig-buergerbuero",
            token,
            "application/secevent+jwt",
        )
        .await;
        assert_eq!(code, 200, "{answer}");
        let after = hub.status(id).await;
        assert_eq!(after["status"], expected);
        if event == "reject" {
            let detail = after["history"].as_array().unwrap().last().unwrap()["detail"]
                .as_str()
                .unwrap()
                .to_owned();
            kopplung_tests::assert_has(&detail, "urn:example:problem:nicht-zustaendig");
            assert!(
                !detail.contains("Nicht zuständig"),
                "free text stays out of the history"
            );
        }
    }
    let queue = hub.queue("leipzig-buergerbuero");
    let delivered = drain_and_delete(&broker, &queue, Duration::from_millis(300)).await;
    assert_eq!(delivered.len(), 2);
}

#[tokio::test]
async fn events_on_the_reply_queue_are_verified_like_http_ones() {
    let (broker, hub, pki) = hub_with_pki().await;
    // Borna: district Leipzig, whose procedure answers on its reply queue.
    let status = delivered(&hub, MAENGEL, "147290050050", MAENGEL_MINIMAL).await;
    let id = status["id"].as_str().unwrap().to_owned();
    let receipt = json!({
        "receipt_id": "a1b2c3d4-0000-4000-8000-000000000001",
        "procedure": "landkreis-leipzig-maengel",
        "message_id": status["delivery"]["message_id"],
        "application_id": id,
        "event": "accept",
        "issued_at": kopplung_tests::now_rfc3339()
    });
    let channel = broker.create_channel().await.unwrap();
    let queue = hub.queue("landkreis-leipzig-maengel.events");
    let publish = async |body: Vec<u8>| {
        kopplung_tests::publish(&channel, &queue, &body, Default::default())
            .await
            .unwrap();
    };
    // The hub consumes the reply queues once it has declared them: a message published
    // before that would be dropped by the broker (no queue yet), not refused by the hub.
    hub.wait_for_log(Duration::from_secs(20), |log| {
        log.contains("consuming events")
    })
    .await;
    // Forged: signed by Dresden's procedure, sent on Leipzig district's reply queue.
    publish(sign_cms_receipt(&pki, "dresden-maengel", &receipt)).await;
    // The hub consumes and refuses it (logged); under load that can take a while.
    hub.wait_for_log(Duration::from_secs(20), |log| {
        log.contains("unverifiable receipt refused")
    })
    .await;
    assert_eq!(hub.status(&id).await["status"], "delivered");
    // Genuine: taken.
    publish(sign_cms_receipt(
        &pki,
        "landkreis-leipzig-maengel",
        &receipt,
    ))
    .await;
    hub.wait_for_status(&id, "received", Duration::from_secs(20))
        .await;
    delete_queue(&broker, &hub.queue("landkreis-leipzig-maengel")).await;
    delete_queue(&broker, &queue).await;
}
