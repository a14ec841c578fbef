//! The citizen writes to the authority about a submitted application: answers a query
//! (Antwort), sends documents later (Nachreichung) or objects to a decision
//! (Widerspruch). The hub checks whether that is possible now and says why not in
//! German; the portal shows its words as they are.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request};
use axum::http::{StatusCode, header};
use http_body_util::Limited;
use serde::Deserialize;
use serde_json::{Value, json};

use super::submitted;
use crate::Shared;
use crate::forms::attachments::{
    clean_filename, human_size, media_label, photo_refused, sniff, transfer_failed,
};
use crate::forms::drafts::Draft;
use crate::forms::photo;
use crate::router_client::{FollowUpOut, FollowUpSent, OutgoingAttachment};
use crate::web::{Failure, Page, Visit, Visitor};
use kopplung_web::shell::{german_day_iso, german_time_rfc3339, same_token, see_other};

/// At most this many characters of text, as the hub takes them.
const MAX_TEXT: usize = 4000;

/// What the citizen chose: the kind and the mailbox entry it refers to.
#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    art: Option<String>,
    bezug: Option<String>,
}

/// A kind of message, as the form presents it.
struct Kind {
    code: &'static str,
    heading: &'static str,
    text_label: &'static str,
    text_required: bool,
    file_required: bool,
    button: &'static str,
}

fn kind(code: &str) -> Option<Kind> {
    Some(match code {
        "antwort" => Kind {
            code: "antwort",
            heading: "Auf die Rückfrage antworten",
            text_label: "Ihre Antwort",
            // A photo the authority asked for may be the whole answer.
            text_required: false,
            file_required: false,
            button: "Antwort senden",
        },
        "nachreichung" => Kind {
            code: "nachreichung",
            heading: "Unterlagen nachreichen",
            text_label: "Nachricht an die Behörde",
            text_required: false,
            file_required: true,
            button: "Unterlagen senden",
        },
        "widerspruch" => Kind {
            code: "widerspruch",
            heading: "Widerspruch einlegen",
            text_label: "Begründung Ihres Widerspruchs",
            text_required: true,
            file_required: false,
            button: "Widerspruch verbindlich einlegen",
        },
        _ => return None,
    })
}

/// The form, with what was entered and what is wrong with it.
struct Filled<'a> {
    text: &'a str,
    errors: Vec<Value>,
    refused: Option<String>,
    key: Option<String>,
}

/// What a message is written about: one submitted application, reached from the
/// citizen's own page or from an anonymous reporter's status link.
pub(crate) struct Case {
    pub application_id: String,
    pub service: String,
    pub service_name: String,
    pub receipt: String,
    /// The application's page: the form posts to `{home}/nachricht` and leads back here.
    pub home: String,
    /// Written without an account: the upload quotas apply.
    pub anonymous: bool,
    /// Only answers to a Rückfrage (the status link proves the e-mail address, not who
    /// applied: an objection or later documents need the citizen's own page).
    pub answers_only: bool,
}

impl Case {
    fn of_draft(draft: &Draft) -> Result<Self, Failure> {
        let Some(application_id) = draft.application_id.clone() else {
            return Err(Failure::not_found());
        };
        Ok(Self {
            application_id,
            service: draft.service.clone(),
            service_name: draft.service_name.clone(),
            receipt: draft.receipt.clone().unwrap_or_default(),
            home: format!("/antraege/{}", draft.id),
            anonymous: draft.account_id.is_none(),
            answers_only: false,
        })
    }

    fn kind(&self, code: &str) -> Option<Kind> {
        kind(code).filter(|k| !self.answers_only || k.code == "antwort")
    }
}

async fn view(
    state: &Shared,
    visitor: &Visitor,
    case: &Case,
    kind: &Kind,
    bezug: Option<&str>,
    filled: &Filled<'_>,
) -> Result<Value, Failure> {
    let application = state.router.application(&case.application_id).await?;
    // What the message answers or objects to, as the mailbox shows it.
    let entry = application
        .as_ref()
        .and_then(|a| a["mailbox"].as_array())
        .and_then(|all| {
            all.iter()
                .rev()
                .find(|m| bezug.is_none_or(|b| m["event_id"] == b) && m["kind"] != "received")
        })
        .filter(|_| kind.code != "nachreichung");
    let (rules, service) = match crate::forms::service_of(state, &case.service).await {
        Ok(service) => (service.form().ok().map(|f| f.attachments), Some(service)),
        Err(_) => (None, None),
    };
    let wording = service.as_ref().map(|s| s.wording).unwrap_or_default();
    Ok(json!({
        "home": case.home,
        "back": format!("Zurück zu {}", wording.yours_dative()),
        "wording": wording.words(),
        "receipt": case.receipt,
        "service": service.map(|s| s.name).unwrap_or_else(|| case.service_name.clone()),
        "csrf": visitor.csrf,
        "kind": kind.code,
        "heading": kind.heading,
        "text_label": kind.text_label,
        "text_required": kind.text_required,
        "text_or_file": kind.code == "antwort",
        "file_required": kind.file_required,
        "button": kind.button,
        "bezug": bezug,
        "entry": entry.map(|m| json!({
            "label": super::kind_label(m["kind"].as_str().unwrap_or_default(), wording),
            "text": m["text"],
            "at": german_time_rfc3339(m["at"].as_str().unwrap_or_default()),
            "deadline": m["appeal"]["deadline"].as_str().map(german_day_iso),
        })),
        "types": rules.as_ref().map(|r| r.media_types.iter().map(|t| media_label(t)).collect::<Vec<_>>().join(", ")),
        "max_size": rules.as_ref().map(|r| human_size(i64::try_from(r.max_bytes).unwrap_or(i64::MAX))),
        // Photos may arrive larger: they are scaled down (as on the attachments page).
        "photo_size": rules.as_ref().filter(|r| photo::taken_by(&r.media_types)).map(|r| human_size(
            i64::try_from(r.max_bytes.max(state.config.settings.limits.photo_upload_bytes)).unwrap_or(i64::MAX)
        )),
        "files_allowed": rules.as_ref().is_some_and(|r| r.max_count > 0 && r.max_bytes > 0),
        "max_text": MAX_TEXT,
        // Kept when the form comes back with an error: it is still the same message.
        "key": filled.key.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        "text": filled.text,
        "text_error": error_of(&filled.errors, "text"),
        "file_error": error_of(&filled.errors, "datei"),
        "errors": filled.errors,
        "refused": filled.refused,
    }))
}

/// The first error message of the field `id`, shown at the field.
fn error_of(errors: &[Value], id: &str) -> Option<String> {
    errors
        .iter()
        .find(|e| e["id"] == id)
        .and_then(|e| e["message"].as_str())
        .map(str::to_owned)
}

/// The citizen's own messages to the authority, as the hub lists them with the
/// application, for the status page.
pub(crate) fn sent(application: &Value) -> Vec<Value> {
    application["messages"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|m| {
                    let code = m["kind"].as_str().unwrap_or_default();
                    json!({
                        "kind_code": code,
                        "kind": kind_label(code),
                        "refers_to": m["refers_to"],
                        "at": german_time_rfc3339(m["created_at"].as_str().unwrap_or_default()),
                        "status": delivery_label(m["status"].as_str().unwrap_or_default()),
                        "counts": still_counts(m["status"].as_str().unwrap_or_default()),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn kind_label(code: &str) -> &'static str {
    match code {
        "antwort" => "Ihre Antwort auf die Rückfrage",
        "nachreichung" => "Nachgereichte Unterlagen",
        "widerspruch" => "Ihr Widerspruch",
        "zahlung" => "Zahlungsnachweis an die Kasse der Behörde",
        _ => "Ihre Nachricht",
    }
}

/// Whether a message still stands: one the authority refused or that could not be
/// delivered may be sent again (as the hub's rules say).
fn still_counts(status: &str) -> bool {
    !matches!(status, "rejected" | "invalid" | "dead_lettered")
}

/// Where a message of the citizen is: on its way, or with the authority.
fn delivery_label(status: &str) -> &'static str {
    match status {
        "accepted" | "prepared" => "wird übermittelt",
        "delivered" => "an die Behörde übermittelt",
        "received" => "bei der Behörde eingegangen",
        "rejected" => {
            "von der Behörde nicht angenommen. Bitte rufen Sie die Behörde an oder senden Sie die Nachricht noch einmal"
        }
        "invalid" | "dead_lettered" => {
            "Übermittlung gestört. Wir kümmern uns darum; Sie müssen nichts tun"
        }
        _ => "wird bearbeitet",
    }
}

/// Whether the service takes files at all (a later document needs one).
pub(crate) async fn takes_files(state: &Shared, service: &str) -> bool {
    match crate::forms::service_of(state, service).await {
        Ok(service) => service
            .form()
            .is_ok_and(|f| f.attachments.max_count > 0 && f.attachments.max_bytes > 0),
        Err(_) => false,
    }
}

pub async fn page(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    Query(choice): Query<Choice>,
) -> Page {
    let draft = submitted(&state, &visitor, &id).await?;
    form(&state, &visitor, &Case::of_draft(&draft)?, choice).await
}

/// The form for one kind of message about `case`.
pub(crate) async fn form(state: &Shared, visitor: &Visitor, case: &Case, choice: Choice) -> Page {
    let Some(kind) = choice.art.as_deref().and_then(|code| case.kind(code)) else {
        return Err(Failure::not_found());
    };
    let filled = Filled {
        text: "",
        errors: Vec::new(),
        refused: None,
        key: None,
    };
    let data = view(
        state,
        visitor,
        case,
        &kind,
        choice.bezug.as_deref(),
        &filled,
    )
    .await?;
    state.templates.ok(
        visitor,
        "follow_up",
        &format!("{} – Vorgang {}", kind.heading, case.receipt),
        &data,
    )
}

/// What the form posted.
#[derive(Default)]
struct Posted {
    art: String,
    bezug: Option<String>,
    text: String,
    file: Option<(String, String, Vec<u8>)>,
    too_large: bool,
    /// The form's one-time key (the hub's Idempotency-Key).
    key: String,
}

/// Reads the form: the CSRF field must come (and match) before the file.
async fn receive(
    visitor: &Visitor,
    multipart: &mut Multipart,
    max_bytes: usize,
) -> Result<Posted, Failure> {
    let mut csrf_ok = false;
    let mut posted = Posted::default();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| transfer_failed())?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "datei" {
            if !csrf_ok {
                return Err(Failure::csrf());
            }
            let filename = clean_filename(field.file_name().unwrap_or_default());
            let declared = field.content_type().unwrap_or_default().to_owned();
            let mut content = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|_| transfer_failed())? {
                if content.len() + chunk.len() > max_bytes {
                    posted.too_large = true;
                    return Ok(posted);
                }
                content.extend_from_slice(&chunk);
            }
            if !content.is_empty() {
                posted.file = Some((filename, declared, content));
            }
            continue;
        }
        let value = field.text().await.map_err(|_| transfer_failed())?;
        match name.as_str() {
            "csrf" if same_token(&value, &visitor.csrf) => csrf_ok = true,
            "csrf" => return Err(Failure::csrf()),
            "art" => posted.art = value,
            "bezug" => posted.bezug = Some(value).filter(|v| !v.is_empty()),
            "text" => posted.text = value.replace("\r\n", "\n"),
            "schluessel" if is_key(&value) => posted.key = value,
            _ => {}
        }
    }
    if !csrf_ok {
        return Err(Failure::csrf());
    }
    if posted.key.is_empty() {
        // A form without its key (an old page): a fresh one, sent once.
        posted.key = uuid::Uuid::new_v4().to_string();
    }
    Ok(posted)
}

/// A form key as the portal makes them (a UUID), nothing else.
fn is_key(value: &str) -> bool {
    uuid::Uuid::parse_str(value).is_ok()
}

pub async fn send(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    request: Request,
) -> Page {
    let draft = submitted(&state, &visitor, &id).await?;
    post(&state, &visitor, &Case::of_draft(&draft)?, request).await
}

/// Takes the posted message about `case` and hands it to the hub; the form again with
/// what is wrong, or on to the application's page.
pub(crate) async fn post(state: &Shared, visitor: &Visitor, case: &Case, request: Request) -> Page {
    let service = crate::forms::service_of(state, &case.service).await?;
    let rules = service.form()?.attachments;
    // A phone photo may arrive larger than the limit: it is scaled down to it.
    let photos = photo::taken_by(&rules.media_types);
    let arriving = if photos {
        rules
            .max_bytes
            .max(state.config.settings.limits.photo_upload_bytes)
    } else {
        rules.max_bytes
    };
    let limit = arriving
        .saturating_add(state.config.settings.limits.upload_overhead_bytes)
        .saturating_add(4 * MAX_TEXT);
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = format!(
        "Die Datei ist zu groß. Erlaubt sind höchstens {} je Datei. Bitte verkleinern Sie sie und versuchen Sie es noch einmal.",
        human_size(i64::try_from(rules.max_bytes).unwrap_or(i64::MAX))
    );
    if declared_length.is_some_and(|length| length > limit as u64) {
        return Err(Failure::too_large(too_large));
    }
    if case.anonymous {
        state.quotas.check_disk(&state.config.data_dir)?;
        state
            .quotas
            .anonymous_upload(visitor.client, declared_length.unwrap_or(limit as u64))?;
    }
    let (parts, body) = request.into_parts();
    let limited = Request::from_parts(parts, Body::new(Limited::new(body, limit)));
    let mut multipart = Multipart::from_request(limited, state)
        .await
        .map_err(|_| transfer_failed())?;
    let posted = receive(visitor, &mut multipart, arriving).await?;
    let Some(kind) = case.kind(&posted.art) else {
        return Err(Failure::bad_request(
            "Diese Art von Nachricht gibt es nicht. Bitte öffnen Sie die Seite Ihres Vorgangs und wählen Sie dort „Auf die Rückfrage antworten“, „Unterlagen nachreichen“ oder „Widerspruch einlegen“.",
        ));
    };
    let text = posted.text.trim();
    let mut errors = Vec::new();
    if kind.code == "antwort" && text.is_empty() && posted.file.is_none() && !posted.too_large {
        errors.push(json!({"id": "text", "message": "Bitte schreiben Sie eine Antwort oder fügen Sie eine Datei bei."}));
    } else if kind.text_required && text.is_empty() {
        errors.push(json!({"id": "text", "message": "Bitte schreiben Sie einen Text."}));
    } else if text.chars().count() > MAX_TEXT {
        errors.push(json!({"id": "text", "message": format!(
            "Der Text hat {} Zeichen; höchstens {MAX_TEXT} sind möglich. Bitte kürzen Sie ihn.",
            text.chars().count()
        )}));
    }
    let mut attachments = Vec::new();
    if posted.too_large {
        errors.push(json!({"id": "datei", "message": too_large}));
    } else if let Some((filename, declared, content)) = posted.file {
        match sniff(&content) {
            Some(actual @ ("image/jpeg" | "image/png"))
                if photos && rules.media_types.iter().any(|t| t == actual) =>
            {
                // Upright, within the limit, without metadata (where it was taken).
                match photo::fit(content, &filename, rules.max_bytes).await {
                    Ok((prepared, filename)) => attachments.push(OutgoingAttachment {
                        filename,
                        media_type: prepared.media_type.to_owned(),
                        content: prepared.content,
                        slot: None,
                    }),
                    Err(refused) => errors.push(
                        json!({"id": "datei", "message": photo_refused(&refused, rules.max_bytes)}),
                    ),
                }
            }
            Some(_) if content.len() > rules.max_bytes => {
                errors.push(json!({"id": "datei", "message": too_large}));
            }
            Some(actual)
                if rules.media_types.iter().any(|t| t == actual)
                    && (declared == actual
                        || declared == "application/octet-stream"
                        || declared.is_empty()) =>
            {
                attachments.push(OutgoingAttachment {
                    filename,
                    media_type: actual.to_owned(),
                    content,
                    slot: None,
                });
            }
            _ => errors.push(json!({"id": "datei", "message": format!(
                "Dieser Dateityp ist nicht erlaubt. Erlaubt sind: {}. Bitte wählen Sie eine andere Datei.",
                rules.media_types.iter().map(|t| media_label(t)).collect::<Vec<_>>().join(", ")
            )})),
        }
    } else if kind.file_required {
        errors.push(json!({"id": "datei", "message": "Bitte wählen Sie eine Datei aus."}));
    }
    let mut refused = None;
    if errors.is_empty() {
        let answer = state
            .router
            .send_follow_up(
                &case.application_id,
                &FollowUpOut {
                    kind: kind.code,
                    refers_to: posted.bezug.as_deref(),
                    text: Some(text).filter(|t| !t.is_empty()),
                    attachments: &attachments,
                    payment: None,
                    // The form's own key: a second click sends nothing twice.
                    idempotency_key: &posted.key,
                },
            )
            .await?;
        match answer {
            FollowUpSent::Accepted => {
                return Ok(see_other(&format!("{}?nachricht=gesendet", case.home)));
            }
            FollowUpSent::Invalid(invalid) => {
                for e in invalid {
                    let id = if e.field.starts_with("attachments") {
                        "datei"
                    } else {
                        "text"
                    };
                    errors.push(json!({"id": id, "message": e.message}));
                }
            }
            FollowUpSent::TooLarge => errors.push(json!({"id": "datei", "message": too_large})),
            FollowUpSent::Refused(why) => refused = Some(why),
            FollowUpSent::Unknown => return Err(Failure::not_found()),
        }
    }
    let status = if refused.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let filled = Filled {
        text: &posted.text,
        errors,
        refused,
        key: Some(posted.key.clone()),
    };
    let data = view(
        state,
        visitor,
        case,
        &kind,
        posted.bezug.as_deref(),
        &filled,
    )
    .await?;
    Ok(state.templates.page(
        visitor,
        status,
        "follow_up",
        &format!("Fehler: {} – Vorgang {}", kind.heading, case.receipt),
        &data,
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_refused_or_undeliverable_message_no_longer_counts() {
        let application = json!({"messages": [
            {"kind": "widerspruch", "status": "rejected", "refers_to": "d-1"},
            {"kind": "widerspruch", "status": "dead_lettered", "refers_to": "d-1"},
            {"kind": "antwort", "status": "received", "refers_to": "q-1"},
            {"kind": "nachreichung", "status": "accepted"},
        ]});
        let counts: Vec<bool> = super::sent(&application)
            .iter()
            .map(|m| m["counts"] == true)
            .collect();
        assert_eq!(counts, [false, false, true, true]);
        assert_eq!(
            super::sent(&application)[0]["status"],
            "von der Behörde nicht angenommen. Bitte rufen Sie die Behörde an oder senden Sie die Nachricht noch einmal"
        );
    }
}
