//! The outbox scheduler: claims due entries under a lease and drives each through
//! prepare and delivery. Delivery happens outside any transaction; `delivered` is
//! committed after the transport's confirm. A crash in between sends the same message
//! again with the same message id (at-least-once; receivers de-duplicate).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kopplung_adapters::{OutboundMessage, Outcome, Sink};
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::{Envelope, RetryPolicy};
use crate::metrics::Metrics;
use crate::prepare::{PrepareError, Preparer};
use crate::store::{Status, Step, Store, StoreError, WorkItem};

/// How long a claimed entry stays ours by default (`[delivery] lease_secs`). One delivery
/// attempt is cut off at three quarters of it, so a lease never runs out under work that
/// is still going on; when an instance dies, another takes its work after the lease.
pub const LEASE: Duration = Duration::from_secs(120);
/// Prepares at once: each holds a whole application in memory several times over.
const PREPARE_PARALLELISM: usize = 4;
/// Entries claimed per round, and worked on at once.
const BATCH: u32 = 32;
/// How long to sleep when nothing is due and nobody wakes us.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// The content type of a `cms` envelope (RFC 8551 naming).
pub const CMS_CONTENT_TYPE: &str = "application/pkcs7-mime; smime-type=authEnveloped-data";
/// The content type of a `jose` envelope: a compact JWE (RFC 7516).
pub const JOSE_CONTENT_TYPE: &str = "application/jose";

/// Takes a procedure's answer that came with a delivery (a signed receipt in an HTTP
/// response body) and treats it like any event of that procedure.
pub type ReplyHandler =
    Arc<dyn Fn(String, Bytes) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Deliveries at once to a procedure without a limit of its own.
const DEFAULT_MAX_IN_FLIGHT: u32 = 8;

pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub preparer: Arc<Preparer>,
    pub sinks: BTreeMap<String, Arc<dyn Sink>>,
    pub policy: RetryPolicy,
    /// Procedures with a retry policy of their own.
    pub policies: BTreeMap<String, RetryPolicy>,
    /// Poked by intake after each commit, so new work starts at once.
    pub wake: Arc<Notify>,
    /// Identifies this process in lease tokens.
    pub owner: String,
    pub prepare_slots: Arc<Semaphore>,
    /// Deliveries at once per procedure (isolation: a slow one cannot take every slot).
    pub max_in_flight: BTreeMap<String, u32>,
    in_flight: Arc<Mutex<BTreeMap<String, u32>>>,
    pub replies: Option<ReplyHandler>,
    /// How long a claim holds (see [`LEASE`]).
    pub lease: Duration,
    pub metrics: Arc<Metrics>,
}

/// Counts one entry in flight for its procedure while alive.
struct InFlight {
    counts: Arc<Mutex<BTreeMap<String, u32>>>,
    procedure: String,
}

impl InFlight {
    fn new(counts: &Arc<Mutex<BTreeMap<String, u32>>>, procedure: &str) -> Self {
        let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(procedure.to_owned()).or_default() += 1;
        Self {
            counts: counts.clone(),
            procedure: procedure.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.procedure) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        preparer: Arc<Preparer>,
        sinks: BTreeMap<String, Arc<dyn Sink>>,
        policy: RetryPolicy,
        policies: BTreeMap<String, RetryPolicy>,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            preparer,
            sinks,
            policy,
            policies,
            wake,
            owner: format!("kopplung-{}", uuid::Uuid::new_v4()),
            prepare_slots: Arc::new(Semaphore::new(PREPARE_PARALLELISM)),
            max_in_flight: BTreeMap::new(),
            in_flight: Arc::new(Mutex::new(BTreeMap::new())),
            replies: None,
            lease: LEASE,
            metrics,
        }
    }

    /// Counts one delivery outcome of a procedure.
    fn count(&self, item: &WorkItem, transport: &str, outcome: &str) {
        self.metrics
            .deliveries
            .with_label_values(&[item.procedure_id.as_str(), transport, outcome])
            .inc();
        if outcome == "dead_lettered" {
            self.metrics
                .dead_letters
                .with_label_values(&[item.procedure_id.as_str()])
                .inc();
        }
    }

    /// How long one delivery attempt may take: well within the lease.
    fn delivery_limit(&self) -> Duration {
        self.lease * 3 / 4
    }

    /// What may still be claimed per procedure: its limit less what is in flight.
    fn capacity(&self) -> BTreeMap<String, u32> {
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        self.sinks
            .keys()
            .map(|id| {
                let limit = self
                    .max_in_flight
                    .get(id)
                    .copied()
                    .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
                let busy = in_flight.get(id).copied().unwrap_or(0);
                (id.clone(), limit.saturating_sub(busy))
            })
            .collect()
    }

    /// Runs until `shutdown` turns true, then lets work in flight finish.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(BATCH as usize));
        let mut running = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            while running.try_join_next().is_some() {}
            let free = permits.available_permits() as u32;
            if free == 0 {
                // Every slot busy: wait for one to free up, not for the clock.
                tokio::select! {
                    _ = running.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let now = OffsetDateTime::now_utc();
            let lease = format!("{}/{}", self.owner, uuid::Uuid::new_v4());
            let capacity = self.capacity();
            let claimed = match self
                .store
                .claim(&lease, now, now + self.lease, free, &capacity)
                .await
            {
                Ok(items) => items,
                Err(e) => {
                    tracing::error!(error = %e, "claiming outbox entries failed");
                    Vec::new()
                }
            };
            let idle = claimed.is_empty();
            for item in claimed {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let this = self.clone();
                let counted = InFlight::new(&self.in_flight, &item.procedure_id);
                running.spawn(async move {
                    this.work(item).await;
                    drop(counted);
                    drop(permit);
                });
            }
            if idle {
                let pause = self.pause_until_next_due().await;
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => {}
                    Some(_) = running.join_next() => {}
                }
            }
        }
        tracing::info!(
            in_flight = running.len(),
            "outbox stopping; finishing work in flight"
        );
        while running.join_next().await.is_some() {}
    }

    async fn pause_until_next_due(&self) -> Duration {
        match self.store.next_due().await {
            Ok(Some(due)) => {
                let wait = due - OffsetDateTime::now_utc();
                Duration::try_from(wait)
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(10), IDLE_POLL)
            }
            Ok(None) => IDLE_POLL,
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox failed");
                IDLE_POLL
            }
        }
    }

    async fn work(&self, mut item: WorkItem) {
        let span = tracing::info_span!("outbox", application_id = %item.application_id, message_id = %item.message_id, procedure = %item.procedure_id);
        async {
            if let Err(e) = self.step(&mut item).await {
                tracing::error!(error = %e, "outbox step failed");
                // Make it visible on the application and space out the next try; if even
                // that fails, the lease runs out and the entry is claimed again.
                let due = OffsetDateTime::now_utc() + self.backoff(item.attempts, None);
                let reason = format!("internal error: {e}");
                if let Err(e) = self.store.record_retry(&item, due, &reason).await {
                    tracing::error!(error = %e, "recording the failure failed");
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn step(&self, item: &mut WorkItem) -> Result<(), StoreError> {
        if item.step == Step::Prepare {
            let input = self.store.prepare_input(item.application_id).await?;
            // Bounded: each prepare holds its application (attachments included) in
            // memory several times over, and more of them than cores gain nothing. (Not
            // held while reading: that would bound the store's round trips instead.)
            let slot = self.prepare_slots.clone().acquire_owned().await;
            let preparer = self.preparer.clone();
            let work = item.clone();
            let prepared = tokio::task::spawn_blocking(move || preparer.prepare(&work, &input))
                .await
                .unwrap_or_else(|e| {
                    Err(PrepareError::Blocked(format!("prepare task failed: {e}")))
                });
            drop(slot);
            match prepared {
                Ok(prepared) => {
                    let stages = &self.metrics.prepare_seconds;
                    stages
                        .with_label_values(&["transform"])
                        .observe(prepared.transform.as_secs_f64());
                    if !prepared.seal.is_zero() {
                        stages
                            .with_label_values(&["seal"])
                            .observe(prepared.seal.as_secs_f64());
                    }
                    let sealed = prepared.message;
                    let detail = match self.preparer.envelope(&item.procedure_id) {
                        Some(_) => format!(
                            "message {} rendered, checked and sealed for {}",
                            item.message_id, item.procedure_id
                        ),
                        // Manual procedures: read in the hub's clerk inbox, never sent.
                        None => format!(
                            "message {} rendered and checked for {} (kept for the clerk inbox)",
                            item.message_id, item.procedure_id
                        ),
                    };
                    if !self.store.record_prepared(item, &sealed, &detail).await? {
                        return Ok(());
                    }
                    tracing::info!("prepared");
                    item.step = Step::Deliver;
                    return self.deliver(item, sealed).await;
                }
                Err(PrepareError::Invalid(reason)) => {
                    tracing::error!(%reason, "message invalid; needs an engineer");
                    self.store
                        .record_failed(item, Status::Invalid, &reason)
                        .await?;
                }
                Err(PrepareError::Blocked(reason)) => {
                    tracing::warn!(%reason, "prepare blocked; will retry");
                    let due = OffsetDateTime::now_utc() + self.backoff(item.attempts, None);
                    self.store.record_retry(item, due, &reason).await?;
                }
            }
            return Ok(());
        }
        let sealed = self.store.sealed_message(item).await?;
        self.deliver(item, sealed).await
    }

    async fn deliver(&self, item: &WorkItem, sealed: Vec<u8>) -> Result<(), StoreError> {
        let Some(sink) = self.sinks.get(&item.procedure_id) else {
            let reason = format!("procedure {} is no longer configured", item.procedure_id);
            let due = OffsetDateTime::now_utc() + self.backoff(item.attempts, None);
            self.store.record_retry(item, due, &reason).await?;
            return Ok(());
        };
        let message = OutboundMessage {
            message_id: item.message_id.to_string(),
            correlation_id: item.application_id.to_string(),
            message_type: item.message_type.clone(),
            content_type: match self.preparer.envelope(&item.procedure_id) {
                Some(Envelope::Jose) => JOSE_CONTENT_TYPE.into(),
                _ => CMS_CONTENT_TYPE.into(),
            },
            headers: vec![
                ("application_id".into(), item.application_id.to_string()),
                ("service".into(), item.service_key.clone()),
                ("procedure".into(), item.procedure_id.clone()),
            ],
            body: Bytes::from(sealed),
        };
        let destination = sink.destination();
        let limit = self.delivery_limit();
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(limit, sink.deliver(&message))
            .await
            .unwrap_or_else(|_| Outcome::Retry {
                reason: format!("no outcome within {}s", limit.as_secs()),
                not_before: None,
            });
        self.metrics
            .delivery_seconds
            .with_label_values(&[destination.transport])
            .observe(started.elapsed().as_secs_f64());
        let transport = destination.transport;
        match outcome.clone() {
            Outcome::Delivered | Outcome::DeliveredWithReceipt(_) => {
                let detail = format!(
                    "message {} delivered to {} via {} {}",
                    item.message_id,
                    item.procedure_id,
                    destination.transport,
                    destination.destination
                );
                let recorded = self.store.record_delivered(item, &detail).await?;
                tracing::info!("delivered");
                self.count(item, transport, "delivered");
                if let (true, Some(accepted_at)) = (recorded, item.accepted_at) {
                    let waited = OffsetDateTime::now_utc() - accepted_at;
                    self.metrics
                        .submit_to_delivered_seconds
                        .with_label_values(&[item.procedure_id.as_str()])
                        .observe(waited.as_seconds_f64().max(0.0));
                }
                if let (true, Outcome::DeliveredWithReceipt(body), Some(replies)) =
                    (recorded, &outcome, &self.replies)
                {
                    replies(item.procedure_id.clone(), body.clone()).await;
                }
            }
            Outcome::AwaitingPickup => {
                let detail = format!(
                    "message {} ready for {} to collect ({})",
                    item.message_id, item.procedure_id, destination.transport
                );
                self.store.record_awaiting_pickup(item, &detail).await?;
                tracing::info!("awaiting pickup");
                self.count(item, transport, "awaiting_pickup");
            }
            Outcome::Retry { reason, not_before } => {
                let policy = self.policy_of(&item.procedure_id);
                let next = after_failure(&policy, item.attempts, not_before, &mut rand::rng());
                match next {
                    Next::GiveUp { attempts } => {
                        let reason =
                            format!("given up after {attempts} attempts; last error: {reason}");
                        tracing::error!(%reason, "delivery dead-lettered");
                        self.count(item, transport, "dead_lettered");
                        self.store
                            .record_failed(item, Status::DeadLettered, &reason)
                            .await?;
                    }
                    Next::TryAgainIn(pause) => {
                        let due = OffsetDateTime::now_utc() + pause;
                        tracing::warn!(%reason, attempts = item.attempts + 1, "delivery failed; will retry");
                        self.count(item, transport, "retry");
                        self.store.record_retry(item, due, &reason).await?;
                    }
                }
            }
            Outcome::Unavailable { reason, not_before } => {
                // Not this message's fault: wait without counting an attempt.
                let policy = self.policy_of(&item.procedure_id);
                let due = OffsetDateTime::now_utc() + backoff(&policy, item.attempts, not_before);
                tracing::warn!(%reason, "destination unreachable; waiting");
                self.count(item, transport, "unavailable");
                self.store.record_wait(item, due, &reason).await?;
            }
            Outcome::Permanent { reason } => {
                tracing::error!(%reason, "delivery refused permanently; dead-lettered");
                self.count(item, transport, "dead_lettered");
                self.store
                    .record_failed(item, Status::DeadLettered, &reason)
                    .await?;
            }
        }
        Ok(())
    }

    fn backoff(&self, attempts: u32, not_before: Option<Duration>) -> Duration {
        backoff(&self.policy, attempts, not_before)
    }

    /// The procedure's own retry policy, or the hub's.
    fn policy_of(&self, procedure: &str) -> RetryPolicy {
        self.policies.get(procedure).copied().unwrap_or(self.policy)
    }
}

/// What follows a failed attempt (`Outcome::Retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The policy's attempts are used up: dead letter.
    GiveUp { attempts: u32 },
    /// Another attempt after this pause (backoff, never shorter than `Retry-After`).
    TryAgainIn(Duration),
}

/// The decision after the failure of attempt number `attempts + 1`.
pub fn after_failure(
    policy: &RetryPolicy,
    attempts: u32,
    not_before: Option<Duration>,
    rng: &mut impl Rng,
) -> Next {
    let attempts_now = attempts + 1;
    if attempts_now >= policy.max_attempts {
        return Next::GiveUp {
            attempts: attempts_now,
        };
    }
    let jitter = full_jitter(policy, attempts, rng);
    Next::TryAgainIn(not_before.map_or(jitter, |floor| jitter.max(floor)))
}

/// The pause before the next attempt: full jitter, but not before `not_before`.
fn backoff(policy: &RetryPolicy, attempts: u32, not_before: Option<Duration>) -> Duration {
    let jitter = full_jitter(policy, attempts, &mut rand::rng());
    not_before.map_or(jitter, |floor| jitter.max(floor))
}

/// Exponential backoff with full jitter: uniform in `[0, min(max, base * 2^attempts)]`.
pub fn full_jitter(policy: &RetryPolicy, attempts: u32, rng: &mut impl Rng) -> Duration {
    let ceiling = policy
        .base_delay_ms
        .saturating_mul(1u64 << attempts.min(32))
        .min(policy.max_delay_ms);
    Duration::from_millis(rng.random_range(0..=ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn retry_after_is_a_floor_and_the_last_attempt_gives_up() {
        let policy = RetryPolicy {
            base_delay_ms: 100,
            max_delay_ms: 60_000,
            max_attempts: 4,
            ..RetryPolicy::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for attempts in 0..3 {
            for _ in 0..200 {
                // A receiver that says `Retry-After: 7` is not asked again sooner.
                let Next::TryAgainIn(pause) =
                    after_failure(&policy, attempts, Some(Duration::from_secs(7)), &mut rng)
                else {
                    panic!("gave up after {} attempts", attempts + 1);
                };
                assert!(pause >= Duration::from_secs(7), "{pause:?}");
                assert!(pause <= Duration::from_secs(60));
                // Without it, the backoff's ceiling for this attempt holds.
                let Next::TryAgainIn(pause) = after_failure(&policy, attempts, None, &mut rng)
                else {
                    panic!("gave up early");
                };
                assert!(pause <= Duration::from_millis(100 << attempts), "{pause:?}");
            }
        }
        // The fourth failure is the last: dead letter, whatever Retry-After said.
        assert_eq!(
            after_failure(&policy, 3, Some(Duration::from_secs(1)), &mut rng),
            Next::GiveUp { attempts: 4 }
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            base_delay_ms: 100,
            max_delay_ms: 1_000,
            max_attempts: 10,
            ..RetryPolicy::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempts in 0..40 {
            let ceiling = (100u64 << attempts.min(32)).min(1_000);
            for _ in 0..50 {
                let d = full_jitter(&policy, attempts, &mut rng);
                assert!(d <= Duration::from_millis(ceiling), "{attempts}: {d:?}");
            }
        }
        // Full jitter spreads: not every draw at a high attempt count is the cap.
        let draws: Vec<_> = (0..20)
            .map(|_| full_jitter(&policy, 10, &mut rng))
            .collect();
        assert!(draws.iter().any(|d| *d < Duration::from_millis(900)));
    }
}
