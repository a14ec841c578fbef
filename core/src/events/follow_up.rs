//! Receipts for the citizen's follow-up messages. A follow-up message names, as its
//! `antragsID`, the application it belongs to, so a vendor receipts it with that id
//! and the follow-up's own `nachrichtenUUID`; the store keeps the follow-up as an
//! application of its own. This finds it.

use uuid::Uuid;

use super::{EventError, Events};
use crate::Status;
use crate::store::{IntakeStore, ReceiptOutcome, ReceiptRecord, StoreError};

impl Events {
    /// The store's answer to `record`: recorded, or with `dry_run` only checked. A
    /// receipt for a follow-up message that names its application's id is taken for the
    /// follow-up; progress, queries and decisions never are.
    pub(super) async fn stored(
        &self,
        procedure: &str,
        record: &mut ReceiptRecord,
        dry_run: bool,
    ) -> Result<Result<ReceiptOutcome, StoreError>, EventError> {
        self.refuse_progress_of_follow_up(procedure, record).await?;
        let mut outcome = self.ask(record, dry_run).await;
        // Only when the store knows no such message: the hot path reads nothing more.
        if matches!(outcome, Ok(ReceiptOutcome::UnknownMessage))
            && let Some(id) = follow_up_of(&*self.applications, record).await?
        {
            record.application_id = id;
            outcome = self.ask(record, dry_run).await;
        }
        Ok(outcome)
    }

    async fn ask(
        &self,
        record: &ReceiptRecord,
        dry_run: bool,
    ) -> Result<ReceiptOutcome, StoreError> {
        if dry_run {
            self.store.check_receipt(record).await
        } else {
            self.store.record_receipt(record).await
        }
    }

    /// Progress, queries and decisions are about the application: for a follow-up
    /// message (whose own id a transport may carry) they are refused as for a message
    /// the procedure was not sent.
    async fn refuse_progress_of_follow_up(
        &self,
        procedure: &str,
        record: &ReceiptRecord,
    ) -> Result<(), EventError> {
        if matches!(record.status, Status::Received | Status::Rejected)
            || !is_follow_up(&*self.applications, record.application_id).await?
        {
            return Ok(());
        }
        tracing::warn!(%procedure, status = record.status.as_str(), "an event for a follow-up message refused: it names the application's own message");
        Err(EventError::NotDelivered)
    }
}

/// The id of the follow-up message of application `record.application_id` whose
/// message id is `record.message_id`, if the event is a receipt (received or
/// rejected) for one. Progress, queries and decisions are about the application: they
/// name its own message (`bezug/nachrichtenUUID` of the follow-up), never a follow-up.
async fn follow_up_of(
    applications: &dyn IntakeStore,
    record: &ReceiptRecord,
) -> Result<Option<Uuid>, EventError> {
    if !matches!(record.status, Status::Received | Status::Rejected) {
        return Ok(None);
    }
    let application = applications
        .application(record.application_id)
        .await
        .map_err(EventError::Unavailable)?;
    Ok(application.and_then(|a| {
        a.follow_ups
            .iter()
            .find(|f| f.message_id == record.message_id)
            .map(|f| f.id)
    }))
}

/// Whether `application` is a follow-up message (an application's child): only receipts
/// are recorded for it.
async fn is_follow_up(
    applications: &dyn IntakeStore,
    application: Uuid,
) -> Result<bool, EventError> {
    let found = applications
        .application(application)
        .await
        .map_err(EventError::Unavailable)?;
    Ok(found.is_some_and(|a| a.follow_up.is_some()))
}
