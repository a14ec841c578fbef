//! Signed receipts from procedures, made with the vendors' own tools: `openssl cms -sign`
//! for the cms profile, Python jwcrypto for the jose profile's Security Event Token. The
//! hub verifies them against the procedure's certificate; a tampered or foreign receipt
//! is refused and changes nothing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kopplung_tests::{HubSetup, TestHub, amqp, delete_queue, drain, python_with_jwcrypto};
use serde_json::{Value, json};

async fn post_receipt(
    hub: &TestHub,
    procedure: &str,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(hub.url(&format!("/api/v1/procedures/{procedure}/receipts")))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn openssl_sign(pki: &Path, procedure: &str, receipt: &Value) -> Vec<u8> {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("receipt.json"), receipt.to_string()).unwrap();
    let output = Command::new("openssl")
        .args([
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-outform",
            "DER",
            "-md",
            "sha256",
            "-in",
            "receipt.json",
            "-out",
            "receipt.p7m",
            "-signer",
        ])
        .arg(pki.join(format!("procedures/{procedure}-signatur.crt")))
        .arg("-inkey")
        .arg(pki.join(format!("procedures/{procedure}-signatur.key")))
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(work.path().join("receipt.p7m")).unwrap()
}

/// A Security Event Token signed with jwcrypto, as a FIT-Connect style procedure would.
fn jwcrypto_set(pki: &Path, procedure: &str, claims: &Value) -> Vec<u8> {
    let script = r#"
import json, sys
from jwcrypto import jwk, jwt
key = jwk.JWK.from_pem(open(sys.argv[1], 'rb').read())
token = jwt.JWT(header={"alg": "ES256", "typ": "secevent+jwt"}, claims=json.loads(sys.argv[2]))
token.make_signed_token(key)
print(token.serialize())
"#;
    let output = Command::new(python_with_jwcrypto())
        .arg("-c")
        .arg(script)
        .arg(pki.join(format!("procedures/{procedure}-signatur.key")))
        .arg(claims.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

async fn delivered(hub: &TestHub, service: &str, region: &str, fixture: &str) -> Value {
    let body = kopplung_tests::shared::fixture_request(fixture, service, region);
    let id = hub.submit_accepted(&body, None).await;
    hub.wait_for_status(&id, "delivered", Duration::from_secs(60))
        .await
}

#[tokio::test]
async fn cms_receipts_signed_with_openssl_are_verified_and_tampering_is_refused() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let pki = hub.pki_dir();
    let status = delivered(
        &hub,
        "99999001000000",
        "146120000000",
        "maengelanzeige/fixtures/minimal",
    )
    .await;
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
    let signed = openssl_sign(&pki, "dresden-maengel", &receipt);

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
    let foreign = openssl_sign(&pki, "leipzig-maengel", &receipt);
    assert_eq!(
        post_receipt(&hub, "dresden-maengel", foreign, "application/pkcs7-mime")
            .await
            .0,
        403
    );
    assert_eq!(hub.status(id).await["status"], "delivered");

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
        openssl_sign(&pki, "dresden-maengel", &stranger),
        "application/pkcs7-mime",
    )
    .await;
    assert_eq!(code, 422);
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}

#[tokio::test]
async fn jose_receipts_from_jwcrypto_accept_or_reject() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let pki = hub.pki_dir();
    for (event, expected) in [("accept", "received"), ("reject", "rejected")] {
        let status = delivered(
            &hub,
            "99115003000000",
            "147130000000",
            "meldebescheinigung/fixtures/minimal",
        )
        .await;
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
        let token = jwcrypto_set(&pki, "leipzig-buergerbuero", &claims);
        // One flipped character of the signature: refused.
        let mut tampered = String::from_utf8(token.clone())
            .unwrap()
            .trim()
            .to_owned()
            .into_bytes();
        let at = tampered.len() - 5;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            post_receipt(
                &hub,
                "leipzig-buergerbuero",
                tampered,
                "application/secevent+jwt"
            )
            .await
            .0,
            403
        );
        assert_eq!(hub.status(id).await["status"], "delivered");

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
            assert!(
                detail.contains("urn:example:problem:nicht-zustaendig"),
                "{detail}"
            );
            assert!(
                !detail.contains("Nicht zuständig"),
                "free text stays out of the history"
            );
        }
    }
    let queue = hub.queue("leipzig-buergerbuero");
    assert_eq!(
        drain(&broker, &queue, Duration::from_millis(300))
            .await
            .len(),
        2
    );
    delete_queue(&broker, &queue).await;
}

#[tokio::test]
async fn events_on_the_reply_queue_are_verified_like_http_ones() {
    use lapin::options::BasicPublishOptions;
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let pki = hub.pki_dir();
    // Borna: district Leipzig, whose procedure answers on its reply queue.
    let status = delivered(
        &hub,
        "99999001000000",
        "147290050050",
        "maengelanzeige/fixtures/minimal",
    )
    .await;
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
    let publish = |body: Vec<u8>| {
        let channel = channel.clone();
        let queue = queue.clone();
        async move {
            channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    lapin::BasicProperties::default(),
                )
                .await
                .unwrap();
        }
    };
    // Forged: signed by Dresden's procedure, sent on Leipzig district's reply queue.
    publish(openssl_sign(&pki, "dresden-maengel", &receipt)).await;
    // The hub consumes and refuses it (logged); under load that can take a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !hub.log().contains("unverifiable receipt refused") {
        assert!(
            std::time::Instant::now() < deadline,
            "the forged receipt was not refused: {}",
            hub.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hub.status(&id).await["status"], "delivered");
    // Genuine: taken.
    publish(openssl_sign(&pki, "landkreis-leipzig-maengel", &receipt)).await;
    hub.wait_for_status(&id, "received", Duration::from_secs(20))
        .await;
    delete_queue(&broker, &hub.queue("landkreis-leipzig-maengel")).await;
    delete_queue(&broker, &queue).await;
}
