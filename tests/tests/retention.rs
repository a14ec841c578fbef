//! Retention end to end: a hub with `[retention] days = 0` deletes the personal data of a
//! decided application at its next sweep; the applicant's status stays, the decision's
//! document is gone, the deletion is in the history and the audit trail verifies.

use std::time::Duration;

use kopplung_tests::shared::history;
use kopplung_tests::{HubSetup, TestHub, amqp, delete_queue, sign_cms_receipt};
use serde_json::json;

#[tokio::test]
async fn a_decided_application_loses_its_personal_data_after_the_retention_period() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup {
        extra_config: "[retention]\ndays = 0\nsweep_secs = 1\n".into(),
        ..HubSetup::default()
    })
    .await;
    let id = hub
        .submit_accepted(
            &json!({"service": "99999001000000", "region": "146120000000",
                    "data": {"kategorie": "muell", "beschreibung": "Sperrmüll vor dem Haus Nummer 7",
                             "ort": {"strasse": "Prager Straße"}}}),
            None,
        )
        .await;
    let delivered = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    let message_id = delivered["delivery"]["message_id"].as_str().unwrap();
    let pki = hub.pki_dir();
    let client = reqwest::Client::new();
    let events = hub.url("/api/v1/procedures/dresden-maengel/events");
    for event in [
        json!({"receipt_id": "r-accept", "procedure": "dresden-maengel", "message_id": message_id,
               "application_id": id, "event": "accept", "issued_at": kopplung_tests::now_rfc3339()}),
        json!({"receipt_id": "r-decision", "procedure": "dresden-maengel", "message_id": message_id,
               "application_id": id, "event": "decision", "issued_at": kopplung_tests::now_rfc3339(),
               "message": "Der Sperrmüll wird abgeholt.",
               "document": {"filename": "bescheid.pdf", "media_type": "application/pdf",
                            "content_base64": "JVBERi0xLjcKYmVzY2hlaWQ="}}),
    ] {
        let answer = client
            .post(&events)
            .body(sign_cms_receipt(&pki, "dresden-maengel", &event))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    }
    let decided = hub.status(&id).await;
    assert_eq!(decided["status"], "decided");
    let href = decided["documents"][0]["href"].as_str().unwrap();

    // The next sweeps (every second) delete what is due.
    let purged = hub
        .wait_until(&id, "get purged", Duration::from_secs(20), |status| {
            history(status, "detail")
                .iter()
                .any(|detail| detail.starts_with("retention:"))
        })
        .await;
    assert_eq!(purged["status"], "decided");
    assert_eq!(purged["documents"], json!([]));
    assert_eq!(hub.fetch(href, Some(&hub.token)).await.status(), 404);
    assert!(
        purged["mailbox"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["text"] == ""),
        "{purged:#}"
    );
    assert_eq!(
        hub.metric(r#"kopplung_retention_purged_total{service="99999001000000"}"#)
            .await,
        Some(1.0)
    );
    // Operators cannot look at what is gone.
    let view = hub
        .fetch(
            &format!("/api/v1/admin/applications/{id}/message"),
            Some(kopplung_tests::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(view.status(), 410);
    // Only the personal data went: the trail is intact (read beside the running hub).
    kopplung_tests::shared::assert_audit_intact(&hub);
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}
