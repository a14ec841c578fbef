//! Taking a procedure's signed event (receipt, rejection, progress, query, decision),
//! from whichever channel it came: the HTTP API, the procedure's AMQP reply queue, or
//! the answer to an HTTP delivery. The signature is the authentication: an event that
//! does not verify with the procedure's receipt certificate changes nothing.

use std::sync::Arc;

use crate::Clock;
use crate::store::{
    EventDocument, EventStore, IntakeStore, ReceiptOutcome, ReceiptRecord, Status, StoreError,
};
pub use kopplung_forms::DecisionDocument;

mod clerk;
mod content;
mod decision;
mod follow_up;
pub use clerk::{ClerkAction, ClerkEvent, ClerkText, TextProblem};
pub use content::{check_content, check_issued_at, record_of};
pub use decision::{
    AppealProblem, FeeProblem, MAX_APPEAL_CHARS, MAX_FEE_CENTS, MAX_PURPOSE_CHARS, SignedAppeal,
    SignedFee, appeal_of, fee_of,
};

/// What a procedure says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Eingangsbestätigung: the message arrived and is formally in order.
    Accept,
    /// The message is refused (with problems).
    Reject,
    /// The authority works on the application.
    InProgress,
    /// A question to the citizen (Rückfrage).
    Query,
    /// The decision (Bescheid).
    Decision,
}

impl EventKind {
    /// The state the event moves the application to.
    pub fn status(self) -> Status {
        match self {
            Self::Accept => Status::Received,
            Self::Reject => Status::Rejected,
            Self::InProgress => Status::InProgress,
            Self::Query => Status::Query,
            Self::Decision => Status::Decided,
        }
    }
}

/// A document that comes with an event, as signed (base64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDocument {
    pub filename: String,
    pub media_type: String,
    pub content_base64: String,
}

/// An event whose signature verified: its content, not yet checked against the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// Unique per event of the procedure: a repeated event is recognised by it.
    pub receipt_id: String,
    pub message_id: String,
    pub application_id: String,
    pub kind: EventKind,
    /// Text for the citizen (a question, the summary of a decision).
    pub message: Option<String>,
    pub document: Option<SignedDocument>,
    /// A decision's appeal information.
    pub appeal: Option<SignedAppeal>,
    /// A fee the decision sets.
    pub fee: Option<SignedFee>,
    /// The problem types (URIs) of a rejection.
    pub problem_types: Vec<String>,
    /// RFC 3339, as the procedure wrote it.
    pub issued_at: String,
    /// SHA-256 (hex) of the event's content in the signature format's canonical form:
    /// the same event sent again has the same hash.
    pub content_sha256: String,
}

/// Why an event's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// No such procedure.
    UnknownProcedure,
    /// The procedure cannot send events (no receipt certificate); the reason.
    NoCertificate(String),
    /// The signature is refused; the reason may quote the content.
    Refused(String),
    /// The signature verified, but the signed content is no event; the reason may
    /// quote the content.
    Malformed(String),
}

/// Verifies signed events with the keys in force (the pipeline's keyring).
pub trait EventVerifier: Send + Sync {
    fn verify(&self, procedure: &str, signed: &[u8]) -> Result<VerifiedEvent, Unverified>;
}

/// What each service demands of its decisions (the mappings in force).
pub trait DecisionRules: Send + Sync {
    /// What the document of a decision on an application of `service` must be; `Any`
    /// for a service the hub does not offer (any more).
    fn decision_document(&self, service: &str) -> DecisionDocument;
}

/// How far `issued_at` may lie from the hub's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// Seconds an event may be issued ahead of the hub's clock.
    pub clock_skew_secs: u64,
    /// Seconds after `issued_at` within which an event must arrive.
    pub max_age_secs: u64,
}

/// What became of an event that was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Recorded; the application is now in `status`.
    Recorded { receipt_id: String, status: Status },
    /// The same event was recorded before: nothing changed.
    Duplicate { receipt_id: String },
}

/// Why an event was not taken.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("no such procedure")]
    UnknownProcedure,
    #[error("{0}")]
    NoCertificate(String),
    /// The reason may quote the event's content: for the sender, not the log.
    #[error("the event does not verify: {0}")]
    Unverifiable(String),
    /// The signature verified; the content is no event. The reason may quote it.
    #[error("the signed content is no event: {0}")]
    Malformed(String),
    /// The event lacks what its kind must carry (the field's name).
    #[error("a {kind} event needs `{field}`")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
    #[error("issued_at is no RFC 3339 time")]
    BadIssuedAt,
    #[error("issued more than {skew_secs} seconds in the future")]
    IssuedInTheFuture { skew_secs: u64 },
    #[error("older than {max_age_secs} seconds")]
    TooOld { max_age_secs: u64 },
    #[error("the receipt id is not plain")]
    BadReceiptId,
    /// The ids are not the hub's (no UUIDs).
    #[error("the event names no message of this hub")]
    NoSuchMessage,
    /// The event's document cannot be kept as declared (why, without its content).
    #[error("the event's document: {0}")]
    BadDocument(&'static str),
    /// The appeal information is not usable (why, without its text).
    #[error("the event's appeal: {0}")]
    BadAppeal(&'static str),
    /// The fee is not usable (why).
    #[error("the event's fee: {0}")]
    BadFee(&'static str),
    #[error("the receipt id was used for a different event")]
    ReceiptIdReused,
    #[error("the event does not follow from the application's state ({})", .0.as_str())]
    OutOfOrder(Status),
    #[error("the application is already decided or rejected")]
    AlreadyFinal,
    /// The procedure was never delivered that message.
    #[error("this procedure was not delivered that message")]
    NotDelivered,
    /// Nothing was recorded; the same event may be sent again later.
    #[error("the store is not reachable: {0}")]
    Unavailable(StoreError),
}

impl EventError {
    /// A short, stable name of the refusal (the API's problem type); never the
    /// event's content, so it may be logged.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownProcedure => "not-found",
            Self::NoCertificate(_) => "receipt-refused",
            Self::Unverifiable(_) => "receipt-unverifiable",
            Self::Malformed(_) => "malformed-event",
            Self::MissingField { .. } => "missing-field",
            Self::BadIssuedAt => "bad-issued-at",
            Self::IssuedInTheFuture { .. } => "issued-in-the-future",
            Self::TooOld { .. } => "event-too-old",
            Self::BadReceiptId => "bad-receipt-id",
            Self::NoSuchMessage | Self::NotDelivered => "unknown-message",
            Self::BadDocument(_) => "bad-document",
            Self::BadAppeal(_) => "bad-appeal",
            Self::BadFee(_) => "bad-fee",
            Self::ReceiptIdReused => "receipt-id-reused",
            Self::OutOfOrder(_) => "event-out-of-order",
            Self::AlreadyFinal => "application-final",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// The events service.
pub struct Events {
    pub store: Arc<dyn EventStore>,
    /// Which service an application is of, for what its decision must carry.
    pub applications: Arc<dyn IntakeStore>,
    pub rules: Arc<dyn DecisionRules>,
    pub verifier: Arc<dyn EventVerifier>,
    pub clock: Arc<dyn Clock>,
    pub limits: EventLimits,
}

impl Events {
    /// Verifies and records one signed event of `procedure`, issued within the clock
    /// skew and the maximum age.
    pub async fn take(&self, procedure: &str, signed: Vec<u8>) -> Result<Taken, EventError> {
        let event = self.verify(procedure, &signed).inspect_err(|e| match e {
            EventError::NoCertificate(reason) => {
                tracing::warn!(%procedure, error = %reason, "receipt refused");
            }
            // The reason may quote the event's content: it goes to the sender, not the log.
            EventError::Unverifiable(_) => {
                tracing::warn!(%procedure, "unverifiable receipt refused");
            }
            _ => {}
        })?;
        check_issued_at(&event.issued_at, self.clock.now(), &self.limits)?;
        let event = self.addressed(procedure, event).await?;
        self.record(procedure, event, signed).await
    }

    /// An event that names only its application (FIT-Connect's events name the
    /// submission, not the message) is about the application's own message, if that
    /// went to `procedure`.
    async fn addressed(
        &self,
        procedure: &str,
        mut event: VerifiedEvent,
    ) -> Result<VerifiedEvent, EventError> {
        if !event.message_id.is_empty() {
            return Ok(event);
        }
        let id =
            uuid::Uuid::parse_str(&event.application_id).map_err(|_| EventError::NoSuchMessage)?;
        let application = self
            .applications
            .application(id)
            .await
            .map_err(EventError::Unavailable)?
            .filter(|a| a.delivery.procedure == procedure && a.follow_up.is_none())
            .ok_or(EventError::NoSuchMessage)?;
        event.message_id = application.delivery.message_id.to_string();
        Ok(event)
    }

    /// Verifies the signature of an event of `procedure` with the keys in force, and
    /// that it carries what its kind needs.
    pub fn verify(&self, procedure: &str, signed: &[u8]) -> Result<VerifiedEvent, EventError> {
        let event =
            self.verifier
                .verify(procedure, signed)
                .map_err(|unverified| match unverified {
                    Unverified::UnknownProcedure => EventError::UnknownProcedure,
                    Unverified::NoCertificate(reason) => EventError::NoCertificate(reason),
                    Unverified::Refused(reason) => EventError::Unverifiable(reason),
                    Unverified::Malformed(reason) => EventError::Malformed(reason),
                })?;
        check_content(&event)?;
        Ok(event)
    }

    /// Records an event that [`Events::verify`] verified (`signed` are its bytes).
    pub async fn record(
        &self,
        procedure: &str,
        event: VerifiedEvent,
        signed: Vec<u8>,
    ) -> Result<Taken, EventError> {
        let record = record_of(procedure, event, signed)?;
        self.store_record(procedure, record).await
    }

    /// Stores an event of `procedure` (from the procedure, or recorded by a clerk for a
    /// procedure without interface): what its service demands of a decision's document,
    /// then the store's check of the application's state.
    async fn store_record(
        &self,
        procedure: &str,
        mut record: ReceiptRecord,
    ) -> Result<Taken, EventError> {
        if let Some(taken) = self.demanded_document(procedure, &record).await? {
            return Ok(taken);
        }
        let outcome = self.stored(procedure, &mut record, false).await?;
        let taken = answer(procedure, &record, outcome)?;
        if let Taken::Recorded { status, .. } = &taken {
            let (application_id, message_id) = (record.application_id, record.message_id);
            tracing::info!(%procedure, %application_id, %message_id, status = status.as_str(), "receipt recorded");
        }
        Ok(taken)
    }

    /// A dry run of [`Events::take`]: every check, against the store as it is now, and
    /// nothing recorded. `Taken::Recorded` means the event would be recorded.
    pub async fn check(&self, procedure: &str, signed: Vec<u8>) -> Result<Taken, EventError> {
        let event = self.verify(procedure, &signed)?;
        check_issued_at(&event.issued_at, self.clock.now(), &self.limits)?;
        let event = self.addressed(procedure, event).await?;
        let mut record = record_of(procedure, event, signed)?;
        if let Some(taken) = self.demanded_document(procedure, &record).await? {
            return Ok(taken);
        }
        let outcome = self.stored(procedure, &mut record, true).await?;
        answer(procedure, &record, outcome)
    }

    /// Refuses a decision whose document is not what the application's service demands
    /// (`[decision] document` of its mapping). The store's answer comes first: a
    /// decision it would not record anyway (a message the procedure was not delivered,
    /// a duplicate, one out of order) gets that answer, so that the refusal tells a
    /// procedure nothing about applications that are not its own. `Some`: the answer
    /// without recording.
    async fn demanded_document(
        &self,
        procedure: &str,
        record: &ReceiptRecord,
    ) -> Result<Option<Taken>, EventError> {
        let Some(document) = &record.document else {
            return Ok(None);
        };
        if record.status != Status::Decided {
            return Ok(None);
        }
        let application = self
            .applications
            .application(record.application_id)
            .await
            .map_err(EventError::Unavailable)?;
        // An unknown application: the store refuses the event as not delivered.
        let Some(application) = application else {
            return Ok(None);
        };
        let refused = match self.rules.decision_document(&application.service) {
            DecisionDocument::Any => return Ok(None),
            DecisionDocument::PdfA => match crate::pdfa::check(&document.content) {
                Ok(()) => return Ok(None),
                Err(not) => not,
            },
        };
        let outcome = self.store.check_receipt(record).await;
        match answer(procedure, record, outcome)? {
            Taken::Recorded { .. } => Err(EventError::BadDocument(refused.reason())),
            duplicate @ Taken::Duplicate { .. } => Ok(Some(duplicate)),
        }
    }
}

/// What the store's answer about `record` means for the procedure.
fn answer(
    procedure: &str,
    record: &ReceiptRecord,
    outcome: Result<ReceiptOutcome, StoreError>,
) -> Result<Taken, EventError> {
    let receipt_id = record.receipt_id.clone();
    match outcome {
        Ok(ReceiptOutcome::Applied(status)) => Ok(Taken::Recorded { receipt_id, status }),
        Ok(ReceiptOutcome::Duplicate) => Ok(Taken::Duplicate { receipt_id }),
        Ok(ReceiptOutcome::Conflict) => Err(EventError::ReceiptIdReused),
        Ok(ReceiptOutcome::OutOfOrder(current)) => Err(EventError::OutOfOrder(current)),
        Ok(ReceiptOutcome::AlreadyFinal) => Err(EventError::AlreadyFinal),
        Ok(ReceiptOutcome::UnknownMessage) => {
            let message_id = record.message_id;
            tracing::warn!(%procedure, %message_id, "receipt for a message this procedure did not receive");
            Err(EventError::NotDelivered)
        }
        Err(e) => {
            tracing::error!(error = %e, "reading or recording a receipt failed");
            Err(EventError::Unavailable(e))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine;
    use time::macros::datetime;
    use uuid::Uuid;

    fn limits() -> EventLimits {
        EventLimits {
            clock_skew_secs: 300,
            max_age_secs: 7 * 24 * 3600,
        }
    }

    pub(crate) fn event() -> VerifiedEvent {
        VerifiedEvent {
            receipt_id: "r-1".into(),
            message_id: Uuid::nil().to_string(),
            application_id: Uuid::nil().to_string(),
            kind: EventKind::Reject,
            message: None,
            document: None,
            problem_types: vec!["urn:x:missing".into(), "frei text".into()],
            appeal: None,
            fee: None,
            issued_at: "2026-12-03T10:00:00Z".into(),
            content_sha256: "ab".into(),
        }
    }

    #[test]
    fn events_are_taken_within_the_skew_and_the_maximum_age() {
        let now = datetime!(2026-12-03 10:00 UTC);
        let kind = |issued_at: &str| match check_issued_at(issued_at, now, &limits()) {
            Ok(()) => None,
            Err(EventError::IssuedInTheFuture { .. }) => Some("issued-in-the-future"),
            Err(EventError::TooOld { .. }) => Some("event-too-old"),
            Err(EventError::BadIssuedAt) => Some("bad-issued-at"),
            Err(other) => panic!("{other}"),
        };
        assert_eq!(kind("2026-12-03T10:04:59Z"), None);
        assert_eq!(kind("2026-11-26T10:00:01Z"), None);
        assert_eq!(kind("2026-12-03T11:04:59+01:00"), None);
        assert_eq!(kind("2026-12-03T10:05:01Z"), Some("issued-in-the-future"));
        assert_eq!(kind("2026-11-26T09:59:59Z"), Some("event-too-old"));
        assert_eq!(kind("yesterday"), Some("bad-issued-at"));
    }

    #[test]
    fn a_record_keeps_problem_types_only_and_refuses_what_is_not_plain() {
        let record = record_of("p", event(), b"signed".to_vec()).unwrap();
        assert_eq!(record.status, Status::Rejected);
        assert_eq!(record.problems, ["urn:x:missing", "(unnamed problem type)"]);
        assert_eq!(record.signed, b"signed");

        let mut bad_id = event();
        bad_id.receipt_id = "a b".into();
        assert!(matches!(
            record_of("p", bad_id, Vec::new()),
            Err(EventError::BadReceiptId)
        ));
        let mut foreign = event();
        foreign.message_id = "42".into();
        assert!(matches!(
            record_of("p", foreign, Vec::new()),
            Err(EventError::NoSuchMessage)
        ));
        let mut document = event();
        document.document = Some(SignedDocument {
            filename: "b.pdf".into(),
            media_type: "application/pdf".into(),
            content_base64: "!!".into(),
        });
        assert!(matches!(
            record_of("p", document, Vec::new()),
            Err(EventError::BadDocument(_))
        ));
    }

    pub(crate) fn decision(filename: &str, media_type: &str, content: &[u8]) -> VerifiedEvent {
        VerifiedEvent {
            kind: EventKind::Decision,
            message: Some("Ihrem Antrag wird stattgegeben.".into()),
            problem_types: Vec::new(),
            document: Some(SignedDocument {
                filename: filename.into(),
                media_type: media_type.into(),
                content_base64: base64::engine::general_purpose::STANDARD.encode(content),
            }),
            ..event()
        }
    }

    #[test]
    fn a_document_must_be_what_it_declares() {
        let kept = record_of(
            "p",
            decision("b.pdf", "application/pdf", b"%PDF-1.7\n"),
            vec![],
        );
        assert_eq!(kept.unwrap().document.unwrap().content, b"%PDF-1.7\n");
        // Types without a file signature to check are kept as declared.
        let note = record_of("p", decision("h.xml", "application/xml", b"<a/>"), vec![]);
        assert!(note.is_ok());
        for (filename, media_type, content) in [
            ("b.pdf", "application/pdf", &b"hello\n"[..]),
            ("b.png", "image/png", b"%PDF-1.7"),
            ("b.jpg", "image/jpeg", b"\x89PNG\r\n\x1a\n"),
            ("b.pdf", "application/pdf; charset=x", b"%PDF-1.7"),
            ("b.pdf", "pdf", b"%PDF-1.7"),
            ("../b.pdf", "application/pdf", b"%PDF-1.7"),
            ("", "application/pdf", b"%PDF-1.7"),
        ] {
            let refused = record_of("p", decision(filename, media_type, content), vec![]);
            assert!(
                matches!(refused, Err(EventError::BadDocument(_))),
                "{filename} {media_type}"
            );
        }
    }

    #[test]
    fn events_must_carry_what_their_kind_needs() {
        let field = |event: &VerifiedEvent| match check_content(event) {
            Ok(()) => None,
            Err(EventError::MissingField { field, .. }) => Some(field),
            Err(other) => panic!("{other}"),
        };
        let mut query = VerifiedEvent {
            kind: EventKind::Query,
            ..event()
        };
        assert_eq!(field(&query), Some("message"), "a query without a question");
        query.message = Some("Bitte reichen Sie ein Foto nach.".into());
        assert_eq!(field(&query), None);
        let mut decision = decision("b.pdf", "application/pdf", b"%PDF-1.7");
        assert_eq!(field(&decision), None);
        decision.document = None;
        assert_eq!(
            field(&decision),
            Some("document"),
            "a decision without its document"
        );
        let mut reject = event();
        assert_eq!(field(&reject), None);
        reject.problem_types.clear();
        assert_eq!(
            field(&reject),
            Some("problems"),
            "a rejection without problems"
        );
    }
}
