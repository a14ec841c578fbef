//! The embedded default store: one SQLite file in the data directory, WAL journal,
//! `synchronous = FULL` so that a commit is on disk before intake answers 202.
//! One hub process per data directory, enforced by a lock file.
//!
//! Every state change is a closure that runs on the store's writer thread
//! ([`crate::group`]) and appends its history entry and its audit entry (the hash chain
//! of [`kopplung_core::audit`]) in the same transaction; the writer is the chain's only writer,
//! so the chain cannot fork. Reads go through a sqlx pool and never wait for writes.

use crate::Sql;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::group::{GroupWriter, WriteTx};
use crate::sqlite_audit as audit;
use kopplung_core::audit::content;
use kopplung_core::audit::{
    AuditEntry, AuditReport, AuditVerifier, Binding, Checkpoint, sha256_hex,
};
use kopplung_core::store::{
    Accepted, ApplicationQuery, ApplicationRecord, ApplicationSummary, Attachment,
    AttachmentContent, Backlog, DeadLetter, DeliveryRecord, DocumentInfo, FRAGMENT_BYTES,
    HistoryEntry, IdempotencyKey, Inserted, MailboxEntry, NewApplication, NewUpload, Pickup,
    PickupAck, PrepareInput, ReceiptOutcome, ReceiptRecord, Status, Step, Store, StoreError,
    StoredForm, UploadInfo, WorkItem, fragment_count,
};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, ToSql, params};

pub struct SqliteStore {
    pool: SqlitePool,
    /// Every state change goes through it (group commit, see [`crate::group`]).
    writer: GroupWriter,
    // Held for the life of the store: a second hub on the same data directory is refused.
    // `None` for a read-only store, which may run beside the hub.
    _lock: Option<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) `kopplung.db` in `data_dir` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        // Private from the start: the directory 0700, the database 0600 before SQLite
        // opens it (its -wal and -shm files take the database's mode).
        kopplung_web::files::create_private_dir(data_dir)
            .map_err(|e| StoreError::Io(data_dir.to_owned(), e))?;
        let lock_path = data_dir.join("kopplung.lock");
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| StoreError::Io(lock_path.clone(), e))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(data_dir.to_owned()));
        }
        let database = data_dir.join("kopplung.db");
        kopplung_web::files::create_private_file(&database)
            .map_err(|e| StoreError::Io(database.clone(), e))?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .sql()?
            .filename(&database)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // For reads and migrations; writes go to the writer thread.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A COMMIT that fails with SQLITE_FULL or an I/O error (a migration on a
            // full disk) is rolled back by SQLite itself, but sqlx still counts the
            // transaction open, and the connection would refuse every later BEGIN. Such
            // a connection is closed, not reused.
            .after_release(|connection, _| {
                Box::pin(async move {
                    // Runs the rollback queued by the dropped transaction first.
                    connection.ping().await?;
                    Ok(!connection.is_in_transaction())
                })
            })
            .connect_with(options)
            .await
            .sql()?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .sql()?;
        Ok(Self {
            writer: GroupWriter::start(&data_dir.join("kopplung.db"), false)?,
            pool,
            _lock: Some(lock),
        })
    }

    /// Opens an existing `kopplung.db` in `data_dir` read-only, for inspection (e.g.
    /// `kopplung audit verify`) beside a running hub: takes no lock file, migrates
    /// nothing, creates nothing. Every state change on such a store fails.
    pub async fn open_read_only(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("kopplung.db");
        if !path.is_file() {
            return Err(StoreError::Io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no kopplung database here"),
            ));
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .sql()?
            .filename(&path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .sql()?;
        Ok(Self {
            writer: GroupWriter::start(&path, true)?,
            pool,
            _lock: None,
        })
    }

    /// An outbox update under the entry's lease ([`update_leased`]) as one write;
    /// whether it changed the entry.
    async fn leased_update(
        &self,
        item: &WorkItem,
        sql: &'static str,
        values: Vec<Value>,
    ) -> Result<bool, StoreError> {
        let item = item.clone();
        self.writer
            .write(move |tx| Ok(update_leased(tx, sql, &values, &item)? == 1))
            .await
    }

    /// An outbox update under the entry's lease completed by a state change
    /// ([`transition`]), as one write.
    async fn leased_transition(
        &self,
        item: &WorkItem,
        sql: &'static str,
        values: Vec<Value>,
        status: Status,
        detail: &str,
        message_sha256: Option<String>,
    ) -> Result<bool, StoreError> {
        let (item, detail) = (item.clone(), detail.to_owned());
        self.writer
            .write(move |tx| {
                let updated = update_leased(tx, sql, &values, &item)?;
                transition(tx, updated, &item, status, &detail, message_sha256)
            })
            .await
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
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("uuid {s}: {e}")))
}

/// Appends the history entry of a state change and its audit entry, at the same time.
/// `binding`: what the audit entry binds by hash (see [`kopplung_core::audit`]).
fn append_history(
    tx: &mut WriteTx<'_>,
    application_id: Uuid,
    status: Status,
    detail: &str,
    binding: Binding,
) -> Result<(), StoreError> {
    let at = rfc3339(OffsetDateTime::now_utc());
    tx.prepare_cached(
        "INSERT INTO history (application_id, at, status, detail) VALUES (?1, ?2, ?3, ?4)",
    )
    .sql()?
    .execute(params![
        application_id.to_string(),
        at,
        status.as_str(),
        detail
    ])
    .sql()?;
    append_audit(tx, application_id, &at, status, detail, binding)
}

/// Links one entry to the end of the audit chain. Runs on the writer, the chain's only
/// writer, so no other entry comes in between.
fn append_audit(
    tx: &mut WriteTx<'_>,
    application_id: Uuid,
    at: &str,
    status: Status,
    detail: &str,
    binding: Binding,
) -> Result<(), StoreError> {
    let head = tx.audit_head()?;
    let entry = AuditEntry::next(
        head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
        application_id,
        at,
        status.as_str(),
        detail,
        binding,
    );
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, version, application_id, at, status, detail, message_sha256, content_sha256, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    ).sql()?
    .execute(params![
        entry.seq,
        entry.version,
        entry.application_id,
        entry.at,
        entry.status,
        entry.detail,
        entry.message_sha256,
        entry.content_sha256,
        entry.prev_hash,
        entry.hash,
    ]).sql()?;
    tx.set_audit_head(entry.seq, entry.hash);
    Ok(())
}

/// The hex SHA-256 of the sealed message stored for an outbox entry, if there is one.
fn stored_message_sha256(tx: &WriteTx<'_>, item: &WorkItem) -> Result<Option<String>, StoreError> {
    let sealed: Option<Vec<u8>> = tx
        .prepare_cached(
            "SELECT sealed FROM deliveries WHERE application_id = ?1 AND procedure_id = ?2",
        )
        .sql()?
        .query_row(
            params![item.application_id.to_string(), item.procedure_id],
            |row| row.get(0),
        )
        .sql()?;
    Ok(sealed.as_deref().map(sha256_hex))
}

fn set_status(tx: &WriteTx<'_>, application_id: Uuid, status: Status) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE applications SET status = ?1, updated_at = ?2 WHERE id = ?3")
        .sql()?
        .execute(params![
            status.as_str(),
            rfc3339(OffsetDateTime::now_utc()),
            application_id.to_string()
        ])
        .sql()?;
    Ok(())
}

/// Runs an outbox update whose SQL ends in
/// `WHERE application_id = ?N AND procedure_id = ?N+1 AND lease_owner = ?N+2`, with
/// `values` bound first: only the holder of the lease may change the entry.
fn update_leased(
    tx: &WriteTx<'_>,
    sql: &str,
    values: &[Value],
    item: &WorkItem,
) -> Result<usize, StoreError> {
    let id = item.application_id.to_string();
    let mut bound: Vec<&dyn ToSql> = values.iter().map(|v| v as &dyn ToSql).collect();
    bound.extend([&id as &dyn ToSql, &item.procedure_id, &item.lease]);
    tx.prepare_cached(sql)
        .sql()?
        .execute(bound.as_slice())
        .sql()
}

/// Completes a state change whose outbox update touched `updated` rows: the status and
/// its history and audit entries in the same transaction, or nothing if the lease was
/// lost. `message_sha256` is the hash of the message just sealed; without it, the stored
/// message (if any) is hashed.
fn transition(
    tx: &mut WriteTx<'_>,
    updated: usize,
    item: &WorkItem,
    status: Status,
    detail: &str,
    message_sha256: Option<String>,
) -> Result<bool, StoreError> {
    if updated != 1 {
        return Ok(false);
    }
    let message_sha256 = match message_sha256 {
        Some(hash) => Some(hash),
        None => stored_message_sha256(tx, item)?,
    };
    set_status(tx, item.application_id, status)?;
    append_history(
        tx,
        item.application_id,
        status,
        detail,
        Binding::message(message_sha256),
    )?;
    Ok(true)
}

fn document_info(row: &SqliteRow) -> Result<DocumentInfo, StoreError> {
    Ok(DocumentInfo {
        id: parse_uuid(&row.try_get::<String, _>("id").sql()?)?,
        filename: row.try_get("filename").sql()?,
        media_type: row.try_get("media_type").sql()?,
        size: row.try_get::<i64, _>("size").sql()?.try_into().unwrap_or(0),
        sha512: row.try_get("sha512").sql()?,
    })
}

/// The columns `pickup_of` reads, for the pickup queries (a macro, so that the
/// queries stay string literals).
macro_rules! pickup_select {
    () => {
        "SELECT d.message_id, d.application_id, a.receipt, a.region, d.service_key,
                d.message_type, d.sealed, d.due_at
         FROM deliveries d JOIN applications a ON a.id = d.application_id"
    };
}

fn pickup_of(row: &SqliteRow) -> Result<(Pickup, Vec<u8>), StoreError> {
    let sealed: Option<Vec<u8>> = row.try_get("sealed").sql()?;
    let sealed =
        sealed.ok_or_else(|| StoreError::Corrupt("a pickup without its message".into()))?;
    let since: i64 = row.try_get("due_at").sql()?;
    Ok((
        Pickup {
            message_id: parse_uuid(&row.try_get::<String, _>("message_id").sql()?)?,
            application_id: parse_uuid(&row.try_get::<String, _>("application_id").sql()?)?,
            receipt: row.try_get("receipt").sql()?,
            region: row.try_get("region").sql()?,
            service: row.try_get("service_key").sql()?,
            message_type: row.try_get("message_type").sql()?,
            size: sealed.len() as u64,
            sha256: sha256_hex(&sealed),
            available_since: from_millis(since)
                .ok_or_else(|| StoreError::Corrupt(format!("time {since}")))?,
        },
        sealed,
    ))
}

fn work_item(row: &rusqlite::Row<'_>, lease: &str) -> Result<WorkItem, StoreError> {
    let step: String = row.get("step").sql()?;
    Ok(WorkItem {
        application_id: parse_uuid(&row.get::<_, String>("application_id").sql()?)?,
        service_key: row.get("service_key").sql()?,
        procedure_id: row.get("procedure_id").sql()?,
        message_id: parse_uuid(&row.get::<_, String>("message_id").sql()?)?,
        message_type: row.get("message_type").sql()?,
        step: match step.as_str() {
            "prepare" => Step::Prepare,
            "deliver" => Step::Deliver,
            other => return Err(StoreError::Corrupt(format!("claimed step {other}"))),
        },
        attempts: row
            .get::<_, i64>("attempts")
            .sql()?
            .try_into()
            .unwrap_or(u32::MAX),
        lease: lease.to_owned(),
        accepted_at: row
            .get::<_, Option<String>>("accepted_at")
            .sql()?
            .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()),
    })
}

/// The query of an earlier request with the same idempotency key.
const EARLIER_ANSWER: &str = "SELECT i.request_sha256, a.id, a.receipt FROM idempotency_keys i
     JOIN applications a ON a.id = i.application_id
     WHERE i.client_id = ?1 AND i.key = ?2";

/// What an earlier request with the same idempotency key got, from its row.
fn earlier_answer_of(
    hash: String,
    id: String,
    receipt: String,
    key: &IdempotencyKey,
) -> Result<Inserted, StoreError> {
    if hash != key.request_sha256 {
        return Ok(Inserted::KeyConflict);
    }
    Ok(Inserted::Replayed(Accepted {
        id: parse_uuid(&id)?,
        receipt,
    }))
}

/// Looks up an idempotency key inside a write.
fn earlier_answer(
    tx: &WriteTx<'_>,
    client_id: &str,
    key: &IdempotencyKey,
) -> Result<Option<Inserted>, StoreError> {
    let row = tx
        .prepare_cached(EARLIER_ANSWER)
        .sql()?
        .query_row(params![client_id, key.key], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()
        .sql()?;
    row.map(|(hash, id, receipt)| earlier_answer_of(hash, id, receipt, key))
        .transpose()
}

/// Stores an application in one write (see [`Store::insert_application`]).
fn insert_application(
    tx: &mut WriteTx<'_>,
    new: &NewApplication,
    form: StoredForm,
) -> Result<Inserted, StoreError> {
    if let Some(key) = &new.idempotency
        && let Some(answer) = earlier_answer(tx, &new.client_id, key)?
    {
        return Ok(answer);
    }
    let id = new.id.to_string();
    let at = rfc3339(new.received_at);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO applications
               (id, receipt, client_id, service_key, region, procedure_id, status, payload, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        ).sql()?
        .execute(params![
            id,
            new.receipt,
            new.client_id,
            new.service_key,
            new.region,
            new.procedure_id,
            Status::Accepted.as_str(),
            form.payload,
            at
        ]);
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, Some(message)))
            if e.code == rusqlite::ErrorCode::ConstraintViolation
                && message.contains("receipt") =>
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
                let bound = tx
                    .prepare_cached(
                        "UPDATE uploads SET application_id = ?1
                         WHERE id = ?2 AND client_id = ?3 AND application_id IS NULL
                           AND completed_at IS NOT NULL",
                    )
                    .sql()?
                    .execute(params![id, upload.to_string(), new.client_id])
                    .sql()?;
                if bound != 1 {
                    // Nothing of this application may stay.
                    tx.discard();
                    return Ok(Inserted::UploadTaken(position));
                }
                (&[][..], Some(upload.to_string()))
            }
        };
        tx.prepare_cached(
            "INSERT INTO attachments (application_id, position, filename, media_type, size, sha512, content, upload_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        ).sql()?
        .execute(params![
            id,
            position as i64,
            attachment.filename,
            attachment.media_type,
            i64::try_from(attachment.size).unwrap_or(i64::MAX),
            attachment.sha512,
            content,
            upload
        ]).sql()?;
    }
    tx.prepare_cached(
        "INSERT INTO deliveries (application_id, service_key, procedure_id, message_id, message_type, step, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'prepare', ?6)",
    ).sql()?
    .execute(params![
        id,
        new.service_key,
        new.procedure_id,
        new.message_id.to_string(),
        new.message_type,
        millis(new.received_at)
    ]).sql()?;
    if let Some(key) = &new.idempotency {
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (client_id, key, request_sha256, application_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        ).sql()?
        .execute(params![new.client_id, key.key, key.request_sha256, id, at]).sql()?;
    }
    append_history(
        tx,
        new.id,
        Status::Accepted,
        &format!("accepted from client {}", new.client_id),
        Binding {
            message_sha256: None,
            content_sha256: Some(form.content_sha256),
        },
    )?;
    Ok(Inserted::Created(Accepted {
        id: new.id,
        receipt: new.receipt.clone(),
    }))
}

/// Records a verified receipt in one write (see [`Store::record_receipt`]).
fn record_receipt(
    tx: &mut WriteTx<'_>,
    receipt: &ReceiptRecord,
) -> Result<ReceiptOutcome, StoreError> {
    let signed_sha256 = sha256_hex(&receipt.signed);
    let earlier: Option<String> = tx
        .prepare_cached(
            "SELECT content_sha256 FROM receipts WHERE procedure_id = ?1 AND receipt_id = ?2",
        )
        .sql()?
        .query_row(params![receipt.procedure_id, receipt.receipt_id], |row| {
            row.get(0)
        })
        .optional()
        .sql()?;
    if let Some(earlier) = earlier {
        return Ok(if earlier == receipt.content_sha256 {
            ReceiptOutcome::Duplicate
        } else {
            ReceiptOutcome::Conflict
        });
    }
    // The message must have gone to this procedure, for this application, and left.
    let row: Option<(String, String)> = tx
        .prepare_cached(
            "SELECT d.step, a.status FROM deliveries d JOIN applications a ON a.id = d.application_id
             WHERE d.message_id = ?1 AND d.procedure_id = ?2 AND d.application_id = ?3",
        ).sql()?
        .query_row(
            params![
                receipt.message_id.to_string(),
                receipt.procedure_id,
                receipt.application_id.to_string()
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional().sql()?;
    let Some((step, current)) = row else {
        return Ok(ReceiptOutcome::UnknownMessage);
    };
    let current =
        Status::parse(&current).ok_or_else(|| StoreError::Corrupt(format!("status {current}")))?;
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
            let sealed: Option<Vec<u8>> = tx
                .prepare_cached(
                    "UPDATE deliveries SET step = 'done', attempts = attempts + 1, last_error = NULL,
                            lease_owner = NULL, lease_until = NULL, delivered_at = ?1
                     WHERE message_id = ?2 RETURNING sealed",
                ).sql()?
                .query_row(
                    params![
                        rfc3339(OffsetDateTime::now_utc()),
                        receipt.message_id.to_string()
                    ],
                    |row| row.get(0),
                ).sql()?;
            set_status(tx, receipt.application_id, Status::Delivered)?;
            append_history(
                tx,
                receipt.application_id,
                Status::Delivered,
                &format!(
                    "message {} delivered to {} (confirmed by its receipt)",
                    receipt.message_id, receipt.procedure_id
                ),
                Binding::message(sealed.as_deref().map(sha256_hex)),
            )?;
        }
        _ => return Ok(ReceiptOutcome::UnknownMessage),
    }
    tx.prepare_cached(
        "INSERT INTO receipts (receipt_id, application_id, procedure_id, message_id, event, issued_at, received_at, signed, signed_sha256, content_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    ).sql()?
    .execute(params![
        receipt.receipt_id,
        receipt.application_id.to_string(),
        receipt.procedure_id,
        receipt.message_id.to_string(),
        receipt.status.as_str(),
        receipt.issued_at,
        rfc3339(OffsetDateTime::now_utc()),
        receipt.signed,
        signed_sha256,
        receipt.content_sha256
    ]).sql()?;
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
        tx.prepare_cached(
            "INSERT INTO documents (id, application_id, receipt_id, filename, media_type, size, sha512, content, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        ).sql()?
        .execute(params![
            id.to_string(),
            receipt.application_id.to_string(),
            receipt.receipt_id,
            document.filename,
            document.media_type,
            document.content.len() as i64,
            sha512,
            document.content,
            now
        ]).sql()?;
        // The history names the document by id and hash only.
        detail.push_str(&format!("; document {id} (SHA-512 {sha512})"));
        document_id = Some(id);
    }
    if let Some(text) = &receipt.message {
        tx.prepare_cached(
            "INSERT INTO mailbox (application_id, receipt_id, kind, text, document_id, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .sql()?
        .execute(params![
            receipt.application_id.to_string(),
            receipt.receipt_id,
            status.as_str(),
            text,
            document_id.map(|d| d.to_string()),
            now
        ])
        .sql()?;
    }
    set_status(tx, receipt.application_id, status)?;
    // The audit entry carries the hash of the signed receipt, so the Laufzettel proves
    // which receipt was accepted.
    append_history(
        tx,
        receipt.application_id,
        status,
        &detail,
        Binding {
            message_sha256: Some(signed_sha256),
            content_sha256: document_sha256,
        },
    )?;
    Ok(ReceiptOutcome::Applied(status))
}

/// Deletes one application's personal data in one write; false if it was purged already.
fn purge_one(tx: &mut WriteTx<'_>, application_id: Uuid) -> Result<bool, StoreError> {
    let id = application_id.to_string();
    // Checked again inside the write: the candidates were read before it.
    let status: Option<String> = tx
        .prepare_cached("SELECT status FROM applications WHERE id = ?1 AND purged_at IS NULL")
        .sql()?
        .query_row([&id], |row| row.get(0))
        .optional()
        .sql()?;
    let Some(status) = status.as_deref().and_then(Status::parse) else {
        return Ok(false);
    };
    tx.prepare_cached(
        "DELETE FROM upload_chunks WHERE upload_id IN
           (SELECT id FROM uploads WHERE application_id = ?1)",
    )
    .sql()?
    .execute([&id])
    .sql()?;
    tx.prepare_cached("UPDATE uploads SET filename = '' WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    let attachments = tx
        .prepare_cached("DELETE FROM attachments WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    // Mailbox entries point at documents: their texts and links go first.
    tx.prepare_cached("UPDATE mailbox SET text = '', document_id = NULL WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    let documents = tx
        .prepare_cached("DELETE FROM documents WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    tx.prepare_cached("UPDATE receipts SET signed = X'' WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    tx.prepare_cached("UPDATE deliveries SET sealed = NULL WHERE application_id = ?1")
        .sql()?
        .execute([&id])
        .sql()?;
    tx.prepare_cached("UPDATE applications SET payload = ?1, purged_at = ?2 WHERE id = ?3")
        .sql()?
        .execute(params![
            content::PURGED_PAYLOAD,
            rfc3339(OffsetDateTime::now_utc()),
            id
        ])
        .sql()?;
    // The deletion binds what is left, so that data written back later is noticed.
    append_history(
        tx,
        application_id,
        status,
        &content::purge_detail(attachments as u64, documents as u64),
        Binding {
            message_sha256: None,
            content_sha256: Some(content::purged_content_sha256()),
        },
    )?;
    Ok(true)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_upload(&self, upload: &NewUpload) -> Result<(), StoreError> {
        let upload = upload.clone();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO uploads (id, client_id, filename, media_type, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .sql()?
                .execute(params![
                    upload.id.to_string(),
                    upload.client_id,
                    upload.filename,
                    upload.media_type,
                    rfc3339(upload.created_at)
                ])
                .sql()?;
                Ok(())
            })
            .await
    }

    async fn append_upload_chunk(
        &self,
        id: Uuid,
        seq: u64,
        content: &[u8],
    ) -> Result<(), StoreError> {
        // One short write per chunk: a slow upload never holds the writer.
        let content = content.to_vec();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO upload_chunks (upload_id, seq, content) VALUES (?1, ?2, ?3)",
                )
                .sql()?
                .execute(params![
                    id.to_string(),
                    i64::try_from(seq).unwrap_or(i64::MAX),
                    content
                ])
                .sql()?;
                Ok(())
            })
            .await
    }

    async fn complete_upload(&self, id: Uuid, size: u64, sha512: &str) -> Result<(), StoreError> {
        let sha512 = sha512.to_owned();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE uploads SET size = ?1, sha512 = ?2, completed_at = ?3 WHERE id = ?4",
                )
                .sql()?
                .execute(params![
                    i64::try_from(size).unwrap_or(i64::MAX),
                    sha512,
                    rfc3339(OffsetDateTime::now_utc()),
                    id.to_string()
                ])
                .sql()?;
                Ok(())
            })
            .await
    }

    async fn upload(&self, id: Uuid) -> Result<Option<UploadInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, filename, media_type, size, sha512, application_id
             FROM uploads WHERE id = ?",
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
        let id = id.to_string();
        self.writer
            .write(move |tx| {
                let free: Option<String> = tx
                    .prepare_cached(
                        "SELECT id FROM uploads WHERE id = ?1 AND application_id IS NULL",
                    )
                    .sql()?
                    .query_row([&id], |row| row.get(0))
                    .optional()
                    .sql()?;
                if free.is_none() {
                    return Ok(false);
                }
                tx.prepare_cached("DELETE FROM upload_chunks WHERE upload_id = ?1")
                    .sql()?
                    .execute([&id])
                    .sql()?;
                tx.prepare_cached("DELETE FROM uploads WHERE id = ?1")
                    .sql()?
                    .execute([&id])
                    .sql()?;
                Ok(true)
            })
            .await
    }

    async fn discard_stale_uploads(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM uploads WHERE application_id IS NULL
               AND substr(created_at, 1, 19) < substr(?, 1, 19) LIMIT 1000",
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
                    CASE WHEN a.upload_id IS NULL THEN substr(a.content, ?1, ?2) END AS part
             FROM deliveries d JOIN attachments a ON a.application_id = d.application_id
             WHERE d.procedure_id = ?3 AND d.message_id = ?4 AND a.position = ?5",
        )
        .bind(i64::try_from(fragment.saturating_mul(FRAGMENT_BYTES as u64) + 1).unwrap_or(i64::MAX))
        .bind(FRAGMENT_BYTES as i64)
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
                "SELECT content FROM upload_chunks WHERE upload_id = ? AND seq = ?",
            )
            .bind(upload)
            .bind(i64::try_from(fragment).unwrap_or(i64::MAX))
            .fetch_optional(&self.pool)
            .await
            .sql()?),
        }
    }

    async fn insert_application(&self, new: &NewApplication) -> Result<Inserted, StoreError> {
        // Serialised and hashed here, not on the writer thread.
        let form = new.stored_form();
        let new = new.clone();
        self.writer
            .write(move |tx| insert_application(tx, &new, form))
            .await
    }

    async fn idempotent_answer(
        &self,
        client_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Inserted>, StoreError> {
        let row: Option<(String, String, String)> = sqlx::query_as(EARLIER_ANSWER)
            .bind(client_id)
            .bind(&key.key)
            .fetch_optional(&self.pool)
            .await
            .sql()?;
        row.map(|(hash, id, receipt)| earlier_answer_of(hash, id, receipt, key))
            .transpose()
    }

    async fn application(&self, id: Uuid) -> Result<Option<ApplicationRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.receipt, a.client_id, a.service_key, a.region, a.status, a.created_at,
                    a.updated_at, d.procedure_id, d.message_id, d.message_type, d.attempts,
                    d.last_error, d.due_at, d.step, d.delivered_at
             FROM applications a JOIN deliveries d ON d.application_id = a.id
             WHERE a.id = ?",
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
            "SELECT at, status, detail FROM history WHERE application_id = ? ORDER BY seq",
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
                attempts: row
                    .try_get::<i64, _>("attempts")
                    .sql()?
                    .try_into()
                    .unwrap_or(u32::MAX),
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
        let capacity =
            serde_json::to_string(capacity).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let lease = lease.to_owned();
        // Candidates: the oldest due entries (a window a few times the limit, read along
        // `deliveries_pending`), without procedures that have no capacity left. Of those,
        // at most `capacity[procedure]` per procedure (1 for one no longer configured, so
        // that its entries still surface their error). The window keeps a claim's cost
        // independent of the backlog; a saturated procedure drops out of the window once
        // its capacity is used, so it cannot hide the others' work for more than a round.
        // Procedure ids are [a-z0-9-] (checked at load), so they quote safely as a path.
        self.writer
            .write(move |tx| {
                let mut claim = tx.prepare_cached(
                    "UPDATE deliveries SET lease_owner = ?1, lease_until = ?2
                     WHERE rowid IN (
                       SELECT rowid FROM (
                         SELECT rowid, due_at, procedure_id,
                                ROW_NUMBER() OVER (PARTITION BY procedure_id ORDER BY due_at) AS n
                         FROM (
                           SELECT rowid, due_at, procedure_id FROM deliveries
                           WHERE step IN ('prepare', 'deliver') AND due_at <= ?3
                             AND (lease_until IS NULL OR lease_until < ?3)
                             AND procedure_id NOT IN (SELECT key FROM json_each(?5) WHERE value = 0)
                           ORDER BY due_at LIMIT ?6))
                       WHERE n <= COALESCE(json_extract(?5, '$.\"' || procedure_id || '\"'), 1)
                       ORDER BY due_at LIMIT ?4)
                     RETURNING application_id, service_key, procedure_id, message_id, message_type, step, attempts,
                               (SELECT created_at FROM applications a WHERE a.id = application_id) AS accepted_at",
                ).sql()?;
                let mut rows = claim.query(params![
                    lease,
                    millis(lease_until),
                    millis(now),
                    i64::from(limit),
                    capacity,
                    i64::from(limit.saturating_mul(4))
                ]).sql()?;
                let mut items = Vec::new();
                while let Some(row) = rows.next().sql()? {
                    items.push(work_item(row, &lease)?);
                }
                Ok(items)
            })
            .await
    }

    async fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(MAX(due_at, COALESCE(lease_until, 0))) FROM deliveries
             WHERE step IN ('prepare', 'deliver')",
        )
        .fetch_one(&self.pool)
        .await
        .sql()?;
        Ok(due.and_then(from_millis))
    }

    async fn prepare_input(&self, id: Uuid) -> Result<PrepareInput, StoreError> {
        // On the writer's connection: the outbox's hot path, two statements in one
        // hand-off.
        self.writer
            .read(move |conn| {
                let (receipt, service_key, region, payload, created_at): (
                    String,
                    String,
                    String,
                    String,
                    String,
                ) = conn
                    .prepare_cached(
                        "SELECT receipt, service_key, region, payload, created_at
                         FROM applications WHERE id = ?1",
                    )
                    .sql()?
                    .query_row([id.to_string()], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    })
                    .sql()?;
                let mut attachments = Vec::new();
                let mut query = conn
                    .prepare_cached(
                        "SELECT filename, media_type, sha512, size, upload_id,
                            CASE WHEN upload_id IS NULL THEN content ELSE X'' END AS content
                     FROM attachments WHERE application_id = ?1 ORDER BY position",
                    )
                    .sql()?;
                let mut rows = query.query([id.to_string()]).sql()?;
                while let Some(a) = rows.next().sql()? {
                    let upload: Option<String> = a.get("upload_id").sql()?;
                    attachments.push(Attachment {
                        filename: a.get("filename").sql()?,
                        media_type: a.get("media_type").sql()?,
                        sha512: a.get("sha512").sql()?,
                        size: u64::try_from(a.get::<_, i64>("size").sql()?).unwrap_or_default(),
                        content: match upload {
                            Some(upload) => AttachmentContent::Upload(parse_uuid(&upload)?),
                            None => AttachmentContent::Inline(a.get("content").sql()?),
                        },
                    });
                }
                Ok(PrepareInput {
                    id,
                    receipt,
                    service_key,
                    region,
                    payload: serde_json::from_str(&payload)
                        .map_err(|e| StoreError::Corrupt(format!("payload of {id}: {e}")))?,
                    attachments,
                    created_at: parse_time(&created_at)?,
                })
            })
            .await
    }

    async fn sealed_message(&self, item: &WorkItem) -> Result<Vec<u8>, StoreError> {
        let sealed: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT sealed FROM deliveries WHERE application_id = ? AND procedure_id = ?",
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
        self.leased_transition(
            item,
            "UPDATE deliveries SET step = 'deliver', sealed = ?1, last_error = NULL
             WHERE application_id = ?2 AND procedure_id = ?3 AND lease_owner = ?4",
            vec![Value::Blob(sealed.to_vec())],
            Status::Prepared,
            detail,
            Some(sha256_hex(sealed)),
        )
        .await
    }

    async fn record_delivered(&self, item: &WorkItem, detail: &str) -> Result<bool, StoreError> {
        // The message delivered is the stored one: its hash is read back.
        self.leased_transition(
            item,
            "UPDATE deliveries SET step = 'done', attempts = attempts + 1, last_error = NULL,
                    lease_owner = NULL, lease_until = NULL, delivered_at = ?1
             WHERE application_id = ?2 AND procedure_id = ?3 AND lease_owner = ?4",
            vec![Value::Text(rfc3339(OffsetDateTime::now_utc()))],
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
        self.leased_update(
            item,
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?1, due_at = ?2,
                    lease_owner = NULL, lease_until = NULL
             WHERE application_id = ?3 AND procedure_id = ?4 AND lease_owner = ?5",
            vec![Value::Text(error.to_owned()), Value::Integer(millis(due))],
        )
        .await
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
        self.leased_transition(
            item,
            "UPDATE deliveries SET step = ?1, last_error = ?2, lease_owner = NULL, lease_until = NULL,
                    attempts = attempts + CASE WHEN ?1 = 'dead' THEN 1 ELSE 0 END
             WHERE application_id = ?3 AND procedure_id = ?4 AND lease_owner = ?5",
            vec![Value::Text(step.to_owned()), Value::Text(error.to_owned())],
            status,
            error,
            None,
        )
        .await
    }

    async fn record_wait(
        &self,
        item: &WorkItem,
        due: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.leased_update(
            item,
            "UPDATE deliveries SET last_error = ?1, due_at = ?2, lease_owner = NULL, lease_until = NULL
             WHERE application_id = ?3 AND procedure_id = ?4 AND lease_owner = ?5",
            vec![Value::Text(reason.to_owned()), Value::Integer(millis(due))],
        )
        .await
    }

    async fn record_awaiting_pickup(
        &self,
        item: &WorkItem,
        detail: &str,
    ) -> Result<bool, StoreError> {
        self.leased_transition(
            item,
            "UPDATE deliveries SET step = 'pickup', last_error = NULL, due_at = ?1,
                    lease_owner = NULL, lease_until = NULL
             WHERE application_id = ?2 AND procedure_id = ?3 AND lease_owner = ?4",
            vec![Value::Integer(millis(OffsetDateTime::now_utc()))],
            Status::Prepared,
            detail,
            None,
        )
        .await
    }

    async fn pickups(&self, procedure: &str, limit: u32) -> Result<Vec<Pickup>, StoreError> {
        sqlx::query(concat!(
            pickup_select!(),
            " WHERE d.procedure_id = ? AND d.step = 'pickup'
                  ORDER BY d.due_at, d.message_id LIMIT ?"
        ))
        .bind(procedure)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .sql()?
        .iter()
        .map(|row| pickup_of(row).map(|(pickup, _)| pickup))
        .collect()
    }

    async fn pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
    ) -> Result<Option<(Pickup, Vec<u8>)>, StoreError> {
        sqlx::query(concat!(
            pickup_select!(),
            " WHERE d.procedure_id = ? AND d.message_id = ? AND d.step IN ('pickup', 'done')"
        ))
        .bind(procedure)
        .bind(message_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .sql()?
        .map(|row| pickup_of(&row))
        .transpose()
    }

    async fn acknowledge_pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
        detail: &str,
    ) -> Result<PickupAck, StoreError> {
        let (procedure, detail) = (procedure.to_owned(), detail.to_owned());
        self.writer
            .write(move |tx| {
                let row: Option<(String, String, String, String)> = tx
                    .prepare_cached(
                        "SELECT application_id, service_key, message_type, step FROM deliveries
                         WHERE procedure_id = ?1 AND message_id = ?2",
                    ).sql()?
                    .query_row(params![procedure, message_id.to_string()], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                    })
                    .optional().sql()?;
                let Some((application_id, service_key, message_type, step)) = row else {
                    return Ok(PickupAck::Unknown);
                };
                match step.as_str() {
                    "pickup" => {}
                    "done" => return Ok(PickupAck::AlreadyAcknowledged),
                    _ => return Ok(PickupAck::Unknown),
                }
                let item = WorkItem {
                    application_id: parse_uuid(&application_id)?,
                    service_key,
                    procedure_id: procedure.clone(),
                    message_id,
                    message_type,
                    step: Step::Deliver,
                    attempts: 0,
                    lease: String::new(),
                    accepted_at: None,
                };
                let updated = tx
                    .prepare_cached(
                        "UPDATE deliveries SET step = 'done', attempts = attempts + 1, delivered_at = ?1
                         WHERE procedure_id = ?2 AND message_id = ?3 AND step = 'pickup'",
                    ).sql()?
                    .execute(params![
                        rfc3339(OffsetDateTime::now_utc()),
                        procedure,
                        message_id.to_string()
                    ]).sql()?;
                let done = transition(tx, updated, &item, Status::Delivered, &detail, None)?;
                Ok(if done {
                    PickupAck::Acknowledged
                } else {
                    PickupAck::Unknown
                })
            })
            .await
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        sqlx::query(
            "SELECT d.procedure_id, COUNT(*) AS pending, MIN(a.created_at) AS oldest
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
             WHERE d.step = 'dead' ORDER BY a.updated_at",
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
                attempts: row
                    .try_get::<i64, _>("attempts")
                    .sql()?
                    .try_into()
                    .unwrap_or(u32::MAX),
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
        let by = by.to_owned();
        self.writer
            .write(move |tx| {
                // Back to `deliver` with the sealed message as it was (same message id),
                // or to `prepare` if it was never sealed.
                let row: Option<(String, Option<Vec<u8>>)> = tx
                    .prepare_cached(
                        "UPDATE deliveries SET step = CASE WHEN sealed IS NULL THEN 'prepare' ELSE 'deliver' END,
                                attempts = 0, due_at = ?1, lease_owner = NULL, lease_until = NULL
                         WHERE application_id = ?2 AND step = 'dead'
                         RETURNING message_id, sealed",
                    ).sql()?
                    .query_row(
                        params![millis(OffsetDateTime::now_utc()), application_id.to_string()],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional().sql()?;
                let Some((message_id, sealed)) = row else {
                    return Ok(false);
                };
                let status = if sealed.is_some() {
                    Status::Prepared
                } else {
                    Status::Accepted
                };
                set_status(tx, application_id, status)?;
                append_history(
                    tx,
                    application_id,
                    status,
                    &format!("dead letter replayed by {by}; message {message_id} goes out again"),
                    Binding::message(sealed.as_deref().map(sha256_hex)),
                )?;
                Ok(true)
            })
            .await
    }

    async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError> {
        let receipt = receipt.clone();
        self.writer
            .write(move |tx| record_receipt(tx, &receipt))
            .await
    }

    async fn mailbox(
        &self,
        id: Uuid,
    ) -> Result<(Vec<MailboxEntry>, Vec<DocumentInfo>), StoreError> {
        let entries = sqlx::query(
            "SELECT kind, text, document_id, at FROM mailbox WHERE application_id = ? ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .sql()?
        .iter()
        .map(|row| {
            Ok(MailboxEntry {
                kind: row.try_get("kind").sql()?,
                text: row.try_get("text").sql()?,
                document_id: row
                    .try_get::<Option<String>, _>("document_id")
                    .sql()?
                    .map(|d| parse_uuid(&d))
                    .transpose()?,
                at: parse_time(&row.try_get::<String, _>("at").sql()?)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let documents = sqlx::query(
            "SELECT id, filename, media_type, size, sha512 FROM documents WHERE application_id = ? ORDER BY created_at",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await.sql()?
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
            "SELECT id, filename, media_type, size, sha512, content FROM documents WHERE id = ? AND application_id = ?",
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
             WHERE service_key = ?1 AND status IN ('decided', 'rejected') AND purged_at IS NULL
               AND substr(updated_at, 1, 19) < substr(?2, 1, 19)
             ORDER BY updated_at LIMIT ?3",
        )
        .bind(service)
        .bind(&cutoff)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .sql()?;
        let mut purged = 0;
        for id in candidates {
            let application_id = parse_uuid(&id)?;
            let done = self
                .writer
                .write(move |tx| purge_one(tx, application_id))
                .await?;
            if done {
                purged += 1;
            }
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
             WHERE (CAST(?1 AS TEXT) IS NULL OR a.receipt = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR a.service_key = ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR d.procedure_id = ?3)
               AND (CAST(?4 AS TEXT) IS NULL OR a.status = ?4)
               AND (CAST(?5 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) >= substr(?5, 1, 19))
               AND (CAST(?6 AS TEXT) IS NULL OR substr(a.created_at, 1, 19) < substr(?6, 1, 19))
             ORDER BY a.created_at DESC, a.id LIMIT ?7",
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
        let detail = detail.to_owned();
        self.writer
            .write(move |tx| {
                let status: Option<String> = tx
                    .prepare_cached("SELECT status FROM applications WHERE id = ?1")
                    .sql()?
                    .query_row([id.to_string()], |row| row.get(0))
                    .optional()
                    .sql()?;
                let Some(status) = status.as_deref().and_then(Status::parse) else {
                    return Ok(false);
                };
                append_history(tx, id, status, &detail, Binding::default())?;
                Ok(true)
            })
            .await
    }

    async fn retry_now(&self, id: Uuid, detail: &str) -> Result<bool, StoreError> {
        let detail = detail.to_owned();
        self.writer
            .write(move |tx| {
                let now = millis(OffsetDateTime::now_utc());
                let updated = tx
                    .prepare_cached(
                        "UPDATE deliveries SET due_at = ?1
                         WHERE application_id = ?2 AND step IN ('prepare', 'deliver')
                           AND (lease_until IS NULL OR lease_until < ?1)",
                    )
                    .sql()?
                    .execute(params![now, id.to_string()])
                    .sql()?;
                if updated == 0 {
                    return Ok(false);
                }
                let status: String = tx
                    .prepare_cached("SELECT status FROM applications WHERE id = ?1")
                    .sql()?
                    .query_row([id.to_string()], |row| row.get(0))
                    .sql()?;
                let status = Status::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?;
                append_history(tx, id, status, &detail, Binding::default())?;
                Ok(true)
            })
            .await
    }

    async fn release_stale_leases(&self) -> Result<u64, StoreError> {
        // The lock file guarantees that this process is the only one on the data
        // directory, so every lease still held belongs to a process that died.
        self.writer
            .write(|tx| {
                let released = tx.execute(
                    "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
                    [],
                ).sql()?;
                Ok(released as u64)
            })
            .await
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
        let checkpoint = checkpoint.clone();
        self.writer
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES (?1, ?2, ?3, ?4)",
                ).sql()?
                .execute(params![
                    checkpoint.seq,
                    checkpoint.hash,
                    checkpoint.at,
                    checkpoint.signature
                ]).sql()?;
                Ok(())
            })
            .await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut connection = self.pool.acquire().await.sql()?;
        audit::checkpoints(&mut connection).await
    }

    async fn verify_audit_with(&self, verifier: AuditVerifier) -> Result<AuditReport, StoreError> {
        // One read transaction: one consistent snapshot, while the hub goes on appending.
        let mut tx = self.pool.begin().await.sql()?;
        let report = audit::verify(&mut tx, verifier).await?;
        tx.rollback().await.sql()?;
        Ok(report)
    }
}
