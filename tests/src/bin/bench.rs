//! The pipeline benchmark: `cargo build --release --workspace --bins && cargo run
//! --release -p kopplung-tests --bin bench [-- SECONDS CLIENTS [sqlite|postgres]]`.
//!
//! In one run on this machine, against the real RabbitMQ: the broker's raw ceiling
//! (persistent 4 KiB publishes with confirms, no hub), the crypto floor (in-process
//! ECDSA sign, ECDH and the whole CMS seal of one message), then the hub (release build,
//! SQLite store, the EC P-256 `cms` profile) under CLIENTS concurrent HTTP clients for
//! SECONDS, and at half that load. Prints a table with ratios, because absolute figures
//! drift on a shared machine. `docs/performance.md` explains the figures.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use kopplung_tests::{HubSetup, TestHub, amqp_url, delete_queue};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;
use tokio::sync::Mutex;

const MESSAGE_BYTES: usize = 4096;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(Ok(20), |a| a.parse())?;
    let clients: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    // `postgres`: the hub on a fresh PostgreSQL database (127.0.0.1:5432, as the tests).
    let store = args.next().unwrap_or_else(|| "sqlite".into());
    let database = match store.as_str() {
        "sqlite" => None,
        "postgres" => Some(kopplung_tests::PostgresDatabase::create()),
        other => anyhow::bail!("unknown store {other:?}: sqlite or postgres"),
    };
    println!("kopplung benchmark: {seconds} s per load phase, {clients} clients, store {store}");

    let Ceiling {
        rate: ceiling,
        broker_cpu_per_publish,
    } = broker_ceiling(Duration::from_secs(5)).await?;
    println!(
        "broker ceiling: {ceiling:.0} persistent 4 KiB publishes/s with confirms ({:.3} ms broker CPU each)",
        broker_cpu_per_publish * 1e3
    );

    let hub = TestHub::start(HubSetup {
        rust_log: "warn",
        // A state-wide, high-volume procedure: 128 deliveries at once (the default of
        // 8 protects small procedures; see docs/performance.md).
        edit_routing: |routing| {
            routing.replacen(
                "[[procedure]]\nid = \"dresden-maengel\"\n",
                "[[procedure]]\nid = \"dresden-maengel\"\nmax_in_flight = 128\n",
                1,
            )
        },
        extra_config: database
            .as_ref()
            .map(|d| format!("[store]\npostgres_url = \"{}\"\n", d.url()))
            .unwrap_or_default(),
        ..HubSetup::default()
    })
    .await;
    let floor = crypto_floor(&hub.pki_dir())?;
    println!(
        "crypto: ECDSA P-256 sign {:.3} ms, ephemeral key and ECDH {:.3} ms, whole CMS seal of 4 KiB {:.3} ms",
        floor.sign * 1e3,
        floor.ecdh * 1e3,
        floor.seal * 1e3
    );

    // First, on the fresh hub: the memory one large attachment costs end to end.
    let attachment = attachment_rss(&hub, 50 * 1024 * 1024).await?;
    println!(
        "50 MiB attachment: hub RSS {:.0} MB before, peak {:.0} MB while uploading, delivering and serving {} fragments",
        attachment.before_mb, attachment.peak_mb, attachment.fragments
    );

    let full = load(&hub, clients, Duration::from_secs(seconds), None).await?;
    let half_rate = (full.throughput / 2.0).max(1.0);
    let half = load(
        &hub,
        clients,
        Duration::from_secs(seconds / 2),
        Some(half_rate),
    )
    .await?;
    let pid = hub.pid().context("the hub runs")?;
    let peak_rss_mb = peak_rss_kib(pid)? as f64 / 1024.0;

    let public_key_ops = floor.sign + floor.ecdh;
    let other_cpu = full.cpu_per_application - public_key_ops;
    println!();
    println!("| figure | value | target | met |");
    println!("|---|---|---|---|");
    let row = |name: &str, value: String, target: String, met: bool| {
        println!(
            "| {name} | {value} | {target} | {} |",
            if met { "yes" } else { "no" }
        );
    };
    row(
        "sustained throughput (intake to confirmed publish)",
        format!(
            "{:.0}/s = {:.0} % of the broker ceiling",
            full.throughput,
            100.0 * full.throughput / ceiling
        ),
        "≥ 50 % of the ceiling".into(),
        full.throughput >= 0.5 * ceiling,
    );
    row(
        "intake latency at full load p50 / p99",
        format!(
            "{:.1} / {:.1} ms",
            full.intake_p50 * 1e3,
            full.intake_p99 * 1e3
        ),
        "-".into(),
        true,
    );
    row(
        "intake latency at half load p99",
        format!(
            "{:.1} ms ({:.0}/s offered)",
            half.intake_p99 * 1e3,
            half_rate
        ),
        "< 25 ms".into(),
        half.intake_p99 < 0.025,
    );
    row(
        "submit to delivered p99 (full load)",
        format!("{:.0} ms", full.delivered_p99 * 1e3),
        "-".into(),
        true,
    );
    row(
        "hub CPU per application",
        format!(
            "{:.3} ms, of which public-key operations {:.3} ms",
            full.cpu_per_application * 1e3,
            public_key_ops * 1e3
        ),
        "-".into(),
        true,
    );
    row(
        "hub CPU per application without public-key operations",
        format!(
            "{:.3} ms = {:.1} × the signature",
            other_cpu * 1e3,
            other_cpu / floor.sign
        ),
        "≤ 2 × the signature".into(),
        other_cpu <= 2.0 * floor.sign,
    );
    row(
        "peak RSS of the hub",
        format!("{peak_rss_mb:.0} MB (max {} in flight)", full.max_in_flight),
        "< 150 MB with 1,000 in flight".into(),
        peak_rss_mb < 150.0,
    );
    row(
        "RSS raise routing a 50 MiB attachment (streamed upload, delivery by claim check, all fragments fetched)",
        format!("{:.1} MB", attachment.peak_mb - attachment.before_mb),
        "< 32 MB".into(),
        attachment.peak_mb - attachment.before_mb < 32.0,
    );
    println!(
        "\napplications: {} at full load, {} at half load; all delivered",
        full.applications, half.applications
    );
    budget(ceiling, &floor, &full);
    Ok(())
}

/// What the throughput target asks of this machine's cores, from this run's figures:
/// the parts no change to the hub can remove (the public-key operations every message
/// needs, the broker's own work, the load generator) beside the hub's other work.
fn budget(ceiling: f64, floor: &Crypto, full: &Load) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let target = 0.5 * ceiling;
    let public_key = floor.sign + floor.ecdh;
    let hub_rest = full.cpu_per_application - public_key;
    println!("\nCPU budget at the throughput target ({target:.0} applications/s, {cores} cores):");
    let mut total = 0.0;
    for (part, per_application) in [
        (
            "public-key operations (ECDSA sign, ephemeral key, ECDH)",
            public_key,
        ),
        (
            "RabbitMQ (publish, persist, deliver, ack)",
            full.broker_cpu_per_application,
        ),
        (
            "load generator (HTTP clients, consumer)",
            full.generator_cpu_per_application,
        ),
        ("hub, everything else", hub_rest),
    ] {
        let needed = per_application * target;
        total += needed;
        println!(
            "  {part}: {:.3} ms per application = {needed:.2} cores",
            per_application * 1e3
        );
    }
    println!(
        "  together {total:.2} cores of {cores}; without the hub's other work {:.2}",
        total - hub_rest * target
    );
    // The CPU target's floor: one stage the issue itself requires, measured in-process.
    let seal_rest = floor.seal - public_key;
    println!(
        "\nthe CMS seal alone without its public-key operations: {:.3} ms = {:.1} × the signature (the CPU target allows 2 × for all of the hub's work)",
        seal_rest * 1e3,
        seal_rest / floor.sign
    );
    println!("\nhub CPU per application by thread (full load):");
    for (name, seconds) in &full.hub_threads {
        if *seconds >= 0.000_005 {
            println!("  {name}: {:.3} ms", seconds * 1e3);
        }
    }
}

/// Persistent 4 KiB publishes with confirms, 4 channels each keeping 64 unconfirmed.
async fn broker_ceiling(duration: Duration) -> anyhow::Result<Ceiling> {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let queue = format!("kopplung.bench.{}", uuid::Uuid::new_v4().simple());
    let setup = connection.create_channel().await?;
    setup
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    let body = Arc::new(vec![b'x'; MESSAGE_BYTES]);
    let broker = broker_pid()?;
    let broker_before = cpu_seconds(broker)?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let (queue, body) = (queue.clone(), body.clone());
        tasks.spawn(async move {
            let mut confirmed = 0u64;
            while started.elapsed() < duration {
                let mut window = Vec::with_capacity(64);
                for _ in 0..64 {
                    window.push(
                        channel
                            .basic_publish(
                                "".into(),
                                queue.as_str().into(),
                                BasicPublishOptions::default(),
                                &body,
                                BasicProperties::default().with_delivery_mode(2),
                            )
                            .await?,
                    );
                }
                for confirm in window {
                    if confirm.await?.is_ack() {
                        confirmed += 1;
                    }
                }
            }
            Ok::<u64, lapin::Error>(confirmed)
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let broker_cpu = cpu_seconds(broker)? - broker_before;
    setup
        .queue_delete(queue.as_str().into(), Default::default())
        .await?;
    Ok(Ceiling {
        rate,
        broker_cpu_per_publish: broker_cpu / total.max(1) as f64,
    })
}

struct Ceiling {
    rate: f64,
    /// RabbitMQ's CPU seconds per confirmed publish (no consumer).
    broker_cpu_per_publish: f64,
}

struct Crypto {
    sign: f64,
    ecdh: f64,
    seal: f64,
}

/// Seconds per operation, in-process, with the hub's own keys.
fn crypto_floor(pki: &std::path::Path) -> anyhow::Result<Crypto> {
    use kopplung_transformers::Sealer;
    use kopplung_transformers::seal::{load_certificate, load_private_key};
    use openssl::derive::Deriver;
    use openssl::hash::MessageDigest;
    use openssl::sign::Signer;
    let sealer = Sealer::load(&pki.join("hub.crt"), &pki.join("hub.key"))?;
    let recipient = load_certificate(&pki.join("procedures/dresden-maengel.crt"))?;
    let hub_key = load_private_key(&pki.join("hub.key"))?;
    let message = vec![b'x'; MESSAGE_BYTES];
    let per = |n: u32, f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let started = Instant::now();
        for _ in 0..n {
            f()?;
        }
        Ok(started.elapsed().as_secs_f64() / f64::from(n))
    };
    let sign = per(2000, &mut || {
        let mut signer = Signer::new(MessageDigest::sha256(), &hub_key)?;
        signer.update(&message)?;
        signer.sign_to_vec()?;
        Ok(())
    })?;
    // Key agreement as CMS does it for an EC recipient (RFC 5753, ephemeral-static): a
    // fresh key pair, then ECDH with the recipient's public key.
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let recipient_public = recipient.public_key()?;
    let ecdh = per(2000, &mut || {
        let ephemeral = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
        let mut deriver = Deriver::new(&ephemeral)?;
        deriver.set_peer(&recipient_public)?;
        deriver.derive_to_vec()?;
        Ok(())
    })?;
    let seal = per(1000, &mut || {
        sealer.seal(&message, &recipient)?;
        Ok(())
    })?;
    Ok(Crypto { sign, ecdh, seal })
}

/// Declares `queue` and consumes it without acknowledgements.
async fn consume(queue: &str, tag: &str) -> anyhow::Result<(Connection, lapin::Consumer)> {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((connection, consumer))
}

struct Load {
    applications: usize,
    throughput: f64,
    intake_p50: f64,
    intake_p99: f64,
    delivered_p99: f64,
    cpu_per_application: f64,
    /// The hub's CPU per application by thread name (e.g. the store's writer).
    hub_threads: Vec<(String, f64)>,
    /// RabbitMQ's CPU per application (publish, route, persist, deliver, ack).
    broker_cpu_per_application: f64,
    /// This process's CPU per application (HTTP clients and the procedure's consumer).
    generator_cpu_per_application: f64,
    max_in_flight: usize,
}

/// `clients` submit Mängelanzeigen for `duration` (at most `rate` per second in all, if
/// given); a consumer on the procedure's queue notes when each arrives.
async fn load(
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

fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[index.min(values.len() - 1)]
}

/// CPU seconds of a process's threads so far, summed by thread name (Linux).
fn thread_cpu_seconds(pid: u32) -> anyhow::Result<Vec<(String, f64)>> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let tid = entry?.file_name();
        let Some(tid) = tid.to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(name) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")) else {
            continue;
        };
        let Ok(seconds) = cpu_seconds_of(&format!("/proc/{pid}/task/{tid}/stat")) else {
            continue;
        };
        let name = name.trim().to_owned();
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += seconds,
            None => by_name.push((name, seconds)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(by_name)
}

/// The RabbitMQ node on this machine (its Erlang VM, `beam.smp`).
fn broker_pid() -> anyhow::Result<u32> {
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "beam.smp")
            && cmdline.contains("rabbit")
        {
            return Ok(pid);
        }
    }
    anyhow::bail!("no RabbitMQ node (beam.smp) runs on this machine")
}

/// User and system CPU seconds of a process so far (Linux).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    cpu_seconds_of(&format!("/proc/{pid}/stat"))
}

/// User and system CPU seconds from a `/proc/.../stat` file.
fn cpu_seconds_of(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').context("/proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    // The kernel's USER_HZ is 100 on Linux.
    Ok(ticks / 100.0)
}

struct AttachmentRss {
    before_mb: f64,
    peak_mb: f64,
    fragments: u64,
}

/// Uploads a PDF of `size` bytes, submits a Gewerbeanmeldung for Dresden naming it,
/// waits for the message on the procedure's queue and fetches every fragment as the
/// procedure would. The hub's peak RSS is reset (clear_refs) after a warm-up round.
async fn attachment_rss(hub: &TestHub, size: usize) -> anyhow::Result<AttachmentRss> {
    let pid = hub.pid().context("the hub runs")?;
    let queue = hub.queue("dresden-buergerbuero");
    let (connection, mut consumer) = consume(&queue, "bench-attachment").await?;
    let http = reqwest::Client::new();
    let token = kopplung_tests::procedure_token("dresden-buergerbuero");
    attachment_round(hub, &http, &token, &mut consumer, 1024 * 1024).await?;
    // Reset the peak to the current RSS (Linux clear_refs, value 5).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("clear_refs")?;
    let before_mb = rss_kib(pid)? as f64 / 1024.0;
    let fragments = attachment_round(hub, &http, &token, &mut consumer, size).await?;
    let peak_mb = peak_rss_kib(pid)? as f64 / 1024.0;
    delete_queue(&connection, &queue).await;
    Ok(AttachmentRss {
        before_mb,
        peak_mb,
        fragments,
    })
}

/// One round of [`attachment_rss`]: upload, submit, receive, fetch every fragment.
async fn attachment_round(
    hub: &TestHub,
    http: &reqwest::Client,
    token: &str,
    consumer: &mut lapin::Consumer,
    size: usize,
) -> anyhow::Result<u64> {
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(size, 0x5a);
    let uploaded: serde_json::Value = http
        .post(hub.url("/api/v1/attachments?filename=Lageplan.pdf"))
        .bearer_auth(&hub.token)
        .header("content-type", "application/pdf")
        .body(pdf)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut body: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        kopplung_tests::workspace().join("mappings/gewerbeanmeldung/fixtures/minimal.input.json"),
    )?)?;
    body["service"] = "99050012104000".into();
    body["region"] = "146120000000".into();
    body["attachments"] = json!([{ "upload": uploaded["id"] }]);
    http.post(hub.url("/api/v1/applications"))
        .bearer_auth(&hub.token)
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    let delivery = tokio::time::timeout(Duration::from_secs(60), consumer.next())
        .await
        .context("no message within 60 s")?
        .context("consumer ended")??;
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .context("message id")?
        .to_string();
    let fragments = (size as u64).div_ceil(1024 * 1024);
    for k in 1..=fragments {
        let fragment = http
            .get(hub.url(&format!(
                "/api/v1/procedures/dresden-buergerbuero/messages/{message_id}/attachments/1/{k}"
            )))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        anyhow::ensure!(!fragment.is_empty(), "an empty fragment");
    }
    Ok(fragments)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}

fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM")
}
