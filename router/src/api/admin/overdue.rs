//! Messages delivered without a receipt past their procedure's deadline: the list, and
//! sending one or all of a procedure's again with the message id unchanged (operators).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kopplung_core::oversight::ResendError;
use serde::Deserialize;
use serde_json::json;

use super::{AppId, Caller, Operator, Reader};
use crate::api::ApiState;
use crate::api::problem::Problem;

#[derive(Debug, Deserialize)]
pub struct Filter {
    procedure: Option<String>,
}

/// `GET /api/v1/admin/awaiting-receipt[?procedure=P]`: the overdue messages, oldest
/// first.
pub async fn awaiting_receipt(
    State(state): State<Arc<ApiState>>,
    Caller(_): Reader,
    Query(filter): Query<Filter>,
) -> Result<Response, Problem> {
    let overdue = state
        .hub
        .oversight
        .awaiting_receipt(filter.procedure.as_deref())
        .await?;
    Ok(Json(json!({ "awaiting_receipt": overdue })).into_response())
}

/// `POST /api/v1/admin/applications/{id}/resend`: the stored message again, same
/// message id (operators; audited).
pub async fn resend(
    State(state): State<Arc<ApiState>>,
    Caller(operator): Operator,
    AppId(id): AppId,
) -> Result<Response, Problem> {
    state.hub.oversight.resend(id, operator.name()).await?;
    Ok(Json(json!({ "application_id": id, "resent": true })).into_response())
}

/// `POST /api/v1/admin/procedures/{id}/resend-overdue`: every overdue message of one
/// procedure again (operators), each audited as a single resend.
pub async fn resend_procedure(
    State(state): State<Arc<ApiState>>,
    Caller(operator): Operator,
    Path(procedure): Path<String>,
) -> Result<Response, Problem> {
    super::configured(&state, &procedure)?;
    let resent = state
        .hub
        .oversight
        .resend_overdue(&procedure, operator.name())
        .await?;
    Ok(Json(json!({ "procedure": procedure, "resent": resent })).into_response())
}

impl From<ResendError> for Problem {
    fn from(error: ResendError) -> Self {
        match error {
            ResendError::NothingToResend => Problem::new(
                StatusCode::CONFLICT,
                "nothing-to-resend",
                "This application is not delivered without a receipt",
            )
            .detail(
                "it has its receipt, is still in the outbox, a dead letter, or its procedure sends no receipts (a clerk inbox)",
            ),
            ResendError::Unknown => Problem::not_found().detail(
                "no application has this id (`kopplung awaiting-receipt list` shows the application id of each overdue message)",
            ),
            // Still `not-found` (no application has this id); the detail names the one
            // to resend.
            ResendError::MessageIdOf(application) => Problem::not_found().detail(format!(
                "this is not an application id but the message id of application {application}: resend that (`kopplung awaiting-receipt resend {application}`)"
            )),
            ResendError::Unavailable(_) => Problem::store_unreachable(),
        }
    }
}
