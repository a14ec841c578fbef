//! Group commit for the SQLite store: one writer thread, durability without one fsync
//! and one thread hand-off per statement.
//!
//! SQLite has one writer at a time, and with `synchronous = FULL` every COMMIT waits for
//! the disk. Every state change therefore goes to one thread that owns the write
//! connection. It takes all writes that are waiting, opens one `BEGIN IMMEDIATE`
//! transaction, runs each write in its own SAVEPOINT (a failing one is rolled back
//! alone), commits once, and only then answers the writers: a batch is what arrived
//! during the previous disk write, and on an idle hub a write waits for one COMMIT as
//! before. Nobody is answered before its changes are on disk, and if the COMMIT fails
//! every writer of that batch gets the error: nothing of theirs is kept.
//!
//! A write is a closure that runs on this thread with the connection, so that all of its
//! statements cost one hand-off between threads instead of one each (sqlx runs every
//! SQLite statement on a worker thread; under load those hand-offs were half of the
//! hub's CPU time). Reads stay on the sqlx pool: in WAL mode they never wait for it.
//!
//! The writer also keeps the end of the audit chain in memory: it is the chain's only
//! writer (one hub per data directory, enforced by the lock file), so reading the last
//! entry back for every state change is not needed. A rolled-back savepoint restores it,
//! a failed COMMIT forgets it (it is read again).

use crate::Sql;
use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use kopplung_core::Clock;
use kopplung_core::audit::chain_end;
use kopplung_core::store::StoreError;
use std::sync::Arc;

/// Writes in one transaction at most: keeps a batch's COMMIT and its memory bounded.
const MAX_BATCH: usize = 256;

/// The end of the audit chain: `None` before the first entry, else the highest sequence
/// number issued and the hash to link to (see [`WriteTx::audit_head`]).
type AuditHead = Option<(i64, String)>;

/// One write's part of the shared transaction, as its closure sees it: the connection
/// (through `Deref`) and the audit chain's end.
pub(super) struct WriteTx<'c> {
    conn: &'c Connection,
    audit_head: &'c mut Option<AuditHead>,
    clock: &'c dyn Clock,
    discard: bool,
}

impl WriteTx<'_> {
    /// Now, by the store's clock: every time a write stamps.
    pub(super) fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Rolls this write's changes back, although it answers `Ok` (e.g. "this upload
    /// belongs to another application": the answer is a value, nothing may be kept).
    pub(super) fn discard(&mut self) {
        self.discard = true;
    }

    /// The sequence number and hash the next audit entry links to ([`chain_end`]),
    /// read from the database the first time.
    pub(super) fn audit_head(&mut self) -> Result<AuditHead, StoreError> {
        if let Some(head) = self.audit_head.as_ref() {
            return Ok(head.clone());
        }
        let (last_seq, last_hash, issued): (Option<i64>, Option<String>, Option<i64>) = self
            .conn
            .query_row(
                "SELECT (SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1),
                        (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),
                        (SELECT seq FROM sqlite_sequence WHERE name = 'audit_log')",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .sql()?;
        let head = chain_end(last_seq, last_hash, issued);
        *self.audit_head = Some(head.clone());
        Ok(head)
    }

    /// Notes the entry just appended as the chain's end.
    pub(super) fn set_audit_head(&mut self, seq: i64, hash: String) {
        *self.audit_head = Some(Some((seq, hash)));
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// What waits for the writer thread.
enum Work {
    Write(Box<dyn Job>),
    /// A read on the writer's connection, outside any transaction (committed data).
    Read(Box<dyn FnOnce(&Connection) + Send>),
}

/// A write waiting for the writer thread.
trait Job: Send {
    /// Runs the write inside its savepoint. `Some` if its changes are kept: then it is
    /// answered after the COMMIT. Otherwise it has been answered already.
    fn run(self: Box<Self>, tx: &mut WriteTx<'_>) -> Option<Box<dyn Kept>>;
    /// Answers without running (the shared transaction could not be started).
    fn refuse(self: Box<Self>, error: StoreError);
    /// Whether it runs in a savepoint of its own (see
    /// [`GroupWriter::write_without_savepoint`]).
    fn savepoint(&self) -> bool;
}

/// A write whose changes wait for the COMMIT.
trait Kept: Send {
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Write<F, T> {
    work: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    savepoint: bool,
}

struct Done<T> {
    value: T,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Job for Write<F, T>
where
    F: FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, tx: &mut WriteTx<'_>) -> Option<Box<dyn Kept>> {
        let Self { work, reply, .. } = *self;
        match work(tx) {
            Ok(value) if !tx.discard => Some(Box::new(Done { value, reply })),
            // Rolled back by the writer; the caller has its answer (a gone caller is
            // no error: it gave up waiting).
            outcome => {
                tx.discard = true;
                let _ = reply.send(outcome);
                None
            }
        }
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }

    fn savepoint(&self) -> bool {
        self.savepoint
    }
}

impl<T: Send + 'static> Kept for Done<T> {
    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let Self { value, reply } = *self;
        let _ = reply.send(committed.map(|()| value));
    }
}

/// The handle to the writer thread; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub(super) struct GroupWriter {
    jobs: mpsc::UnboundedSender<Work>,
}

impl GroupWriter {
    /// Opens the write connection to `path` (migrated already) and starts its thread.
    /// `read_only`: a store for inspection beside a running hub; every write fails.
    pub(super) fn start(
        path: &Path,
        read_only: bool,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(path, flags).sql()?;
        conn.busy_timeout(Duration::from_secs(10)).sql()?;
        if !read_only {
            // Per connection: the journal mode is the file's (WAL, set by the pool).
            conn.pragma_update(None, "synchronous", "FULL").sql()?;
        }
        conn.pragma_update(None, "foreign_keys", "ON").sql()?;
        // The savepoints' journal (pages changed earlier in the batch) stays in memory
        // instead of spilling into a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY").sql()?;
        conn.set_prepared_statement_cache_capacity(128);
        // Plans that do not depend on the bound values: otherwise a statement whose
        // `LIMIT ?` (the outbox claim) gets a new value is parsed and planned again on
        // every run (sqlite3Reprepare was 7 % of this thread, docs/performance.md).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .sql()?;
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("kopplung-sqlite-writer".into())
            .spawn(move || run(conn, queue, clock))
            .map_err(|e| StoreError::Io(path.to_owned(), e))?;
        Ok(Self { jobs })
    }

    /// Runs `work` as one write (its own savepoint in the shared transaction) and
    /// returns its value once the transaction is committed, i.e. on disk. An `Err` from
    /// `work`, or [`WriteTx::discard`], rolls its changes back.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.send(work, true).await
    }

    async fn send<T, F>(&self, work: F, savepoint: bool) -> Result<T, StoreError>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Work::Write(Box::new(Write {
                work,
                reply,
                savepoint,
            })))
            .map_err(|_| StoreError::Commit("the store's writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Commit("the store's writer stopped".into()))?
    }

    /// Like [`GroupWriter::write`], but without a savepoint of its own, for writes that
    /// fail only when the database does (a state change under a lease, a claim, an
    /// application without uploads): a savepoint copies every page the write touches
    /// first, the largest part of a small write's cost. If such a write fails anyway,
    /// the whole batch is rolled back and every write in it refused: nothing is kept
    /// half.
    pub(super) async fn write_without_savepoint<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.send(work, false).await
    }

    /// Runs `read` on the writer's connection between two batches: it sees committed
    /// data only. For the outbox's reads, one hand-off each like a write instead of one
    /// per statement through sqlx; it does not wait for a COMMIT.
    pub(super) async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Work::Read(Box::new(move |conn: &Connection| {
                let _ = reply.send(read(conn));
            })))
            .map_err(|_| StoreError::Commit("the store's writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Commit("the store's writer stopped".into()))?
    }
}

/// The writer thread: batch after batch until every handle is gone.
fn run(conn: Connection, mut queue: mpsc::UnboundedReceiver<Work>, clock: Arc<dyn Clock>) {
    let mut audit_head: Option<AuditHead> = None;
    let mut last_batch = 0;
    while let Some(first) = queue.blocking_recv() {
        let mut batch = Vec::new();
        take_waiting(&conn, &mut queue, first, &mut batch);
        // Under load (the last batch shared its commit), a small batch waits a moment
        // for more writes: a commit costs a disk flush and rewrites the same index
        // pages whether it carries two writes or twenty (docs/performance.md).
        if last_batch > 1 && batch.len() < GATHER_BELOW {
            std::thread::sleep(GATHER_FOR);
            if let Ok(more) = queue.try_recv() {
                take_waiting(&conn, &mut queue, more, &mut batch);
            }
        }
        last_batch = batch.len();
        if !batch.is_empty() {
            write_batch(&conn, &mut audit_head, clock.as_ref(), batch);
        }
    }
}

/// A small batch under load waits this long for more writes before it commits.
const GATHER_FOR: Duration = Duration::from_micros(300);
/// ... if it holds fewer writes than this.
const GATHER_BELOW: usize = 16;

/// Runs the reads and gathers the writes waiting, starting with `first`, into `batch`
/// (up to [`MAX_BATCH`]).
fn take_waiting(
    conn: &Connection,
    queue: &mut mpsc::UnboundedReceiver<Work>,
    first: Work,
    batch: &mut Vec<Box<dyn Job>>,
) {
    let mut next = Some(first);
    while let Some(work) = next.take() {
        match work {
            // A panicking read only loses its own answer.
            Work::Read(read) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(conn)));
            }
            Work::Write(job) => batch.push(job),
        }
        if batch.len() < MAX_BATCH {
            next = queue.try_recv().ok();
        }
    }
}

/// One shared transaction for `batch`.
fn write_batch(
    conn: &Connection,
    audit_head: &mut Option<AuditHead>,
    clock: &dyn Clock,
    batch: Vec<Box<dyn Job>>,
) {
    if let Err(e) = execute(conn, "BEGIN IMMEDIATE") {
        let reason = e.to_string();
        for job in batch {
            job.refuse(StoreError::Commit(reason.clone()));
        }
        return;
    }
    let mut kept: Vec<Box<dyn Kept>> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut broken = None;
    for job in jobs.by_ref() {
        let savepoint = job.savepoint();
        if savepoint && let Err(e) = execute(conn, "SAVEPOINT w") {
            broken = Some((e.to_string(), Some(job)));
            break;
        }
        let head_before = audit_head.clone();
        let mut tx = WriteTx {
            conn,
            audit_head,
            clock,
            discard: false,
        };
        // A panicking write is rolled back alone; its caller learns that the writer
        // dropped its answer.
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&mut tx)))
            .unwrap_or_else(|_| {
                tx.discard = true;
                None
            });
        let discard = tx.discard;
        if !savepoint {
            kept.extend(done);
            if discard {
                // Its changes cannot be rolled back alone (it has answered already).
                broken = Some(("another write of the batch failed".to_owned(), None));
                break;
            }
            continue;
        }
        let ended = if discard {
            *audit_head = head_before;
            execute(conn, "ROLLBACK TO w").and_then(|()| execute(conn, "RELEASE w"))
        } else {
            execute(conn, "RELEASE w")
        };
        kept.extend(done);
        if let Err(e) = ended {
            broken = Some((e.to_string(), None));
            break;
        }
    }
    let committed = match broken {
        None => execute(conn, "COMMIT").map_err(|e| e.to_string()),
        Some((reason, job)) => {
            // The shared transaction is unusable: nothing of this batch is kept.
            if let Some(job) = job {
                job.refuse(StoreError::Commit(reason.clone()));
            }
            for job in jobs {
                job.refuse(StoreError::Commit(reason.clone()));
            }
            Err(reason)
        }
    };
    if committed.is_err() {
        // A failed COMMIT (full disk, I/O error) may leave the transaction open.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        *audit_head = None;
    }
    for job in kept {
        job.answer(committed.clone().map_err(StoreError::Commit));
    }
}

/// Runs one statement without parameters, prepared once (a batch runs these hundreds of
/// times).
fn execute(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with just what the writer needs: the audit chain and a table to
    /// write to, with a constraint to break.
    fn database() -> (tempfile::TempDir, GroupWriter) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = dir.path().join("kopplung.db");
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("open: {e}"));
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL);
             CREATE TABLE t (x INTEGER NOT NULL UNIQUE);",
        )
        .unwrap_or_else(|e| panic!("schema: {e}"));
        drop(conn);
        let writer = start(&dir, false);
        (dir, writer)
    }

    /// A writer on the database in `dir`, as a hub (or a reader) starting on it.
    fn start(dir: &tempfile::TempDir, read_only: bool) -> GroupWriter {
        GroupWriter::start(
            &dir.path().join("kopplung.db"),
            read_only,
            Arc::new(kopplung_core::SystemClock),
        )
        .unwrap_or_else(|e| panic!("start: {e}"))
    }

    /// Appends an audit entry as the store does, then inserts `x`.
    fn append_and_insert(tx: &mut WriteTx<'_>, x: i64) -> Result<(i64, String), StoreError> {
        let seq = tx.audit_head()?.map_or(1, |(seq, _)| seq + 1);
        let hash = format!("h{seq}-{x}");
        tx.execute(
            "INSERT INTO audit_log (seq, hash) VALUES (?1, ?2)",
            rusqlite::params![seq, hash],
        )
        .sql()?;
        tx.set_audit_head(seq, hash.clone());
        tx.execute("INSERT INTO t (x) VALUES (?1)", [x]).sql()?;
        Ok((seq, hash))
    }

    async fn rows(writer: &GroupWriter) -> Vec<(i64, String)> {
        writer
            .read(|conn| {
                let mut query = conn
                    .prepare("SELECT seq, hash FROM audit_log ORDER BY seq")
                    .sql()?;
                let rows = query
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .sql()?
                    .collect::<Result<Vec<_>, _>>()
                    .sql()?;
                Ok(rows)
            })
            .await
            .unwrap_or_else(|e| panic!("read: {e}"))
    }

    #[tokio::test]
    async fn a_failing_write_is_rolled_back_alone_with_its_audit_entry() {
        let (_dir, writer) = database();
        // Queued together, so that they usually share one transaction; the outcome
        // must not depend on it.
        let (first, failing, discarded, last) = tokio::join!(
            writer.write(|tx| append_and_insert(tx, 1)),
            // Its audit entry is written, then its insert breaks the constraint.
            writer.write(|tx| append_and_insert(tx, 1)),
            writer.write(|tx| {
                let appended = append_and_insert(tx, 3)?;
                tx.discard();
                Ok(appended)
            }),
            writer.write(|tx| append_and_insert(tx, 2)),
        );
        assert_eq!(first.ok(), Some((1, "h1-1".to_owned())));
        assert!(failing.is_err(), "the duplicate was kept: {failing:?}");
        // A discarded write answers its value, but keeps nothing.
        assert_eq!(discarded.ok(), Some((2, "h2-3".to_owned())));
        // The chain continues from the last entry kept, not from a rolled-back one.
        assert_eq!(last.ok(), Some((2, "h2-2".to_owned())));
        assert_eq!(
            rows(&writer).await,
            vec![(1, "h1-1".to_owned()), (2, "h2-2".to_owned())]
        );
        let kept: Vec<i64> = writer
            .read(|conn| {
                let mut query = conn.prepare("SELECT x FROM t ORDER BY x").sql()?;
                let xs = query
                    .query_map([], |row| row.get(0))
                    .sql()?
                    .collect::<Result<Vec<_>, _>>()
                    .sql()?;
                Ok(xs)
            })
            .await
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert_eq!(kept, vec![1, 2]);
    }

    // Two workers: the read that holds the writer is sent by another task while this
    // one waits for it without yielding.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_without_savepoint_rolls_the_whole_batch_back() {
        let (_dir, writer) = database();
        // Hold the writer thread in a read, so that the writes below form one batch.
        let (started, wait_started) = std::sync::mpsc::channel();
        let (release, wait_release) = std::sync::mpsc::channel::<()>();
        let held = writer.clone();
        let holding = tokio::spawn(async move {
            held.read(move |_| {
                let _ = started.send(());
                let _ = wait_release.recv();
                Ok(())
            })
            .await
        });
        wait_started
            .recv()
            .unwrap_or_else(|e| panic!("the writer did not start the read: {e}"));
        let (before, failing, after, ()) = tokio::join!(
            writer.write(|tx| append_and_insert(tx, 1)),
            // Breaks the constraint after its audit entry: cannot be undone alone.
            writer.write_without_savepoint(|tx| append_and_insert(tx, 1)),
            writer.write(|tx| append_and_insert(tx, 2)),
            async {
                let _ = release.send(());
            },
        );
        let _ = holding.await;
        assert!(before.is_err(), "kept beside a failed write: {before:?}");
        assert!(failing.is_err(), "the duplicate was kept: {failing:?}");
        assert!(after.is_err(), "kept beside a failed write: {after:?}");
        assert!(rows(&writer).await.is_empty());
        // The chain's end is the database's again.
        let next = writer.write(|tx| append_and_insert(tx, 5)).await;
        assert_eq!(next.ok(), Some((1, "h1-5".to_owned())));
    }

    #[tokio::test]
    async fn the_chain_end_is_read_from_the_database_at_first() {
        let (dir, writer) = database();
        writer
            .write(|tx| append_and_insert(tx, 1))
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
        drop(writer);
        // A new writer (a restarted hub) links to the stored end.
        let writer = start(&dir, false);
        let next = writer.write(|tx| append_and_insert(tx, 2)).await;
        assert_eq!(next.ok(), Some((2, "h2-2".to_owned())));
    }

    #[tokio::test]
    async fn a_read_only_writer_refuses_writes() {
        let (dir, writer) = database();
        drop(writer);
        let writer = start(&dir, true);
        let refused = writer.write(|tx| append_and_insert(tx, 1)).await;
        assert!(refused.is_err(), "{refused:?}");
    }

    #[tokio::test]
    async fn a_statement_is_not_planned_again_for_a_new_limit() {
        // The outbox claim binds a new LIMIT on nearly every run; SQLite would parse
        // and plan it again each time unless plans ignore the bound values.
        let (_dir, writer) = database();
        let reprepared = writer
            .read(|conn| {
                let mut query = conn.prepare("SELECT x FROM t ORDER BY x LIMIT ?1").sql()?;
                for limit in 1..=5 {
                    query.query_map([limit], |_| Ok(())).sql()?.for_each(drop);
                }
                Ok(query.get_status(rusqlite::StatementStatus::RePrepare))
            })
            .await
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert_eq!(reprepared, 0);
    }
}
