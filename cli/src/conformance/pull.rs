//! The hub's API as the receiver under test meets it, served by the kit: the pull API
//! (list, download, acknowledge) over the battery's messages, and the receipts and
//! events endpoints. The same paths, tokens and answers as the hub's (`router/src/api`).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kopplung_adapters::OutboundMessage;
use kopplung_core::events::EventError;
use kopplung_router::api::problem::Problem;
use kopplung_router::api::{pull, sealed_message};
use kopplung_router::auth::Clients;
use serde_json::json;
use time::OffsetDateTime;

use super::answers::Collected;

/// A receipt with a decision document fits, as at the hub.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// One message of the battery waiting to be collected.
struct Waiting {
    message: OutboundMessage,
    since: OffsetDateTime,
    acknowledged: bool,
}

/// The battery's messages in the order sent; a message id sent twice (the redelivery)
/// is listed again only once the first was acknowledged, as after a lost commit.
#[derive(Default)]
pub struct Pickups(Mutex<Vec<Waiting>>);

impl Pickups {
    fn lock(&self) -> MutexGuard<'_, Vec<Waiting>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn offer(&self, message: &OutboundMessage, now: OffsetDateTime) {
        self.lock().push(Waiting {
            message: message.clone(),
            since: now,
            acknowledged: false,
        });
    }

    /// The index of each listed message: unacknowledged, and the first such of its id.
    fn listed(waiting: &[Waiting]) -> Vec<usize> {
        let mut seen = std::collections::BTreeSet::new();
        let mut listed = Vec::new();
        for (i, w) in waiting.iter().enumerate() {
            let id = w.message.message_id.as_str();
            let earlier_open = waiting[..i]
                .iter()
                .any(|e| e.message.message_id == id && !e.acknowledged);
            if !w.acknowledged && !earlier_open && seen.insert(id) {
                listed.push(i);
            }
        }
        listed
    }
}

struct Served {
    procedure: String,
    tokens: Clients,
    pickups: Arc<Pickups>,
    collected: Arc<Collected>,
}

/// The routes, for the procedure whose tokens `tokens` hold.
pub fn router(
    procedure: &str,
    tokens: Clients,
    pickups: Arc<Pickups>,
    collected: Arc<Collected>,
) -> Router {
    let served = Arc::new(Served {
        procedure: procedure.to_owned(),
        tokens,
        pickups,
        collected,
    });
    Router::new()
        .route("/api/v1/procedures/{id}/messages", get(list))
        .route("/api/v1/procedures/{id}/messages/{message}", get(fetch))
        .route(
            "/api/v1/procedures/{id}/messages/{message}/ack",
            post(acknowledge),
        )
        .route("/api/v1/procedures/{id}/receipts", post(answer))
        .route("/api/v1/procedures/{id}/events", post(answer))
        .layer(DefaultBodyLimit::max(MAX_ANSWER_BYTES))
        .with_state(served)
}

fn authorised(served: &Served, headers: &HeaderMap, procedure: &str) -> Result<(), Problem> {
    match served.tokens.authenticate(headers) {
        Some(id) if id == procedure && id == served.procedure => Ok(()),
        Some(_) => Err(pull::others_token()),
        None => Err(Problem::unauthorized()),
    }
}

async fn list(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    Path(procedure): Path<String>,
) -> Response {
    if let Err(problem) = authorised(&served, &headers, &procedure) {
        return problem.into_response();
    }
    let waiting = served.pickups.lock();
    let messages: Vec<_> = Pickups::listed(&waiting)
        .into_iter()
        .filter_map(|i| waiting.get(i))
        .map(|w| {
            let m = &w.message;
            let header = |name: &str| {
                m.headers
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
                    .unwrap_or_default()
            };
            json!({
                "message_id": m.message_id,
                "application_id": m.correlation_id,
                "service": header("service"),
                "message_type": m.message_type,
                "size": m.body.len(),
                "sha256": hex::encode(openssl::sha::sha256(&m.body)),
                "available_since": w.since.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            })
        })
        .collect();
    Json(json!({ "messages": messages })).into_response()
}

async fn fetch(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    Path((procedure, message)): Path<(String, String)>,
) -> Response {
    if let Err(problem) = authorised(&served, &headers, &procedure) {
        return problem.into_response();
    }
    let waiting = served.pickups.lock();
    let Some(found) = Pickups::listed(&waiting)
        .into_iter()
        .filter_map(|i| waiting.get(i))
        .find(|w| w.message.message_id == message)
    else {
        return Problem::not_found().into_response();
    };
    let m = &found.message;
    sealed_message(
        m.body.clone(),
        &m.content_type,
        [
            m.message_id.clone(),
            m.correlation_id.clone(),
            m.message_type.clone(),
        ],
    )
}

fn unverifiable(reason: String) -> Problem {
    Problem::from(EventError::Unverifiable(reason))
}

async fn acknowledge(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    Path((procedure, message)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(problem) = authorised(&served, &headers, &procedure) {
        return problem.into_response();
    }
    // A bad receipt refuses the whole acknowledgement, as at the hub.
    let verify = |body: &[u8]| served.collected.verify(body).map_err(unverifiable);
    let receipt = match pull::carried_receipt(&body, &message, verify, |r| &r.message_id) {
        Ok(receipt) => receipt,
        Err(problem) => return problem.into_response(),
    };
    let first_time = {
        let mut waiting = served.pickups.lock();
        let listed = Pickups::listed(&waiting);
        let open = listed.into_iter().find(|&i| {
            waiting
                .get(i)
                .is_some_and(|w| w.message.message_id == message)
        });
        let known = waiting.iter().any(|w| w.message.message_id == message);
        match open.and_then(|i| waiting.get_mut(i)) {
            Some(w) => {
                w.acknowledged = true;
                true
            }
            None if known => false,
            None => return Problem::not_found().into_response(),
        }
    };
    served.collected.acknowledge(&message);
    let mut answer = pull::acknowledgement(&message, first_time);
    if let Some(receipt) = receipt {
        answer["receipt"] =
            json!({"receipt_id": receipt.receipt_id, "recorded": true, "status": "received"});
        served.collected.keep(receipt);
    }
    Json(answer).into_response()
}

/// `POST …/receipts` and `…/events`: taken if it verifies (the signature is the
/// authentication, as at the hub).
async fn answer(
    State(served): State<Arc<Served>>,
    Path(procedure): Path<String>,
    body: Bytes,
) -> Response {
    if procedure != served.procedure {
        return Problem::not_found().into_response();
    }
    match served.collected.take(&body) {
        Ok(receipt) => {
            Json(json!({"receipt_id": receipt.receipt_id, "recorded": true, "status": "received"}))
                .into_response()
        }
        Err(reason) => unverifiable(reason).into_response(),
    }
}
