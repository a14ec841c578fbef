//! `GET /api/v1/applications/{id}`: status, delivery and history of one application.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;
use crate::store::Status;

pub async fn show(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(client) = state.clients.authenticate(&headers) else {
        return Problem::unauthorized().into_response();
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::not_found().into_response();
    };
    let record = match state.store.application(id).await {
        Ok(Some(record)) if record.client_id == client => record,
        // Another client's application does not exist for this one.
        Ok(_) => return Problem::not_found().into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading an application failed");
            return Problem::unavailable("the store is not reachable").into_response();
        }
    };
    let destination = state.destinations.get(&record.delivery.procedure);
    let state_text = match record.status {
        Status::Accepted | Status::Prepared => match &record.delivery.last_error {
            Some(error) => format!("waiting in the outbox: {error}"),
            None => "in the outbox".to_owned(),
        },
        Status::Delivered => "delivered".to_owned(),
        Status::Received => "received by the procedure".to_owned(),
        Status::Rejected => "rejected by the procedure".to_owned(),
        Status::Invalid => {
            "stopped: the message could not be produced; an engineer must look".to_owned()
        }
        Status::DeadLettered => "stopped: dead-lettered".to_owned(),
    };
    let mut view = match serde_json::to_value(&record) {
        Ok(view) => view,
        Err(_) => return Problem::internal().into_response(),
    };
    view["service_name"] = json!(
        state
            .catalog
            .current()
            .get(&record.service)
            .map(|m| m.info.name.clone())
    );
    view["region_name"] = json!(state.regions.name(&record.region));
    view["delivery"]["transport"] = json!(destination.map(|d| d.transport));
    view["delivery"]["destination"] = json!(destination.map(|d| d.destination.clone()));
    view["delivery"]["state"] = json!(state_text);
    Json(view).into_response()
}
