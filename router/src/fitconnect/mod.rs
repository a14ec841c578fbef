//! FIT-Connect at the hub's edge (`docs/fit-connect.md`): the token endpoint, the
//! Routing API's route lookup, the destinations with their keys, and the Submission
//! API v1 for senders, under `/fitconnect`. Handlers parse, call the core's
//! `fitconnect` services and map their errors to problem details.

mod destinations;
mod problem;
mod sender;
mod subscriber;
mod tokens;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use kopplung_core::fitconnect::{Destination, Destinations, MetadataSchema, service_of};
use kopplung_core::{Ars, ServiceKey};
use uuid::Uuid;

use crate::Error;
use crate::config::Config;
use crate::context::Hub;
use crate::topology::Topology;

pub use crate::destinations::{FitDestination, load_destinations};
pub use problem::FitProblem;
pub use tokens::{Grant, Tokens};

/// Checks what the FIT-Connect edge of `config` needs: the destinations' keys, the
/// metadata schema and the clients' secrets (start and `kopplung check`).
pub fn check(config: &Config) -> Result<(), Error> {
    load_destinations(config)?;
    let Some(fitconnect) = &config.file.fitconnect else {
        return Ok(());
    };
    read_schema(config, fitconnect)?;
    Tokens::load(fitconnect, &config.data_dir)?;
    Ok(())
}

fn read_schema(
    config: &Config,
    fitconnect: &crate::config::FitConnectConfig,
) -> Result<MetadataSchema, Error> {
    let path = config.data_dir.join(&fitconnect.metadata_schema);
    let invalid = |message: String| Error::Config {
        file: path.clone(),
        message: format!("[fitconnect] metadata_schema: {message}"),
    };
    let text = std::fs::read(&path).map_err(|e| {
        invalid(format!(
            "{e}; FIT-Connect publishes it as {}, FIT-Connect's SDKs carry a copy (scripts/demo installs one)",
            kopplung_core::fitconnect::METADATA_SCHEMA_URI
        ))
    })?;
    MetadataSchema::new(&text).map_err(invalid)
}

/// What the FIT-Connect handlers share.
pub struct FitState {
    pub hub: Arc<Hub>,
    pub tokens: Tokens,
    pub schema: MetadataSchema,
    /// The largest data document a sender may submit (`[limits] max_body_bytes`, as at
    /// the hub's own API).
    pub max_data_bytes: usize,
}

impl FitState {
    /// The FIT-Connect edge of `config`, if it has `[fitconnect]`.
    pub fn load(config: &Config, hub: Arc<Hub>) -> Result<Option<Arc<Self>>, Error> {
        let Some(fitconnect) = &config.file.fitconnect else {
            return Ok(None);
        };
        let schema = read_schema(config, fitconnect)?;
        let limits = &config.file.limits;
        Ok(Some(Arc::new(Self {
            hub,
            tokens: Tokens::load(fitconnect, &config.data_dir)?,
            schema,
            max_data_bytes: limits.max_body_bytes,
        })))
    }

    /// What the request's bearer token grants.
    fn grant(&self, headers: &HeaderMap) -> Result<Grant, FitProblem> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            // The scheme is case-insensitive (RFC 7235).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(FitProblem::unauthorized)?;
        self.tokens
            .verify(token.trim(), self.hub.clock.now())
            .ok_or_else(FitProblem::unauthorized)
    }
}

pub fn router(state: Arc<FitState>) -> Router {
    Router::new()
        // A client's id and secret: a few hundred bytes. Without this, the form would be
        // read whole, whatever its size, before anyone is authenticated.
        .route(
            "/fitconnect/token",
            post(tokens_endpoint).layer(DefaultBodyLimit::max(TOKEN_FORM_BYTES)),
        )
        .route("/fitconnect/v1/routes", get(destinations::routes))
        .route("/fitconnect/v1/openapi.json", get(openapi))
        .route(
            "/fitconnect/v1/destinations/{id}",
            get(destinations::destination),
        )
        .route(
            "/fitconnect/v1/destinations/{id}/keys/{kid}",
            get(destinations::key),
        )
        .route(
            "/fitconnect/v1/schemas/{file}",
            get(destinations::data_schema),
        )
        .route(
            "/fitconnect/v1/submissions",
            post(sender::announce).get(subscriber::list),
        )
        .route(
            "/fitconnect/v1/submissions/{id}",
            put(sender::submit).get(subscriber::fetch),
        )
        .route(
            "/fitconnect/v1/submissions/{id}/attachments/{attachment}",
            put(sender::attach).get(subscriber::attachment),
        )
        .route(
            "/fitconnect/v1/cases/{case}/events",
            post(subscriber::post_event).get(subscriber::events),
        )
        // A known path with another method: a problem document too, not an empty 405.
        .method_not_allowed_fallback(|| async {
            use axum::response::IntoResponse;
            crate::api::problem::Problem::method_not_allowed().into_response()
        })
        // Each handler reads its body with its own limit and answers a problem.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// The largest form the token endpoint reads.
const TOKEN_FORM_BYTES: usize = 8 * 1024;

/// Runs a handler's work and counts its answer as `operation`.
async fn respond(
    state: &FitState,
    operation: &str,
    work: impl Future<Output = Result<axum::response::Response, FitProblem>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let response = work.await.unwrap_or_else(IntoResponse::into_response);
    counted(state, operation, response)
}

/// The routing table in force, as the core's [`Destinations`], for one request.
fn snapshot(state: &FitState) -> Snapshot {
    Snapshot {
        topology: state.hub.topology.now(),
    }
}

/// A path segment that must be a UUID.
fn uuid(text: &str) -> Result<Uuid, FitProblem> {
    Uuid::parse_str(text).map_err(|_| FitProblem::malformed(format!("{text:?} is no UUID")))
}

/// The OpenAPI 3.1 description of the FIT-Connect edge (kept true by
/// `tests/tests/fitconnect_openapi.rs`, which checks real answers against it).
async fn openapi() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../fitconnect-openapi.json"),
    )
        .into_response()
}

/// Counts an answer of `operation` (`kopplung_fitconnect_requests_total`): `ok`, or
/// the HTTP status of the problem.
pub(crate) fn counted(
    state: &FitState,
    operation: &str,
    response: axum::response::Response,
) -> axum::response::Response {
    let status = response.status();
    let outcome = if status.is_success() {
        "ok".to_owned()
    } else {
        status.as_u16().to_string()
    };
    state
        .hub
        .metrics
        .fitconnect
        .with_label_values(&[operation, outcome.as_str()])
        .inc();
    response
}

async fn tokens_endpoint(
    axum::extract::State(state): axum::extract::State<Arc<FitState>>,
    form: Result<axum::Form<BTreeMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> axum::response::Response {
    let form = match form {
        Ok(form) => form.0,
        Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            let problem = crate::api::problem::Problem::too_large(
                "body-too-large",
                "The request body is too large",
                TOKEN_FORM_BYTES,
            );
            let response = axum::response::IntoResponse::into_response(problem);
            return counted(&state, "token", response);
        }
        // A body that is no form is a request without the fields: OAuth's JSON error.
        Err(_) => BTreeMap::new(),
    };
    counted(&state, "token", tokens::token_response(&state, &form))
}

/// One snapshot of the routing table, as the core's [`Destinations`].
pub(crate) struct Snapshot {
    pub topology: Arc<Topology>,
}

#[async_trait::async_trait]
impl Destinations for Snapshot {
    fn destination(&self, id: Uuid) -> Option<Destination> {
        let found = self.topology.fitconnect.get(&id)?;
        Some(Destination {
            id,
            procedure: found.procedure.clone(),
            services: self
                .topology
                .routing
                .services_of(&found.procedure)
                .into_iter()
                .filter_map(service_of)
                .collect(),
        })
    }

    async fn decrypt(&self, id: Uuid, jwe: String, max_bytes: usize) -> Result<Vec<u8>, String> {
        let found = self
            .topology
            .fitconnect
            .get(&id)
            .ok_or_else(|| "no such destination".to_owned())?;
        let key = found.key.clone();
        // Inflating and decrypting megabytes must not hold up the runtime's threads.
        tokio::task::spawn_blocking(move || key.decrypt(&jwe, max_bytes).map_err(|e| e.to_string()))
            .await
            .map_err(|_| "decrypting was interrupted".to_owned())?
    }

    fn destination_of(&self, procedure: &str) -> Option<Uuid> {
        self.topology
            .fitconnect
            .iter()
            .find(|(_, d)| d.procedure == procedure)
            .map(|(id, _)| *id)
    }

    fn subscribed(&self) -> Vec<Destination> {
        self.topology
            .fitconnect
            .iter()
            .filter(|(_, d)| d.subscriber.is_some())
            .filter_map(|(id, _)| self.destination(*id))
            .collect()
    }

    fn encrypt_for_subscriber(
        &self,
        id: Uuid,
        content: &[u8],
        content_type: &str,
    ) -> Result<String, String> {
        let jwk = self
            .topology
            .fitconnect
            .get(&id)
            .and_then(|d| d.subscriber.clone())
            .ok_or_else(|| "the destination has no subscriber key".to_owned())?;
        kopplung_transformers::fitconnect::encrypt_for_jwk(content, &jwk, content_type)
            .map_err(|e| e.to_string())
    }

    fn responsible(&self, service: &ServiceKey, region: &Ars) -> Option<String> {
        self.topology
            .routing
            .resolve(service.as_ref(), region.as_ref())
            .map(str::to_owned)
    }
}
