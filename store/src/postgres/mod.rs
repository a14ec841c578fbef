//! The PostgreSQL store: one database shared by several hub instances.
//!
//! The same tables and the same semantics as [`crate::SqliteStore`], with what several
//! processes on one database need:
//!
//! - **Instances commit concurrently; no audit chain forks.** Each instance appends to
//!   audit chains of its own, named by its instance id ([`chain`]): a state change's
//!   transaction collects its audit entries and appends them in one statement just
//!   before it commits, to a chain (a lane) no other transaction of the instance holds
//!   until then. There is no lock shared by the instances. The
//!   check-then-write steps get their safety from constraints and row locks: two
//!   intakes with one idempotency key meet at its primary key (the second waits for the
//!   first and then answers with it), a receipt locks its outbox entry before it looks
//!   for an earlier copy, a retention deletion locks its application, and every
//!   transition (delivered, collected, replayed, …) is one conditional `UPDATE` of its
//!   row, which a concurrent one re-checks after the first committed.
//! - **The outbox's state changes commit in groups.** What becomes of a claimed entry
//!   (`record`: prepared, delivered, retry, …) is queued for a few writer tasks that run
//!   all that is waiting as one transaction of multi-row statements ([`writer`]); each
//!   change still gets its own answer, and one whose lease was taken over changes
//!   nothing. The other state changes run in a transaction of their own.
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
mod chain;
mod events;
mod feed;
mod intake;
mod outbox;
mod oversight;
mod pickup;
mod reads;
mod writer;

use crate::Sql;
use crate::shared::rows::*;
use crate::shared::{millis, rfc3339};
use kopplung_core::store::rules::{self, parse_status};

use kopplung_core::{Clock, InstanceId};
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
use kopplung_core::audit::content;
use kopplung_core::store::{
    Accepted, IdempotencyKey, Inserted, NewApplication, PrepareInput, ReceiptOutcome,
    ReceiptRecord, Status, StoreError, WorkItem,
};
use sqlx::FromRow;

pub use chain::LockWaitObserver;

/// The audit entries a transaction's state changes append at its commit, each with the
/// time it was stamped.
type Pending = Vec<(String, Change)>;

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
    /// This instance's audit chains.
    chain: Arc<chain::Chains>,
    /// Where the outbox's leased state changes queue for their group commit.
    writer: writer::Writer,
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
    ///
    /// Its state changes append to audit chains of their own, under a new id: for
    /// tools and tests. A hub instance connects with [`PostgresStore::connect_as`].
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Self::connect_as(url, clock, &InstanceId::generate()).await
    }

    /// [`PostgresStore::connect`] for the hub instance `instance`: its state changes
    /// append to the audit chain named by its id (the same across its restarts).
    pub async fn connect_as(
        url: &str,
        clock: Arc<dyn Clock>,
        instance: &InstanceId,
    ) -> Result<Self, StoreError> {
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
        // A lane per connection: no transaction waits for another's commit.
        let chain = chain::Chains::new(instance.as_str(), POOL_SIZE as usize);
        let writer = writer::Writer::start(pool.clone(), chain.clone(), clock.clone());
        Ok(Self {
            pool,
            clock,
            chain,
            writer,
        })
    }

    /// Hands every state change's wait for its audit chain to `observer`: the time it
    /// waited for a free lane (see [`chain`]) and in attempts that found the chain's end
    /// moved, not its own statement's round trip. The serialisation left on PostgreSQL,
    /// within one instance (instances never wait for each other). Set once.
    pub fn observe_lock_waits(&self, observer: LockWaitObserver) {
        self.chain.observe(observer);
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

    /// Runs one statement that changes no state (no history): on the pool. The rows it
    /// touched.
    async fn execute(&self, write: Write<'_>) -> Result<u64, StoreError> {
        Ok(query(write)
            .execute(&self.pool)
            .await
            .sql()?
            .rows_affected())
    }

    /// Runs a state change: `update`, which returns a [`ChangedRow`] if it changed an
    /// entry (its row stays locked until the commit), then the status, history and audit
    /// entries of `change` of that row, in one transaction. Whether it changed an entry.
    async fn transition<F>(&self, update: Write<'_>, change: F) -> Result<bool, StoreError>
    where
        F: FnOnce(ChangedRow) -> Result<Change, StoreError> + Send,
    {
        let (mut tx, mut audit) = self.write().await?;
        let Some(row) = query(update).fetch_optional(&mut *tx).await.sql()? else {
            return Ok(false);
        };
        let change = change(ChangedRow::from_row(&row).sql()?)?;
        change_status(&mut tx, &mut audit, self.clock.now(), change).await?;
        self.commit(tx, audit).await?;
        Ok(true)
    }

    /// Starts a transaction that may change state, and the audit entries it will append.
    async fn write(&self) -> Result<(Transaction<'static, Postgres>, Pending), StoreError> {
        Ok((self.pool.begin().await.sql()?, Vec::new()))
    }

    /// Appends the audit entries of `audit` to one of this instance's chains and commits
    /// `tx`.
    async fn commit(
        &self,
        mut tx: Transaction<'static, Postgres>,
        audit: Pending,
    ) -> Result<(), StoreError> {
        // The lane is kept until the commit is done (see [`chain`]).
        let _lane = self.chain.append(&mut tx, &audit).await?;
        tx.commit().await.sql()
    }
}

/// Appends a history entry; its audit entry, stamped alike, waits in `audit`.
async fn append_history(
    tx: &mut Transaction<'static, Postgres>,
    audit: &mut Pending,
    now: OffsetDateTime,
    change: Change,
) -> Result<(), StoreError> {
    let insert = "INSERT INTO history (application_id, at, status, detail, kind) VALUES ($1, $2, $3, $4, $5)";
    write_history(tx, audit, insert, now, change).await
}

/// A state change's new status and history entry in one statement (each statement is a
/// round trip); its audit entry waits in `audit`.
async fn change_status(
    tx: &mut Transaction<'static, Postgres>,
    audit: &mut Pending,
    now: OffsetDateTime,
    change: Change,
) -> Result<(), StoreError> {
    let update =
        "WITH changed AS (UPDATE applications SET status = $3, updated_at = $2 WHERE id = $1)
         INSERT INTO history (application_id, at, status, detail, kind) VALUES ($1, $2, $3, $4, $5)";
    write_history(tx, audit, update, now, change).await
}

/// Runs `sql` (application, time, status, detail, kind), which writes the history entry, and
/// keeps the audit entry for the commit.
async fn write_history(
    tx: &mut Transaction<'static, Postgres>,
    audit: &mut Pending,
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
        .bind(change.kind.as_str())
        .execute(&mut **tx)
        .await
        .sql()?;
    audit.push((at, change));
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
            Param::MaybeInteger(n) => query.bind(n),
            Param::Blob(bytes) => query.bind(bytes),
        };
    }
    query
}
