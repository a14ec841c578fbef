//! A draft's attachments: the upload page, the upload and the removal.
//!
//! An upload is checked before any of its body is read: the draft must be the
//! visitor's, the declared length must fit the service's attachment limit (plus the
//! multipart framing), and an anonymous draft's session and address must have quota
//! left (and the disk room). Then the body is read through a limit of that size, the
//! CSRF field before the file; the file streams up to the service's limit.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request};
use axum::http::{StatusCode, header};
use http_body_util::Limited;
use serde_json::{Value, json};

use super::drafts::{self, Draft};
use super::{location, open_draft, open_draft_of_service, photo, progress, render, service_of};
use crate::Shared;
use crate::quota::human_bytes;
use crate::router_client::Service;
use crate::web::{Failure, Page, Posted, Visit, Visitor};
use kopplung_forms::AttachmentRules;
use kopplung_forms::form::AttachmentSlot;
use kopplung_web::shell::{same_token, see_other};

pub(crate) fn human_size(bytes: i64) -> String {
    human_bytes(u64::try_from(bytes).unwrap_or(0))
}

pub(crate) fn media_label(media_type: &str) -> &str {
    match media_type {
        "application/pdf" => "PDF",
        "image/jpeg" => "JPEG",
        "image/png" => "PNG",
        other => other,
    }
}

/// Where a file goes: one of the form's attachment slots, or the further documents.
struct Target<'a> {
    slot: Option<&'a AttachmentSlot>,
    media_types: &'a [String],
    max_bytes: usize,
}

impl<'a> Target<'a> {
    fn of(rules: &'a AttachmentRules, slot: Option<&'a AttachmentSlot>) -> Self {
        Self {
            slot,
            media_types: slot.map_or(&rules.media_types, |s| s.media_types(rules)),
            max_bytes: slot.map_or(rules.max_bytes, |s| s.max_bytes(rules)),
        }
    }

    /// The file input's id (the error summary links to it).
    fn input_id(&self) -> String {
        self.slot
            .map_or_else(|| "datei".to_owned(), |s| format!("datei-{}", s.name))
    }

    /// Whether phone photos go here (scaled down to `max_bytes` on arrival, `photo`).
    fn takes_photos(&self) -> bool {
        photo::taken_by(self.media_types)
    }

    /// What one file may bring: `max_bytes`, or the larger photo limit for photos.
    fn arriving(&self, photo_bytes: usize) -> usize {
        if self.takes_photos() {
            self.max_bytes.max(photo_bytes)
        } else {
            self.max_bytes
        }
    }

    fn types(&self) -> String {
        let labels: Vec<&str> = self.media_types.iter().map(|t| media_label(t)).collect();
        labels.join(", ")
    }
}

/// The page: one section per attachment slot that applies to the draft's data (or holds
/// a file), then the further documents; each with its files and its own upload form.
async fn attachments_view(
    state: &Shared,
    visitor: &Visitor,
    draft: &Draft,
    service: &Service,
    failed: &[(Option<String>, String)],
) -> Result<Value, Failure> {
    let form = service.form()?;
    let stored = drafts::attachments(state, &draft.id).await?;
    let rules = &form.attachments;
    let photo_bytes = state.config.settings.limits.photo_upload_bytes;
    let room = stored.len() < rules.max_count;
    let file_view = |a: &drafts::StoredAttachment| json!({"id": a.id, "filename": a.filename, "type": media_label(&a.media_type), "size": human_size(a.size)});
    let mut errors = Vec::new();
    let mut section = |target: Target<'_>, heading: &str, files: Vec<Value>, extra: Value| {
        let name = target.slot.map(|s| s.name.as_str());
        let error = failed
            .iter()
            .find(|(slot, _)| slot.as_deref() == name)
            .map(|(_, message)| message.clone());
        if let Some(message) = &error {
            errors.push(json!({"id": target.input_id(), "message": message}));
        }
        json!({
            "slot": name,
            "input_id": target.input_id(),
            "heading": heading,
            "help": target.slot.and_then(|s| s.help.clone()),
            "required": target.slot.is_some_and(|s| s.required),
            "types": target.types(),
            "max_size": human_size(target.max_bytes as i64),
            "photo_size": target.takes_photos().then(|| human_size(target.arriving(photo_bytes) as i64)),
            "accept": target.media_types.join(","),
            "files": files,
            "error": error,
            "room": room,
            "extra": extra,
        })
    };
    let mut sections = Vec::new();
    for slot in &rules.slots {
        let files: Vec<Value> = stored
            .iter()
            .filter(|a| a.slot.as_deref() == Some(slot.name.as_str()))
            .map(file_view)
            .collect();
        let applies = slot.applies(&form.fields, &draft.data);
        if !applies && files.is_empty() {
            continue;
        }
        let note = (!applies).then_some(
            "Nach Ihren Angaben wird diese Unterlage nicht gebraucht. Bitte entfernen Sie die Datei.",
        );
        sections.push(section(
            Target::of(rules, Some(slot)),
            &slot.label,
            files,
            json!({"not_needed": note}),
        ));
    }
    let further: Vec<Value> = stored
        .iter()
        .filter(|a| a.slot.is_none())
        .map(file_view)
        .collect();
    let heading = if rules.slots.is_empty() {
        "Ihre Dateien"
    } else {
        "Weitere Unterlagen"
    };
    sections.push(section(
        Target::of(rules, None),
        heading,
        further,
        json!({"further": true}),
    ));
    Ok(json!({
        "csrf": visitor.csrf,
        "draft": draft.id,
        "service": service.name,
        "progress": progress(&form, "anlagen"),
        "sections": sections,
        "max_count": rules.max_count,
        "room": room,
        "errors": errors,
        "back": last_step(&form, &draft.id),
    }))
}

/// The form's last step: what "Zurück zu den Angaben" leads to.
fn last_step(form: &kopplung_forms::form::FormDefinition, draft: &str) -> String {
    format!(
        "/entwurf/{draft}/schritt/{}",
        render::steps(form).last().copied().unwrap_or(1)
    )
}

pub async fn attachments_page(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Page {
    let (draft, service) = open_draft_of_service(&state, &visitor, &id).await?;
    if service.attachments.max_count == 0 {
        return Err(Failure::not_found());
    }
    let mut view = attachments_view(&state, &visitor, &draft, &service, &[]).await?;
    let form = service.form()?;
    view["position_offer"] = json!(location::offer(
        &form,
        query.get("foto_ort").map(String::as_str)
    ));
    view["position_taken"] = json!(query.get("ort").map(String::as_str) == Some("uebernommen"));
    state.templates.ok(
        &visitor,
        "attachments",
        &format!("{} – Unterlagen", service.name),
        &view,
    )
}

/// What the first bytes say the file is (never trust the browser's type alone).
/// Why a photo was not taken, for the citizen: what to do instead.
pub(crate) fn photo_refused(refused: &photo::Refused, max_bytes: usize) -> String {
    match refused {
        photo::Refused::TooLarge => format!(
            "Das Foto lässt sich nicht auf die erlaubten {} verkleinern. Bitte wählen Sie einen kleineren Bildausschnitt.",
            human_size(i64::try_from(max_bytes).unwrap_or(i64::MAX))
        ),
        photo::Refused::Unreadable => "Das Foto konnte nicht gelesen werden. Bitte wählen Sie ein anderes Foto im Format JPEG oder PNG.".to_owned(),
    }
}

pub(crate) fn sniff(content: &[u8]) -> Option<&'static str> {
    if content.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if content.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else if content.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// A file name without folders or control characters, at most 100 characters.
pub(crate) fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(100)
        .collect();
    if cleaned.trim().is_empty() {
        "anlage".to_owned()
    } else {
        cleaned
    }
}

pub(crate) fn transfer_failed() -> Failure {
    Failure::bad_request(
        "Die Datei konnte nicht übertragen werden. Bitte versuchen Sie es noch einmal.",
    )
}

/// A file read from the upload, or why there is none.
enum Received {
    File {
        filename: String,
        declared: String,
        content: Vec<u8>,
    },
    TooLarge,
}

/// One file the page posted, for its slot (`None`: the further documents).
struct Chosen {
    slot: Option<String>,
    received: Received,
}

/// What the page posted: every file chosen (one input per section: `datei` for the
/// further documents, `datei.<slot>` for a slot; or `slot` followed by `datei`), the
/// section whose "Hochladen" was pressed, and whether "Weiter zur Prüfung" was.
struct Upload {
    files: Vec<Chosen>,
    pressed: Option<String>,
    /// Where to go once the files are stored: `weiter` (the review), `zurueck` (the
    /// last step), else back to this page.
    then: Option<String>,
}

/// Reads the multipart body: the CSRF field must come (and match) before any file.
/// A file over its section's limit is not read further (`max_bytes(slot)`).
async fn receive(
    visitor: &Visitor,
    multipart: &mut Multipart,
    max_bytes: impl Fn(Option<&str>) -> usize,
) -> Result<Upload, Failure> {
    let mut csrf_ok = false;
    let mut current_slot = None;
    let mut upload = Upload {
        files: Vec::new(),
        pressed: None,
        then: None,
    };
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| transfer_failed())?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let slot = match name.as_str() {
            "csrf" => {
                let token = field.text().await.map_err(|_| transfer_failed())?;
                if !same_token(&token, &visitor.csrf) {
                    return Err(Failure::csrf());
                }
                csrf_ok = true;
                continue;
            }
            "slot" | "hochladen" => {
                let value = field.text().await.map_err(|_| transfer_failed())?;
                let value = Some(value).filter(|v| !v.is_empty());
                if name == "hochladen" {
                    upload.pressed = Some(value.clone().unwrap_or_default());
                }
                current_slot = value;
                continue;
            }
            "aktion" => {
                upload.then = Some(field.text().await.map_err(|_| transfer_failed())?);
                continue;
            }
            "datei" => current_slot.clone(),
            other => match other.strip_prefix("datei.") {
                Some(slot) => Some(slot.to_owned()),
                None => continue,
            },
        };
        if !csrf_ok {
            return Err(Failure::csrf());
        }
        let limit = max_bytes(slot.as_deref());
        let filename = clean_filename(field.file_name().unwrap_or_default());
        let declared = field.content_type().unwrap_or_default().to_owned();
        let mut content = Vec::new();
        let mut too_large = false;
        while let Some(chunk) = field.chunk().await.map_err(|_| transfer_failed())? {
            if content.len() + chunk.len() > limit {
                // The rest of this file is skipped, not kept.
                too_large = true;
                content = Vec::new();
                break;
            }
            content.extend_from_slice(&chunk);
        }
        let received = if too_large {
            Received::TooLarge
        } else if content.is_empty() {
            // An input with no file chosen.
            continue;
        } else {
            Received::File {
                filename,
                declared,
                content,
            }
        };
        upload.files.push(Chosen { slot, received });
    }
    if !csrf_ok {
        return Err(Failure::csrf());
    }
    Ok(upload)
}

/// Why `received` may not go into `target`, if it may not. A photo may be larger
/// than the target's limit, up to `photo_bytes`: it is scaled down afterwards.
fn refusal(target: &Target<'_>, received: &Received, photo_bytes: usize) -> Option<String> {
    let too_large = |photo: bool| {
        if photo {
            format!(
                "Das Foto ist zu groß. Fotos dürfen beim Hochladen höchstens {} groß sein; das Portal verkleinert sie dann selbst. Bitte wählen Sie ein kleineres Foto.",
                human_size(target.arriving(photo_bytes) as i64)
            )
        } else {
            format!(
                "Die Datei ist zu groß. Erlaubt sind höchstens {} je Datei. Bitte verkleinern Sie sie und laden Sie sie noch einmal hoch.",
                human_size(target.max_bytes as i64)
            )
        }
    };
    let photo = |content: &[u8]| {
        target.takes_photos() && matches!(sniff(content), Some("image/jpeg" | "image/png"))
    };
    match received {
        Received::TooLarge => Some(too_large(target.takes_photos())),
        Received::File { content, .. }
            if content.len()
                > if photo(content) {
                    target.arriving(photo_bytes)
                } else {
                    target.max_bytes
                } =>
        {
            Some(too_large(photo(content)))
        }
        Received::File {
            declared, content, ..
        } => match sniff(content) {
            Some(actual)
                if target.media_types.iter().any(|t| t == actual)
                    && (declared == actual
                        || declared == "application/octet-stream"
                        || declared.is_empty()) =>
            {
                None
            }
            _ => Some(format!(
                "Dieser Dateityp ist nicht erlaubt. Erlaubt sind: {}. Bitte wählen Sie eine andere Datei.",
                target.types()
            )),
        },
    }
}

/// `POST /entwurf/{id}/anlagen`: stores every file chosen on the page — on
/// "Hochladen", on "Weiter zur Prüfung" (a file chosen but not yet uploaded is never
/// dropped) or, with JavaScript, as soon as it is chosen.
pub async fn attachments_upload(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    request: Request,
) -> Page {
    let draft = drafts::load_owned(&state, &visitor, &id).await?;
    let service = service_of(&state, &draft.service).await?;
    let form = service.form()?;
    let rules = &form.attachments;
    // Before the sections are known: the largest file any of them takes, once for
    // each file the page can carry.
    let photo_bytes = state.config.settings.limits.photo_upload_bytes;
    let largest = rules
        .slots
        .iter()
        .map(|s| Target::of(rules, Some(s)).arriving(photo_bytes))
        .chain([Target::of(rules, None).arriving(photo_bytes)])
        .max()
        .unwrap_or(rules.max_bytes);
    let inputs = rules.max_count.min(rules.slots.len() + 1).max(1);
    let limit = largest
        .saturating_mul(inputs)
        .saturating_add(state.config.settings.limits.upload_overhead_bytes);
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit as u64) {
        return Err(Failure::too_large(format!(
            "Die Datei ist zu groß. Erlaubt sind höchstens {} je Datei. Bitte verkleinern Sie sie und versuchen Sie es noch einmal.",
            human_size(largest as i64)
        )));
    }
    let anonymous = draft.account_id.is_none();
    if anonymous {
        let quotas = &state.quotas;
        quotas.check_disk(&state.config.data_dir)?;
        let (files, stored) =
            drafts::session_uploads(&state, draft.session_id.as_deref().unwrap_or_default())
                .await?;
        quotas.check_session_uploads(files, stored, 1)?;
        quotas.anonymous_upload(visitor.client, declared_length.unwrap_or(limit as u64))?;
    }
    let (parts, body) = request.into_parts();
    let limited = Request::from_parts(parts, Body::new(Limited::new(body, limit)));
    let mut multipart = Multipart::from_request(limited, &state)
        .await
        .map_err(|_| transfer_failed())?;
    let max_of = |slot: Option<&str>| {
        Target::of(rules, slot.and_then(|name| rules.slot(name))).arriving(photo_bytes)
    };
    let upload = receive(&visitor, &mut multipart, max_of).await?;
    if draft.submitted() {
        return Ok(see_other(&format!("/antraege/{}", draft.id)));
    }
    let mut count = drafts::attachments(&state, &draft.id).await?.len();
    let mut position = None;
    let mut failed: Vec<(Option<String>, String)> = Vec::new();
    if upload.files.is_empty() && upload.then.is_none() {
        failed.push((
            upload.pressed.clone().filter(|p| !p.is_empty()),
            "Bitte wählen Sie zuerst eine Datei aus.".to_owned(),
        ));
    }
    for Chosen { slot, received } in upload.files {
        let target = match slot.as_deref() {
            None => Target::of(rules, None),
            Some(name) => match rules.slot(name) {
                Some(found) => Target::of(rules, Some(found)),
                None => {
                    return Err(Failure::bad_request(
                        "Diese Art von Anlage gibt es bei dieser Leistung nicht.",
                    ));
                }
            },
        };
        let problem = refusal(&target, &received, photo_bytes).or_else(|| {
            (count >= rules.max_count).then(|| format!(
                "Sie können höchstens {} Dateien anhängen. Entfernen Sie eine Datei, um eine andere hochzuladen.",
                rules.max_count
            ))
        });
        if let Some(message) = problem {
            failed.push((slot, message));
            continue;
        }
        let Received::File {
            filename, content, ..
        } = received
        else {
            continue;
        };
        if anonymous {
            // The session's byte quota, now that the file's size is known.
            let (files, stored) =
                drafts::session_uploads(&state, draft.session_id.as_deref().unwrap_or_default())
                    .await?;
            state
                .quotas
                .check_session_uploads(files, stored, content.len() as u64)?;
        }
        let (content, media_type, filename) = if target.takes_photos()
            && matches!(sniff(&content), Some("image/jpeg" | "image/png"))
        {
            // Upright, within the limit, without metadata; the position is offered.
            match photo::fit(content, &filename, target.max_bytes).await {
                Ok((prepared, filename)) => {
                    position = position.or(prepared.position);
                    (prepared.content, prepared.media_type, filename)
                }
                Err(refused) => {
                    failed.push((slot, photo_refused(&refused, target.max_bytes)));
                    continue;
                }
            }
        } else {
            let media_type = sniff(&content).unwrap_or("application/octet-stream");
            (content, media_type, filename)
        };
        drafts::add_attachment(
            &state,
            &draft.id,
            &filename,
            media_type,
            &content,
            slot.as_deref(),
        )
        .await?;
        count += 1;
    }
    // A position from a photo is offered where the form has a place without one.
    let offer = position.filter(|_| {
        location::position_group(&form).is_some_and(|group| location::unset(&draft.data, group))
    });
    if !failed.is_empty() {
        let view = attachments_view(&state, &visitor, &draft, &service, &failed).await?;
        return Ok(state.templates.page(
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "attachments",
            &format!("Fehler: {} – Unterlagen", service.name),
            &view,
        ));
    }
    Ok(see_other(&match (upload.then.as_deref(), offer) {
        (_, Some(at)) => format!(
            "/entwurf/{}/anlagen?foto_ort={}",
            draft.id,
            location::encode(at)
        ),
        (Some("weiter"), None) => format!("/entwurf/{}/pruefen", draft.id),
        (Some("zurueck"), None) => last_step(&form, &draft.id),
        _ => format!("/entwurf/{}/anlagen", draft.id),
    }))
}

pub async fn attachment_remove(
    Visit { state, visitor }: Visit,
    Path((id, attachment)): Path<(String, String)>,
    Posted(_): Posted,
) -> Page {
    let draft = open_draft(&state, &visitor, &id).await?;
    drafts::remove_attachment(&state, &draft.id, &attachment).await?;
    Ok(see_other(&format!("/entwurf/{}/anlagen", draft.id)))
}
