//! What both backends do alike that is not SQL: how times are stored, and the rows
//! their queries read, turned into the core's values. A backend keeps only its SQL and
//! its binding.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Sql;
use kopplung_core::store::StoreError;

/// Stored times are UTC: then their text compares in time order (retention, search).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn parse_time(s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| StoreError::Corrupt(format!("time {s}: {e}")))
}

/// A stored day (`YYYY-MM-DD`).
pub(crate) fn parse_day(s: &str) -> Result<time::Date, StoreError> {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| StoreError::Corrupt(format!("day {s}: {e}")))
}

/// Due and lease times are unix milliseconds.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// A stored count (attempts) as the core counts it.
pub(crate) fn count(n: i64) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// A parameter of a statement written once for both backends (`$n` parameters: sqlx
/// binds them by number; rusqlite binds by position, which is the same as long as they
/// first appear in order). Each backend binds it in its way.
pub(crate) enum Param<'a> {
    Text(String),
    /// Text, or NULL.
    MaybeText(Option<String>),
    Integer(i64),
    /// An integer, or NULL.
    MaybeInteger(Option<i64>),
    Blob(&'a [u8]),
}

/// Opens a backend's pool and brings its schema up to date with its `migrator`.
pub(crate) async fn open_pool<DB>(
    pool: sqlx::pool::PoolOptions<DB>,
    options: <DB::Connection as sqlx::Connection>::Options,
    migrator: sqlx::migrate::Migrator,
) -> Result<sqlx::Pool<DB>, StoreError>
where
    DB: sqlx::Database,
    DB::Connection: sqlx::migrate::Migrate,
{
    let pool = pool.connect_with(options).await.sql()?;
    migrator.run(&pool).await.sql()?;
    Ok(pool)
}

pub(crate) mod audit;
pub(crate) mod feed;
pub(crate) mod history;
pub(crate) mod intake;
pub(crate) mod outbox;
pub(crate) mod reads;
pub(crate) mod receipt;
pub(crate) mod roles;
pub(crate) mod rows;
pub(crate) mod statements;
pub(crate) mod writes;
