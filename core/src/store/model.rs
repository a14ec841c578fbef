//! What the store keeps and hands out: applications, attachments, outbox entries,
//! pickups, receipts and their documents, as plain values.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::status::Status;

use crate::audit::FileDigest;
pub use crate::audit::{AuditEntry, AuditReport, AuditVerifier, ChainHead, Checkpoint};
use crate::follow_up::{FollowUpInput, FollowUpOf, FollowUpRecord};
use crate::identity::Authentication;
use crate::store::StoreError;

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
    /// The applicant's verified identification; none: submitted anonymously.
    pub authentication: Option<Authentication>,
    /// Its message, already rendered, checked and sealed: stored with the application,
    /// which starts `prepared` (see [`SealedAhead`]); none: the outbox prepares it.
    pub sealed: Option<SealedAhead>,
    /// Set for a follow-up message of the citizen (see [`crate::conversation`]): stored
    /// as a child of its application, with its own outbox entry.
    pub follow_up: Option<FollowUpOf>,
    /// The reply channel a FIT-Connect sender named (its `replyChannel`, JSON), kept
    /// for the procedure; personal data, deleted by retention.
    pub reply_channel: Option<String>,
}

/// A message sealed before its application was stored. Sealing at intake saves the
/// outbox a read, a state change and a durable write per application; the message id
/// stays the one it was sealed with, because it is stored in the same transaction.
#[derive(Debug, Clone)]
pub struct SealedAhead {
    /// The sealed message (the checked XML for a clerk inbox), as delivered.
    pub message: std::sync::Arc<[u8]>,
    /// The XML as it was signed and sealed: what the admin view shows, because the hub
    /// cannot open a message sealed for the procedure.
    pub xml: std::sync::Arc<str>,
    /// What the `prepared` history entry says.
    pub detail: String,
}

impl NewApplication {
    /// What the prepare step reads of it once stored, field by field (for sealing it
    /// before it is stored).
    pub fn prepare_input(&self) -> PrepareInput {
        PrepareInput {
            id: self.id,
            receipt: self.receipt.clone(),
            service_key: self.service_key.clone(),
            region: self.region.clone(),
            payload: self.payload.clone(),
            attachments: self.attachments.clone(),
            created_at: self.received_at,
            authentication: self.authentication.clone(),
            // Follow-ups are never sealed at intake: the outbox reads their parent.
            follow_up: None,
            reply_channel: self.reply_channel.clone(),
        }
    }

    /// The status, the outbox stage and the sealed message it is stored with.
    pub fn first_state(&self) -> (Status, crate::store::rules::Stage, Option<&[u8]>) {
        use crate::store::rules::Stage;
        match &self.sealed {
            Some(sealed) => (Status::Prepared, Stage::Deliver, Some(&sealed.message[..])),
            None => (Status::Accepted, Stage::Prepare, None),
        }
    }

    /// The XML its message was sealed from, if it was sealed at intake (stored beside
    /// the sealed message, see [`SealedAhead::xml`]).
    pub fn sent_xml(&self) -> Option<&str> {
        self.sealed.as_ref().map(|sealed| &*sealed.xml)
    }

    /// The form data and the identification as both stores keep them (JSON text), and
    /// the content hash of them and the attachments for the `accepted` audit entry (see
    /// [`crate::audit::content`]): uploads by the SHA-512 computed while they streamed
    /// in, never read again here.
    pub fn stored_form(&self) -> Result<StoredForm, StoreError> {
        let payload = self.payload.to_string();
        // A time outside RFC 3339's years does not serialise: refused, never dropped.
        let authentication = self
            .authentication
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("authentication of {}: {e}", self.id)))?;
        let files: Vec<FileDigest> = self.attachments.iter().map(Attachment::digest).collect();
        let content_sha256 = crate::audit::content::application_content_sha256(
            &payload,
            &files,
            authentication.as_deref(),
        );
        Ok(StoredForm {
            payload,
            authentication,
            content_sha256,
        })
    }
}

/// See [`NewApplication::stored_form`].
#[derive(Debug, Clone)]
pub struct StoredForm {
    pub payload: String,
    /// The `authentication` column: JSON of [`Authentication`], none if anonymous.
    pub authentication: Option<String>,
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
    /// The form's attachment slot it fills, if any.
    pub slot: Option<String>,
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
    /// A follow-up that may stand once ([`crate::follow_up::FollowUpOf::once`]) already
    /// stands (stored meanwhile by another request): nothing was stored.
    AlreadySent,
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
    /// What this record is a follow-up message of, if it is one (then it is not an
    /// application of its own to the citizen).
    #[serde(skip)]
    pub follow_up: Option<FollowUpOf>,
    /// The follow-up messages the citizen sent for this application, oldest first.
    #[serde(rename = "messages", skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<FollowUpRecord>,
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
    /// The sealed message, read with the claim (step `Deliver`): no second read.
    pub sealed: Option<Vec<u8>>,
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
    /// The citizen's follow-up messages too (always when searching by receipt number).
    pub follow_ups: bool,
}

/// One application in a search result (no personal data).
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationSummary {
    pub id: Uuid,
    pub receipt: String,
    pub service: String,
    pub region: String,
    pub procedure: String,
    /// The message the procedure was sent (the clerk inbox's address of a case; not
    /// part of the admin API's search result).
    #[serde(skip)]
    pub message_id: Uuid,
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
    /// How the applicant was identified; none: anonymously (or deleted by retention).
    pub authentication: Option<Authentication>,
    /// Set for a follow-up message: rendered with the follow-up template, referencing
    /// its application.
    pub follow_up: Option<FollowUpInput>,
    /// The reply channel a FIT-Connect sender named (JSON); none for everything else.
    pub reply_channel: Option<String>,
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
    /// A decision's appeal information.
    pub appeal: Option<Appeal>,
    /// A fee the decision sets.
    pub fee: Option<DecisionFee>,
    /// Problem types and titles of a rejection (no free text of the procedure).
    pub problems: Vec<String>,
    pub issued_at: String,
    /// The receipt exactly as signed.
    pub signed: Vec<u8>,
    /// SHA-256 (hex) of the verified content: the same receipt sent twice has the same.
    pub content_sha256: String,
    /// Who recorded the event for a procedure without interface (`clerk <id>`, the
    /// clerk inbox); `None` for a procedure's own signed event.
    pub recorded_by: Option<String>,
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
    /// The procedure's event id: what an answer or an objection refers to.
    pub event_id: String,
    pub kind: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// A decision's appeal information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appeal: Option<Appeal>,
    /// A fee the decision sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<DecisionFee>,
}

/// A fee a decision sets (Gebühr), for the citizen to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionFee {
    /// In cents; `"30.70"` in JSON.
    #[serde(rename = "amount", serialize_with = "serialize_euros")]
    pub cents: u64,
    /// Verwendungszweck: what the payment is for.
    pub purpose: String,
}

impl DecisionFee {
    /// `"30.70"`.
    pub fn euros(&self) -> String {
        format!("{}.{:02}", self.cents / 100, self.cents % 100)
    }
}

fn serialize_euros<S: serde::Serializer>(cents: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}.{:02}", cents / 100, cents % 100))
}

/// A decision's appeal information: the Rechtsbehelfsbelehrung (personal data like
/// the mailbox text) and the last day on which a Widerspruch may be filed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appeal {
    pub text: String,
    /// `YYYY-MM-DD` in JSON.
    #[serde(serialize_with = "serialize_day")]
    pub deadline: time::Date,
}

fn serialize_day<S: serde::Serializer>(day: &time::Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&day.to_string())
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
