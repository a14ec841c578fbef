//! Events: a procedure's receipts and events, and what they leave for the citizen.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use super::model::*;

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Records a verified receipt and moves the application to `received` or `rejected`,
    /// in one transaction with its history and audit entry.
    async fn record_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError>;

    /// What [`EventStore::record_receipt`] would answer now, recording nothing (a
    /// procedure's dry run): `Applied` means it would be recorded.
    async fn check_receipt(&self, receipt: &ReceiptRecord) -> Result<ReceiptOutcome, StoreError>;

    /// The citizen's mailbox and the documents of an application.
    async fn mailbox(&self, id: Uuid)
    -> Result<(Vec<MailboxEntry>, Vec<DocumentInfo>), StoreError>;

    /// One document with its content, if it belongs to the application.
    async fn document(
        &self,
        application_id: Uuid,
        document_id: Uuid,
    ) -> Result<Option<(DocumentInfo, Vec<u8>)>, StoreError>;

    /// The events the procedures sent about an application, each exactly as signed,
    /// in the order they arrived (a FIT-Connect case's event log); none whose content
    /// retention deleted.
    async fn signed_events(&self, application_id: Uuid) -> Result<Vec<Vec<u8>>, StoreError>;
}
