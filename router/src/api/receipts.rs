//! `POST /api/v1/procedures/{id}/receipts`: a procedure's signed receipt (accept, or
//! reject with problems). The signature is the authentication: it must verify with the
//! procedure's receipt certificate. An unverifiable receipt is refused and logged and
//! changes nothing.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_core::events::{EventError, Taken};
use serde_json::json;

use super::ApiState;
use super::problem::Problem;

/// `POST /api/v1/procedures/{id}/receipts|events`. Who is calling is decided before the
/// body is read: an unknown procedure reads nothing; without the procedure's token at
/// most `max_unauthenticated_event_bytes` are read (a receipt), with it up to
/// `max_event_bytes` (a decision with its document). The signature inside still decides
/// whether the event is the procedure's.
pub async fn submit(State(state): State<Arc<ApiState>>, event: Event) -> Response {
    let Event { procedure, bytes } = event;
    match state.hub.events.take(&procedure, bytes).await {
        Ok(answer) => (StatusCode::OK, Json(taken(answer))).into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// `POST /api/v1/procedures/{id}/events/check`: a dry run. The event is read and checked
/// exactly as by [`submit`], against the application as it is now, and nothing is
/// recorded: the answer says whether it would be recorded, or the problem it would get.
pub async fn check(State(state): State<Arc<ApiState>>, event: Event) -> Response {
    let Event { procedure, bytes } = event;
    match state.hub.events.check(&procedure, bytes).await {
        Ok(Taken::Recorded { receipt_id, status }) => (
            StatusCode::OK,
            Json(json!({"receipt_id": receipt_id, "dry_run": true, "would_record": true, "status": status})),
        )
            .into_response(),
        Ok(Taken::Duplicate { receipt_id }) => (
            StatusCode::OK,
            Json(json!({"receipt_id": receipt_id, "dry_run": true, "would_record": false, "duplicate": true})),
        )
            .into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// The event a procedure posts (`/api/v1/procedures/{id}/…`): its bytes, read within the
/// limit that who is calling allows; else the answer, before the handler runs.
pub struct Event {
    procedure: String,
    bytes: Vec<u8>,
}

impl FromRequest<Arc<ApiState>> for Event {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Arc<ApiState>) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Path(procedure) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = read_event(state, &procedure, &parts.headers, body).await?;
        Ok(Self { procedure, bytes })
    }
}

/// The event's bytes, read within the limit that who is calling allows; else the answer.
async fn read_event(
    state: &ApiState,
    procedure: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, Response> {
    let topology = state.hub.topology.now();
    if !topology.destinations.contains_key(procedure) {
        return Err(Problem::not_found().into_response());
    }
    let authenticated = match headers.get(header::AUTHORIZATION) {
        None => false,
        Some(_) if topology.procedures.authenticate(headers) == Some(procedure) => true,
        Some(_) => {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "The bearer token is not this procedure's API token",
            )
            .detail("send the procedure's own token, or none (then an event is at most the unauthenticated limit)")
            .into_response());
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
        return Err(too_large());
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(_) => Err(too_large()),
    }
}

/// The answer for the procedure about an event that was taken.
pub(super) fn taken(taken: Taken) -> serde_json::Value {
    match taken {
        Taken::Recorded { receipt_id, status } => {
            json!({"receipt_id": receipt_id, "recorded": true, "status": status})
        }
        Taken::Duplicate { receipt_id } => {
            json!({"receipt_id": receipt_id, "recorded": false, "duplicate": true})
        }
    }
}

impl From<EventError> for Problem {
    fn from(error: EventError) -> Self {
        let kind = error.kind();
        let unprocessable =
            |title: &str| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, kind, title);
        let conflict = |title: &str| Problem::new(StatusCode::CONFLICT, kind, title);
        match error {
            EventError::UnknownProcedure => Problem::not_found(),
            EventError::NoCertificate(reason) => Problem::new(
                StatusCode::FORBIDDEN,
                kind,
                "This procedure cannot send receipts",
            )
            .detail(reason),
            EventError::Unverifiable(reason) => Problem::new(
                StatusCode::FORBIDDEN,
                kind,
                "The receipt does not verify with the procedure's certificate",
            )
            .detail(reason),
            EventError::Malformed(reason) => unprocessable(
                "The signature verifies, but the signed content is no event of the documented form",
            )
            .detail(reason),
            EventError::MissingField { kind, field } => {
                unprocessable(&format!("A {kind} event needs `{field}`"))
                    .detail(format!("add `{field}` to the event and sign it again"))
            }
            EventError::BadIssuedAt => unprocessable("issued_at must be an RFC 3339 time"),
            EventError::IssuedInTheFuture { skew_secs } => {
                unprocessable("The event is issued in the future").detail(format!(
                    "issued_at may lie at most {skew_secs} seconds ahead of the hub's clock; check the procedure's clock"
                ))
            }
            EventError::TooOld { max_age_secs } => unprocessable("The event is too old").detail(
                format!("an event must arrive within {max_age_secs} seconds of issued_at; issue it anew"),
            ),
            EventError::BadReceiptId => {
                unprocessable("A receipt id has at most 64 characters: letters, digits, - _ . :")
            }
            EventError::NoSuchMessage => unprocessable("The receipt names no message of this hub"),
            EventError::NotDelivered => unprocessable("This procedure was not delivered that message"),
            EventError::BadDocument(reason) => {
                unprocessable("The event's document cannot be accepted").detail(reason)
            }
            EventError::BadFee(reason) => {
                unprocessable("The decision's fee cannot be accepted").detail(reason)
            }
            EventError::BadAppeal(reason) => {
                unprocessable("The decision's appeal information cannot be accepted").detail(reason)
            }
            EventError::ReceiptIdReused => {
                conflict("This receipt id was used for a different receipt")
            }
            EventError::OutOfOrder(current) => {
                conflict("The event does not follow from the application's state")
                    .detail(format!("the application is {}", current.as_str()))
            }
            EventError::AlreadyFinal => conflict("The application is already decided or rejected"),
            EventError::Unavailable(_) => Problem::store_unreachable(),
        }
    }
}
