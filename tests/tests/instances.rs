//! Several hub instances on one PostgreSQL database share the outbox: 2,000 applications
//! submitted to two instances, one of them SIGKILLed mid-run. The receiving procedure (a
//! real HTTP server on loopback) sees every application's message id, none missing; any
//! duplicate carries the same id (at-least-once) and is counted; a client whose answer
//! was lost in the crash retries at the other instance with the same Idempotency-Key and
//! gets the original application.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kopplung_tests::shared::counting_receiver;
use kopplung_tests::{HubSetup, PostgresDatabase, TestHub, eventually};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

const APPLICATIONS: usize = 2_000;
const KILL_AFTER: usize = 700;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_postgresql_deliver_everything_once_when_one_is_killed() {
    let database = PostgresDatabase::create();
    // The receiver counts arrivals per message id.
    let (url, seen) = counting_receiver(Duration::ZERO).await;

    let setup = HubSetup {
        extra_config: format!("[store]\npostgres_url = \"{}\"\n", database.url()),
        lease_secs: 10,
        ..HubSetup::over_http("dresden-maengel", &url, 5000)
    };
    let mut first = TestHub::start(setup).await;
    let second = first
        .start_peer(&HubSetup {
            extra_config: format!("[store]\npostgres_url = \"{}\"\n", database.url()),
            lease_secs: 10,
            ..HubSetup::default()
        })
        .await;
    let urls = [first.url(""), second.url("")];
    let token = first.token.clone();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let accepted: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let retried_elsewhere = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let first_alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let slots = Arc::new(Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for n in 0..APPLICATIONS {
        if n == KILL_AFTER {
            // Let the submissions in flight reach the first instance, then kill it.
            tokio::time::sleep(Duration::from_millis(20)).await;
            first.kill();
            first_alive.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (client, urls, token, accepted, retried, alive) = (
            client.clone(),
            urls.clone(),
            token.clone(),
            accepted.clone(),
            retried_elsewhere.clone(),
            first_alive.clone(),
        );
        tasks.spawn(async move {
            let key = format!("anwendung-{n}");
            let body = json!({"service": "99999001000000", "region": "146120000000",
                "data": {"kategorie": "muell", "beschreibung": format!("Sperrmüll am Gehweg, Meldung {n}"), "ort": {"strasse": "Prager Straße"}}});
            // Even numbers go to the first instance while it lives.
            let mut target = if n % 2 == 0 && alive.load(std::sync::atomic::Ordering::SeqCst) { 0 } else { 1 };
            for _ in 0..3 {
                let sent = client
                    .post(format!("{}/api/v1/applications", urls[target]))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", &key)
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 202 => {
                        let answer: Value = response.json().await.unwrap();
                        let id = answer["id"].as_str().unwrap().to_owned();
                        assert!(accepted.lock().await.insert(id), "a second application for {key}");
                        drop(permit);
                        return;
                    }
                    Ok(response) => panic!("{key}: {} {}", response.status(), response.text().await.unwrap_or_default()),
                    // The answer was lost (the instance died): ask the other one.
                    Err(_) => {
                        retried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        target = 1;
                    }
                }
            }
            panic!("{key}: no instance accepted it");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let submitted_in = started.elapsed();
    assert_eq!(accepted.lock().await.len(), APPLICATIONS);

    // Everything arrives, the dead instance's leased work after its lease ran out.
    eventually(
        Duration::from_secs(180),
        Duration::from_millis(200),
        async || {
            let unique = seen.lock().await.len();
            if unique >= APPLICATIONS {
                Ok(())
            } else {
                Err(unique)
            }
        },
        |unique| {
            format!(
                "only {unique} of {APPLICATIONS} message ids arrived:\n{}",
                second.log()
            )
        },
    )
    .await;
    // A moment more for stragglers, then count.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = seen.lock().await.clone();
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    assert_eq!(seen.len(), APPLICATIONS, "unknown message ids arrived");
    let done = kopplung_tests::psql_in(
        &database.name,
        "SELECT 'done=' || COUNT(*) FROM deliveries WHERE step = 'done'",
    );
    kopplung_tests::faults::summary(
        "faults-instances-postgres",
        &[
            ("applications", APPLICATIONS.to_string()),
            ("kills", "1".into()),
            (
                "submitted_in",
                format!("{:.1}s", submitted_in.as_secs_f64()),
            ),
            (
                "retried_at_other_instance",
                retried_elsewhere
                    .load(std::sync::atomic::Ordering::SeqCst)
                    .to_string(),
            ),
            ("unique_message_ids", seen.len().to_string()),
            (
                "lost",
                (APPLICATIONS - seen.len().min(APPLICATIONS)).to_string(),
            ),
            ("redelivered_same_id", duplicates.to_string()),
        ],
    );
    println!(
        "instances: {APPLICATIONS} applications, submitted in {submitted_in:?}, first instance SIGKILLed after {KILL_AFTER}, {} submissions retried at the other instance, unique message ids at the receiver {}, duplicates {duplicates}, missing 0; store: {}",
        retried_elsewhere.load(std::sync::atomic::Ordering::SeqCst),
        seen.len(),
        done.lines()
            .find(|l| l.contains("done="))
            .unwrap_or_default()
            .trim()
    );
    // Only what the killed instance had in flight can arrive twice.
    assert!(duplicates <= 64, "{duplicates} duplicates");
    assert!(done.contains(&format!("done={APPLICATIONS}")), "{done}");
}
