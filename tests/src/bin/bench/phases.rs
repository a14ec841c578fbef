//! The phases of one run: the SQLite hubs (default and tuned configuration, a burst
//! while the broker is unreachable) and the PostgreSQL hubs (one and two instances).

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;
use kopplung_tests::{BrokerGate, HubSetup, PostgresDatabase, TestHub};

use crate::attachments::{AttachmentRss, attachment_rss};
use crate::hub_load::{Load, Plan, load};
use crate::lock_wait::{Histogram, LOCK_WAIT, scrape};
use crate::system::status_kib;

/// Applications accepted while the broker is unreachable: the peak RSS target speaks
/// of 1,000 in flight, which a hub that delivers as fast as it accepts never holds.
pub const BURST: usize = 1_500;

pub struct Sqlite {
    pub attachment: AttachmentRss,
    pub default: Load,
    pub default_rss_mb: f64,
    pub half: Load,
    pub half_rate: f64,
    pub tuned: Load,
    pub tuned_value: u32,
    pub tuned_rss_mb: f64,
    pub burst: Load,
    pub burst_rss_mb: f64,
}

pub struct Postgres {
    pub one: Load,
    pub two: Load,
    pub rss_mb: f64,
    /// The lock waits during each phase; `None`: the hub exports no such histogram.
    pub lock_one: Option<Histogram>,
    pub lock_two: Option<Histogram>,
}

/// The demo's routing without any override: the transport's default in-flight limit.
pub fn default_setup() -> HubSetup {
    HubSetup {
        rust_log: "warn",
        ..HubSetup::default()
    }
}

/// The SQLite phases, on a hub with the default configuration (the attachment on it
/// first, fresh), one with Dresden's Mängelanzeige allowed `tuned` deliveries at once,
/// and one that accepts a burst while the broker is unreachable. `pki_used` runs on the
/// first hub once it started (the crypto floor uses its keys).
pub async fn sqlite(
    plan: &Plan,
    tuned: u32,
    mut pki_used: impl FnMut(&TestHub) -> anyhow::Result<()>,
) -> anyhow::Result<Sqlite> {
    let first = TestHub::start(default_setup()).await;
    pki_used(&first)?;
    let attachment = attachment_rss(&first, 50 * 1024 * 1024).await?;
    reset_peak(&first)?;
    let default = load(&[&first], plan.clone(), async {}).await?;
    let half_rate = (default.throughput / 2.0).max(1.0);
    let half = load(
        &[&first],
        Plan {
            duration: plan.duration / 2,
            rate: Some(half_rate),
            ..plan.clone()
        },
        async {},
    )
    .await?;
    let default_rss_mb = peak_mb(&first)?;
    drop(first);

    let (hub, tuned_value) = start_tuned(tuned).await?;
    let tuned = load(&[&hub], plan.clone(), async {}).await?;
    let tuned_rss_mb = peak_mb(&hub)?;
    drop(hub);

    let mut gate = BrokerGate::closed();
    let hub = TestHub::start(HubSetup {
        amqp_url: gate.url(),
        ..default_setup()
    })
    .await;
    let burst = load(
        &[&hub],
        Plan {
            duration: Duration::from_secs(120),
            count: Some(BURST),
            ..plan.clone()
        },
        gate.open(),
    )
    .await?;
    let burst_rss_mb = peak_mb(&hub)?;
    Ok(Sqlite {
        attachment,
        default,
        default_rss_mb,
        half,
        half_rate,
        tuned,
        tuned_value,
        tuned_rss_mb,
        burst,
        burst_rss_mb,
    })
}

/// A hub whose Dresden Mängelanzeige allows `tuned` deliveries at once, or 256 (the
/// limit of hubs before issue 20) if the hub refuses `tuned`.
async fn start_tuned(tuned: u32) -> anyhow::Result<(TestHub, u32)> {
    for value in [tuned, 256] {
        let setup = HubSetup {
            rewrite_routing: Some(std::sync::Arc::new(move |routing: String| {
                routing.replacen(
                    "[[procedure]]\nid = \"dresden-maengel\"\n",
                    &format!("[[procedure]]\nid = \"dresden-maengel\"\nmax_in_flight = {value}\n"),
                    1,
                )
            })),
            ..default_setup()
        };
        // The harness panics when the hub refuses its configuration (the hub itself
        // says why on stderr); the panic's own message and backtrace are left out.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let started = AssertUnwindSafe(TestHub::start(setup)).catch_unwind().await;
        std::panic::set_hook(hook);
        match started {
            Ok(hub) => return Ok((hub, value)),
            Err(_) if value != 256 => {
                println!("the hub refuses max_in_flight = {value}; tuned with 256 instead")
            }
            Err(_) => anyhow::bail!("the tuned hub did not start"),
        }
    }
    anyhow::bail!("no tuned hub started")
}

/// The PostgreSQL phases on one fresh database: one instance, then a second beside it
/// with the clients split between them; both with the default configuration.
/// `pki_used` runs on the first hub once it started.
pub async fn postgres(
    plan: &Plan,
    mut pki_used: impl FnMut(&TestHub) -> anyhow::Result<()>,
) -> anyhow::Result<Postgres> {
    let database = PostgresDatabase::create();
    let setup = HubSetup {
        extra_config: format!("[store]\npostgres_url = \"{}\"\n", database.url()),
        ..default_setup()
    };
    let first = TestHub::start(HubSetup {
        extra_config: setup.extra_config.clone(),
        ..default_setup()
    })
    .await;
    pki_used(&first)?;
    let before = scrape(&[&first], LOCK_WAIT).await?;
    let one = load(&[&first], plan.clone(), async {}).await?;
    let after = scrape(&[&first], LOCK_WAIT).await?;
    let lock_one = between(before, after);

    let second = first.start_peer(&setup).await;
    let both = [&first, &second];
    let before = scrape(&both, LOCK_WAIT).await?;
    let two = load(&both, plan.clone(), async {}).await?;
    let after = scrape(&both, LOCK_WAIT).await?;
    let lock_two = between(before, after);
    let rss_mb = peak_mb(&first)?.max(peak_mb(&second)?);
    // The hubs stop before their database is dropped.
    drop((first, second));
    drop(database);
    Ok(Postgres {
        one,
        two,
        rss_mb,
        lock_one,
        lock_two,
    })
}

/// The observations between two scrapes.
fn between(before: Option<Histogram>, after: Option<Histogram>) -> Option<Histogram> {
    Some(after?.plus(&before?, -1.0))
}

/// Resets the hub's peak RSS to its RSS now (Linux clear_refs, value 5).
fn reset_peak(hub: &TestHub) -> anyhow::Result<()> {
    let pid = hub.pid().context("the hub runs")?;
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("clear_refs")
}

/// The hub's peak RSS (VmHWM) in MB.
fn peak_mb(hub: &TestHub) -> anyhow::Result<f64> {
    let pid = hub.pid().context("the hub runs")?;
    Ok(status_kib(pid, "VmHWM")? as f64 / 1024.0)
}
