//! The SQLite store's change feed (see [`kopplung_core::changes`]); the statement and
//! its reading are shared ([`crate::shared::feed`]).

use kopplung_core::store::{FeedEntry, FeedStore, StoreError};

use super::SqliteStore;

#[async_trait::async_trait]
impl FeedStore for SqliteStore {
    async fn history_after(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        crate::shared::feed::history_after(&self.pool, after, limit).await
    }
}
