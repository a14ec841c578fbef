//! The router's public HTTP API (JSON; errors as RFC 7807 problem details).

mod admin;
mod applications;
mod attachments;
mod changes;
/// The API's bearer tokens (`crate::auth`), where the handlers have always found them.
pub use crate::auth;
pub(crate) use attachments::plain_body;
mod directory;
mod health;
mod intake;
mod messages;
pub mod problem;
pub mod pull;
pub use pull::sealed_message;
mod receipts;
mod refusal;
mod schemas;
mod services;
mod trust;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::config::Limits;
use crate::context::Hub;

/// What the API's handlers share: the hub's context, and what only HTTP needs.
pub struct ApiState {
    pub hub: Arc<Hub>,
    pub clients: auth::Clients,
    /// The brokers of the AMQP procedures, for `/readyz`.
    pub brokers: Vec<Arc<kopplung_adapters::amqp::AmqpBroker>>,
    /// Operators of the admin API.
    pub admins: auth::Clients,
    pub limits: Limits,
    /// Reloads the configuration (`POST /api/v1/admin/reload`, as SIGHUP does).
    pub reloader: Arc<crate::reload::Reloader>,
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/applications", post(intake::submit))
        .route("/api/v1/applications/{id}", get(applications::show))
        .route("/api/v1/applications/{id}/messages", post(messages::send))
        .route("/api/v1/changes", get(changes::feed))
        .route("/api/v1/services", get(services::list))
        .route("/api/v1/regions", get(directory::regions))
        .route("/api/v1/trust", get(trust::show))
        .route("/api/v1/authorities", get(directory::authorities))
        .route("/api/v1/authorities/{id}", get(directory::authority))
        .route("/api/v1/responsibility", get(directory::responsibility))
        .route("/api/v1/admin/deadletters", get(admin::dead_letters))
        .route("/api/v1/admin/deadletters/{id}", get(admin::dead_letter))
        .route("/api/v1/admin/deadletters/{id}/replay", post(admin::replay))
        .route(
            "/api/v1/admin/procedures/{id}/deadletters/replay",
            post(admin::replay_procedure),
        )
        .route("/api/v1/admin/applications", get(admin::search))
        .route("/api/v1/admin/applications/{id}", get(admin::application))
        .route(
            "/api/v1/admin/applications/{id}/message",
            get(admin::message),
        )
        .route("/api/v1/admin/applications/{id}/retry", post(admin::retry))
        .route(
            "/api/v1/admin/applications/{id}/reprocess",
            post(admin::reprocess),
        )
        .route("/api/v1/admin/status", get(admin::status))
        .route("/api/v1/admin/reload", post(admin::reload))
        .route(
            "/api/v1/admin/awaiting-receipt",
            get(admin::overdue::awaiting_receipt),
        )
        .route(
            "/api/v1/admin/applications/{id}/resend",
            post(admin::overdue::resend),
        )
        .route(
            "/api/v1/admin/procedures/{id}/resend-overdue",
            post(admin::overdue::resend_procedure),
        )
        .route("/api/v1/procedures/{id}/messages", get(pull::list))
        .route(
            "/api/v1/procedures/{id}/messages/{message}",
            get(pull::fetch),
        )
        .route(
            "/api/v1/procedures/{id}/messages/{message}/ack",
            post(pull::acknowledge),
        )
        .route(
            "/api/v1/procedures/{id}/messages/{message}/attachments/{n}/{k}",
            get(attachments::fragment),
        )
        .route("/api/v1/attachments", post(attachments::upload))
        .route("/api/v1/procedures/{id}/receipts", post(receipts::submit))
        .route("/api/v1/procedures/{id}/events", post(receipts::submit))
        .route(
            "/api/v1/procedures/{id}/events/check",
            post(receipts::check),
        )
        .route(
            "/api/v1/applications/{id}/documents/{document}",
            get(applications::document),
        )
        .route("/api/v1/schemas", get(schemas::list))
        .route("/api/v1/schemas/{folder}/{file}", get(schemas::file))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { problem::Problem::not_found().into_response() })
        // A known path with another method: a problem document too, not an empty 405.
        .method_not_allowed_fallback(|| async {
            problem::Problem::method_not_allowed().into_response()
        })
        // Intake enforces its own limit and answers with a problem document.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// `/readyz` and `/metrics`: on the public listener or their own (`[monitoring]`),
/// only for the bearer of `token` if one is configured.
pub fn monitoring(state: Arc<ApiState>, token: Option<auth::Clients>) -> Router {
    let routes = Router::new()
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics))
        .with_state(state);
    match token {
        None => routes,
        Some(token) => routes.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let allowed = token.authenticate(request.headers()).is_some();
                async move {
                    if allowed {
                        next.run(request).await
                    } else {
                        problem::Problem::new(
                            axum::http::StatusCode::UNAUTHORIZED,
                            "unauthorized",
                            "Monitoring needs the monitoring token",
                        )
                        .into_response()
                    }
                }
            },
        )),
    }
}

/// The OpenAPI 3.1 description of every public API of the hub (kept true by
/// `tests/tests/openapi.rs`, which checks real answers against it).
async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
}

/// The Prometheus exposition; gauges of the store and the certificates are read now.
async fn metrics(axum::extract::State(state): axum::extract::State<Arc<ApiState>>) -> String {
    let hub = &state.hub;
    let metrics = &hub.metrics;
    let topology = hub.topology.now();
    match hub.store.backlog().await {
        Ok(backlog) => {
            let now = hub.clock.now();
            // Every configured procedure has a series, 0 when nothing waits.
            for procedure in topology.destinations.keys() {
                metrics.backlog.with_label_values(&[procedure]).set(0.0);
                metrics
                    .oldest_pending_seconds
                    .with_label_values(&[procedure])
                    .set(0.0);
            }
            for entry in backlog {
                let procedure = entry.procedure.as_str();
                metrics
                    .backlog
                    .with_label_values(&[procedure])
                    .set(entry.pending as f64);
                let age = entry
                    .oldest_since
                    .map_or(0.0, |since| (now - since).as_seconds_f64().max(0.0));
                metrics
                    .oldest_pending_seconds
                    .with_label_values(&[procedure])
                    .set(age);
            }
        }
        Err(e) => tracing::error!(error = %e, "reading the backlog for /metrics failed"),
    }
    // A failure is logged where it happened; the gauges keep their last values.
    if let Ok(overdue) = hub.oversight.awaiting_receipt(None).await {
        for procedure in topology.destinations.keys() {
            let count = overdue.iter().filter(|a| &a.procedure == procedure).count();
            metrics
                .awaiting_receipt
                .with_label_values(&[procedure])
                .set(count as f64);
        }
    }
    for (owner, certificate, days) in hub.keyring.certificate_expiries() {
        metrics
            .certificate_expiry_days
            .with_label_values(&[owner.as_str(), certificate.as_str()])
            .set(days);
    }
    metrics.render()
}

/// The submitting client a request authenticates as, or 401.
pub(crate) fn caller(
    clients: &auth::Clients,
    headers: &axum::http::HeaderMap,
) -> Result<String, problem::Problem> {
    clients
        .authenticate(headers)
        .map(str::to_owned)
        .ok_or_else(problem::Problem::unauthorized)
}

/// The problem document the events API answers for a refused event, for a refusal that
/// is not an HTTP answer (an event file of a `file` procedure).
pub fn event_problem(refused: kopplung_core::events::EventError) -> Vec<u8> {
    serde_json::to_vec_pretty(&problem::Problem::from(refused)).unwrap_or_default()
}

/// The request's `Idempotency-Key`, if it has one: 1 to 255 visible ASCII characters.
pub(super) fn idempotency_key(
    headers: &axum::http::HeaderMap,
) -> Result<Option<&str>, problem::Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        // Visible characters only: no control characters (TAB is valid in a header
        // value) and no spaces, which logs and tools would mangle.
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(Some)
        .ok_or_else(|| {
            problem::Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "bad-idempotency-key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })
}

/// Whether the request says its body is `application/json`.
pub(crate) fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// The whole body, at most `limit` bytes: refused early by its declared length, else
/// while it is read.
pub(crate) async fn read_limited(
    body: axum::body::Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
) -> Result<axum::body::Bytes, problem::Problem> {
    let too_large =
        || problem::Problem::too_large("body-too-large", "The request body is too large", limit);
    if declared_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over_limit = e
            .into_inner()
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some();
        if over_limit {
            too_large()
        } else {
            problem::Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "malformed",
                "The request body could not be read",
            )
        }
    })
}

/// The body length the client declares (`Content-Length`), to refuse early.
pub(super) fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}
