//! The PostgreSQL store: one database shared by several hub instances.
//!
//! The same tables and the same semantics as [`crate::SqliteStore`], with what several
//! processes on one database need:
//!
//! - **The audit chain cannot fork.** Every transaction that appends a history and audit
//!   entry (and so every state change) first takes one transaction-level advisory lock
//!   (`chain_lock!`), the counterpart of SQLite's `BEGIN IMMEDIATE`: such transactions
//!   run one after the other across all instances, and reading the last entry's hash
//!   inside one sees every earlier append (READ COMMITTED takes a new snapshot per
//!   statement, and the lock is only granted once the previous holder has committed).
//!   The check-then-write steps (idempotency keys, receipts, pickup acknowledgements)
//!   are serialised by the same lock.
//! - **Claims never overlap.** `claim` locks the rows it takes with `FOR UPDATE SKIP
//!   LOCKED` and re-checks them under the lock: two instances never lease the same entry,
//!   and neither waits for the other. An entry whose lease has run out may be claimed by
//!   any instance: that is how the work of an instance that died is taken over.
//! - **Leases are not released at start-up** (see `release_stale_leases`). Lease times
//!   come from each instance's clock, so the instances' clocks must agree (NTP) to well
//!   within a lease's length.
//!
//! Times the audit hash covers (and those handed back exactly as given) are stored as
//! RFC 3339 text, as in SQLite; due and lease times are unix milliseconds.
//!
//! Needs PostgreSQL 12 or later (`AS MATERIALIZED`, `sha256()`).

use crate::Sql;
use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::postgres_audit as audit;
use kopplung_core::audit::content;
use kopplung_core::audit::{
    AuditEntry, AuditReport, AuditVerifier, Binding, Checkpoint, chain_end, sha256_hex,
};
use kopplung_core::store::{
    Accepted, ApplicationQuery, ApplicationRecord, ApplicationSummary, Attachment,
    AttachmentContent, Backlog, DeadLetter, DeliveryRecord, DocumentInfo, FRAGMENT_BYTES,
    HistoryEntry, IdempotencyKey, Inserted, MailboxEntry, NewApplication, NewUpload, Pickup,
    PickupAck, PrepareInput, ReceiptOutcome, ReceiptRecord, Status, Step, Store, StoreError,
    UploadInfo, WorkItem, fragment_count,
};

/// The key of the transaction-level advisory lock that serialises every transaction
/// appending to the history and audit chain ("kopplung" in ASCII, 0x6b6f70706c756e67).
/// A macro, so that the statement that takes it stays a string literal.
macro_rules! chain_lock {
    () => {
        7741529912631455335
    };
}
#[cfg(test)]
const CHAIN_LOCK: i64 = chain_lock!();

/// Connections per instance.
const POOL_SIZE: u32 = 8;

pub struct PostgresStore {
    pool: PgPool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`) and brings
    /// its schema up to date. Several instances may connect at once, also to a fresh
    /// database: the migrator holds an advisory lock while it checks and migrates, so the
    /// others wait and then find the schema current.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect(url)
            .await
            .sql()?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .sql()?;
        Ok(Self { pool })
    }

    /// Starts a transaction that may change state: it takes the chain lock at once, so
    /// that it runs alone among such transactions of every instance (see the module
    /// documentation). The lock is released with the commit or rollback.
    async fn write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        // BEGIN and the lock in one round trip (a simple query of two statements).
        self.pool
            .begin_with(concat!(
                "BEGIN; SELECT pg_advisory_xact_lock(",
                chain_lock!(),
                ")"
            ))
            .await
            .sql()
    }
}

/// Stored times are UTC: then their text compares in time order (retention, search).
fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| StoreError::Corrupt(format!("time {s}: {e}")))
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("uuid {s}: {e}")))
}

fn count(n: i64) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// Appends the history entry of a state change and its audit entry, at the same time.
/// `binding`: what the audit entry binds by hash (see [`kopplung_core::audit`]).
async fn append_history(
    tx: &mut Transaction<'static, Postgres>,
    application_id: Uuid,
    status: Status,
    detail: &str,
    binding: Binding,
) -> Result<(), StoreError> {
    let at = rfc3339(OffsetDateTime::now_utc());
    sqlx::query("INSERT INTO history (application_id, at, status, detail) VALUES ($1, $2, $3, $4)")
        .bind(application_id.to_string())
        .bind(&at)
        .bind(status.as_str())
        .bind(detail)
        .execute(&mut **tx)
        .await
        .sql()?;
    append_audit(tx, application_id, &at, status, detail, binding).await
}

/// A state change's new status, history entry and audit entry; the status and the
/// history entry in one statement (each statement is a round trip).
async fn change_status(
    tx: &mut Transaction<'static, Postgres>,
    application_id: Uuid,
    status: Status,
    detail: &str,
    binding: Binding,
) -> Result<(), StoreError> {
    let at = rfc3339(OffsetDateTime::now_utc());
    sqlx::query(
        "WITH changed AS (UPDATE applications SET status = $3, updated_at = $2 WHERE id = $1)
         INSERT INTO history (application_id, at, status, detail) VALUES ($1, $2, $3, $4)",
    )
    .bind(application_id.to_string())
    .bind(&at)
    .bind(status.as_str())
    .bind(detail)
    .execute(&mut **tx)
    .await
    .sql()?;
    append_audit(tx, application_id, &at, status, detail, binding).await
}

/// Links one entry to the end of the audit chain. Must run inside a transaction begun
/// with [`PostgresStore::write`], which holds the chain lock, so that no other writer
/// (of any instance) appends in between.
async fn append_audit(
    tx: &mut Transaction<'static, Postgres>,
    application_id: Uuid,
    at: &str,
    status: Status,
    detail: &str,
    binding: Binding,
) -> Result<(), StoreError> {
    // The last entry, and the highest seq ever issued: if entries at the end were
    // removed, the next one leaves a gap that verification reports, instead of hiding
    // the removal. One statement: each is a round trip.
    let (last_seq, last_hash, issued): (Option<i64>, Option<String>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1),
                    (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),
                    (SELECT seq FROM audit_issued WHERE singleton)",
    )
    .fetch_one(&mut **tx)
    .await
    .sql()?;
    let end = chain_end(last_seq, last_hash, issued);
    let entry = AuditEntry::next(
        end.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
        application_id,
        at,
        status.as_str(),
        detail,
        binding,
    );
    // The entry and the highest seq issued, in one statement.
    sqlx::query(
        "WITH entry AS (
           INSERT INTO audit_log (seq, application_id, at, status, detail, message_sha256, prev_hash, hash, version, content_sha256)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10))
         INSERT INTO audit_issued (singleton, seq) VALUES (TRUE, $1)
         ON CONFLICT (singleton) DO UPDATE SET seq = EXCLUDED.seq",
    )
    .bind(entry.seq)
    .bind(&entry.application_id)
    .bind(&entry.at)
    .bind(&entry.status)
    .bind(&entry.detail)
    .bind(&entry.message_sha256)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .bind(entry.version)
    .bind(&entry.content_sha256)
    .execute(&mut **tx)
    .await.sql()?;
    Ok(())
}

/// The hex SHA-256 of the sealed message stored for an outbox entry, if there is one.
async fn stored_message_sha256(
    tx: &mut Transaction<'static, Postgres>,
    item: &WorkItem,
) -> Result<Option<String>, StoreError> {
    let sealed: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT sealed FROM deliveries WHERE application_id = $1 AND procedure_id = $2",
    )
    .bind(item.application_id.to_string())
    .bind(&item.procedure_id)
    .fetch_one(&mut **tx)
    .await
    .sql()?;
    Ok(sealed.as_deref().map(sha256_hex))
}

/// Binds the `application_id = $n AND procedure_id = $n+1 AND lease_owner = $n+2` of an
/// outbox update (the last three parameters): only the holder of the lease may change
/// the entry.
trait BindLease<'q> {
    fn bind_lease(self, item: &'q WorkItem) -> Self;
}

impl<'q> BindLease<'q> for sqlx::query::Query<'q, Postgres, PgArguments> {
    fn bind_lease(self, item: &'q WorkItem) -> Self {
        self.bind(item.application_id.to_string())
            .bind(&item.procedure_id)
            .bind(&item.lease)
    }
}

/// Completes a state change whose outbox update touched `updated` rows: the status and
/// its history and audit entries in the same transaction, or nothing if the lease was
/// lost. `sealed` is the message just sealed; otherwise the stored one (if any) is hashed.
async fn transition(
    mut tx: Transaction<'static, Postgres>,
    updated: u64,
    item: &WorkItem,
    status: Status,
    detail: &str,
    sealed: Option<&[u8]>,
) -> Result<bool, StoreError> {
    if updated != 1 {
        return Ok(false);
    }
    let message_sha256 = match sealed {
        Some(sealed) => Some(sha256_hex(sealed)),
        None => stored_message_sha256(&mut tx, item).await?,
    };
    change_status(
        &mut tx,
        item.application_id,
        status,
        detail,
        Binding::message(message_sha256),
    )
    .await?;
    tx.commit().await.sql()?;
    Ok(true)
}

fn document_info(row: &PgRow) -> Result<DocumentInfo, StoreError> {
    Ok(DocumentInfo {
        id: parse_uuid(&row.try_get::<String, _>("id").sql()?)?,
        filename: row.try_get("filename").sql()?,
        media_type: row.try_get("media_type").sql()?,
        size: row.try_get::<i64, _>("size").sql()?.try_into().unwrap_or(0),
        sha512: row.try_get("sha512").sql()?,
    })
}

/// A pickup from a row with `message_id, application_id, receipt, service_key,
/// message_type, due_at`, the message's `size` and `sha256`.
fn pickup_of(row: &PgRow) -> Result<Pickup, StoreError> {
    let since: i64 = row.try_get("due_at").sql()?;
    let size: Option<i64> = row.try_get("size").sql()?;
    let sha256: Option<String> = row.try_get("sha256").sql()?;
    let (Some(size), Some(sha256)) = (size, sha256) else {
        return Err(StoreError::Corrupt("a pickup without its message".into()));
    };
    Ok(Pickup {
        message_id: parse_uuid(&row.try_get::<String, _>("message_id").sql()?)?,
        application_id: parse_uuid(&row.try_get::<String, _>("application_id").sql()?)?,
        receipt: row.try_get("receipt").sql()?,
        region: row.try_get("region").sql()?,
        service: row.try_get("service_key").sql()?,
        message_type: row.try_get("message_type").sql()?,
        size: size.try_into().unwrap_or(0),
        sha256,
        available_since: from_millis(since)
            .ok_or_else(|| StoreError::Corrupt(format!("time {since}")))?,
    })
}

fn work_item(row: &PgRow, lease: &str) -> Result<WorkItem, StoreError> {
    let step: String = row.try_get("step").sql()?;
    Ok(WorkItem {
        application_id: parse_uuid(&row.try_get::<String, _>("application_id").sql()?)?,
        service_key: row.try_get("service_key").sql()?,
        procedure_id: row.try_get("procedure_id").sql()?,
        message_id: parse_uuid(&row.try_get::<String, _>("message_id").sql()?)?,
        message_type: row.try_get("message_type").sql()?,
        step: match step.as_str() {
            "prepare" => Step::Prepare,
            "deliver" => Step::Deliver,
            other => return Err(StoreError::Corrupt(format!("claimed step {other}"))),
        },
        attempts: count(row.try_get("attempts").sql()?),
        lease: lease.to_owned(),
        accepted_at: row
            .try_get::<Option<String>, _>("accepted_at")
            .sql()?
            .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()),
    })
}

/// Looks up an idempotency key inside an open transaction.
async fn earlier_answer(
    tx: &mut Transaction<'static, Postgres>,
    client_id: &str,
    key: &IdempotencyKey,
) -> Result<Option<Inserted>, StoreError> {
    let row = sqlx::query(
        "SELECT i.request_sha256, a.id, a.receipt FROM idempotency_keys i
         JOIN applications a ON a.id = i.application_id
         WHERE i.client_id = $1 AND i.key = $2",
    )
    .bind(client_id)
    .bind(&key.key)
    .fetch_optional(&mut **tx)
    .await
    .sql()?;
    let Some(row) = row else { return Ok(None) };
    let hash: String = row.try_get("request_sha256").sql()?;
    if hash != key.request_sha256 {
        return Ok(Some(Inserted::KeyConflict));
    }
    Ok(Some(Inserted::Replayed(Accepted {
        id: parse_uuid(&row.try_get::<String, _>("id").sql()?)?,
        receipt: row.try_get("receipt").sql()?,
    })))
}

#[async_trait]
impl Store for PostgresStore {
    // Uploads touch neither history nor audit chain: plain statements, no chain lock.
    async fn create_upload(&self, upload: &NewUpload) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO uploads (id, client_id, filename, media_type, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(upload.id.to_string())
        .bind(&upload.client_id)
        .bind(&upload.filename)
        .bind(&upload.media_type)
        .bind(rfc3339(upload.created_at))
        .execute(&self.pool)
        .await
        .sql()?;
        Ok(())
    }

    async fn append_upload_chunk(
        &self,
        id: Uuid,
        seq: u64,
        content: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO upload_chunks (upload_id, seq, content) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(content)
            .execute(&self.pool)
            .await
            .sql()?;
        Ok(())
    }

    async fn complete_upload(&self, id: Uuid, size: u64, sha512: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET size = $1, sha512 = $2, completed_at = $3 WHERE id = $4")
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .bind(sha512)
            .bind(rfc3339(OffsetDateTime::now_utc()))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .sql()?;
        Ok(())
    }

    async fn upload(&self, id: Uuid) -> Result<Option<UploadInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, filename, media_type, size, sha512, application_id
             FROM uploads WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .sql()?;
        let Some(row) = row else { return Ok(None) };
        let size: Option<i64> = row.try_get("size").sql()?;
        let sha512: Option<String> = row.try_get("sha512").sql()?;
        let application: Option<String> = row.try_get("application_id").sql()?;
        Ok(Some(UploadInfo {
            id,
            client_id: row.try_get("client_id").sql()?,
            filename: row.try_get("filename").sql()?,
            media_type: row.try_get("media_type").sql()?,
            complete: size
                .zip(sha512)
                .map(|(size, hash)| (u64::try_from(size).unwrap_or_default(), hash)),
            application_id: application.as_deref().map(parse_uuid).transpose()?,
        }))
    }

    async fn discard_upload(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.sql()?;
        let id = id.to_string();
        // Locked against a concurrent intake binding it.
        let free: Option<String> = sqlx::query_scalar(
            "SELECT id FROM uploads WHERE id = $1 AND application_id IS NULL FOR UPDATE",
        )
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await
        .sql()?;
        if free.is_none() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM upload_chunks WHERE upload_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    async fn discard_stale_uploads(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM uploads WHERE application_id IS NULL
               AND substr(created_at, 1, 19) < substr($1, 1, 19) LIMIT 1000",
        )
        .bind(rfc3339(before))
        .fetch_all(&self.pool)
        .await
        .sql()?;
        let mut discarded = 0;
        for id in stale {
            if self.discard_upload(parse_uuid(&id)?).await? {
                discarded += 1;
            }
        }
        Ok(discarded)
    }

    async fn attachment_fragment(
        &self,
        procedure: &str,
        message_id: Uuid,
        position: u32,
        fragment: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query(
            "SELECT a.upload_id, a.size,
                    CASE WHEN a.upload_id IS NULL
                         THEN substring(a.content FROM $1::int FOR $2::int) END AS part
             FROM deliveries d JOIN attachments a ON a.application_id = d.application_id
             WHERE d.procedure_id = $3 AND d.message_id = $4 AND a.position = $5",
        )
        .bind(i32::try_from(fragment.saturating_mul(FRAGMENT_BYTES as u64) + 1).unwrap_or(i32::MAX))
        .bind(FRAGMENT_BYTES as i32)
        .bind(procedure)
        .bind(message_id.to_string())
        .bind(i64::from(position))
        .fetch_optional(&self.pool)
        .await
        .sql()?;
        let Some(row) = row else { return Ok(None) };
        let size = u64::try_from(row.try_get::<i64, _>("size").sql()?).unwrap_or_default();
        if fragment >= fragment_count(size) {
            return Ok(None);
        }
        match row.try_get::<Option<String>, _>("upload_id").sql()? {
            None => Ok(row.try_get::<Option<Vec<u8>>, _>("part").sql()?),
            Some(upload) => Ok(sqlx::query_scalar(
                "SELECT content FROM upload_chunks WHERE upload_id = $1 AND seq = $2",
            )
            .bind(upload)
            .bind(i64::try_from(fragment).unwrap_or(i64::MAX))
            .fetch_optional(&self.pool)
            .await
            .sql()?),
        }
    }

    async fn insert_application(&self, new: &NewApplication) -> Result<Inserted, StoreError> {
        let form = new.stored_form();
        // Under the chain lock: two instances handed the same idempotency key at once
        // answer one `Created` and one `Replayed`.
        let mut tx = self.write().await?;
        if let Some(key) = &new.idempotency
            && let Some(answer) = earlier_answer(&mut tx, &new.client_id, key).await?
        {
            return Ok(answer);
        }
        let id = new.id.to_string();
        let at = rfc3339(new.received_at);
        let inserted = sqlx::query(
            "INSERT INTO applications
               (id, receipt, client_id, service_key, region, procedure_id, status, payload, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(&new.receipt)
        .bind(&new.client_id)
        .bind(&new.service_key)
        .bind(&new.region)
        .bind(&new.procedure_id)
        .bind(Status::Accepted.as_str())
        .bind(&form.payload)
        .bind(&at)
        .bind(&at)
        .execute(&mut *tx)
        .await;
        match inserted {
            // The constraint is `applications_receipt_key`; the failed statement aborted
            // the transaction, which is rolled back when dropped.
            Err(sqlx::Error::Database(e))
                if e.is_unique_violation()
                    && e.constraint().is_some_and(|c| c.contains("receipt")) =>
            {
                return Ok(Inserted::ReceiptTaken);
            }
            other => {
                other.sql()?;
            }
        }
        for (position, attachment) in new.attachments.iter().enumerate() {
            let (content, upload) = match &attachment.content {
                AttachmentContent::Inline(content) => (content.as_slice(), None),
                AttachmentContent::Upload(upload) => {
                    // Bound here, in the same transaction: one upload, one application.
                    let bound = sqlx::query(
                        "UPDATE uploads SET application_id = $1
                         WHERE id = $2 AND client_id = $3 AND application_id IS NULL
                           AND completed_at IS NOT NULL",
                    )
                    .bind(&id)
                    .bind(upload.to_string())
                    .bind(&new.client_id)
                    .execute(&mut *tx)
                    .await
                    .sql()?;
                    if bound.rows_affected() != 1 {
                        return Ok(Inserted::UploadTaken(position));
                    }
                    (&[][..], Some(upload.to_string()))
                }
            };
            sqlx::query(
                "INSERT INTO attachments (application_id, position, filename, media_type, size, sha512, content, upload_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&id)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(&attachment.filename)
            .bind(&attachment.media_type)
            .bind(i64::try_from(attachment.size).unwrap_or(i64::MAX))
            .bind(&attachment.sha512)
            .bind(content)
            .bind(upload)
            .execute(&mut *tx)
            .await.sql()?;
        }
        sqlx::query(
            "INSERT INTO deliveries (application_id, service_key, procedure_id, message_id, message_type, step, due_at)
             VALUES ($1, $2, $3, $4, $5, 'prepare', $6)",
        )
        .bind(&id)
        .bind(&new.service_key)
        .bind(&new.procedure_id)
        .bind(new.message_id.to_string())
        .bind(&new.message_type)
        .bind(millis(new.received_at))
        .execute(&mut *tx)
        .await.sql()?;
        if let Some(key) = &new.idempotency {
            sqlx::query(
                "INSERT INTO idempotency_keys (client_id, key, request_sha256, application_id, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&new.client_id)
            .bind(&key.key)
            .bind(&key.request_sha256)
            .bind(&id)
            .bind(&at)
            .execute(&mut *tx)
            .await.sql()?;
        }
        append_history(
            &mut tx,
            new.id,
            Status::Accepted,
            &format!("accepted from client {}", new.client_id),
            Binding {
                message_sha256: None,
                content_sha256: Some(form.content_sha256),
            },
        )
        .await?;
        tx.commit().await.sql()?;
        Ok(Inserted::Created(Accepted {
            id: new.id,
            receipt: new.receipt.clone(),
        }))
    }

    async fn idempotent_answer(
        &self,
        client_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Inserted>, StoreError> {
        let mut tx = self.pool.begin().await.sql()?;
        let answer = earlier_answer(&mut tx, client_id, key).await?;
        tx.rollback().await.sql()?;
        Ok(answer)
    }

    async fn application(&self, id: Uuid) -> Result<Option<ApplicationRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.receipt, a.client_id, a.service_key, a.region, a.status, a.created_at,
                    a.updated_at, d.procedure_id, d.message_id, d.message_type, d.attempts,
                    d.last_error, d.due_at, d.step, d.delivered_at
             FROM applications a JOIN deliveries d ON d.application_id = a.id
             WHERE a.id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .sql()?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status").sql()?;
        let step: String = row.try_get("step").sql()?;
        let pending = step == "prepare" || step == "deliver";
        let history = sqlx::query(
            "SELECT at, status, detail FROM history WHERE application_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .sql()?
        .iter()
        .map(|h| {
            Ok(HistoryEntry {
                at: parse_time(&h.try_get::<String, _>("at").sql()?)?,
                status: h.try_get("status").sql()?,
                detail: h.try_get("detail").sql()?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(ApplicationRecord {
            id,
            receipt: row.try_get("receipt").sql()?,
            client_id: row.try_get("client_id").sql()?,
            service: row.try_get("service_key").sql()?,
            region: row.try_get("region").sql()?,
            status: Status::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
            created_at: parse_time(&row.try_get::<String, _>("created_at").sql()?)?,
            updated_at: parse_time(&row.try_get::<String, _>("updated_at").sql()?)?,
            delivery: DeliveryRecord {
                procedure: row.try_get("procedure_id").sql()?,
                message_id: parse_uuid(&row.try_get::<String, _>("message_id").sql()?)?,
                message_type: row.try_get("message_type").sql()?,
                attempts: count(row.try_get("attempts").sql()?),
                last_error: row.try_get("last_error").sql()?,
                next_attempt_at: if pending {
                    from_millis(row.try_get("due_at").sql()?)
                } else {
                    None
                },
                delivered_at: row
                    .try_get::<Option<String>, _>("delivered_at")
                    .sql()?
                    .map(|s| parse_time(&s))
                    .transpose()?,
            },
            history,
        }))
    }

    async fn claim(
        &self,
        lease: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        capacity: &BTreeMap<String, u32>,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let procedures: Vec<String> = capacity.keys().cloned().collect();
        let capacities: Vec<i64> = capacity.values().map(|c| i64::from(*c)).collect();
        // Procedures without capacity left stay out of the candidate window, which keeps a
        // claim's cost independent of the backlog (see the SQLite store).
        let saturated: Vec<String> = capacity
            .iter()
            .filter(|(_, c)| **c == 0)
            .map(|(id, _)| id.clone())
            .collect();
        // `ranked`/`picked`: at most `capacity[procedure]` entries per procedure (1 for
        // one not in the map, so that its entries still surface their error), oldest due
        // first, `limit` in all, from the statement's snapshot. (Window functions and
        // FOR UPDATE cannot share a query level.)
        // `locked`: of those, the rows no other claim holds right now, locked for this
        // statement's transaction and re-checked on their latest version: an entry
        // another instance claimed after our snapshot was taken is due no more and drops
        // out, one it is claiming at this moment is skipped. So no entry is leased
        // twice, and no claim waits for another.
        let rows = sqlx::query(
            "WITH candidates AS (
                 SELECT application_id, procedure_id, due_at
                 FROM deliveries
                 WHERE step IN ('prepare', 'deliver') AND due_at <= $3
                   AND (lease_until IS NULL OR lease_until < $3)
                   AND NOT (procedure_id = ANY($7::text[]))
                 ORDER BY due_at, application_id
                 LIMIT $8
             ),
             ranked AS (
                 SELECT application_id, procedure_id, due_at,
                        ROW_NUMBER() OVER (PARTITION BY procedure_id ORDER BY due_at, application_id) AS n
                 FROM candidates
             ),
             picked AS (
                 SELECT r.application_id, r.procedure_id
                 FROM ranked r
                 LEFT JOIN UNNEST($5::text[], $6::bigint[]) AS c(procedure_id, capacity)
                   ON c.procedure_id = r.procedure_id
                 WHERE r.n <= COALESCE(c.capacity, 1)
                 ORDER BY r.due_at, r.application_id
                 LIMIT $4
             ),
             locked AS MATERIALIZED (
                 SELECT d.application_id, d.procedure_id
                 FROM deliveries d
                 WHERE (d.application_id, d.procedure_id) IN (SELECT application_id, procedure_id FROM picked)
                   AND d.step IN ('prepare', 'deliver') AND d.due_at <= $3
                   AND (d.lease_until IS NULL OR d.lease_until < $3)
                 FOR UPDATE OF d SKIP LOCKED
             )
             UPDATE deliveries d SET lease_owner = $1, lease_until = $2
             FROM locked l
             WHERE d.application_id = l.application_id AND d.procedure_id = l.procedure_id
             RETURNING d.application_id, d.service_key, d.procedure_id, d.message_id,
                       d.message_type, d.step, d.attempts,
                       (SELECT a.created_at FROM applications a WHERE a.id = d.application_id) AS accepted_at",
        )
        .bind(lease)
        .bind(millis(lease_until))
        .bind(millis(now))
        .bind(i64::from(limit))
        .bind(procedures)
        .bind(capacities)
        .bind(saturated)
        .bind(i64::from(limit.saturating_mul(4)))
        .fetch_all(&self.pool)
        .await.sql()?;
        rows.iter().map(|row| work_item(row, lease)).collect()
    }

    async fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(GREATEST(due_at, COALESCE(lease_until, 0))) FROM deliveries
             WHERE step IN ('prepare', 'deliver')",
        )
        .fetch_one(&self.pool)
        .await
        .sql()?;
        Ok(due.and_then(from_millis))
    }

    async fn prepare_input(&self, id: Uuid) -> Result<PrepareInput, StoreError> {
        let row = sqlx::query(
            "SELECT receipt, service_key, region, payload, created_at FROM applications WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await.sql()?;
        let payload: String = row.try_get("payload").sql()?;
        let attachments = sqlx::query(
            "SELECT filename, media_type, sha512, size, upload_id,
                    CASE WHEN upload_id IS NULL THEN content ELSE ''::bytea END AS content
             FROM attachments WHERE application_id = $1 ORDER BY position",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .sql()?
        .iter()
        .map(|a| {
            let upload: Option<String> = a.try_get("upload_id").sql()?;
            Ok(Attachment {
                filename: a.try_get("filename").sql()?,
                media_type: a.try_get("media_type").sql()?,
                sha512: a.try_get("sha512").sql()?,
                size: u64::try_from(a.try_get::<i64, _>("size").sql()?).unwrap_or_default(),
                content: match upload {
                    Some(upload) => AttachmentContent::Upload(parse_uuid(&upload)?),
                    None => AttachmentContent::Inline(a.try_get("content").sql()?),
                },
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(PrepareInput {
            id,
            receipt: row.try_get("receipt").sql()?,
            service_key: row.try_get("service_key").sql()?,
            region: row.try_get("region").sql()?,
            payload: serde_json::from_str(&payload)
                .map_err(|e| StoreError::Corrupt(format!("payload of {id}: {e}")))?,
            attachments,
            created_at: parse_time(&row.try_get::<String, _>("created_at").sql()?)?,
        })
    }

    async fn sealed_message(&self, item: &WorkItem) -> Result<Vec<u8>, StoreError> {
        let sealed: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT sealed FROM deliveries WHERE application_id = $1 AND procedure_id = $2",
        )
        .bind(item.application_id.to_string())
        .bind(&item.procedure_id)
        .fetch_one(&self.pool)
        .await
        .sql()?;
        sealed.ok_or_else(|| {
            StoreError::Corrupt(format!("message {} has no sealed body", item.message_id))
        })
    }

    async fn record_prepared(
        &self,
        item: &WorkItem,
        sealed: &[u8],
        detail: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE deliveries SET step = 'deliver', sealed = $1, last_error = NULL
             WHERE application_id = $2 AND procedure_id = $3 AND lease_owner = $4",
        )
        .bind(sealed)
        .bind_lease(item)
        .execute(&mut *tx)
        .await
        .sql()?;
        transition(
            tx,
            updated.rows_affected(),
            item,
            Status::Prepared,
            detail,
            Some(sealed),
        )
        .await
    }

    async fn record_delivered(&self, item: &WorkItem, detail: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE deliveries SET step = 'done', attempts = attempts + 1, last_error = NULL,
                    lease_owner = NULL, lease_until = NULL, delivered_at = $1
             WHERE application_id = $2 AND procedure_id = $3 AND lease_owner = $4",
        )
        .bind(rfc3339(OffsetDateTime::now_utc()))
        .bind_lease(item)
        .execute(&mut *tx)
        .await
        .sql()?;
        // The message delivered is the stored one: its hash is read back in `transition`.
        transition(
            tx,
            updated.rows_affected(),
            item,
            Status::Delivered,
            detail,
            None,
        )
        .await
    }

    async fn record_retry(
        &self,
        item: &WorkItem,
        due: OffsetDateTime,
        error: &str,
    ) -> Result<bool, StoreError> {
        // No state change, no history: no chain lock needed; the row lock of the update
        // and the lease condition suffice.
        let updated = sqlx::query(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = $1, due_at = $2,
                    lease_owner = NULL, lease_until = NULL
             WHERE application_id = $3 AND procedure_id = $4 AND lease_owner = $5",
        )
        .bind(error)
        .bind(millis(due))
        .bind_lease(item)
        .execute(&self.pool)
        .await
        .sql()?;
        Ok(updated.rows_affected() == 1)
    }

    async fn record_wait(
        &self,
        item: &WorkItem,
        due: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE deliveries SET last_error = $1, due_at = $2, lease_owner = NULL, lease_until = NULL
             WHERE application_id = $3 AND procedure_id = $4 AND lease_owner = $5",
        )
        .bind(reason)
        .bind(millis(due))
        .bind_lease(item)
        .execute(&self.pool)
        .await.sql()?;
        Ok(updated.rows_affected() == 1)
    }

    async fn record_awaiting_pickup(
        &self,
        item: &WorkItem,
        detail: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE deliveries SET step = 'pickup', last_error = NULL, due_at = $1,
                    lease_owner = NULL, lease_until = NULL
             WHERE application_id = $2 AND procedure_id = $3 AND lease_owner = $4",
        )
        .bind(millis(OffsetDateTime::now_utc()))
        .bind_lease(item)
        .execute(&mut *tx)
        .await
        .sql()?;
        transition(
            tx,
            updated.rows_affected(),
            item,
            Status::Prepared,
            detail,
            None,
        )
        .await
    }

    async fn pickups(&self, procedure: &str, limit: u32) -> Result<Vec<Pickup>, StoreError> {
        // Size and hash computed by the database: the list does not fetch the messages.
        sqlx::query(
            "SELECT d.message_id, d.application_id, a.receipt, a.region, d.service_key,
                    d.message_type, d.due_at, octet_length(d.sealed)::bigint AS size,
                    encode(sha256(d.sealed), 'hex') AS sha256
             FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.procedure_id = $1 AND d.step = 'pickup'
             ORDER BY d.due_at, d.message_id LIMIT $2",
        )
        .bind(procedure)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .sql()?
        .iter()
        .map(pickup_of)
        .collect()
    }

    async fn pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
    ) -> Result<Option<(Pickup, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT d.message_id, d.application_id, a.receipt, a.region, d.service_key,
                    d.message_type, d.due_at, octet_length(d.sealed)::bigint AS size,
                    encode(sha256(d.sealed), 'hex') AS sha256, d.sealed
             FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.procedure_id = $1 AND d.message_id = $2 AND d.step IN ('pickup', 'done')",
        )
        .bind(procedure)
        .bind(message_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .sql()?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Option<Vec<u8>> = row.try_get("sealed").sql()?;
        let sealed =
            sealed.ok_or_else(|| StoreError::Corrupt("a pickup without its message".into()))?;
        Ok(Some((pickup_of(&row)?, sealed)))
    }

    async fn acknowledge_pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
        detail: &str,
    ) -> Result<PickupAck, StoreError> {
        // Under the chain lock: of two acknowledgements at once (one per instance), the
        // second sees the first's `done`.
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "SELECT application_id, service_key, message_type, step FROM deliveries
             WHERE procedure_id = $1 AND message_id = $2",
        )
        .bind(procedure)
        .bind(message_id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .sql()?;
        let Some(row) = row else {
            return Ok(PickupAck::Unknown);
        };
        let step: String = row.try_get("step").sql()?;
        match step.as_str() {
            "pickup" => {}
            "done" => return Ok(PickupAck::AlreadyAcknowledged),
            _ => return Ok(PickupAck::Unknown),
        }
        let item = WorkItem {
            application_id: parse_uuid(&row.try_get::<String, _>("application_id").sql()?)?,
            service_key: row.try_get("service_key").sql()?,
            procedure_id: procedure.to_owned(),
            message_id,
            message_type: row.try_get("message_type").sql()?,
            step: Step::Deliver,
            attempts: 0,
            lease: String::new(),
            accepted_at: None,
        };
        let updated = sqlx::query(
            "UPDATE deliveries SET step = 'done', attempts = attempts + 1, delivered_at = $1
             WHERE procedure_id = $2 AND message_id = $3 AND step = 'pickup'",
        )
        .bind(rfc3339(OffsetDateTime::now_utc()))
        .bind(procedure)
        .bind(message_id.to_string())
        .execute(&mut *tx)
        .await
        .sql()?;
        let done = transition(
            tx,
            updated.rows_affected(),
            &item,
            Status::Delivered,
            detail,
            None,
        )
        .await?;
        Ok(if done {
            PickupAck::Acknowledged
        } else {
            PickupAck::Unknown
        })
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        // The oldest by time, not by text (RFC 3339 texts with and without fractional
        // seconds do not sort as times).
        sqlx::query(
            "SELECT d.procedure_id, COUNT(*) AS pending,
                    (ARRAY_AGG(a.created_at ORDER BY a.created_at::timestamptz))[1] AS oldest
             FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.step IN ('prepare', 'deliver', 'pickup')
             GROUP BY d.procedure_id ORDER BY d.procedure_id",
        )
        .fetch_all(&self.pool)
        .await
        .sql()?
        .iter()
        .map(|row| {
            Ok(Backlog {
                procedure: row.try_get("procedure_id").sql()?,
                pending: row
                    .try_get::<i64, _>("pending")
                    .sql()?
                    .try_into()
                    .unwrap_or(0),
                oldest_since: row
                    .try_get::<Option<String>, _>("oldest")
                    .sql()?
                    .map(|t| parse_time(&t))
                    .transpose()?,
            })
        })
        .collect()
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        sqlx::query(
            "SELECT a.id, a.receipt, a.service_key, a.updated_at, d.procedure_id, d.message_id,
                    d.attempts, d.last_error
             FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.step = 'dead' ORDER BY a.updated_at::timestamptz, a.id",
        )
        .fetch_all(&self.pool)
        .await
        .sql()?
        .iter()
        .map(|row| {
            Ok(DeadLetter {
                application_id: parse_uuid(&row.try_get::<String, _>("id").sql()?)?,
                receipt: row.try_get("receipt").sql()?,
                service: row.try_get("service_key").sql()?,
                procedure: row.try_get("procedure_id").sql()?,
                message_id: parse_uuid(&row.try_get::<String, _>("message_id").sql()?)?,
                attempts: count(row.try_get("attempts").sql()?),
                reason: row
                    .try_get::<Option<String>, _>("last_error")
                    .sql()?
                    .unwrap_or_default(),
                since: parse_time(&row.try_get::<String, _>("updated_at").sql()?)?,
            })
        })
        .collect()
    }

    async fn replay(&self, application_id: Uuid, by: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        // Back to `deliver` with the sealed message as it was (same message id), or to
        // `prepare` if it was never sealed.
        let updated = sqlx::query(
            "UPDATE deliveries SET step = CASE WHEN sealed IS NULL THEN 'prepare' ELSE 'deliver' END,
                    attempts = 0, due_at = $1, lease_owner = NULL, lease_until = NULL
             WHERE application_id = $2 AND step = 'dead'
             RETURNING message_id, sealed",
        )
        .bind(millis(OffsetDateTime::now_utc()))
        .bind(application_id.to_string())
        .fetch_optional(&mut *tx)
        .await.sql()?;
        let Some(row) = updated else {
            return Ok(false);
        };
        let message_id: String = row.try_get("message_id").sql()?;
        let sealed: Option<Vec<u8>> = row.try_get("sealed").sql()?;
        let status = if sealed.is_some() {
            Status::Prepared
        } else {
            Status::Accepted
        };
        change_status(
            &mut tx,
            application_id,
            status,
            &format!("dead letter replayed by {by}; message {message_id} goes out again"),
            Binding::message(sealed.as_deref().map(sha256_hex)),
        )
        .await?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    async fn record_failed(
        &self,
        item: &WorkItem,
        status: Status,
        error: &str,
    ) -> Result<bool, StoreError> {
        let step = if status == Status::Invalid {
            "invalid"
        } else {
            "dead"
        };
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE deliveries SET step = $1, last_error = $2, lease_owner = NULL, lease_until = NULL,
                    attempts = attempts + CASE WHEN $1 = 'dead' THEN 1 ELSE 0 END
             WHERE application_id = $3 AND procedure_id = $4 AND lease_owner = $5",
        )
        .bind(step)
        .bind(error)
        .bind_lease(item)
        .execute(&mut *tx)
        .await.sql()?;
        transition(tx, updated.rows_affected(), item, status, error, None).await
    }

    async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError> {
        // Under the chain lock: the same receipt arriving at two instances at once is
        // recorded once and is a duplicate for the other.
        let mut tx = self.write().await?;
        let signed_sha256 = sha256_hex(&receipt.signed);
        let earlier: Option<String> = sqlx::query_scalar(
            "SELECT content_sha256 FROM receipts WHERE procedure_id = $1 AND receipt_id = $2",
        )
        .bind(&receipt.procedure_id)
        .bind(&receipt.receipt_id)
        .fetch_optional(&mut *tx)
        .await
        .sql()?;
        if let Some(earlier) = earlier {
            return Ok(if earlier == receipt.content_sha256 {
                ReceiptOutcome::Duplicate
            } else {
                ReceiptOutcome::Conflict
            });
        }
        // The message must have gone to this procedure, for this application, and left.
        let row = sqlx::query(
            "SELECT d.step, a.status FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.message_id = $1 AND d.procedure_id = $2 AND d.application_id = $3",
        )
        .bind(receipt.message_id.to_string())
        .bind(&receipt.procedure_id)
        .bind(receipt.application_id.to_string())
        .fetch_optional(&mut *tx)
        .await.sql()?;
        let Some(row) = row else {
            return Ok(ReceiptOutcome::UnknownMessage);
        };
        let step: String = row.try_get("step").sql()?;
        let current: String = row.try_get("status").sql()?;
        let current = Status::parse(&current)
            .ok_or_else(|| StoreError::Corrupt(format!("status {current}")))?;
        if current.is_final() {
            return Ok(ReceiptOutcome::AlreadyFinal);
        }
        // An early receipt overtakes our own `delivered` commit (see below).
        let effective = if current == Status::Prepared {
            Status::Delivered
        } else {
            current
        };
        if !effective.may_become(receipt.status) {
            return Ok(ReceiptOutcome::OutOfOrder(current));
        }
        match step.as_str() {
            "done" => {}
            // The procedure answered before our own record of the broker's confirm was
            // committed: its signed receipt proves the delivery. Record it now; the
            // outbox's later commit finds its lease gone and changes nothing.
            "deliver" => {
                let sealed: Option<Vec<u8>> = sqlx::query_scalar(
                    "UPDATE deliveries SET step = 'done', attempts = attempts + 1, last_error = NULL,
                            lease_owner = NULL, lease_until = NULL, delivered_at = $1
                     WHERE message_id = $2 RETURNING sealed",
                )
                .bind(rfc3339(OffsetDateTime::now_utc()))
                .bind(receipt.message_id.to_string())
                .fetch_one(&mut *tx)
                .await.sql()?;
                change_status(
                    &mut tx,
                    receipt.application_id,
                    Status::Delivered,
                    &format!(
                        "message {} delivered to {} (confirmed by its receipt)",
                        receipt.message_id, receipt.procedure_id
                    ),
                    Binding::message(sealed.as_deref().map(sha256_hex)),
                )
                .await?;
            }
            _ => return Ok(ReceiptOutcome::UnknownMessage),
        }
        sqlx::query(
            "INSERT INTO receipts (receipt_id, application_id, procedure_id, message_id, event, issued_at, received_at, signed, signed_sha256, content_sha256)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&receipt.receipt_id)
        .bind(receipt.application_id.to_string())
        .bind(&receipt.procedure_id)
        .bind(receipt.message_id.to_string())
        .bind(receipt.status.as_str())
        .bind(&receipt.issued_at)
        .bind(rfc3339(OffsetDateTime::now_utc()))
        .bind(&receipt.signed)
        .bind(&signed_sha256)
        .bind(&receipt.content_sha256)
        .execute(&mut *tx)
        .await.sql()?;
        let status = receipt.status;
        let mut detail = format!(
            "{} {} from {} about message {}",
            match status {
                Status::Received => "receipt",
                Status::Rejected => "rejection",
                _ => "event",
            },
            receipt.receipt_id,
            receipt.procedure_id,
            receipt.message_id
        );
        if !receipt.problems.is_empty() {
            detail.push_str(&format!(": {}", receipt.problems.join("; ")));
        }
        let now = rfc3339(OffsetDateTime::now_utc());
        let mut document_id = None;
        let mut document_sha256 = None;
        if let Some(document) = &receipt.document {
            let id = Uuid::new_v4();
            let digest = document.digest();
            document_sha256 = Some(content::document_content_sha256(&digest));
            let sha512 = digest.sha512;
            sqlx::query(
                "INSERT INTO documents (id, application_id, receipt_id, filename, media_type, size, sha512, content, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id.to_string())
            .bind(receipt.application_id.to_string())
            .bind(&receipt.receipt_id)
            .bind(&document.filename)
            .bind(&document.media_type)
            .bind(i64::try_from(document.content.len()).unwrap_or(i64::MAX))
            .bind(&sha512)
            .bind(&document.content)
            .bind(&now)
            .execute(&mut *tx)
            .await.sql()?;
            // The history names the document by id and hash only.
            detail.push_str(&format!("; document {id} (SHA-512 {sha512})"));
            document_id = Some(id);
        }
        if let Some(text) = &receipt.message {
            sqlx::query(
                "INSERT INTO mailbox (application_id, receipt_id, kind, text, document_id, at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(receipt.application_id.to_string())
            .bind(&receipt.receipt_id)
            .bind(status.as_str())
            .bind(text)
            .bind(document_id.map(|d| d.to_string()))
            .bind(&now)
            .execute(&mut *tx)
            .await
            .sql()?;
        }
        // The audit entry carries the hash of the signed receipt, so the Laufzettel
        // proves which receipt was accepted.
        change_status(
            &mut tx,
            receipt.application_id,
            status,
            &detail,
            Binding {
                message_sha256: Some(signed_sha256),
                content_sha256: document_sha256,
            },
        )
        .await?;
        tx.commit().await.sql()?;
        Ok(ReceiptOutcome::Applied(status))
    }

    async fn mailbox(
        &self,
        id: Uuid,
    ) -> Result<(Vec<MailboxEntry>, Vec<DocumentInfo>), StoreError> {
        let entries = sqlx::query(
            "SELECT kind, text, document_id, at FROM mailbox WHERE application_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await.sql()?
        .iter()
        .map(|row| {
            Ok(MailboxEntry {
                kind: row.try_get("kind").sql()?,
                text: row.try_get("text").sql()?,
                document_id: row
                    .try_get::<Option<String>, _>("document_id").sql()?
                    .map(|d| parse_uuid(&d))
                    .transpose()?,
                at: parse_time(&row.try_get::<String, _>("at").sql()?)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let documents = sqlx::query(
            "SELECT id, filename, media_type, size, sha512 FROM documents WHERE application_id = $1
             ORDER BY created_at::timestamptz, id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .sql()?
        .iter()
        .map(document_info)
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((entries, documents))
    }

    async fn document(
        &self,
        application_id: Uuid,
        document_id: Uuid,
    ) -> Result<Option<(DocumentInfo, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, filename, media_type, size, sha512, content FROM documents WHERE id = $1 AND application_id = $2",
        )
        .bind(document_id.to_string())
        .bind(application_id.to_string())
        .fetch_optional(&self.pool)
        .await.sql()?;
        row.map(|row| Ok((document_info(&row)?, row.try_get("content").sql()?)))
            .transpose()
    }

    async fn purge_personal_data(
        &self,
        service: &str,
        final_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // Seconds precision compares correctly as text ("YYYY-MM-DDTHH:MM:SS").
        let cutoff = rfc3339(final_before);
        let candidates: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM applications
             WHERE service_key = $1 AND status IN ('decided', 'rejected') AND purged_at IS NULL
               AND substr(updated_at, 1, 19) < substr($2, 1, 19)
             ORDER BY updated_at LIMIT $3",
        )
        .bind(service)
        .bind(&cutoff)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .sql()?;
        let mut purged = 0;
        for id in candidates {
            let mut tx = self.write().await?;
            // Checked again inside the write transaction: an instance may have been first.
            let status: Option<String> = sqlx::query_scalar(
                "SELECT status FROM applications WHERE id = $1 AND purged_at IS NULL",
            )
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .sql()?;
            let Some(status) = status.as_deref().and_then(Status::parse) else {
                continue;
            };
            sqlx::query(
                "DELETE FROM upload_chunks WHERE upload_id IN
                   (SELECT id FROM uploads WHERE application_id = $1)",
            )
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
            sqlx::query("UPDATE uploads SET filename = '' WHERE application_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .sql()?;
            let attachments = sqlx::query("DELETE FROM attachments WHERE application_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .sql()?
                .rows_affected();
            // Mailbox entries point at documents: their texts and links go first.
            sqlx::query(
                "UPDATE mailbox SET text = '', document_id = NULL WHERE application_id = $1",
            )
            .bind(&id)
            .execute(&mut *tx)
            .await
            .sql()?;
            let documents = sqlx::query("DELETE FROM documents WHERE application_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .sql()?
                .rows_affected();
            sqlx::query("UPDATE receipts SET signed = ''::bytea WHERE application_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .sql()?;
            sqlx::query("UPDATE deliveries SET sealed = NULL WHERE application_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .sql()?;
            sqlx::query("UPDATE applications SET payload = $1, purged_at = $2 WHERE id = $3")
                .bind(content::PURGED_PAYLOAD)
                .bind(rfc3339(OffsetDateTime::now_utc()))
                .bind(&id)
                .execute(&mut *tx)
                .await
                .sql()?;
            // The deletion binds what is left, so that data written back later is noticed.
            append_history(
                &mut tx,
                parse_uuid(&id)?,
                status,
                &content::purge_detail(attachments, documents),
                Binding {
                    message_sha256: None,
                    content_sha256: Some(content::purged_content_sha256()),
                },
            )
            .await?;
            tx.commit().await.sql()?;
            purged += 1;
        }
        Ok(purged)
    }

    async fn search(
        &self,
        query: &ApplicationQuery,
    ) -> Result<Vec<ApplicationSummary>, StoreError> {
        sqlx::query(
            "SELECT a.id, a.receipt, a.service_key, a.region, a.status, a.created_at,
                    a.updated_at, d.procedure_id, d.attempts, d.last_error
             FROM applications a JOIN deliveries d ON d.application_id = a.id
             WHERE (CAST($1 AS TEXT) IS NULL OR a.receipt = $1)
               AND (CAST($2 AS TEXT) IS NULL OR a.service_key = $2)
               AND (CAST($3 AS TEXT) IS NULL OR d.procedure_id = $3)
               AND (CAST($4 AS TEXT) IS NULL OR a.status = $4)
               AND (CAST($5 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) >= substr($5, 1, 19))
               AND (CAST($6 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) < substr($6, 1, 19))
             ORDER BY a.created_at DESC, a.id LIMIT $7",
        )
        .bind(query.receipt.as_deref())
        .bind(query.service.as_deref())
        .bind(query.procedure.as_deref())
        .bind(query.status.map(Status::as_str))
        .bind(query.from.map(rfc3339))
        .bind(query.until.map(rfc3339))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await
        .sql()?
        .iter()
        .map(|row| {
            let status: String = row.try_get("status").sql()?;
            Ok(ApplicationSummary {
                id: parse_uuid(&row.try_get::<String, _>("id").sql()?)?,
                receipt: row.try_get("receipt").sql()?,
                service: row.try_get("service_key").sql()?,
                region: row.try_get("region").sql()?,
                procedure: row.try_get("procedure_id").sql()?,
                status: Status::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
                attempts: row
                    .try_get::<i64, _>("attempts")
                    .sql()?
                    .try_into()
                    .unwrap_or(u32::MAX),
                last_error: row.try_get("last_error").sql()?,
                created_at: parse_time(&row.try_get::<String, _>("created_at").sql()?)?,
                updated_at: parse_time(&row.try_get::<String, _>("updated_at").sql()?)?,
            })
        })
        .collect()
    }

    async fn record_access(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM applications WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .sql()?;
        let Some(status) = status.as_deref().and_then(Status::parse) else {
            return Ok(false);
        };
        append_history(&mut tx, id, status, detail, Binding::default()).await?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    async fn retry_now(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let now = millis(OffsetDateTime::now_utc());
        let updated = sqlx::query(
            "UPDATE deliveries SET due_at = $1
             WHERE application_id = $2 AND step IN ('prepare', 'deliver')
               AND (lease_until IS NULL OR lease_until < $1)",
        )
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .sql()?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        let status: String = sqlx::query_scalar("SELECT status FROM applications WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .sql()?;
        let status = Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?;
        append_history(&mut tx, id, status, detail, Binding::default()).await?;
        tx.commit().await.sql()?;
        Ok(true)
    }

    async fn release_stale_leases(&self) -> Result<u64, StoreError> {
        // Releases nothing. Unlike SQLite (one process per data directory, so every
        // lease left belongs to a process that died), the database is shared: a lease
        // held now may belong to another instance that is working on the entry, and
        // handing it out again would deliver twice. Leases of a dead instance are not
        // lost either: once their `lease_until` has passed, `claim` (of any instance)
        // takes the entries over.
        Ok(0)
    }

    async fn audit_entries(&self, application_id: Uuid) -> Result<Vec<AuditEntry>, StoreError> {
        let mut connection = self.pool.acquire().await.sql()?;
        audit::entries_of(&mut connection, &application_id.to_string(), false).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let mut connection = self.pool.acquire().await.sql()?;
        audit::head(&mut connection).await
    }

    async fn record_audit_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        // Not part of the chain: no chain lock.
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES ($1, $2, $3, $4)",
        )
        .bind(checkpoint.seq)
        .bind(&checkpoint.hash)
        .bind(&checkpoint.at)
        .bind(&checkpoint.signature)
        .execute(&self.pool)
        .await
        .sql()?;
        Ok(())
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut connection = self.pool.acquire().await.sql()?;
        audit::checkpoints(&mut connection).await
    }

    async fn verify_audit_with(&self, verifier: AuditVerifier) -> Result<AuditReport, StoreError> {
        // One REPEATABLE READ transaction: one consistent snapshot for every page, the
        // highest issued seq and the content, while the instances go on appending.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .sql()?;
        let report = audit::verify(&mut tx, verifier).await?;
        tx.rollback().await.sql()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_chain_lock_key_is_kopplung_in_ascii() {
        // Instances of older and newer versions must take the same lock.
        assert_eq!(super::CHAIN_LOCK, i64::from_be_bytes(*b"kopplung"));
    }
}
