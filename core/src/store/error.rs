//! The one error of every store role.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed (the backend's message).
    #[error("database: {0}")]
    Database(String),
    #[error("migrating the database: {0}")]
    Migrate(String),
    #[error("the data directory {0} is in use by another kopplung process")]
    Locked(std::path::PathBuf),
    #[error("{0}: {1}")]
    Io(std::path::PathBuf, std::io::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The shared transaction of a group commit failed: nothing of it was kept.
    #[error("the transaction could not be committed: {0}")]
    Commit(String),
}
