//! Receipts for the citizen's follow-up messages. A follow-up message names, as its
//! `antragsID`, the application it belongs to, so a vendor receipts it with that id
//! and the follow-up's own `nachrichtenUUID`; the store keeps the follow-up as an
//! application of its own. This finds it.

use uuid::Uuid;

use super::EventError;
use crate::Status;
use crate::store::{IntakeStore, ReceiptRecord};

/// The id of the follow-up message of application `record.application_id` whose
/// message id is `record.message_id`, if the event is a receipt (received or
/// rejected) for one. Progress, queries and decisions are about the application: they
/// name its own message (`bezug/nachrichtenUUID` of the follow-up), never a follow-up.
pub(super) async fn follow_up_of(
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
pub(super) async fn is_follow_up(
    applications: &dyn IntakeStore,
    application: Uuid,
) -> Result<bool, EventError> {
    let found = applications
        .application(application)
        .await
        .map_err(EventError::Unavailable)?;
    Ok(found.is_some_and(|a| a.follow_up.is_some()))
}
