//! `GET /api/v1/services`: the services that can be applied for, with their forms.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ApiState;

pub async fn list(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let mappings = state.hub.catalog.current();
    let topology = state.hub.topology.now();
    let services: Vec<Value> = mappings
        .values()
        .map(|mapping| {
            json!({
                "key": mapping.info.key,
                "local_key": mapping.info.local,
                "name": mapping.info.name,
                "description": mapping.info.description,
                "online": topology.routing.serves(&mapping.info.key),
                "available_in": mapping.info.available_in,
                "fee": mapping.info.fee,
                "charge": mapping.info.charge,
                "trust_level": mapping.info.trust_level,
                "anonymous": mapping.info.anonymous,
                "documents": mapping.info.documents,
                "keywords": mapping.info.keywords,
                "wording": mapping.info.wording,
                "fields": mapping.form.fields,
                "attachments": mapping.form.attachments,
                "steps": mapping.form.steps,
            })
        })
        .collect();
    Json(json!({ "services": services }))
}
