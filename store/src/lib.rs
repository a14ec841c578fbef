//! The store backends of kopplung: SQLite in the data directory (the default: one hub,
//! every write on one writer thread with group commit) and PostgreSQL (several hub
//! instances on one database). Both implement every role of
//! [`kopplung_core::store::Store`] with the same semantics, one file per role
//! (`sqlite/<role>.rs`, `postgres/<role>.rs`); the decisions that are not SQL are the
//! core's (`kopplung_core::store::rules`), and what both do alike with their rows is in
//! `shared` (the reads and the audit trail's read side once, generic over the database;
//! each backend gives its statements in `reads.rs` and `audit.rs`; the writes both
//! dialects write alike, which each backend runs its way; the history entries).
//!
//! A new role: its trait in `core/src/store/<role>.rs` (added to `Store`), its file in
//! both backends, and its cases in `tests/contract/<role>.rs`, which run on both.
#![forbid(unsafe_code)]

mod group;
mod postgres;
mod shared;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use kopplung_core::store::StoreError;

/// Turns a backend's error into the core's [`StoreError`] (which knows no SQL):
/// `.sql()?` where a query can fail.
pub(crate) trait Sql<T> {
    fn sql(self) -> Result<T, StoreError>;
}

impl<T> Sql<T> for Result<T, sqlx::Error> {
    fn sql(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database(e.to_string()))
    }
}

impl<T> Sql<T> for Result<T, rusqlite::Error> {
    fn sql(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database(e.to_string()))
    }
}

impl<T> Sql<T> for Result<T, sqlx::migrate::MigrateError> {
    fn sql(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Migrate(e.to_string()))
    }
}

/// A statement's result that may fail because a value is taken (a unique constraint),
/// which is an answer rather than an error.
pub(crate) trait Taken<T> {
    /// `Ok(None)` if the statement failed on a unique constraint that names `what` (in
    /// its name on PostgreSQL, in its message on SQLite).
    fn unless_taken(self, what: &str) -> Result<Option<T>, StoreError>;
}

impl<T> Taken<T> for Result<T, sqlx::Error> {
    fn unless_taken(self, what: &str) -> Result<Option<T>, StoreError> {
        match self {
            Err(sqlx::Error::Database(e))
                if e.is_unique_violation() && e.constraint().is_some_and(|c| c.contains(what)) =>
            {
                Ok(None)
            }
            other => other.sql().map(Some),
        }
    }
}

impl<T> Taken<T> for Result<T, rusqlite::Error> {
    fn unless_taken(self, what: &str) -> Result<Option<T>, StoreError> {
        match self {
            Err(rusqlite::Error::SqliteFailure(e, Some(message)))
                if e.code == rusqlite::ErrorCode::ConstraintViolation && message.contains(what) =>
            {
                Ok(None)
            }
            other => other.sql().map(Some),
        }
    }
}
