//! Oversight: the operator's view and hand (backlog, dead letters, replay, search, retry now) and retention.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::model::*;

/// Which message an operator sends again, with its message id unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAgain {
    /// A dead letter ([`OversightStore::replay`]).
    Replay,
    /// A delivered message without a receipt ([`OversightStore::resend`]).
    Resend,
    /// An application its mapping could not render, after the mapping was fixed
    /// ([`OversightStore::reprocess`]).
    Reprocess,
}

#[async_trait]
pub trait OversightStore: Send + Sync {
    /// Work waiting per procedure: entries in the outbox and the oldest one's age.
    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError>;

    /// The dead letters, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;

    /// Puts a dead letter back into the outbox with its message id unchanged (due now,
    /// attempts counted afresh). Returns `false` if the application is no dead letter.
    async fn replay(&self, application_id: Uuid, by: &str) -> Result<bool, StoreError> {
        self.send_again(SendAgain::Replay, application_id, by).await
    }

    /// Puts a delivered message that has no receipt back into the outbox with its sealed
    /// message and message id unchanged (due now, attempts counted afresh). Returns
    /// `false` if the application is not `delivered` (see `Status::may_be_resent`) or
    /// its message is not stored.
    async fn resend(&self, application_id: Uuid, by: &str) -> Result<bool, StoreError> {
        self.send_again(SendAgain::Resend, application_id, by).await
    }

    /// Puts an `invalid` application (its mapping failed) back to be rendered and sealed
    /// again, with its message id unchanged (due now, attempts counted afresh): after
    /// the mapping was fixed. Returns `false` if the application is not `invalid`.
    async fn reprocess(&self, application_id: Uuid, by: &str) -> Result<bool, StoreError> {
        self.send_again(SendAgain::Reprocess, application_id, by)
            .await
    }

    /// Puts an application's message back into the outbox as `again` says (see
    /// [`Self::replay`], [`Self::resend`]); `by` is who asked, for the history.
    async fn send_again(
        &self,
        again: SendAgain,
        application_id: Uuid,
        by: &str,
    ) -> Result<bool, StoreError>;

    /// An operator asks for the next attempt now: a waiting outbox entry becomes due
    /// (with a history entry). `false` if nothing waits (delivered, leased, dead letter).
    async fn retry_now(&self, id: Uuid, detail: &str) -> Result<bool, StoreError>;

    /// Applications matching every given part of `query`, newest first.
    async fn search(&self, query: &ApplicationQuery)
    -> Result<Vec<ApplicationSummary>, StoreError>;

    /// The XML of the application's message as it was signed and sealed; `None` until it
    /// is prepared, for a message prepared before the hub kept it, after a reprocess
    /// (until prepared again) and after retention purged it.
    async fn sent_xml(&self, id: Uuid) -> Result<Option<String>, StoreError>;

    /// Records that someone looked at an application's personal data (history and audit
    /// entry with `detail`). `false` if there is no such application.
    async fn record_access(&self, id: Uuid, detail: &str) -> Result<bool, StoreError>;

    /// Retention: deletes the personal data — payload, attachments, the sealed message
    /// and the XML it was sealed from, documents, mailbox texts, signed receipts — of up
    /// to `limit` applications of `service` whose final state (decided, rejected) was
    /// reached before `final_before`. Each deletion is one transaction with its history and audit
    /// entry; ids, states and hashes stay. Returns how many were purged.
    async fn purge_personal_data(
        &self,
        service: &str,
        final_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;
}
