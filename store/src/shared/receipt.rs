//! Recording a receipt, alike on both backends but for how they run it: what its
//! message's outbox entry allows, the rows it adds (itself, its document, the citizen's
//! mailbox entry) with their hashes, and its history entries.

use time::OffsetDateTime;
use uuid::Uuid;

use super::history::Change;
use super::writes::Write;
use super::{Param, rfc3339};
use kopplung_core::audit::{Binding, content, sha256_hex};
use kopplung_core::store::rules::{self, ReceiptPlan, Stage, parse_status};
use kopplung_core::store::{HistoryKind, ReceiptOutcome, ReceiptRecord, Status, StoreError};

/// A verified receipt prepared for storing.
pub(crate) struct ReceiptWrite<'r> {
    receipt: &'r ReceiptRecord,
    /// SHA-256 (hex) of the receipt as signed: its audit entry binds it, so the
    /// Laufzettel proves which receipt was accepted.
    signed_sha256: String,
    document: Option<NewDocument<'r>>,
}

/// What recording a receipt takes (see [`ReceiptWrite::plan`]).
pub(crate) enum Planned {
    /// Record nothing; answer this.
    Refuse(ReceiptOutcome),
    /// Record it; first, if given, the delivery it proves (see [`ReceiptPlan::Apply`]):
    /// a statement that returns the message delivered (`sealed`), for
    /// [`ReceiptWrite::confirmed_delivery`].
    Record(Option<Write<'static>>),
}

/// The receipt's document as it is stored: under a new id, with its hashes.
struct NewDocument<'r> {
    id: Uuid,
    filename: &'r str,
    media_type: &'r str,
    size: i64,
    sha512: String,
    content: &'r [u8],
    /// What the receipt's audit entry binds of it.
    content_sha256: String,
}

impl<'r> ReceiptWrite<'r> {
    pub(crate) fn of(receipt: &'r ReceiptRecord) -> Self {
        let document = receipt.document.as_ref().map(|document| {
            let digest = document.digest();
            NewDocument {
                id: Uuid::new_v4(),
                filename: &document.filename,
                media_type: &document.media_type,
                size: i64::try_from(document.content.len()).unwrap_or(i64::MAX),
                content_sha256: content::document_content_sha256(&digest),
                sha512: digest.sha512,
                content: &document.content,
            }
        });
        Self {
            receipt,
            signed_sha256: sha256_hex(&receipt.signed),
            document,
        }
    }

    /// What to do with the receipt at `now`, from the stage of its message's outbox
    /// entry and the application's status as stored; `None` if no such message went to
    /// this procedure for this application.
    pub(crate) fn plan(
        &self,
        entry: Option<(String, String)>,
        now: OffsetDateTime,
    ) -> Result<Planned, StoreError> {
        let entry = entry
            .map(|(step, status)| {
                Ok::<_, StoreError>((Stage::parse(&step)?, parse_status(&status)?))
            })
            .transpose()?;
        Ok(match rules::plan_receipt(entry, self.receipt) {
            ReceiptPlan::Refuse(outcome) => Planned::Refuse(outcome),
            ReceiptPlan::Apply { confirm_delivery } => {
                Planned::Record(confirm_delivery.then(|| Write {
                    sql: "UPDATE deliveries SET step = 'done', attempts = attempts + 1,
                            last_error = NULL, lease_owner = NULL, lease_until = NULL,
                            delivered_at = $1
                          WHERE message_id = $2 RETURNING sealed",
                    params: vec![
                        Param::Text(rfc3339(now)),
                        Param::Text(self.receipt.message_id.to_string()),
                    ],
                }))
            }
        })
    }

    /// The rows the receipt adds, received at `now`: itself, its document and the
    /// citizen's mailbox entry (pointing at the document), as far as it has them.
    pub(crate) fn inserts(&self, now: OffsetDateTime) -> Vec<Write<'r>> {
        let receipt = self.receipt;
        let now = rfc3339(now);
        let mut inserts = vec![Write {
            sql:
                "INSERT INTO receipts (receipt_id, application_id, procedure_id, message_id, event,
                    issued_at, received_at, signed, signed_sha256, content_sha256)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            params: vec![
                Param::Text(receipt.receipt_id.clone()),
                Param::Text(receipt.application_id.to_string()),
                Param::Text(receipt.procedure_id.clone()),
                Param::Text(receipt.message_id.to_string()),
                Param::Text(receipt.status.as_str().to_owned()),
                Param::Text(receipt.issued_at.clone()),
                Param::Text(now.clone()),
                Param::Blob(&receipt.signed),
                Param::Text(self.signed_sha256.clone()),
                Param::Text(receipt.content_sha256.clone()),
            ],
        }];
        if let Some(document) = &self.document {
            inserts.push(Write {
                sql: "INSERT INTO documents (id, application_id, receipt_id, filename, media_type,
                        size, sha512, content, created_at)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                params: vec![
                    Param::Text(document.id.to_string()),
                    Param::Text(receipt.application_id.to_string()),
                    Param::Text(receipt.receipt_id.clone()),
                    Param::Text(document.filename.to_owned()),
                    Param::Text(document.media_type.to_owned()),
                    Param::Integer(document.size),
                    Param::Text(document.sha512.clone()),
                    Param::Blob(document.content),
                    Param::Text(now.clone()),
                ],
            });
        }
        if let Some(text) = &receipt.message {
            inserts.push(Write {
                sql: "INSERT INTO mailbox (application_id, receipt_id, kind, text, document_id, at,
                        appeal_text, appeal_deadline, fee_cents, fee_purpose)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                params: vec![
                    Param::Text(receipt.application_id.to_string()),
                    Param::Text(receipt.receipt_id.clone()),
                    Param::Text(receipt.status.as_str().to_owned()),
                    Param::Text(text.clone()),
                    Param::MaybeText(self.document.as_ref().map(|d| d.id.to_string())),
                    Param::Text(now),
                    Param::MaybeText(receipt.appeal.as_ref().map(|a| a.text.clone())),
                    Param::MaybeText(receipt.appeal.as_ref().map(|a| a.deadline.to_string())),
                    Param::MaybeInteger(
                        receipt
                            .fee
                            .as_ref()
                            .map(|f| i64::try_from(f.cents).unwrap_or(i64::MAX)),
                    ),
                    Param::MaybeText(receipt.fee.as_ref().map(|f| f.purpose.clone())),
                ],
            });
        }
        inserts
    }

    /// The delivery the receipt proves, recorded before it (see
    /// [`ReceiptPlan::Apply`]); `sealed` is the message delivered.
    pub(crate) fn confirmed_delivery(&self, sealed: Option<&[u8]>) -> Change {
        Change::message(
            self.receipt.application_id,
            Status::Delivered,
            &rules::confirmed_delivery_detail(self.receipt),
            sealed.map(sha256_hex),
        )
    }

    /// The receipt's own state change: it binds the signed receipt and its document.
    pub(crate) fn change(&self) -> Change {
        let document = self.document.as_ref();
        Change {
            application_id: self.receipt.application_id,
            status: self.receipt.status,
            detail: rules::receipt_detail(
                self.receipt,
                document.map(|d| (d.id, d.sha512.as_str())),
            ),
            binding: Binding {
                message_sha256: Some(self.signed_sha256.clone()),
                content_sha256: document.map(|d| d.content_sha256.clone()),
            },
            // The text goes to the citizen's mailbox (`inserts`).
            kind: if self.receipt.message.is_some() {
                HistoryKind::Mailbox
            } else {
                HistoryKind::Change
            },
        }
    }
}
