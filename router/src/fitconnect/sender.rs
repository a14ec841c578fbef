//! The sender's side of the Submission API v1: announce, upload attachments, submit.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kopplung_core::fitconnect::Submissions;
use serde_json::json;

use super::{FitProblem, FitState, Grant, Snapshot, respond, snapshot, uuid};
use crate::api::read_limited;
use crate::config::FitRole;

/// `POST /v1/submissions` → 201 `{submissionId, caseId, destinationId, announcedAttachments}`.
pub async fn announce(
    State(state): State<Arc<FitState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let state = &state;
    respond(state, "announce", async {
        let grant = sender(state, &headers)?;
        let bytes = read(&headers, body, 64 * 1024).await?;
        let snapshot = snapshot(state);
        let announced = submissions(state, &snapshot)
            .announce(&grant.client, &grant.reach, &bytes)
            .await?;
        let body = json!({
            "submissionId": announced.submission,
            "caseId": announced.case,
            "destinationId": announced.destination,
            "announcedAttachments": announced.attachments,
        });
        Ok((StatusCode::CREATED, Json(body)).into_response())
    })
    .await
}

/// `PUT /v1/submissions/{id}/attachments/{attachmentId}` (a compact JWE) → 204.
pub async fn attach(
    State(state): State<Arc<FitState>>,
    Path((submission, attachment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let state = &state;
    respond(state, "attach", async {
        let grant = sender(state, &headers)?;
        let ids = (uuid(&submission)?, uuid(&attachment)?);
        // Base64url of the encrypted bytes, plus the JWE's header.
        // The largest attachment any service takes, as base64url, and the JWE's header.
        let largest = state
            .hub
            .catalog
            .current()
            .values()
            .map(|m| m.form.attachments.max_bytes)
            .max()
            .unwrap_or(0);
        let limit = largest.saturating_mul(4) / 3 + 64 * 1024;
        let jwe = read(&headers, body, limit).await?;
        let snapshot = snapshot(state);
        submissions(state, &snapshot)
            .attach(&grant.client, &grant.reach, ids, &jwe)
            .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// `PUT /v1/submissions/{id}` `{encryptedMetadata, encryptedData}` → 200 once the
/// application is stored (`status: submitted`).
pub async fn submit(
    State(state): State<Arc<FitState>>,
    Path(submission): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let state = &state;
    respond(state, "submit", async {
        let grant = sender(state, &headers)?;
        let id = uuid(&submission)?;
        let parts = state.max_data_bytes + kopplung_core::fitconnect::MAX_METADATA_BYTES;
        let limit = parts.saturating_mul(4) / 3 + 64 * 1024;
        let bytes = read(&headers, body, limit).await?;
        let snapshot = snapshot(state);
        let submitted = submissions(state, &snapshot)
            .submit(&grant.client, &grant.reach, id, &bytes)
            .await?;
        let body = json!({
            "submissionId": submitted.submission,
            "caseId": submitted.case,
            "destinationId": submitted.destination,
            "status": "submitted",
            "receipt": submitted.receipt,
        });
        Ok((StatusCode::OK, Json(body)).into_response())
    })
    .await
}

fn sender(state: &FitState, headers: &HeaderMap) -> Result<Grant, FitProblem> {
    let grant = state.grant(headers)?;
    if grant.role != FitRole::Sender {
        return Err(FitProblem::wrong_role("sender"));
    }
    Ok(grant)
}

fn submissions<'a>(state: &'a FitState, snapshot: &'a Snapshot) -> Submissions<'a> {
    let hub = &state.hub;
    Submissions {
        store: hub.store.as_ref(),
        intake: &hub.intake,
        clock: hub.clock.as_ref(),
        destinations: snapshot,
        schema: &state.schema,
        max_data_bytes: state.max_data_bytes,
    }
}

async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, FitProblem> {
    read_limited(body, headers, limit)
        .await
        .map_err(FitProblem::from_problem)
}
