//! The audit trail (Laufzettel): its entries, head and checkpoints, and its verification.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use super::model::*;

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// The audit entries (Laufzettel) of one application, in the order they were
    /// written (by time: they may lie in several chains); empty if there are none.
    async fn audit_entries(&self, application_id: Uuid) -> Result<Vec<AuditEntry>, StoreError>;

    /// The last entry of every audit chain, ordered by chain id, from one snapshot;
    /// empty while there are no entries.
    async fn audit_heads(&self) -> Result<Vec<ChainHead>, StoreError>;

    /// Stores a signed checkpoint of the audit chains' heads.
    async fn record_audit_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;

    /// The stored checkpoints, in the order they were signed.
    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;

    /// Checks the whole audit trail from one consistent snapshot: the chain (all
    /// applications), every application's stored content against its entries, and the
    /// stored checkpoints (with those `verifier` holds from outside) against the chain.
    /// The report counts what was checked and names the first problem, if any.
    async fn verify_audit_with(&self, verifier: AuditVerifier) -> Result<AuditReport, StoreError>;

    /// [`AuditStore::verify_audit_with`] without checkpoint signatures or checkpoints from
    /// outside.
    async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        self.verify_audit_with(AuditVerifier::new(None)).await
    }
}
