//! The store's decisions that are not SQL: what a backend does with the rows it read
//! inside a transaction, and the history texts it writes. Both backends call these, so
//! SQLite and PostgreSQL cannot drift apart in what they decide.

use uuid::Uuid;

use super::StoreError;
use super::model::{
    Accepted, IdempotencyKey, Inserted, PickupAck, ReceiptOutcome, ReceiptRecord, Status, Step,
};

/// Where an outbox entry stands; the backends keep it as this text (`deliveries.step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waits to be rendered, checked and sealed.
    Prepare,
    /// Sealed, waits to be handed to the transport.
    Deliver,
    /// Sealed, waits for its procedure to collect it.
    Pickup,
    /// Delivered or collected.
    Done,
    /// Given up (a dead letter).
    Dead,
    /// The mapping failed: never goes out.
    Invalid,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepare => "prepare",
            Self::Deliver => "deliver",
            Self::Pickup => "pickup",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Invalid => "invalid",
        }
    }

    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "prepare" => Self::Prepare,
            "deliver" => Self::Deliver,
            "pickup" => Self::Pickup,
            "done" => Self::Done,
            "dead" => Self::Dead,
            "invalid" => Self::Invalid,
            other => return Err(StoreError::Corrupt(format!("outbox step {other}"))),
        })
    }

    /// Still on its way out: the outbox works on it (and shows when it is due next).
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Prepare | Self::Deliver)
    }

    /// The step a claimed entry is at; only pending entries are claimed.
    pub fn claimed_step(self) -> Result<Step, StoreError> {
        match self {
            Self::Prepare => Ok(Step::Prepare),
            Self::Deliver => Ok(Step::Deliver),
            other => Err(StoreError::Corrupt(format!(
                "claimed step {}",
                other.as_str()
            ))),
        }
    }

    /// Where a failure that retrying cannot fix leaves the entry: `invalid` (mapping)
    /// or `dead` (delivery).
    pub fn of_failure(status: Status) -> Self {
        if status == Status::Invalid {
            Self::Invalid
        } else {
            Self::Dead
        }
    }
}

/// A stored status, or the damage that it is none.
pub fn parse_status(s: &str) -> Result<Status, StoreError> {
    Status::parse(s).ok_or_else(|| StoreError::Corrupt(format!("status {s}")))
}

/// A stored id, or the damage that it is none.
pub fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("uuid {s}: {e}")))
}

/// What an earlier request with the same idempotency key got: its answer again if the
/// request was the same (same hash), a conflict otherwise.
pub fn earlier_answer(
    request_sha256: &str,
    application_id: &str,
    receipt: String,
    key: &IdempotencyKey,
) -> Result<Inserted, StoreError> {
    if request_sha256 != key.request_sha256 {
        return Ok(Inserted::KeyConflict);
    }
    Ok(Inserted::Replayed(Accepted {
        id: parse_uuid(application_id)?,
        receipt,
    }))
}

/// The history text of an accepted application.
pub fn accepted_detail(client_id: &str) -> String {
    format!("accepted from client {client_id}")
}

/// The first history entry of a follow-up message (no content: personal data).
pub fn follow_up_detail(client_id: &str, of: &crate::follow_up::FollowUpOf) -> String {
    match &of.refers_to {
        Some(event) => format!(
            "{} of application {} (referring to event {event}) accepted from client {client_id}",
            of.kind.as_str(),
            of.parent_id
        ),
        None => format!(
            "{} of application {} accepted from client {client_id}",
            of.kind.as_str(),
            of.parent_id
        ),
    }
}

/// A receipt whose id was recorded before (with these hashes of its content and of
/// its signed bytes): the same receipt again — the same bytes, or the same content
/// signed anew at another time — or a different one under a used id.
pub fn repeated_receipt(
    earlier_content_sha256: &str,
    earlier_signed_sha256: &str,
    receipt: &ReceiptRecord,
) -> ReceiptOutcome {
    // The signed bytes also decide for receipts recorded before the content hash left
    // out `issued_at`.
    if earlier_content_sha256 == receipt.content_sha256
        || earlier_signed_sha256 == crate::audit::sha256_hex(&receipt.signed)
    {
        ReceiptOutcome::Duplicate
    } else {
        ReceiptOutcome::Conflict
    }
}

/// What to do with a new receipt, from its message's outbox entry and application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptPlan {
    /// Record nothing; answer this.
    Refuse(ReceiptOutcome),
    /// Record it. `confirm_delivery`: the procedure answered before our own record of
    /// the transport's confirmation was committed; its signed receipt proves the
    /// delivery, which is recorded first (the outbox's later commit then finds its
    /// lease gone and changes nothing).
    Apply { confirm_delivery: bool },
}

/// Decides a new receipt: `entry` is the stage of its message's outbox entry and the
/// application's status, `None` if no such message went to this procedure for this
/// application.
pub fn plan_receipt(entry: Option<(Stage, Status)>, receipt: &ReceiptRecord) -> ReceiptPlan {
    let Some((stage, current)) = entry else {
        return ReceiptPlan::Refuse(ReceiptOutcome::UnknownMessage);
    };
    if current.is_final() {
        return ReceiptPlan::Refuse(ReceiptOutcome::AlreadyFinal);
    }
    // An early receipt overtakes our own `delivered` commit (see `confirm_delivery`).
    let effective = if current == Status::Prepared {
        Status::Delivered
    } else {
        current
    };
    if !effective.may_become(receipt.status) {
        return ReceiptPlan::Refuse(ReceiptOutcome::OutOfOrder(current));
    }
    match stage {
        Stage::Done => ReceiptPlan::Apply {
            confirm_delivery: false,
        },
        Stage::Deliver => ReceiptPlan::Apply {
            confirm_delivery: true,
        },
        _ => ReceiptPlan::Refuse(ReceiptOutcome::UnknownMessage),
    }
}

/// What recording a receipt would answer, from an earlier receipt under its id (its
/// content and signed hashes) and its message's outbox entry (see [`plan_receipt`]).
pub fn check_receipt(
    earlier: Option<(String, String)>,
    entry: Option<(Stage, Status)>,
    receipt: &ReceiptRecord,
) -> ReceiptOutcome {
    if let Some((content, signed)) = earlier {
        return repeated_receipt(&content, &signed, receipt);
    }
    match plan_receipt(entry, receipt) {
        ReceiptPlan::Refuse(outcome) => outcome,
        ReceiptPlan::Apply { .. } => ReceiptOutcome::Applied(receipt.status),
    }
}

/// The history text of a delivery proven by the procedure's receipt.
pub fn confirmed_delivery_detail(receipt: &ReceiptRecord) -> String {
    format!(
        "message {} delivered to {} (confirmed by its receipt)",
        receipt.message_id, receipt.procedure_id
    )
}

/// The history text of a recorded receipt or event; `document` is the id and SHA-512
/// of the document it brought (the history names it by those only).
pub fn receipt_detail(receipt: &ReceiptRecord, document: Option<(Uuid, &str)>) -> String {
    let mut detail = format!(
        "{} {} from {} about message {}",
        match receipt.status {
            Status::Received => "receipt",
            Status::Rejected => "rejection",
            _ => "event",
        },
        receipt.receipt_id,
        receipt.procedure_id,
        receipt.message_id
    );
    if !receipt.problems.is_empty() {
        detail.push_str(&format!(": {}", receipt.problems.join("; ")));
    }
    if let Some((id, sha512)) = document {
        detail.push_str(&format!("; document {id} (SHA-512 {sha512})"));
    }
    if let Some(by) = &receipt.recorded_by {
        detail.push_str(&format!("; recorded by {by} in the clerk inbox"));
    }
    detail
}

/// What a pickup acknowledgement finds: `None` if the message waits (it is
/// acknowledged now), the answer otherwise.
pub fn pickup_ack(stage: Option<Stage>) -> Option<PickupAck> {
    match stage {
        Some(Stage::Pickup) => None,
        Some(Stage::Done) => Some(PickupAck::AlreadyAcknowledged),
        _ => Some(PickupAck::Unknown),
    }
}

/// A replayed dead letter goes back to `deliver` with its sealed message as it was, or to
/// `prepare` if it was never sealed; this is the state and the history text.
pub fn replayed(sealed: bool, by: &str, message_id: &str) -> (Status, String) {
    let status = if sealed {
        Status::Prepared
    } else {
        Status::Accepted
    };
    (
        status,
        format!("dead letter replayed by {by}; message {message_id} goes out again"),
    )
}

/// An `invalid` application taken up again after its mapping was fixed: back to
/// `accepted`, to be rendered and sealed with its message id unchanged.
pub fn reprocessed(by: &str, message_id: &str) -> (Status, String) {
    (
        Status::Accepted,
        format!(
            "reprocessed by {by} after the mapping was fixed; message {message_id} is rendered again"
        ),
    )
}

/// A delivered message without a receipt sent again: back to `prepared` with its sealed
/// message as it was (same message id).
pub fn resent(by: &str, message_id: &str) -> (Status, String) {
    (
        Status::Prepared,
        format!("no receipt: message {message_id} resent with the same message id by {by}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(status: Status) -> ReceiptRecord {
        ReceiptRecord {
            receipt_id: "r-1".into(),
            procedure_id: "p".into(),
            message_id: Uuid::nil(),
            application_id: Uuid::nil(),
            status,
            message: None,
            document: None,
            problems: vec![],
            issued_at: String::new(),
            signed: vec![],
            content_sha256: "c".into(),
            recorded_by: None,
            appeal: None,
            fee: None,
        }
    }

    #[test]
    fn a_receipt_is_planned_from_the_entry_and_the_state() {
        let received = receipt(Status::Received);
        assert_eq!(
            plan_receipt(None, &received),
            ReceiptPlan::Refuse(ReceiptOutcome::UnknownMessage)
        );
        assert_eq!(
            plan_receipt(Some((Stage::Done, Status::Decided)), &received),
            ReceiptPlan::Refuse(ReceiptOutcome::AlreadyFinal)
        );
        assert_eq!(
            plan_receipt(Some((Stage::Deliver, Status::Prepared)), &received),
            ReceiptPlan::Apply {
                confirm_delivery: true
            }
        );
        assert_eq!(
            plan_receipt(Some((Stage::Done, Status::Received)), &received),
            ReceiptPlan::Refuse(ReceiptOutcome::OutOfOrder(Status::Received))
        );
        assert_eq!(
            plan_receipt(Some((Stage::Pickup, Status::Prepared)), &received),
            ReceiptPlan::Refuse(ReceiptOutcome::UnknownMessage)
        );
    }

    #[test]
    fn stages_read_back_what_they_write() {
        for stage in [
            Stage::Prepare,
            Stage::Deliver,
            Stage::Pickup,
            Stage::Done,
            Stage::Dead,
            Stage::Invalid,
        ] {
            assert_eq!(Stage::parse(stage.as_str()).ok(), Some(stage));
        }
        assert!(Stage::parse("elsewhere").is_err());
    }
}
