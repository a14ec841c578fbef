//! The admin API by role: operators and auditors search applications and read their
//! history and audit trail; viewing the transformed XML (personal data) is itself
//! recorded; only operators retry and replay; the status shows mappings, certificates
//! and procedures.

use std::time::Duration;

use kopplung_tests::shared::{answer, history, hub_refusing};
use kopplung_tests::{ADMIN_TOKEN, AUDITOR_TOKEN, TestHub, delete_queue};
use serde_json::{Value, json};

fn report(region: &str, text: &str) -> Value {
    json!({"service": "99999001000000", "region": region,
           "data": {"kategorie": "muell", "beschreibung": text, "ort": {"strasse": "Markt"}}})
}

async fn get(hub: &TestHub, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(hub.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request).await
}

async fn post(hub: &TestHub, path: &str, token: &str) -> (u16, Value) {
    answer(
        reqwest::Client::new()
            .post(hub.url(path))
            .bearer_auth(token),
    )
    .await
}

#[tokio::test]
async fn operators_and_auditors_search_inspect_and_act_by_role() {
    // Chemnitz's queue refuses every publish, and Chemnitz waits long between attempts:
    // an operator asks for one now.
    let (broker, hub, chemnitz_queue) = hub_refusing(
        "chemnitz-maengel",
        "base_delay_ms = 600000\nmax_delay_ms = 600000",
    )
    .await;

    let dresden = hub
        .submit_accepted(&report("146120000000", "Laterne defekt vor Haus 3"), None)
        .await;
    let chemnitz = hub
        .submit_accepted(&report("145110000000", "Papierkorb überfüllt"), None)
        .await;
    let delivered = hub
        .wait_for_status(&dresden, "delivered", Duration::from_secs(30))
        .await;
    let receipt = delivered["receipt"].as_str().unwrap().to_owned();
    // Chemnitz's first attempt failed; the next one is far away.
    hub.wait_until(&chemnitz, "fail once", Duration::from_secs(20), |status| {
        status["delivery"]["attempts"] == 1
    })
    .await;

    // Search, by either role; nobody else.
    for token in [ADMIN_TOKEN, AUDITOR_TOKEN] {
        let (code, found) = get(
            &hub,
            &format!("/api/v1/admin/applications?receipt={receipt}"),
            Some(token),
        )
        .await;
        assert_eq!(code, 200, "{found}");
        assert_eq!(found["applications"].as_array().unwrap().len(), 1);
        assert_eq!(found["applications"][0]["id"], dresden.as_str());
        assert_eq!(found["applications"][0]["procedure"], "dresden-maengel");
    }
    let (_, both) = get(
        &hub,
        "/api/v1/admin/applications?service=99999001000000&from=2020-01-01T00:00:00Z",
        Some(AUDITOR_TOKEN),
    )
    .await;
    assert_eq!(both["applications"].as_array().unwrap().len(), 2);
    let (_, waiting) = get(
        &hub,
        "/api/v1/admin/applications?procedure=chemnitz-maengel&status=prepared",
        Some(AUDITOR_TOKEN),
    )
    .await;
    assert_eq!(waiting["applications"][0]["id"], chemnitz.as_str());
    assert_eq!(waiting["applications"][0]["attempts"], 1);
    let (_, none) = get(
        &hub,
        "/api/v1/admin/applications?until=2020-01-01T00:00:00Z",
        Some(AUDITOR_TOKEN),
    )
    .await;
    assert_eq!(none["applications"], json!([]));
    let (code, problem) = get(
        &hub,
        "/api/v1/admin/applications?status=verloren",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(
        (code, problem["type"].as_str()),
        (400, Some("urn:kopplung:problem:bad-query"))
    );
    for token in [None, Some(hub.token.as_str())] {
        assert_eq!(get(&hub, "/api/v1/admin/applications", token).await.0, 401);
    }

    // One application: history, delivery, audit trail (hashes, no content).
    let (code, shown) = get(
        &hub,
        &format!("/api/v1/admin/applications/{dresden}"),
        Some(AUDITOR_TOKEN),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(shown["delivery"]["transport"], "amqp");
    assert!(shown["audit"].as_array().unwrap().len() >= 3, "{shown:#}");
    assert!(
        !shown.to_string().contains("Laterne"),
        "no form data: {shown}"
    );

    // The transformed XML: shown, and the view recorded first.
    let xml = hub
        .fetch(
            &format!("/api/v1/admin/applications/{dresden}/message"),
            Some(AUDITOR_TOKEN),
        )
        .await;
    assert_eq!(xml.status(), 200);
    kopplung_tests::shared::assert_content_type(xml.headers(), "application/xml");
    let xml = xml.text().await.unwrap();
    assert!(xml.contains("Laterne defekt vor Haus 3"), "{xml}");
    let status = hub.status(&dresden).await;
    assert!(
        history(&status, "detail")
            .iter()
            .any(|detail| detail.contains("viewed by auditor")),
        "{status:#}"
    );

    // Only operators act.
    let retry = format!("/api/v1/admin/applications/{chemnitz}/retry");
    assert_eq!(post(&hub, &retry, AUDITOR_TOKEN).await.0, 403);
    let (code, answer) = post(&hub, &retry, ADMIN_TOKEN).await;
    assert_eq!(code, 200, "{answer}");
    let status = hub
        .wait_until(
            &chemnitz,
            "make a second attempt",
            Duration::from_secs(20),
            |status| status["delivery"]["attempts"] == 2,
        )
        .await;
    assert!(
        history(&status, "detail").contains(&"next attempt requested now by operator"),
        "{status:#}"
    );
    let (code, problem) = post(
        &hub,
        &format!("/api/v1/admin/applications/{dresden}/retry"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(
        (code, problem["type"].as_str()),
        (409, Some("urn:kopplung:problem:nothing-to-retry"))
    );
    assert_eq!(
        post(
            &hub,
            &format!("/api/v1/admin/deadletters/{chemnitz}/replay"),
            AUDITOR_TOKEN
        )
        .await
        .0,
        403
    );

    // Mappings, certificates, procedures.
    let (code, status) = get(&hub, "/api/v1/admin/status", Some(AUDITOR_TOKEN)).await;
    assert_eq!(code, 200);
    assert_eq!(status["mappings"].as_array().unwrap().len(), 7);
    assert!(
        status["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["owner"] == "hub" && c["days_left"].as_f64().unwrap() > 300.0)
    );
    let chemnitz_status = status["procedures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["procedure"] == "chemnitz-maengel")
        .unwrap()
        .clone();
    assert_eq!(chemnitz_status["transport"], "amqp");
    assert_eq!(chemnitz_status["pending"], 1);

    // The audit trail holds the views and still verifies.
    kopplung_tests::shared::assert_audit_intact(&hub);
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
    delete_queue(&broker, &chemnitz_queue).await;
}
