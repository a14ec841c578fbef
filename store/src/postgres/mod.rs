//! The PostgreSQL store: one database shared by several hub instances.
//!
//! The same tables and the same semantics as [`crate::SqliteStore`], with what several
//! processes on one database need:
//!
//! - **The audit chain cannot fork.** Every transaction that appends a history and audit
//!   entry (and so every state change) first takes one transaction-level advisory lock
//!   (`chain_lock!`), the counterpart of SQLite's `BEGIN IMMEDIATE`: such transactions
//!   run one after the other across all instances, and reading the last entry's hash
//!   inside one sees every earlier append (READ COMMITTED takes a new snapshot per
//!   statement, and the lock is only granted once the previous holder has committed).
//!   The check-then-write steps (idempotency keys, receipts, pickup acknowledgements)
//!   are serialised by the same lock.
//! - **Claims never overlap.** `claim` locks the rows it takes with `FOR UPDATE SKIP
//!   LOCKED` and re-checks them under the lock: two instances never lease the same entry,
//!   and neither waits for the other. An entry whose lease has run out may be claimed by
//!   any instance: that is how the work of an instance that died is taken over.
//! - **An instance's claims return as soon as it is known dead.** Lease tokens begin
//!   with the claiming instance's id: at start an instance returns its own earlier
//!   claims (`release_stale_leases`), and an instance whose heartbeat (`instances`) is
//!   older than the heartbeat timeout has its claims taken over (`take_over_silent`),
//!   long before their lease runs out. A returned lease is fenced: a change recorded
//!   under its token finds no row. Lease and heartbeat times come from each instance's
//!   clock, so the instances' clocks must agree (NTP) to well within the heartbeat
//!   timeout.
//!
//! Times the audit hash covers (and those handed back exactly as given) are stored as
//! RFC 3339 text, as in SQLite; due and lease times are unix milliseconds.
//!
//! Needs PostgreSQL 12 or later (`AS MATERIALIZED`, `sha256()`).

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
use kopplung_core::store::rules::{self, parse_status};

use kopplung_core::Clock;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::shared::Param;
use crate::shared::history::Change;
use crate::shared::writes::{ChangedRow, Write};
use kopplung_core::audit::chain_end;
use kopplung_core::audit::content;
use kopplung_core::store::{
    Accepted, IdempotencyKey, Inserted, NewApplication, PrepareInput, ReceiptOutcome,
    ReceiptRecord, Status, StoreError, WorkItem,
};
use sqlx::FromRow;

/// The key of the transaction-level advisory lock that serialises every transaction
/// appending to the history and audit chain ("kopplung" in ASCII, 0x6b6f70706c756e67).
/// A macro, so that the statement that takes it stays a string literal.
macro_rules! chain_lock {
    () => {
        7741529912631455335
    };
}
#[cfg(test)]
const CHAIN_LOCK: i64 = chain_lock!();

/// Connections per instance.
const POOL_SIZE: u32 = 8;

/// How long the first connection may take. The pool alone would retry a refused
/// connection for its whole acquire timeout (30 s) and then only say "pool timed out":
/// an operator starting a hub against a database that is down should learn it at once,
/// and which server it was.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PostgresStore {
    pool: PgPool,
    /// Every time the store stamps (history, leases, receipts) is this clock's.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// The options of `url`. The migrator's `CREATE TABLE IF NOT EXISTS` makes the server
/// send a NOTICE on every start ("relation _sqlx_migrations already exists, skipping"),
/// which sqlx logs: notices say nothing an operator must act on, warnings still come.
fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    Ok(PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Database(format!("postgres_url: {e}")))?
        .options([("client_min_messages", "warning")]))
}

/// One connection to the server of `options`, within [`CONNECT_TIMEOUT`].
async fn first_connection(options: &PgConnectOptions) -> Result<PgConnection, StoreError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(connection)) => Ok(connection),
        // The server's own message: sqlx's display adds the line of the server's C source
        // ("at line 948"), which reads like a line of the configuration.
        Ok(Err(sqlx::Error::Database(e))) => Err(unreachable(options, e.message())),
        Ok(Err(e)) => Err(unreachable(options, &e.to_string())),
        Err(_) => Err(unreachable(
            options,
            &format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        )),
    }
}

/// A failed connection, naming the server (never the password, which is not in them).
fn unreachable(options: &PgConnectOptions, reason: &str) -> StoreError {
    StoreError::Database(format!(
        "cannot connect to PostgreSQL at {}:{} (database {}): {reason}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("default"),
    ))
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`) and brings
    /// its schema up to date. Several instances may connect at once, also to a fresh
    /// database: the migrator holds an advisory lock while it checks and migrates, so the
    /// others wait and then find the schema current.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let options = connect_options(url)?;
        // One connection first, under a short deadline, so that an unreachable server
        // fails the start within seconds and with its address.
        first_connection(&options).await?.close().await.ok();
        let pool = crate::shared::open_pool(
            PgPoolOptions::new().max_connections(POOL_SIZE),
            options,
            sqlx::migrate!("./migrations/postgres"),
        )
        .await?;
        Ok(Self { pool, clock })
    }

    /// Where `url` points, for an operator: `host:port/database`, without user or
    /// password.
    pub fn target(url: &str) -> Result<String, StoreError> {
        let options = connect_options(url)?;
        Ok(format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        ))
    }

    /// Whether the database at `url` answers: one connection and `SELECT 1`, nothing
    /// migrated or changed (`kopplung check --connect`). The error names host and port.
    pub async fn probe(url: &str) -> Result<(), StoreError> {
        let options = connect_options(url)?;
        let mut connection = first_connection(&options).await?;
        let answer = sqlx::query("SELECT 1")
            .execute(&mut connection)
            .await
            .map_err(|e| unreachable(&options, &e.to_string()));
        connection.close().await.ok();
        answer.map(|_| ())
    }

    /// Runs one statement that changes no state (no history): on the pool, without the
    /// chain lock. The rows it touched.
    async fn execute(&self, write: Write<'_>) -> Result<u64, StoreError> {
        Ok(query(write)
            .execute(&self.pool)
            .await
            .sql()?
            .rows_affected())
    }

    /// Runs a state change: `update`, which returns a [`ChangedRow`] if it changed an
    /// entry, then the status, history and audit entries of `change` of that row, in one
    /// transaction under the chain lock. Whether it changed an entry.
    async fn transition<F>(&self, update: Write<'_>, change: F) -> Result<bool, StoreError>
    where
        F: FnOnce(ChangedRow) -> Result<Change, StoreError> + Send,
    {
        let mut tx = self.write().await?;
        let Some(row) = query(update).fetch_optional(&mut *tx).await.sql()? else {
            return Ok(false);
        };
        let change = change(ChangedRow::from_row(&row).sql()?)?;
        change_status(&mut tx, self.clock.now(), change).await?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    /// Starts a transaction that may change state: it takes the chain lock at once, so
    /// that it runs alone among such transactions of every instance (see the module
    /// documentation). The lock is released with the commit or rollback.
    async fn write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        // BEGIN and the lock in one round trip (a simple query of two statements).
        self.pool
            .begin_with(concat!(
                "BEGIN; SELECT pg_advisory_xact_lock(",
                chain_lock!(),
                ")"
            ))
            .await
            .sql()
    }
}

/// Appends a history entry and its audit entry, at the same time.
async fn append_history(
    tx: &mut Transaction<'static, Postgres>,
    now: OffsetDateTime,
    change: Change,
) -> Result<(), StoreError> {
    let insert = "INSERT INTO history (application_id, at, status, detail) VALUES ($1, $2, $3, $4)";
    write_history(tx, insert, now, change).await
}

/// A state change's new status, history entry and audit entry; the status and the
/// history entry in one statement (each statement is a round trip).
async fn change_status(
    tx: &mut Transaction<'static, Postgres>,
    now: OffsetDateTime,
    change: Change,
) -> Result<(), StoreError> {
    let update =
        "WITH changed AS (UPDATE applications SET status = $3, updated_at = $2 WHERE id = $1)
         INSERT INTO history (application_id, at, status, detail) VALUES ($1, $2, $3, $4)";
    write_history(tx, update, now, change).await
}

/// Runs `sql` (application, time, status, detail), which writes the history entry, and
/// appends the audit entry.
async fn write_history(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    now: OffsetDateTime,
    change: Change,
) -> Result<(), StoreError> {
    let at = rfc3339(now);
    sqlx::query(sql)
        .bind(change.application_id.to_string())
        .bind(&at)
        .bind(change.status.as_str())
        .bind(&change.detail)
        .execute(&mut **tx)
        .await
        .sql()?;
    append_audit(tx, &at, &change).await
}

/// Links one entry to the end of the audit chain. Must run inside a transaction begun
/// with [`PostgresStore::write`], which holds the chain lock, so that no other writer
/// (of any instance) appends in between.
async fn append_audit(
    tx: &mut Transaction<'static, Postgres>,
    at: &str,
    change: &Change,
) -> Result<(), StoreError> {
    // The last entry, and the highest seq ever issued: if entries at the end were
    // removed, the next one leaves a gap that verification reports, instead of hiding
    // the removal. One statement: each is a round trip.
    let (last_seq, last_hash, issued): (Option<i64>, Option<String>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1),
                    (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),
                    (SELECT seq FROM audit_issued WHERE singleton)",
    )
    .fetch_one(&mut **tx)
    .await
    .sql()?;
    let entry = change.audit_entry(chain_end(last_seq, last_hash, issued), at);
    // The entry and the highest seq issued, in one statement.
    sqlx::query(
        "WITH entry AS (
           INSERT INTO audit_log (seq, application_id, at, status, detail, message_sha256, prev_hash, hash, version, content_sha256)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10))
         INSERT INTO audit_issued (singleton, seq) VALUES (TRUE, $1)
         ON CONFLICT (singleton) DO UPDATE SET seq = EXCLUDED.seq",
    )
    .bind(entry.seq)
    .bind(&entry.application_id)
    .bind(&entry.at)
    .bind(&entry.status)
    .bind(&entry.detail)
    .bind(&entry.message_sha256)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .bind(entry.version)
    .bind(&entry.content_sha256)
    .execute(&mut **tx)
    .await.sql()?;
    Ok(())
}

/// Runs the query `sql`, whose one parameter (`$1`) is `id`: the text of its first
/// column, if it found a row.
async fn fetch_for(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .sql()
}

/// Runs `sql`, whose one parameter (`$1`) is `id`; the rows it touched.
async fn execute_for(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    id: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(sql)
        .bind(id)
        .execute(&mut **tx)
        .await
        .sql()?
        .rows_affected())
}

/// The statement of `write` with its parameters bound.
fn query(write: Write<'_>) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    let mut query = sqlx::query(write.sql);
    for param in write.params {
        query = match param {
            Param::Text(text) => query.bind(text),
            Param::MaybeText(text) => query.bind(text),
            Param::Integer(n) => query.bind(n),
            Param::Blob(bytes) => query.bind(bytes),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_chain_lock_key_is_kopplung_in_ascii() {
        // Instances of older and newer versions must take the same lock.
        assert_eq!(super::CHAIN_LOCK, i64::from_be_bytes(*b"kopplung"));
    }
}
