//! The application's state machine: which states an application takes and which
//! procedure event may move it where. It lives apart from the store, which only keeps
//! the state; the store re-exports it for its users.

use serde::Serialize;

/// The state of an application (see `docs/architecture.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Accepted,
    Prepared,
    Delivered,
    /// The procedure confirmed receipt (Eingangsbestätigung).
    Received,
    /// The procedure refused the message.
    Rejected,
    /// The authority works on it.
    InProgress,
    /// The authority asked the citizen a question (Rückfrage).
    Query,
    /// The authority decided (Bescheid).
    Decided,
    Invalid,
    DeadLettered,
}

impl Status {
    /// A final state: no event changes it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Decided | Self::Rejected)
    }

    /// Whether a procedure's event may move an application from `self` to `to`:
    /// delivered → received → in_progress ⇄ query → decided, and rejected from any
    /// non-final state after delivery.
    pub fn may_become(self, to: Status) -> bool {
        use Status::*;
        match to {
            Received => self == Delivered,
            Rejected => matches!(self, Delivered | Received | InProgress | Query),
            InProgress | Query | Decided => matches!(self, Received | InProgress | Query),
            _ => false,
        }
    }

    /// Whether an operator may send the stored message again: only while the
    /// procedure has not confirmed receipt (`delivered`). It goes back to `prepared`
    /// and out with its message id unchanged, so that the receiver de-duplicates.
    pub fn may_be_resent(self) -> bool {
        self == Status::Delivered
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Prepared => "prepared",
            Self::Delivered => "delivered",
            Self::Received => "received",
            Self::Rejected => "rejected",
            Self::InProgress => "in_progress",
            Self::Query => "query",
            Self::Decided => "decided",
            Self::Invalid => "invalid",
            Self::DeadLettered => "dead_lettered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accepted" => Self::Accepted,
            "prepared" => Self::Prepared,
            "delivered" => Self::Delivered,
            "received" => Self::Received,
            "rejected" => Self::Rejected,
            "in_progress" => Self::InProgress,
            "query" => Self::Query,
            "decided" => Self::Decided,
            "invalid" => Self::Invalid,
            "dead_lettered" => Self::DeadLettered,
            _ => return None,
        })
    }
}
