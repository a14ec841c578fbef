//! Group commit of the outbox's leased state changes on PostgreSQL.
//!
//! A change recorded on its own is a transaction of five round trips (BEGIN, the leased
//! UPDATE, status with history, the audit append, COMMIT) and a WAL flush, and each
//! statement costs the hub CPU in sqlx. Under load many changes arrive together (a
//! broker settles up to 256 confirms at once), so callers queue their change and await
//! its answer, and a few writer tasks ([`WRITERS`]) each take what is queued (up to
//! [`BATCH`]) and run it as one transaction of multi-row statements: one UPDATE of every
//! leased entry (`UNNEST`), one statement for the applications' status and history, one
//! audit append of all their entries to one of the instance's chains, one COMMIT. A
//! batch is what queued while the previous one ran: nothing waits for a timer.
//!
//! Each change keeps the guarantees of one on its own. Its row is matched by
//! application, procedure and lease token, so a change under a lease that was taken
//! over changes nothing and answers `false` while the others commit. A database error
//! fails the whole transaction: it is rolled back and its changes run again one by one,
//! each in a transaction of its own, so that each gets its own answer. An entry appears
//! at most once per batch (the multi-row UPDATE changes a row once).

use std::sync::Arc;

use sqlx::postgres::PgPool;
use sqlx::{Executor, Postgres};
use time::OffsetDateTime;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::chain::Chains;
use crate::shared::history::Change;
use crate::shared::{millis, rfc3339};
use kopplung_core::Clock;
use kopplung_core::audit::sha256_hex;
use kopplung_core::store::rules::Stage;
use kopplung_core::store::{LeasedChange, Status, StoreError, WorkItem};

/// The most changes one transaction takes.
const BATCH: usize = 128;

/// Writers running batches at once: while one waits for its commit's WAL flush, the
/// next runs what queued meanwhile (PostgreSQL flushes concurrent commits together).
const WRITERS: usize = 2;

/// One leased change as a row of the batch's UPDATE: what it sets on the entry. The
/// same effect as its statement in `crate::shared::outbox::LeasedUpdate::of` (SQLite's),
/// column by column; keep the two in step.
#[derive(Debug)]
pub(crate) struct Leased {
    application_id: Uuid,
    procedure_id: String,
    lease: String,
    /// The new step; `None` keeps it.
    step: Option<&'static str>,
    /// The message just sealed; `None` keeps the stored one.
    sealed: Option<Vec<u8>>,
    /// The XML it was sealed from, with it; `None` keeps the stored one.
    sent_xml: Option<String>,
    /// Always written: `None` clears it.
    last_error: Option<String>,
    /// Added to the attempts.
    attempts: i64,
    /// Unix ms; `None` keeps it.
    due_at: Option<i64>,
    /// The lease given back (every change but `Prepared`, after which the holder
    /// delivers).
    release: bool,
    delivered_at: Option<String>,
    /// The state change with its history and audit entry; none for a retry or a wait.
    transition: Option<Change>,
}

impl Leased {
    /// `change` of `item`'s entry at `now`.
    pub(crate) fn of(item: &WorkItem, change: LeasedChange<'_>, now: OffsetDateTime) -> Self {
        let mut leased = Self {
            application_id: item.application_id,
            procedure_id: item.procedure_id.clone(),
            lease: item.lease.clone(),
            step: None,
            sealed: None,
            sent_xml: None,
            last_error: None,
            attempts: 0,
            due_at: None,
            release: true,
            delivered_at: None,
            transition: None,
        };
        let change_to = |status: Status, detail: &str, sealed: Option<&[u8]>| {
            Some(Change::message(
                item.application_id,
                status,
                detail,
                sealed.map(sha256_hex),
            ))
        };
        match change {
            LeasedChange::Prepared {
                sealed,
                xml,
                detail,
            } => {
                leased.step = Some(Stage::Deliver.as_str());
                leased.sealed = Some(sealed.to_vec());
                leased.sent_xml = Some(xml.to_owned());
                leased.release = false;
                leased.transition = change_to(Status::Prepared, detail, Some(sealed));
            }
            LeasedChange::Delivered { detail } => {
                leased.step = Some(Stage::Done.as_str());
                leased.attempts = 1;
                leased.delivered_at = Some(rfc3339(now));
                leased.transition = change_to(Status::Delivered, detail, None);
            }
            LeasedChange::Retry { due, error } => {
                leased.attempts = 1;
                leased.last_error = Some(error.to_owned());
                leased.due_at = Some(millis(due));
            }
            // A wait is a retry that is no attempt.
            LeasedChange::Wait { due, reason } => {
                leased.last_error = Some(reason.to_owned());
                leased.due_at = Some(millis(due));
            }
            LeasedChange::AwaitingPickup { detail } => {
                leased.step = Some(Stage::Pickup.as_str());
                leased.due_at = Some(millis(now));
                leased.transition = change_to(Status::Prepared, detail, None);
            }
            LeasedChange::Failed { status, error } => {
                let stage = Stage::of_failure(status);
                leased.step = Some(stage.as_str());
                leased.attempts = i64::from(stage == Stage::Dead);
                leased.last_error = Some(error.to_owned());
                leased.transition = change_to(status, error, None);
            }
        }
        leased
    }

    /// Whether the audit entry binds the stored message, read back by the UPDATE (a
    /// state change that did not just seal one).
    fn reads_back(&self) -> bool {
        self.transition.is_some() && self.sealed.is_none()
    }

    /// The same outbox entry: a batch holds each entry once, because its multi-row
    /// UPDATE would change the row for one of them and silently skip the other.
    fn same_entry(&self, other: &Self) -> bool {
        self.application_id == other.application_id && self.procedure_id == other.procedure_id
    }
}

/// A queued change and where its answer goes.
struct Job {
    change: Leased,
    answer: oneshot::Sender<Result<bool, StoreError>>,
}

/// What a batch runs on: the instance's pool, audit chains and clock.
#[derive(Clone)]
struct Db {
    pool: PgPool,
    chain: Arc<Chains>,
    clock: Arc<dyn Clock>,
}

/// The queue the writers share: one of them at a time waits on it and takes a batch.
struct Queue {
    jobs: mpsc::UnboundedReceiver<Job>,
    /// A change whose entry was in the batch taken before: it opens the next one.
    held: Option<Job>,
}

/// Where the store's leased changes queue; the writers end when it is dropped.
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    db: Db,
}

impl Writer {
    /// Starts the writers on the current Tokio runtime.
    pub(crate) fn start(pool: PgPool, chain: Arc<Chains>, clock: Arc<dyn Clock>) -> Self {
        let (jobs, queued) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(Queue {
            jobs: queued,
            held: None,
        }));
        let db = Db { pool, chain, clock };
        for _ in 0..WRITERS {
            tokio::spawn(db.clone().write(queue.clone()));
        }
        Self { jobs, db }
    }

    /// Records `change` in the next batch: whether it changed the entry (false: the
    /// lease was taken over).
    pub(crate) async fn record(&self, change: Leased) -> Result<bool, StoreError> {
        let (answer, answered) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(Job { change, answer }) {
            // The writers are gone with the runtime they were started on (a store used
            // from another one): the change runs here, on its own.
            return self.db.alone(job.change).await.map_err(|f| f.error());
        }
        answered.await.map_err(|_| {
            StoreError::Database("the store's writer stopped before it answered".into())
        })?
    }
}

impl Queue {
    /// Waits for a change, then takes what else is queued, up to [`BATCH`]; `None` once
    /// the store is gone.
    async fn take(&mut self) -> Option<Vec<Job>> {
        let first = match self.held.take() {
            Some(job) => job,
            None => self.jobs.recv().await?,
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            let Ok(job) = self.jobs.try_recv() else {
                break;
            };
            if batch
                .iter()
                .any(|queued| queued.change.same_entry(&job.change))
            {
                self.held = Some(job);
                break;
            }
            batch.push(job);
        }
        Some(batch)
    }
}

impl Db {
    /// One writer: takes a batch while no other writer takes one, runs it, answers.
    async fn write(self, queue: Arc<Mutex<Queue>>) {
        loop {
            let Some(batch) = queue.lock().await.take().await else {
                return;
            };
            let (changes, answers): (Vec<Leased>, Vec<_>) = batch
                .into_iter()
                .map(|job| (job.change, job.answer))
                .unzip();
            match self.commit(&changes).await {
                Ok(changed) => {
                    for (answer, changed) in answers.into_iter().zip(changed) {
                        // A caller that gave up waiting needs no answer.
                        let _ = answer.send(Ok(changed));
                    }
                }
                Err(Failure::Refused(reason)) if changes.len() > 1 => {
                    tracing::warn!(error = %reason, changes = changes.len(), "a batch of outbox state changes was refused; recording them one by one");
                    let mut lost: Option<String> = None;
                    for (change, answer) in changes.into_iter().zip(answers) {
                        let answered = match &lost {
                            Some(reason) => Err(database(reason)),
                            None => self.alone(change).await.map_err(|failure| {
                                if let Failure::Lost(reason) = &failure {
                                    lost = Some(reason.clone());
                                }
                                failure.error()
                            }),
                        };
                        let _ = answer.send(answered);
                    }
                }
                Err(failure) => {
                    for answer in answers {
                        let _ = answer.send(Err(failure.error()));
                    }
                }
            }
        }
    }

    /// `change` in a transaction of its own.
    async fn alone(&self, change: Leased) -> Result<bool, Failure> {
        let changed = self.commit(std::slice::from_ref(&change)).await?;
        Ok(changed.first().copied().unwrap_or(false))
    }

    /// Runs `changes` in one transaction: which of them changed their entry.
    async fn commit(&self, changes: &[Leased]) -> Result<Vec<bool>, Failure> {
        let mut changed = vec![false; changes.len()];
        if changes.iter().all(|change| change.transition.is_none()) {
            // Retries and waits only: no history, no audit entry; one statement.
            for (n, _) in update(&self.pool, changes).await? {
                mark(&mut changed, n);
            }
            return Ok(changed);
        }
        let mut tx = self.pool.begin().await.map_err(Failure::lost)?;
        let mut rows = update(&mut *tx, changes).await?;
        // History and audit entries in the order the changes queued.
        rows.sort_by_key(|(n, _)| *n);
        let at = rfc3339(self.clock.now());
        let mut audit = Vec::new();
        for (n, sealed) in rows {
            mark(&mut changed, n);
            let transition = usize::try_from(n - 1)
                .ok()
                .and_then(|i| changes.get(i))
                .and_then(|change| change.transition.clone());
            if let Some(transition) = transition {
                audit.push((at.clone(), transition.binding_stored(sealed.as_deref())));
            }
        }
        if !audit.is_empty() {
            change_statuses(&mut tx, &at, &audit).await?;
        }
        // The lane is kept until the commit is done (see `super::chain`).
        let _lane = self
            .chain
            .append(&mut tx, &audit)
            .await
            .map_err(|e| Failure::Refused(reason(e)))?;
        // Failed, its outcome is unknown: a change tried again after a commit that did
        // happen would find its lease given back and answer that it was taken over.
        tx.commit().await.map_err(Failure::lost)?;
        Ok(changed)
    }
}

/// Why a batch's transaction failed.
enum Failure {
    /// The server refused a statement, which one change may cause (a value it cannot
    /// store, a deadlock with another transaction): the others may commit without it.
    Refused(String),
    /// No connection, or the commit failed: trying the changes one by one would wait
    /// for the pool once per change, or record again what may have been committed.
    Lost(String),
}

impl Failure {
    /// What a statement's error says about the batch.
    fn of(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(_) => Self::Refused(e.to_string()),
            other => Self::Lost(other.to_string()),
        }
    }

    fn lost(e: sqlx::Error) -> Self {
        Self::Lost(e.to_string())
    }

    /// The answer to a change of the batch.
    fn error(&self) -> StoreError {
        match self {
            Self::Refused(reason) | Self::Lost(reason) => database(reason),
        }
    }
}

fn database(reason: &str) -> StoreError {
    StoreError::Database(reason.to_owned())
}

/// The text of a store error, as [`StoreError::Database`] holds it.
fn reason(e: StoreError) -> String {
    match e {
        StoreError::Database(reason) => reason,
        other => other.to_string(),
    }
}

/// Change `n` (counted from 1, as `WITH ORDINALITY`) changed its entry.
fn mark(changed: &mut [bool], n: i64) {
    if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| changed.get_mut(i)) {
        *slot = true;
    }
}

/// Applies `changes` to the entries their lease still holds, in one statement: each
/// changed entry's number (from 1) and, if its change [reads back](Leased::reads_back),
/// the stored message.
async fn update<'c, E>(
    executor: E,
    changes: &[Leased],
) -> Result<Vec<(i64, Option<Vec<u8>>)>, Failure>
where
    E: Executor<'c, Database = Postgres>,
{
    let column = |f: fn(&Leased) -> Option<String>| changes.iter().map(f).collect::<Vec<_>>();
    sqlx::query_as(
        "UPDATE deliveries d
         SET step = COALESCE(u.step, d.step),
             sealed = COALESCE(u.sealed, d.sealed),
             sent_xml = COALESCE(u.sent_xml, d.sent_xml),
             last_error = u.last_error,
             attempts = d.attempts + u.attempts,
             due_at = COALESCE(u.due_at, d.due_at),
             lease_owner = CASE WHEN u.release THEN NULL ELSE d.lease_owner END,
             lease_until = CASE WHEN u.release THEN NULL ELSE d.lease_until END,
             delivered_at = COALESCE(u.delivered_at, d.delivered_at)
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[],
                     $7::bigint[], $8::bigint[], $9::bool[], $10::text[], $11::bool[],
                     $12::text[])
              WITH ORDINALITY
              AS u(application_id, procedure_id, lease_owner, step, sealed, last_error,
                   attempts, due_at, release, delivered_at, reads_back, sent_xml, n)
         WHERE d.application_id = u.application_id AND d.procedure_id = u.procedure_id
           AND d.lease_owner = u.lease_owner
         RETURNING u.n, CASE WHEN u.reads_back THEN d.sealed END",
    )
    // Planned for each batch, not once per connection: a plan made while the table was
    // small (a hash join over a scan of every entry) would otherwise be kept as the
    // table grows. Planning costs little next to a batch.
    .persistent(false)
    .bind(column(|c| Some(c.application_id.to_string())))
    .bind(column(|c| Some(c.procedure_id.clone())))
    .bind(column(|c| Some(c.lease.clone())))
    .bind(column(|c| c.step.map(str::to_owned)))
    .bind(
        changes
            .iter()
            .map(|c| c.sealed.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(column(|c| c.last_error.clone()))
    .bind(changes.iter().map(|c| c.attempts).collect::<Vec<_>>())
    .bind(changes.iter().map(|c| c.due_at).collect::<Vec<_>>())
    .bind(changes.iter().map(|c| c.release).collect::<Vec<_>>())
    .bind(column(|c| c.delivered_at.clone()))
    .bind(changes.iter().map(Leased::reads_back).collect::<Vec<_>>())
    .bind(column(|c| c.sent_xml.clone()))
    .fetch_all(executor)
    .await
    .map_err(Failure::of)
}

/// The applications' new status and their history entries (stamped `at`), in one
/// statement, in the order of `audit`. An application changed twice in one batch (two
/// procedures) ends at its last change.
async fn change_statuses(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    at: &str,
    audit: &[(String, Change)],
) -> Result<(), Failure> {
    sqlx::query(
        "WITH u AS (
             SELECT * FROM UNNEST($2::text[], $3::text[], $4::text[]) WITH ORDINALITY
                 AS u(application_id, status, detail, n)
         ),
         changed AS (
             UPDATE applications a SET status = l.status, updated_at = $1
             FROM (SELECT DISTINCT ON (application_id) application_id, status
                   FROM u ORDER BY application_id, n DESC) l
             WHERE a.id = l.application_id
         )
         INSERT INTO history (application_id, at, status, detail)
         SELECT application_id, $1, status, detail FROM u ORDER BY n",
    )
    // As the UPDATE of the entries: planned with the batch's size and the tables' own.
    .persistent(false)
    .bind(at)
    .bind(
        audit
            .iter()
            .map(|(_, c)| c.application_id.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(
        audit
            .iter()
            .map(|(_, c)| c.status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        audit
            .iter()
            .map(|(_, c)| c.detail.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await
    .map_err(Failure::of)?;
    Ok(())
}
