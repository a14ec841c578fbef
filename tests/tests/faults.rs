//! Faults (issue #10): the hub SIGKILLed several times at random points of a run of
//! 2,000 applications; an HTTP procedure that hangs, resets connections, answers slowly,
//! with garbage or with 503; the data directory's disk full. After each: every
//! application that got a 202 reaches the procedure (or is a dead letter with its
//! reason), a duplicate at the receiver always carries the same message id, and a client
//! that lost its answer and retried with the same Idempotency-Key got the original
//! application. Each test prints a `SUMMARY <class>: …` line.
//!
//! RabbitMQ itself stopped and started is `broker_restart.rs` (alone in its binary).

use kopplung_tests::keys::DRESDEN;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use kopplung_tests::faults::{AmqpReceiver, Behaviour, FaultyProcedure, Rng, SmallDisk, summary};
use kopplung_tests::{ADMIN_TOKEN, HubSetup, PostgresDatabase, TestHub, deliver_over};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

fn report(n: usize) -> Value {
    json!({"service": "99999001000000", "region": DRESDEN,
           "data": {"kategorie": "strassenschaden",
                    "beschreibung": format!("Schlagloch vor Hausnummer {n}, etwa 20 cm tief"),
                    "ort": {"strasse": "Königsbrücker Straße", "hausnummer": format!("{}", n % 200 + 1)}}})
}

async fn dead_letters(hub: &TestHub) -> Vec<Value> {
    let answer: Value = reqwest::Client::new()
        .get(hub.url("/api/v1/admin/deadletters"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("dead letters")
        .json()
        .await
        .expect("json");
    answer["dead_letters"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// What one client saw for one application.
struct Outcome {
    id: String,
    /// Requests that got no answer (connection refused or cut by the kill).
    lost_answers: usize,
    /// The 202 carried `Idempotent-Replayed: true`: an earlier request had been stored,
    /// its answer lost.
    replayed: bool,
    /// Sent once more after the 202, with the same key (and got the same id).
    resent: bool,
}

/// Submits with `key` until a 202 comes back, as a client whose answer may be lost does:
/// the same body with the same Idempotency-Key.
async fn submit_until_accepted(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lost_answers = 0;
    loop {
        assert!(Instant::now() < deadline, "{key}: never accepted");
        let sent = client
            .post(url)
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == 202 => {
                let replayed = response.headers().contains_key("idempotent-replayed");
                match response.json::<Value>().await {
                    Ok(answer) => {
                        return Outcome {
                            id: answer["id"].as_str().expect("an id").to_owned(),
                            lost_answers,
                            replayed,
                            resent: false,
                        };
                    }
                    // The body was cut off by the kill: the answer is lost after all.
                    Err(_) => lost_answers += 1,
                }
            }
            // The store is not writable right now (a hub starting up): try again.
            Ok(response) if response.status() == 503 => {}
            Ok(response) => panic!(
                "{key}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ),
            Err(_) => lost_answers += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const APPLICATIONS: usize = 2_000;
const KILLS: usize = 5;

/// The store under the hub: its own SQLite file, or a PostgreSQL database.
enum Store {
    Sqlite,
    Postgres(PostgresDatabase),
}

impl Store {
    fn name(&self) -> &'static str {
        match self {
            Store::Sqlite => "sqlite",
            Store::Postgres(_) => "postgresql",
        }
    }

    fn query(&self, hub: &TestHub, sql: &str) -> String {
        match self {
            Store::Sqlite => hub.sql(&sql.replace("string_agg(", "group_concat(")),
            Store::Postgres(database) => kopplung_tests::psql_in(&database.name, sql)
                .trim()
                .to_owned(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_points_of_2000_applications_loses_nothing() {
    kill_run(Store::Sqlite).await;
}

/// The same on PostgreSQL, with the default lease (120 s): the restarted instance (the
/// same data directory, so the same instance id) takes its earlier claims back at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_points_on_postgresql_loses_nothing() {
    kill_run(Store::Postgres(PostgresDatabase::create())).await;
}

async fn kill_run(store: Store) {
    let (mut rng, seed) = Rng::from_env();
    let setup = match &store {
        Store::Sqlite => HubSetup::default(),
        Store::Postgres(database) => HubSetup {
            extra_config: format!("[store]\npostgres_url = \"{}\"\n", database.url()),
            ..HubSetup::default()
        },
    };
    let mut hub = TestHub::start(setup).await;
    let receiver = AmqpReceiver::start(&hub.queue("dresden-maengel")).await;
    let url = hub.url("/api/v1/applications");
    let token = hub.token.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");

    let outcomes: Arc<Mutex<BTreeMap<String, Outcome>>> = Arc::default();
    let submitted = Arc::new(AtomicUsize::new(0));
    let slots = Arc::new(Semaphore::new(16));
    let clients = {
        let (outcomes, submitted) = (outcomes.clone(), submitted.clone());
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..APPLICATIONS {
                let permit = slots.clone().acquire_owned().await.expect("permit");
                let (client, url, token, outcomes, submitted) = (
                    client.clone(),
                    url.clone(),
                    token.clone(),
                    outcomes.clone(),
                    submitted.clone(),
                );
                tasks.spawn(async move {
                    let key = format!("kill-run-{n}");
                    let mut outcome =
                        submit_until_accepted(&client, &url, &token, &key, &report(n)).await;
                    if n % 10 == 0 {
                        // A client that crashed itself after sending sends again: it
                        // must get the same application, marked as a replay.
                        let again =
                            submit_until_accepted(&client, &url, &token, &key, &report(n)).await;
                        assert_eq!(again.id, outcome.id, "{key}: a second application");
                        assert!(again.replayed, "{key}: the resend was not a replay");
                        outcome.resent = true;
                        outcome.lost_answers += again.lost_answers;
                    }
                    outcomes.lock().await.insert(key, outcome);
                    submitted.fetch_add(1, Ordering::SeqCst);
                    drop(permit);
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("client task");
            }
        })
    };

    // The kills: at random moments while clients submit and the outbox renders, seals
    // and publishes; each followed by a restart on the same data directory.
    let started = Instant::now();
    let mut kill_points = Vec::new();
    for kill in 1..=KILLS {
        tokio::time::sleep(Duration::from_millis(rng.range(300, 2_500))).await;
        hub.kill();
        // Where the work stood when the process died (the store as the kill left it).
        let steps = store.query(
            &hub,
            "SELECT string_agg(step || '=' || n, ',') FROM (SELECT step, COUNT(*) AS n FROM deliveries GROUP BY step) AS s",
        );
        let at = format!(
            "kill{kill}@{:.1}s[answered={},{steps}]",
            started.elapsed().as_secs_f64(),
            submitted.load(Ordering::SeqCst)
        );
        kill_points.push(at);
        hub.spawn().await;
    }
    clients.await.expect("clients");
    let submit_time = started.elapsed();

    let outcomes = std::mem::take(&mut *outcomes.lock().await);
    assert_eq!(outcomes.len(), APPLICATIONS);
    let accepted: BTreeSet<String> = outcomes.values().map(|o| o.id.clone()).collect();
    // One application per Idempotency-Key: retries never made a second one.
    assert_eq!(
        accepted.len(),
        APPLICATIONS,
        "two keys were answered with the same application"
    );
    let stored: usize = store
        .query(&hub, "SELECT COUNT(*) FROM applications")
        .parse()
        .expect("count");
    assert_eq!(
        stored, APPLICATIONS,
        "the store holds another number of applications than keys were accepted"
    );

    // Everything arrives at the de-duplicating receiver (or is a dead letter).
    let deadline = Instant::now() + Duration::from_secs(180);
    let (tally, dead) = loop {
        let tally = receiver.tally().await;
        let dead = dead_letters(&hub).await;
        let arrived = accepted
            .iter()
            .filter(|id| tally.by_application.contains_key(*id))
            .count();
        if arrived + dead.len() >= APPLICATIONS {
            break (tally, dead);
        }
        assert!(
            Instant::now() < deadline,
            "only {arrived} of {APPLICATIONS} arrived, {} dead letters:\n{}",
            dead.len(),
            hub.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A moment for redeliveries still on their way, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tally = {
        let later = receiver.tally().await;
        if later.by_message.len() >= tally.by_message.len() {
            later
        } else {
            tally
        }
    };
    for letter in &dead {
        assert!(
            letter["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "a dead letter without reason: {letter}"
        );
    }
    let dead_ids: BTreeSet<String> = dead
        .iter()
        .filter_map(|l| l["application_id"].as_str().map(str::to_owned))
        .collect();
    // The message ids the hub fixed at intake, to compare with what arrived.
    let message_ids: BTreeMap<String, String> = store
        .query(
            &hub,
            "SELECT application_id || '|' || message_id FROM deliveries",
        )
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(a, m)| (a.to_owned(), m.to_owned()))
        .collect();
    let mut lost = Vec::new();
    for id in &accepted {
        match tally.by_application.get(id) {
            Some(ids) => assert_eq!(
                ids.iter().collect::<Vec<_>>(),
                vec![&message_ids[id]],
                "application {id} arrived under another message id"
            ),
            None if dead_ids.contains(id) => {}
            None => lost.push(id.clone()),
        }
    }
    let unknown = tally
        .by_application
        .keys()
        .filter(|id| !accepted.contains(*id))
        .count();
    let lost_answers: usize = outcomes.values().map(|o| o.lost_answers).sum();
    let idempotent_retries = outcomes.values().filter(|o| o.replayed).count();
    summary(
        "faults-sigkill",
        &[
            ("store", store.name().into()),
            ("transport", "amqp".into()),
            ("applications", APPLICATIONS.to_string()),
            ("kills", KILLS.to_string()),
            ("seed", seed.to_string()),
            ("submitted_in", format!("{:.1}s", submit_time.as_secs_f64())),
            ("accepted", accepted.len().to_string()),
            ("stored", stored.to_string()),
            (
                "delivered",
                (accepted.len() - lost.len() - dead_ids.len()).to_string(),
            ),
            ("dead_letters", dead_ids.len().to_string()),
            ("lost", lost.len().to_string()),
            ("unknown_at_receiver", unknown.to_string()),
            (
                "duplicates_at_receiver",
                tally.duplicates_after_dedup().to_string(),
            ),
            ("redelivered_same_id", tally.redelivered().to_string()),
            ("answers_lost", lost_answers.to_string()),
            ("replayed_after_lost_answer", idempotent_retries.to_string()),
            (
                "resent_same_key_same_id",
                outcomes.values().filter(|o| o.resent).count().to_string(),
            ),
            ("second_applications", "0".into()),
        ],
    );
    summary(
        &format!("faults-sigkill-points-{}", store.name()),
        &[("kills", kill_points.join(" "))],
    );
    assert!(lost.is_empty(), "accepted but never delivered: {lost:?}");
    assert_eq!(unknown, 0, "applications nobody accepted arrived");
    assert_eq!(tally.duplicates_after_dedup(), 0);
    // Killed in the middle of state changes, the audit trail still verifies: no chain
    // forked or was left with a gap (on PostgreSQL, several chains per instance).
    let verify = kopplung_tests::run_ok(
        std::process::Command::new(kopplung_tests::kopplung_bin())
            .args(["audit", "verify", "--data-dir"])
            .arg(hub.data_dir())
            .arg("--config")
            .arg(hub.config_path()),
        "kopplung audit verify",
    );
    println!(
        "faults-sigkill-audit-{}: {}",
        store.name(),
        String::from_utf8_lossy(&verify.stdout)
            .lines()
            .next()
            .unwrap_or("")
    );
    receiver.finish().await;
}

const HTTP_APPLICATIONS: usize = 40;
/// The first applications meet a procedure that never takes them: dead letters.
const DOOMED: usize = 2;
const HTTP_TIMEOUT_MS: u64 = 800;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_http_procedure_gets_everything_or_a_dead_letter_with_reason() {
    let faults = [
        Behaviour::Hang,
        Behaviour::Reset,
        Behaviour::Garbage,
        // Beyond the hub's timeout: the procedure takes it, the hub sends it again.
        Behaviour::Slow(Duration::from_millis(HTTP_TIMEOUT_MS + 400)),
        Behaviour::ServerError,
    ];
    let procedure = FaultyProcedure::start(Arc::new(move |_message, attempt, order| {
        if order < DOOMED {
            // Never taken: garbage and resets until the hub gives up.
            return if attempt % 2 == 0 {
                Behaviour::Reset
            } else {
                Behaviour::Garbage
            };
        }
        match attempt {
            1 => faults[order % faults.len()],
            2 => faults[(order + 2) % faults.len()],
            // Slow, but within the timeout.
            _ => Behaviour::Slow(Duration::from_millis(HTTP_TIMEOUT_MS / 4)),
        }
    }))
    .await;
    let url = procedure.url.clone();
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(Arc::new(move |routing| {
            deliver_over(
                &routing,
                "dresden-maengel",
                &format!(
                    "transport = \"http\"\nallow_plain_http = true\nurl = \"{url}\"\nconnect_timeout_ms = 500\ntimeout_ms = {HTTP_TIMEOUT_MS}\n\n\
                     [procedure.retry]\nmax_attempts = 4\nbase_delay_ms = 50\nmax_delay_ms = 300"
                ),
            )
        })),
        ..HubSetup::default()
    })
    .await;

    let mut ids = Vec::new();
    for n in 0..DOOMED {
        ids.push(hub.submit_accepted(&report(n), None).await);
    }
    // The doomed ones reach the procedure first, so it can tell them apart by order.
    let deadline = Instant::now() + Duration::from_secs(30);
    while procedure.seen().await < DOOMED {
        assert!(Instant::now() < deadline, "nothing reached the procedure");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in DOOMED..HTTP_APPLICATIONS {
        ids.push(hub.submit_accepted(&report(n), None).await);
    }

    let mut delivered = 0;
    let mut dead = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let expected = if n < DOOMED {
            "dead_lettered"
        } else {
            "delivered"
        };
        let status = hub
            .wait_for_status(id, expected, Duration::from_secs(120))
            .await;
        if n < DOOMED {
            dead.push(status);
        } else {
            delivered += 1;
        }
    }
    let letters = dead_letters(&hub).await;
    assert_eq!(letters.len(), DOOMED, "{letters:#?}");
    for letter in &letters {
        let reason = letter["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("request to") || reason.contains("answered"),
            "a dead letter's reason names what went wrong: {letter}"
        );
        assert_eq!(letter["attempts"], 4, "{letter}");
    }
    let tally = procedure.tally().await;
    let mut lost = 0;
    for (n, id) in ids.iter().enumerate().skip(DOOMED) {
        let status = hub.status(id).await;
        let message_id = status["delivery"]["message_id"]
            .as_str()
            .unwrap_or_default();
        match tally.by_application.get(id) {
            Some(seen) => assert_eq!(
                seen.iter().collect::<Vec<_>>(),
                vec![message_id],
                "application {n} arrived under another message id"
            ),
            None => lost += 1,
        }
    }
    for id in &ids[..DOOMED] {
        assert!(
            !tally.by_application.contains_key(id),
            "a dead letter was taken after all"
        );
    }
    let behaviours = procedure.behaviours().await;
    let count = |name: &str| behaviours.get(name).copied().unwrap_or(0).to_string();
    summary(
        "faults-http-procedure",
        &[
            ("applications", HTTP_APPLICATIONS.to_string()),
            ("hang", count("hang")),
            ("reset", count("reset")),
            ("slow", count("slow")),
            ("garbage", count("garbage")),
            ("server_error", count("server_error")),
            ("delivered", delivered.to_string()),
            ("dead_letters", letters.len().to_string()),
            ("lost", lost.to_string()),
            (
                "duplicates_at_receiver",
                tally.duplicates_after_dedup().to_string(),
            ),
            ("redelivered_same_id", tally.redelivered().to_string()),
        ],
    );
    assert_eq!(
        lost, 0,
        "accepted, delivered by the hub's account, not taken"
    );
    assert_eq!(tally.duplicates_after_dedup(), 0);
    for name in ["hang", "reset", "slow", "garbage", "server_error"] {
        assert_ne!(count(name), "0", "the procedure never played {name}");
    }
}

/// A PNG-signed attachment of `size` bytes, to make each application weigh something.
fn photo(size: usize) -> Value {
    let mut content = b"\x89PNG\r\n\x1a\n".to_vec();
    content.resize(size, 0x42);
    json!([{"filename": "schlagloch.png", "media_type": "image/png",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(content)}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_intake_with_503_and_keeps_nothing_half_stored() {
    // An outbox step whose result could not be recorded is claimed again when its lease
    // runs out: a short one, so the test need not wait the default two minutes.
    let mut hub = TestHub::start(HubSetup {
        lease_secs: 10,
        ..HubSetup::default()
    })
    .await;
    let receiver = AmqpReceiver::start(&hub.queue("dresden-maengel")).await;
    // The data directory moves onto a small tmpfs of its own.
    hub.terminate(Duration::from_secs(20));
    let disk = SmallDisk::mount_over(&hub.data_dir(), "16m");
    hub.spawn().await;

    let with_photo = |n: usize| {
        let mut body = report(n);
        body["attachments"] = photo(256 * 1024);
        body
    };
    let mut accepted = Vec::new();
    for n in 0..3 {
        accepted.push(hub.submit_accepted(&with_photo(n), None).await);
    }

    let filler = disk.fill();
    // SQLite may still find room in pages it already has: go on until the disk says no.
    let mut refused = None;
    let mut n = 3;
    while refused.is_none() && n < 60 {
        let response = hub.submit(&with_photo(n), Some(&format!("voll-{n}"))).await;
        match response.status().as_u16() {
            202 => {
                let answer: Value = response.json().await.expect("json");
                accepted.push(answer["id"].as_str().expect("id").to_owned());
            }
            503 => {
                let content_type =
                    kopplung_tests::shared::header_text(response.headers(), "content-type");
                let problem: Value = response.json().await.expect("problem json");
                assert_eq!(content_type, "application/problem+json");
                assert_eq!(problem["type"], "urn:kopplung:problem:unavailable");
                refused = Some(n);
            }
            other => panic!(
                "with a full disk: {other} {}",
                response.text().await.unwrap_or_default()
            ),
        }
        n += 1;
    }
    let refused_at = refused.expect("the full disk never refused an application");
    // Nothing half-stored: exactly the accepted applications, each with its attachment.
    let counts: BTreeMap<String, i64> = hub.store_counts().into_iter().collect();
    assert_eq!(counts["applications"], accepted.len() as i64, "{counts:?}");
    assert_eq!(counts["attachments"], accepted.len() as i64, "{counts:?}");
    assert_eq!(counts["deliveries"], accepted.len() as i64, "{counts:?}");
    // The refused key was not kept either: after the space is back it is a new one.
    let health = reqwest::get(hub.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200, "the hub stays up on a full disk");

    std::fs::remove_file(&filler).expect("free the space");
    let again = hub
        .submit(&with_photo(refused_at), Some(&format!("voll-{refused_at}")))
        .await;
    assert_eq!(again.status(), 202, "accepting again once there is space");
    assert!(
        !again.headers().contains_key("idempotent-replayed"),
        "the refused request had left its key behind"
    );
    let answer: Value = again.json().await.expect("json");
    accepted.push(answer["id"].as_str().expect("id").to_owned());
    for id in &accepted {
        hub.wait_for_status(id, "delivered", Duration::from_secs(90))
            .await;
    }
    // The broker's consumer may see the last ones a moment after the hub's commit.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (tally, lost) = loop {
        let tally = receiver.tally().await;
        let lost = accepted
            .iter()
            .filter(|id| !tally.by_application.contains_key(*id))
            .count();
        if lost == 0 || Instant::now() > deadline {
            break (tally, lost);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    summary(
        "faults-disk-full",
        &[
            ("disk", "tmpfs-16MiB".into()),
            ("accepted", accepted.len().to_string()),
            ("refused_503_at_submission", refused_at.to_string()),
            ("half_stored", "0".into()),
            ("delivered_after_space_freed", accepted.len().to_string()),
            ("lost", lost.to_string()),
            (
                "duplicates_at_receiver",
                tally.duplicates_after_dedup().to_string(),
            ),
        ],
    );
    assert_eq!(lost, 0);
    hub.kill();
    drop(disk);
    receiver.finish().await;
}
