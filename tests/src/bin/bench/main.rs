//! The pipeline benchmark: `cargo build --release --workspace --bins && cargo run
//! --release -p kopplung-tests --bin bench [-- SECONDS CLIENTS [all|sqlite|postgres]
//! [TUNED]]`.
//!
//! In one run on this machine, against the real RabbitMQ (and PostgreSQL): the broker's
//! raw ceiling, the crypto floor, then release hubs under CLIENTS concurrent HTTP clients
//! for SECONDS per phase — SQLite with the default configuration (and at half that
//! load), SQLite tuned (TUNED deliveries at once for the procedure, default 512), a
//! burst of applications while the broker is unreachable (peak RSS at ≥ 1,000 in
//! flight), PostgreSQL with one instance and with two on one database (lock waits from
//! the hubs' own histogram). From the CPU the broker and the load generator spend per
//! application and the public-key operations it prints the machine limit, and every
//! figure as a ratio measured in this run, because absolute figures drift on a shared
//! machine. `docs/performance.md` explains the figures.

mod attachments;
mod broker;
mod crypto;
mod hub_load;
mod lock_wait;
mod phases;
mod report;
mod system;

use std::time::{Duration, Instant};

use kopplung_tests::TestHub;

use broker::broker_ceiling;
use crypto::{Crypto, crypto_floor};
use hub_load::Plan;
use report::Limit;

const MESSAGE_BYTES: usize = 4096;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(Ok(20), |a| a.parse())?;
    let clients: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let parts = args.next().unwrap_or_else(|| "all".into());
    let (run_sqlite, run_postgres) = match parts.as_str() {
        "all" => (true, true),
        "sqlite" => (true, false),
        "postgres" => (false, true),
        other => anyhow::bail!("unknown part {other:?}: all, sqlite or postgres"),
    };
    let tuned: u32 = args.next().map_or(Ok(512), |a| a.parse())?;
    println!(
        "kopplung benchmark: {seconds} s per load phase, {clients} clients, parts {parts}, tuned max_in_flight = {tuned}"
    );
    let plan = Plan::saturating(clients, Duration::from_secs(seconds));

    let ceiling = broker_ceiling(Duration::from_secs(5)).await?;
    println!(
        "broker ceiling: {:.0} persistent 4 KiB publishes/s with confirms ({:.3} ms broker CPU each)",
        ceiling.rate,
        ceiling.broker_cpu_per_publish * 1e3
    );
    // The crypto floor, with the keys of the first hub that starts.
    let mut floor: Option<Crypto> = None;
    let mut measure_crypto = |hub: &TestHub| -> anyhow::Result<()> {
        if floor.is_none() {
            let measured = crypto_floor(&hub.pki_dir())?;
            println!(
                "crypto: ECDSA P-256 sign {:.3} ms, ephemeral key and ECDH {:.3} ms, whole CMS seal of 4 KiB {:.3} ms",
                measured.sign * 1e3,
                measured.ecdh * 1e3,
                measured.seal * 1e3
            );
            floor = Some(measured);
        }
        Ok(())
    };
    let sqlite = if run_sqlite {
        Some(phases::sqlite(&plan, tuned, &mut measure_crypto).await?)
    } else {
        None
    };
    let postgres = if run_postgres {
        Some(phases::postgres(&plan, &mut measure_crypto).await?)
    } else {
        None
    };
    let Some(floor) = floor else {
        anyhow::bail!("no hub ran");
    };
    let public_key = floor.sign + floor.ecdh;

    // The machine limit from the fastest phases measured: SQLite's, else PostgreSQL's.
    let limit = match (&sqlite, &postgres) {
        (Some(s), _) => Limit::new(
            &floor,
            &[&s.default, &s.tuned],
            "SQLite phases, default and tuned",
        ),
        (None, Some(p)) => Limit::new(&floor, &[&p.one, &p.two], "PostgreSQL phases"),
        (None, None) => anyhow::bail!("no phase ran"),
    };
    let phase = |name: &str, load| report::phase(name, load, public_key);
    if let Some(s) = &sqlite {
        phase("SQLite, default configuration", &s.default);
        phase("SQLite, default configuration, half load", &s.half);
        phase(
            &format!("SQLite, tuned (max_in_flight = {})", s.tuned_value),
            &s.tuned,
        );
        phase(
            "SQLite, default configuration, burst while the broker is unreachable, then delivered",
            &s.burst,
        );
        println!(
            "50 MiB attachment: hub RSS {:.0} MB before, peak {:.0} MB while uploading, delivering and serving {} fragments",
            s.attachment.before_mb, s.attachment.peak_mb, s.attachment.fragments
        );
    }
    if let Some(p) = &postgres {
        phase("PostgreSQL, one instance", &p.one);
        phase(
            "PostgreSQL, two instances on one database (clients split between them)",
            &p.two,
        );
    }
    limit.print();
    report::table(&ceiling, &floor, &limit, sqlite.as_ref(), postgres.as_ref());
    let applications: usize = sqlite
        .iter()
        .flat_map(|s| [&s.default, &s.half, &s.tuned, &s.burst])
        .chain(postgres.iter().flat_map(|p| [&p.one, &p.two]))
        .map(|l| l.applications)
        .sum();
    println!(
        "\n{applications} applications in all, every one delivered; the run took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
