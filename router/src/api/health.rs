//! `/healthz` (the process serves) and `/readyz` (it can do its work: store reachable,
//! broker connected, mappings loaded), plus the backlog per procedure.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;

pub async fn ready(State(state): State<Arc<ApiState>>) -> Response {
    let store = match state.hub.store.backlog().await {
        Ok(backlog) => Ok(backlog),
        Err(e) => Err(e.to_string()),
    };
    let mut brokers = Vec::new();
    for broker in &state.brokers {
        let checked = tokio::time::timeout(Duration::from_secs(3), broker.check())
            .await
            .unwrap_or_else(|_| Err("no answer within 3s".into()));
        brokers.push(json!({
            "broker": broker.config().redacted_url(),
            "connected": checked.is_ok(),
            "error": checked.err(),
        }));
    }
    let mappings = state.hub.catalog.current().len();
    let ready = store.is_ok() && mappings > 0 && brokers.iter().all(|b| b["connected"] == true);
    let body = json!({
        "ready": ready,
        "store": match &store { Ok(_) => json!("ok"), Err(e) => json!(e) },
        "brokers": brokers,
        "mappings": mappings,
        // Intake goes on while a broker is down: applications wait in the outbox.
        "backlog": store.ok(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
