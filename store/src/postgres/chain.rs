//! This instance's audit chains on PostgreSQL: their ends kept in memory, each chain's
//! appends ordered in-process, and guarded in the database against another process
//! appending to the same chain (two instances misconfigured with one instance id).
//!
//! A state change's transaction collects its audit entries and appends them all in one
//! statement just before it commits ([`Chains::append`]). That statement moves the
//! chain's row in `audit_chains` from the seq this process expects to the new end and
//! inserts the entries; its condition means an end that moved under us (a transaction
//! of ours that rolled back after appending, or another process on the same chain)
//! writes nothing: the end is read again from the database and the entries linked anew.
//!
//! A chain's row stays locked from the append until the commit, so one chain takes one
//! commit at a time. So that an instance's transactions still commit concurrently (and
//! PostgreSQL flushes their commits together), an instance has one chain per connection
//! of its pool, its lanes: the instance's id for the first, `<id>/<n>` for the others. A
//! transaction takes a free lane for its append and keeps it until it has committed or
//! rolled back: it never waits for a row lock of its own instance, and only waits for a
//! lane when every lane is between append and commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Postgres, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::Sql;
use crate::shared::history::Change;
use kopplung_core::audit::{AuditEntry, GENESIS_HASH, chain_end};
use kopplung_core::store::StoreError;

/// How often an append is linked anew after the chain's end moved under it. Once is
/// what a rolled-back transaction of ours costs; more means another process appends to
/// this chain as fast as we do (a misconfiguration: two processes with one instance id).
/// Between attempts a random pause up to [`PAUSE_MICROS`] times the attempt, so that two
/// such processes stop meeting at the same moment; the error names the cause if they do.
const ATTEMPTS: usize = 8;
const PAUSE_MICROS: u64 = 500;

/// What receives the time a state change waited for its chain (seconds).
pub type LockWaitObserver = Box<dyn Fn(Duration) + Send + Sync>;

/// The end of the chain as this process knows it.
#[derive(Debug, Clone)]
struct End {
    /// The seq the chain's row in `audit_chains` holds (the highest issued).
    issued: i64,
    /// What the next entry links to (`None`: genesis).
    link: Option<(i64, String)>,
}

/// One lane: a chain and its end as this process knows it (`None` until read from the
/// database, and again after the end moved under us).
struct Lane {
    id: String,
    end: Arc<Mutex<Option<End>>>,
}

/// A lane taken by a transaction, until it has committed or rolled back.
pub(crate) struct Taken {
    _end: OwnedMutexGuard<Option<End>>,
}

pub(crate) struct Chains {
    lanes: Vec<Lane>,
    /// Where a transaction that finds every lane taken waits (round robin).
    next: AtomicUsize,
    observer: OnceLock<LockWaitObserver>,
}

impl std::fmt::Debug for Chains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chains")
            .field("lanes", &self.lanes.len())
            .finish_non_exhaustive()
    }
}

impl Chains {
    /// The `lanes` chains of `instance` (at least one).
    pub(crate) fn new(instance: &str, lanes: usize) -> Arc<Self> {
        let lanes = (0..lanes.max(1))
            .map(|n| Lane {
                id: if n == 0 {
                    instance.to_owned()
                } else {
                    format!("{instance}/{n}")
                },
                end: Arc::new(Mutex::new(None)),
            })
            .collect();
        Arc::new(Self {
            lanes,
            next: AtomicUsize::new(0),
            observer: OnceLock::new(),
        })
    }

    /// Sets what receives lock waits (once; later calls are ignored).
    pub(crate) fn observe(&self, observer: LockWaitObserver) {
        let _ = self.observer.set(observer);
    }

    /// A free lane, the first in order (so that one writer at a time always uses the
    /// first chain), or, if all are taken, the next in turn once it is free.
    async fn take(&self) -> (&Lane, OwnedMutexGuard<Option<End>>) {
        for lane in &self.lanes {
            if let Ok(end) = lane.end.clone().try_lock_owned() {
                return (lane, end);
            }
        }
        let lane = &self.lanes[self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len()];
        (lane, lane.end.clone().lock_owned().await)
    }

    /// Appends the audit entries of `changes` (each stamped with its `at`) to a lane
    /// inside `tx`, which must commit right after and keep the returned lane until then.
    pub(crate) async fn append(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        changes: &[(String, Change)],
    ) -> Result<Option<Taken>, StoreError> {
        if changes.is_empty() {
            return Ok(None);
        }
        // What this append waits: for a lane, and in attempts that found the chain's end
        // moved (a rollback of ours, or another process on the chain, whose commit a
        // statement waits for). Its own statement's round trip is no wait.
        let asked = Instant::now();
        let (lane, mut end) = self.take().await;
        let mut waited = asked.elapsed();
        for tried in 1..=ATTEMPTS as u64 {
            let attempt = Instant::now();
            let known = match end.take() {
                Some(known) => known,
                None => read_end(tx, &lane.id).await?,
            };
            let mut link = known.link.clone();
            let entries: Vec<AuditEntry> = changes
                .iter()
                .map(|(at, change)| {
                    let entry = change.audit_entry_in(&lane.id, link.take(), at);
                    link = Some((entry.seq, entry.hash.clone()));
                    entry
                })
                .collect();
            if insert(tx, &lane.id, known.issued, &entries).await? {
                // Each state change waited alike (a batch of the outbox's writer appends
                // many at once): one observation each, as if appended on its own.
                if let Some(observer) = self.observer.get() {
                    for _ in changes {
                        observer(waited);
                    }
                }
                *end = entries.last().map(|last| End {
                    issued: last.seq,
                    link: Some((last.seq, last.hash.clone())),
                });
                return Ok(Some(Taken { _end: end }));
            }
            // Moved under us: `end` stays empty and is read again, after a pause (none
            // after the last attempt: the error follows).
            if tried < ATTEMPTS as u64 {
                let pause = rand::random_range(0..PAUSE_MICROS) * tried;
                tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
            }
            waited += attempt.elapsed();
        }
        Err(StoreError::Database(format!(
            "the audit chain {} keeps moving under this instance: does another process run with the same instance id?",
            lane.id
        )))
    }
}

/// The end of `chain` from the database ([`chain_end`]: the highest seq issued, linked to
/// the last entry left), its row made if it has none yet.
async fn read_end(tx: &mut Transaction<'static, Postgres>, chain: &str) -> Result<End, StoreError> {
    sqlx::query(
        "INSERT INTO audit_chains (chain, seq, hash) VALUES ($1, 0, $2)
             ON CONFLICT (chain) DO NOTHING",
    )
    .bind(chain)
    .bind(GENESIS_HASH)
    .execute(&mut **tx)
    .await
    .sql()?;
    let (last_seq, last_hash, issued): (Option<i64>, Option<String>, i64) = sqlx::query_as(
        "SELECT (SELECT seq FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1),
                    (SELECT hash FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1),
                    (SELECT seq FROM audit_chains WHERE chain = $1)",
    )
    .bind(chain)
    .fetch_one(&mut **tx)
    .await
    .sql()?;
    Ok(End {
        issued,
        link: chain_end(last_seq, last_hash, Some(issued)),
    })
}

/// Moves the chain's row from `issued` to the last of `entries` and inserts them, in one
/// statement; false (nothing written) if the row no longer holds `issued`.
async fn insert(
    tx: &mut Transaction<'static, Postgres>,
    chain: &str,
    issued: i64,
    entries: &[AuditEntry],
) -> Result<bool, StoreError> {
    let Some(last) = entries.last() else {
        return Ok(true);
    };
    let column = |f: fn(&AuditEntry) -> Option<String>| entries.iter().map(f).collect::<Vec<_>>();
    let inserted = sqlx::query(
        "WITH moved AS (
           UPDATE audit_chains SET seq = $3, hash = $4 WHERE chain = $1 AND seq = $2
           RETURNING chain)
         INSERT INTO audit_log (chain, seq, version, application_id, at, status, detail,
                                message_sha256, content_sha256, prev_hash, hash)
         SELECT moved.chain, e.* FROM moved,
           UNNEST($5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[],
                  $11::text[], $12::text[], $13::text[], $14::text[])
           AS e(seq, version, application_id, at, status, detail, message_sha256,
                content_sha256, prev_hash, hash)",
    )
    .bind(chain)
    .bind(issued)
    .bind(last.seq)
    .bind(&last.hash)
    .bind(entries.iter().map(|e| e.seq).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.version).collect::<Vec<_>>())
    .bind(column(|e| Some(e.application_id.clone())))
    .bind(column(|e| Some(e.at.clone())))
    .bind(column(|e| Some(e.status.clone())))
    .bind(column(|e| Some(e.detail.clone())))
    .bind(column(|e| e.message_sha256.clone()))
    .bind(column(|e| e.content_sha256.clone()))
    .bind(column(|e| Some(e.prev_hash.clone())))
    .bind(column(|e| Some(e.hash.clone())))
    .execute(&mut **tx)
    .await
    .sql()?;
    Ok(inserted.rows_affected() == entries.len() as u64)
}
