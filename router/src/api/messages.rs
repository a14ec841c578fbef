//! `POST /api/v1/applications/{id}/messages`: the HTTP edge of the core's conversation
//! service. The citizen's portal sends an answer to a query, documents later or an
//! objection; the hub stores it as its own message to the application's procedure.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_core::conversation::{ConversationError, Sent};
use serde_json::json;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;

pub async fn send(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    match accept(&state, &headers, &id, body).await {
        Ok(sent) => created(&state, &id, &sent),
        Err(problem) => problem.into_response(),
    }
}

async fn accept(
    state: &ApiState,
    headers: &HeaderMap,
    id: &str,
    body: Body,
) -> Result<Sent, Problem> {
    let client = super::caller(&state.clients, headers)?;
    let Ok(parent) = Uuid::parse_str(id) else {
        return Err(Problem::not_found());
    };
    if !super::is_json(headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send the message as application/json",
        ));
    }
    let key = super::idempotency_key(headers)?;
    let bytes = super::read_limited(body, headers, state.limits.max_body_bytes).await?;
    Ok(state
        .hub
        .conversation
        .send(&client, parent, &bytes, key)
        .await?)
}

fn created(state: &ApiState, parent: &str, sent: &Sent) -> Response {
    let location = format!("{}/api/v1/applications/{}", state.hub.public_url, sent.id);
    let body = json!({
        "id": sent.id,
        "application": parent,
        "kind": sent.kind,
        "message_id": sent.message_id,
        "status": "accepted",
    });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if sent.replayed {
        response.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    response
}

impl From<ConversationError> for Problem {
    fn from(error: ConversationError) -> Self {
        match error {
            ConversationError::Malformed(detail) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                "The body is not a valid message",
            )
            .detail(detail),
            ConversationError::Invalid(errors) => Problem::validation(errors),
            ConversationError::UnknownApplication => Problem::not_found(),
            // The detail is the German sentence the portal shows as it is.
            ConversationError::Refused(refusal) => Problem::new(
                StatusCode::CONFLICT,
                "follow-up-refused",
                "This message cannot be sent for the application now",
            )
            .detail(refusal.to_string()),
            ConversationError::AttachmentTooLarge { index, max_bytes } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "attachment-too-large",
                "An attachment is too large",
            )
            .detail(format!(
                "attachments[{index}] is larger than {max_bytes} bytes"
            )),
            ConversationError::KeyReused => Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-reused",
                "This Idempotency-Key was used with a different request",
            ),
            ConversationError::StoreUnreachable(_) => Problem::store_unreachable(),
            ConversationError::NotStored(_) => Problem::unavailable(
                "the message could not be stored; nothing was kept, please retry",
            ),
        }
    }
}
