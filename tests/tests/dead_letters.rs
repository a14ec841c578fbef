//! Retries and dead letters against the real broker: a queue that refuses every publish
//! (a vendor's length limit with reject-publish) makes each attempt a nack; after the
//! procedure's last attempt the message is dead-lettered with its reason, listed by
//! `kopplung deadletters`, and a replay delivers it with the same message id.

use std::time::Duration;

use kopplung_tests::shared::{hub_refusing, kopplung};
use kopplung_tests::{ADMIN_TOKEN, TestHub, delete_queue, drain};
use serde_json::json;

fn deadletters(hub: &TestHub, args: &[&str]) -> (bool, String) {
    let token_file = hub.data_dir().join("admin-token");
    let mut all: Vec<std::ffi::OsString> = vec!["deadletters".into()];
    all.extend(args.iter().map(Into::into));
    all.extend([
        "--hub".into(),
        hub.url("").into(),
        "--token-file".into(),
        token_file.into_os_string(),
    ]);
    kopplung(all)
}

#[tokio::test]
async fn the_last_attempt_dead_letters_and_a_replay_keeps_the_message_id() {
    let (broker, hub, queue) = hub_refusing(
        "dresden-maengel",
        "max_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 50",
    )
    .await;

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
    for (token, expected) in [
        (hub.token.as_str(), 401),
        ("wrong", 401),
        (ADMIN_TOKEN, 200),
    ] {
        let answer = client
            .get(hub.url("/api/v1/admin/deadletters"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), expected, "{token}");
    }

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
