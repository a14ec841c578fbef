//! The citizen's applications: the confirmation with the receipt number (also as PDF),
//! the status and history from the router, the mailbox (receipts, queries, decisions)
//! and the decision documents, proxied from the router for their owner only.

pub(crate) mod conversation;
pub(crate) mod pdf;
mod pdf_content;

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::Shared;
use crate::account::require_account;
use crate::forms::drafts::{self, Draft};
use crate::web::{Failure, Page, Visit, Visitor};
use kopplung_forms::Wording;
use kopplung_web::shell::{german_day_iso, german_time_rfc3339, german_time_unix};

use crate::router_client::Service;

/// A status of the hub in the citizen's words; „decided“ as the service's wording says
/// it (a report is „Erledigt“, not decided).
pub fn status_label(status: &str, wording: Wording) -> &'static str {
    match status {
        "accepted" => "Eingegangen",
        "prepared" => "Zur Übermittlung vorbereitet",
        "delivered" => "An die Behörde übermittelt",
        "received" => "Bei der Behörde eingegangen",
        "in_progress" => "In Bearbeitung",
        "query" => "Rückfrage der Behörde",
        "decided" => wording.done(),
        "rejected" => "Von der Behörde zurückgewiesen",
        "invalid" | "dead_lettered" => {
            "Übermittlung gestört – wir kümmern uns darum, Sie müssen nichts tun"
        }
        _ => "Unbekannt",
    }
}

/// How the application reaches the authority (the procedure's transport), in words for
/// the citizen: the maturity of the authority's procedure, not a protocol name.
fn transport_label(transport: &str) -> Option<&'static str> {
    Some(match transport {
        "amqp" | "http" => "Elektronisch direkt an das Fachverfahren der Behörde",
        "pull" => "Elektronisch; das Fachverfahren der Behörde ruft den Antrag ab",
        "file" => "Elektronisch als Datei, die das Fachverfahren der Behörde einliest",
        "manual" => {
            "Elektronisch in das Postfach der Behörde; dort bearbeitet ihn eine Sachbearbeiterin oder ein Sachbearbeiter"
        }
        _ => return None,
    })
}

pub(crate) fn kind_label(kind: &str, wording: Wording) -> &'static str {
    match kind {
        "decided" | "decision" => wording.final_letter(),
        "query" => "Rückfrage",
        "rejected" | "reject" => "Zurückweisung",
        "received" | "accept" => "Eingangsbestätigung der Behörde",
        "in_progress" => "Bearbeitungsstand",
        _ => "Nachricht",
    }
}

/// The submitted application `id` of the visitor, or 404.
async fn submitted(state: &Shared, visitor: &Visitor, id: &str) -> Result<Draft, Failure> {
    let draft = drafts::load_owned(state, visitor, id).await?;
    if !draft.submitted() {
        return Err(Failure::see_other(format!("/entwurf/{}/pruefen", draft.id)));
    }
    Ok(draft)
}

/// The router's view of the application, with German labels for the templates in the
/// words of its `service` (Steuer or Gebühr, Antrag or Meldung).
async fn router_view(
    state: &Shared,
    draft: &Draft,
    service: Option<&Service>,
) -> Result<Value, Failure> {
    let noun = crate::payment::decision::noun(service);
    let wording = service.map(|s| s.wording).unwrap_or_default();
    let Some(application) = &draft.application_id else {
        return Ok(json!(null));
    };
    let Some(status) = state.router.application(application).await? else {
        return Ok(json!(null));
    };
    let documents: Vec<Value> = status["documents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            json!({
                "id": d["id"],
                "filename": d["filename"],
                "href": format!("/antraege/{}/dokumente/{}", draft.id, d["id"].as_str().unwrap_or_default()),
                "size": d["size"],
            })
        })
        .collect();
    let code = status["status"].as_str().unwrap_or_default();
    let sent = conversation::sent(&status);
    // An objection the authority refused, or that could not be delivered, may be filed
    // again; the hub allows it too.
    let objected = sent
        .iter()
        .any(|m| m["kind_code"] == "widerspruch" && m["counts"] == true);
    let write = |kind: &str, event: &str| {
        format!(
            "/antraege/{}/nachricht?art={kind}&bezug={}",
            draft.id,
            crate::router_client::encode(event)
        )
    };
    let mailbox: Vec<Value> = status["mailbox"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let document = m["document_id"].as_str();
            let event = m["event_id"].as_str().unwrap_or_default();
            let appeal = appeal_view(&m["appeal"]);
            let answered = sent
                .iter()
                .any(|s| s["refers_to"] == event && s["counts"] == true);
            json!({
                "reply_href": (m["kind"] == "query" && code == "query" && !answered)
                    .then(|| write("antwort", event)),
                "answered": answered && m["kind"] == "query",
                "object_href": (appeal["open"] == true && !objected)
                    .then(|| write("widerspruch", event)),
                "kind": kind_label(m["kind"].as_str().unwrap_or_default(), wording),
                "text": m["text"],
                "at": german_time_rfc3339(m["at"].as_str().unwrap_or_default()),
                "document_href": document.map(|d| format!("/antraege/{}/dokumente/{d}", draft.id)),
                "appeal": appeal,
                "fee": m["fee"]["amount"].as_str().map(|amount| format!(
                    "{} € ({})",
                    amount.replace('.', ","),
                    m["fee"]["purpose"].as_str().unwrap_or_default()
                )),
            })
        })
        .collect();
    let mut history: Vec<Value> = status["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|h| {
            json!({
                "status": status_label(h["status"].as_str().unwrap_or_default(), wording),
                "at": german_time_rfc3339(h["at"].as_str().unwrap_or_default()),
            })
        })
        .collect();
    // Two steps of the hub can reach the same state: the citizen reads it once.
    history.dedup_by(|later, earlier| later["status"] == earlier["status"]);
    let fee = crate::payment::decision::view(state, draft, &status, noun).await?;
    Ok(json!({
        "fee": fee,
        "status": status_label(code, wording),
        "status_code": code,
        "final": matches!(code, "decided" | "rejected"),
        "transport": transport_label(status["delivery"]["transport"].as_str().unwrap_or_default()),
        "documents": documents,
        "mailbox": mailbox,
        "history": history,
        "sent": sent,
    }))
}

/// A decision's appeal information for the citizen: the Rechtsbehelfsbelehrung, the
/// deadline in words, and whether it has passed (German calendar).
pub(crate) fn appeal_view(appeal: &Value) -> Value {
    let (Some(text), Some(deadline)) = (appeal["text"].as_str(), appeal["deadline"].as_str())
    else {
        return json!(null);
    };
    // The day the period really ends (a weekend or holiday moves it), as the hub counts.
    let last = time::Date::parse(
        deadline,
        &time::format_description::well_known::Iso8601::DATE,
    )
    .map(kopplung_forms::deadline::period_end)
    .map(|day| day.to_string())
    .unwrap_or_else(|_| deadline.to_owned());
    let today = crate::today().to_string();
    json!({
        "text": text,
        "deadline": german_day_iso(&last),
        // ISO days compare as text.
        "open": last >= today,
    })
}

pub async fn show(
    Visit { state, visitor }: Visit,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let draft = submitted(&state, &visitor, &id).await?;
    // The service once, for its words (Steuer or Gebühr, Antrag or Meldung).
    let service = crate::forms::service_of(&state, &draft.service).await.ok();
    let noun = crate::payment::decision::noun(service.as_ref());
    let wording = service.as_ref().map(|s| s.wording).unwrap_or_default();
    // Back from paying a decision's fee: the notice.
    let fee_notice = match query.as_deref() {
        Some("gebuehr=bezahlt") => Some(if noun == "Steuer" {
            "Die Steuer ist bezahlt. Vielen Dank!"
        } else {
            "Die Gebühr ist bezahlt. Vielen Dank!"
        }),
        Some("gebuehr=abgebrochen") => Some(
            "Die Zahlung wurde abgebrochen oder ist fehlgeschlagen; es wurde nichts abgebucht. Sie können es jederzeit erneut versuchen.",
        ),
        _ => None,
    };
    let mut router = router_view(&state, &draft, service.as_ref()).await?;
    // Documents later while the authority works on it, if the service takes files: on
    // this page only, not for every application a list shows.
    let open = matches!(
        router["status_code"].as_str(),
        Some("delivered" | "received" | "in_progress" | "query")
    );
    if open && conversation::takes_files(&state, &draft.service).await {
        router["documents_href"] =
            json!(format!("/antraege/{}/nachricht?art=nachreichung", draft.id));
    }
    state.templates.ok(
        &visitor,
        "application",
        &format!(
            "{} {} – {}",
            wording.noun(),
            draft.receipt.as_deref().unwrap_or_default(),
            draft.service_name
        ),
        &json!({
            "id": draft.id,
            "receipt": draft.receipt,
            "service": draft.service_name,
            "region": draft.region_name,
            "submitted": draft.submitted_at.map(german_time_unix),
            "payment_reference": draft.payment_reference,
            "router": router,
            "signed_in": visitor.account.is_some(),
            // The form for an anonymous reporter's status mails (`crate::notify`).
            "csrf": visitor.csrf,
            "fee_notice": fee_notice,
            "fee_paid_now": query.as_deref() == Some("gebuehr=bezahlt"),
            "just_submitted": query.as_deref() == Some("eingereicht"),
            "wording": crate::forms::wording_view(wording),
            "message_notice": (query.as_deref() == Some("nachricht=gesendet")).then_some(
                "Ihre Nachricht ist gespeichert und wird an die Behörde übermittelt. Den Stand sehen Sie unten unter „Ihre Nachrichten an die Behörde“.",
            ),
        }),
    )
}

pub async fn confirmation_pdf(Visit { state, visitor }: Visit, Path(id): Path<String>) -> Page {
    let draft = submitted(&state, &visitor, &id).await?;
    let receipt = draft.receipt.clone().unwrap_or_default();
    let confirmation = pdf_content::of(&state, &draft).await?;
    let writer = state.pdf.clone();
    let bytes = tokio::task::spawn_blocking(move || writer.pdf(&confirmation))
        .await
        .map_err(|e| crate::Error::Pdf(e.to_string()))?
        .map_err(crate::Error::Pdf)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::try_from(kopplung_web::disposition::attachment(&format!(
                    "Eingangsbestätigung-{receipt}.pdf"
                )))
                .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// A decision document, for the application's owner only; never served with an active
/// content type (only PDF is passed on as such, everything else is a download).
pub async fn document(
    Visit { state, visitor }: Visit,
    Path((id, document)): Path<(String, String)>,
) -> Page {
    let draft = submitted(&state, &visitor, &id).await?;
    let Some(application) = &draft.application_id else {
        return Err(Failure::not_found());
    };
    let Some(found) = state.router.document(application, &document).await? else {
        return Err(Failure::not_found());
    };
    let media_type = if found.media_type.starts_with("application/pdf") {
        "application/pdf"
    } else {
        "application/octet-stream"
    };
    let filename: String = found
        .filename
        .unwrap_or_else(|| "dokument.pdf".into())
        .chars()
        .take(100)
        .collect();
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::try_from(kopplung_web::disposition::attachment(&filename))
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        found.bytes,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(response)
}

/// The account's submitted applications, each with the router's view and its wording.
async fn submitted_list(
    state: &Shared,
    account_id: &str,
) -> Result<Vec<(Draft, Value, Wording)>, Failure> {
    let mut out = Vec::new();
    // The services once for the whole list, not once for each application.
    let services = state.router.services().await?;
    for draft in drafts::list(state, account_id, "submitted").await? {
        let service = services.iter().find(|s| s.key == draft.service);
        let view = router_view(state, &draft, service).await?;
        out.push((draft, view, service.map(|s| s.wording).unwrap_or_default()));
    }
    Ok(out)
}

pub async fn list(Visit { state, visitor }: Visit) -> Page {
    let account = require_account(&visitor, "/konto/antraege")?;
    let items: Vec<Value> = submitted_list(&state, &account.id)
        .await?
        .into_iter()
        .map(|(d, v, wording)| {
            json!({
                "id": d.id, "receipt": d.receipt, "service": d.service_name, "region": d.region_name,
                "submitted": d.submitted_at.map(german_time_unix), "status": v["status"],
                "noun": wording.noun(),
            })
        })
        .collect();
    state.templates.ok(
        &visitor,
        "applications",
        "Meine Anträge und Meldungen",
        &json!({ "applications": items }),
    )
}

pub async fn mailbox(Visit { state, visitor }: Visit) -> Page {
    let account = require_account(&visitor, "/konto/postfach")?;
    let mut messages = Vec::new();
    for (draft, view, wording) in submitted_list(&state, &account.id).await? {
        for entry in view["mailbox"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .rev()
        {
            let mut entry = entry;
            entry["receipt"] = json!(draft.receipt);
            entry["service"] = json!(draft.service_name);
            entry["href"] = json!(format!("/antraege/{}", draft.id));
            entry["noun"] = json!(wording.noun());
            messages.push(entry);
        }
        // The portal's own receipt of the submission.
        messages.push(json!({
            "kind": "Eingangsbestätigung",
            "text": format!("{} „{}“ ist am {} eingegangen. Vorgangsnummer: {}.", wording.yours(), draft.service_name, draft.submitted_at.map(german_time_unix).unwrap_or_default(), draft.receipt.as_deref().unwrap_or_default()),
            "at": draft.submitted_at.map(german_time_unix),
            "receipt": draft.receipt,
            "service": draft.service_name,
            "href": format!("/antraege/{}", draft.id),
            "noun": wording.noun(),
            "document_href": format!("/antraege/{}/bestaetigung.pdf", draft.id),
        }));
    }
    state.templates.ok(
        &visitor,
        "mailbox",
        "Postfach",
        &json!({ "messages": messages }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appeal_says_its_deadline_in_words_and_whether_it_passed() {
        let past = appeal_view(&json!({"text": "Widerspruch …", "deadline": "2000-01-31"}));
        assert_eq!(past["deadline"], "31. Januar 2000");
        assert_eq!(past["open"], false);
        let today = crate::today().to_string();
        let open = appeal_view(&json!({"text": "Widerspruch …", "deadline": today}));
        assert_eq!(open["open"], true, "the last day itself is open");
        assert_eq!(appeal_view(&json!(null)), json!(null));
        // Saturday 9 January 2027: the period ends on Monday, as the hub counts it.
        let saturday = appeal_view(&json!({"text": "Widerspruch …", "deadline": "2027-01-09"}));
        assert_eq!(saturday["deadline"], "11. Januar 2027");
    }
}
