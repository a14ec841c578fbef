//! The admin API (`Authorization: Bearer <token>`), by role: `operator` (everything)
//! and `auditor` (reading only). Dead letters and their replay (`kopplung deadletters`
//! is the command-line client), search and inspection of applications, the transformed
//! XML (each view recorded in the application's history and audit trail), retry now,
//! and the status of mappings, certificates and procedures.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;
use crate::oversight::{MessageView, view_message};
use crate::store::{ApplicationQuery, Status};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Operator,
    Auditor,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Auditor => "auditor",
        }
    }
}

/// The role the request authenticates as, or 401.
fn role(state: &ApiState, headers: &HeaderMap) -> Result<Role, Problem> {
    match state.admins.authenticate(headers) {
        Some("operator") => Ok(Role::Operator),
        Some("auditor") => Ok(Role::Auditor),
        _ => Err(Problem::unauthorized()),
    }
}

/// Only operators may change anything.
fn operator_only(state: &ApiState, headers: &HeaderMap) -> Result<Role, Problem> {
    match role(state, headers)? {
        Role::Operator => Ok(Role::Operator),
        Role::Auditor => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Auditors may read, not change",
        )),
    }
}

pub async fn dead_letters(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if let Err(problem) = role(&state, &headers) {
        return problem.into_response();
    }
    match state.store.dead_letters().await {
        Ok(letters) => Json(json!({ "dead_letters": letters })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading dead letters failed");
            Problem::unavailable("the store is not reachable").into_response()
        }
    }
}

pub async fn dead_letter(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(problem) = role(&state, &headers) {
        return problem.into_response();
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::not_found().into_response();
    };
    match state.store.dead_letters().await {
        Ok(letters) => match letters.into_iter().find(|l| l.application_id == id) {
            Some(letter) => Json(letter).into_response(),
            None => Problem::not_found().into_response(),
        },
        Err(e) => {
            tracing::error!(error = %e, "reading dead letters failed");
            Problem::unavailable("the store is not reachable").into_response()
        }
    }
}

pub async fn replay(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let operator = match operator_only(&state, &headers) {
        Ok(role) => role.name(),
        Err(problem) => return problem.into_response(),
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::not_found().into_response();
    };
    match state.store.replay(id, operator).await {
        Ok(true) => {
            tracing::info!(application_id = %id, %operator, "dead letter replayed");
            state.wake.notify_one();
            Json(json!({ "application_id": id, "replayed": true })).into_response()
        }
        Ok(false) => Problem::not_found()
            .detail("no dead letter for this application")
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "replaying a dead letter failed");
            Problem::unavailable("the store is not reachable").into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    receipt: Option<String>,
    service: Option<String>,
    procedure: Option<String>,
    status: Option<String>,
    /// RFC 3339: accepted at or after.
    from: Option<String>,
    /// RFC 3339: accepted before.
    until: Option<String>,
    limit: Option<u32>,
}

fn bad_query(detail: String) -> Response {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-query",
        "The search parameters are invalid",
    )
    .detail(detail)
    .into_response()
}

/// `GET /api/v1/admin/applications`: search by receipt, service, procedure, state, time.
pub async fn search(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    if let Err(problem) = role(&state, &headers) {
        return problem.into_response();
    }
    let Ok(Query(query)) = query else {
        return bad_query("limit must be a whole number".into());
    };
    let time = |value: &Option<String>, name: &str| match value {
        None => Ok(None),
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map(Some)
            .map_err(|_| format!("{name} must be an RFC 3339 time, e.g. 2026-11-30T00:00:00Z")),
    };
    let status = match query.status.as_deref().map(Status::parse) {
        None => None,
        Some(Some(status)) => Some(status),
        Some(None) => return bad_query("status is not a state of an application".into()),
    };
    let (from, until) = match (time(&query.from, "from"), time(&query.until, "until")) {
        (Ok(from), Ok(until)) => (from, until),
        (Err(e), _) | (_, Err(e)) => return bad_query(e),
    };
    let query = ApplicationQuery {
        receipt: query.receipt,
        service: query.service,
        procedure: query.procedure,
        status,
        from,
        until,
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
    };
    match state.store.search(&query).await {
        Ok(found) => Json(json!({ "applications": found })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "searching applications failed");
            Problem::unavailable("the store is not reachable").into_response()
        }
    }
}

/// `GET /api/v1/admin/applications/{id}`: state, delivery, history and the audit trail.
pub async fn application(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(problem) = role(&state, &headers) {
        return problem.into_response();
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::not_found().into_response();
    };
    let (record, audit) = match (
        state.store.application(id).await,
        state.store.audit_entries(id).await,
    ) {
        (Ok(Some(record)), Ok(audit)) => (record, audit),
        (Ok(None), _) => return Problem::not_found().into_response(),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "reading an application failed");
            return Problem::unavailable("the store is not reachable").into_response();
        }
    };
    let destination = state.destinations.get(&record.delivery.procedure).cloned();
    let mut view = serde_json::to_value(&record).unwrap_or_default();
    view["client"] = json!(record.client_id);
    view["delivery"]["transport"] = json!(destination.as_ref().map(|d| d.transport));
    view["delivery"]["destination"] = json!(destination.map(|d| d.destination));
    view["audit"] = json!(audit);
    Json(view).into_response()
}

/// `GET /api/v1/admin/applications/{id}/message`: the XÖV message as the mapping renders
/// it (not sealed). Personal data: each view is recorded before it is shown.
pub async fn message(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let role = match role(&state, &headers) {
        Ok(role) => role,
        Err(problem) => return problem.into_response(),
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::not_found().into_response();
    };
    match view_message(&state, id, role.name(), "admin API").await {
        MessageView::Xml { xml, .. } => {
            let mut response = xml.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        MessageView::NotFound => Problem::not_found().into_response(),
        MessageView::Purged => Problem::new(
            StatusCode::GONE,
            "purged",
            "The personal data of this application was deleted (retention)",
        )
        .into_response(),
        MessageView::NotRenderable(reason) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-renderable",
            "The mapping in force cannot render this application",
        )
        .detail(reason)
        .into_response(),
        MessageView::Unavailable => {
            Problem::unavailable("the store is not reachable").into_response()
        }
        MessageView::Internal => Problem::internal().into_response(),
    }
}

/// `POST /api/v1/admin/applications/{id}/retry`: the next attempt now (operators).
pub async fn retry(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let role = match operator_only(&state, &headers) {
        Ok(role) => role,
        Err(problem) => return problem.into_response(),
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::not_found().into_response();
    };
    let detail = format!("next attempt requested now by {}", role.name());
    match state.store.retry_now(id, &detail).await {
        Ok(true) => {
            state.wake.notify_one();
            Json(json!({ "application_id": id, "retrying": true })).into_response()
        }
        Ok(false) => Problem::new(
            StatusCode::CONFLICT,
            "nothing-to-retry",
            "Nothing of this application waits for an attempt",
        )
        .detail("it is delivered, being worked on right now, a dead letter (replay it), or unknown")
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "retry now failed");
            Problem::unavailable("the store is not reachable").into_response()
        }
    }
}

/// `GET /api/v1/admin/status`: mappings, certificates, procedures and their backlog.
pub async fn status(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if let Err(problem) = role(&state, &headers) {
        return problem.into_response();
    }
    let report = match crate::oversight::gather(&state).await {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(error = %e, "reading the backlog failed");
            return Problem::unavailable("the store is not reachable").into_response();
        }
    };
    let mappings: Vec<_> = report
        .mappings
        .iter()
        .map(|m| {
            json!({
                "service": m.service,
                "name": m.name,
                "message_type": m.message_type,
                "online": m.online,
            })
        })
        .collect();
    let certificates: Vec<_> = report
        .certificates
        .iter()
        .map(|c| json!({"owner": c.owner, "certificate": c.certificate, "days_left": c.days_left}))
        .collect();
    let procedures: Vec<_> = report
        .procedures
        .iter()
        .map(|p| {
            json!({
                "procedure": p.procedure,
                "transport": p.transport,
                "destination": p.destination,
                "pending": p.pending,
                "oldest_since": p.oldest_since.and_then(|t| t.format(&Rfc3339).ok()),
                "blocked": p.blocked,
            })
        })
        .collect();
    Json(json!({
        "mappings": mappings,
        "certificates": certificates,
        "procedures": procedures,
    }))
    .into_response()
}
