//! The pull API for procedures without an inbound port (`transport = "pull"`):
//! list waiting messages, download one sealed message, acknowledge it (optionally with
//! the signed receipt). Each procedure authenticates with its own bearer token and sees
//! only its own messages; another procedure's are answered like ones that do not exist.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;
use super::receipts::taken;
use crate::store::PickupAck;
use kopplung_core::events::EventError;
use kopplung_pipeline::Envelope;

/// A receipt with a decision document fits; anything larger is not a receipt.
const MAX_ACK_BYTES: usize = 16 * 1024 * 1024;

/// The procedure this request may act for, or the problem to answer.
pub(super) fn authorised(
    state: &ApiState,
    headers: &HeaderMap,
    procedure: &str,
) -> Result<(), Problem> {
    match state.hub.topology.now().procedures.authenticate(headers) {
        None => Err(Problem::unauthorized()),
        Some(id) if id == procedure => Ok(()),
        Some(other) => {
            tracing::warn!(procedure = %other, requested = %procedure, "pull token used for another procedure");
            Err(others_token())
        }
    }
}

/// A procedure's valid token used for another procedure's messages (also answered by
/// `kopplung conformance`, which stands in for the hub).
pub fn others_token() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "This token belongs to another procedure",
    )
}

/// The receipt an acknowledgement of `message_id` carries, `verify`d; none for an empty
/// body. It is checked before anything changes: a receipt that does not verify, or is
/// for another message, refuses the whole acknowledgement (as in `kopplung conformance`).
pub fn carried_receipt<R>(
    body: &[u8],
    message_id: &str,
    verify: impl FnOnce(&[u8]) -> Result<R, Problem>,
    id_of: impl FnOnce(&R) -> &str,
) -> Result<Option<R>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let receipt = verify(body)?;
    if id_of(&receipt) != message_id {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "receipt-mismatch",
            "The receipt is for another message",
        ));
    }
    Ok(Some(receipt))
}

/// The answer to an acknowledgement; `first_time`: it was not acknowledged before.
pub fn acknowledgement(message_id: impl serde::Serialize, first_time: bool) -> serde_json::Value {
    json!({
        "message_id": message_id,
        "acknowledged": true,
        "already_acknowledged": !first_time,
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(procedure): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    if let Err(problem) = authorised(&state, &headers, &procedure) {
        return problem.into_response();
    }
    let Ok(Query(query)) = query else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            "`limit` must be a whole number from 1 to 1000",
        )
        .into_response();
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    match state.hub.store.pickups(&procedure, limit).await {
        Ok(messages) => Json(json!({ "messages": messages })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "listing pickups failed");
            Problem::store_unreachable().into_response()
        }
    }
}

pub async fn fetch(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((procedure, message)): Path<(String, String)>,
) -> Response {
    if let Err(problem) = authorised(&state, &headers, &procedure) {
        return problem.into_response();
    }
    let Ok(message_id) = Uuid::parse_str(&message) else {
        return Problem::not_found().into_response();
    };
    let (pickup, sealed) = match state.hub.store.pickup(&procedure, message_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Problem::not_found().into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading a pickup failed");
            return Problem::store_unreachable().into_response();
        }
    };
    let content_type = state
        .hub
        .keyring
        .envelope(&procedure)
        .unwrap_or(Envelope::Cms)
        .content_type();
    sealed_message(
        sealed.into(),
        content_type,
        [
            pickup.message_id.to_string(),
            pickup.application_id.to_string(),
            pickup.message_type.clone(),
        ],
    )
}

/// The download of one sealed message: its bytes, content type, ids and digest (also
/// served by `kopplung conformance`, which stands in for the hub).
pub fn sealed_message(
    sealed: axum::body::Bytes,
    content_type: &str,
    [message_id, application_id, message_type]: [String; 3],
) -> Response {
    let digest = base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha256(&sealed));
    let mut response = Response::new(Body::from(sealed));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::try_from(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let pairs = [
        ("x-kopplung-message-id", message_id),
        ("x-kopplung-application-id", application_id),
        ("x-kopplung-message-type", message_type),
        ("repr-digest", format!("sha-256=:{digest}:")),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    }
    response
}

pub async fn acknowledge(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((procedure, message)): Path<(String, String)>,
    body: Body,
) -> Response {
    if let Err(problem) = authorised(&state, &headers, &procedure) {
        return problem.into_response();
    }
    let Ok(message_id) = Uuid::parse_str(&message) else {
        return Problem::not_found().into_response();
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ACK_BYTES).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "An acknowledgement is at most 16 MiB",
        )
        .into_response();
    };
    let verify = |bytes: &[u8]| {
        state.hub.events.verify(&procedure, bytes).map_err(|e| {
            let reason = match e {
                EventError::NoCertificate(reason) | EventError::Unverifiable(reason) => reason,
                EventError::UnknownProcedure => format!("no procedure {procedure}"),
                // The signature verified: the content is at fault, and says how.
                other => return Problem::from(other),
            };
            tracing::warn!(%procedure, "unverifiable receipt with an acknowledgement refused");
            Problem::from(EventError::Unverifiable(reason))
        })
    };
    let receipt = match carried_receipt(&bytes, &message_id.to_string(), verify, |r| {
        r.message_id.as_str()
    }) {
        Ok(receipt) => receipt,
        Err(problem) => return problem.into_response(),
    };
    let detail = format!("message {message_id} collected by {procedure} (pull)");
    let acknowledged = match state
        .hub
        .store
        .acknowledge_pickup(&procedure, message_id, &detail)
        .await
    {
        Ok(PickupAck::Unknown) => return Problem::not_found().into_response(),
        Ok(ack) => ack == PickupAck::Acknowledged,
        Err(e) => {
            tracing::error!(error = %e, "acknowledging a pickup failed");
            return Problem::store_unreachable().into_response();
        }
    };
    if acknowledged {
        tracing::info!(%procedure, message_id = %message_id, "collected");
    }
    let mut answer = acknowledgement(message_id, acknowledged);
    if let Some(receipt) = receipt {
        match state
            .hub
            .events
            .record(&procedure, receipt, bytes.to_vec())
            .await
        {
            Ok(recorded) => answer["receipt"] = taken(recorded),
            // Delivered all the same; the procedure learns why its receipt was not taken.
            Err(e) => {
                answer["receipt_problem"] =
                    serde_json::to_value(Problem::from(e)).unwrap_or_default()
            }
        }
    }
    (StatusCode::OK, Json(answer)).into_response()
}
