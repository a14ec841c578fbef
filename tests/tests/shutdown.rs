//! Graceful shutdown: on SIGTERM the hub stops taking applications, finishes the
//! deliveries in flight (a slow HTTP procedure), records them, and exits; after a
//! restart nothing is sent twice and nothing is missing.

use std::time::{Duration, Instant};

use kopplung_tests::eventually;
use kopplung_tests::shared::counting_receiver_with_arrivals;
use kopplung_tests::{HubSetup, TestHub};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_deliveries_in_flight_and_refuses_new_work() {
    // A slow procedure: each answer takes 1.5 s.
    let (url, seen, arrived) = counting_receiver_with_arrivals(Duration::from_millis(1500)).await;
    let mut hub = TestHub::start(HubSetup::over_http("dresden-maengel", &url, 10_000)).await;
    let ids = hub
        .submit_all((0..3).map(|n| {
            let body = json!({"service": "99999001000000", "region": "146120000000",
                    "data": {"kategorie": "muell", "beschreibung": format!("Sperrmüll Nummer {n}"),
                             "ort": {"strasse": "Prager Straße"}}});
            (body, None)
        }))
        .await;
    // All three are in flight at the slow procedure (it has not answered yet).
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(20),
        async || {
            let n = arrived.load(std::sync::atomic::Ordering::SeqCst);
            if n >= 3 { Ok(()) } else { Err(n) }
        },
        |n| format!("only {n} of 3 deliveries arrived:\n{}", hub.log()),
    )
    .await;
    assert!(
        seen.lock().await.is_empty(),
        "answered too early for this test"
    );

    let started = Instant::now();
    let port = hub.port;
    let status = tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(20)));
    assert!(status.success(), "exit {status}:\n{}", hub.log());
    // It waited for the answers in flight, then recorded them.
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    let log = hub.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.matches("delivered").count() >= 3, "{log}");
    // No intake any more.
    assert!(
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_err()
    );

    // After a restart: all three delivered, each sent once.
    hub.spawn().await;
    for id in &ids {
        let status = hub.status(id).await;
        assert_eq!(status["status"], "delivered", "{status:#}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().await;
    assert_eq!(seen.len(), 3);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}
