//! The rows the backends' queries read, as plain structs (decoded by sqlx from either
//! database, or filled by hand from a rusqlite row on SQLite's writer), and how each
//! becomes the core's value. Columns are named as in the queries of both backends.

use kopplung_core::audit::sha256_hex;
use kopplung_core::conversation::{FollowUpInput, FollowUpKind, FollowUpOf, FollowUpRecord};
use kopplung_core::store::rules::{Stage, parse_status, parse_uuid};
use kopplung_core::store::{
    Appeal, ApplicationRecord, ApplicationSummary, Attachment, AttachmentContent, Backlog,
    DeadLetter, DecisionFee, DeliveryRecord, DocumentInfo, HistoryEntry, MailboxEntry, Pickup,
    PrepareInput, StoreError, UploadInfo, WorkItem, fragment_count,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{count, from_millis, parse_day, parse_time};

fn size_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// An application with its outbox entry, as a search lists it: the columns every view
/// of an application reads ([`super::statements::summary_columns`]).
#[derive(sqlx::FromRow)]
pub(crate) struct SummaryRow {
    id: String,
    receipt: String,
    service_key: String,
    region: String,
    status: String,
    created_at: String,
    updated_at: String,
    procedure_id: String,
    message_id: String,
    attempts: i64,
    last_error: Option<String>,
}

impl TryFrom<SummaryRow> for ApplicationSummary {
    type Error = StoreError;

    fn try_from(row: SummaryRow) -> Result<Self, StoreError> {
        Ok(ApplicationSummary {
            id: parse_uuid(&row.id)?,
            receipt: row.receipt,
            service: row.service_key,
            region: row.region,
            procedure: row.procedure_id,
            message_id: parse_uuid(&row.message_id)?,
            status: parse_status(&row.status)?,
            attempts: count(row.attempts),
            last_error: row.last_error,
            created_at: parse_time(&row.created_at)?,
            updated_at: parse_time(&row.updated_at)?,
        })
    }
}

/// An application with its outbox entry (the status view).
#[derive(sqlx::FromRow)]
pub(crate) struct ApplicationRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    client_id: String,
    message_type: String,
    due_at: i64,
    step: String,
    delivered_at: Option<String>,
    parent_id: Option<String>,
    follow_up: Option<String>,
    refers_to: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct HistoryRow {
    at: String,
    status: String,
    detail: String,
}

impl ApplicationRow {
    pub(crate) fn into_record(
        self,
        history: Vec<HistoryRow>,
        follow_ups: Vec<FollowUpRow>,
    ) -> Result<ApplicationRecord, StoreError> {
        let pending = Stage::parse(&self.step)?.is_pending();
        let follow_up = match (self.parent_id, self.follow_up) {
            (Some(parent), Some(kind)) => Some(FollowUpOf {
                parent_id: parse_uuid(&parent)?,
                kind: parse_kind(&kind)?,
                refers_to: self.refers_to,
            }),
            _ => None,
        };
        let summary = ApplicationSummary::try_from(self.summary)?;
        Ok(ApplicationRecord {
            id: summary.id,
            receipt: summary.receipt,
            client_id: self.client_id,
            service: summary.service,
            region: summary.region,
            status: summary.status,
            created_at: summary.created_at,
            updated_at: summary.updated_at,
            delivery: DeliveryRecord {
                procedure: summary.procedure,
                message_id: summary.message_id,
                message_type: self.message_type,
                attempts: summary.attempts,
                last_error: summary.last_error,
                next_attempt_at: if pending {
                    from_millis(self.due_at)
                } else {
                    None
                },
                delivered_at: self.delivered_at.map(|s| parse_time(&s)).transpose()?,
            },
            history: history
                .into_iter()
                .map(|h| {
                    Ok(HistoryEntry {
                        at: parse_time(&h.at)?,
                        status: h.status,
                        detail: h.detail,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            follow_up,
            follow_ups: follow_ups
                .into_iter()
                .map(FollowUpRow::into_record)
                .collect::<Result<_, StoreError>>()?,
        })
    }
}

fn parse_kind(kind: &str) -> Result<FollowUpKind, StoreError> {
    FollowUpKind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("follow-up kind {kind}")))
}

/// A follow-up message of an application ([`super::statements::FOLLOW_UPS`]).
#[derive(sqlx::FromRow)]
pub(crate) struct FollowUpRow {
    id: String,
    follow_up: String,
    refers_to: Option<String>,
    status: String,
    created_at: String,
    procedure_id: String,
    message_id: String,
    message_type: String,
    delivered_at: Option<String>,
}

impl FollowUpRow {
    fn into_record(self) -> Result<FollowUpRecord, StoreError> {
        Ok(FollowUpRecord {
            id: parse_uuid(&self.id)?,
            kind: parse_kind(&self.follow_up)?,
            refers_to: self.refers_to,
            procedure: self.procedure_id,
            message_id: parse_uuid(&self.message_id)?,
            message_type: self.message_type,
            status: parse_status(&self.status)?,
            created_at: parse_time(&self.created_at)?,
            delivered_at: self.delivered_at.map(|s| parse_time(&s)).transpose()?,
        })
    }
}

/// A dead letter: the application as listed, and its message.
#[derive(sqlx::FromRow)]
pub(crate) struct DeadLetterRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
}

impl TryFrom<DeadLetterRow> for DeadLetter {
    type Error = StoreError;

    fn try_from(row: DeadLetterRow) -> Result<Self, StoreError> {
        let summary = ApplicationSummary::try_from(row.summary)?;
        Ok(DeadLetter {
            application_id: summary.id,
            receipt: summary.receipt,
            service: summary.service,
            procedure: summary.procedure,
            message_id: summary.message_id,
            attempts: summary.attempts,
            reason: summary.last_error.unwrap_or_default(),
            since: summary.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BacklogRow {
    procedure_id: String,
    pending: i64,
    oldest: Option<String>,
}

impl TryFrom<BacklogRow> for Backlog {
    type Error = StoreError;

    fn try_from(row: BacklogRow) -> Result<Self, StoreError> {
        Ok(Backlog {
            procedure: row.procedure_id,
            pending: size_of(row.pending),
            oldest_since: row.oldest.map(|t| parse_time(&t)).transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MailboxRow {
    event_id: String,
    kind: String,
    text: String,
    document_id: Option<String>,
    at: String,
    appeal_text: Option<String>,
    appeal_deadline: Option<String>,
    fee_cents: Option<i64>,
    fee_purpose: Option<String>,
}

impl TryFrom<MailboxRow> for MailboxEntry {
    type Error = StoreError;

    fn try_from(row: MailboxRow) -> Result<Self, StoreError> {
        Ok(MailboxEntry {
            event_id: row.event_id,
            kind: row.kind,
            text: row.text,
            document_id: row.document_id.map(|d| parse_uuid(&d)).transpose()?,
            at: parse_time(&row.at)?,
            // Retention deletes the text; the deadline alone says nothing then.
            appeal: match (row.appeal_text, row.appeal_deadline) {
                (Some(text), Some(deadline)) => Some(Appeal {
                    text,
                    deadline: parse_day(&deadline)?,
                }),
                _ => None,
            },
            // Retention deletes the purpose; the amount stays what it was.
            fee: row.fee_cents.map(|cents| DecisionFee {
                cents: u64::try_from(cents).unwrap_or_default(),
                purpose: row.fee_purpose.unwrap_or_default(),
            }),
        })
    }
}

/// A document's description (`content` only where the query reads it).
#[derive(sqlx::FromRow)]
pub(crate) struct DocumentRow {
    id: String,
    filename: String,
    media_type: String,
    size: i64,
    sha512: String,
    #[sqlx(default)]
    content: Vec<u8>,
}

impl DocumentRow {
    pub(crate) fn into_document(self) -> Result<(DocumentInfo, Vec<u8>), StoreError> {
        Ok((
            DocumentInfo {
                id: parse_uuid(&self.id)?,
                filename: self.filename,
                media_type: self.media_type,
                size: size_of(self.size),
                sha512: self.sha512,
            },
            self.content,
        ))
    }

    pub(crate) fn into_info(self) -> Result<DocumentInfo, StoreError> {
        self.into_document().map(|(info, _)| info)
    }
}

/// Rows of both mailbox queries into the mailbox.
pub(crate) fn mailbox(
    entries: Vec<MailboxRow>,
    documents: Vec<DocumentRow>,
) -> Result<(Vec<MailboxEntry>, Vec<DocumentInfo>), StoreError> {
    Ok((
        entries
            .into_iter()
            .map(MailboxEntry::try_from)
            .collect::<Result<_, _>>()?,
        documents
            .into_iter()
            .map(DocumentRow::into_info)
            .collect::<Result<_, _>>()?,
    ))
}

#[derive(sqlx::FromRow)]
pub(crate) struct UploadRow {
    client_id: String,
    filename: String,
    media_type: String,
    size: Option<i64>,
    sha512: Option<String>,
    application_id: Option<String>,
}

impl UploadRow {
    pub(crate) fn into_info(self, id: Uuid) -> Result<UploadInfo, StoreError> {
        Ok(UploadInfo {
            id,
            client_id: self.client_id,
            filename: self.filename,
            media_type: self.media_type,
            complete: self
                .size
                .zip(self.sha512)
                .map(|(size, hash)| (size_of(size), hash)),
            application_id: self.application_id.as_deref().map(parse_uuid).transpose()?,
        })
    }
}

/// An outbox entry just claimed.
#[derive(sqlx::FromRow)]
pub(crate) struct WorkRow {
    pub(crate) application_id: String,
    pub(crate) service_key: String,
    pub(crate) procedure_id: String,
    pub(crate) message_id: String,
    pub(crate) message_type: String,
    pub(crate) step: String,
    pub(crate) attempts: i64,
    pub(crate) accepted_at: Option<String>,
    pub(crate) sealed: Option<Vec<u8>>,
}

impl WorkRow {
    pub(crate) fn into_item(self, lease: &str) -> Result<WorkItem, StoreError> {
        Ok(WorkItem {
            application_id: parse_uuid(&self.application_id)?,
            service_key: self.service_key,
            procedure_id: self.procedure_id,
            message_id: parse_uuid(&self.message_id)?,
            message_type: self.message_type,
            step: Stage::parse(&self.step)?.claimed_step()?,
            attempts: count(self.attempts),
            lease: lease.to_owned(),
            accepted_at: self
                .accepted_at
                .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()),
            sealed: self.sealed,
        })
    }
}

/// What the prepare step reads of an application.
#[derive(sqlx::FromRow)]
pub(crate) struct PrepareRow {
    pub(crate) receipt: String,
    pub(crate) service_key: String,
    pub(crate) region: String,
    pub(crate) payload: String,
    pub(crate) created_at: String,
    /// JSON of the applicant's identification; NULL: anonymous.
    pub(crate) authentication: Option<String>,
    /// A follow-up message's kind, the event it refers to and its application's id,
    /// receipt number, time and message id; NULL for an application.
    pub(crate) follow_up: Option<String>,
    pub(crate) refers_to: Option<String>,
    pub(crate) parent_id: Option<String>,
    pub(crate) parent_receipt: Option<String>,
    pub(crate) parent_created_at: Option<String>,
    pub(crate) parent_message_id: Option<String>,
    pub(crate) reply_channel: Option<String>,
}

/// An attachment as the prepare step reads it: inline content, or the upload that
/// holds it (then `content` is empty).
#[derive(sqlx::FromRow)]
pub(crate) struct AttachmentRow {
    pub(crate) filename: String,
    pub(crate) media_type: String,
    pub(crate) sha512: String,
    pub(crate) size: i64,
    pub(crate) upload_id: Option<String>,
    pub(crate) content: Vec<u8>,
    pub(crate) slot: Option<String>,
}

impl PrepareRow {
    pub(crate) fn into_input(
        self,
        id: Uuid,
        attachments: Vec<AttachmentRow>,
    ) -> Result<PrepareInput, StoreError> {
        Ok(PrepareInput {
            id,
            reply_channel: self.reply_channel.clone(),
            receipt: self.receipt,
            service_key: self.service_key,
            region: self.region,
            payload: serde_json::from_str(&self.payload)
                .map_err(|e| StoreError::Corrupt(format!("payload of {id}: {e}")))?,
            authentication: self
                .authentication
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("authentication of {id}: {e}")))?,
            attachments: attachments
                .into_iter()
                .map(|a| {
                    Ok(Attachment {
                        filename: a.filename,
                        media_type: a.media_type,
                        sha512: a.sha512,
                        size: size_of(a.size),
                        content: match a.upload_id {
                            Some(upload) => AttachmentContent::Upload(parse_uuid(&upload)?),
                            None => AttachmentContent::Inline(a.content),
                        },
                        slot: a.slot,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            created_at: parse_time(&self.created_at)?,
            follow_up: match (
                self.follow_up,
                self.parent_id,
                self.parent_receipt,
                self.parent_created_at,
                self.parent_message_id,
            ) {
                (Some(kind), Some(parent), Some(receipt), Some(created), Some(message)) => {
                    Some(FollowUpInput {
                        kind: parse_kind(&kind)?,
                        refers_to: self.refers_to,
                        parent_id: parse_uuid(&parent)?,
                        parent_receipt: receipt,
                        parent_message_id: parse_uuid(&message)?,
                        parent_created_at: parse_time(&created)?,
                    })
                }
                (None, ..) => None,
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "follow-up {id} without its application"
                    )));
                }
            },
        })
    }
}

/// A message waiting for its procedure, with its size and hash: computed by the database
/// where it can (PostgreSQL), else here from the message (SQLite).
#[derive(sqlx::FromRow)]
pub(crate) struct PickupRow {
    message_id: String,
    application_id: String,
    receipt: String,
    region: String,
    service_key: String,
    message_type: String,
    due_at: i64,
    #[sqlx(default)]
    size: Option<i64>,
    #[sqlx(default)]
    sha256: Option<String>,
    /// The message, where the query reads it.
    #[sqlx(default)]
    sealed: Option<Vec<u8>>,
}

impl PickupRow {
    /// The pickup and the message's bytes (empty where the query did not read them).
    pub(crate) fn into_pickup(self) -> Result<(Pickup, Vec<u8>), StoreError> {
        let found = self.size.zip(self.sha256).or_else(|| {
            let sealed = self.sealed.as_deref()?;
            Some((
                i64::try_from(sealed.len()).unwrap_or(i64::MAX),
                sha256_hex(sealed),
            ))
        });
        let Some((size, sha256)) = found else {
            return Err(StoreError::Corrupt("a pickup without its message".into()));
        };
        let pickup = Pickup {
            message_id: parse_uuid(&self.message_id)?,
            application_id: parse_uuid(&self.application_id)?,
            receipt: self.receipt,
            region: self.region,
            service: self.service_key,
            message_type: self.message_type,
            size: size_of(size),
            sha256,
            available_since: from_millis(self.due_at)
                .ok_or_else(|| StoreError::Corrupt(format!("time {}", self.due_at)))?,
        };
        Ok((pickup, self.sealed.unwrap_or_default()))
    }
}

/// An attachment's fragment as the query found it: inline (`part` is the fragment's
/// bytes) or in an upload's chunks.
#[derive(sqlx::FromRow)]
pub(crate) struct FragmentRow {
    upload_id: Option<String>,
    size: i64,
    part: Option<Vec<u8>>,
}

/// Where fragment `fragment` of an attachment is.
pub(crate) enum Fragment {
    /// No such fragment.
    None,
    Inline(Option<Vec<u8>>),
    /// In chunk `fragment` of this upload.
    Chunk(String),
}

impl FragmentRow {
    pub(crate) fn locate(self, fragment: u64) -> Fragment {
        if fragment >= fragment_count(size_of(self.size)) {
            return Fragment::None;
        }
        match self.upload_id {
            None => Fragment::Inline(self.part),
            Some(upload) => Fragment::Chunk(upload),
        }
    }
}
