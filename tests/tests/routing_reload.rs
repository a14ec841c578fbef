//! The routing table reloads without a restart (issue 21): a reload over the admin API
//! that adds a procedure and points a route at it takes effect for the next
//! application; a broken one is refused with the reason, and the table in force stays;
//! SIGHUP does the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kopplung_tests::shared::fixture_request;
use kopplung_tests::{ADMIN_TOKEN, HubSetup, TestHub};
use serde_json::Value;

/// An HTTP receiver on loopback that takes every POST with 200 and counts them.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().route(
        "/neu/eingang",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/neu/eingang"), count)
}

async fn reload(hub: &TestHub) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(hub.url("/api/v1/admin/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn dresden() -> Value {
    fixture_request(
        "maengelanzeige/fixtures/vollstaendig",
        "99999001000000",
        "146120000000",
    )
}

#[tokio::test]
async fn a_procedure_and_a_route_are_added_without_a_restart_and_a_broken_table_is_refused() {
    let hub = TestHub::start(HubSetup::default()).await;
    let (url, received) = receiver().await;
    let routing_file = hub.routing_path();
    let original = std::fs::read_to_string(&routing_file).unwrap();

    // A new procedure of Dresden's, reached over HTTP push, and the route to it.
    let added = original.replace(
        "[[route]]\nservice = \"99999001000000\"\nregion = \"14612\"\nprocedure = \"dresden-maengel\"",
        &format!(
            "[[procedure]]\nid = \"dresden-maengel-neu\"\nauthority = \"dresden\"\nenvelope = \"cms\"\ncertificate = \"procedures/dresden-maengel-neu.crt\"\n[procedure.delivery]\ntransport = \"http\"\nurl = \"{url}\"\nallow_plain_http = true\n\n[[route]]\nservice = \"99999001000000\"\nregion = \"14612\"\nprocedure = \"dresden-maengel-neu\""
        ),
    );
    assert_ne!(added, original, "the demo's Dresden route moved");
    std::fs::write(&routing_file, &added).unwrap();
    // Its certificate, as the operator issues it (only missing files are written).
    hub.issue_keys();

    let (status, report) = reload(&hub).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(
        report["routing"]["added"],
        serde_json::json!(["dresden-maengel-neu"])
    );
    let id = hub.submit_accepted(&dresden(), None).await;
    let delivered = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    assert_eq!(delivered["delivery"]["procedure"], "dresden-maengel-neu");
    assert_eq!(delivered["delivery"]["transport"], "http");
    assert_eq!(received.load(Ordering::SeqCst), 1);
    assert_eq!(
        hub.metric("kopplung_routing_reloads_total{outcome=\"applied\"}")
            .await,
        Some(1.0)
    );

    // A broken table: a route to a procedure that does not exist. Refused with the
    // reason; the table in force stays.
    std::fs::write(
        &routing_file,
        added.replace(
            "procedure = \"dresden-maengel-neu\"\n",
            "procedure = \"dresden-maengel-gibt-es-nicht\"\n",
        ),
    )
    .unwrap();
    let (status, problem) = reload(&hub).await;
    assert_eq!(status, 422, "{problem:#}");
    assert_eq!(problem["type"], "urn:kopplung:problem:reload-refused");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("routing table and keys: refused")
            && detail.contains("dresden-maengel-gibt-es-nicht"),
        "{detail}"
    );
    let id = hub.submit_accepted(&dresden(), None).await;
    let delivered = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    assert_eq!(delivered["delivery"]["procedure"], "dresden-maengel-neu");
    assert_eq!(received.load(Ordering::SeqCst), 2);

    // SIGHUP: back to the original table, Dresden's reports go to its AMQP queue again.
    std::fs::write(&routing_file, &original).unwrap();
    hub.hangup();
    hub.wait_for_metric("kopplung_routing_reloads_total{outcome=\"applied\"}", 2.0)
        .await;
    let id = hub.submit_accepted(&dresden(), None).await;
    let status = hub.status(&id).await;
    assert_eq!(
        status["delivery"]["procedure"], "dresden-maengel",
        "{status:#}"
    );
    assert_eq!(
        hub.metric("kopplung_routing_reloads_total{outcome=\"refused\"}")
            .await,
        Some(1.0)
    );
}
