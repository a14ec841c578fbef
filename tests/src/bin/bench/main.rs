//! The pipeline benchmark: `cargo build --release --workspace --bins && cargo run
//! --release -p kopplung-tests --bin bench [-- SECONDS CLIENTS [sqlite|postgres]]`.
//!
//! In one run on this machine, against the real RabbitMQ: the broker's raw ceiling
//! (persistent 4 KiB publishes with confirms, no hub), the crypto floor (in-process
//! ECDSA sign, ECDH and the whole CMS seal of one message), then the hub (release build,
//! SQLite store, the EC P-256 `cms` profile) under CLIENTS concurrent HTTP clients for
//! SECONDS, and at half that load. Prints a table with ratios, because absolute figures
//! drift on a shared machine. `docs/performance.md` explains the figures.

mod attachments;
mod broker;
mod crypto;
mod hub_load;
mod system;

use std::time::Duration;

use anyhow::Context;
use kopplung_tests::{HubSetup, TestHub};

use attachments::attachment_rss;
use broker::{Ceiling, broker_ceiling};
use crypto::{Crypto, crypto_floor};
use hub_load::{Load, load};
use system::status_kib;

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
    let peak_rss_mb = status_kib(pid, "VmHWM")? as f64 / 1024.0;

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
