//! `GET /api/v1/trust`: the hub's signing certificates with their stages, public like
//! any certificate. During a staged rotation a vendor finds the next certificate here
//! before it signs, compares its fingerprint with the one the operator announced, and
//! trusts it beside the current one.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ApiState;

#[derive(Serialize)]
struct Certificate {
    stage: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    activate_at: Option<String>,
    subject: String,
    fingerprint_sha256: String,
    not_before: Option<String>,
    not_after: Option<String>,
    pem: String,
}

#[derive(Serialize)]
pub(super) struct Trust {
    signing: Vec<Certificate>,
}

fn rfc3339(at: Option<OffsetDateTime>) -> Option<String> {
    at.and_then(|at| at.format(&Rfc3339).ok())
}

pub(super) async fn show(State(state): State<Arc<ApiState>>) -> Json<Trust> {
    let signing = state
        .hub
        .keyring
        .published()
        .into_iter()
        .map(|c| Certificate {
            stage: c.stage.as_str(),
            activate_at: rfc3339(c.activate_at),
            subject: c.subject,
            fingerprint_sha256: c.fingerprint_sha256,
            not_before: rfc3339(c.not_before),
            not_after: rfc3339(c.not_after),
            pem: c.pem,
        })
        .collect();
    Json(Trust { signing })
}
