//! What a signed event must carry before it is recorded: a plausible time of issue,
//! what its kind needs, a plain receipt id and documents of a plain media type; and the
//! record the store keeps of it.

use base64::Engine;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::*;

/// An event must be issued neither in the future (beyond the clock skew) nor longer
/// ago than the maximum age: a captured event cannot be replayed later.
pub fn check_issued_at(
    issued_at: &str,
    now: OffsetDateTime,
    limits: &EventLimits,
) -> Result<(), EventError> {
    let Ok(issued) = OffsetDateTime::parse(issued_at, &Rfc3339) else {
        return Err(EventError::BadIssuedAt);
    };
    let seconds = |secs: u64| Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX));
    if issued > now + seconds(limits.clock_skew_secs) {
        return Err(EventError::IssuedInTheFuture {
            skew_secs: limits.clock_skew_secs,
        });
    }
    if issued < now - seconds(limits.max_age_secs) {
        return Err(EventError::TooOld {
            max_age_secs: limits.max_age_secs,
        });
    }
    Ok(())
}

/// What each kind of event must carry: a rejection its problems, a query its
/// question, a decision its document.
pub fn check_content(event: &VerifiedEvent) -> Result<(), EventError> {
    let missing = |kind, field| Err(EventError::MissingField { kind, field });
    match event.kind {
        EventKind::Reject if event.problem_types.is_empty() => missing("reject", "problems"),
        EventKind::Query if event.message.is_none() => missing("query", "message"),
        EventKind::Decision if event.document.is_none() => missing("decision", "document"),
        kind if kind != EventKind::Decision && event.appeal.is_some() => Err(
            EventError::BadAppeal("appeal information belongs to a decision only"),
        ),
        kind if kind != EventKind::Decision && event.fee.is_some() => {
            Err(EventError::BadFee("a fee belongs to a decision only"))
        }
        _ => Ok(()),
    }
}

/// Whether a media type is a plain `type/subtype` (RFC 6838 names, no parameters): it
/// is served back as the document's `Content-Type`.
fn plain_media_type(media_type: &str) -> bool {
    let name = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    media_type
        .split_once('/')
        .is_some_and(|(kind, subtype)| name(kind) && name(subtype))
}

/// The document's content if it can be kept as declared.
fn document_content(document: &SignedDocument) -> Result<Vec<u8>, EventError> {
    if !crate::intake::valid_filename(&document.filename) {
        return Err(EventError::BadDocument(
            "the filename is empty, too long, or holds a path or control character",
        ));
    }
    if !plain_media_type(&document.media_type) {
        return Err(EventError::BadDocument(
            "media_type must be a plain type/subtype such as application/pdf",
        ));
    }
    let content = base64::engine::general_purpose::STANDARD
        .decode(&document.content_base64)
        .map_err(|_| EventError::BadDocument("content_base64 is not valid base64"))?;
    if !crate::intake::content_matches(&document.media_type, &content) {
        return Err(EventError::BadDocument(
            "the content is not of the declared media_type (its file signature differs)",
        ));
    }
    Ok(content)
}

/// Whether a receipt id is ours to keep in history and audit trail: short and plain.
fn plain_receipt_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// What the store records of a verified event (`signed` are the bytes that verified).
pub fn record_of(
    procedure: &str,
    event: VerifiedEvent,
    signed: Vec<u8>,
) -> Result<ReceiptRecord, EventError> {
    if !plain_receipt_id(&event.receipt_id) {
        return Err(EventError::BadReceiptId);
    }
    let (Ok(message_id), Ok(application_id)) = (
        Uuid::parse_str(&event.message_id),
        Uuid::parse_str(&event.application_id),
    ) else {
        return Err(EventError::NoSuchMessage);
    };
    let document = match event.document {
        Some(document) => {
            let content = document_content(&document)?;
            Some(EventDocument {
                filename: document.filename,
                media_type: document.media_type,
                content,
            })
        }
        None => None,
    };
    let appeal = match &event.appeal {
        Some(appeal) => {
            let issued = OffsetDateTime::parse(&event.issued_at, &Rfc3339)
                .map_err(|_| EventError::BadIssuedAt)?;
            let appeal = appeal_of(&appeal.text, &appeal.deadline, issued.date())
                .map_err(|problem| EventError::BadAppeal(problem.reason()))?;
            Some(appeal)
        }
        None => None,
    };
    let fee = match &event.fee {
        Some(fee) => {
            Some(fee_of(&fee.amount, &fee.purpose).map_err(|p| EventError::BadFee(p.reason()))?)
        }
        None => None,
    };
    Ok(ReceiptRecord {
        appeal,
        fee,
        receipt_id: event.receipt_id,
        procedure_id: procedure.to_owned(),
        message_id,
        application_id,
        status: event.kind.status(),
        message: event.message,
        document,
        // Only the problem types: titles and details are free text and may be personal
        // data, which the history and the audit trail must not hold.
        problems: event
            .problem_types
            .into_iter()
            .map(|kind| {
                let plain = kind.len() <= 200 && kind.bytes().all(|b| b.is_ascii_graphic());
                if plain {
                    kind
                } else {
                    "(unnamed problem type)".to_owned()
                }
            })
            .collect(),
        issued_at: event.issued_at,
        signed,
        content_sha256: event.content_sha256,
        recorded_by: None,
    })
}
