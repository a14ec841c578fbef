//! Prometheus metrics of the router, served at `/metrics` (listed with example alert
//! rules in `docs/operations.md`). Labels are bounded: services and procedures of the
//! configuration, problem types of our own API; never anything a client made up.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use kopplung_web::ServerStats;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// Mapping reloads by outcome (`applied`, `refused`).
    pub mapping_reloads: IntCounterVec,
    /// Reloads of keys and certificates by outcome.
    pub key_reloads: IntCounterVec,
    pub routing_reloads: IntCounterVec,
    /// Submissions by service (`unknown` for none of ours) and outcome (`accepted`,
    /// `replayed`, or the problem type, e.g. `validation`).
    pub intake: IntCounterVec,
    /// Time from request to answer at intake.
    pub intake_seconds: Histogram,
    /// Delivery attempts by procedure, transport and outcome (`delivered`,
    /// `awaiting_pickup`, `retry`, `unavailable`, `dead_lettered`).
    pub deliveries: IntCounterVec,
    /// Messages given up, by procedure.
    pub dead_letters: IntCounterVec,
    /// Prepare by stage: `transform` (render, XML and XSD checks) and `seal`.
    pub prepare_seconds: HistogramVec,
    /// One delivery attempt (publish and confirm, POST and answer), by transport.
    pub delivery_seconds: HistogramVec,
    /// From the 202 at intake to the procedure's taking the message, by procedure.
    pub submit_to_delivered_seconds: HistogramVec,
    /// Messages waiting per procedure (in the outbox or for pickup).
    pub backlog: GaugeVec,
    /// Age of the oldest waiting message per procedure.
    pub oldest_pending_seconds: GaugeVec,
    /// Messages delivered without a receipt past the procedure's deadline.
    pub awaiting_receipt: GaugeVec,
    /// Days until a certificate expires (negative: expired), by owner and file.
    pub certificate_expiry_days: GaugeVec,
    /// Applications whose personal data retention deleted, by service.
    pub retention_purged: IntCounterVec,
    /// Outbox entries taken over from instances whose heartbeat had stopped.
    pub outbox_taken_over: IntCounter,
    /// Applications whose message was sealed at intake (`sealed`) or left to the outbox
    /// (`deferred`: every prepare slot busy, large inline attachments, or it failed).
    pub sealed_at_intake: IntCounterVec,
    /// Signed receipts in procedures' answers to deliveries, by procedure and outcome.
    pub answer_receipts: IntCounterVec,
    /// Requests of the FIT-Connect edge by operation and answer (`ok`, or the status).
    pub fitconnect: IntCounterVec,
    /// PostgreSQL: how long a state change waited for one of its instance's audit chains
    /// (the serialisation left; instances never wait for each other). Empty on SQLite.
    pub store_lock_wait_seconds: Histogram,
    /// The listeners' connections (read from their counters at each scrape).
    pub connections: Arc<Connections>,
}

/// `kopplung_connections_open{listener}` and
/// `kopplung_connections_total{listener, outcome}`: what the server layer did with
/// connections (accepted, refused at a cap, closed for a newcomer, cut by a deadline).
pub struct Connections {
    listeners: Mutex<Vec<(String, Arc<ServerStats>)>>,
    open: IntGaugeVec,
    events: IntCounterVec,
}

impl Connections {
    fn new() -> Result<Self, prometheus::Error> {
        Ok(Self {
            listeners: Mutex::new(Vec::new()),
            open: IntGaugeVec::new(
                Opts::new(
                    "kopplung_connections_open",
                    "Open connections, by listener (api, monitoring).",
                ),
                &["listener"],
            )?,
            events: IntCounterVec::new(
                Opts::new(
                    "kopplung_connections_total",
                    "Connections by listener and outcome: accepted, refused_peer (the address had its share), refused_full (every connection was serving), evicted (closed while idle for a newcomer), header_timeout, idle_timeout, body_timeout (requests answered 408).",
                ),
                &["listener", "outcome"],
            )?,
        })
    }

    /// Counts the connections of a listener from now on.
    pub fn add_listener(&self, name: &str, stats: Arc<ServerStats>) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.push((name.to_owned(), stats));
    }
}

impl Collector for Connections {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.open.desc();
        descs.extend(self.events.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        for (name, stats) in listeners.iter() {
            let read = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
            self.open
                .with_label_values(&[name.as_str()])
                .set(i64::try_from(read(&stats.open)).unwrap_or(i64::MAX));
            for (outcome, value) in [
                ("accepted", read(&stats.accepted)),
                ("refused_peer", read(&stats.refused_peer)),
                ("refused_full", read(&stats.refused_full)),
                ("evicted", read(&stats.evicted)),
                ("header_timeout", read(&stats.header_timeouts)),
                ("idle_timeout", read(&stats.idle_timeouts)),
                ("body_timeout", read(&stats.body_timeouts)),
            ] {
                let counter = self.events.with_label_values(&[name.as_str(), outcome]);
                counter.reset();
                counter.inc_by(value);
            }
        }
        let mut families = self.open.collect();
        families.extend(self.events.collect());
        families
    }
}

/// A labelled counter or gauge vector (`new` is `IntCounterVec::new` or `GaugeVec::new`),
/// registered and handed back for recording.
fn vector<M: Collector + Clone + 'static>(
    registry: &Registry,
    new: fn(Opts, &[&str]) -> Result<M, prometheus::Error>,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<M, prometheus::Error> {
    registered(registry, new(Opts::new(name, help), labels)?)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> Result<HistogramVec, prometheus::Error> {
    let metric = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    registered(registry, metric)
}

/// `metric`, registered and handed back for recording.
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// 1 ms to 10 s: intake, prepare and one delivery attempt.
fn fast_buckets() -> Vec<f64> {
    vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
    ]
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let mapping_reloads = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_mapping_reloads_total",
            "Reloads of the mappings, by outcome (applied, refused).",
            &["outcome"],
        )?;
        let key_reloads = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_key_reloads_total",
            "Reloads of the signing key and certificates, by outcome (applied, refused).",
            &["outcome"],
        )?;
        let routing_reloads = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_routing_reloads_total",
            "Reloads of the routing table (procedures, routes, authorities), by outcome (applied, refused).",
            &["outcome"],
        )?;
        // Both series exist from the start, so an alert on `refused` sees a 0 first.
        for outcome in ["applied", "refused"] {
            key_reloads.with_label_values(&[outcome]);
            routing_reloads.with_label_values(&[outcome]);
            mapping_reloads.with_label_values(&[outcome]);
        }
        let intake = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_intake_total",
            "Submissions by service and outcome (accepted, replayed, or the problem type).",
            &["service", "outcome"],
        )?;
        let intake_seconds = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "kopplung_intake_seconds",
                    "Time from request to answer at intake (including the durable commit).",
                )
                .buckets(fast_buckets()),
            )?,
        )?;
        let deliveries = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_deliveries_total",
            "Delivery attempts by procedure, transport and outcome (delivered, awaiting_pickup, retry, unavailable, dead_lettered).",
            &["procedure", "transport", "outcome"],
        )?;
        let dead_letters = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_dead_letters_total",
            "Messages given up (dead letters), by procedure.",
            &["procedure"],
        )?;
        let prepare_seconds = histogram(
            &registry,
            "kopplung_prepare_seconds",
            "Prepare by stage: transform (render, XML and XSD checks) and seal.",
            &["stage"],
            fast_buckets(),
        )?;
        let delivery_seconds = histogram(
            &registry,
            "kopplung_delivery_seconds",
            "One delivery attempt (publish and confirm, POST and answer), by transport.",
            &["transport"],
            fast_buckets(),
        )?;
        let submit_to_delivered_seconds = histogram(
            &registry,
            "kopplung_submit_to_delivered_seconds",
            "From the 202 at intake to the procedure taking the message, by procedure.",
            &["procedure"],
            vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0,
            ],
        )?;
        let backlog = vector(
            &registry,
            GaugeVec::new,
            "kopplung_backlog",
            "Messages waiting per procedure (in the outbox or for pickup).",
            &["procedure"],
        )?;
        let oldest_pending_seconds = vector(
            &registry,
            GaugeVec::new,
            "kopplung_oldest_pending_seconds",
            "Age of the oldest waiting message per procedure (0 if none waits).",
            &["procedure"],
        )?;
        let awaiting_receipt = vector(
            &registry,
            GaugeVec::new,
            "kopplung_awaiting_receipt",
            "Messages delivered without the procedure's receipt past its receipt deadline, per procedure.",
            &["procedure"],
        )?;
        let certificate_expiry_days = vector(
            &registry,
            GaugeVec::new,
            "kopplung_certificate_expiry_days",
            "Days until a certificate expires (negative: expired), by owner (hub or procedure id) and file.",
            &["owner", "certificate"],
        )?;
        let retention_purged = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_retention_purged_total",
            "Applications whose personal data was deleted after the retention period, by service.",
            &["service"],
        )?;
        let outbox_taken_over = registered(
            &registry,
            IntCounter::new(
                "kopplung_outbox_taken_over_total",
                "Claimed outbox entries taken over from another instance whose heartbeat had stopped.",
            )?,
        )?;
        let sealed_at_intake = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_intake_sealed_total",
            "Applications whose message was sealed at intake (outcome=sealed) or left to the outbox (outcome=deferred).",
            &["outcome"],
        )?;
        let answer_receipts = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_answer_receipts_total",
            "Signed receipts in procedures' answers to HTTP deliveries, by procedure and outcome (recorded, duplicate, unavailable, or the problem type that refused it).",
            &["procedure", "outcome"],
        )?;
        let fitconnect = vector(
            &registry,
            IntCounterVec::new,
            "kopplung_fitconnect_requests_total",
            "Requests of the FIT-Connect edge by operation (token, announce, attach, submit, list, fetch, attachment, event, event_log, routes, destination, key, schema) and answer (ok, or the HTTP status of the problem).",
            &["operation", "outcome"],
        )?;
        let store_lock_wait_seconds = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "kopplung_store_lock_wait_seconds",
                    "PostgreSQL: time a state change waited for one of this instance's audit chains (a free lane, or another append to commit); instances never wait for each other.",
                )
                .buckets(vec![
                    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0,
                ]),
            )?,
        )?;
        let connections = Arc::new(Connections::new()?);
        registry.register(Box::new(ConnectionsCollector(connections.clone())))?;
        Ok(Self {
            connections,
            retention_purged,
            outbox_taken_over,
            sealed_at_intake,
            answer_receipts,
            fitconnect,
            store_lock_wait_seconds,
            registry,
            mapping_reloads,
            key_reloads,
            routing_reloads,
            intake,
            intake_seconds,
            deliveries,
            dead_letters,
            prepare_seconds,
            delivery_seconds,
            submit_to_delivered_seconds,
            backlog,
            oldest_pending_seconds,
            awaiting_receipt,
            certificate_expiry_days,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// The registry takes ownership of a collector; the hub keeps its own handle.
struct ConnectionsCollector(Arc<Connections>);

impl Collector for ConnectionsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

#[cfg(test)]
mod tests {
    /// Every metric this file registers has its row in the operators' metrics table
    /// (docs/operations.md, "Monitor"), and every row names a metric registered here: a
    /// new metric without its row, or a row left of a removed one, fails.
    #[test]
    fn the_metrics_table_of_the_operations_guide_is_complete() {
        let names = |text: &str, opening: &str| -> std::collections::BTreeSet<String> {
            text.match_indices(opening)
                .map(|(at, _)| {
                    text[at + opening.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect::<String>()
                })
                .collect()
        };
        let code = include_str!("metrics.rs");
        let code = &code[..code.find("#[cfg(test)]").unwrap_or(code.len())];
        let registered = names(code, "\"kopplung_");
        let docs = include_str!("../../docs/operations.md");
        let monitor = &docs[docs.find("\n## Monitor").unwrap()..];
        let table = &monitor[..monitor.find("Example alert rules").unwrap()];
        let documented = names(table, "| `kopplung_");
        let documented_too = names(table, ", `kopplung_");
        let documented: std::collections::BTreeSet<String> =
            documented.union(&documented_too).cloned().collect();
        assert!(registered.len() >= 15, "{registered:?}");
        assert_eq!(registered, documented);
    }
}
