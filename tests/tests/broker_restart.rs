//! RabbitMQ itself stopped mid-run and started again (not a proxy in front of it): the
//! hub keeps accepting applications, `/readyz` reports the broker down and, once it is
//! back, up again; every accepted application arrives, each with its message id.
//! (Alone in its test binary: stopping the broker would disturb tests running beside it.)

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use kopplung_tests::{HubSetup, TestHub, amqp, delete_queue, drain, run_ok};
use serde_json::{Value, json};

fn rabbitmqctl(args: &[&str]) {
    run_ok(
        Command::new("rabbitmqctl").args(args),
        &format!(
            "rabbitmqctl {} (on PATH with the RabbitMQ server's tools)",
            args.join(" ")
        ),
    );
}

/// Starts the broker's application again however the test ends.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").output();
    }
}

fn report(n: usize) -> Value {
    json!({"service": "99999001000000", "region": "146120000000",
           "data": {"kategorie": "muell", "beschreibung": format!("Sperrmüll am Gehweg, Meldung {n}"),
                    "ort": {"strasse": "Prager Straße"}}})
}

async fn ready(hub: &TestHub) -> (u16, Value) {
    let response = reqwest::get(hub.url("/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_broker_stopped_and_started_again_mid_run() {
    let hub = TestHub::start(HubSetup::default()).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(hub.submit_accepted(&report(n), None).await);
    }
    hub.wait_for_status(&ids[19], "delivered", Duration::from_secs(30))
        .await;
    assert_eq!(ready(&hub).await.0, 200);

    let restart = Restart;
    rabbitmqctl(&["stop_app"]);
    // Intake goes on while the broker is down.
    for n in 20..40 {
        ids.push(hub.submit_accepted(&report(n), None).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = ready(&hub).await;
        if code == 503 && body["brokers"][0]["connected"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "readiness did not flip: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    rabbitmqctl(&["start_app"]);
    drop(restart);
    rabbitmqctl(&["await_startup"]);
    for id in &ids {
        hub.wait_for_status(id, "delivered", Duration::from_secs(90))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(&hub).await.0 != 200 {
        assert!(Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let broker = amqp().await;
    let queue = hub.queue("dresden-maengel");
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for message in &received {
        *seen.entry(message.message_id()).or_default() += 1;
    }
    let mut expected = BTreeMap::new();
    for id in &ids {
        let status = hub.status(id).await;
        expected.insert(
            status["delivery"]["message_id"]
                .as_str()
                .unwrap()
                .to_owned(),
            id.clone(),
        );
    }
    let missing: Vec<&String> = expected.keys().filter(|m| !seen.contains_key(*m)).collect();
    assert!(missing.is_empty(), "missing message ids: {missing:?}");
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    kopplung_tests::faults::summary(
        "faults-broker-restart",
        &[
            ("applications", ids.len().to_string()),
            ("accepted_while_broker_down", "20".into()),
            ("broker_stops", "1".into()),
            ("unique_message_ids", seen.len().to_string()),
            ("lost", missing.len().to_string()),
            ("redelivered_same_id", duplicates.to_string()),
        ],
    );
    assert_eq!(seen.len(), ids.len());
    delete_queue(&broker, &queue).await;
}
