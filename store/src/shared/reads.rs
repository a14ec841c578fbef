//! The reads both backends run on their sqlx pool, once: the statement is each
//! backend's ([`ReadSql`]), the binding and what becomes of the rows are the same.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{
    ApplicationRow, BacklogRow, DeadLetterRow, DocumentRow, FollowUpRow, Fragment, FragmentRow,
    HistoryRow, MailboxRow, PickupRow, SummaryRow, UploadRow,
};
use super::{from_millis, rfc3339, statements};
use crate::Sql;
use kopplung_core::store::rules::{self, Stage, parse_status, parse_uuid, pickup_ack};
use kopplung_core::store::{
    ApplicationQuery, ApplicationRecord, ApplicationSummary, Backlog, DeadLetter, DocumentInfo,
    FRAGMENT_BYTES, MailboxEntry, Pickup, PickupAck, ReceiptOutcome, ReceiptRecord, Status,
    StoreError, UploadInfo, WorkItem,
};

/// A backend's statements of the shared reads; parameters in the order the reads bind them.
pub(crate) trait ReadSql: Database {
    /// The earliest time a pending outbox entry falls due (or its lease runs out).
    const NEXT_DUE: &'static str;
    /// upload_id, size and the inline `part` (from 1-based `offset`, `length` bytes) of
    /// attachment `position` of message `message_id` of `procedure`.
    const FRAGMENT: &'static str;
    /// id, filename, media_type, size, sha512 of application `id`'s documents.
    const DOCUMENTS: &'static str;
    /// procedure_id, pending, oldest per procedure with waiting work.
    const BACKLOG: &'static str;
    /// The columns of [`DeadLetterRow`], oldest first.
    const DEAD_LETTERS: &'static str;
    /// The [`PickupRow`]s (without the message) of the messages waiting for `$1`, oldest
    /// first, at most `$2`.
    const PICKUPS: &'static str;
    /// The [`PickupRow`] with the message of message `$2` of `$1`, waiting or collected.
    const PICKUP: &'static str;
}

/// Runs the shared reads on a backend's pool.
pub(crate) struct Reads<'p, DB: Database> {
    pool: &'p Pool<DB>,
}

impl<'p, DB> Reads<'p, DB>
where
    DB: ReadSql,
    for<'e> &'e mut DB::Connection: Executor<'e, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> UploadRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> ApplicationRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> HistoryRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> FragmentRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> MailboxRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> DocumentRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> BacklogRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> DeadLetterRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> SummaryRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> PickupRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> FollowUpRow: sqlx::FromRow<'r, DB::Row>,
{
    pub(crate) fn on(pool: &'p Pool<DB>) -> Self {
        Self { pool }
    }

    /// The row of `sql` with its text parameters `params`, if there is one, as the core's
    /// value (`into`).
    async fn optional<R, T>(
        &self,
        sql: &'static str,
        params: &[&str],
        into: impl FnOnce(R) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, DB::Row> + Send + Unpin,
    {
        let mut query = sqlx::query_as::<DB, R>(sql);
        for param in params {
            query = query.bind(*param);
        }
        query
            .fetch_optional(self.pool)
            .await
            .sql()?
            .map(into)
            .transpose()
    }

    pub(crate) async fn upload(&self, id: Uuid) -> Result<Option<UploadInfo>, StoreError> {
        let into = |row: UploadRow| row.into_info(id);
        self.optional(statements::UPLOAD, &[&id.to_string()], into)
            .await
    }

    /// The signed events of an application, in the order they arrived.
    pub(crate) async fn signed_events(
        &self,
        application_id: Uuid,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        sqlx::query_scalar(
            "SELECT signed FROM receipts WHERE application_id = $1 AND length(signed) > 0
             ORDER BY received_at, receipt_id",
        )
        .bind(application_id.to_string())
        .fetch_all(self.pool)
        .await
        .sql()
    }

    /// Chunk `seq` of upload `id`.
    pub(crate) async fn upload_chunk(
        &self,
        id: Uuid,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar(statements::CHUNK)
            .bind(id.to_string())
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .fetch_optional(self.pool)
            .await
            .sql()
    }

    /// Uploads started before `before` that no application names (at most 1000).
    pub(crate) async fn stale_uploads(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(statements::STALE_UPLOADS)
            .bind(rfc3339(before))
            .fetch_all(self.pool)
            .await
            .sql()?;
        ids.iter().map(|id| parse_uuid(id)).collect()
    }

    pub(crate) async fn application(
        &self,
        id: Uuid,
    ) -> Result<Option<ApplicationRecord>, StoreError> {
        let row = sqlx::query_as::<DB, ApplicationRow>(statements::APPLICATION)
            .bind(id.to_string())
            .fetch_optional(self.pool)
            .await
            .sql()?;
        let Some(row) = row else { return Ok(None) };
        let history = sqlx::query_as::<DB, HistoryRow>(statements::HISTORY)
            .bind(id.to_string())
            .fetch_all(self.pool)
            .await
            .sql()?;
        let follow_ups = sqlx::query_as::<DB, FollowUpRow>(statements::FOLLOW_UPS)
            .bind(id.to_string())
            .fetch_all(self.pool)
            .await
            .sql()?;
        row.into_record(history, follow_ups).map(Some)
    }

    pub(crate) async fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(DB::NEXT_DUE)
            .fetch_one(self.pool)
            .await
            .sql()?;
        Ok(due.and_then(from_millis))
    }

    pub(crate) async fn sealed_message(&self, item: &WorkItem) -> Result<Vec<u8>, StoreError> {
        let sealed: Option<Vec<u8>> = sqlx::query_scalar(statements::SEALED)
            .bind(item.application_id.to_string())
            .bind(item.procedure_id.as_str())
            .fetch_one(self.pool)
            .await
            .sql()?;
        sealed.ok_or_else(|| {
            StoreError::Corrupt(format!("message {} has no sealed body", item.message_id))
        })
    }

    /// The XML application `id`'s message was sealed from, if kept.
    pub(crate) async fn sent_xml(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        let kept: Option<Option<String>> = sqlx::query_scalar(statements::SENT_XML)
            .bind(id.to_string())
            .fetch_optional(self.pool)
            .await
            .sql()?;
        Ok(kept.flatten())
    }

    pub(crate) async fn pickups(
        &self,
        procedure: &str,
        limit: u32,
    ) -> Result<Vec<Pickup>, StoreError> {
        sqlx::query_as::<DB, PickupRow>(DB::PICKUPS)
            .bind(procedure)
            .bind(i64::from(limit))
            .fetch_all(self.pool)
            .await
            .sql()?
            .into_iter()
            .map(|row| row.into_pickup().map(|(pickup, _)| pickup))
            .collect()
    }

    pub(crate) async fn pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
    ) -> Result<Option<(Pickup, Vec<u8>)>, StoreError> {
        let params = [procedure, &message_id.to_string()];
        self.optional(DB::PICKUP, &params, PickupRow::into_pickup)
            .await
    }

    /// The answer to an acknowledgement of message `message_id` of `procedure` that
    /// found it not waiting: collected already, or unknown.
    pub(crate) async fn pickup_answer(
        &self,
        procedure: &str,
        message_id: Uuid,
    ) -> Result<PickupAck, StoreError> {
        let step: Option<String> = sqlx::query_scalar(statements::STEP)
            .bind(procedure)
            .bind(message_id.to_string())
            .fetch_optional(self.pool)
            .await
            .sql()?;
        let stage = step.as_deref().map(Stage::parse).transpose()?;
        Ok(pickup_ack(stage).unwrap_or(PickupAck::Unknown))
    }

    pub(crate) async fn attachment_fragment(
        &self,
        procedure: &str,
        message_id: Uuid,
        position: u32,
        fragment: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // A fragment far beyond any attachment (`k` up to u64::MAX) is simply not there:
        // the offset saturates instead of overflowing, and stays within PostgreSQL's
        // `int` (an inline attachment, held in a request body, is far below 2 GiB; which
        // fragments exist is decided by the size, below).
        let offset = fragment
            .saturating_mul(FRAGMENT_BYTES as u64)
            .saturating_add(1)
            .min(i32::MAX as u64);
        let row: Option<FragmentRow> = sqlx::query_as(DB::FRAGMENT)
            .bind(i64::try_from(offset).unwrap_or(i64::from(i32::MAX)))
            .bind(FRAGMENT_BYTES as i64)
            .bind(procedure)
            .bind(message_id.to_string())
            .bind(i64::from(position))
            .fetch_optional(self.pool)
            .await
            .sql()?;
        match row.map(|row| row.locate(fragment)) {
            None | Some(Fragment::None) => Ok(None),
            Some(Fragment::Inline(part)) => Ok(part),
            Some(Fragment::Chunk(upload)) => Ok(sqlx::query_scalar(statements::CHUNK)
                .bind(upload)
                .bind(i64::try_from(fragment).unwrap_or(i64::MAX))
                .fetch_optional(self.pool)
                .await
                .sql()?),
        }
    }

    /// What recording `receipt` would answer now (see [`rules::check_receipt`]).
    pub(crate) async fn check_receipt(
        &self,
        receipt: &ReceiptRecord,
    ) -> Result<ReceiptOutcome, StoreError> {
        let earlier: Option<(String, String)> = sqlx::query_as(
            "SELECT content_sha256, signed_sha256 FROM receipts
             WHERE procedure_id = $1 AND receipt_id = $2",
        )
        .bind(receipt.procedure_id.clone())
        .bind(receipt.receipt_id.clone())
        .fetch_optional(self.pool)
        .await
        .sql()?;
        let entry: Option<(String, String)> = sqlx::query_as(
            "SELECT d.step, a.status FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.message_id = $1 AND d.procedure_id = $2 AND d.application_id = $3",
        )
        .bind(receipt.message_id.to_string())
        .bind(receipt.procedure_id.clone())
        .bind(receipt.application_id.to_string())
        .fetch_optional(self.pool)
        .await
        .sql()?;
        let entry = entry
            .map(|(step, status)| {
                Ok::<_, StoreError>((Stage::parse(&step)?, parse_status(&status)?))
            })
            .transpose()?;
        Ok(rules::check_receipt(earlier, entry, receipt))
    }

    pub(crate) async fn mailbox(
        &self,
        id: Uuid,
    ) -> Result<(Vec<MailboxEntry>, Vec<DocumentInfo>), StoreError> {
        let entries = sqlx::query_as::<DB, MailboxRow>(statements::MAILBOX)
            .bind(id.to_string())
            .fetch_all(self.pool)
            .await
            .sql()?;
        let documents = sqlx::query_as::<DB, DocumentRow>(DB::DOCUMENTS)
            .bind(id.to_string())
            .fetch_all(self.pool)
            .await
            .sql()?;
        super::rows::mailbox(entries, documents)
    }

    pub(crate) async fn document(
        &self,
        application_id: Uuid,
        document_id: Uuid,
    ) -> Result<Option<(DocumentInfo, Vec<u8>)>, StoreError> {
        let (document_id, application_id) = (document_id.to_string(), application_id.to_string());
        let params = [document_id.as_str(), &application_id];
        self.optional(statements::DOCUMENT, &params, DocumentRow::into_document)
            .await
    }

    /// Every row of `query`, as the core's values.
    async fn all<R, T>(
        &self,
        query: sqlx::query::QueryAs<'_, DB, R, DB::Arguments>,
    ) -> Result<Vec<T>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, DB::Row> + Send + Unpin,
        T: TryFrom<R, Error = StoreError>,
    {
        let rows = query.fetch_all(self.pool).await.sql()?;
        rows.into_iter().map(T::try_from).collect()
    }

    pub(crate) async fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        self.all::<BacklogRow, _>(sqlx::query_as(DB::BACKLOG)).await
    }

    pub(crate) async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.all::<DeadLetterRow, _>(sqlx::query_as(DB::DEAD_LETTERS))
            .await
    }

    pub(crate) async fn search(
        &self,
        query: &ApplicationQuery,
    ) -> Result<Vec<ApplicationSummary>, StoreError> {
        let search = sqlx::query_as::<DB, SummaryRow>(statements::SEARCH)
            .bind(query.receipt.as_deref())
            .bind(query.service.as_deref())
            .bind(query.procedure.as_deref())
            .bind(query.status.map(Status::as_str))
            .bind(query.from.map(rfc3339))
            .bind(query.until.map(rfc3339))
            .bind(i64::from(query.limit))
            .bind(i64::from(query.follow_ups));
        self.all(search).await
    }

    /// Applications of `service` whose final state was reached before `final_before`
    /// and whose personal data is still there, oldest first.
    pub(crate) async fn purge_candidates(
        &self,
        service: &str,
        final_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        // Seconds precision compares correctly as text ("YYYY-MM-DDTHH:MM:SS").
        let ids: Vec<String> = sqlx::query_scalar(statements::PURGE_CANDIDATES)
            .bind(service)
            .bind(rfc3339(final_before))
            .bind(i64::from(limit))
            .fetch_all(self.pool)
            .await
            .sql()?;
        ids.iter().map(|id| parse_uuid(id)).collect()
    }
}
