//! Group commit for the SQLite store: durability without one fsync per state change.
//!
//! SQLite has one writer at a time, and with `synchronous = FULL` every COMMIT waits for
//! the disk. Under load the writers would queue for the disk one by one. Instead they
//! share one open `BEGIN IMMEDIATE` transaction: each writer runs its statements inside
//! its own SAVEPOINT (so a failing one is rolled back alone), releases it, and then waits
//! until the shared transaction is committed. A committer task commits it as soon as
//! the writers that were already waiting have had their turn (the lock is fair, first
//! come first served), so a batch is what arrived during one disk write, and a writer
//! on an idle hub waits for one COMMIT as before. Nobody returns before its changes are
//! on disk, and if the COMMIT fails every writer of that batch gets the error: nothing
//! of theirs is kept.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{Mutex, Notify, OwnedMappedMutexGuard, OwnedMutexGuard, watch};

use super::StoreError;

/// Outcomes kept for writers that look late; far more than can wait at once.
const OUTCOMES_KEPT: usize = 4096;

/// What the lock guards.
struct Batch {
    /// The shared transaction, while one is open.
    tx: Option<Transaction<'static, Sqlite>>,
    /// Counts the shared transactions; a writer waits for the outcome of its own.
    epoch: u64,
}

/// What writers and the committer share besides the lock. The counters change only
/// while the lock is held; they are atomics so that a writer holding the lock through
/// its transaction (not the whole batch) can reach them.
struct Shared {
    /// Writers whose savepoint was released into the open transaction.
    members: AtomicUsize,
    /// A writer gave up (dropped) inside its savepoint: roll back to it first.
    rollback_pending: AtomicBool,
    outcomes: Outcomes,
    wake: Notify,
}

struct Outcomes {
    results: std::sync::Mutex<BTreeMap<u64, Result<(), String>>>,
    committed: watch::Sender<u64>,
}

impl Outcomes {
    fn publish(&self, epoch: u64, result: Result<(), String>) {
        if let Ok(mut results) = self.results.lock() {
            results.insert(epoch, result);
            while results.len() > OUTCOMES_KEPT {
                results.pop_first();
            }
        }
        self.committed.send_replace(epoch);
    }

    fn get(&self, epoch: u64) -> Option<Result<(), String>> {
        self.results.lock().ok()?.get(&epoch).cloned()
    }
}

#[derive(Clone)]
pub(super) struct GroupWriter {
    pool: SqlitePool,
    batch: Arc<Mutex<Batch>>,
    shared: Arc<Shared>,
}

impl GroupWriter {
    /// Starts the committer task (so: inside a Tokio runtime).
    pub(super) fn new(pool: SqlitePool) -> Self {
        let (committed, _) = watch::channel(0);
        let writer = Self {
            pool,
            batch: Arc::new(Mutex::new(Batch { tx: None, epoch: 0 })),
            shared: Arc::new(Shared {
                members: AtomicUsize::new(0),
                rollback_pending: AtomicBool::new(false),
                outcomes: Outcomes {
                    results: std::sync::Mutex::new(BTreeMap::new()),
                    committed,
                },
                wake: Notify::new(),
            }),
        };
        let committer = writer.clone();
        tokio::spawn(async move {
            loop {
                committer.shared.wake.notified().await;
                // Queued behind the writers already waiting: they join this batch.
                let mut batch = committer.batch.lock().await;
                committer.finish(&mut batch).await;
            }
        });
        writer
    }

    /// A write transaction of its own, as far as the caller can tell: a savepoint in
    /// the shared transaction. [`WriteTx::commit`] returns once it is on disk.
    pub(super) async fn begin(&self) -> Result<WriteTx, StoreError> {
        let mut batch = self.batch.clone().lock_owned().await;
        self.undo_abandoned(&mut batch).await;
        if batch.tx.is_none() {
            batch.tx = Some(self.pool.begin_with("BEGIN IMMEDIATE").await?);
            batch.epoch += 1;
        }
        let epoch = batch.epoch;
        let savepoint = match batch.tx.as_mut() {
            Some(tx) => sqlx::query("SAVEPOINT w").execute(&mut **tx).await,
            None => return Err(StoreError::Commit("no open transaction".into())),
        };
        if let Err(e) = savepoint {
            // The shared transaction is unusable: end it for everyone in it.
            self.fail(&mut batch, e.to_string());
            return Err(e.into());
        }
        let tx = OwnedMutexGuard::try_map(batch, |batch| batch.tx.as_mut())
            .map_err(|_| StoreError::Commit("no open transaction".into()))?;
        Ok(WriteTx {
            tx,
            epoch,
            shared: self.shared.clone(),
            released: false,
        })
    }

    /// Rolls back what a writer left behind when it gave up inside its savepoint.
    async fn undo_abandoned(&self, batch: &mut Batch) {
        if !self.shared.rollback_pending.swap(false, Ordering::SeqCst) {
            return;
        }
        let undone = match batch.tx.as_mut() {
            Some(tx) => sqlx::query("ROLLBACK TO w; RELEASE w")
                .execute(&mut **tx)
                .await
                .map(|_| ()),
            None => Ok(()),
        };
        if let Err(e) = undone {
            self.fail(batch, e.to_string());
        }
    }

    /// Commits the shared transaction, if one is open, and tells its writers.
    async fn finish(&self, batch: &mut Batch) {
        self.undo_abandoned(batch).await;
        let Some(tx) = batch.tx.take() else { return };
        let result = if self.shared.members.swap(0, Ordering::SeqCst) > 0 {
            tx.commit().await.map_err(|e| e.to_string())
        } else {
            tx.rollback().await.map_err(|e| e.to_string())
        };
        self.shared.outcomes.publish(batch.epoch, result);
    }

    /// Rolls the shared transaction back (dropped) and fails its writers.
    fn fail(&self, batch: &mut Batch, reason: String) {
        batch.tx = None;
        self.shared.members.store(0, Ordering::SeqCst);
        self.shared.rollback_pending.store(false, Ordering::SeqCst);
        self.shared.outcomes.publish(batch.epoch, Err(reason));
    }
}

/// One writer's part of the shared transaction: it holds the lock, mapped to the open
/// transaction. Dropped without [`WriteTx::commit`], its changes are rolled back (to
/// its savepoint) before anyone else writes.
pub(super) struct WriteTx {
    tx: OwnedMappedMutexGuard<Batch, Transaction<'static, Sqlite>>,
    epoch: u64,
    shared: Arc<Shared>,
    /// Its savepoint was released into the shared transaction.
    released: bool,
}

impl WriteTx {
    /// Keeps the changes and waits until they are committed (on disk).
    pub(super) async fn commit(mut self) -> Result<(), StoreError> {
        // On an error the savepoint stays; dropping `self` has it rolled back.
        sqlx::query("RELEASE w").execute(&mut **self.tx).await?;
        self.released = true;
        self.shared.members.fetch_add(1, Ordering::SeqCst);
        let (epoch, shared) = (self.epoch, self.shared.clone());
        let mut committed = shared.outcomes.committed.subscribe();
        // Lets the next writer in; the committer comes after those already waiting.
        drop(self);
        committed
            .wait_for(|done| *done >= epoch)
            .await
            .map_err(|_| StoreError::Commit("the committer stopped".into()))?;
        match shared.outcomes.get(epoch) {
            Some(Ok(())) => Ok(()),
            Some(Err(reason)) => Err(StoreError::Commit(reason)),
            None => Err(StoreError::Commit("the outcome was not kept".into())),
        }
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.released {
            self.shared.rollback_pending.store(true, Ordering::SeqCst);
        }
        // The lock is released right after, when the guard field drops.
        self.shared.wake.notify_one();
    }
}
