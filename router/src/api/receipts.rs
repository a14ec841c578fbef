//! `POST /api/v1/procedures/{id}/receipts`: a procedure's signed receipt (accept, or
//! reject with problems). The signature is the authentication: it must verify with the
//! procedure's receipt certificate. An unverifiable receipt is refused and logged and
//! changes nothing.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kopplung_transformers::receipt::{Receipt, ReceiptEvent};
use serde_json::json;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;
use crate::prepare::ReceiptError;
use crate::store::{EventDocument, ReceiptOutcome, ReceiptRecord, Status};

/// A receipt is small; an event may carry the decision document.
const MAX_RECEIPT_BYTES: usize = 16 * 1024 * 1024;

pub async fn submit(
    State(state): State<Arc<ApiState>>,
    Path(procedure): Path<String>,
    body: Body,
) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_RECEIPT_BYTES).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "An event is at most 16 MiB",
        )
        .into_response();
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
    record_event(state, procedure, receipt, bytes).await
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
