//! The attachments of a submission: inline (base64) or uploaded before, each checked
//! against the service's rules.

use base64::Engine;
use kopplung_forms::{FieldError, FormDefinition};
use openssl::sha::sha512;
use serde_json::Value;
use uuid::Uuid;

use super::{AttachmentIn, IntakeError};
use crate::store::{Attachment, AttachmentContent, UploadInfo};

/// What one attachment may be: its slot's media types and size, or the form's.
struct Limits<'a> {
    media_types: &'a [String],
    max_bytes: usize,
}

/// Checks every attachment against the form's rules and, where it names one, its slot
/// (which must apply to `data`), and that every required slot that applies has one.
/// Problems go to `errors`; an attachment over its size limit ends the check (its
/// content is not looked at further).
pub fn check(
    form: &FormDefinition,
    data: &Value,
    client: &str,
    uploads: &[UploadInfo],
    given: Vec<AttachmentIn>,
    errors: &mut Vec<FieldError>,
) -> Result<Vec<Attachment>, IntakeError> {
    let rules = &form.attachments;
    if given.len() > rules.max_count {
        errors.push(FieldError::new(
            "attachments",
            format!("höchstens {} Anlagen", rules.max_count),
        ));
    }
    let slots: Vec<Option<String>> = given.iter().map(|a| a.slot.clone()).collect();
    let mut attachments = Vec::new();
    for (index, attachment) in given.into_iter().enumerate() {
        let at = |name: &str| format!("attachments[{index}].{name}");
        let AttachmentIn {
            filename,
            media_type,
            content_base64,
            upload,
            slot,
        } = attachment;
        let limits = match slot.as_deref().map(|name| (name, rules.slot(name))) {
            None => Limits {
                media_types: &rules.media_types,
                max_bytes: rules.max_bytes,
            },
            Some((_, Some(found))) => {
                if !found.applies(&form.fields, data) {
                    errors.push(FieldError::new(
                        at("slot"),
                        format!("„{}“ ist für diesen Antrag nicht vorgesehen", found.label),
                    ));
                }
                Limits {
                    media_types: found.media_types(rules),
                    max_bytes: found.max_bytes(rules),
                }
            }
            Some((name, None)) => {
                let known: Vec<&str> = rules.slots.iter().map(|s| s.name.as_str()).collect();
                let message = if known.is_empty() {
                    format!(
                        "unbekannte Anlagenart `{name}`; diese Leistung hat keine, Anlagen ohne `slot` angeben"
                    )
                } else {
                    format!(
                        "unbekannte Anlagenart `{name}`; erlaubt: {}",
                        known.join(", ")
                    )
                };
                errors.push(FieldError::new(at("slot"), message));
                continue;
            }
        };
        let too_large = || IntakeError::AttachmentTooLarge {
            index,
            max_bytes: limits.max_bytes,
        };
        let (filename, media_type, content_base64) =
            match (upload, filename, media_type, content_base64) {
                (Some(upload), None, None, None) => {
                    match uploaded(&limits, client, uploads, &upload) {
                        Ok(mut attachment) => {
                            attachment.slot = slot;
                            attachments.push(attachment);
                        }
                        Err(Refused::Field(message)) => {
                            errors.push(FieldError::new(at("upload"), message));
                        }
                        Err(Refused::TooLarge) => return Err(too_large()),
                    }
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
        if !valid_filename(&filename) {
            errors.push(FieldError::new(
                at("filename"),
                "Dateiname fehlt, ist zu lang oder enthält unzulässige Zeichen",
            ));
        }
        if !limits.media_types.iter().any(|m| m == &media_type) {
            errors.push(FieldError::new(
                at("media_type"),
                format!("erlaubt sind: {}", limits.media_types.join(", ")),
            ));
        }
        // Decoded size from the encoded length, before decoding anything big.
        if content_base64.len() / 4 * 3 > limits.max_bytes + 2 {
            return Err(too_large());
        }
        let Ok(content) = base64::engine::general_purpose::STANDARD.decode(&content_base64) else {
            errors.push(FieldError::new(
                at("content_base64"),
                "kein gültiges Base64",
            ));
            continue;
        };
        if content.len() > limits.max_bytes {
            return Err(too_large());
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
            slot,
        });
    }
    let given: Vec<Option<&str>> = slots.iter().map(Option::as_deref).collect();
    errors.extend(rules.missing(&form.fields, data, &given));
    Ok(attachments)
}

/// Why an uploaded attachment is refused.
enum Refused {
    Field(String),
    TooLarge,
}

/// An attachment uploaded before, if the client may attach it here.
fn uploaded(
    limits: &Limits<'_>,
    client: &str,
    uploads: &[UploadInfo],
    upload: &str,
) -> Result<Attachment, Refused> {
    // Another client's upload does not exist for this one.
    let found = Uuid::parse_str(upload)
        .ok()
        .and_then(|id| uploads.iter().find(|u| u.id == id))
        .filter(|u| u.client_id == client)
        .ok_or_else(|| Refused::Field("unbekannter Upload".into()))?;
    let Some((size, sha512)) = &found.complete else {
        return Err(Refused::Field("der Upload ist nicht vollständig".into()));
    };
    if found.application_id.is_some() {
        return Err(Refused::Field(
            "dieser Upload gehört bereits zu einem anderen Antrag".into(),
        ));
    }
    if !limits.media_types.iter().any(|m| m == &found.media_type) {
        return Err(Refused::Field(format!(
            "Medientyp {} nicht erlaubt; erlaubt sind: {}",
            found.media_type,
            limits.media_types.join(", ")
        )));
    }
    if *size > limits.max_bytes as u64 {
        return Err(Refused::TooLarge);
    }
    Ok(Attachment {
        filename: found.filename.clone(),
        media_type: found.media_type.clone(),
        sha512: sha512.clone(),
        size: *size,
        content: AttachmentContent::Upload(found.id),
        slot: None,
    })
}

/// Whether a file name can be kept and saved anywhere.
pub fn valid_filename(name: &str) -> bool {
    // Only dots and blanks (`.`, `..`) name a folder, not a file, wherever it is saved.
    !name
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .is_empty()
        && name.chars().count() <= 255
        && !name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
        && kopplung_forms::text::normalise(name).is_ok()
}

/// A cheap check of the file signature, so a renamed file is caught at intake.
pub fn content_matches(media_type: &str, content: &[u8]) -> bool {
    match media_type {
        "image/jpeg" => content.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => content.starts_with(b"\x89PNG\r\n\x1a\n"),
        "application/pdf" => content.starts_with(b"%PDF-"),
        _ => true,
    }
}
