//! The citizen's follow-up messages in the clerk inbox: an answer, later documents or an
//! objection arrives as a message of its own and waits like an application; its page
//! shows what the citizen wrote and leads to the application, where the clerk goes on
//! working. The application's page lists its follow-ups.

use kopplung_core::conversation::FollowUpKind;
use kopplung_web::shell::{german_time, iso};
use serde::Serialize;

use super::render::{Block, Leaf};
use crate::store::{ApplicationRecord, PrepareInput};

/// What a follow-up message's page says about it.
#[derive(Serialize)]
pub(super) struct FollowUpView {
    kind: &'static str,
    application_href: String,
    application_receipt: String,
    /// The event it answers or objects to (the id the clerk's query or decision got).
    refers_to: Option<String>,
}

impl FollowUpView {
    /// The receipt number of the application it belongs to.
    pub(super) fn receipt(&self) -> &str {
        &self.application_receipt
    }
}

/// A follow-up listed on its application's page.
#[derive(Serialize)]
pub(super) struct ListedView {
    kind: &'static str,
    href: String,
    at: String,
    at_iso: String,
    status: &'static str,
}

/// How the inbox names a kind of follow-up.
fn label(kind: FollowUpKind) -> &'static str {
    match kind {
        FollowUpKind::Antwort => "Antwort auf die Rückfrage",
        FollowUpKind::Nachreichung => "Nachgereichte Unterlagen",
        FollowUpKind::Widerspruch => "Widerspruch gegen den Bescheid",
        FollowUpKind::Zahlung => "Zahlungsmeldung",
    }
}

/// The kind of follow-up a message type names (`maengelanzeige.antwort.0201`), if any.
fn kind_of(message_type: &str) -> Option<FollowUpKind> {
    FollowUpKind::ALL.into_iter().find(|kind| {
        // `x.antwort.0201` → `.antwort.0201`: the part every service's type shares.
        let full = kind.message_type("x.y");
        message_type.ends_with(&full[1..])
    })
}

/// How the waiting list names a message: the service, and what kind of follow-up.
pub(super) fn listed_name(service: String, message_type: &str) -> String {
    match kind_of(message_type) {
        Some(kind) => format!("{service}: {}", label(kind)),
        None => service,
    }
}

/// For a follow-up message (`input.follow_up`): what it is and its text as the page's
/// "Angaben"; `None` for an application.
pub(super) fn of(input: &PrepareInput, procedure: &str) -> Option<(FollowUpView, Vec<Block>)> {
    let follow_up = input.follow_up.as_ref()?;
    let text = input.payload["text"].as_str().unwrap_or_default();
    let blocks = if text.is_empty() {
        Vec::new()
    } else {
        vec![Block {
            leaves: Some(vec![Leaf {
                label: "Nachricht".into(),
                value: text.to_owned(),
            }]),
            group: None,
        }]
    };
    let view = FollowUpView {
        kind: label(follow_up.kind),
        application_href: format!("/inbox/{procedure}/{}", follow_up.parent_message_id),
        application_receipt: follow_up.parent_receipt.clone(),
        refers_to: follow_up.refers_to.clone(),
    };
    Some((view, blocks))
}

/// The follow-ups of `record` (an application of `procedure`), oldest first.
pub(super) fn listed(record: &ApplicationRecord, procedure: &str) -> Vec<ListedView> {
    record
        .follow_ups
        .iter()
        .filter(|f| f.procedure == procedure)
        .map(|f| ListedView {
            kind: label(f.kind),
            href: format!("/inbox/{procedure}/{}", f.message_id),
            at: german_time(f.created_at),
            at_iso: iso(f.created_at),
            status: if f.delivered_at.is_some() {
                "gelesen (übernommen)"
            } else {
                "noch nicht übernommen"
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_waiting_list_names_a_follow_up_by_its_kind() {
        assert_eq!(
            super::listed_name("Mängelanzeige".into(), "maengelanzeige.antwort.0201"),
            "Mängelanzeige: Antwort auf die Rückfrage"
        );
        assert_eq!(
            super::listed_name("Mängelanzeige".into(), "maengelanzeige.meldung.0101"),
            "Mängelanzeige"
        );
    }
}
