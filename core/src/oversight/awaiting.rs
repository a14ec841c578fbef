//! Nothing silently stuck: a message the procedure took (`delivered`) without its
//! receipt (Eingangsbestätigung) past the procedure's receipt deadline is overdue. The
//! operator sees it and sends the stored message again with its message id unchanged,
//! so that a receiver that has it already de-duplicates.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{ActionError, Oversight, Unavailable};
use crate::Status;
use crate::store::{ApplicationQuery, ApplicationRecord, StoreError};

/// How long each procedure may take to confirm receipt of a delivered message; a
/// procedure without one (a clerk's inbox by default) is never overdue. Clones share
/// the deadlines: a reload of the routing table replaces them for all.
#[derive(Debug, Clone, Default)]
pub struct ReceiptDeadlines(Arc<RwLock<BTreeMap<String, Duration>>>);

impl ReceiptDeadlines {
    pub fn new(deadlines: impl IntoIterator<Item = (String, Duration)>) -> Self {
        Self(Arc::new(RwLock::new(deadlines.into_iter().collect())))
    }

    /// Puts the deadlines of `fresh` in force (a reloaded routing table).
    pub fn replace(&self, fresh: &ReceiptDeadlines) {
        let fresh = fresh.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = fresh;
    }

    /// Every procedure's deadline.
    pub fn all(&self) -> BTreeMap<String, Duration> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The deadline of `procedure`, if it has one.
    pub fn of(&self, procedure: &str) -> Option<Duration> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(procedure)
            .copied()
    }

    /// Whether the message of `record` may be sent again: `delivered`, to a procedure
    /// that confirms receipt (one without a deadline, a clerk's inbox, never does: its
    /// delivery is the takeover).
    pub fn may_be_resent(&self, record: &ApplicationRecord) -> bool {
        record.status.may_be_resent() && self.of(&record.delivery.procedure).is_some()
    }

    /// Since when `record` has waited for its receipt, if it is `delivered` and its
    /// procedure's deadline has passed at `now`.
    pub fn overdue_since(
        &self,
        record: &ApplicationRecord,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        if !record.status.may_be_resent() {
            return None;
        }
        let since = record.delivery.delivered_at?;
        let deadline = self.of(&record.delivery.procedure)?;
        (since + deadline <= now).then_some(since)
    }
}

/// A delivered message without a receipt past its procedure's deadline.
#[derive(Debug, Clone, Serialize)]
pub struct AwaitingReceipt {
    pub application_id: Uuid,
    pub receipt: String,
    pub service: String,
    pub procedure: String,
    pub message_id: Uuid,
    /// Delivered at; no receipt since.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// When the receipt was due.
    #[serde(with = "time::serde::rfc3339")]
    pub due: OffsetDateTime,
    /// How often it was resent already (by an operator or the hub).
    pub resent: u32,
}

/// How often the message of `record` was resent since its first delivery: each resend
/// puts it back to `prepared` after it was `delivered` (a dead letter's replay comes
/// before the first delivery, a retry records no state).
pub fn resends(record: &ApplicationRecord) -> u32 {
    let delivered = Status::Delivered.as_str();
    let prepared = Status::Prepared.as_str();
    let after_delivery = record
        .history
        .iter()
        .skip_while(|entry| entry.status != delivered);
    let count = after_delivery
        .filter(|entry| entry.status == prepared)
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Why a message was not sent again.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// Not `delivered` (received, still in the outbox, …), its message not stored, or
    /// its procedure one that sends no receipts.
    #[error("this application is not delivered without a receipt")]
    NothingToResend,
    /// No application has this id.
    #[error("no application has this id")]
    Unknown,
    /// The id is the message id of an overdue message (as a procedure's log shows it),
    /// not an application id; this is the application to resend.
    #[error("this is the message id of application {0}, not an application id")]
    MessageIdOf(Uuid),
    #[error("the store is not reachable: {0}")]
    Unavailable(StoreError),
}

impl ActionError for ResendError {
    fn store_failure(self) -> Option<StoreError> {
        match self {
            Self::NothingToResend | Self::Unknown | Self::MessageIdOf(_) => None,
            Self::Unavailable(e) => Some(e),
        }
    }
    fn nothing() -> Self {
        Self::NothingToResend
    }
    fn unavailable(error: StoreError) -> Self {
        Self::Unavailable(error)
    }
}

/// Who sends a message again, for the history and the log.
#[derive(Debug, Clone, Copy)]
enum Resender<'a> {
    /// An operator, this one message.
    Operator(&'a str),
    /// An operator, with every overdue message of `procedure`.
    Bulk {
        operator: &'a str,
        procedure: &'a str,
    },
    /// The hub, the `nth` of `limit` automatic resends.
    Hub { nth: u32, limit: u32 },
}

impl Resender<'_> {
    /// As the history and the audit trail name it.
    fn by(self) -> String {
        match self {
            Self::Operator(operator) => operator.to_owned(),
            Self::Bulk {
                operator,
                procedure,
            } => format!("{operator}, with every overdue message of {procedure}"),
            Self::Hub { nth, limit } => {
                format!("the hub, automatically ({nth} of {limit}: no receipt within the deadline)")
            }
        }
    }

    /// The log line of a resend of `id`, in fields (never prose glued into a value).
    fn log(self, id: Uuid) {
        match self {
            Self::Operator(operator) => {
                tracing::info!(application_id = %id, %operator, "message resent with its message id");
            }
            Self::Bulk {
                operator,
                procedure,
            } => {
                tracing::info!(application_id = %id, %operator, %procedure, bulk = true, "message resent with its message id");
            }
            Self::Hub { nth, limit } => {
                tracing::info!(application_id = %id, automatic = nth, limit, "message resent with its message id");
            }
        }
    }
}

/// At most this many delivered applications of one procedure are looked at in one pass
/// (the newest of those old enough to be overdue).
const LOOK_AT_MOST: u32 = 10_000;

impl Oversight {
    /// Every delivered message without its receipt past its procedure's deadline now,
    /// oldest first (of `procedure` only, if given).
    pub async fn awaiting_receipt(
        &self,
        procedure: Option<&str>,
    ) -> Result<Vec<AwaitingReceipt>, Unavailable> {
        let unavailable = |e: StoreError| {
            tracing::error!(error = %e, "reading applications awaiting a receipt failed");
            Unavailable(e)
        };
        let now = self.clock.now();
        let mut overdue = Vec::new();
        // A copy: the lock is not held across the store's awaits.
        let deadlines = self.receipt_deadlines.all();
        let procedures = deadlines
            .iter()
            .filter(|(p, _)| procedure.is_none_or(|only| only == p.as_str()));
        for (procedure, &deadline) in procedures {
            // Accepted later, it cannot have been delivered before the deadline's start:
            // only older ones are candidates (the search gives the newest first).
            let delivered = self
                .store
                .search(&ApplicationQuery {
                    procedure: Some(procedure.clone()),
                    status: Some(Status::Delivered),
                    until: Some(now - deadline),
                    limit: LOOK_AT_MOST,
                    // An objection or payment record without its receipt is overdue too.
                    follow_ups: true,
                    ..ApplicationQuery::default()
                })
                .await
                .map_err(unavailable)?;
            for summary in delivered {
                // The state changed to `delivered` at `updated_at`, so it was delivered
                // no later: not overdue by it, not overdue at all.
                if summary.updated_at + deadline > now {
                    continue;
                }
                let Some(record) = self
                    .store
                    .application(summary.id)
                    .await
                    .map_err(unavailable)?
                else {
                    continue;
                };
                if let Some(since) = self.receipt_deadlines.overdue_since(&record, now) {
                    let resent = resends(&record);
                    overdue.push(AwaitingReceipt {
                        application_id: record.id,
                        receipt: record.receipt,
                        service: record.service,
                        procedure: record.delivery.procedure,
                        message_id: record.delivery.message_id,
                        since,
                        due: since + deadline,
                        resent,
                    });
                }
            }
        }
        overdue.sort_by_key(|a| (a.since, a.application_id));
        Ok(overdue)
    }

    /// Sends the stored message of a delivered application without a receipt again,
    /// with its message id unchanged, for `by` (an operator action, in the history and
    /// the audit trail). It need not be overdue: the operator may know better.
    ///
    /// An unknown id that is the message id of an overdue message (an operator may have
    /// it from the procedure's log) is refused naming the application to resend.
    pub async fn resend(&self, id: Uuid, by: &str) -> Result<(), ResendError> {
        match self.resend_if(id, Resender::Operator(by), |_| true).await {
            Err(ResendError::Unknown) => {
                let overdue = self
                    .awaiting_receipt(None)
                    .await
                    .map_err(|e| ResendError::Unavailable(e.0))?;
                match overdue.into_iter().find(|a| a.message_id == id) {
                    Some(awaiting) => Err(ResendError::MessageIdOf(awaiting.application_id)),
                    None => Err(ResendError::Unknown),
                }
            }
            other => other,
        }
    }

    /// [`Self::resend`], if the application as it is now also passes `still` (read
    /// afresh: a list may be outdated by another operator's or instance's resend).
    async fn resend_if(
        &self,
        id: Uuid,
        by: Resender<'_>,
        still: impl Fn(&ApplicationRecord) -> bool,
    ) -> Result<(), ResendError> {
        let record = self.store.application(id).await.map_err(|e| {
            tracing::error!(error = %e, "reading an application to resend failed");
            ResendError::Unavailable(e)
        })?;
        let Some(record) = record else {
            return Err(ResendError::Unknown);
        };
        if !(self.receipt_deadlines.may_be_resent(&record) && still(&record)) {
            return Err(ResendError::NothingToResend);
        }
        // The store checks the state again as it changes it.
        self.acted(
            self.store.resend(id, &by.by()).await,
            "resending a message failed",
        )?;
        by.log(id);
        Ok(())
    }

    /// Whether `record` is overdue now.
    fn overdue(&self, record: &ApplicationRecord) -> bool {
        let now = self.clock.now();
        self.receipt_deadlines.overdue_since(record, now).is_some()
    }

    /// Sends every overdue message of `procedure` again, each as `resend` does; returns
    /// the applications resent, oldest first. One that got its receipt meanwhile is
    /// skipped; a store failure stops it (what was resent stays resent).
    pub async fn resend_overdue(
        &self,
        procedure: &str,
        by: &str,
    ) -> Result<Vec<Uuid>, Unavailable> {
        let overdue = self.awaiting_receipt(Some(procedure)).await?;
        let bulk = Resender::Bulk {
            operator: by,
            procedure,
        };
        let mut resent = Vec::new();
        for awaiting in overdue {
            let outcome = self
                .resend_if(awaiting.application_id, bulk, |r| self.overdue(r))
                .await;
            if went_out(outcome)? {
                resent.push(awaiting.application_id);
            }
        }
        tracing::info!(%procedure, operator = %by, resent = resent.len(), "overdue messages of a procedure resent");
        Ok(resent)
    }

    /// The hub's own resend: every overdue message of a procedure in `limits` that was
    /// resent fewer times than its limit goes out again, with its message id. Only for
    /// procedures whose receivers de-duplicate on the message id, as the operator
    /// configured; after the limit the operator decides. Returns the applications
    /// resent.
    pub async fn resend_automatically(
        &self,
        limits: &BTreeMap<String, u32>,
    ) -> Result<Vec<Uuid>, Unavailable> {
        let mut resent = Vec::new();
        for (procedure, &limit) in limits.iter().filter(|(_, limit)| **limit > 0) {
            for awaiting in self.awaiting_receipt(Some(procedure)).await? {
                if awaiting.resent >= limit {
                    continue;
                }
                let by = Resender::Hub {
                    nth: awaiting.resent + 1,
                    limit,
                };
                let due = |r: &ApplicationRecord| self.overdue(r) && resends(r) < limit;
                if went_out(self.resend_if(awaiting.application_id, by, due).await)? {
                    resent.push(awaiting.application_id);
                }
            }
        }
        Ok(resent)
    }
}

/// One resend of a bulk: whether it went out. An application that needs none any more
/// (confirmed or gone meanwhile) is passed over; only the store's failure stops the bulk.
fn went_out(outcome: Result<(), ResendError>) -> Result<bool, Unavailable> {
    match outcome {
        Ok(()) => Ok(true),
        Err(ResendError::NothingToResend | ResendError::Unknown | ResendError::MessageIdOf(_)) => {
            Ok(false)
        }
        Err(ResendError::Unavailable(e)) => Err(Unavailable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeliveryRecord;

    fn record(
        status: Status,
        procedure: &str,
        delivered_at: Option<OffsetDateTime>,
    ) -> ApplicationRecord {
        let at = OffsetDateTime::UNIX_EPOCH;
        ApplicationRecord {
            id: Uuid::nil(),
            receipt: "K7QX-2M4P".into(),
            client_id: "portal".into(),
            service: "99999001000000".into(),
            region: "146120000000".into(),
            status,
            created_at: at,
            updated_at: at,
            delivery: DeliveryRecord {
                procedure: procedure.into(),
                message_id: Uuid::nil(),
                message_type: "t".into(),
                attempts: 1,
                last_error: None,
                next_attempt_at: None,
                delivered_at,
            },
            history: Vec::new(),
            follow_up: None,
            follow_ups: Vec::new(),
        }
    }

    #[test]
    fn only_a_delivered_message_past_its_procedures_deadline_is_overdue() {
        let deadlines = ReceiptDeadlines::new([("push".to_owned(), Duration::minutes(15))]);
        let delivered = OffsetDateTime::UNIX_EPOCH + Duration::hours(1);
        let due = delivered + Duration::minutes(15);
        let overdue = |status, procedure, now| {
            deadlines.overdue_since(&record(status, procedure, Some(delivered)), now)
        };
        assert_eq!(overdue(Status::Delivered, "push", due), Some(delivered));
        assert_eq!(
            overdue(Status::Delivered, "push", due - Duration::seconds(1)),
            None,
            "not yet"
        );
        assert_eq!(overdue(Status::Received, "push", due), None, "confirmed");
        assert_eq!(overdue(Status::Prepared, "push", due), None, "resent");
        assert_eq!(
            overdue(Status::Delivered, "inbox", due),
            None,
            "no deadline"
        );
        assert!(deadlines.may_be_resent(&record(Status::Delivered, "push", None)));
        assert!(!deadlines.may_be_resent(&record(Status::Delivered, "inbox", None)));
        assert!(!deadlines.may_be_resent(&record(Status::Received, "push", None)));
        assert_eq!(
            deadlines.overdue_since(&record(Status::Delivered, "push", None), due),
            None
        );
    }

    #[test]
    fn resends_are_counted_after_the_first_delivery() {
        let entry = |status: &str| crate::store::HistoryEntry {
            status: status.into(),
            at: OffsetDateTime::UNIX_EPOCH,
            detail: String::new(),
        };
        let mut replayed_then_resent_twice = record(Status::Delivered, "push", None);
        replayed_then_resent_twice.history = [
            "accepted",
            "prepared",
            "dead_lettered",
            "prepared",
            "delivered",
            "prepared",
            "delivered",
            "prepared",
            "delivered",
        ]
        .into_iter()
        .map(entry)
        .collect();
        assert_eq!(resends(&replayed_then_resent_twice), 2);
        let mut never = record(Status::Delivered, "push", None);
        never.history = ["accepted", "prepared", "delivered"]
            .into_iter()
            .map(entry)
            .collect();
        assert_eq!(resends(&never), 0);
    }
}
