//! Messages delivered without a receipt past their procedure's deadline: the list, and
//! sending one or all of a procedure's again with the message id unchanged (operators).

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use kopplung_core::oversight::ResendError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppId, Operator, Reader, done, done_all};
use crate::api::problem::Problem;

#[derive(Debug, Deserialize)]
pub struct Filter {
    procedure: Option<String>,
}

/// `GET /api/v1/admin/awaiting-receipt[?procedure=P]`: the overdue messages, oldest
/// first.
pub async fn awaiting_receipt(
    caller: Reader,
    Query(filter): Query<Filter>,
) -> Result<Json<Value>, Problem> {
    let overdue = caller
        .oversight()
        .awaiting_receipt(filter.procedure.as_deref())
        .await?;
    Ok(Json(json!({ "awaiting_receipt": overdue })))
}

/// `POST /api/v1/admin/applications/{id}/resend`: the stored message again, same
/// message id (operators; audited).
pub async fn resend(caller: Operator, AppId(id): AppId) -> Result<Json<Value>, Problem> {
    caller.oversight().resend(id, caller.name()).await?;
    Ok(done(id, "resent"))
}

/// `POST /api/v1/admin/procedures/{id}/resend-overdue`: every overdue message of one
/// procedure again (operators), each audited as a single resend.
pub async fn resend_procedure(
    caller: Operator,
    Path(procedure): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.configured(&procedure)?;
    let resent = caller
        .oversight()
        .resend_overdue(&procedure, caller.name())
        .await?;
    Ok(done_all(&procedure, "resent", resent))
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
