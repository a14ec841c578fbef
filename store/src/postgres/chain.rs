//! This instance's audit chain on PostgreSQL: its end kept in memory, its appends
//! ordered in-process, and guarded in the database against another process appending
//! to the same chain (two instances misconfigured with one instance id).
//!
//! A state change's transaction collects its audit entries and appends them all in one
//! statement just before it commits ([`Chain::append`]). That statement moves the chain's
//! row in `audit_chains` from the seq this process expects to the new end and inserts
//! the entries: the row lock it takes orders the chain's transactions (the next append
//! waits for this one's commit, only ever behind the same instance's work), and its
//! condition means an end that moved under us (a transaction of ours that rolled back
//! after appending, or another process on the same chain) writes nothing: the end is
//! read again from the database and the entries linked anew. The in-process lock is held
//! only for that one statement, so that the chain's appends reach the database in the
//! order their seqs were issued.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Postgres, Transaction};
use tokio::sync::Mutex;

use crate::Sql;
use crate::shared::history::Change;
use kopplung_core::audit::{AuditEntry, GENESIS_HASH, chain_end};
use kopplung_core::store::StoreError;

/// How often an append is linked anew after the chain's end moved under it. Once is
/// what a rolled-back transaction of ours costs; more means another process appends to
/// this chain as fast as we do.
const ATTEMPTS: usize = 4;

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

pub(crate) struct Chain {
    id: String,
    /// `None` until read from the database (and again after the end moved under us).
    end: Mutex<Option<End>>,
    observer: OnceLock<LockWaitObserver>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Chain {
    pub(crate) fn new(id: &str) -> Arc<Self> {
        Arc::new(Self {
            id: id.to_owned(),
            end: Mutex::new(None),
            observer: OnceLock::new(),
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Sets what receives lock waits (once; later calls are ignored).
    pub(crate) fn observe(&self, observer: LockWaitObserver) {
        let _ = self.observer.set(observer);
    }

    /// Appends the audit entries of `changes` (each stamped with its `at`) to the
    /// chain inside `tx`, which must commit right after (it holds the chain's row).
    pub(crate) async fn append(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        changes: &[(String, Change)],
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let waiting = Instant::now();
        let mut end = self.end.lock().await;
        for _ in 0..ATTEMPTS {
            let known = match end.take() {
                Some(known) => known,
                None => self.read_end(tx).await?,
            };
            let mut link = known.link.clone();
            let entries: Vec<AuditEntry> = changes
                .iter()
                .map(|(at, change)| {
                    let entry = change.audit_entry_in(&self.id, link.take(), at);
                    link = Some((entry.seq, entry.hash.clone()));
                    entry
                })
                .collect();
            if insert(tx, &self.id, known.issued, &entries).await? {
                if let Some(observer) = self.observer.get() {
                    observer(waiting.elapsed());
                }
                *end = entries.last().map(|last| End {
                    issued: last.seq,
                    link: Some((last.seq, last.hash.clone())),
                });
                return Ok(());
            }
            // Moved under us: `end` stays empty and is read again.
        }
        Err(StoreError::Database(format!(
            "the audit chain {} keeps moving under this instance: does another process run with the same instance id?",
            self.id
        )))
    }

    /// The chain's end from the database ([`chain_end`]: the highest seq issued, linked
    /// to the last entry left), its row made if it has none yet.
    async fn read_end(&self, tx: &mut Transaction<'static, Postgres>) -> Result<End, StoreError> {
        sqlx::query(
            "INSERT INTO audit_chains (chain, seq, hash) VALUES ($1, 0, $2)
             ON CONFLICT (chain) DO NOTHING",
        )
        .bind(&self.id)
        .bind(GENESIS_HASH)
        .execute(&mut **tx)
        .await
        .sql()?;
        let (last_seq, last_hash, issued): (Option<i64>, Option<String>, i64) = sqlx::query_as(
            "SELECT (SELECT seq FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1),
                    (SELECT hash FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1),
                    (SELECT seq FROM audit_chains WHERE chain = $1)",
        )
        .bind(&self.id)
        .fetch_one(&mut **tx)
        .await
        .sql()?;
        Ok(End {
            issued,
            link: chain_end(last_seq, last_hash, Some(issued)),
        })
    }
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
