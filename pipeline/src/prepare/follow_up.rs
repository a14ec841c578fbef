//! A follow-up message's context: the application it refers to, the citizen's text and
//! documents, in the hub's one follow-up template.

use kopplung_core::conversation::{FollowUpInput, FollowUpKind};
use kopplung_transformers::Mapping;
use kopplung_transformers::follow_up::{Bezug, FollowUpContext};
use kopplung_transformers::mapping::{Anlage, Antrag, Behoerde, Nachricht};
use uuid::Uuid;

use super::PrepareError;

/// What the prepare step hands over.
pub(super) struct Parts<'a> {
    pub mapping: &'a Mapping,
    pub message_id: Uuid,
    pub of: &'a FollowUpInput,
    pub leser: Behoerde,
    pub autor: Behoerde,
    /// The application it belongs to.
    pub antrag: Antrag,
    pub now: String,
    pub received: String,
    /// The stored follow-up: `{"text": …}`.
    pub payload: &'a serde_json::Value,
    pub anlagen: Vec<Anlage>,
}

pub(super) fn context(parts: Parts<'_>) -> FollowUpContext {
    let info = &parts.mapping.info;
    let kind = parts.of.kind;
    let mut header = info.message.clone();
    header.message_type = kind.message_type(&info.message.message_type);
    FollowUpContext {
        element: element(kind).into(),
        nachricht: Nachricht::new(
            &header,
            parts.message_id.to_string(),
            parts.now,
            env!("CARGO_PKG_VERSION").into(),
        ),
        leser: parts.leser,
        autor: parts.autor,
        bezug: Bezug {
            antrag: parts.antrag,
            leistung_liste_version: if info.local { "lokal" } else { "LeiKa-2026" }.into(),
            nachrichten_uuid: parts.of.parent_message_id.to_string(),
            ereignis_id: parts.of.refers_to.clone(),
        },
        eingangszeitpunkt: parts.received,
        text: parts
            .payload
            .get("text")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        anlagen: parts.anlagen,
        zahlung: parts
            .payload
            .get("zahlung")
            .filter(|z| !z.is_null())
            .and_then(|z| serde_json::from_value(z.clone()).ok()),
    }
}

/// The root element of `kind` in the follow-up schema.
fn element(kind: FollowUpKind) -> &'static str {
    match kind {
        FollowUpKind::Antwort => "antwort.0201",
        FollowUpKind::Nachreichung => "nachreichung.0202",
        FollowUpKind::Widerspruch => "widerspruch.0203",
        FollowUpKind::Zahlung => "zahlung.0204",
    }
}

pub(super) fn render(mapping: &Mapping, context: &FollowUpContext) -> Result<String, PrepareError> {
    let template = mapping.follow_ups.as_ref().ok_or_else(|| {
        PrepareError::Invalid(format!(
            "the mappings have no follow-up schema ({}): follow-up messages of service {} cannot be rendered",
            kopplung_transformers::follow_up::SCHEMA,
            mapping.info.key
        ))
    })?;
    template
        .render(context)
        .map_err(|e| PrepareError::Invalid(e.to_string()))
}
