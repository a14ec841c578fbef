//! The hubs under load: concurrent HTTP clients and a consumer timing each arrival.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use kopplung_tests::{TestHub, delete_queue};
use serde_json::json;
use tokio::sync::Mutex;

use crate::broker::consume;
use crate::system::{broker_pid, cpu_seconds, thread_cpu_seconds};

/// One load phase.
#[derive(Clone)]
pub struct Plan {
    pub clients: usize,
    /// Clients submit for this long...
    pub duration: Duration,
    /// ...at most this many per second in all (evenly paced), if given...
    pub rate: Option<f64>,
    /// ...and stop after this many submissions in all (a burst), if given.
    pub count: Option<usize>,
}

impl Plan {
    /// `clients` submitting as fast as they are answered for `duration`.
    pub fn saturating(clients: usize, duration: Duration) -> Self {
        Self {
            clients,
            duration,
            rate: None,
            count: None,
        }
    }
}

pub struct Load {
    pub applications: usize,
    /// Delivered/s: applications from the first submission to the last arrival.
    pub throughput: f64,
    /// Accepted/s while the clients submitted.
    pub accepted_rate: f64,
    pub intake_p50: f64,
    pub intake_p99: f64,
    pub delivered_p99: f64,
    /// The hubs' CPU per application (all instances together).
    pub cpu_per_application: f64,
    /// The hubs' CPU per application by thread name (e.g. the store's writer).
    pub hub_threads: Vec<(String, f64)>,
    /// RabbitMQ's CPU per application (publish, route, persist, deliver, ack).
    pub broker_cpu_per_application: f64,
    /// This process's CPU per application (HTTP clients and the procedure's consumer).
    pub generator_cpu_per_application: f64,
    /// The most applications accepted and not yet arrived at any one time.
    pub max_in_flight: usize,
}

/// The clients of `plan` submit Mängelanzeigen, spread over `hubs` in turn (instances of
/// one hub on a shared store); a consumer on the procedure's queue notes when each
/// arrives. `release` runs after the last submission, before waiting for the arrivals
/// (e.g. to open the way to the broker after a burst).
pub async fn load(
    hubs: &[&TestHub],
    plan: Plan,
    release: impl Future<Output = ()>,
) -> anyhow::Result<Load> {
    let first = hubs.first().context("a hub")?;
    let pids = hubs
        .iter()
        .map(|hub| hub.pid().context("the hub runs"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cpu_before = hubs_cpu(&pids)?;
    let threads_before = hubs_threads(&pids)?;
    let broker = broker_pid()?;
    let broker_before = cpu_seconds(broker)?;
    let generator_before = cpu_seconds(std::process::id())?;
    let submitted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    // The consumer; every instance publishes to the same queue.
    let queue = first.queue("dresden-maengel");
    let (connection, mut consumer) = consume(&queue, "bench").await?;
    let consuming = {
        let arrived = arrived.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                if let Some(id) = delivery.properties.correlation_id() {
                    arrived.lock().await.insert(id.to_string(), Instant::now());
                }
            }
        })
    };
    let clients = plan.clients;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let started = Instant::now();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let sent_in_all = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let hub = hubs[client % hubs.len()];
        let (http, url, token) = (
            http.clone(),
            hub.url("/api/v1/applications"),
            hub.token.clone(),
        );
        let (submitted, arrived, latencies, max_in_flight, sent_in_all) = (
            submitted.clone(),
            arrived.clone(),
            latencies.clone(),
            max_in_flight.clone(),
            sent_in_all.clone(),
        );
        let (duration, rate, count) = (plan.duration, plan.rate, plan.count);
        tasks.spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < duration {
                if count.is_some_and(|count| sent_in_all.fetch_add(1, Ordering::Relaxed) >= count)
                {
                    break;
                }
                if let Some(rate) = rate {
                    // Paced: client `client` sends its share at evenly spaced times.
                    let due = Duration::from_secs_f64(
                        (n as f64 * clients as f64 + client as f64) / rate,
                    );
                    if due > started.elapsed() {
                        tokio::time::sleep(due - started.elapsed()).await;
                    }
                }
                n += 1;
                let body = json!({"service": "99999001000000", "region": "146120000000",
                    "data": {"kategorie": "strassenschaden",
                             "beschreibung": format!("Schlagloch Nummer {client}-{n}, etwa 40 cm breit, rechte Fahrspur."),
                             "ort": {"strasse": "Königsbrücker Straße", "hausnummer": "12"},
                             "kontakt": {"name": "Jürgen Weiß", "email": "j.weiss@example.org"}}});
                let sent = Instant::now();
                let response = http.post(&url).bearer_auth(&token).json(&body).send().await?;
                let latency = sent.elapsed().as_secs_f64();
                anyhow::ensure!(response.status() == 202, "intake answered {}", response.status());
                let id = response.json::<serde_json::Value>().await?["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                latencies.lock().await.push(latency);
                let in_flight = {
                    let mut submitted = submitted.lock().await;
                    submitted.insert(id, sent);
                    submitted.len().saturating_sub(arrived.lock().await.len())
                };
                max_in_flight.fetch_max(in_flight, Ordering::Relaxed);
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let submitting = started.elapsed().as_secs_f64();
    release.await;
    let submitted = submitted.lock().await.clone();
    // Everything accepted must arrive; a backlog may take long, but not stand still.
    let mut progress = (0, Instant::now());
    loop {
        let count = arrived.lock().await.len();
        if count >= submitted.len() {
            break;
        }
        if count > progress.0 {
            progress = (count, Instant::now());
        }
        anyhow::ensure!(
            progress.1.elapsed() < Duration::from_secs(30),
            "only {count} of {} arrived, none in the last 30 s",
            submitted.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let finished = arrived
        .lock()
        .await
        .values()
        .copied()
        .max()
        .unwrap_or_else(Instant::now);
    let cpu = hubs_cpu(&pids)? - cpu_before;
    let mut hub_threads = hubs_threads(&pids)?;
    let applications = submitted.len();
    for (name, seconds) in &mut hub_threads {
        let before = threads_before
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s);
        // Per application; threads that ended in between (blocking pool) are not counted.
        *seconds = (*seconds - before).max(0.0) / applications.max(1) as f64;
    }
    let broker_cpu = cpu_seconds(broker)? - broker_before;
    let generator_cpu = cpu_seconds(std::process::id())? - generator_before;
    consuming.abort();
    let arrived = arrived.lock().await.clone();
    let mut delivered: Vec<f64> = submitted
        .iter()
        .filter_map(|(id, sent)| Some(arrived.get(id)?.duration_since(*sent).as_secs_f64()))
        .collect();
    let mut latencies = latencies.lock().await.clone();
    let elapsed = finished.duration_since(started).as_secs_f64();
    delete_queue(&connection, &queue).await;
    let per_application = |seconds: f64| seconds / applications.max(1) as f64;
    Ok(Load {
        applications,
        throughput: applications as f64 / elapsed,
        accepted_rate: applications as f64 / submitting,
        intake_p50: quantile(&mut latencies, 0.50),
        intake_p99: quantile(&mut latencies, 0.99),
        delivered_p99: quantile(&mut delivered, 0.99),
        cpu_per_application: per_application(cpu),
        hub_threads,
        broker_cpu_per_application: per_application(broker_cpu),
        generator_cpu_per_application: per_application(generator_cpu),
        max_in_flight: max_in_flight.load(Ordering::Relaxed),
    })
}

/// CPU seconds of all `pids` together.
fn hubs_cpu(pids: &[u32]) -> anyhow::Result<f64> {
    pids.iter().map(|pid| cpu_seconds(*pid)).sum()
}

/// CPU seconds by thread name, summed over the processes `pids`.
fn hubs_threads(pids: &[u32]) -> anyhow::Result<Vec<(String, f64)>> {
    let mut all: Vec<(String, f64)> = Vec::new();
    for pid in pids {
        for (name, seconds) in thread_cpu_seconds(*pid)? {
            match all.iter_mut().find(|(n, _)| *n == name) {
                Some((_, total)) => *total += seconds,
                None => all.push((name, seconds)),
            }
        }
    }
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(all)
}

pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[index.min(values.len() - 1)]
}
