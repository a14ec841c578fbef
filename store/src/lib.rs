//! The store backends of kopplung: SQLite in the data directory (the default: one hub,
//! every write on one writer thread with group commit) and PostgreSQL (several hub
//! instances on one database). Both implement every role of
//! [`kopplung_core::store::Store`] with the same semantics, one file per role
//! (`sqlite/<role>.rs`, `postgres/<role>.rs`); the decisions that are not SQL are the
//! core's (`kopplung_core::store::rules`), and what both do alike with their rows is in
//! `shared` (the reads and the audit trail's read side once, generic over the database;
//! each backend gives its statements in `reads.rs` and `audit.rs`).
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
