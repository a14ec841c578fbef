//! `GET /api/v1/schemas` and `GET /api/v1/schemas/{folder}/{file}`: the XSDs the hub validates
//! each message type with, as a versioned bundle per message type, so that a vendor
//! validates with exactly these files. Public, like the services list; the mappings in
//! force decide what is served, with the follow-up schema every service's follow-up
//! message types share.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_transformers::follow_up;
use kopplung_transformers::schema_bundle::SchemaBundle;
use serde_json::{Value, json};

use super::ApiState;
use super::problem::Problem;

/// Where a bundle's file is served, relative to the hub.
fn url(path: &str) -> String {
    format!("/api/v1/schemas/{path}")
}

/// One entry of the list: a message type and the bundle that validates it.
fn entry(service: &str, name: &str, message_type: &str, bundle: &SchemaBundle) -> Value {
    let files: Vec<Value> = bundle
        .files
        .iter()
        .map(|file| json!({"path": file.path, "sha256": file.sha256, "url": url(&file.path)}))
        .collect();
    json!({
        "service": service,
        "name": name,
        "message_type": message_type,
        "version": bundle.version,
        "schema": bundle.schema,
        "files": files,
    })
}

pub async fn list(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let mappings = state.hub.catalog.current();
    let mut schemas = Vec::new();
    for mapping in mappings.values() {
        let info = &mapping.info;
        let own = &info.message.message_type;
        schemas.push(entry(&info.key, &info.name, own, &mapping.schemas));
        // The citizen's follow-up messages of the service (`<family>.antwort.0201`, …).
        if let Some(follow_ups) = &mapping.follow_ups {
            for (kind, element) in follow_up::ELEMENTS {
                let name = format!("{} – {kind}", info.name);
                let message_type = follow_up::message_type(own, element);
                schemas.push(entry(&info.key, &name, &message_type, &follow_ups.schemas));
            }
        }
    }
    Json(json!({ "schemas": schemas }))
}

pub async fn file(
    State(state): State<Arc<ApiState>>,
    Path((folder, file)): Path<(String, String)>,
) -> Response {
    let path = format!("{folder}/{file}");
    let mappings = state.hub.catalog.current();
    let Some(file) = mappings.values().find_map(|mapping| {
        mapping.schemas.file(&path).cloned().or_else(|| {
            let follow_ups = mapping.follow_ups.as_ref()?;
            follow_ups.schemas.file(&path).cloned()
        })
    }) else {
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
