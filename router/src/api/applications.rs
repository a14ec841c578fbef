//! `GET /api/v1/applications/{id}`: status, delivery and history of one application.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;
use crate::store::Status;

pub async fn show(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(client) = state.clients.authenticate(&headers) else {
        return Problem::unauthorized().into_response();
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::not_found().into_response();
    };
    let record = match state.hub.store.application(id).await {
        Ok(Some(record)) if record.client_id == client => record,
        // Another client's application does not exist for this one.
        Ok(_) => return Problem::not_found().into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading an application failed");
            return Problem::store_unreachable().into_response();
        }
    };
    let topology = state.hub.topology.now();
    let destination = topology.destinations.get(&record.delivery.procedure);
    let awaiting_receipt_since = state
        .hub
        .oversight
        .receipt_deadlines
        .overdue_since(&record, state.hub.clock.now());
    let state_text = match record.status {
        Status::Accepted | Status::Prepared => match &record.delivery.last_error {
            Some(error) => format!("waiting in the outbox: {error}"),
            // Pull and manual procedures collect their messages themselves.
            None if record.status == Status::Prepared
                && destination.is_some_and(|d| matches!(d.transport, "pull" | "manual")) =>
            {
                "waiting for the procedure to collect it".to_owned()
            }
            None => "in the outbox".to_owned(),
        },
        Status::Delivered => match awaiting_receipt_since {
            Some(since) => format!("delivered, no receipt since {}", rfc3339(since)),
            None => "delivered".to_owned(),
        },
        Status::Received => "received by the procedure".to_owned(),
        Status::Rejected => "rejected by the procedure".to_owned(),
        Status::InProgress => "in progress at the authority".to_owned(),
        Status::Query => "the authority has a question".to_owned(),
        Status::Decided => "decided".to_owned(),
        Status::Invalid => {
            "stopped: the message could not be produced; an engineer must look".to_owned()
        }
        Status::DeadLettered => "stopped: dead-lettered".to_owned(),
    };
    let mut view = match serde_json::to_value(&record) {
        Ok(view) => view,
        Err(_) => return Problem::internal().into_response(),
    };
    view["service_name"] = json!(
        state
            .hub
            .catalog
            .current()
            .get(&record.service)
            .map(|m| m.info.name.clone())
    );
    view["region_name"] = json!(state.hub.regions.name(&record.region));
    view["delivery"]["transport"] = json!(destination.map(|d| d.transport));
    view["delivery"]["destination"] = json!(destination.map(|d| d.destination.clone()));
    view["delivery"]["state"] = json!(state_text);
    // Delivered, and the procedure's receipt is overdue: since when it was delivered.
    view["delivery"]["awaiting_receipt_since"] = json!(awaiting_receipt_since.map(rfc3339));
    // The citizen's mailbox (questions, decisions) and the documents to download.
    match state.hub.store.mailbox(id).await {
        Ok((mailbox, documents)) => {
            view["mailbox"] = json!(mailbox);
            view["documents"] = json!(
                documents
                    .iter()
                    .map(|d| json!({
                        "id": d.id,
                        "filename": d.filename,
                        "media_type": d.media_type,
                        "size": d.size,
                        "sha512": d.sha512,
                        "href": format!("/api/v1/applications/{id}/documents/{}", d.id),
                    }))
                    .collect::<Vec<_>>()
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the mailbox failed");
            return Problem::store_unreachable().into_response();
        }
    }
    Json(view).into_response()
}

/// `GET /api/v1/applications/{id}/documents/{document}`: a document of the decision, for
/// the client that submitted the application and no one else.
pub async fn document(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((id, document)): Path<(String, String)>,
) -> Response {
    let Some(client) = state.clients.authenticate(&headers) else {
        return Problem::unauthorized().into_response();
    };
    let (Ok(id), Ok(document)) = (Uuid::parse_str(&id), Uuid::parse_str(&document)) else {
        return Problem::not_found().into_response();
    };
    let owned = match state.hub.store.application(id).await {
        Ok(Some(record)) => record.client_id == client,
        Ok(None) => false,
        Err(e) => {
            tracing::error!(error = %e, "reading an application failed");
            return Problem::store_unreachable().into_response();
        }
    };
    if !owned {
        return Problem::not_found().into_response();
    }
    match state.hub.store.document(id, document).await {
        Ok(Some((info, content))) => {
            // Served only as a download of a known type, never rendered on this origin.
            let media_type: &'static str = match info.media_type.as_str() {
                "application/pdf" => "application/pdf",
                "image/png" => "image/png",
                "image/jpeg" => "image/jpeg",
                _ => "application/octet-stream",
            };
            let disposition = kopplung_web::disposition::attachment(&info.filename);
            let mut response = content.into_response();
            let headers = response.headers_mut();
            headers.insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static(media_type),
            );
            if let Ok(value) = axum::http::HeaderValue::from_str(&disposition) {
                headers.insert(axum::http::header::CONTENT_DISPOSITION, value);
            }
            headers.insert(
                axum::http::header::X_CONTENT_TYPE_OPTIONS,
                axum::http::HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                axum::http::header::CONTENT_SECURITY_POLICY,
                axum::http::HeaderValue::from_static("sandbox"),
            );
            response
        }
        Ok(None) => Problem::not_found().into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading a document failed");
            Problem::store_unreachable().into_response()
        }
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
