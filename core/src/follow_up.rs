//! What a citizen may send after the application: the kinds of follow-up message and
//! which application each belongs to.

use serde::Serialize;
use uuid::Uuid;

/// The kind of a follow-up message from the citizen to the procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    /// The answer to a query (Rückfrage) of the procedure.
    Antwort,
    /// Documents sent later for an open application (Nachreichung).
    Nachreichung,
    /// An objection (Widerspruch) to a decision, within its appeal deadline.
    Widerspruch,
    /// A payment record for the authority's accounting (HKR): a fee was paid.
    Zahlung,
}

impl FollowUpKind {
    pub const ALL: [FollowUpKind; 4] = [
        Self::Antwort,
        Self::Nachreichung,
        Self::Widerspruch,
        Self::Zahlung,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Antwort => "antwort",
            Self::Nachreichung => "nachreichung",
            Self::Widerspruch => "widerspruch",
            Self::Zahlung => "zahlung",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The message type of this kind for a service whose application has the message
    /// type `application_type` (`hundesteuer.antrag.0101` → `hundesteuer.antwort.0201`):
    /// each mapping has its own family of types, numbered after the application's.
    pub fn message_type(self, application_type: &str) -> String {
        let family = application_type
            .split('.')
            .next()
            .filter(|f| !f.is_empty())
            .unwrap_or("kopplung");
        let number = match self {
            Self::Antwort => "0201",
            Self::Nachreichung => "0202",
            Self::Widerspruch => "0203",
            Self::Zahlung => "0204",
        };
        format!("{family}.{}.{number}", self.as_str())
    }

    /// What the history of the application says it is, in German as the citizen reads
    /// it on the status page.
    pub fn label(self) -> &'static str {
        match self {
            Self::Antwort => "Antwort auf die Rückfrage",
            Self::Nachreichung => "Nachgereichte Unterlagen",
            Self::Widerspruch => "Widerspruch",
            Self::Zahlung => "Zahlungsmeldung",
        }
    }
}

/// The application a follow-up message belongs to, and what it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpOf {
    /// The application (the parent): the follow-up goes to its procedure unless it is a
    /// payment record, which goes to the accounting procedure.
    pub parent_id: Uuid,
    pub kind: FollowUpKind,
    /// The event it refers to: the query an answer answers, the decision an objection
    /// objects to (the procedure's event id, as in the citizen's mailbox).
    pub refers_to: Option<String>,
}

impl FollowUpOf {
    /// Whether at most one of this kind may stand (`Some`), and whether that is per
    /// event it refers to (`Some(true)`: a payment record per fee) or per application
    /// (`Some(false)`: the objection). The store checks it in the same write as the
    /// insert, so that two requests at the same moment store one.
    pub fn once(&self) -> Option<bool> {
        match self.kind {
            FollowUpKind::Widerspruch => Some(false),
            FollowUpKind::Zahlung => Some(true),
            FollowUpKind::Antwort | FollowUpKind::Nachreichung => None,
        }
    }
}

/// The states in which a follow-up no longer stands: the procedure refused it, or it
/// could not be rendered or delivered. The citizen may send it again.
pub const ENDED: [crate::Status; 3] = [
    crate::Status::Rejected,
    crate::Status::Invalid,
    crate::Status::DeadLettered,
];

/// Whether a follow-up in `status` still stands (see [`ENDED`]).
pub fn still_counts(status: crate::Status) -> bool {
    !ENDED.contains(&status)
}

/// What the prepare step needs to render a follow-up message: its kind and the
/// application it belongs to, as the XÖV message references them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpInput {
    pub kind: FollowUpKind,
    pub refers_to: Option<String>,
    pub parent_id: Uuid,
    pub parent_receipt: String,
    /// The nachrichtenUUID of the application's own message.
    pub parent_message_id: Uuid,
    pub parent_created_at: time::OffsetDateTime,
}

/// A follow-up message as the application's status shows it (no content: that is
/// personal data and the citizen's portal keeps its own copy).
#[derive(Debug, Clone, Serialize)]
pub struct FollowUpRecord {
    pub id: Uuid,
    pub kind: FollowUpKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<String>,
    pub procedure: String,
    pub message_id: Uuid,
    pub message_type: String,
    pub status: crate::Status,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub delivered_at: Option<time::OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_has_its_own_family_of_follow_up_types() {
        assert_eq!(
            FollowUpKind::Antwort.message_type("hundesteuer.antrag.0101"),
            "hundesteuer.antwort.0201"
        );
        assert_eq!(
            FollowUpKind::Zahlung.message_type("maengelanzeige.meldung.0101"),
            "maengelanzeige.zahlung.0204"
        );
        for kind in FollowUpKind::ALL {
            assert_eq!(FollowUpKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(FollowUpKind::parse("beschwerde"), None);
    }
}
