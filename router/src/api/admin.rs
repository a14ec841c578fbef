//! The admin API for operators (`Authorization: Bearer <admin token>`): dead letters and
//! their replay. `kopplung deadletters` is its command-line client.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;

/// The operator the request authenticates, if any.
fn operator<'a>(state: &'a ApiState, headers: &HeaderMap) -> Option<&'a str> {
    state.admins.authenticate(headers)
}

pub async fn dead_letters(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if operator(&state, &headers).is_none() {
        return Problem::unauthorized().into_response();
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
    if operator(&state, &headers).is_none() {
        return Problem::unauthorized().into_response();
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
    let Some(operator) = operator(&state, &headers).map(str::to_owned) else {
        return Problem::unauthorized().into_response();
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::not_found().into_response();
    };
    match state
        .store
        .replay(id, &format!("operator {operator}"))
        .await
    {
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
