//! Retries and dead letters against the real broker: a queue that refuses every publish
//! (a vendor's length limit with reject-publish) makes each attempt a nack; after the
//! procedure's last attempt the message is dead-lettered with its reason, listed by
//! `kopplung deadletters`, and a replay delivers it with the same message id.

use std::process::Command;
use std::time::Duration;

use kopplung_tests::{ADMIN_TOKEN, HubSetup, TestHub, amqp, delete_queue, drain, kopplung_bin};
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::json;

fn deadletters(hub: &TestHub, args: &[&str]) -> (bool, String) {
    let output = Command::new(kopplung_bin())
        .arg("deadletters")
        .args(args)
        .arg("--hub")
        .arg(hub.url(""))
        .arg("--token-file")
        .arg(hub.data_dir().join("admin-token"))
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test]
async fn the_last_attempt_dead_letters_and_a_replay_keeps_the_message_id() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup {
        edit_routing: |routing| {
            routing.replacen(
                ".dresden-maengel\"\n",
                ".dresden-maengel\"\n\n[procedure.retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 50\n",
                1,
            )
        },
        ..HubSetup::default()
    })
    .await;
    let queue = hub.queue("dresden-maengel");
    let channel = broker.create_channel().await.unwrap();
    let mut refusing = FieldTable::default();
    refusing.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
    refusing.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::durable(),
            refusing,
        )
        .await
        .unwrap();

    let id = hub.submit_accepted(
            &json!({"service": "99999001000000", "region": "146120000000",
                    "data": {"kategorie": "muell", "beschreibung": "Illegale Müllablagerung am Elbufer", "ort": {"strasse": "Terrassenufer"}}}),
            None,
        ).await;
    let dead = hub
        .wait_for_status(&id, "dead_lettered", Duration::from_secs(30))
        .await;
    assert_eq!(dead["delivery"]["attempts"], 3);
    let message_id = dead["delivery"]["message_id"].as_str().unwrap().to_owned();

    let (ok, listed) = deadletters(&hub, &["list"]);
    assert!(ok, "{listed}");
    assert!(
        listed.contains(&id) && listed.contains("attempts 3"),
        "{listed}"
    );
    assert!(
        listed.contains("given up after 3 attempts") && listed.contains("negatively acknowledged"),
        "{listed}"
    );
    let (ok, shown) = deadletters(&hub, &["show", &id]);
    assert!(ok && shown.contains(&message_id), "{shown}");
    // The admin API is for operators only.
    let client = reqwest::Client::new();
    for token in [hub.token.as_str(), "wrong"] {
        let answer = client
            .get(hub.url("/api/v1/admin/deadletters"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
    let answer = client
        .get(hub.url("/api/v1/admin/deadletters"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    // The vendor fixes the queue; the operator replays.
    delete_queue(&broker, &queue).await;
    let (ok, replayed) = deadletters(&hub, &["replay", &id]);
    assert!(ok, "{replayed}");
    let delivered = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    assert_eq!(delivered["delivery"]["message_id"], message_id.as_str());
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message_id(), message_id);
    let (ok, again) = deadletters(&hub, &["replay", &id]);
    assert!(!ok && again.contains("404"), "{again}");
    delete_queue(&broker, &queue).await;
}
