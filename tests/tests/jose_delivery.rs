//! The `jose` profile through the hub: Leipzig's citizens' office receives a compact JWE
//! over RabbitMQ, and Python's jwcrypto decrypts and verifies it as docs/vendors.md says.

use std::time::Duration;

use kopplung_tests::{
    HubSetup, TestHub, amqp, delete_queue, drain_one, open_jose_with_python, xpath,
};
use serde_json::Value;

#[tokio::test]
async fn a_jose_procedure_receives_a_jwe_that_jwcrypto_opens() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    // Leipzig.
    let body = kopplung_tests::shared::fixture_request(
        "meldebescheinigung/fixtures/vollstaendig",
        "99115003000000",
        "147130000000",
    );
    let response = hub.submit(&body, None).await;
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = hub
        .wait_delivered_to(&id, "leipzig-buergerbuero", Duration::from_secs(60))
        .await;

    let queue = hub.queue("leipzig-buergerbuero");
    let message = drain_one(&broker, &queue).await;
    assert_eq!(
        message.properties.content_type().as_ref().unwrap().as_str(),
        "application/jose"
    );
    assert_eq!(
        message.body.iter().filter(|b| **b == b'.').count(),
        4,
        "a compact JWE"
    );
    let xml = open_jose_with_python(&message.body, &hub.pki_dir(), "leipzig-buergerbuero");
    assert_eq!(
        xpath(&xml, "string(//nachrichtenUUID)"),
        status["delivery"]["message_id"].as_str().unwrap()
    );
    assert_eq!(xpath(&xml, "string(//gebiet/code)"), "147130000000");
    assert_eq!(xpath(&xml, "string(//gebuehr/betrag)"), "5.00");

    // One flipped byte in the ciphertext: refused.
    let mut tampered = message.body.clone();
    let at = tampered.len() - 40;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let refused = std::panic::catch_unwind(|| {
        open_jose_with_python(&tampered, &hub.pki_dir(), "leipzig-buergerbuero")
    });
    assert!(refused.is_err());
    delete_queue(&broker, &queue).await;
}
