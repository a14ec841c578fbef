//! Large attachments, never whole in memory:
//!
//! - `POST /api/v1/attachments?filename=…`: a client uploads one file as the raw body
//!   (its media type as `Content-Type`), streamed into chunks of [`FRAGMENT_BYTES`] while
//!   its SHA-512 is computed; the application then names it as `{"upload": id}`.
//! - `GET /api/v1/procedures/{id}/messages/{message}/attachments/{n}/{k}`: the claim
//!   check. The message carries each such attachment's hash, size and link; the
//!   procedure fetches fragment `k` with its own token, encrypted for it (CMS or JWE,
//!   as its envelope profile), one fragment in memory at a time.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use kopplung_transformers::FieldError;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::ApiState;
use super::declared_length;
use super::problem::Problem;
use crate::store::{FRAGMENT_BYTES, NewUpload, Store, StoreError, fragment_count};
use kopplung_core::intake::{content_matches, valid_filename};
use kopplung_pipeline::PrepareError;

#[derive(Deserialize)]
pub struct UploadQuery {
    filename: String,
}

pub async fn upload(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Body,
) -> Response {
    match receive(&state, &headers, query, body).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn receive(
    state: &ApiState,
    headers: &HeaderMap,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Body,
) -> Result<Response, Problem> {
    let client = super::caller(&state.clients, headers)?;
    // Refused from the declared length before anything else is looked at.
    let limit = state.limits.max_upload_bytes;
    let too_large =
        || Problem::too_large("attachment-too-large", "The attachment is too large", limit);
    if declared_length(headers).is_some_and(|n| n > limit) {
        return Err(too_large());
    }

    let Ok(Query(UploadQuery { filename })) = query else {
        return Err(Problem::validation(vec![FieldError::new(
            "filename",
            "Dateiname fehlt (?filename=…)",
        )]));
    };
    if !valid_filename(&filename) {
        return Err(Problem::validation(vec![FieldError::new(
            "filename",
            "Dateiname ist zu lang oder enthält unzulässige Zeichen",
        )]));
    }
    // Any media type some service accepts; the application's service checks its own.
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let accepted = state
        .hub
        .catalog
        .current()
        .values()
        .any(|m| m.form.attachments.media_types.contains(&media_type));
    if !accepted {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "No service accepts attachments of this media type",
        )
        .detail(format!("Content-Type {media_type:?}")));
    }
    let id = Uuid::new_v4();
    let created_at = state.hub.clock.now();
    state
        .hub
        .store
        .create_upload(&NewUpload {
            id,
            client_id: client,
            filename: filename.clone(),
            media_type: media_type.clone(),
            created_at,
        })
        .await
        .map_err(unavailable)?;
    match stream_into(state.hub.store.as_ref(), id, &media_type, limit, body).await {
        Ok((size, sha512)) => {
            tracing::info!(upload_id = %id, size, "attachment uploaded");
            let expires_at =
                created_at + time::Duration::hours(state.limits.upload_ttl_hours.into());
            let body = json!({
                "id": id,
                "filename": filename,
                "media_type": media_type,
                "size": size,
                "sha512": sha512,
                "expires_at": expires_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            });
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(failure) => {
            // Nothing half-stored: the chunks written so far go with it.
            if let Err(e) = state.hub.store.discard_upload(id).await {
                tracing::error!(upload_id = %id, error = %e, "discarding a failed upload failed; the cleanup removes it later");
            }
            Err(match failure {
                Failure::TooLarge => too_large(),
                Failure::Problem(problem) => problem,
                Failure::Store(e) => unavailable(e),
            })
        }
    }
}

enum Failure {
    TooLarge,
    Problem(Problem),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Streams the body into chunks of [`FRAGMENT_BYTES`]; returns the size and SHA-512.
async fn stream_into(
    store: &dyn Store,
    id: Uuid,
    media_type: &str,
    limit: u64,
    body: Body,
) -> Result<(u64, String), Failure> {
    let mut stream = body.into_data_stream();
    let mut chunk: Vec<u8> = Vec::with_capacity(FRAGMENT_BYTES);
    let mut hasher = openssl::sha::Sha512::new();
    let mut size: u64 = 0;
    let mut seq: u64 = 0;
    while let Some(frame) = stream.next().await {
        let data = frame.map_err(|_| {
            Failure::Problem(Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                "The request body could not be read",
            ))
        })?;
        size += data.len() as u64;
        if size > limit {
            return Err(Failure::TooLarge);
        }
        hasher.update(&data);
        let mut rest: &[u8] = &data;
        while !rest.is_empty() {
            let take = (FRAGMENT_BYTES - chunk.len()).min(rest.len());
            chunk.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if chunk.len() == FRAGMENT_BYTES {
                store_chunk(store, id, seq, media_type, &chunk).await?;
                seq += 1;
                chunk.clear();
            }
        }
    }
    if size == 0 {
        return Err(Failure::Problem(Problem::validation(vec![
            FieldError::new("body", "die Datei ist leer"),
        ])));
    }
    if !chunk.is_empty() {
        store_chunk(store, id, seq, media_type, &chunk).await?;
    }
    let sha512 = hex::encode(hasher.finish());
    store.complete_upload(id, size, &sha512).await?;
    Ok((size, sha512))
}

async fn store_chunk(
    store: &dyn Store,
    id: Uuid,
    seq: u64,
    media_type: &str,
    chunk: &[u8],
) -> Result<(), Failure> {
    // The file signature is in the first chunk: a renamed file is caught here.
    if seq == 0 && !content_matches(media_type, chunk) {
        return Err(Failure::Problem(Problem::validation(vec![
            FieldError::new("body", "der Inhalt passt nicht zum angegebenen Medientyp"),
        ])));
    }
    store.append_upload_chunk(id, seq, chunk).await?;
    Ok(())
}

fn unavailable(e: StoreError) -> Problem {
    tracing::error!(error = %e, "storing an upload failed");
    Problem::unavailable("the attachment could not be stored; nothing was kept, please retry")
}

/// `GET /api/v1/procedures/{id}/messages/{message}/attachments/{n}/{k}`: fragment `k`
/// (from 1) of attachment `n` (from 1), encrypted for the procedure.
pub async fn fragment(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((procedure, message, n, k)): Path<(String, String, String, String)>,
) -> Response {
    if let Err(problem) = super::pull::authorised(&state, &headers, &procedure) {
        return problem.into_response();
    }
    let (Ok(message), Some(position), Some(fragment)) = (
        Uuid::parse_str(&message),
        n.parse::<u32>().ok().and_then(|n| n.checked_sub(1)),
        k.parse::<u64>().ok().and_then(|k| k.checked_sub(1)),
    ) else {
        return Problem::not_found().into_response();
    };
    let plain = match state
        .hub
        .store
        .attachment_fragment(&procedure, message, position, fragment)
        .await
    {
        Ok(Some(plain)) => plain,
        Ok(None) => return Problem::not_found().into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading an attachment fragment failed");
            return Problem::store_unreachable().into_response();
        }
    };
    let preparer = state.hub.preparer.clone();
    let sealing = procedure.clone();
    let sealed =
        tokio::task::spawn_blocking(move || preparer.seal_fragment(&sealing, &plain)).await;
    match sealed {
        Ok(Ok((content_type, bytes))) => {
            let mut response = Response::new(Body::from(bytes));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(Err(PrepareError::Blocked(reason) | PrepareError::Invalid(reason))) => {
            tracing::error!(%procedure, %reason, "an attachment fragment cannot be encrypted for the procedure");
            Problem::unavailable("the attachment cannot be encrypted for this procedure now")
                .into_response()
        }
        Err(_) => Problem::internal().into_response(),
    }
}

/// An attachment's plain bytes as a streamed body, one fragment at a time (the clerk
/// inbox's download of an uploaded attachment).
pub(crate) fn plain_body(
    store: Arc<dyn Store>,
    procedure: String,
    message: Uuid,
    position: u32,
    size: u64,
) -> Body {
    let count = fragment_count(size);
    let stream = futures_util::stream::unfold(0u64, move |k| {
        let (store, procedure) = (store.clone(), procedure.clone());
        async move {
            if k >= count {
                return None;
            }
            let next = match store
                .attachment_fragment(&procedure, message, position, k)
                .await
            {
                Ok(Some(bytes)) => Ok(Bytes::from(bytes)),
                Ok(None) => Err(std::io::Error::other("attachment fragment missing")),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            Some((next, k + 1))
        }
    });
    Body::from_stream(stream)
}
