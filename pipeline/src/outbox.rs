//! The outbox scheduler: claims due entries under a lease and drives each through
//! prepare and delivery. Delivery happens outside any transaction; `delivered` is
//! committed after the transport's confirm. A crash in between sends the same message
//! again with the same message id (at-least-once; receivers de-duplicate).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use kopplung_adapters::{OutboundMessage, Outcome, Sink};
use kopplung_core::events::{EventError, Events, Taken};
use kopplung_core::store::{Claim, OutboxStore, Status, Step, StoreError, WorkItem};
use kopplung_core::{Clock, InstanceId};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::prepare::{PrepareError, Preparer};
use crate::retry::{Next, RetryPolicy, after_failure, backoff};
use crate::{Envelope, Observer, Wakeup};

/// How long a claimed entry stays ours by default (`[delivery] lease_secs`). One delivery
/// attempt is cut off at three quarters of it, so a lease never runs out under work that
/// is still going on; when an instance dies, another takes its work after the lease.
pub const LEASE: Duration = Duration::from_secs(120);
/// After how long without a heartbeat another instance takes over an instance's claims
/// by default (`[delivery] heartbeat_timeout_secs`). A live instance beats every quarter
/// of it.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepares at once: each holds a whole application in memory several times over.
const PREPARE_PARALLELISM: usize = 4;
/// The prepare slots of an outbox, to share with sealing at intake (`ahead.rs`).
pub fn prepare_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(PREPARE_PARALLELISM))
}

/// Entries between reading their application and having sealed it: each holds the
/// application (form data, inline attachments: up to `max_body_bytes`) in memory several
/// times over. The sealed messages being delivered are bounded by [`SLOTS`].
const PREPARE_INPUTS: usize = 32;
/// Entries claimed per round at most (one statement, one lease token).
const CLAIM_BATCH: u32 = 256;
/// Entries worked on at once, over all procedures: bounds the memory of sealed messages
/// in flight (a few KiB each, at most `max_body_bytes` with inline attachments; large
/// files travel by claim check).
const SLOTS: usize = 512;
/// How long to sleep when nothing is due and nobody wakes us.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// The content type of a `cms` envelope (RFC 8551 naming).
pub const CMS_CONTENT_TYPE: &str = "application/pkcs7-mime; smime-type=authEnveloped-data";
/// The content type of a `jose` envelope: a compact JWE (RFC 7516).
pub const JOSE_CONTENT_TYPE: &str = "application/jose";

/// Deliveries at once to a procedure missing from `max_in_flight` (the hub sets every
/// configured procedure's limit: its own, or its transport's default).
const DEFAULT_MAX_IN_FLIGHT: u32 = 8;

pub struct Dispatcher {
    pub store: Arc<dyn OutboxStore>,
    pub preparer: Arc<Preparer>,
    /// Sinks, limits and retry policies; replaced as a whole when the routing table is
    /// reloaded ([`Dispatcher::replace_deliveries`]).
    deliveries: RwLock<Arc<Deliveries>>,
    /// Rung by intake after each commit, so new work starts at once.
    pub wake: Arc<Wakeup>,
    /// This instance's id, the same across its restarts (the hub keeps it in its data
    /// directory): its lease tokens are `<owner>/<unique>`, so that a restart returns
    /// its earlier claims at once and another instance can take them over. (A fresh one
    /// by default.)
    pub owner: InstanceId,
    /// After how long without a heartbeat another instance's claims are taken over (see
    /// [`HEARTBEAT_TIMEOUT`]); `None`: no heartbeat, the store is this process's alone
    /// (SQLite), and its claims return when it restarts.
    pub heartbeat_timeout: Option<Duration>,
    pub prepare_slots: Arc<Semaphore>,
    /// See [`PREPARE_INPUTS`].
    prepare_inputs: Arc<Semaphore>,
    in_flight: Arc<Mutex<BTreeMap<String, u32>>>,
    /// Takes a procedure's answer that came with a delivery (a signed receipt in an
    /// HTTP response body) like any event of that procedure.
    pub events: Option<Arc<Events>>,
    /// How long a claim holds (see [`LEASE`]).
    pub lease: Duration,
    pub observer: Arc<dyn Observer>,
    pub clock: Arc<dyn Clock>,
}

/// What the dispatcher delivers with: one sink per procedure, how many deliveries to
/// each at once, and the retry policies. A reload replaces it as a whole; a delivery in
/// flight finishes with the sink it started with.
#[derive(Clone, Default)]
pub struct Deliveries {
    pub sinks: BTreeMap<String, Arc<dyn Sink>>,
    /// Deliveries at once per procedure (isolation: a slow one cannot take every slot).
    pub max_in_flight: BTreeMap<String, u32>,
    pub policies: RetryPolicies,
}

/// The hub's retry policy and the procedures' own.
#[derive(Debug, Clone, Default)]
pub struct RetryPolicies {
    pub hub: RetryPolicy,
    /// Procedures with a retry policy of their own.
    pub procedures: BTreeMap<String, RetryPolicy>,
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
        store: Arc<dyn OutboxStore>,
        preparer: Arc<Preparer>,
        sinks: BTreeMap<String, Arc<dyn Sink>>,
        policies: RetryPolicies,
        wake: Arc<Wakeup>,
        observer: Arc<dyn Observer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            preparer,
            deliveries: RwLock::new(Arc::new(Deliveries {
                sinks,
                max_in_flight: BTreeMap::new(),
                policies,
            })),
            wake,
            owner: InstanceId::generate(),
            prepare_slots: Arc::new(Semaphore::new(PREPARE_PARALLELISM)),
            prepare_inputs: Arc::new(Semaphore::new(PREPARE_INPUTS)),
            in_flight: Arc::new(Mutex::new(BTreeMap::new())),
            events: None,
            lease: LEASE,
            heartbeat_timeout: Some(HEARTBEAT_TIMEOUT),
            observer,
            clock,
        }
    }

    /// What is delivered with now.
    pub fn deliveries(&self) -> Arc<Deliveries> {
        self.deliveries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `fresh` in force for every delivery that starts from now on.
    pub fn replace_deliveries(&self, fresh: Deliveries) {
        *self.deliveries.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
    }

    /// Counts one delivery outcome of a procedure.
    fn count(&self, item: &WorkItem, transport: &str, outcome: &str) {
        self.observer
            .delivery(item.procedure_id.as_str(), transport, outcome);
    }

    /// How long one delivery attempt may take: well within the lease.
    fn delivery_limit(&self) -> Duration {
        self.lease * 3 / 4
    }

    /// What may still be claimed per procedure: its limit less what is in flight.
    fn capacity(&self) -> BTreeMap<String, u32> {
        let deliveries = self.deliveries();
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        deliveries
            .sinks
            .keys()
            .map(|id| {
                let limit = deliveries
                    .max_in_flight
                    .get(id)
                    .copied()
                    .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
                let busy = in_flight.get(id).copied().unwrap_or(0);
                (id.clone(), limit.saturating_sub(busy))
            })
            .collect()
    }

    /// Beats this instance's heartbeat every quarter of the heartbeat timeout and takes
    /// over the claims of other instances silent for longer, until `stop`.
    async fn keep_alive(self: Arc<Self>, silence: Duration, mut stop: watch::Receiver<bool>) {
        let every = (silence / 4).max(Duration::from_millis(250));
        let timeout = time::Duration::try_from(silence).unwrap_or(time::Duration::seconds(10));
        let mut last_beat = Instant::now();
        loop {
            match self.store.heartbeat(&self.owner).await {
                Ok(()) => last_beat = Instant::now(),
                // Past the timeout, another instance takes this one's claims: what it
                // records under them is refused, deliveries in flight may go twice.
                Err(e) => tracing::error!(
                    error = %e,
                    silent_secs = last_beat.elapsed().as_secs(),
                    heartbeat_timeout_secs = silence.as_secs(),
                    "the instance's heartbeat failed"
                ),
            }
            match self.store.take_over_silent(&self.owner, timeout).await {
                Ok(silent) => {
                    for other in silent {
                        if other.entries == 0 {
                            tracing::info!(instance = %other.instance, "an instance fell silent; it held no claims");
                            continue;
                        }
                        tracing::warn!(
                            instance = %other.instance,
                            entries = other.entries,
                            heartbeat_timeout_secs = silence.as_secs(),
                            "took over the claimed outbox entries of a silent instance"
                        );
                        self.observer.taken_over(other.entries);
                        kopplung_core::Wake::wake(&*self.wake);
                    }
                }
                Err(e) => tracing::error!(error = %e, "taking over silent instances failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }

    /// Runs until `shutdown` turns true, then lets work in flight finish. Meanwhile, and
    /// until that work is done, the instance beats its heartbeat and takes over silent
    /// instances' claims.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let (stop_heart, heart_stopped) = watch::channel(false);
        let heart = self
            .heartbeat_timeout
            .map(|silence| tokio::spawn(self.clone().keep_alive(silence, heart_stopped)));
        let permits = Arc::new(Semaphore::new(SLOTS));
        let mut running = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            while running.try_join_next().is_some() {}
            let free = u32::try_from(permits.available_permits())
                .unwrap_or(CLAIM_BATCH)
                .min(CLAIM_BATCH);
            if free == 0 {
                // Every slot busy: wait for one to free up, not for the clock.
                tokio::select! {
                    _ = running.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let now = self.clock.now();
            let lease = self.owner.new_lease();
            let capacity = self.capacity();
            let claim = Claim {
                lease: &lease,
                now,
                lease_until: now + self.lease,
                limit: free,
                capacity: &capacity,
            };
            let claimed = match self.store.claim(&claim).await {
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
                    _ = self.wake.rung() => {}
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
        let _ = stop_heart.send(true);
        if let Some(heart) = heart {
            let _ = heart.await;
        }
    }

    async fn pause_until_next_due(&self) -> Duration {
        match self.store.next_due().await {
            Ok(Some(due)) => {
                let wait = due - self.clock.now();
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
                let due = self.clock.now() + self.backoff(item.attempts, None);
                let reason = format!("internal error: {e}");
                match self.store.record_retry(&item, due, &reason).await {
                    Ok(true) => {}
                    Ok(false) => taken_over(),
                    Err(e) => tracing::error!(error = %e, "recording the failure failed"),
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn step(&self, item: &mut WorkItem) -> Result<(), StoreError> {
        if item.step == Step::Prepare {
            let holding_input = self.prepare_inputs.clone().acquire_owned().await;
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
            // The application's input is gone with the prepare task; the sealed message
            // stays.
            drop(holding_input);
            match prepared {
                Ok(prepared) => {
                    prepared.observe(self.observer.as_ref());
                    let sealed = prepared.message;
                    let detail = self
                        .preparer
                        .prepared_detail(&item.procedure_id, item.message_id);
                    if !self
                        .store
                        .record_prepared(item, &sealed, &prepared.xml, &detail)
                        .await?
                    {
                        taken_over();
                        return Ok(());
                    }
                    tracing::info!("prepared");
                    item.step = Step::Deliver;
                    return self.deliver(item, sealed).await;
                }
                Err(PrepareError::Invalid(reason)) => {
                    if self
                        .store
                        .record_failed(item, Status::Invalid, &reason)
                        .await?
                    {
                        tracing::error!(%reason, "message invalid; needs an engineer");
                    } else {
                        taken_over();
                    }
                }
                Err(PrepareError::Blocked(reason)) => {
                    let due = self.clock.now() + self.backoff(item.attempts, None);
                    if self.store.record_retry(item, due, &reason).await? {
                        tracing::warn!(%reason, "prepare blocked; will retry");
                    } else {
                        taken_over();
                    }
                }
            }
            return Ok(());
        }
        let sealed = match item.sealed.take() {
            Some(sealed) => sealed,
            None => self.store.sealed_message(item).await?,
        };
        self.deliver(item, sealed).await
    }

    async fn deliver(&self, item: &WorkItem, sealed: Vec<u8>) -> Result<(), StoreError> {
        let Some(sink) = self.deliveries().sinks.get(&item.procedure_id).cloned() else {
            let reason = format!("procedure {} is no longer configured", item.procedure_id);
            let due = self.clock.now() + self.backoff(item.attempts, None);
            if !self.store.record_retry(item, due, &reason).await? {
                taken_over();
            }
            return Ok(());
        };
        let message = OutboundMessage {
            message_id: item.message_id.to_string(),
            correlation_id: item.application_id.to_string(),
            message_type: item.message_type.clone(),
            content_type: self
                .preparer
                .keyring()
                .envelope(&item.procedure_id)
                .unwrap_or(Envelope::Cms)
                .content_type()
                .into(),
            headers: vec![
                ("application_id".into(), item.application_id.to_string()),
                ("service".into(), item.service_key.clone()),
                ("procedure".into(), item.procedure_id.clone()),
            ],
            body: Bytes::from(sealed),
        };
        let destination = sink.destination();
        let limit = self.delivery_limit();
        let started = Instant::now();
        let outcome = tokio::time::timeout(limit, sink.deliver(&message))
            .await
            .unwrap_or_else(|_| Outcome::Retry {
                reason: format!("no outcome within {}s", limit.as_secs()),
                not_before: None,
            });
        self.observer
            .delivery_attempt(destination.transport, started.elapsed().as_secs_f64());
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
                if !recorded {
                    // Fenced (see `OutboxStore::take_over_silent`): the new holder's
                    // outcome is the one recorded.
                    tracing::warn!(
                        "delivered after this instance's claim was taken over; the procedure may see the message again, with the same message id"
                    );
                }
                self.count(item, transport, "delivered");
                if let (true, Some(accepted_at)) = (recorded, item.accepted_at) {
                    let waited = self.clock.now() - accepted_at;
                    self.observer
                        .submit_to_delivered(&item.procedure_id, waited.as_seconds_f64().max(0.0));
                }
                if let (true, Outcome::DeliveredWithReceipt(body), Some(events)) =
                    (recorded, &outcome, &self.events)
                {
                    take_reply(events, self.observer.as_ref(), &item.procedure_id, body).await;
                }
            }
            Outcome::AwaitingPickup => {
                let detail = format!(
                    "message {} ready for {} to collect ({})",
                    item.message_id, item.procedure_id, destination.transport
                );
                if !self.store.record_awaiting_pickup(item, &detail).await? {
                    taken_over();
                    return Ok(());
                }
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
                        self.dead_letter(item, transport, &reason, "delivery dead-lettered")
                            .await?;
                    }
                    Next::TryAgainIn(pause) => {
                        let due = self.clock.now() + pause;
                        // Recorded first: a fenced attempt is not this entry's any more, and
                        // counts for nothing.
                        if !self.store.record_retry(item, due, &reason).await? {
                            taken_over();
                            return Ok(());
                        }
                        tracing::warn!(%reason, attempts = item.attempts + 1, "delivery failed; will retry");
                        self.count(item, transport, "retry");
                    }
                }
            }
            Outcome::Unavailable { reason, not_before } => {
                // Not this message's fault: wait without counting an attempt.
                let policy = self.policy_of(&item.procedure_id);
                let due = self.clock.now() + backoff(&policy, item.attempts, not_before);
                if !self.store.record_wait(item, due, &reason).await? {
                    taken_over();
                    return Ok(());
                }
                tracing::warn!(%reason, "destination unreachable; waiting");
                self.count(item, transport, "unavailable");
            }
            Outcome::Permanent { reason } => {
                self.dead_letter(
                    item,
                    transport,
                    &reason,
                    "delivery refused permanently; dead-lettered",
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Records the entry dead-lettered with `reason` and logs `what`, unless this
    /// instance's claim was taken over (then the new holder's outcome is the one recorded).
    async fn dead_letter(
        &self,
        item: &WorkItem,
        transport: &str,
        reason: &str,
        what: &str,
    ) -> Result<(), StoreError> {
        if self
            .store
            .record_failed(item, Status::DeadLettered, reason)
            .await?
        {
            tracing::error!(%reason, "{what}");
            self.count(item, transport, "dead_lettered");
        } else {
            taken_over();
        }
        Ok(())
    }

    fn backoff(&self, attempts: u32, not_before: Option<Duration>) -> Duration {
        backoff(&self.deliveries().policies.hub, attempts, not_before)
    }

    /// The procedure's own retry policy, or the hub's.
    fn policy_of(&self, procedure: &str) -> RetryPolicy {
        let policies = &self.deliveries().policies;
        policies
            .procedures
            .get(procedure)
            .copied()
            .unwrap_or(policies.hub)
    }
}

/// A change recorded under a lease that was taken over (fenced, see
/// `OutboxStore::take_over_silent`): the entry is the new holder's, whose outcome counts.
/// Said once per entry, in the entry's span, and never as a failed attempt.
fn taken_over() {
    tracing::warn!("the entry was taken over by another instance; leaving it");
}

/// A signed receipt in an HTTP answer is an event like any other of that procedure; the
/// message is delivered whatever becomes of it. A refused one is counted and logged
/// with its problem type, and the message stays awaiting its receipt (see
/// `docs/vendors.md`: the procedure sends it again to the receipts API).
async fn take_reply(events: &Events, observer: &dyn Observer, procedure: &str, body: &Bytes) {
    let outcome = match events.take(procedure, body.to_vec()).await {
        Ok(Taken::Recorded { .. }) => "recorded",
        Ok(Taken::Duplicate { .. }) => "duplicate",
        Err(EventError::Unavailable(_)) => {
            tracing::warn!(%procedure, "receipt in the delivery answer not recorded: the store is not reachable");
            "unavailable"
        }
        Err(e) => {
            tracing::warn!(%procedure, problem = e.kind(), "receipt in the delivery answer refused; the message awaits its receipt");
            e.kind()
        }
    };
    observer.answer_receipt(procedure, outcome);
}
