//! Certificates in operation: an expired recipient certificate stops delivery to its
//! procedure (only) with an operator error and nothing leaves unprotected; rotating the
//! hub's signing key and a procedure's certificate without downtime, with messages
//! sealed before and after the rotation both verifying.

use std::time::Duration;

use kopplung_tests::pki::{Role, issue};
use kopplung_tests::shared::assert_fails_naming;
use kopplung_tests::{
    HubSetup, TestHub, amqp, delete_queue, drain, drain_and_delete, open_cms, xpath,
};
use serde_json::{Value, json};

fn report(region: &str, beschreibung: &str) -> Value {
    json!({
        "service": "99999001000000",
        "region": region,
        "data": {"kategorie": "beleuchtung", "beschreibung": beschreibung, "ort": {"strasse": "Altmarkt"}}
    })
}

async fn submit(hub: &TestHub, region: &str, text: &str) -> String {
    let response = hub.submit(&report(region, text), None).await;
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_expired_recipient_certificate_stops_delivery_to_its_procedure() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup {
        before_start: |pki| {
            // Dresden's certificate expired yesterday.
            issue(
                pki,
                "procedures/dresden-maengel",
                "Fachverfahren dresden-maengel",
                Role::Recipient,
                -30,
                -1,
            );
        },
        ..HubSetup::default()
    })
    .await;
    assert!(hub.log().contains("procedure blocked"), "{}", hub.log());

    let dresden = submit(&hub, "146120000000", "Laterne am Altmarkt defekt").await;
    let leipzig = submit(&hub, "147130000000", "Laterne am Augustusplatz defekt").await;
    hub.wait_for_status(&leipzig, "delivered", Duration::from_secs(30))
        .await;

    let status = hub.wait_for_failed_attempt(&dresden).await;
    assert_eq!(status["status"], "accepted", "not prepared, not delivered");
    let error = status["delivery"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("certificate refused") && error.contains("expired"),
        "{error}"
    );
    assert!(error.contains("dresden-maengel.crt"), "{error}");
    let queue = hub.queue("dresden-maengel");
    let left = drain_and_delete(&broker, &queue, Duration::from_millis(300)).await;
    assert!(left.is_empty(), "nothing left");
    delete_queue(&broker, &hub.queue("leipzig-maengel")).await;

    let check = std::process::Command::new(kopplung_tests::kopplung_bin())
        .args(["check", "--config"])
        .arg(hub.config_path())
        .arg("--data-dir")
        .arg(hub.data_dir())
        .output()
        .unwrap();
    // kopplung check reports the blocked procedure.
    assert_fails_naming(&check, &["dresden-maengel", "expired"]);
}

#[tokio::test]
async fn keys_rotate_without_downtime_and_old_and_new_messages_verify() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let pki = hub.pki_dir();
    let queue = hub.queue("dresden-maengel");

    let before = submit(&hub, "146120000000", "Vor dem Schlüsselwechsel").await;
    hub.wait_for_status(&before, "delivered", Duration::from_secs(30))
        .await;
    let old_hub = hub.dir.path().join("old-hub.crt");
    std::fs::copy(pki.join("hub.crt"), &old_hub).unwrap();

    // Rotation: a new hub signing key, and a second, newer certificate for Dresden.
    issue(&pki, "hub", "kopplung Hub 2027", Role::Signer, 0, 730);
    issue(
        &pki,
        "procedures/dresden-maengel-2027",
        "Fachverfahren dresden-maengel 2027",
        Role::Recipient,
        0,
        730,
    );
    let routing = hub.dir.path().join("config/routing.toml");
    let text = std::fs::read_to_string(&routing).unwrap();
    std::fs::write(
        &routing,
        text.replace(
            "certificate = \"procedures/dresden-maengel.crt\"",
            "certificates = [\"procedures/dresden-maengel.crt\", \"procedures/dresden-maengel-2027.crt\"]",
        ),
    )
    .unwrap();
    hub.hangup();
    hub.wait_for_metric("kopplung_key_reloads_total{outcome=\"applied\"}", 1.0)
        .await;

    let after = submit(&hub, "146120000000", "Nach dem Schlüsselwechsel").await;
    hub.wait_for_status(&after, "delivered", Duration::from_secs(30))
        .await;
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 2);

    let ca = pki.join("ca.crt");
    let first = open_cms(
        &received[0].body,
        &pki.join("procedures/dresden-maengel.crt"),
        &pki.join("procedures/dresden-maengel.key"),
        &ca,
        &old_hub,
    );
    assert_eq!(
        xpath(&first, "string(//beschreibung)"),
        "Vor dem Schlüsselwechsel"
    );
    let second = open_cms(
        &received[1].body,
        &pki.join("procedures/dresden-maengel-2027.crt"),
        &pki.join("procedures/dresden-maengel-2027.key"),
        &ca,
        &pki.join("hub.crt"),
    );
    assert_eq!(
        xpath(&second, "string(//beschreibung)"),
        "Nach dem Schlüsselwechsel"
    );
    // The new message is sealed for the new certificate only, and signed by the new key.
    let opens_with = |name: &str, signer: &std::path::Path| {
        let (cert, key) = (
            format!("procedures/{name}.crt"),
            format!("procedures/{name}.key"),
        );
        std::panic::catch_unwind(|| {
            open_cms(
                &received[1].body,
                &pki.join(cert),
                &pki.join(key),
                &ca,
                signer,
            )
        })
        .is_ok()
    };
    assert!(!opens_with("dresden-maengel", &pki.join("hub.crt")));
    assert!(!opens_with("dresden-maengel-2027", &old_hub));
    delete_queue(&broker, &queue).await;
}
