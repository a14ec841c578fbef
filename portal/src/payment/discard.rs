//! Discarding a draft: first a page that says what is lost — and, for a paid draft,
//! that the fee goes back — then, confirmed, the payment is settled with the provider
//! and the draft deleted. A draft whose fee cannot be refunded now stays.

use axum::extract::Path;
use serde_json::json;

use super::refund::{self, Reason, Settled};
use crate::forms::{drafts, open_draft};
use crate::web::{Failure, Page, Posted, Visit, euro};
use kopplung_web::shell::form_value;

/// `POST /entwurf/{id}/loeschen`: without `bestaetigt=ja` the confirmation page, with
/// it the draft goes.
pub async fn discard(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    Posted(pairs): Posted,
) -> Page {
    let draft = open_draft(&state, &visitor, &id).await?;
    let service = crate::forms::service_of(&state, &draft.service).await.ok();
    let wording = service.as_ref().map(|s| s.wording).unwrap_or_default();
    let fee = service.and_then(|s| s.fee).map(|f| f.due(&draft.data));
    let paid = draft.payment_reference.is_some();
    if form_value(&pairs, "bestaetigt") != Some("ja") {
        return state.templates.ok(
            &visitor,
            "discard",
            &format!("Entwurf verwerfen: {}", draft.service_name),
            &json!({
                "csrf": visitor.csrf,
                "draft": draft.id,
                "service": draft.service_name,
                "region": draft.region_name,
                "paid": paid,
                "amount": fee.as_ref().map(|f| euro(&f.betrag)),
                "payment_reference": draft.payment_reference,
                "wording": wording.words(),
            }),
        );
    }
    let settled = refund::settle(&state, &draft, Reason::Discarded)
        .await
        .map_err(|e| {
            tracing::warn!(draft = %draft.id, error = %e, "draft kept: its payment could not be settled");
            Failure::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "Ihr Entwurf wurde nicht verworfen, weil der Zahlungsdienst gerade nicht erreichbar ist und die Gebühr noch nicht erstattet werden kann. Ihr Entwurf bleibt gespeichert. Bitte versuchen Sie es in einigen Minuten noch einmal.",
            )
        })?;
    if drafts::delete(&state, &draft).await? == 0 {
        // A payment started meanwhile in another tab: the draft stays, to be settled.
        return Err(Failure::new(
            axum::http::StatusCode::CONFLICT,
            "Ihr Entwurf wurde nicht verworfen, weil gerade eine neue Zahlung für ihn begonnen wurde. Bitte öffnen Sie den Entwurf und versuchen Sie es noch einmal.",
        ));
    }
    tracing::info!(draft = %draft.id, "draft discarded");
    let mut paragraphs = vec![format!(
        "Ihr Entwurf „{}“ wurde mit allen Angaben und Unterlagen gelöscht. Er wurde nicht an die Behörde gesendet.",
        draft.service_name
    )];
    if let Settled::Refunded {
        amount,
        refund_reference,
    } = &settled
    {
        paragraphs.push(format!(
            "Die bezahlte Gebühr von {} wird über die Zahlungsart erstattet, mit der Sie bezahlt haben. Erstattungsreferenz: {refund_reference}. Je nach Zahlungsart dauert es einige Tage, bis der Betrag gutgeschrieben ist.",
            euro(amount)
        ));
    }
    let (back, back_label) = if visitor.account.is_some() {
        ("/konto/entwuerfe", "Zu Ihren Entwürfen")
    } else {
        ("/", "Zur Startseite")
    };
    state.templates.ok(
        &visitor,
        "notice",
        "Entwurf verworfen",
        &json!({
            "heading": "Entwurf verworfen",
            "paragraphs": paragraphs,
            "back": back,
            "back_label": back_label,
        }),
    )
}
