//! The hub under load: concurrent HTTP clients and a consumer timing each arrival.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use kopplung_tests::{TestHub, delete_queue};
use serde_json::json;
use tokio::sync::Mutex;

use crate::broker::consume;
use crate::system::{broker_pid, cpu_seconds, thread_cpu_seconds};

pub struct Load {
    pub applications: usize,
    pub throughput: f64,
    pub intake_p50: f64,
    pub intake_p99: f64,
    pub delivered_p99: f64,
    pub cpu_per_application: f64,
    /// The hub's CPU per application by thread name (e.g. the store's writer).
    pub hub_threads: Vec<(String, f64)>,
    /// RabbitMQ's CPU per application (publish, route, persist, deliver, ack).
    pub broker_cpu_per_application: f64,
    /// This process's CPU per application (HTTP clients and the procedure's consumer).
    pub generator_cpu_per_application: f64,
    pub max_in_flight: usize,
}

/// `clients` submit Mängelanzeigen for `duration` (at most `rate` per second in all, if
/// given); a consumer on the procedure's queue notes when each arrives.
pub async fn load(
    hub: &TestHub,
    clients: usize,
    duration: Duration,
    rate: Option<f64>,
) -> anyhow::Result<Load> {
    let pid = hub.pid().context("the hub runs")?;
    let cpu_before = cpu_seconds(pid)?;
    let threads_before = thread_cpu_seconds(pid)?;
    let broker = broker_pid()?;
    let broker_before = cpu_seconds(broker)?;
    let generator_before = cpu_seconds(std::process::id())?;
    let submitted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    // The consumer.
    let queue = hub.queue("dresden-maengel");
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
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let url = hub.url("/api/v1/applications");
    let started = Instant::now();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let max_in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (http, url, token) = (http.clone(), url.clone(), hub.token.clone());
        let (submitted, arrived, latencies, max_in_flight) = (
            submitted.clone(),
            arrived.clone(),
            latencies.clone(),
            max_in_flight.clone(),
        );
        tasks.spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < duration {
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
                max_in_flight.fetch_max(in_flight, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let submitted = submitted.lock().await.clone();
    // Everything accepted must arrive.
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrived.lock().await.len() < submitted.len() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {} arrived",
            arrived.lock().await.len(),
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
    let cpu = cpu_seconds(pid)? - cpu_before;
    let mut hub_threads = thread_cpu_seconds(pid)?;
    for (name, seconds) in &mut hub_threads {
        let before = threads_before
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s);
        // Per application; threads that ended in between (blocking pool) are not counted.
        *seconds = (*seconds - before).max(0.0) / submitted.len().max(1) as f64;
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
    let applications = submitted.len();
    let elapsed = finished.duration_since(started).as_secs_f64();
    delete_queue(&connection, &queue).await;
    Ok(Load {
        applications,
        throughput: applications as f64 / elapsed,
        intake_p50: quantile(&mut latencies, 0.50),
        intake_p99: quantile(&mut latencies, 0.99),
        delivered_p99: quantile(&mut delivered, 0.99),
        cpu_per_application: cpu / applications.max(1) as f64,
        hub_threads,
        broker_cpu_per_application: broker_cpu / applications.max(1) as f64,
        generator_cpu_per_application: generator_cpu / applications.max(1) as f64,
        max_in_flight: max_in_flight.load(std::sync::atomic::Ordering::Relaxed),
    })
}

pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[index.min(values.len() - 1)]
}
