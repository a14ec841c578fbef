//! The portal's SQLite database (migrations in `portal/migrations/`).

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::Error;

/// Opens (and creates, mode `0600`) the store at `path`. SQLite gives its `-wal` and
/// `-shm` files the database file's mode, so they are private too.
pub async fn open(path: &Path) -> Result<SqlitePool, Error> {
    kopplung_web::files::create_private_file(path)?;
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// A transaction that takes the write lock at once (`BEGIN IMMEDIATE`). One that reads
/// before it writes would otherwise fail at once with `SQLITE_BUSY` — without waiting —
/// when another connection wrote in between.
pub async fn write_transaction(
    pool: &SqlitePool,
) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Seconds since the epoch, as stored.
/// Deletes the rows of `table` whose `expires_at` has come; how many. The name is a
/// `'static` one of this schema, never input, so the statement is safe to build.
pub async fn delete_expired(
    db: &SqlitePool,
    table: &'static str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE expires_at <= ?"));
    Ok(sqlx::query(sql)
        .bind(now)
        .execute(db)
        .await?
        .rows_affected())
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
