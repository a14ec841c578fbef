//! Recording a receipt, alike on both backends but for the SQL: what its message's
//! outbox entry allows, the hashes and the new document it stores, and its history
//! entries.

use uuid::Uuid;

use super::history::Change;
use kopplung_core::audit::{Binding, content, sha256_hex};
use kopplung_core::store::rules::{self, ReceiptPlan, Stage, parse_status};
use kopplung_core::store::{ReceiptRecord, Status, StoreError};

/// A verified receipt prepared for storing.
pub(crate) struct ReceiptWrite<'r> {
    pub(crate) receipt: &'r ReceiptRecord,
    /// SHA-256 (hex) of the receipt as signed: its audit entry binds it, so the
    /// Laufzettel proves which receipt was accepted.
    pub(crate) signed_sha256: String,
    pub(crate) document: Option<NewDocument<'r>>,
}

/// The receipt's document as it is stored: under a new id, with its hashes.
pub(crate) struct NewDocument<'r> {
    pub(crate) id: Uuid,
    pub(crate) filename: &'r str,
    pub(crate) media_type: &'r str,
    pub(crate) size: i64,
    pub(crate) sha512: String,
    pub(crate) content: &'r [u8],
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

    /// What to do with the receipt, from the stage of its message's outbox entry and
    /// the application's status as stored; `None` if no such message went to this
    /// procedure for this application.
    pub(crate) fn plan(&self, entry: Option<(String, String)>) -> Result<ReceiptPlan, StoreError> {
        let entry = entry
            .map(|(step, status)| {
                Ok::<_, StoreError>((Stage::parse(&step)?, parse_status(&status)?))
            })
            .transpose()?;
        Ok(rules::plan_receipt(entry, self.receipt))
    }

    /// The id of the stored document, for the mailbox entry that points at it.
    pub(crate) fn document_id(&self) -> Option<String> {
        self.document.as_ref().map(|d| d.id.to_string())
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
        }
    }
}
