//! `POST /api/v1/applications`: validate, route, store durably, then answer 202.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use kopplung_transformers::FieldError;
use openssl::sha::{sha256, sha512};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::problem::Problem;
use super::{ApiState, receipt};
use crate::regions::is_ars;
use crate::store::{
    Accepted, Attachment, AttachmentContent, IdempotencyKey, Inserted, NewApplication, UploadInfo,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntakeRequest {
    service: String,
    region: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
}

/// An attachment: either inside the request (`filename`, `media_type`,
/// `content_base64`), or uploaded before with `POST /api/v1/attachments` (`upload`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachmentIn {
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    content_base64: Option<String>,
    #[serde(default)]
    upload: Option<String>,
}

pub async fn submit(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    // The service label, once the body names one of ours.
    let mut service = None;
    let (response, outcome) = match accept(&state, &headers, body, &mut service).await {
        Ok(response) => {
            let outcome = if response.headers().contains_key("idempotent-replayed") {
                "replayed"
            } else {
                "accepted"
            };
            (response, outcome.to_owned())
        }
        Err(problem) => {
            let outcome = problem
                .kind
                .strip_prefix("urn:kopplung:problem:")
                .unwrap_or("other")
                .to_owned();
            (problem.into_response(), outcome)
        }
    };
    let metrics = &state.metrics;
    metrics
        .intake
        .with_label_values(&[service.as_deref().unwrap_or("unknown"), outcome.as_str()])
        .inc();
    metrics
        .intake_seconds
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn accept(
    state: &ApiState,
    headers: &HeaderMap,
    body: Body,
    service: &mut Option<String>,
) -> Result<Response, Problem> {
    let client = state
        .clients
        .authenticate(headers)
        .ok_or_else(Problem::unauthorized)?
        .to_owned();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send the application as application/json",
        ));
    }
    let idempotency = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                // Visible characters only: no control characters (TAB is valid in a
                // header value) and no spaces, which logs and tools would mangle.
                .filter(|k| {
                    !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic())
                })
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "bad-idempotency-key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })?;
            Some(key.to_owned())
        }
    };
    let limit = state.limits.max_body_bytes;
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The request body is too large",
        )
        .detail(format!("at most {limit} bytes"))
    };
    if declared_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over_limit = e
            .into_inner()
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some();
        if over_limit {
            too_large()
        } else {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                "The request body could not be read",
            )
        }
    })?;

    let idempotency = idempotency.map(|key| IdempotencyKey {
        key,
        request_sha256: hex::encode(sha256(&bytes)),
    });
    let request: IntakeRequest = serde_json::from_slice(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "The body is not a valid application",
        )
        .detail(e.to_string())
    })?;

    if state.catalog.current().get(&request.service).is_some() {
        *service = Some(request.service.clone());
    }
    // A repeated request has the same body, so it parses as the first one did.
    if let Some(key) = &idempotency {
        match state.store.idempotent_answer(&client, key).await {
            Ok(Some(answer)) => return answer_for(state, answer),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading idempotency keys failed");
                return Err(Problem::unavailable("the store is not reachable"));
            }
        }
    }
    let uploads = find_uploads(state, &request).await?;
    let (new, procedure_id) = validate(state, &client, request, idempotency, &uploads)?;
    let mut new = new;
    for _ in 0..5 {
        match state.store.insert_application(&new).await {
            Ok(Inserted::ReceiptTaken) => new.receipt = receipt::generate(),
            Ok(Inserted::UploadTaken(index)) => {
                return Err(Problem::validation(vec![FieldError::new(
                    format!("attachments[{index}].upload"),
                    "dieser Upload gehört bereits zu einem anderen Antrag",
                )]));
            }
            Ok(answer) => {
                if let Inserted::Created(accepted) = &answer {
                    tracing::info!(application_id = %accepted.id, service = %new.service_key, procedure = %procedure_id, "application accepted");
                    state.wake.notify_one();
                }
                return answer_for(state, answer);
            }
            Err(e) => {
                tracing::error!(error = %e, "storing an application failed");
                return Err(Problem::unavailable(
                    "the application could not be stored; nothing was kept, please retry",
                ));
            }
        }
    }
    Err(Problem::internal().detail("no free receipt number"))
}

fn answer_for(state: &ApiState, answer: Inserted) -> Result<Response, Problem> {
    let (accepted, replayed) = match answer {
        Inserted::Created(accepted) => (accepted, false),
        Inserted::Replayed(accepted) => (accepted, true),
        Inserted::KeyConflict => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-reused",
                "This Idempotency-Key was used with a different request",
            ));
        }
        Inserted::ReceiptTaken | Inserted::UploadTaken(_) => return Err(Problem::internal()),
    };
    Ok(accepted_response(state, &accepted, replayed))
}

fn accepted_response(state: &ApiState, accepted: &Accepted, replayed: bool) -> Response {
    let location = format!("{}/api/v1/applications/{}", state.public_url, accepted.id);
    let body = json!({
        "id": accepted.id,
        "receipt": accepted.receipt,
        "status": "accepted",
    });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The body length the client declares (`Content-Length`), to refuse early.
pub(super) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The uploads the request names, as the store has them (absent ones left out).
async fn find_uploads(
    state: &ApiState,
    request: &IntakeRequest,
) -> Result<Vec<UploadInfo>, Problem> {
    let mut found = Vec::new();
    for attachment in &request.attachments {
        let Some(id) = attachment
            .upload
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
        else {
            continue;
        };
        match state.store.upload(id).await {
            Ok(Some(upload)) => found.push(upload),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading an upload failed");
                return Err(Problem::unavailable("the store is not reachable"));
            }
        }
    }
    Ok(found)
}

/// Checks everything before anything is stored; collects all field errors at once.
fn validate(
    state: &ApiState,
    client: &str,
    request: IntakeRequest,
    idempotency: Option<IdempotencyKey>,
    uploads: &[UploadInfo],
) -> Result<(NewApplication, String), Problem> {
    // One snapshot of the mappings for the whole request.
    let mappings = state.catalog.current();
    let Some(mapping) = mappings.get(&request.service) else {
        return Err(Problem::validation(vec![FieldError::new(
            "service",
            "unbekannte Leistung",
        )]));
    };
    if !is_ars(&request.region) {
        return Err(Problem::validation(vec![FieldError::new(
            "region",
            "muss ein 12-stelliger Regionalschlüssel (ARS) sein",
        )]));
    }
    if state.regions.name(&request.region).is_none() {
        return Err(Problem::validation(vec![FieldError::new(
            "region",
            "unbekannte Gemeinde",
        )]));
    }
    let Some(procedure_id) = state.routing.resolve(&request.service, &request.region) else {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no-route",
            "No authority is responsible for this service in this region",
        )
        .detail(format!(
            "service {} cannot be applied for online in region {}",
            request.service, request.region
        )));
    };

    let mut errors = Vec::new();
    let data = match mapping.form.validate(&request.data) {
        Ok(data) => Some(data),
        Err(field_errors) => {
            errors.extend(field_errors.into_iter().map(|e| FieldError {
                field: format!("data.{}", e.field),
                message: e.message,
            }));
            None
        }
    };
    let rules = &mapping.form.attachments;
    if request.attachments.len() > rules.max_count {
        errors.push(FieldError::new(
            "attachments",
            format!("höchstens {} Anlagen", rules.max_count),
        ));
    }
    let mut attachments = Vec::new();
    for (index, attachment) in request.attachments.into_iter().enumerate() {
        let at = |name: &str| format!("attachments[{index}].{name}");
        let AttachmentIn {
            filename,
            media_type,
            content_base64,
            upload,
        } = attachment;
        let inline = match (upload, filename, media_type, content_base64) {
            (Some(upload), None, None, None) => {
                // Another client's upload does not exist for this one.
                let found = Uuid::parse_str(&upload)
                    .ok()
                    .and_then(|id| uploads.iter().find(|u| u.id == id))
                    .filter(|u| u.client_id == client);
                let Some(found) = found else {
                    errors.push(FieldError::new(at("upload"), "unbekannter Upload"));
                    continue;
                };
                let Some((size, sha512)) = &found.complete else {
                    errors.push(FieldError::new(
                        at("upload"),
                        "der Upload ist nicht vollständig",
                    ));
                    continue;
                };
                if found.application_id.is_some() {
                    errors.push(FieldError::new(
                        at("upload"),
                        "dieser Upload gehört bereits zu einem anderen Antrag",
                    ));
                    continue;
                }
                if !rules.media_types.iter().any(|m| m == &found.media_type) {
                    errors.push(FieldError::new(
                        at("upload"),
                        format!(
                            "Medientyp {} nicht erlaubt; erlaubt sind: {}",
                            found.media_type,
                            rules.media_types.join(", ")
                        ),
                    ));
                    continue;
                }
                if *size > rules.max_bytes as u64 {
                    return Err(attachment_too_large(index, rules.max_bytes));
                }
                attachments.push(Attachment {
                    filename: found.filename.clone(),
                    media_type: found.media_type.clone(),
                    sha512: sha512.clone(),
                    size: *size,
                    content: AttachmentContent::Upload(found.id),
                });
                continue;
            }
            (None, Some(filename), Some(media_type), Some(content_base64)) => {
                (filename, media_type, content_base64)
            }
            _ => {
                errors.push(FieldError::new(
                    format!("attachments[{index}]"),
                    "entweder filename, media_type und content_base64 oder nur upload angeben",
                ));
                continue;
            }
        };
        let (filename, media_type, content_base64) = inline;
        if !valid_filename(&filename) {
            errors.push(FieldError::new(
                at("filename"),
                "Dateiname fehlt, ist zu lang oder enthält unzulässige Zeichen",
            ));
        }
        if !rules.media_types.iter().any(|m| m == &media_type) {
            errors.push(FieldError::new(
                at("media_type"),
                format!("erlaubt sind: {}", rules.media_types.join(", ")),
            ));
        }
        // Decoded size from the encoded length, before decoding anything big.
        if content_base64.len() / 4 * 3 > rules.max_bytes + 2 {
            return Err(attachment_too_large(index, rules.max_bytes));
        }
        let content = match base64::engine::general_purpose::STANDARD.decode(&content_base64) {
            Ok(content) => content,
            Err(_) => {
                errors.push(FieldError::new(
                    at("content_base64"),
                    "kein gültiges Base64",
                ));
                continue;
            }
        };
        if content.len() > rules.max_bytes {
            return Err(attachment_too_large(index, rules.max_bytes));
        }
        if !content_matches(&media_type, &content) {
            errors.push(FieldError::new(
                at("content_base64"),
                "der Inhalt passt nicht zum angegebenen Medientyp",
            ));
        }
        attachments.push(Attachment {
            filename,
            media_type,
            sha512: hex::encode(sha512(&content)),
            size: content.len() as u64,
            content: AttachmentContent::Inline(content),
        });
    }
    let (Some(data), true) = (data, errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    // Time-ordered ids (UUIDv7, RFC 9562): the store's indexes on them grow at the end
    // instead of at random pages, so a commit of many applications writes few pages.
    let new = NewApplication {
        id: Uuid::now_v7(),
        receipt: receipt::generate(),
        client_id: client.to_owned(),
        service_key: request.service,
        region: request.region,
        procedure_id: procedure_id.to_owned(),
        payload: data,
        attachments,
        message_id: Uuid::now_v7(),
        message_type: mapping.info.message.message_type.clone(),
        idempotency,
        received_at: OffsetDateTime::now_utc(),
    };
    Ok((new, procedure_id.to_owned()))
}

fn attachment_too_large(index: usize, max_bytes: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "attachment-too-large",
        "An attachment is too large",
    )
    .detail(format!(
        "attachments[{index}] is larger than {max_bytes} bytes"
    ))
}

pub(super) fn valid_filename(name: &str) -> bool {
    // Only dots and blanks (`.`, `..`) name a folder, not a file, wherever it is saved.
    !name
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .is_empty()
        && name.chars().count() <= 255
        && !name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
        && kopplung_transformers::text::normalise(name).is_ok()
}

/// A cheap check of the file signature, so a renamed file is caught at intake.
pub(super) fn content_matches(media_type: &str, content: &[u8]) -> bool {
    match media_type {
        "image/jpeg" => content.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => content.starts_with(b"\x89PNG\r\n\x1a\n"),
        "application/pdf" => content.starts_with(b"%PDF-"),
        _ => true,
    }
}
