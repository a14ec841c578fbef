//! The PostgreSQL store's change feed (see [`kopplung_core::changes`]).

use kopplung_core::store::{FeedEntry, FeedStore, StoreError};

use super::PostgresStore;
use crate::Sql;
use crate::shared::feed::{FeedRow, HISTORY_AFTER};

#[async_trait::async_trait]
impl FeedStore for PostgresStore {
    async fn history_after(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        sqlx::query_as::<sqlx::Postgres, FeedRow>(HISTORY_AFTER)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .sql()?
            .into_iter()
            .map(FeedEntry::try_from)
            .collect()
    }
}
