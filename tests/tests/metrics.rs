//! `/metrics` after a run of submissions against the real broker: intake by service and
//! outcome, deliveries by procedure, transport and outcome, the stage histograms, the
//! backlog gauge and the certificates' days to expiry add up to what was done.

use kopplung_tests::keys::MAENGEL;
use std::time::Duration;

use kopplung_tests::{HubSetup, TestHub, amqp, drain_and_delete};
use serde_json::json;

fn maengel(beschreibung: &str) -> serde_json::Value {
    json!({"service": MAENGEL, "region": "146120000000",
           "data": {"kategorie": "muell", "beschreibung": beschreibung, "ort": {"strasse": "Prager Straße"}}})
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let key = (n == 0).then_some("metrics-key-0");
        ids.push(
            hub.submit_accepted(&maengel(&format!("Sperrmüll am Gehweg Nummer {n}")), key)
                .await,
        );
    }
    // The same request again: the earlier answer, no second application.
    let replayed = hub
        .submit(
            &maengel("Sperrmüll am Gehweg Nummer 0"),
            Some("metrics-key-0"),
        )
        .await;
    assert_eq!(replayed.status(), 202);
    // Two with invalid fields, one without a token.
    for _ in 0..2 {
        let refused = hub.submit(&maengel(""), None).await;
        assert_eq!(refused.status(), 422);
    }
    let anonymous = reqwest::Client::new()
        .post(hub.url("/api/v1/applications"))
        .json(&maengel("Sperrmüll am Gehweg"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    for id in &ids {
        hub.wait_for_status(id, "delivered", Duration::from_secs(30))
            .await;
    }

    let expect = [
        (
            format!(r#"kopplung_intake_total{{outcome="accepted",service="{MAENGEL}"}}"#),
            5.0,
        ),
        (
            format!(r#"kopplung_intake_total{{outcome="replayed",service="{MAENGEL}"}}"#),
            1.0,
        ),
        (
            format!(r#"kopplung_intake_total{{outcome="validation",service="{MAENGEL}"}}"#),
            2.0,
        ),
        (
            r#"kopplung_intake_total{outcome="unauthorized",service="unknown"}"#.to_owned(),
            1.0,
        ),
        ("kopplung_intake_seconds_count".to_owned(), 9.0),
        (
            r#"kopplung_deliveries_total{outcome="delivered",procedure="dresden-maengel",transport="amqp"}"#
                .to_owned(),
            5.0,
        ),
        (
            r#"kopplung_prepare_seconds_count{stage="transform"}"#.to_owned(),
            5.0,
        ),
        (r#"kopplung_prepare_seconds_count{stage="seal"}"#.to_owned(), 5.0),
        // Sealed at intake, one at a time: no prepare slot was busy.
        (
            r#"kopplung_intake_sealed_total{outcome="sealed"}"#.to_owned(),
            5.0,
        ),
        (
            r#"kopplung_delivery_seconds_count{transport="amqp"}"#.to_owned(),
            5.0,
        ),
        (
            r#"kopplung_submit_to_delivered_seconds_count{procedure="dresden-maengel"}"#
                .to_owned(),
            5.0,
        ),
        (r#"kopplung_backlog{procedure="dresden-maengel"}"#.to_owned(), 0.0),
        (
            r#"kopplung_oldest_pending_seconds{procedure="dresden-maengel"}"#.to_owned(),
            0.0,
        ),
    ];
    let text = reqwest::get(hub.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (series, value) in &expect {
        assert_eq!(hub.metric(series).await, Some(*value), "{series}\n{text}");
    }
    // The demo PKI's certificates are fresh: valid for many days yet.
    let hub_days = hub
        .metric(r#"kopplung_certificate_expiry_days{certificate="hub.crt",owner="hub"}"#)
        .await
        .unwrap_or_else(|| panic!("no expiry of the hub's certificate\n{text}"));
    assert!(hub_days > 300.0, "{hub_days}");
    kopplung_tests::assert_has(
        &text,
        r#"kopplung_certificate_expiry_days{certificate="dresden-maengel.crt",owner="dresden-maengel"}"#,
    );
    let queue = hub.queue("dresden-maengel");
    let delivered = drain_and_delete(&broker, &queue, Duration::from_millis(300)).await;
    assert_eq!(delivered.len(), 5);
}
