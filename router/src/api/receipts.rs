//! `POST /api/v1/procedures/{id}/receipts`: a procedure's signed receipt (accept, or
//! reject with problems). The signature is the authentication: it must verify with the
//! procedure's receipt certificate. An unverifiable receipt is refused and logged and
//! changes nothing.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_transformers::receipt::{Receipt, ReceiptEvent};
use serde_json::json;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;
use crate::prepare::ReceiptError;
use crate::store::{EventDocument, ReceiptOutcome, ReceiptRecord, Status};

/// `POST /api/v1/procedures/{id}/receipts|events`. Who is calling is decided before the
/// body is read: an unknown procedure reads nothing; without the procedure's token at
/// most `max_unauthenticated_event_bytes` are read (a receipt), with it up to
/// `max_event_bytes` (a decision with its document). The signature inside still decides
/// whether the event is the procedure's.
pub async fn submit(
    State(state): State<Arc<ApiState>>,
    Path(procedure): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !state.destinations.contains_key(&procedure) {
        return Problem::not_found().into_response();
    }
    let authenticated = match headers.get(header::AUTHORIZATION) {
        None => false,
        Some(_) if state.pullers.authenticate(&headers) == Some(procedure.as_str()) => true,
        Some(_) => {
            return Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "The bearer token is not this procedure's API token",
            )
            .detail("send the procedure's own token, or none (then an event is at most the unauthenticated limit)")
            .into_response();
        }
    };
    let limits = &state.limits;
    let limit = if authenticated {
        limits.max_event_bytes
    } else {
        limits.max_unauthenticated_event_bytes
    };
    let too_large = || {
        let detail = if authenticated {
            format!("an event is at most {limit} bytes")
        } else {
            format!(
                "without the procedure's token an event is at most {limit} bytes; send `Authorization: Bearer <the procedure's API token>` with events that carry a document (at most {} bytes)",
                limits.max_event_bytes
            )
        };
        let mut response = Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The event is too large",
        )
        .detail(detail)
        .into_response();
        // The rest of the body is not read: the connection cannot be used again.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return too_large();
    };
    match take_event(&state, &procedure, bytes.to_vec()).await {
        Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Verifies and records one signed event of `procedure`, from whichever channel it came
/// (HTTP, the procedure's AMQP reply queue). The answer for the procedure, or why not.
pub async fn take_event(
    state: &ApiState,
    procedure: &str,
    bytes: Vec<u8>,
) -> Result<serde_json::Value, Problem> {
    let receipt = match state.preparer.verify_receipt(procedure, &bytes) {
        Ok(receipt) => receipt,
        Err(ReceiptError::UnknownProcedure(_)) => return Err(Problem::not_found()),
        Err(e @ ReceiptError::NoCertificate(_)) => {
            tracing::warn!(%procedure, error = %e, "receipt refused");
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "receipt-refused",
                "This procedure cannot send receipts",
            )
            .detail(e.to_string()));
        }
        Err(ReceiptError::Refused(reason)) => {
            // The reason may quote the event's content: it goes to the sender, not the log.
            tracing::warn!(%procedure, "unverifiable receipt refused");
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "receipt-unverifiable",
                "The receipt does not verify with the procedure's certificate",
            )
            .detail(reason));
        }
    };
    check_issued_at(
        &receipt.issued_at,
        time::OffsetDateTime::now_utc(),
        &state.limits,
    )?;
    record_event(state, procedure, receipt, bytes).await
}

/// An event must be issued neither in the future (beyond the clock skew) nor longer
/// ago than the maximum age: a captured event cannot be replayed later.
fn check_issued_at(
    issued_at: &str,
    now: time::OffsetDateTime,
    limits: &crate::config::Limits,
) -> Result<(), Problem> {
    let Ok(issued) =
        time::OffsetDateTime::parse(issued_at, &time::format_description::well_known::Rfc3339)
    else {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-issued-at",
            "issued_at must be an RFC 3339 time",
        ));
    };
    let skew =
        time::Duration::seconds(i64::try_from(limits.event_clock_skew_secs).unwrap_or(i64::MAX));
    let max_age =
        time::Duration::seconds(i64::try_from(limits.event_max_age_secs).unwrap_or(i64::MAX));
    if issued > now + skew {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "issued-in-the-future",
            "The event is issued in the future",
        )
        .detail(format!(
            "issued_at may lie at most {} seconds ahead of the hub's clock; check the procedure's clock",
            limits.event_clock_skew_secs
        )));
    }
    if issued < now - max_age {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "event-too-old",
            "The event is too old",
        )
        .detail(format!(
            "an event must arrive within {} seconds of issued_at; issue it anew",
            limits.event_max_age_secs
        )));
    }
    Ok(())
}

/// Records an event whose signature `Preparer::verify_receipt` has already verified
/// (`bytes` are the signed bytes it verified).
pub async fn record_event(
    state: &ApiState,
    procedure: &str,
    receipt: Receipt,
    bytes: Vec<u8>,
) -> Result<serde_json::Value, Problem> {
    // The id is ours to keep in history and audit trail: short and plain.
    let plain_id = !receipt.receipt_id.is_empty()
        && receipt.receipt_id.len() <= 64
        && receipt
            .receipt_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !plain_id {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-receipt-id",
            "A receipt id has at most 64 characters: letters, digits, - _ . :",
        ));
    }
    let content_sha256 = hex::encode(openssl::sha::sha256(
        &serde_json::to_vec(&receipt).unwrap_or_default(),
    ));
    let (Ok(message_id), Ok(application_id)) = (
        Uuid::parse_str(&receipt.message_id),
        Uuid::parse_str(&receipt.application_id),
    ) else {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-message",
            "The receipt names no message of this hub",
        ));
    };
    let record = ReceiptRecord {
        receipt_id: receipt.receipt_id.clone(),
        procedure_id: procedure.to_owned(),
        message_id,
        application_id,
        status: match receipt.event {
            ReceiptEvent::Accept => Status::Received,
            ReceiptEvent::Reject => Status::Rejected,
            ReceiptEvent::InProgress => Status::InProgress,
            ReceiptEvent::Query => Status::Query,
            ReceiptEvent::Decision => Status::Decided,
        },
        message: receipt.message.clone(),
        document: match &receipt.document {
            Some(document) => match base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                &document.content_base64,
            ) {
                Ok(content) => Some(EventDocument {
                    filename: document.filename.clone(),
                    media_type: document.media_type.clone(),
                    content,
                }),
                Err(_) => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "bad-document",
                        "The event's document is not valid base64",
                    ));
                }
            },
            None => None,
        },
        // Only the problem types: titles and details are free text and may be personal
        // data, which the history and the audit trail must not hold.
        problems: receipt
            .problems
            .iter()
            .map(|p| {
                let plain = p.kind.len() <= 200 && p.kind.bytes().all(|b| b.is_ascii_graphic());
                if plain {
                    p.kind.clone()
                } else {
                    "(unnamed problem type)".to_owned()
                }
            })
            .collect(),
        issued_at: receipt.issued_at.clone(),
        signed: bytes,
        content_sha256,
    };
    match state.store.record_receipt(&record).await {
        Ok(ReceiptOutcome::Applied(status)) => {
            tracing::info!(%procedure, application_id = %application_id, message_id = %message_id, status = status.as_str(), "receipt recorded");
            Ok(json!({"receipt_id": receipt.receipt_id, "recorded": true, "status": status}))
        }
        Ok(ReceiptOutcome::Duplicate) => {
            Ok(json!({"receipt_id": receipt.receipt_id, "recorded": false, "duplicate": true}))
        }
        Ok(ReceiptOutcome::Conflict) => Err(Problem::new(
            StatusCode::CONFLICT,
            "receipt-id-reused",
            "This receipt id was used for a different receipt",
        )),
        Ok(ReceiptOutcome::OutOfOrder(current)) => Err(Problem::new(
            StatusCode::CONFLICT,
            "event-out-of-order",
            "The event does not follow from the application's state",
        )
        .detail(format!("the application is {}", current.as_str()))),
        Ok(ReceiptOutcome::AlreadyFinal) => Err(Problem::new(
            StatusCode::CONFLICT,
            "application-final",
            "The application is already decided or rejected",
        )),
        Ok(ReceiptOutcome::UnknownMessage) => {
            tracing::warn!(%procedure, message_id = %message_id, "receipt for a message this procedure did not receive");
            Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-message",
                "This procedure was not delivered that message",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "recording a receipt failed");
            Err(Problem::unavailable("the store is not reachable"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn events_are_taken_within_the_skew_and_the_maximum_age() {
        let limits = crate::config::Limits::default();
        let now = datetime!(2026-12-03 10:00 UTC);
        let kind = |issued_at: &str| {
            check_issued_at(issued_at, now, &limits).err().map(|p| {
                p.kind
                    .trim_start_matches("urn:kopplung:problem:")
                    .to_owned()
            })
        };
        assert_eq!(kind("2026-12-03T10:04:59Z"), None);
        assert_eq!(kind("2026-11-26T10:00:01Z"), None);
        assert_eq!(kind("2026-12-03T11:04:59+01:00"), None);
        assert_eq!(
            kind("2026-12-03T10:05:01Z").as_deref(),
            Some("issued-in-the-future")
        );
        assert_eq!(
            kind("2026-11-26T09:59:59Z").as_deref(),
            Some("event-too-old")
        );
        assert_eq!(kind("yesterday").as_deref(), Some("bad-issued-at"));
    }
}
