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
mod intake;
mod outbox;
mod oversight;
mod pickup;
mod reads;

use crate::Sql;
use crate::shared::rows::*;
use crate::shared::{millis, rfc3339};
use kopplung_core::store::rules::{self, Stage, parse_status};
use std::collections::BTreeMap;
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
use time::OffsetDateTime;
use uuid::Uuid;

use crate::group::{GroupWriter, WriteTx};
use kopplung_core::audit::content;
use kopplung_core::audit::{AuditEntry, Binding, sha256_hex};
use kopplung_core::store::{
    Accepted, AttachmentContent, IdempotencyKey, Inserted, NewApplication, NewUpload, Pickup,
    PickupAck, PrepareInput, ReceiptOutcome, ReceiptRecord, Status, StoreError, StoredForm,
    WorkItem,
};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, ToSql, params};

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

    /// An outbox update under the entry's lease ([`update_leased`]) as one write;
    /// whether it changed the entry.
    async fn leased_update(
        &self,
        item: &WorkItem,
        sql: &'static str,
        values: Vec<Value>,
    ) -> Result<bool, StoreError> {
        let item = item.clone();
        self.writer
            .write(move |tx| Ok(update_leased(tx, sql, &values, &item)? == 1))
            .await
    }

    /// An outbox update under the entry's lease completed by a state change
    /// ([`transition`]), as one write.
    async fn leased_transition(
        &self,
        item: &WorkItem,
        sql: &'static str,
        values: Vec<Value>,
        status: Status,
        detail: &str,
        message_sha256: Option<String>,
    ) -> Result<bool, StoreError> {
        let (item, detail) = (item.clone(), detail.to_owned());
        self.writer
            .write(move |tx| {
                let updated = update_leased(tx, sql, &values, &item)?;
                transition(tx, updated, &item, status, &detail, message_sha256)
            })
            .await
    }
}

/// Appends the history entry of a state change and its audit entry, at the same time.
/// `binding`: what the audit entry binds by hash (see [`kopplung_core::audit`]).
fn append_history(
    tx: &mut WriteTx<'_>,
    application_id: Uuid,
    status: Status,
    detail: &str,
    binding: Binding,
) -> Result<(), StoreError> {
    let at = rfc3339(tx.now());
    tx.prepare_cached(
        "INSERT INTO history (application_id, at, status, detail) VALUES (?1, ?2, ?3, ?4)",
    )
    .sql()?
    .execute(params![
        application_id.to_string(),
        at,
        status.as_str(),
        detail
    ])
    .sql()?;
    append_audit(tx, application_id, &at, status, detail, binding)
}

/// Links one entry to the end of the audit chain. Runs on the writer, the chain's only
/// writer, so no other entry comes in between.
fn append_audit(
    tx: &mut WriteTx<'_>,
    application_id: Uuid,
    at: &str,
    status: Status,
    detail: &str,
    binding: Binding,
) -> Result<(), StoreError> {
    let head = tx.audit_head()?;
    let entry = AuditEntry::next(
        head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
        application_id,
        at,
        status.as_str(),
        detail,
        binding,
    );
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

/// The hex SHA-256 of the sealed message stored for an outbox entry, if there is one.
fn stored_message_sha256(tx: &WriteTx<'_>, item: &WorkItem) -> Result<Option<String>, StoreError> {
    let sealed: Option<Vec<u8>> = tx
        .prepare_cached(
            "SELECT sealed FROM deliveries WHERE application_id = ?1 AND procedure_id = ?2",
        )
        .sql()?
        .query_row(
            params![item.application_id.to_string(), item.procedure_id],
            |row| row.get(0),
        )
        .sql()?;
    Ok(sealed.as_deref().map(sha256_hex))
}

fn set_status(tx: &WriteTx<'_>, application_id: Uuid, status: Status) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE applications SET status = ?1, updated_at = ?2 WHERE id = ?3")
        .sql()?
        .execute(params![
            status.as_str(),
            rfc3339(tx.now()),
            application_id.to_string()
        ])
        .sql()?;
    Ok(())
}

/// Runs an outbox update whose SQL ends in
/// `WHERE application_id = ?N AND procedure_id = ?N+1 AND lease_owner = ?N+2`, with
/// `values` bound first: only the holder of the lease may change the entry.
fn update_leased(
    tx: &WriteTx<'_>,
    sql: &str,
    values: &[Value],
    item: &WorkItem,
) -> Result<usize, StoreError> {
    let id = item.application_id.to_string();
    let mut bound: Vec<&dyn ToSql> = values.iter().map(|v| v as &dyn ToSql).collect();
    bound.extend([&id as &dyn ToSql, &item.procedure_id, &item.lease]);
    tx.prepare_cached(sql)
        .sql()?
        .execute(bound.as_slice())
        .sql()
}

/// Completes a state change whose outbox update touched `updated` rows: the status and
/// its history and audit entries in the same transaction, or nothing if the lease was
/// lost. `message_sha256` is the hash of the message just sealed; without it, the stored
/// message (if any) is hashed.
fn transition(
    tx: &mut WriteTx<'_>,
    updated: usize,
    item: &WorkItem,
    status: Status,
    detail: &str,
    message_sha256: Option<String>,
) -> Result<bool, StoreError> {
    if updated != 1 {
        return Ok(false);
    }
    let message_sha256 = match message_sha256 {
        Some(hash) => Some(hash),
        None => stored_message_sha256(tx, item)?,
    };
    set_status(tx, item.application_id, status)?;
    append_history(
        tx,
        item.application_id,
        status,
        detail,
        Binding::message(message_sha256),
    )?;
    Ok(true)
}
