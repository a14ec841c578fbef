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
use kopplung_transformers::receipt::ReceiptEvent;
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
    let receipt = match state.preparer.verify_receipt(&procedure, &bytes) {
        Ok(receipt) => receipt,
        Err(ReceiptError::UnknownProcedure(_)) => return Problem::not_found().into_response(),
        Err(e @ ReceiptError::NoCertificate(_)) => {
            tracing::warn!(%procedure, error = %e, "receipt refused");
            return Problem::new(
                StatusCode::FORBIDDEN,
                "receipt-refused",
                "This procedure cannot send receipts",
            )
            .detail(e.to_string())
            .into_response();
        }
        Err(ReceiptError::Refused(reason)) => {
            tracing::warn!(%procedure, %reason, "unverifiable receipt refused");
            return Problem::new(
                StatusCode::FORBIDDEN,
                "receipt-unverifiable",
                "The receipt does not verify with the procedure's certificate",
            )
            .detail(reason)
            .into_response();
        }
    };
    let (Ok(message_id), Ok(application_id)) = (
        Uuid::parse_str(&receipt.message_id),
        Uuid::parse_str(&receipt.application_id),
    ) else {
        return Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-message",
            "The receipt names no message of this hub",
        )
        .into_response();
    };
    let record = ReceiptRecord {
        receipt_id: receipt.receipt_id.clone(),
        procedure_id: procedure.clone(),
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
                    return Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "bad-document",
                        "The event's document is not valid base64",
                    )
                    .into_response();
                }
            },
            None => None,
        },
        problems: receipt
            .problems
            .iter()
            .map(|p| format!("{} ({})", p.title, p.kind))
            .collect(),
        issued_at: receipt.issued_at.clone(),
        signed: bytes.to_vec(),
    };
    match state.store.record_receipt(&record).await {
        Ok(ReceiptOutcome::Applied(status)) => {
            tracing::info!(%procedure, application_id = %application_id, message_id = %message_id, status = status.as_str(), "receipt recorded");
            (
                StatusCode::OK,
                Json(json!({"receipt_id": receipt.receipt_id, "recorded": true, "status": status})),
            )
                .into_response()
        }
        Ok(ReceiptOutcome::Duplicate) => (
            StatusCode::OK,
            Json(json!({"receipt_id": receipt.receipt_id, "recorded": false, "duplicate": true})),
        )
            .into_response(),
        Ok(ReceiptOutcome::Conflict) => Problem::new(
            StatusCode::CONFLICT,
            "receipt-id-reused",
            "This receipt id was used for a different receipt",
        )
        .into_response(),
        Ok(ReceiptOutcome::AlreadyFinal) => Problem::new(
            StatusCode::CONFLICT,
            "application-final",
            "The application is already decided or rejected",
        )
        .into_response(),
        Ok(ReceiptOutcome::UnknownMessage) => {
            tracing::warn!(%procedure, message_id = %message_id, "receipt for a message this procedure did not receive");
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-message",
                "This procedure was not delivered that message",
            )
            .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "recording a receipt failed");
            Problem::unavailable("the store is not reachable").into_response()
        }
    }
}
