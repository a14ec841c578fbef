//! `GET /api/v1/schemas` and `GET /api/v1/schemas/{folder}/{file}`: the XSDs the hub validates
//! each message type with, as a versioned bundle per message type, so that a vendor
//! validates with exactly these files. Public, like the services list; the mappings in
//! force decide what is served.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ApiState;
use super::problem::Problem;

/// Where a bundle's file is served, relative to the hub.
fn url(path: &str) -> String {
    format!("/api/v1/schemas/{path}")
}

pub async fn list(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let mappings = state.hub.catalog.current();
    let schemas: Vec<Value> = mappings
        .values()
        .map(|mapping| {
            let bundle = &mapping.schemas;
            let files: Vec<Value> = bundle
                .files
                .iter()
                .map(|file| json!({"path": file.path, "sha256": file.sha256, "url": url(&file.path)}))
                .collect();
            json!({
                "service": mapping.info.key,
                "name": mapping.info.name,
                "message_type": mapping.info.message.message_type,
                "version": bundle.version,
                "schema": bundle.schema,
                "files": files,
            })
        })
        .collect();
    Json(json!({ "schemas": schemas }))
}

pub async fn file(
    State(state): State<Arc<ApiState>>,
    Path((folder, file)): Path<(String, String)>,
) -> Response {
    let path = format!("{folder}/{file}");
    let mappings = state.hub.catalog.current();
    let Some(file) = mappings
        .values()
        .find_map(|mapping| mapping.schemas.file(&path).cloned())
    else {
        return Problem::not_found().into_response();
    };
    let mut response = (StatusCode::OK, file.content).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", file.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    response
}
