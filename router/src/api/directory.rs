//! Public, read-only directory data for portals: the municipalities (`/regions`), the
//! authorities of the routing table (`/authorities`, the Behördenkatalog) and who is
//! responsible for a service in a municipality (`/responsibility`, the
//! Zuständigkeitsfinder). No authentication: all of it is public information.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kopplung_web::contact::Contact;
use serde::Serialize;
use serde_json::{Value, json};

use super::ApiState;
use super::problem::Problem;
use crate::config::Authority;
use crate::regions::is_ars;

/// An authority as the Behördenkatalog shows it: public information only.
#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(flatten)]
    contact: &'a Contact,
    /// The services routed to any of its procedures (not in `/responsibility`).
    #[serde(skip_serializing_if = "Option::is_none")]
    services: Option<Vec<String>>,
}

impl<'a> Listed<'a> {
    fn new(authority: &'a Authority) -> Self {
        Self {
            id: &authority.id,
            name: &authority.name,
            contact: &authority.contact,
            services: None,
        }
    }

    fn with_services(state: &ApiState, authority: &'a Authority) -> Self {
        Self {
            services: Some(services_of(state, &authority.id)),
            ..Self::new(authority)
        }
    }
}

fn bad_query(detail: &str) -> Response {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-query",
        "The query parameters are invalid",
    )
    .detail(detail)
    .into_response()
}

/// `GET /api/v1/regions?q=`: municipalities whose name contains `q` (any case) or
/// whose ARS starts with it; all of them without `q`.
pub async fn regions(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let needle = query
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .unwrap_or_default();
    let regions: Vec<Value> = state
        .hub
        .regions
        .iter()
        .filter(|(ars, name)| {
            needle.is_empty() || ars.starts_with(&needle) || name.to_lowercase().contains(&needle)
        })
        .map(|(ars, name)| json!({ "ars": ars, "name": name }))
        .collect();
    Json(json!({ "regions": regions }))
}

/// `GET /api/v1/authorities`: the Behördenkatalog, with the services each one serves.
pub async fn authorities(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let topology = state.hub.topology.now();
    let list: Vec<Listed> = topology
        .authorities
        .iter()
        .map(|a| Listed::with_services(&state, a))
        .collect();
    Json(json!({ "authorities": list }))
}

/// `GET /api/v1/authorities/{id}`: one authority, or 404.
pub async fn authority(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let topology = state.hub.topology.now();
    match topology.authorities.iter().find(|a| a.id == id) {
        Some(a) => Json(Listed::with_services(&state, a)).into_response(),
        None => Problem::not_found().into_response(),
    }
}

/// The service keys routed to any procedure of the authority.
fn services_of(state: &ApiState, authority: &str) -> Vec<String> {
    let mappings = state.hub.catalog.current();
    let topology = state.hub.topology.now();
    mappings
        .values()
        .filter(|m| {
            topology
                .routing
                .procedures_of(&m.info.key)
                .any(|p| topology.procedure_authority.get(p).map(String::as_str) == Some(authority))
        })
        .map(|m| m.info.key.clone())
        .collect()
}

/// `GET /api/v1/responsibility?service=&region=`: the authority responsible for the
/// service in the municipality (ARS), and whether it can be applied for online there.
pub async fn responsibility(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (Some(service), Some(region)) = (query.get("service"), query.get("region")) else {
        return bad_query("`service` and `region` are required");
    };
    if !is_ars(region) {
        return bad_query("`region` must be a 12-digit ARS");
    }
    let mappings = state.hub.catalog.current();
    let Some(mapping) = mappings.get(service.as_str()) else {
        return Problem::not_found()
            .detail("no such service")
            .into_response();
    };
    let Some(region_name) = state.hub.regions.name(region) else {
        return Problem::not_found()
            .detail("no such municipality")
            .into_response();
    };
    let topology = state.hub.topology.now();
    let authority = topology
        .routing
        .resolve(service, region)
        .and_then(|procedure| topology.procedure_authority.get(procedure))
        .and_then(|id| topology.authorities.iter().find(|a| &a.id == id));
    let available = mapping
        .info
        .available_in
        .iter()
        .any(|prefix| region.starts_with(prefix.as_str()));
    Json(json!({
        "service": mapping.info.key,
        "service_name": mapping.info.name,
        "region": region,
        "region_name": region_name,
        "authority": authority.map(Listed::new),
        "online": available && authority.is_some(),
    }))
    .into_response()
}
