//! What a sender looks up before it submits: the route to a destination (Routing API),
//! the destination with its services and key id, the key as JWK, and the JSON Schema
//! of each service's data.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_core::ServiceKey;
use kopplung_core::fitconnect::urn_of;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{FitDestination, FitProblem, FitState};
use crate::topology::Topology;

/// The metadata versions a destination accepts.
const METADATA_VERSIONS: [&str; 1] = ["1.0.0"];

/// `GET /v1/routes?leikaKey=…&ars=…` (or `ags`): the destination responsible for the
/// service in the region, as FIT-Connect's Routing API answers it. Public, like
/// FIT-Connect's.
pub async fn routes(
    State(state): State<Arc<FitState>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    super::counted(&state, "routes", route_lookup(&state, &query))
}

fn route_lookup(state: &FitState, query: &BTreeMap<String, String>) -> Response {
    let Some(service) = query
        .get("leikaKey")
        .and_then(|key| ServiceKey::parse(key).ok())
    else {
        return FitProblem::malformed("leikaKey must be a 14-digit LeiKa key").into_response();
    };
    let areas: Vec<&String> = ["ars", "ags"]
        .iter()
        .filter_map(|name| query.get(*name))
        .collect();
    let [area] = areas.as_slice() else {
        return FitProblem::malformed("give exactly one of ars and ags").into_response();
    };
    if area.is_empty() || area.len() > 12 || !area.bytes().all(|b| b.is_ascii_digit()) {
        return FitProblem::malformed("ars and ags are digits (2 to 12)").into_response();
    }
    let topology = state.hub.topology.now();
    let found = topology
        .routing
        .resolve(service.as_ref(), area)
        .and_then(|procedure| {
            topology
                .fitconnect
                .iter()
                .find(|(_, d)| d.procedure == procedure)
        });
    let routes: Vec<Value> = found
        .map(|(id, destination)| route(state, &topology, *id, destination))
        .into_iter()
        .collect();
    Json(json!({
        "count": routes.len(),
        "offset": 0,
        "totalCount": routes.len(),
        "routes": routes,
    }))
    .into_response()
}

fn route(state: &FitState, topology: &Topology, id: Uuid, destination: &FitDestination) -> Value {
    let name = topology
        .procedure_authority
        .get(&destination.procedure)
        .and_then(|authority| topology.authorities.iter().find(|a| &a.id == authority))
        .map(|authority| authority.name.clone());
    json!({
        "destinationId": id,
        "destinationName": name,
        "destinationParameters": {
            "encryptionKid": destination.key.kid(),
            "metadataVersions": METADATA_VERSIONS,
            "publicKeys": {"keys": [destination.key.public_jwk()]},
            "status": "active",
            "submissionSchemas": schemas(state, topology, &destination.procedure)
                .into_iter()
                .map(|(_, schema)| schema)
                .collect::<Vec<_>>(),
            "submissionUrl": format!("{}/fitconnect/v1", state.hub.public_url),
        },
    })
}

/// `GET /v1/destinations/{id}`: for any client with a token.
pub async fn destination(
    State(state): State<Arc<FitState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    super::counted(&state, "destination", describe(&state, &id, &headers))
}

fn describe(state: &FitState, id: &str, headers: &HeaderMap) -> Response {
    if let Err(problem) = state.grant(headers) {
        return problem.into_response();
    }
    let topology = state.hub.topology.now();
    let Some((id, destination)) = find(&topology, id) else {
        return FitProblem::destination_not_found().into_response();
    };
    let services: Vec<Value> = schemas(state, &topology, &destination.procedure)
        .into_iter()
        .map(|(service, schema)| {
            let regions: Vec<String> = topology
                .routing
                .regions_of(service.as_ref(), &destination.procedure)
                .into_iter()
                .map(|prefix| format!("DE{prefix}"))
                .collect();
            json!({
                "identifier": urn_of(&service),
                "submissionSchemas": [schema],
                "regions": regions,
            })
        })
        .collect();
    Json(json!({
        "destinationId": id,
        "status": "active",
        "services": services,
        "encryptionKid": destination.key.kid(),
        "metadataVersions": METADATA_VERSIONS,
        "replyChannels": {},
    }))
    .into_response()
}

/// `GET /v1/destinations/{id}/keys/{kid}`: the destination's encryption key as JWK.
pub async fn key(
    State(state): State<Arc<FitState>>,
    Path((id, kid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    super::counted(&state, "key", key_of(&state, &id, &kid, &headers))
}

fn key_of(state: &FitState, id: &str, kid: &str, headers: &HeaderMap) -> Response {
    if let Err(problem) = state.grant(headers) {
        return problem.into_response();
    }
    let topology = state.hub.topology.now();
    let Some((_, destination)) = find(&topology, id) else {
        return FitProblem::destination_not_found().into_response();
    };
    if destination.key.kid() != kid {
        return FitProblem::key_not_found().into_response();
    }
    Json(destination.key.public_jwk()).into_response()
}

/// `GET /v1/schemas/{key}.schema.json`: what a sender's data document for a service
/// looks like: `{"$schema", "region", "data"}` with the form's fields in `data`.
pub async fn data_schema(State(state): State<Arc<FitState>>, Path(file): Path<String>) -> Response {
    super::counted(&state, "schema", schema_of(&state, &file))
}

fn schema_of(state: &FitState, file: &str) -> Response {
    let mappings = state.hub.catalog.current();
    let mapping = file
        .strip_suffix(".schema.json")
        .and_then(|key| mappings.get(key));
    let Some(mapping) = mapping else {
        return FitProblem::from_problem(crate::api::problem::Problem::not_found()).into_response();
    };
    let id = schema_uri(state, &mapping.info.key);
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": id,
        "title": mapping.info.name,
        "description": format!(
            "Fachdaten der Leistung {} ({}) für kopplung über FIT-Connect: der Regionalschlüssel (ARS) der Gemeinde und die Angaben des Formulars.",
            mapping.info.name, mapping.info.key
        ),
        "type": "object",
        "required": ["$schema", "region", "data"],
        "properties": {
            "$schema": {"const": id},
            "region": {"type": "string", "pattern": "^[0-9]{12}$", "title": "Regionalschlüssel (ARS) der Gemeinde"},
            "data": mapping.form.data_schema(),
        },
        "additionalProperties": false,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/schema+json")],
        Json(schema),
    )
        .into_response()
}

fn find<'t>(topology: &'t Topology, id: &str) -> Option<(Uuid, &'t FitDestination)> {
    let id = Uuid::parse_str(id).ok()?;
    topology.fitconnect.get(&id).map(|d| (id, d))
}

/// The services routed to `procedure` that the hub has a mapping for, each with its
/// `submissionSchema`.
fn schemas(state: &FitState, topology: &Topology, procedure: &str) -> Vec<(ServiceKey, Value)> {
    let mappings = state.hub.catalog.current();
    topology
        .routing
        .services_of(procedure)
        .into_iter()
        .filter(|service| mappings.contains_key(*service))
        .filter_map(|service| ServiceKey::parse(service).ok())
        .map(|service| {
            let schema = json!({
                "schemaUri": schema_uri(state, service.as_ref()),
                "mimeType": "application/json",
            });
            (service, schema)
        })
        .collect()
}

fn schema_uri(state: &FitState, service: &str) -> String {
    format!(
        "{}/fitconnect/v1/schemas/{service}.schema.json",
        state.hub.public_url
    )
}
