//! The attachments of a submission: inline (base64) or uploaded before, each checked
//! against the service's rules.

use base64::Engine;
use kopplung_forms::{AttachmentRules, FieldError};
use openssl::sha::sha512;
use uuid::Uuid;

use super::{AttachmentIn, IntakeError};
use crate::store::{Attachment, AttachmentContent, UploadInfo};

/// Checks every attachment; problems go to `errors`, an attachment over the size limit
/// ends the check (its content is not looked at further).
pub(super) fn check(
    rules: &AttachmentRules,
    client: &str,
    uploads: &[UploadInfo],
    given: Vec<AttachmentIn>,
    errors: &mut Vec<FieldError>,
) -> Result<Vec<Attachment>, IntakeError> {
    if given.len() > rules.max_count {
        errors.push(FieldError::new(
            "attachments",
            format!("höchstens {} Anlagen", rules.max_count),
        ));
    }
    let too_large = |index| IntakeError::AttachmentTooLarge {
        index,
        max_bytes: rules.max_bytes,
    };
    let mut attachments = Vec::new();
    for (index, attachment) in given.into_iter().enumerate() {
        let at = |name: &str| format!("attachments[{index}].{name}");
        let AttachmentIn {
            filename,
            media_type,
            content_base64,
            upload,
        } = attachment;
        let (filename, media_type, content_base64) =
            match (upload, filename, media_type, content_base64) {
                (Some(upload), None, None, None) => {
                    match uploaded(rules, client, uploads, &upload) {
                        Ok(attachment) => attachments.push(attachment),
                        Err(Refused::Field(message)) => {
                            errors.push(FieldError::new(at("upload"), message));
                        }
                        Err(Refused::TooLarge) => return Err(too_large(index)),
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
        if !rules.media_types.iter().any(|m| m == &media_type) {
            errors.push(FieldError::new(
                at("media_type"),
                format!("erlaubt sind: {}", rules.media_types.join(", ")),
            ));
        }
        // Decoded size from the encoded length, before decoding anything big.
        if content_base64.len() / 4 * 3 > rules.max_bytes + 2 {
            return Err(too_large(index));
        }
        let Ok(content) = base64::engine::general_purpose::STANDARD.decode(&content_base64) else {
            errors.push(FieldError::new(
                at("content_base64"),
                "kein gültiges Base64",
            ));
            continue;
        };
        if content.len() > rules.max_bytes {
            return Err(too_large(index));
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
    Ok(attachments)
}

/// Why an uploaded attachment is refused.
enum Refused {
    Field(String),
    TooLarge,
}

/// An attachment uploaded before, if the client may attach it here.
fn uploaded(
    rules: &AttachmentRules,
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
    if !rules.media_types.iter().any(|m| m == &found.media_type) {
        return Err(Refused::Field(format!(
            "Medientyp {} nicht erlaubt; erlaubt sind: {}",
            found.media_type,
            rules.media_types.join(", ")
        )));
    }
    if *size > rules.max_bytes as u64 {
        return Err(Refused::TooLarge);
    }
    Ok(Attachment {
        filename: found.filename.clone(),
        media_type: found.media_type.clone(),
        sha512: sha512.clone(),
        size: *size,
        content: AttachmentContent::Upload(found.id),
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
