//! The admin API (`Authorization: Bearer <token>`), by role: `operator` (everything)
//! and `auditor` (reading only). Dead letters and their replay (`kopplung deadletters`
//! is the command-line client), search and inspection of applications, the transformed
//! XML (each view recorded in the application's history and audit trail), retry now,
//! and the status of mappings, certificates and procedures.

pub mod overdue;

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_core::oversight::{
    ActionError, LookupError, MessageSource, Oversight, ReplayError, ReprocessError, RetryError,
    SearchCriteria, SearchError, StatusReport, Unavailable, ViewError,
};
use serde::Serialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;

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

/// An admin request: the API's state and the caller's role, which every handler needs.
/// `CHANGES`: the request changes something, which only operators may; otherwise any
/// admin role reads. 401 or 403 before the handler runs.
pub struct Caller<const CHANGES: bool> {
    state: Arc<ApiState>,
    role: Role,
}

/// The caller of a request that only reads.
pub type Reader = Caller<false>;

/// The caller of a request that changes something.
pub type Operator = Caller<true>;

impl<const CHANGES: bool> FromRequestParts<Arc<ApiState>> for Caller<CHANGES> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, Problem> {
        let role = if CHANGES {
            operator_only(state, &parts.headers)?
        } else {
            role(state, &parts.headers)?
        };
        Ok(Self {
            state: state.clone(),
            role,
        })
    }
}

impl<const CHANGES: bool> Caller<CHANGES> {
    fn oversight(&self) -> &Oversight {
        &self.state.hub.oversight
    }

    /// Who did it, for the audit trail.
    fn name(&self) -> &'static str {
        self.role.name()
    }

    /// A bulk action names a procedure of the configuration: one no longer configured
    /// has no sink, and what it put back would wait for ever.
    fn configured(&self, procedure: &str) -> Result<(), Problem> {
        if self
            .state
            .hub
            .topology
            .now()
            .destinations
            .contains_key(procedure)
        {
            Ok(())
        } else {
            Err(Problem::not_found().detail("no such procedure in the configuration"))
        }
    }
}

/// The answer to an action on one application: `{"application_id": …, <done>: true}`.
fn done(id: Uuid, done: &str) -> Json<Value> {
    let mut answer = json!({ "application_id": id });
    answer[done] = json!(true);
    Json(answer)
}

/// The answer to an action on every application of a procedure it applies to:
/// `{"procedure": …, <done>: [their ids]}`.
fn done_all(procedure: &str, done: &str, ids: impl Serialize) -> Json<Value> {
    let mut answer = json!({ "procedure": procedure });
    answer[done] = json!(ids);
    Json(answer)
}

/// The application id of the path; one that is no UUID names nothing (404).
pub struct AppId(Uuid);

impl<S: Send + Sync> FromRequestParts<S> for AppId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::not_found())?;
        Uuid::parse_str(&id)
            .map(Self)
            .map_err(|_| Problem::not_found())
    }
}

pub async fn dead_letters(caller: Reader) -> Result<Json<Value>, Problem> {
    let letters = caller.oversight().dead_letters().await?;
    Ok(Json(json!({ "dead_letters": letters })))
}

pub async fn dead_letter(caller: Reader, AppId(id): AppId) -> Result<Response, Problem> {
    let letter = caller.oversight().dead_letter(id).await?;
    Ok(Json(letter).into_response())
}

pub async fn replay(caller: Operator, AppId(id): AppId) -> Result<Json<Value>, Problem> {
    caller.oversight().replay(id, caller.name()).await?;
    Ok(done(id, "replayed"))
}

/// `POST /api/v1/admin/procedures/{id}/deadletters/replay`: every dead letter of one
/// procedure back into the outbox (operators), each audited as a single replay.
pub async fn replay_procedure(
    caller: Operator,
    Path(procedure): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.configured(&procedure)?;
    let replayed = caller
        .oversight()
        .replay_all(&procedure, caller.name())
        .await?;
    Ok(done_all(&procedure, "replayed", replayed))
}

/// `POST /api/v1/admin/reload` (operators): reads the configuration again, as SIGHUP
/// does — the routing table with the keys, and the mappings. 200 with what is in force;
/// 422 naming what was refused (the old stays in force for that part).
pub async fn reload(caller: Operator) -> Response {
    tracing::info!(
        operator = caller.name(),
        "reload requested over the admin API"
    );
    let report = caller.state.reloader.reload().await;
    if let (Ok(routing), Ok(services)) = (&report.routing, &report.mappings) {
        return Json(json!({
            "routing": routing,
            "mappings": {"services": services},
        }))
        .into_response();
    }
    let part = |name: &str, outcome: Result<String, &String>| match outcome {
        Ok(applied) => format!("{name}: applied ({applied})"),
        Err(e) => format!("{name}: refused: {e}"),
    };
    let detail = [
        part(
            "routing table and keys",
            report
                .routing
                .as_ref()
                .map(|a| format!("{} procedures, {} routes", a.procedures, a.routes)),
        ),
        part(
            "mappings",
            report.mappings.as_ref().map(|n| format!("{n} services")),
        ),
    ]
    .join("; ");
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "reload-refused",
        "The configuration was not reloaded completely; what was refused stays as it was",
    )
    .detail(detail)
    .into_response()
}

fn bad_query(detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-query",
        "The search parameters are invalid",
    )
    .detail(detail)
}

/// `GET /api/v1/admin/applications`: search by receipt, service, procedure, state, time.
pub async fn search(
    caller: Reader,
    query: Result<Query<SearchCriteria>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Ok(Query(criteria)) = query else {
        return Err(bad_query("limit must be a whole number".into()));
    };
    let query = criteria.query()?;
    let found = caller.oversight().search(&query).await?;
    Ok(Json(json!({ "applications": found })))
}

/// `GET /api/v1/admin/applications/{id}`: state, delivery, history and the audit trail.
pub async fn application(caller: Reader, AppId(id): AppId) -> Result<Json<Value>, Problem> {
    let found = caller.oversight().application(id).await?;
    let record = &found.record;
    let topology = caller.state.hub.topology.now();
    let destination = topology.destinations.get(&record.delivery.procedure);
    let mut view = serde_json::to_value(record).unwrap_or_default();
    view["client"] = json!(record.client_id);
    view["delivery"]["transport"] = json!(destination.map(|d| d.transport));
    view["delivery"]["destination"] = json!(destination.map(|d| &d.destination));
    view["audit"] = json!(found.audit);
    Ok(Json(view))
}

/// `GET /api/v1/admin/applications/{id}/message`: the XÖV message as it was signed and
/// sealed (not sealed here), or — without a kept copy — rendered by the mapping in
/// force; `x-message-source` says which. Personal data: each view is recorded before it
/// is shown.
pub async fn message(caller: Reader, AppId(id): AppId) -> Result<Response, Problem> {
    let viewed = caller
        .oversight()
        .view_message(id, caller.name(), "admin API")
        .await?;
    let note = match viewed.source {
        MessageSource::AsSent => "The XML as it was signed and sealed for the procedure.",
        MessageSource::Rerendered => {
            "Re-rendered now with the mapping in force: no copy of the sealed XML is kept (not prepared yet, or prepared before the hub kept one). It may differ from what the procedure received."
        }
    };
    let mut response = viewed.xml.into_response();
    let headers = response.headers_mut();
    headers.insert(
        "x-message-source",
        HeaderValue::from_static(viewed.source.as_str()),
    );
    headers.insert("x-message-source-note", HeaderValue::from_static(note));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// `POST /api/v1/admin/applications/{id}/retry`: the next attempt now (operators).
pub async fn retry(caller: Operator, AppId(id): AppId) -> Result<Json<Value>, Problem> {
    caller.oversight().retry_now(id, caller.name()).await?;
    Ok(done(id, "retrying"))
}

/// `POST /api/v1/admin/applications/{id}/reprocess` (operators): an `invalid` application
/// rendered and sealed again with the mapping now in force, its message id unchanged.
pub async fn reprocess(caller: Operator, AppId(id): AppId) -> Result<Json<Value>, Problem> {
    caller.oversight().reprocess(id, caller.name()).await?;
    Ok(done(id, "reprocessing"))
}

/// `GET /api/v1/admin/status`: mappings, certificates, procedures and their backlog.
pub async fn status(caller: Reader) -> Result<Json<Value>, Problem> {
    let report = caller.oversight().status().await?;
    Ok(Json(status_json(&report)))
}

/// The status report as the admin API shows it.
fn status_json(report: &StatusReport) -> Value {
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
    json!({
        "mappings": mappings,
        "certificates": certificates,
        "procedures": procedures,
    })
}

impl From<Unavailable> for Problem {
    fn from(_: Unavailable) -> Self {
        Problem::store_unreachable()
    }
}

impl From<LookupError> for Problem {
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::NotFound => Problem::not_found(),
            LookupError::Unavailable(_) => Problem::store_unreachable(),
        }
    }
}

/// An operator's action refused: the store's failure, or `nothing` (there was nothing to
/// act on).
fn refused(error: impl ActionError, nothing: impl FnOnce() -> Problem) -> Problem {
    match error.store_failure() {
        Some(_) => Problem::store_unreachable(),
        None => nothing(),
    }
}

impl From<ReplayError> for Problem {
    fn from(error: ReplayError) -> Self {
        refused(error, || {
            Problem::not_found().detail("no dead letter for this application")
        })
    }
}

impl From<ReprocessError> for Problem {
    fn from(error: ReprocessError) -> Self {
        refused(error, || {
            Problem::new(
                StatusCode::CONFLICT,
                "not-invalid",
                "The application is not invalid",
            )
            .detail(
                "only an application its mapping could not render is reprocessed, or it is unknown",
            )
        })
    }
}

impl From<RetryError> for Problem {
    fn from(error: RetryError) -> Self {
        refused(error, || {
            Problem::new(
                StatusCode::CONFLICT,
                "nothing-to-retry",
                "Nothing of this application waits for an attempt",
            )
            .detail(
                "it is delivered, being worked on right now, a dead letter (replay it), or unknown",
            )
        })
    }
}

impl From<SearchError> for Problem {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::BadQuery(detail) => bad_query(detail),
            SearchError::Unavailable(_) => Problem::store_unreachable(),
        }
    }
}

impl From<ViewError> for Problem {
    fn from(error: ViewError) -> Self {
        match error {
            ViewError::NotFound => Problem::not_found(),
            ViewError::Purged => Problem::new(
                StatusCode::GONE,
                "purged",
                "The personal data of this application was deleted (retention)",
            ),
            ViewError::NotRenderable(reason) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-renderable",
                "The mapping in force cannot render this application",
            )
            .detail(reason),
            ViewError::Unavailable(_) => Problem::store_unreachable(),
            ViewError::Internal => Problem::internal(),
        }
    }
}
