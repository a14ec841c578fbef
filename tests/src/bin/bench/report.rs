//! What one run prints: the machine limit, the phases' figures, and the table of the
//! targets of issue 20 with ratios measured in this run.

use crate::broker::Ceiling;
use crate::crypto::Crypto;
use crate::hub_load::Load;
use crate::lock_wait::Histogram;
use crate::phases::{BURST, Postgres, Sqlite};

/// The most applications per second this machine can route through any hub: its cores
/// divided by the work per application no hub can remove.
pub struct Limit {
    pub cores: f64,
    /// ECDSA signature, ephemeral key and ECDH (the crypto floor).
    pub public_key: f64,
    /// RabbitMQ's CPU per application (publish, persist, deliver, ack).
    pub broker: f64,
    /// The load generator's CPU per application (HTTP clients, consumer).
    pub generator: f64,
    /// Which phases the broker's and generator's figures come from.
    pub from: &'static str,
}

impl Limit {
    /// From the crypto floor and the phases `loads`, weighted by their applications.
    pub fn new(floor: &Crypto, loads: &[&Load], from: &'static str) -> Self {
        let applications: f64 = loads.iter().map(|l| l.applications as f64).sum();
        let pooled = |part: fn(&Load) -> f64| {
            loads
                .iter()
                .map(|l| part(l) * l.applications as f64)
                .sum::<f64>()
                / applications.max(1.0)
        };
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            public_key: floor.sign + floor.ecdh,
            broker: pooled(|l| l.broker_cpu_per_application),
            generator: pooled(|l| l.generator_cpu_per_application),
            from,
        }
    }

    pub fn per_application(&self) -> f64 {
        self.public_key + self.broker + self.generator
    }

    pub fn rate(&self) -> f64 {
        self.cores / self.per_application()
    }

    pub fn print(&self) {
        println!(
            "\nmachine limit: {:.0} cores / {:.3} ms of irreducible work per application = {:.0} applications/s",
            self.cores,
            self.per_application() * 1e3,
            self.rate()
        );
        println!(
            "  public-key operations (ECDSA sign, ephemeral key, ECDH) {:.3} ms, RabbitMQ {:.3} ms, load generator {:.3} ms (the last two: {})",
            self.public_key * 1e3,
            self.broker * 1e3,
            self.generator * 1e3,
            self.from
        );
    }
}

/// One phase in a line, and the hub's CPU per application by thread.
pub fn phase(name: &str, load: &Load, public_key: f64) {
    println!(
        "\n{name}: {} applications, accepted {:.0}/s while submitting, delivered {:.0}/s; intake p50/p99 {:.1}/{:.1} ms, submit to delivered p99 {:.0} ms, up to {} in flight",
        load.applications,
        load.accepted_rate,
        load.throughput,
        load.intake_p50 * 1e3,
        load.intake_p99 * 1e3,
        load.delivered_p99 * 1e3,
        load.max_in_flight
    );
    println!(
        "  CPU per application: hub {:.3} ms (of which public-key operations {:.3} ms), RabbitMQ {:.3} ms, load generator {:.3} ms",
        load.cpu_per_application * 1e3,
        public_key * 1e3,
        load.broker_cpu_per_application * 1e3,
        load.generator_cpu_per_application * 1e3
    );
    let threads: Vec<String> = load
        .hub_threads
        .iter()
        .filter(|(_, seconds)| *seconds >= 0.000_005)
        .map(|(name, seconds)| format!("{name} {:.3}", seconds * 1e3))
        .collect();
    println!("  hub CPU by thread (ms): {}", threads.join(", "));
}

/// The p99 of a lock-wait histogram, said as a figure (or why there is none) and
/// whether it is below `target` seconds.
pub fn lock_p99(histogram: Option<&Histogram>, target: f64) -> (String, &'static str) {
    let Some(histogram) = histogram else {
        return ("n/a (hub exports no lock-wait metric)".into(), "n/a");
    };
    let series = if histogram.series.len() > 1 {
        format!(", {} series summed", histogram.series.len())
    } else {
        String::new()
    };
    match histogram.quantile(0.99) {
        None => ("n/a (no lock wait observed)".into(), "n/a"),
        Some((bound, true, _)) => (
            format!(
                "> {:.3} ms ({:.0} waits{series})",
                bound * 1e3,
                histogram.count()
            ),
            // Beyond the largest bound: above the target if that bound is.
            if bound >= target { "no" } else { "n/a" },
        ),
        Some((p99, false, (lower, upper))) => (
            format!(
                "{:.3} ms (in the bucket {:.3}–{:.3} ms; {:.0} waits{series})",
                p99 * 1e3,
                lower * 1e3,
                upper * 1e3,
                histogram.count()
            ),
            // The bucket decides; only one that straddles the target leaves it to the
            // interpolated estimate.
            yes(upper <= target || (lower < target && p99 < target)),
        ),
    }
}

fn yes(met: bool) -> &'static str {
    if met { "yes" } else { "no" }
}

fn row(figure: &str, value: String, target: &str, met: &str) {
    println!("| {figure} | {value} | {target} | {met} |");
}

/// The table of the targets. Rows without a target explain the others.
pub fn table(
    ceiling: &Ceiling,
    floor: &Crypto,
    limit: &Limit,
    sqlite: Option<&Sqlite>,
    postgres: Option<&Postgres>,
) {
    println!("\n| figure | value | target | met |");
    println!("|---|---|---|---|");
    row(
        "broker ceiling (no hub)",
        format!(
            "{:.0} publishes/s ({:.3} ms of RabbitMQ's CPU each)",
            ceiling.rate,
            ceiling.broker_cpu_per_publish * 1e3
        ),
        "",
        "",
    );
    row(
        "crypto: sign / ephemeral key and ECDH / whole seal",
        format!(
            "{:.3} / {:.3} / {:.3} ms",
            floor.sign * 1e3,
            floor.ecdh * 1e3,
            floor.seal * 1e3
        ),
        "",
        "",
    );
    row(
        "machine limit",
        format!(
            "{:.0}/s = {:.0} cores / {:.3} ms",
            limit.rate(),
            limit.cores,
            limit.per_application() * 1e3
        ),
        "",
        "",
    );
    let share = |rate: f64| 100.0 * rate / limit.rate();
    if let Some(s) = sqlite {
        row(
            "delivered/s, default configuration (SQLite)",
            format!(
                "{:.0}/s = {:.0} % of the machine limit",
                s.default.throughput,
                share(s.default.throughput)
            ),
            "≥ 50 %",
            yes(share(s.default.throughput) >= 50.0),
        );
        row(
            &format!(
                "delivered/s, tuned: max_in_flight = {} (SQLite)",
                s.tuned_value
            ),
            format!(
                "{:.0}/s = {:.0} % of the machine limit",
                s.tuned.throughput,
                share(s.tuned.throughput)
            ),
            "",
            "",
        );
        row(
            "hub CPU per application without public-key operations, default / tuned",
            format!(
                "{:.3} / {:.3} ms",
                (s.default.cpu_per_application - limit.public_key) * 1e3,
                (s.tuned.cpu_per_application - limit.public_key) * 1e3
            ),
            "",
            "",
        );
        row(
            "intake p50 / p99 at full load (default)",
            format!(
                "{:.1} / {:.1} ms",
                s.default.intake_p50 * 1e3,
                s.default.intake_p99 * 1e3
            ),
            "",
            "",
        );
        row(
            "intake p99 at half load (default)",
            format!("{:.1} ms at {:.0}/s", s.half.intake_p99 * 1e3, s.half_rate),
            "< 25 ms",
            yes(s.half.intake_p99 < 0.025),
        );
        row(
            "submit to delivered p99 at full load, default / tuned",
            format!(
                "{:.0} / {:.0} ms",
                s.default.delivered_p99 * 1e3,
                s.tuned.delivered_p99 * 1e3
            ),
            "",
            "",
        );
        let in_flight = s
            .burst
            .max_in_flight
            .max(s.default.max_in_flight)
            .max(s.tuned.max_in_flight);
        let peak = s.burst_rss_mb.max(s.default_rss_mb).max(s.tuned_rss_mb);
        row(
            "peak RSS (SQLite hubs)",
            format!(
                "{peak:.0} MB, up to {in_flight} in flight (burst of {BURST}: {:.0} MB at {}; full load default {:.0} MB at {}, tuned {:.0} MB at {})",
                s.burst_rss_mb,
                s.burst.max_in_flight,
                s.default_rss_mb,
                s.default.max_in_flight,
                s.tuned_rss_mb,
                s.tuned.max_in_flight
            ),
            "< 150 MB at ≥ 1,000 in flight",
            yes(peak < 150.0 && in_flight >= 1_000),
        );
        let rise = s.attachment.peak_mb - s.attachment.before_mb;
        row(
            "RSS rise routing a 50 MiB attachment",
            format!("{rise:.1} MB"),
            "< 32 MB",
            yes(rise < 32.0),
        );
    }
    if let Some(p) = postgres {
        if let Some(s) = sqlite {
            let ratio = 100.0 * p.one.throughput / s.default.throughput;
            row(
                "PostgreSQL, one instance (default configuration)",
                format!("{:.0}/s = {ratio:.0} % of SQLite", p.one.throughput),
                "≥ 50 %",
                yes(ratio >= 50.0),
            );
        } else {
            row(
                "PostgreSQL, one instance (default configuration)",
                format!("{:.0}/s (SQLite not run)", p.one.throughput),
                "≥ 50 % of SQLite",
                "n/a",
            );
        }
        row(
            "PostgreSQL, two instances on one database",
            format!(
                "{:.0}/s = {:.2} × one instance (on {:.0} cores two instances cannot be faster)",
                p.two.throughput,
                p.two.throughput / p.one.throughput,
                limit.cores
            ),
            "",
            "",
        );
        let (value, _) = lock_p99(p.lock_one.as_ref(), 0.001);
        row(
            "p99 lock wait of a state change, one instance",
            value,
            "",
            "",
        );
        let (value, met) = lock_p99(p.lock_two.as_ref(), 0.001);
        row(
            "p99 lock wait of a state change, two instances",
            value,
            "< 1 ms",
            met,
        );
        row(
            "peak RSS (PostgreSQL hubs)",
            format!("{:.0} MB", p.rss_mb),
            "",
            "",
        );
    }
}
