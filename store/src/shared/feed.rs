//! The change feed's read ([`kopplung_core::store::FeedStore`]): one statement both
//! dialects write alike, and its row.

use kopplung_core::store::rules::{parse_status, parse_uuid};
use kopplung_core::store::{FeedEntry, HistoryKind, StoreError};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::parse_time;
use crate::Sql;

/// The history after `$1` by seq, at most `$2` entries, with their applications' client
/// and receipt number. A follow-up message's own history is not the application's
/// state: left out.
pub(crate) const HISTORY_AFTER: &str =
    "SELECT h.seq, h.application_id, a.client_id, a.receipt, h.status, h.kind, h.at
     FROM history h JOIN applications a ON a.id = h.application_id
     WHERE h.seq > $1 AND a.parent_id IS NULL ORDER BY h.seq LIMIT $2";

/// [`HISTORY_AFTER`] on either backend's pool: the feed reads alike on both.
pub(crate) async fn history_after<DB>(
    pool: &Pool<DB>,
    after: i64,
    limit: u32,
) -> Result<Vec<FeedEntry>, StoreError>
where
    DB: Database,
    for<'e> &'e Pool<DB>: Executor<'e, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> FeedRow: FromRow<'r, DB::Row>,
{
    sqlx::query_as::<DB, FeedRow>(HISTORY_AFTER)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .sql()?
        .into_iter()
        .map(FeedEntry::try_from)
        .collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct FeedRow {
    seq: i64,
    application_id: String,
    client_id: String,
    receipt: String,
    status: String,
    kind: String,
    at: String,
}

impl TryFrom<FeedRow> for FeedEntry {
    type Error = StoreError;

    fn try_from(row: FeedRow) -> Result<Self, StoreError> {
        Ok(FeedEntry {
            seq: row.seq,
            application_id: parse_uuid(&row.application_id)?,
            client_id: row.client_id,
            receipt: row.receipt,
            status: parse_status(&row.status)?,
            kind: HistoryKind::parse(&row.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("history kind {}", row.kind)))?,
            at: parse_time(&row.at)?,
        })
    }
}
