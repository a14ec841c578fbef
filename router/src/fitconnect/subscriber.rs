//! The subscriber's side of the Submission API v1: a procedure with `transport =
//! "fitconnect"` lists and collects its submissions and answers with signed events.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kopplung_core::fitconnect::{Collections, SubmissionError, case_of, submission_of};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{FitProblem, FitState, Grant, Snapshot, respond, snapshot, uuid};
use crate::api::problem::Problem;
use crate::api::read_limited;
use crate::config::FitRole;

/// The largest event a subscriber posts (an accept or a reject with its problems).
const MAX_EVENT_BYTES: usize = 64 * 1024;

/// `GET /v1/submissions[?destinationId=…&offset=…&limit=…]`: the submissions waiting.
pub async fn list(
    State(state): State<Arc<FitState>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let state = &state;
    respond(state, "list", async {
        let grant = subscriber(state, &headers)?;
        let only = match query.get("destinationId") {
            Some(id) => Some(uuid(id)?),
            None => None,
        };
        let number = |name: &str, default: usize| -> Result<usize, FitProblem> {
            query.get(name).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| FitProblem::malformed(format!("{name} must be a number")))
            })
        };
        let (offset, limit) = (number("offset", 0)?, number("limit", 100)?.clamp(1, 500));
        let snapshot = snapshot(state);
        let schemas = schema_uris(state);
        let all = collections(state, &snapshot, &schemas)
            .list(&grant.reach, only)
            .await?;
        let submissions: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(limit)
            .map(|s| {
                json!({
                    "destinationId": s.destination,
                    "submissionId": s.submission,
                    "caseId": s.case,
                })
            })
            .collect();
        Ok(Json(json!({
            "count": submissions.len(),
            "offset": offset,
            "totalCount": all.len(),
            "submissions": submissions,
        }))
        .into_response())
    })
    .await
}

/// `GET /v1/submissions/{id}`: the submission, encrypted for the subscriber.
pub async fn fetch(
    State(state): State<Arc<FitState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let state = &state;
    respond(state, "fetch", async {
        let grant = subscriber(state, &headers)?;
        let id = uuid(&id)?;
        let snapshot = snapshot(state);
        let schemas = schema_uris(state);
        let collected = collections(state, &snapshot, &schemas)
            .fetch(&grant.reach, id)
            .await?;
        Ok(Json(json!({
            "destinationId": collected.destination,
            "submissionId": collected.submission,
            "caseId": collected.case,
            "serviceType": {
                "identifier": kopplung_core::fitconnect::urn_of_key(&collected.service),
                "name": state
                    .hub
                    .catalog
                    .current()
                    .get(&collected.service)
                    .map(|m| m.info.name.clone())
                    .unwrap_or_default(),
            },
            "attachments": collected.attachments,
            "encryptedMetadata": collected.encrypted_metadata,
            "encryptedData": collected.encrypted_data,
        }))
        .into_response())
    })
    .await
}

/// `GET /v1/submissions/{id}/attachments/{attachmentId}`: the attachment as a JWE.
pub async fn attachment(
    State(state): State<Arc<FitState>>,
    Path((id, attachment)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let state = &state;
    respond(state, "attachment", async {
        let grant = subscriber(state, &headers)?;
        let (id, attachment) = (uuid(&id)?, uuid(&attachment)?);
        let snapshot = snapshot(state);
        let schemas = schema_uris(state);
        let jwe = collections(state, &snapshot, &schemas)
            .attachment(&grant.reach, id, attachment)
            .await?;
        Ok(([(header::CONTENT_TYPE, "application/jose")], jwe).into_response())
    })
    .await
}

/// `POST /v1/cases/{caseId}/events`: a Security Event Token of the subscriber
/// (`accept-submission`, `reject-submission`), verified with the procedure's signing
/// certificate and applied like a receipt. FIT-Connect's clients send it without a
/// `Content-Type` or as `application/jose`; either is taken.
pub async fn post_event(
    State(state): State<Arc<FitState>>,
    Path(case): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let state = &state;
    respond(state, "event", async {
        let grant = subscriber(state, &headers)?;
        let case = uuid(&case)?;
        let bytes = read_limited(body, &headers, MAX_EVENT_BYTES)
            .await
            .map_err(FitProblem::from_problem)?;
        let submission = submission_of(case);
        let (procedure, destination) = procedure_of(state, &grant, submission).await?;
        check_addressed(&bytes, submission, destination)?;
        match state.hub.events.take(&procedure, bytes.to_vec()).await {
            Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
            Err(e) => Err(FitProblem::from_problem(Problem::from(e))),
        }
    })
    .await
}

/// `GET /v1/cases/{caseId}/events`: the case's event log, each event as signed.
pub async fn events(
    State(state): State<Arc<FitState>>,
    Path(case): Path<String>,
    headers: HeaderMap,
) -> Response {
    let state = &state;
    respond(state, "event_log", async {
        let grant = state.grant(&headers)?;
        let submission = submission_of(uuid(&case)?);
        // The subscriber of the destination, or the sender that submitted it.
        let visible = match grant.role {
            FitRole::Subscriber => procedure_of(state, &grant, submission).await.is_ok(),
            FitRole::Sender => state
                .hub
                .store
                .application(submission)
                .await
                .map_err(|e| FitProblem::from(SubmissionError::Store(e)))?
                .is_some_and(|a| a.client_id == grant.client),
        };
        if !visible {
            return Err(FitProblem::from(SubmissionError::SubmissionNotFound(
                submission,
            )));
        }
        let log: Vec<String> = state
            .hub
            .store
            .signed_events(submission)
            .await
            .map_err(|e| FitProblem::from(SubmissionError::Store(e)))?
            .into_iter()
            .filter_map(|signed| String::from_utf8(signed).ok())
            .filter(|signed| signed.split('.').count() == 3)
            .collect();
        Ok(Json(json!({
            "count": log.len(),
            "offset": 0,
            "totalCount": log.len(),
            "eventLog": log,
        }))
        .into_response())
    })
    .await
}

/// The event names this case's submission (`sub`, `txn`) and is issued by its
/// destination (`iss`); read before the signature is checked, which then covers all.
fn check_addressed(token: &[u8], submission: Uuid, destination: Uuid) -> Result<(), FitProblem> {
    let case = case_of(submission);
    let malformed = |what: &str| {
        FitProblem::malformed(format!(
            "the event must be a Security Event Token (compact JWS) with {what}"
        ))
    };
    let text = std::str::from_utf8(token).map_err(|_| malformed("ASCII text"))?;
    let payload = text
        .trim()
        .split('.')
        .nth(1)
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .ok_or_else(|| malformed("a JSON payload"))?;
    let claim = |name: &str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if claim("sub") != format!("submission:{submission}")
        || claim("txn") != format!("case:{case}")
        || claim("iss") != destination.to_string()
    {
        return Err(malformed(&format!(
            "iss {destination}, sub submission:{submission} and txn case:{case}"
        )));
    }
    Ok(())
}

/// The procedure behind the submission and its destination, if the subscriber's token
/// reaches it.
async fn procedure_of(
    state: &FitState,
    grant: &Grant,
    submission: Uuid,
) -> Result<(String, Uuid), FitProblem> {
    let not_found = || FitProblem::from(SubmissionError::SubmissionNotFound(submission));
    let application = state
        .hub
        .store
        .application(submission)
        .await
        .map_err(|e| FitProblem::from(SubmissionError::Store(e)))?
        .ok_or_else(not_found)?;
    let procedure = application.delivery.procedure;
    let topology = state.hub.topology.now();
    let reachable = topology.fitconnect.iter().find(|(id, d)| {
        d.procedure == procedure && d.subscriber.is_some() && grant.reach.includes(**id)
    });
    match reachable {
        Some((id, _)) => Ok((procedure, *id)),
        None => Err(not_found()),
    }
}

fn subscriber(state: &FitState, headers: &HeaderMap) -> Result<Grant, FitProblem> {
    let grant = state.grant(headers)?;
    if grant.role != FitRole::Subscriber {
        return Err(FitProblem::wrong_role("subscriber"));
    }
    Ok(grant)
}

fn collections<'a>(
    state: &'a FitState,
    snapshot: &'a Snapshot,
    schemas: &'a (dyn Fn(&str) -> String + Sync),
) -> Collections<'a> {
    let store = &state.hub.store;
    Collections {
        pickups: store.as_ref(),
        outbox: store.as_ref(),
        applications: store.as_ref(),
        destinations: snapshot,
        schema_uri: schemas,
    }
}

/// Where the hub publishes the XSD of each message type (`GET /api/v1/schemas/…`),
/// from the mappings in force: the `submissionSchema` of the data.
fn schema_uris(state: &FitState) -> impl Fn(&str) -> String + Sync + use<> {
    use kopplung_transformers::follow_up;
    let mut uris = BTreeMap::new();
    let base = format!("{}/api/v1/schemas", state.hub.public_url);
    for mapping in state.hub.catalog.current().values() {
        let own = &mapping.info.message.message_type;
        uris.insert(own.clone(), format!("{base}/{}", mapping.schemas.schema));
        if let Some(follow_ups) = &mapping.follow_ups {
            for (_, element) in follow_up::ELEMENTS {
                let schema = format!("{base}/{}", follow_ups.schemas.schema);
                uris.insert(follow_up::message_type(own, element), schema);
            }
        }
    }
    move |message_type: &str| {
        uris.get(message_type)
            .cloned()
            .unwrap_or_else(|| format!("urn:kopplung:message-type:{message_type}"))
    }
}
