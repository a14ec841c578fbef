//! Intake: accepting applications with their uploads, idempotency answers and the status view.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::model::*;

#[async_trait]
pub trait IntakeStore: Send + Sync {
    /// Stores an application with its attachments, outbox entry, idempotency key and first
    /// history entry in one durable transaction.
    async fn insert_application(&self, new: &NewApplication) -> Result<Inserted, StoreError>;

    /// Starts an upload; its chunks follow with [`IntakeStore::append_upload_chunk`].
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

    /// Chunk `seq` of an upload, if it exists (small uploads the hub reads whole: a
    /// FIT-Connect submission's announcement and its encrypted attachments).
    async fn upload_chunk(&self, id: Uuid, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Removes an upload no application names (a failed or abandoned one) with its
    /// chunks; false if an application names it.
    async fn discard_upload(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Removes the uploads started before `before` that no application names.
    async fn discard_stale_uploads(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// The earlier answer for an idempotency key, or a conflict.
    async fn idempotent_answer(
        &self,
        client_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Inserted>, StoreError>;

    async fn application(&self, id: Uuid) -> Result<Option<ApplicationRecord>, StoreError>;
}
