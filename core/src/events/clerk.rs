//! Events a clerk records in the clerk inbox for a procedure without interface
//! (`transport = "manual"`): the events a procedure would sign and send — receipt, in
//! progress, query, decision — through the same checks of the application's state and
//! of what the service demands of a decision's document, into the same mailbox.
//!
//! A manual procedure has no signing key: the clerk's sign-in is the authentication.
//! The record kept in place of a signed event is the event as JSON naming the clerk;
//! the audit trail binds its hash as it binds a procedure's signed bytes.

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{EventError, Events, Taken};
use crate::audit::sha256_hex;
use crate::store::{Appeal, DecisionFee, EventDocument, ReceiptRecord, Status};

/// A text a clerk writes to the citizen (a question, the summary of a decision):
/// not empty, at most [`ClerkText::MAX_CHARS`] characters, no control characters but
/// line breaks and tabs. Personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClerkText(String);

/// Why a clerk's text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    Empty,
    TooLong { max: usize, chars: usize },
    ControlCharacter,
}

impl ClerkText {
    pub const MAX_CHARS: usize = 4000;

    pub fn new(text: &str) -> Result<Self, TextProblem> {
        // Browsers send line breaks as CRLF; the mailbox keeps LF.
        let text = text.replace("\r\n", "\n");
        let text = text.trim();
        if text.is_empty() {
            return Err(TextProblem::Empty);
        }
        let chars = text.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(TextProblem::TooLong {
                max: Self::MAX_CHARS,
                chars,
            });
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(TextProblem::ControlCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a clerk records.
#[derive(Debug, Clone)]
pub enum ClerkAction {
    /// Eingangsbestätigung.
    Accept,
    InProgress,
    /// A question to the citizen (Rückfrage).
    Query(ClerkText),
    /// The decision (Bescheid): a note for the mailbox, the decision as a PDF and its
    /// appeal information (see [`super::appeal_of`]).
    Decision {
        message: ClerkText,
        document: EventDocument,
        appeal: Option<Appeal>,
        /// A fee the decision sets (see [`super::fee_of`]).
        fee: Option<DecisionFee>,
    },
}

impl ClerkAction {
    /// The event's name, as a procedure's `cms` JSON names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::InProgress => "in_progress",
            Self::Query(_) => "query",
            Self::Decision { .. } => "decision",
        }
    }

    pub fn status(&self) -> Status {
        match self {
            Self::Accept => Status::Received,
            Self::InProgress => Status::InProgress,
            Self::Query(_) => Status::Query,
            Self::Decision { .. } => Status::Decided,
        }
    }

    /// Which actions the application's state `status` allows (the state machine's
    /// transitions), for the inbox to offer no other.
    pub fn offered(status: Status) -> [bool; 4] {
        [
            status.may_become(Status::Received),
            status.may_become(Status::InProgress) && status != Status::InProgress,
            status.may_become(Status::Query) && status != Status::Query,
            status.may_become(Status::Decided),
        ]
    }
}

/// An event a clerk records about the message `message_id` of `procedure`.
#[derive(Debug, Clone)]
pub struct ClerkEvent<'a> {
    pub procedure: &'a str,
    /// The clerk's id (not their name): kept in the history.
    pub clerk: &'a str,
    pub message_id: Uuid,
    pub application_id: Uuid,
    /// The one-time token of the form the clerk sent: the same form sent twice is one
    /// event (a duplicate), a different one under the same token is refused.
    pub token: Uuid,
    pub action: ClerkAction,
}

impl Events {
    /// Records an event a clerk decided on, as a procedure's signed event would be.
    pub async fn record_by_clerk(&self, event: ClerkEvent<'_>) -> Result<Taken, EventError> {
        let record = self.clerk_record(event)?;
        let procedure = record.procedure_id.clone();
        self.store_record(&procedure, record).await
    }

    fn clerk_record(&self, event: ClerkEvent<'_>) -> Result<ReceiptRecord, EventError> {
        let receipt_id = format!("inbox-{}", event.token.simple());
        let (message, document, appeal, fee) = match event.action.clone() {
            ClerkAction::Accept | ClerkAction::InProgress => (None, None, None, None),
            ClerkAction::Query(question) => (Some(question.0), None, None, None),
            ClerkAction::Decision {
                message,
                document,
                appeal,
                fee,
            } => {
                check_decision_document(&document)?;
                (Some(message.0), Some(document), appeal, fee)
            }
        };
        let digest = document.as_ref().map(|d| {
            let digest = d.digest();
            json!({"filename": digest.filename, "media_type": digest.media_type,
                   "size": digest.size, "sha512": digest.sha512})
        });
        // The content without the time: the same form sent again is the same event.
        let mut content = json!({
            "receipt_id": receipt_id,
            "procedure": event.procedure,
            "message_id": event.message_id.to_string(),
            "application_id": event.application_id.to_string(),
            "event": event.action.name(),
            "message": message,
            "document": digest,
            "appeal": appeal.as_ref().map(|a| json!({"text": a.text, "deadline": a.deadline.to_string()})),
            "fee": fee.as_ref().map(|f| json!({"amount": f.euros(), "purpose": f.purpose})),
            "recorded_by": {"clerk": event.clerk},
        });
        let content_sha256 = sha256_hex(content.to_string().as_bytes());
        let issued_at = self
            .clock
            .now()
            .format(&Rfc3339)
            .map_err(|_| EventError::BadIssuedAt)?;
        content["issued_at"] = json!(issued_at);
        Ok(ReceiptRecord {
            receipt_id,
            procedure_id: event.procedure.to_owned(),
            message_id: event.message_id,
            application_id: event.application_id,
            status: event.action.status(),
            message,
            document,
            appeal,
            fee,
            problems: Vec::new(),
            issued_at,
            signed: content.to_string().into_bytes(),
            content_sha256,
            recorded_by: Some(format!("clerk {}", event.clerk)),
        })
    }
}

/// A clerk's decision document is a PDF under a plain filename (its service may demand
/// PDF/A besides, checked as for a procedure's decision).
fn check_decision_document(document: &EventDocument) -> Result<(), EventError> {
    if !crate::intake::valid_filename(&document.filename) {
        return Err(EventError::BadDocument(
            "the filename is empty, too long, or holds a path or control character",
        ));
    }
    if document.media_type != "application/pdf"
        || !crate::intake::content_matches("application/pdf", &document.content)
    {
        return Err(EventError::BadDocument("the document is no PDF file"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clerks_text_is_trimmed_bounded_and_plain() {
        assert_eq!(
            ClerkText::new("  Bitte\r\nnachreichen. ").unwrap().as_str(),
            "Bitte\nnachreichen."
        );
        assert_eq!(ClerkText::new(" \r\n "), Err(TextProblem::Empty));
        assert_eq!(
            ClerkText::new(&"a".repeat(4001)),
            Err(TextProblem::TooLong {
                max: 4000,
                chars: 4001
            })
        );
        assert!(ClerkText::new(&"ä".repeat(4000)).is_ok());
        assert_eq!(
            ClerkText::new("a\u{7}b"),
            Err(TextProblem::ControlCharacter)
        );
    }

    #[test]
    fn the_actions_offered_follow_the_state_machine() {
        assert_eq!(
            ClerkAction::offered(Status::Delivered),
            [true, false, false, false]
        );
        assert_eq!(
            ClerkAction::offered(Status::Received),
            [false, true, true, true]
        );
        assert_eq!(
            ClerkAction::offered(Status::InProgress),
            [false, false, true, true]
        );
        assert_eq!(
            ClerkAction::offered(Status::Query),
            [false, true, false, true]
        );
        assert_eq!(
            ClerkAction::offered(Status::Decided),
            [false, false, false, false]
        );
    }

    #[test]
    fn a_decision_document_must_be_a_pdf() {
        let document = |filename: &str, content: &[u8]| EventDocument {
            filename: filename.into(),
            media_type: "application/pdf".into(),
            content: content.to_vec(),
        };
        assert!(check_decision_document(&document("bescheid.pdf", b"%PDF-1.7\n")).is_ok());
        for refused in [
            document("bescheid.pdf", b"MZ\x90"),
            document("../b.pdf", b"%PDF-1.7"),
            document("", b"%PDF-1.7"),
        ] {
            assert!(matches!(
                check_decision_document(&refused),
                Err(EventError::BadDocument(_))
            ));
        }
    }
}
