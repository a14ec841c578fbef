//! The embedded default store: one SQLite file in the data directory, WAL journal,
//! `synchronous = FULL` so that a commit is on disk before intake answers 202.
//! One hub process per data directory, enforced by a lock file.
//!
//! Every state change is a closure that runs on the store's writer thread
//! ([`crate::group`]) and appends its history entry and its audit entry (the hash chain
//! of [`kopplung_core::audit`]) in the same transaction; the writer is the chain's only writer,
//! so the chain cannot fork. Reads go through a sqlx pool and never wait for writes.

mod audit;
mod events;
mod feed;
mod intake;
mod outbox;
mod oversight;
mod pickup;
mod reads;

use crate::Sql;
use crate::shared::rows::*;
use crate::shared::{millis, rfc3339};
use kopplung_core::store::rules::{self, parse_status};
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use kopplung_core::Clock;
use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::sync::Arc;
use uuid::Uuid;

use crate::group::{GroupWriter, WriteTx};
use crate::shared::Param;
use crate::shared::history::Change;
use crate::shared::writes::{ChangedRow, Write};
use kopplung_core::audit::content;
use kopplung_core::store::{
    Accepted, IdempotencyKey, Inserted, NewApplication, PrepareInput, ReceiptOutcome,
    ReceiptRecord, Status, StoreError, StoredForm, WorkItem,
};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

pub struct SqliteStore {
    pool: SqlitePool,
    /// Every state change goes through it (group commit, see [`crate::group`]).
    writer: GroupWriter,
    /// Every time the store stamps (history, leases, receipts) is this clock's.
    clock: Arc<dyn Clock>,
    // Held for the life of the store: a second hub on the same data directory is refused.
    // `None` for a read-only store, which may run beside the hub.
    _lock: Option<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) `kopplung.db` in `data_dir` and brings its schema up to date.
    pub async fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        // Private from the start: the directory 0700, the database 0600 before SQLite
        // opens it (its -wal and -shm files take the database's mode).
        kopplung_web::files::create_private_dir(data_dir)
            .map_err(|e| StoreError::Io(data_dir.to_owned(), e))?;
        let lock_path = data_dir.join("kopplung.lock");
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| StoreError::Io(lock_path.clone(), e))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(data_dir.to_owned()));
        }
        let database = data_dir.join("kopplung.db");
        kopplung_web::files::create_private_file(&database)
            .map_err(|e| StoreError::Io(database.clone(), e))?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .sql()?
            .filename(&database)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // For reads and migrations; writes go to the writer thread.
        let pool_options = SqlitePoolOptions::new()
            .max_connections(4)
            // A COMMIT that fails with SQLITE_FULL or an I/O error (a migration on a
            // full disk) is rolled back by SQLite itself, but sqlx still counts the
            // transaction open, and the connection would refuse every later BEGIN. Such
            // a connection is closed, not reused.
            .after_release(|connection, _| {
                Box::pin(async move {
                    // Runs the rollback queued by the dropped transaction first.
                    connection.ping().await?;
                    Ok(!connection.is_in_transaction())
                })
            });
        let pool =
            crate::shared::open_pool(pool_options, options, sqlx::migrate!("./migrations/sqlite"))
                .await?;
        Ok(Self {
            writer: GroupWriter::start(&data_dir.join("kopplung.db"), false, clock.clone())?,
            clock,
            pool,
            _lock: Some(lock),
        })
    }

    /// Opens an existing `kopplung.db` in `data_dir` read-only, for inspection (e.g.
    /// `kopplung audit verify`) beside a running hub: takes no lock file, migrates
    /// nothing, creates nothing. Every state change on such a store fails.
    pub async fn open_read_only(
        data_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let path = data_dir.join("kopplung.db");
        if !path.is_file() {
            return Err(StoreError::Io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no kopplung database here"),
            ));
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .sql()?
            .filename(&path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .sql()?;
        Ok(Self {
            writer: GroupWriter::start(&path, true, clock.clone())?,
            clock,
            pool,
            _lock: None,
        })
    }

    /// Runs one statement that changes no state (no history) as one write; the rows it
    /// touched.
    async fn execute(&self, write: Write<'_>) -> Result<u64, StoreError> {
        let write = Bound::from(write);
        self.writer.write(move |tx| write.execute(tx)).await
    }

    /// Runs a state change as one write: `update`, which returns a [`ChangedRow`] if it
    /// changed an entry, then the status, history and audit entries of `change` of that
    /// row. Whether it changed an entry.
    async fn transition<F>(&self, update: Write<'_>, change: F) -> Result<bool, StoreError>
    where
        F: FnOnce(ChangedRow) -> Result<Change, StoreError> + Send + 'static,
    {
        let update = Bound::from(update);
        // Fails only when the database does (or a row it cannot read): no savepoint.
        self.writer
            .write_without_savepoint(move |tx| {
                let Some(row) = update.query_row(tx, ChangedRow::by_name)? else {
                    return Ok(false);
                };
                change_status(tx, change(row)?)?;
                Ok(true)
            })
            .await
    }
}

/// A statement written once for both backends, its parameters as values to bind on the
/// writer (owned, so that it can go there).
struct Bound {
    sql: &'static str,
    values: Vec<Value>,
}

impl From<Write<'_>> for Bound {
    fn from(write: Write<'_>) -> Self {
        let values = write
            .params
            .into_iter()
            .map(|param| match param {
                Param::Text(text) => Value::Text(text),
                Param::MaybeText(text) => text.map_or(Value::Null, Value::Text),
                Param::Integer(n) => Value::Integer(n),
                Param::MaybeInteger(n) => n.map_or(Value::Null, Value::Integer),
                Param::Blob(bytes) => Value::Blob(bytes.to_vec()),
            })
            .collect();
        Self {
            sql: write.sql,
            values,
        }
    }
}

impl Bound {
    /// Runs it; the rows it touched.
    fn execute(self, tx: &WriteTx<'_>) -> Result<u64, StoreError> {
        let touched = tx
            .prepare_cached(self.sql)
            .sql()?
            .execute(rusqlite::params_from_iter(self.values))
            .sql()?;
        Ok(touched as u64)
    }

    /// Runs it; the row it returned (read by `read`), if any.
    fn query_row<T>(
        self,
        tx: &WriteTx<'_>,
        read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        tx.prepare_cached(self.sql)
            .sql()?
            .query_row(rusqlite::params_from_iter(self.values), read)
            .optional()
            .sql()
    }
}

/// A shared row struct (sqlx reads them on the pool) read from a rusqlite row of the
/// writer's connection.
trait ByName: Sized {
    fn by_name(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// [`ByName`] for row structs, each field from the column of its name.
macro_rules! by_name {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {$(
        impl ByName for $ty {
            fn by_name(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(Self { $($field: row.get(stringify!($field))?,)* })
            }
        }
    )*};
}

// The rows the writer's own statements return.
by_name! {
    ChangedRow { application_id, message_id, sealed }
    WorkRow { application_id, service_key, procedure_id, message_id, message_type, step, attempts, accepted_at, sealed }
    PrepareRow { receipt, service_key, region, payload, created_at, authentication, follow_up, refers_to, parent_id, parent_receipt, parent_created_at, parent_message_id, reply_channel }
    AttachmentRow { filename, media_type, sha512, size, upload_id, content, slot }
}

/// Appends a history entry and its audit entry, at the same time.
fn append_history(tx: &mut WriteTx<'_>, change: Change) -> Result<(), StoreError> {
    let at = rfc3339(tx.now());
    tx.prepare_cached(
        "INSERT INTO history (application_id, at, status, detail, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .sql()?
    .execute(params![
        change.application_id.to_string(),
        at,
        change.status.as_str(),
        change.detail,
        change.kind.as_str()
    ])
    .sql()?;
    append_audit(tx, &at, &change)
}

/// A state change: the new status, its history entry and audit entry.
fn change_status(tx: &mut WriteTx<'_>, change: Change) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE applications SET status = ?1, updated_at = ?2 WHERE id = ?3")
        .sql()?
        .execute(params![
            change.status.as_str(),
            rfc3339(tx.now()),
            change.application_id.to_string()
        ])
        .sql()?;
    append_history(tx, change)
}

/// Links one entry to the end of the audit chain. Runs on the writer, the chain's only
/// writer, so no other entry comes in between.
fn append_audit(tx: &mut WriteTx<'_>, at: &str, change: &Change) -> Result<(), StoreError> {
    let entry = change.audit_entry(tx.audit_head()?, at);
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, version, application_id, at, status, detail, message_sha256, content_sha256, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    ).sql()?
    .execute(params![
        entry.seq,
        entry.version,
        entry.application_id,
        entry.at,
        entry.status,
        entry.detail,
        entry.message_sha256,
        entry.content_sha256,
        entry.prev_hash,
        entry.hash,
    ]).sql()?;
    tx.set_audit_head(entry.seq, entry.hash);
    Ok(())
}

/// Runs the query `sql`, whose one parameter (`?1`) is `id`: the text of its first
/// column, if it found a row.
fn fetch_for(tx: &WriteTx<'_>, sql: &str, id: &str) -> Result<Option<String>, StoreError> {
    tx.prepare_cached(sql)
        .sql()?
        .query_row([id], |row| row.get(0))
        .optional()
        .sql()
}

/// Runs `sql`, whose one parameter (`?1`) is `id`; the rows it touched.
fn execute_for(tx: &WriteTx<'_>, sql: &str, id: &str) -> Result<u64, StoreError> {
    let touched = tx.prepare_cached(sql).sql()?.execute([id]).sql()?;
    Ok(touched as u64)
}
