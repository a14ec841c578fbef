//! The store backends of kopplung: SQLite in the data directory (the default: one hub,
//! every write on one writer thread with group commit) and PostgreSQL (several hub
//! instances on one database). Both implement [`kopplung_core::store::Store`] with the
//! same semantics; the rules that are not SQL live in the core.
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
