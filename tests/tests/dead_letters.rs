//! Retries and dead letters against the real broker: a queue that refuses every publish
//! (a vendor's length limit with reject-publish) makes each attempt a nack; after the
//! procedure's last attempt the message is dead-lettered with its reason, listed by
//! `kopplung deadletters`, and a replay delivers it with the same message id — one by
//! one, or every dead letter of a procedure at once.

use std::collections::BTreeSet;
use std::time::Duration;

use kopplung_tests::shared::{admin_cli, hub_refusing, maengel};
use kopplung_tests::{ADMIN_TOKEN, TestHub, delete_queue, drain, kopplung_bin};
use serde_json::Value;

/// `kopplung deadletters ARGS` against the hub, with the operator's token.
fn deadletters(hub: &TestHub, args: &[&str]) -> (bool, String) {
    admin_cli(hub, "deadletters", args)
}

/// `kopplung deadletters ARGS` with its standard output and error apart.
fn deadletters_split(hub: &TestHub, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(kopplung_bin())
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
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A hub whose Dresden queue refuses every publish: each application is dead-lettered
/// after `attempts` quick attempts.
async fn dead_lettering(attempts: u32) -> (lapin::Connection, TestHub, String) {
    hub_refusing(
        "dresden-maengel",
        &format!("max_attempts = {attempts}\nbase_delay_ms = 10\nmax_delay_ms = 50"),
    )
    .await
}

#[tokio::test]
async fn the_last_attempt_dead_letters_and_a_replay_keeps_the_message_id() {
    let (broker, hub, queue) = dead_lettering(3).await;

    let body = maengel("Illegale Müllablagerung am Elbufer");
    let (id, dead) = hub
        .submit_until(&body, "dead_lettered", Duration::from_secs(30))
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

#[tokio::test]
async fn a_loop_reads_only_ids_and_a_bulk_replay_takes_every_dead_letter_of_a_procedure() {
    let (broker, hub, queue) = dead_lettering(2).await;
    let mut ids = BTreeSet::new();
    for text in [
        "Illegale Müllablagerung am Elbufer",
        "Schlagloch vor dem Haus",
        "Laterne defekt",
    ] {
        ids.insert(hub.submit_accepted(&maengel(text), None).await);
    }
    let mut message_ids = BTreeSet::new();
    for id in &ids {
        let dead = hub
            .wait_for_status(id, "dead_lettered", Duration::from_secs(30))
            .await;
        message_ids.insert(dead["delivery"]["message_id"].as_str().unwrap().to_owned());
    }

    // Human lines on stdout, the count on stderr: no line of stdout is a summary.
    let (ok, out, err) = deadletters_split(&hub, &["list"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().all(|line| line.contains("attempts 2")), "{out}");
    assert!(err.contains("3 dead letter(s)"), "{err}");
    // Ids only: exactly the ids, one a line.
    let (ok, out, err) = deadletters_split(&hub, &["list", "--ids"]);
    assert!(ok, "{err}");
    let listed: BTreeSet<String> = out.lines().map(str::to_owned).collect();
    assert_eq!(listed, ids, "{out}");
    // JSON and nothing else.
    let (ok, out, err) =
        deadletters_split(&hub, &["list", "--json", "--procedure", "dresden-maengel"]);
    assert!(ok, "{err}");
    let parsed: Value = serde_json::from_str(&out).expect("list --json prints JSON only");
    assert_eq!(parsed["dead_letters"].as_array().unwrap().len(), 3, "{out}");
    let (ok, out, _) =
        deadletters_split(&hub, &["list", "--ids", "--procedure", "leipzig-maengel"]);
    assert!(ok && out.is_empty(), "{out}");
    // `--all` needs its procedure; a procedure not configured is refused.
    let (ok, _, err) = deadletters_split(&hub, &["replay", "--all"]);
    assert!(!ok, "{err}");
    let (ok, _, err) = deadletters_split(&hub, &["replay", "--procedure", "nowhere", "--all"]);
    assert!(!ok && err.contains("404"), "{err}");

    // The vendor fixes the queue; the operator replays the whole procedure.
    delete_queue(&broker, &queue).await;
    let (ok, out, err) =
        deadletters_split(&hub, &["replay", "--procedure", "dresden-maengel", "--all"]);
    assert!(ok, "{err}");
    let replayed: BTreeSet<String> = out.lines().map(str::to_owned).collect();
    assert_eq!(replayed, ids, "{out}");
    kopplung_tests::assert_has(&err, "replayed 3 dead letter(s) of dresden-maengel");
    for id in &ids {
        hub.wait_for_status(id, "delivered", Duration::from_secs(30))
            .await;
    }
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    let sent: BTreeSet<String> = received.iter().map(|m| m.message_id()).collect();
    assert_eq!(sent, message_ids);
    // Audited like a single replay, naming the bulk.
    for id in &ids {
        let view = hub
            .get_json(&format!("/api/v1/admin/applications/{id}"), ADMIN_TOKEN)
            .await;
        let text = view.to_string();
        assert!(
            text.contains(
                "dead letter replayed by operator, with every dead letter of dresden-maengel"
            ),
            "{text}"
        );
    }
    // Nothing left: an empty list, no failure.
    let (ok, out, err) =
        deadletters_split(&hub, &["replay", "--procedure", "dresden-maengel", "--all"]);
    assert!(
        ok && out.is_empty() && err.contains("replayed 0"),
        "{out}{err}"
    );
    delete_queue(&broker, &queue).await;
}
