//! `GET /api/v1/changes?after=&limit=`: the change feed of the calling client — the
//! state changes of its own applications, in order, with a cursor (the rule in
//! `kopplung_core::changes`). No personal data: ids, receipt numbers, states, times.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kopplung_core::changes;

use super::ApiState;
use super::problem::Problem;

fn bad_query(detail: &str) -> Response {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-query",
        "The feed's parameters are invalid",
    )
    .detail(detail)
    .into_response()
}

pub async fn feed(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Some(client) = state.clients.authenticate(&headers) else {
        return Problem::unauthorized().into_response();
    };
    let Ok(Query(query)) = query else {
        return bad_query("the query string is not of the form after=<n>&limit=<n>");
    };
    let after = match query.get("after").map(|a| a.parse::<i64>()) {
        None => 0,
        Some(Ok(after)) if after >= 0 => after,
        Some(_) => return bad_query("after: a cursor the feed answered (0 or more)"),
    };
    let limit = match query.get("limit").map(|l| l.parse::<u32>()) {
        None => changes::DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=changes::MAX_LIMIT).contains(&limit) => limit,
        Some(_) => return bad_query("limit: a number from 1 to 500"),
    };
    let now = state.hub.clock.now();
    match changes::page(
        &*state.hub.store,
        client,
        after,
        limit,
        now,
        changes::SETTLE,
    )
    .await
    {
        Ok(page) => Json(page).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading the change feed failed");
            Problem::store_unreachable().into_response()
        }
    }
}
