//! The durable store as the domain sees it: applications, their attachments, the outbox
//! and the history — what is stored and what each operation promises, not how. The
//! backends (`kopplung-store`: SQLite, PostgreSQL) implement it; every state change is
//! one transaction that also appends the history entry and the audit entry (see
//! [`crate::audit`]).

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::FileDigest;
pub use crate::audit::{AuditEntry, AuditReport, AuditVerifier, Checkpoint};

/// The state of an application (see `docs/architecture.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Accepted,
    Prepared,
    Delivered,
    /// The procedure confirmed receipt (Eingangsbestätigung).
    Received,
    /// The procedure refused the message.
    Rejected,
    /// The authority works on it.
    InProgress,
    /// The authority asked the citizen a question (Rückfrage).
    Query,
    /// The authority decided (Bescheid).
    Decided,
    Invalid,
    DeadLettered,
}

impl Status {
    /// A final state: no event changes it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Decided | Self::Rejected)
    }

    /// Whether a procedure's event may move an application from `self` to `to`:
    /// delivered → received → in_progress ⇄ query → decided, and rejected from any
    /// non-final state after delivery.
    pub fn may_become(self, to: Status) -> bool {
        use Status::*;
        match to {
            Received => self == Delivered,
            Rejected => matches!(self, Delivered | Received | InProgress | Query),
            InProgress | Query | Decided => matches!(self, Received | InProgress | Query),
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Prepared => "prepared",
            Self::Delivered => "delivered",
            Self::Received => "received",
            Self::Rejected => "rejected",
            Self::InProgress => "in_progress",
            Self::Query => "query",
            Self::Decided => "decided",
            Self::Invalid => "invalid",
            Self::DeadLettered => "dead_lettered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accepted" => Self::Accepted,
            "prepared" => Self::Prepared,
            "delivered" => Self::Delivered,
            "received" => Self::Received,
            "rejected" => Self::Rejected,
            "in_progress" => Self::InProgress,
            "query" => Self::Query,
            "decided" => Self::Decided,
            "invalid" => Self::Invalid,
            "dead_lettered" => Self::DeadLettered,
            _ => return None,
        })
    }
}

/// An accepted application, as intake hands it to the store.
#[derive(Debug, Clone)]
pub struct NewApplication {
    pub id: Uuid,
    pub receipt: String,
    pub client_id: String,
    pub service_key: String,
    pub region: String,
    pub procedure_id: String,
    pub payload: serde_json::Value,
    pub attachments: Vec<Attachment>,
    pub message_id: Uuid,
    pub message_type: String,
    pub idempotency: Option<IdempotencyKey>,
    pub received_at: OffsetDateTime,
}

impl NewApplication {
    /// The form data as both stores keep it (JSON text), and the content hash of it and
    /// the attachments for the `accepted` audit entry (see [`crate::audit::content`]):
    /// uploads by the SHA-512 computed while they streamed in, never read again here.
    pub fn stored_form(&self) -> StoredForm {
        let payload = self.payload.to_string();
        let files: Vec<FileDigest> = self.attachments.iter().map(Attachment::digest).collect();
        let content_sha256 = crate::audit::content::content_sha256(Some(&payload), &files);
        StoredForm {
            payload,
            content_sha256,
        }
    }
}

/// See [`NewApplication::stored_form`].
#[derive(Debug, Clone)]
pub struct StoredForm {
    pub payload: String,
    pub content_sha256: String,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub media_type: String,
    pub sha512: String,
    /// Bytes of the file.
    pub size: u64,
    pub content: AttachmentContent,
}

impl Attachment {
    /// The attachment as the content hash covers it.
    pub fn digest(&self) -> FileDigest {
        FileDigest {
            filename: self.filename.clone(),
            media_type: self.media_type.clone(),
            size: self.size,
            sha512: self.sha512.clone(),
        }
    }
}

/// Where an attachment's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentContent {
    /// Sent inside the application (base64), small: kept with it.
    Inline(Vec<u8>),
    /// Uploaded on its own and streamed into chunks (see [`FRAGMENT_BYTES`]); never
    /// loaded whole.
    Upload(Uuid),
}

/// The size of an upload's stored chunks, which are also the fragments a procedure
/// downloads and decrypts one by one: what bounds the memory one attachment costs.
pub const FRAGMENT_BYTES: usize = 1024 * 1024;

/// The number of fragments of an attachment of `size` bytes (an empty one has one).
pub fn fragment_count(size: u64) -> u64 {
    size.div_ceil(FRAGMENT_BYTES as u64).max(1)
}

/// An upload being started: its chunks follow.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub id: Uuid,
    pub client_id: String,
    pub filename: String,
    pub media_type: String,
    pub created_at: OffsetDateTime,
}

/// An upload as the intake sees it when an application names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub id: Uuid,
    pub client_id: String,
    pub filename: String,
    pub media_type: String,
    /// Size and hash, once every chunk is stored.
    pub complete: Option<(u64, String)>,
    /// The application it belongs to, once one named it.
    pub application_id: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_sha256: String,
}

/// The answer intake gives for an accepted application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: Uuid,
    pub receipt: String,
}

/// What became of an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    Created(Accepted),
    /// The same idempotency key with the same request: the earlier answer.
    Replayed(Accepted),
    /// The same idempotency key with a different request.
    KeyConflict,
    /// The receipt number is taken; draw another.
    ReceiptTaken,
    /// The upload of attachment `n` is no longer free (another application took it
    /// meanwhile): nothing was stored.
    UploadTaken(usize),
}

/// An application with its delivery and history, as the status API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationRecord {
    pub id: Uuid,
    pub receipt: String,
    #[serde(skip)]
    pub client_id: String,
    pub service: String,
    pub region: String,
    pub status: Status,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub delivery: DeliveryRecord,
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub procedure: String,
    pub message_id: Uuid,
    pub message_type: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub delivered_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub detail: String,
}

/// The next step of an outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Render, check and seal.
    Prepare,
    /// Hand the sealed message to the transport.
    Deliver,
}

/// An outbox entry claimed under a lease.
#[derive(Debug, Clone)]
pub struct WorkItem {
    pub application_id: Uuid,
    pub service_key: String,
    pub procedure_id: String,
    pub message_id: Uuid,
    pub message_type: String,
    pub step: Step,
    pub attempts: u32,
    /// The lease under which this entry was claimed; recording needs it.
    pub lease: String,
    /// When intake accepted the application (for the submit-to-delivered time).
    pub accepted_at: Option<OffsetDateTime>,
}

/// One procedure's waiting work.
#[derive(Debug, Clone, Serialize)]
pub struct Backlog {
    pub procedure: String,
    pub pending: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_since: Option<OffsetDateTime>,
}

/// A message whose delivery was given up.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub application_id: Uuid,
    pub receipt: String,
    pub service: String,
    pub procedure: String,
    pub message_id: Uuid,
    pub attempts: u32,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// What the admin console searches applications by; every part optional.
#[derive(Debug, Clone, Default)]
pub struct ApplicationQuery {
    pub receipt: Option<String>,
    pub service: Option<String>,
    pub procedure: Option<String>,
    pub status: Option<Status>,
    /// Accepted at or after / before.
    pub from: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub limit: u32,
}

/// One application in a search result (no personal data).
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationSummary {
    pub id: Uuid,
    pub receipt: String,
    pub service: String,
    pub region: String,
    pub procedure: String,
    pub status: Status,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A message waiting for its procedure to collect it (pull API, clerk inbox).
#[derive(Debug, Clone, Serialize)]
pub struct Pickup {
    pub message_id: Uuid,
    pub application_id: Uuid,
    #[serde(skip)]
    pub receipt: String,
    /// ARS of the municipality (for the clerk inbox; not part of the pull API).
    #[serde(skip)]
    pub region: String,
    pub service: String,
    pub message_type: String,
    pub size: u64,
    /// Hex SHA-256 of the message as stored and served.
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub available_since: OffsetDateTime,
}

/// What became of a pickup acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickupAck {
    /// Now delivered.
    Acknowledged,
    /// Acknowledged before: nothing changed.
    AlreadyAcknowledged,
    /// No such message waits for this procedure.
    Unknown,
}

/// What the prepare step needs of an application.
#[derive(Debug, Clone)]
pub struct PrepareInput {
    pub id: Uuid,
    pub receipt: String,
    pub service_key: String,
    pub region: String,
    pub payload: serde_json::Value,
    pub attachments: Vec<Attachment>,
    pub created_at: OffsetDateTime,
}

/// A verified receipt, as the API hands it to the store.
#[derive(Debug, Clone)]
pub struct ReceiptRecord {
    pub receipt_id: String,
    pub procedure_id: String,
    pub message_id: Uuid,
    pub application_id: Uuid,
    /// The state the event moves the application to.
    pub status: Status,
    /// Text for the citizen's mailbox (question, decision summary): personal data.
    pub message: Option<String>,
    pub document: Option<EventDocument>,
    /// Problem types and titles of a rejection (no free text of the procedure).
    pub problems: Vec<String>,
    pub issued_at: String,
    /// The receipt exactly as signed.
    pub signed: Vec<u8>,
    /// SHA-256 (hex) of the verified content: the same receipt sent twice has the same.
    pub content_sha256: String,
}

/// A document a procedure sent (the decision).
#[derive(Debug, Clone)]
pub struct EventDocument {
    pub filename: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

impl EventDocument {
    /// The document as the content hash covers it (with its SHA-512).
    pub fn digest(&self) -> FileDigest {
        let mut hasher = crate::audit::FileHasher::new();
        hasher.update(&self.content);
        hasher.finish(&self.filename, &self.media_type)
    }
}

/// A stored document, as the download offers it.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentInfo {
    pub id: Uuid,
    pub filename: String,
    pub media_type: String,
    pub size: u64,
    pub sha512: String,
}

/// A message for the citizen's mailbox.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxEntry {
    pub kind: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// What became of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Recorded; the application is now `received` or `rejected`.
    Applied(Status),
    /// The same receipt was recorded before (same id and bytes): nothing changed.
    Duplicate,
    /// The id was used before for a different receipt.
    Conflict,
    /// No message with this id was delivered to this procedure for this application.
    UnknownMessage,
    /// The application is already decided or rejected.
    AlreadyFinal,
    /// The event does not follow from the application's state (e.g. a decision
    /// before the receipt).
    OutOfOrder(Status),
}

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

#[async_trait]
pub trait Store: Send + Sync {
    /// Stores an application with its attachments, outbox entry, idempotency key and first
    /// history entry in one durable transaction.
    async fn insert_application(&self, new: &NewApplication) -> Result<Inserted, StoreError>;

    /// Starts an upload; its chunks follow with [`Store::append_upload_chunk`].
    async fn create_upload(&self, upload: &NewUpload) -> Result<(), StoreError>;

    /// Stores chunk `seq` of an upload (each [`FRAGMENT_BYTES`] long but the last).
    async fn append_upload_chunk(
        &self,
        id: Uuid,
        seq: u64,
        content: &[u8],
    ) -> Result<(), StoreError>;

    /// Marks an upload complete with its size and SHA-512 (hex).
    async fn complete_upload(&self, id: Uuid, size: u64, sha512: &str) -> Result<(), StoreError>;

    /// One upload, if it exists.
    async fn upload(&self, id: Uuid) -> Result<Option<UploadInfo>, StoreError>;

    /// Removes an upload no application names (a failed or abandoned one) with its
    /// chunks; false if an application names it.
    async fn discard_upload(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Removes the uploads started before `before` that no application names.
    async fn discard_stale_uploads(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Fragment `fragment` (plain bytes) of attachment `position` of the message
    /// `message_id` of `procedure`; None if there is no such message, attachment or
    /// fragment, or its content was deleted.
    async fn attachment_fragment(
        &self,
        procedure: &str,
        message_id: Uuid,
        position: u32,
        fragment: u64,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// The earlier answer for an idempotency key, or a conflict.
    async fn idempotent_answer(
        &self,
        client_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Inserted>, StoreError>;

    async fn application(&self, id: Uuid) -> Result<Option<ApplicationRecord>, StoreError>;

    /// Claims up to `limit` due outbox entries under the lease token `lease` (unique per
    /// claim) until `lease_until`, at most `capacity[procedure]` of each procedure (what
    /// is left of its concurrency limit, so that a slow procedure cannot take every slot;
    /// 1 for a procedure not in the map).
    async fn claim(
        &self,
        lease: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
        capacity: &std::collections::BTreeMap<String, u32>,
    ) -> Result<Vec<WorkItem>, StoreError>;

    /// When the earliest pending entry falls due, if any.
    async fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError>;

    async fn prepare_input(&self, id: Uuid) -> Result<PrepareInput, StoreError>;

    async fn sealed_message(&self, item: &WorkItem) -> Result<Vec<u8>, StoreError>;

    /// Each `record_*` returns `false` if the item's lease was taken over (nothing changed).
    /// The message is rendered, checked and (unless kept for the clerk inbox) sealed;
    /// `detail` says so in the history.
    async fn record_prepared(
        &self,
        item: &WorkItem,
        sealed: &[u8],
        detail: &str,
    ) -> Result<bool, StoreError>;

    async fn record_delivered(&self, item: &WorkItem, detail: &str) -> Result<bool, StoreError>;

    async fn record_retry(
        &self,
        item: &WorkItem,
        due: OffsetDateTime,
        error: &str,
    ) -> Result<bool, StoreError>;

    /// Like `record_retry`, but the wait is not an attempt at this message (the
    /// destination was unreachable altogether).
    async fn record_wait(
        &self,
        item: &WorkItem,
        due: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError>;

    /// The message is prepared and waits for its procedure to collect it.
    async fn record_awaiting_pickup(
        &self,
        item: &WorkItem,
        detail: &str,
    ) -> Result<bool, StoreError>;

    /// Messages waiting for `procedure`, oldest first.
    async fn pickups(&self, procedure: &str, limit: u32) -> Result<Vec<Pickup>, StoreError>;

    /// One waiting (or already collected) message of `procedure` with its stored bytes.
    async fn pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
    ) -> Result<Option<(Pickup, Vec<u8>)>, StoreError>;

    /// The procedure collected the message: it is delivered (history and audit entry).
    async fn acknowledge_pickup(
        &self,
        procedure: &str,
        message_id: Uuid,
        detail: &str,
    ) -> Result<PickupAck, StoreError>;

    /// Work waiting per procedure: entries in the outbox and the oldest one's age.
    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError>;

    /// The dead letters, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;

    /// Puts a dead letter back into the outbox with its message id unchanged (due now,
    /// attempts counted afresh). Returns `false` if the application is no dead letter.
    async fn replay(&self, application_id: Uuid, by: &str) -> Result<bool, StoreError>;

    /// A failure that retrying cannot fix: `invalid` (mapping) or `dead_lettered` (delivery).
    async fn record_failed(
        &self,
        item: &WorkItem,
        status: Status,
        error: &str,
    ) -> Result<bool, StoreError>;

    /// Records a verified receipt and moves the application to `received` or `rejected`,
    /// in one transaction with its history and audit entry.
    async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError>;

    /// The citizen's mailbox and the documents of an application.
    async fn mailbox(&self, id: Uuid)
    -> Result<(Vec<MailboxEntry>, Vec<DocumentInfo>), StoreError>;

    /// One document with its content, if it belongs to the application.
    async fn document(
        &self,
        application_id: Uuid,
        document_id: Uuid,
    ) -> Result<Option<(DocumentInfo, Vec<u8>)>, StoreError>;

    /// Retention: deletes the personal data — payload, attachments, the sealed message,
    /// documents, mailbox texts, signed receipts — of up to `limit` applications of
    /// `service` whose final state (decided, rejected) was reached before
    /// `final_before`. Each deletion is one transaction with its history and audit
    /// entry; ids, states and hashes stay. Returns how many were purged.
    async fn purge_personal_data(
        &self,
        service: &str,
        final_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Applications matching every given part of `query`, newest first.
    async fn search(&self, query: &ApplicationQuery)
    -> Result<Vec<ApplicationSummary>, StoreError>;

    /// Records that someone looked at an application's personal data (history and audit
    /// entry with `detail`). `false` if there is no such application.
    async fn record_access(&self, id: Uuid, detail: &str) -> Result<bool, StoreError>;

    /// An operator asks for the next attempt now: a waiting outbox entry becomes due
    /// (with a history entry). `false` if nothing waits (delivered, leased, dead letter).
    async fn retry_now(&self, id: Uuid, detail: &str) -> Result<bool, StoreError>;

    /// Returns leases of this process's earlier life (after a crash) to the pool.
    async fn release_stale_leases(&self) -> Result<u64, StoreError>;

    /// The audit entries (Laufzettel) of one application, in chain order; empty if
    /// there are none.
    async fn audit_entries(&self, application_id: Uuid) -> Result<Vec<AuditEntry>, StoreError>;

    /// The last entry of the audit chain (seq and hash); `None` while it is empty.
    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError>;

    /// Stores a signed checkpoint of the audit chain's head.
    async fn record_audit_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;

    /// The stored checkpoints, by seq.
    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;

    /// Checks the whole audit trail from one consistent snapshot: the chain (all
    /// applications), every application's stored content against its entries, and the
    /// stored checkpoints (with those `verifier` holds from outside) against the chain.
    /// The report counts what was checked and names the first problem, if any.
    async fn verify_audit_with(&self, verifier: AuditVerifier) -> Result<AuditReport, StoreError>;

    /// [`Store::verify_audit_with`] without checkpoint signatures or checkpoints from
    /// outside.
    async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        self.verify_audit_with(AuditVerifier::new(None)).await
    }
}
