//! `POST /api/v1/applications`: the HTTP edge of the core's intake service. Who calls,
//! in which media type, with which idempotency key and how big a body, is decided
//! here; what the body says, there.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_core::intake::{Admitted, IntakeError, Submission};
use serde_json::json;
use tokio::time::Instant;

use super::ApiState;
use super::problem::Problem;

pub async fn submit(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    // The service label, once the body names one of ours.
    let mut service = None;
    let (response, outcome) = match accept(&state, &headers, body, &mut service).await {
        Ok(admitted) => {
            let outcome = if admitted.replayed {
                "replayed"
            } else {
                "accepted"
            };
            (accepted_response(&state, &admitted), outcome.to_owned())
        }
        Err(problem) => {
            let outcome = problem
                .kind
                .strip_prefix("urn:kopplung:problem:")
                .unwrap_or("other")
                .to_owned();
            (problem.into_response(), outcome)
        }
    };
    let metrics = &state.hub.metrics;
    metrics
        .intake
        .with_label_values(&[service.as_deref().unwrap_or("unknown"), outcome.as_str()])
        .inc();
    metrics
        .intake_seconds
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn accept(
    state: &ApiState,
    headers: &HeaderMap,
    body: Body,
    service: &mut Option<String>,
) -> Result<Admitted, Problem> {
    let client = super::caller(&state.clients, headers)?;
    if !super::is_json(headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send the application as application/json",
        ));
    }
    let idempotency_key = super::idempotency_key(headers)?;
    let bytes = super::read_limited(body, headers, state.limits.max_body_bytes).await?;
    let outcome = state
        .hub
        .intake
        .accept(Submission {
            client: &client,
            idempotency_key,
            asserts_up_to: state.clients.asserts_up_to(&client),
            body: &bytes,
            id: None,
            reply_channel: None,
        })
        .await;
    *service = outcome.service.map(|key| key.to_string());
    if let Err(IntakeError::Refused(refusal)) = &outcome.result {
        // The reason's kind only: a malformed block's detail may echo personal data.
        let reason = super::refusal::problem(refusal.clone()).kind;
        tracing::info!(%client, %reason, "applicant's identification refused; nothing stored");
    }
    Ok(outcome.result?)
}

impl From<IntakeError> for Problem {
    fn from(error: IntakeError) -> Self {
        match error {
            IntakeError::Malformed(detail) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                "The body is not a valid application",
            )
            .detail(detail),
            IntakeError::Invalid(errors) => Problem::validation(errors),
            IntakeError::NoRoute { service, region } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no-route",
                "No authority is responsible for this service in this region",
            )
            .detail(format!(
                "service {service} cannot be applied for online in region {region}"
            )),
            IntakeError::AttachmentTooLarge { index, max_bytes } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "attachment-too-large",
                "An attachment is too large",
            )
            .detail(format!(
                "attachments[{index}] is larger than {max_bytes} bytes"
            )),
            IntakeError::KeyReused => Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-reused",
                "This Idempotency-Key was used with a different request",
            ),
            IntakeError::StoreUnreachable(_) => Problem::store_unreachable(),
            IntakeError::NotStored(_) => Problem::unavailable(
                "the application could not be stored; nothing was kept, please retry",
            ),
            IntakeError::Refused(refusal) => super::refusal::problem(refusal),
            IntakeError::NoFreeReceipt => Problem::internal().detail("no free receipt number"),
            IntakeError::Internal => Problem::internal(),
        }
    }
}

fn accepted_response(state: &ApiState, admitted: &Admitted) -> Response {
    let location = format!(
        "{}/api/v1/applications/{}",
        state.hub.public_url, admitted.id
    );
    let body = json!({
        "id": admitted.id,
        "receipt": admitted.receipt,
        "status": "accepted",
    });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if admitted.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}
