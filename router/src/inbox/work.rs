//! The clerk's work on an application taken over: confirm its receipt, mark it in
//! progress, ask the citizen a question, decide with the decision as a PDF. Each is
//! recorded by the core's `Events::record_by_clerk` as the procedure's event would be,
//! and reaches the citizen's mailbox like one. Also what the document page shows of
//! the work: the state, the history, the messages to the citizen, the fee.

use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kopplung_core::conversation::FollowUpKind;
use kopplung_core::events::{ClerkAction, ClerkEvent, ClerkText, EventError};
use kopplung_core::store::{ApplicationRecord, DocumentInfo, MailboxEntry, Status};
use kopplung_transformers::Mapping;
use kopplung_web::shell::{SignInUi, berlin, german_day, german_time, iso, same_token, see_other};
use serde::Serialize;
use serde_json::Value;
use time::Date;
use uuid::Uuid;

use super::form::{FormError, MAX_DOCUMENT_BYTES, action_of, read_form};
use super::pages::{Found, document_page, download, taken_over};
use super::{Inbox, Shared, render};

/// What the clerk sent that could not be recorded, shown again with its error.
#[derive(Debug, Default, Clone, Serialize)]
pub(super) struct Sent {
    pub action: String,
    pub text: String,
    pub appeal_text: String,
    pub appeal_deadline: String,
    pub fee_amount: String,
    pub fee_purpose: String,
    pub error: String,
    /// The id of the field the error is about (empty: the form as a whole).
    pub field: &'static str,
}

/// The work section of the document page.
#[derive(Serialize)]
pub(super) struct WorkView {
    status: &'static str,
    is_final: bool,
    history: Vec<HistoryRow>,
    messages: Vec<MessageRow>,
    accept: bool,
    in_progress: bool,
    query: bool,
    decision: bool,
    action_href: String,
    /// A fresh one-time token per page: the same form sent twice is one event.
    token: String,
    csrf: String,
    /// The error of a refused form (empty: none) and what it held.
    error: String,
    query_text: String,
    query_invalid: bool,
    decision_text: String,
    decision_invalid: bool,
    /// The field to fix (its id and label), marked and linked from the error.
    invalid_field: &'static str,
    invalid_label: &'static str,
    /// Today (ISO): no deadline before it can be picked.
    today: String,
    /// The decision's Rechtsbehelfsbelehrung and deadline, prefilled.
    appeal_text: String,
    appeal_deadline: String,
    /// A fee the decision sets (empty: none), as typed.
    fee_amount: String,
    fee_purpose: String,
    done: Option<&'static str>,
    max_chars: usize,
}

#[derive(Serialize)]
struct HistoryRow {
    at: String,
    at_iso: String,
    what: &'static str,
    by: Option<String>,
}

#[derive(Serialize)]
struct MessageRow {
    at: String,
    at_iso: String,
    kind: &'static str,
    text: String,
    document: Option<DocumentLink>,
    appeal: Option<AppealView>,
    fee: Option<String>,
    /// The decision's fee was paid online: when the portal reported it.
    paid: Option<String>,
}

#[derive(Serialize)]
struct AppealView {
    text: String,
    deadline: String,
}

#[derive(Serialize)]
struct DocumentLink {
    href: String,
    filename: String,
    size: String,
}

/// The fee of the application's service and whether it was paid.
#[derive(Serialize)]
pub(super) struct FeeView {
    text: String,
    paid: Option<String>,
}

const DECISION_DEFAULT: &str =
    "Über Ihren Antrag wurde entschieden. Den Bescheid finden Sie als Dokument in Ihrem Postfach.";

/// The Rechtsbehelfsbelehrung the decision form offers, for the clerk to adapt.
fn appeal_default(authority: &str) -> String {
    format!(
        "Gegen diesen Bescheid kann innerhalb eines Monats nach Bekanntgabe Widerspruch erhoben werden. Der Widerspruch ist schriftlich, zur Niederschrift oder elektronisch über das Serviceportal bei der Behörde einzulegen, die diesen Bescheid erlassen hat: {authority}."
    )
}

/// Today in Germany, by the hub's clock.
fn today(s: &Shared) -> Date {
    berlin(s.hub.clock.now()).date()
}

/// A state as the clerk reads it in the history.
fn status_text(status: &str) -> &'static str {
    match Status::parse(status) {
        Some(Status::Accepted) => "Eingegangen auf der Plattform",
        Some(Status::Prepared) => "Zur Übernahme bereitgestellt",
        Some(Status::Delivered) => "Übernommen",
        Some(Status::Received) => "Eingang bestätigt",
        Some(Status::InProgress) => "In Bearbeitung",
        Some(Status::Query) => "Rückfrage gestellt",
        Some(Status::Decided) => "Entschieden",
        Some(Status::Rejected) => "Zurückgewiesen",
        Some(Status::Invalid) => "Nicht verarbeitbar",
        Some(Status::DeadLettered) => "Nicht zustellbar",
        None => "Unbekannt",
    }
}

/// A mailbox entry's kind as the clerk reads it.
fn message_kind(kind: &str) -> &'static str {
    match Status::parse(kind) {
        Some(Status::Query) => "Rückfrage",
        Some(Status::Decided) => "Bescheid",
        Some(Status::Rejected) => "Zurückweisung",
        Some(Status::Received) => "Eingangsbestätigung",
        _ => "Mitteilung",
    }
}

/// When the citizen's payment of the fee decision `event_id` set was reported (the
/// payment record, routed to the accounting procedure), in German; `None` while unpaid
/// or when the record was refused.
fn paid_at(record: &ApplicationRecord, event_id: &str) -> Option<String> {
    record
        .follow_ups
        .iter()
        .find(|f| {
            f.kind == FollowUpKind::Zahlung
                && f.refers_to.as_deref() == Some(event_id)
                && !matches!(
                    f.status,
                    Status::Rejected | Status::Invalid | Status::DeadLettered
                )
        })
        .map(|f| german_time(f.created_at))
}

/// The clerk named in a history entry's detail (taken over by, recorded by).
fn clerk_of(inbox: &Inbox, detail: &str) -> Option<String> {
    let id = detail
        .split_once("recorded by clerk ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .or_else(|| {
            detail
                .split_once("taken over by clerk ")
                .and_then(|(_, rest)| rest.split(' ').next())
        })?;
    Some(inbox.clerk_name(id).to_owned())
}

/// The work section for `record` (the application) of the message at `base`.
#[allow(clippy::too_many_arguments)]
pub(super) fn view(
    s: &Shared,
    base: &str,
    csrf: &str,
    authority: &str,
    record: &ApplicationRecord,
    mailbox: (Vec<MailboxEntry>, Vec<DocumentInfo>),
    sent: Option<Sent>,
    done: Option<&'static str>,
) -> WorkView {
    let [accept, in_progress, query, decision] = ClerkAction::offered(record.status);
    // Two steps of the hub can reach the same state (rendered, then ready for the
    // inbox): the clerk reads it once.
    let mut entries = record.history.clone();
    entries.dedup_by(|later, earlier| later.status == earlier.status);
    let history = entries
        .iter()
        .map(|entry| HistoryRow {
            at: german_time(entry.at),
            at_iso: iso(entry.at),
            what: status_text(&entry.status),
            by: clerk_of(&s.inbox, &entry.detail),
        })
        .collect();
    let (entries, documents) = mailbox;
    let messages = entries
        .into_iter()
        .map(|entry| {
            let document = entry
                .document_id
                .and_then(|id| documents.iter().find(|d| d.id == id))
                .map(|d| DocumentLink {
                    href: format!("{base}/dokumente/{}", d.id),
                    filename: d.filename.clone(),
                    size: render::human_size(d.size),
                });
            MessageRow {
                at: german_time(entry.at),
                at_iso: iso(entry.at),
                kind: message_kind(&entry.kind),
                text: entry.text,
                document,
                appeal: entry.appeal.map(|a| AppealView {
                    text: a.text,
                    deadline: german_day(a.deadline),
                }),
                paid: entry
                    .fee
                    .as_ref()
                    .and_then(|_| paid_at(record, &entry.event_id)),
                fee: entry
                    .fee
                    .map(|f| format!("{} € ({})", f.euros().replace('.', ","), f.purpose)),
            }
        })
        .collect();
    let sent = sent.unwrap_or_default();
    let (query_invalid, decision_invalid) = (sent.action == "query", sent.action == "decision");
    WorkView {
        status: status_text(record.status.as_str()),
        is_final: record.status.is_final(),
        history,
        messages,
        accept,
        in_progress,
        query,
        decision,
        action_href: format!("{base}/bearbeitung"),
        token: Uuid::new_v4().to_string(),
        csrf: csrf.to_owned(),
        query_text: if query_invalid {
            sent.text.clone()
        } else {
            String::new()
        },
        decision_text: if decision_invalid {
            sent.text.clone()
        } else {
            DECISION_DEFAULT.to_owned()
        },
        appeal_text: if decision_invalid {
            sent.appeal_text.clone()
        } else {
            appeal_default(authority)
        },
        appeal_deadline: if decision_invalid {
            sent.appeal_deadline.clone()
        } else {
            // Sent today: the end of the month's period, as the citizen's portal shows it.
            kopplung_forms::deadline::appeal_deadline(today(s)).to_string()
        },
        fee_amount: if decision_invalid {
            sent.fee_amount.clone()
        } else {
            String::new()
        },
        fee_purpose: if decision_invalid {
            sent.fee_purpose.clone()
        } else {
            String::new()
        },
        error: sent.error,
        invalid_field: sent.field,
        invalid_label: super::form::label_of(sent.field),
        query_invalid,
        decision_invalid,
        today: today(s).to_string(),
        done,
        max_chars: ClerkText::MAX_CHARS,
    }
}

/// The service's fee (paid at submission) or charge (set by the decision), and the
/// payment reference the portal added, if any.
pub(super) fn fee(mapping: Option<&Mapping>, payload: &Value) -> Option<FeeView> {
    let mapping = mapping?;
    // What the citizen paid for these entries (per certificate, say).
    if let Some(fee) = mapping.info.fee.as_ref().map(|f| f.due(payload)) {
        let reference = mapping
            .form
            .fields
            .iter()
            .filter(|f| f.filled_by.as_deref() == Some("payment"))
            .find_map(|f| payload.get(&f.name)?.as_str().map(str::to_owned));
        return Some(FeeView {
            text: format!(
                "{} € ({})",
                fee.betrag.replace('.', ","),
                fee.beschreibung.trim()
            ),
            paid: reference,
        });
    }
    mapping.info.charge.as_ref().map(|charge| FeeView {
        text: charge.sentence(),
        paid: None,
    })
}

/// What the notice after a recorded action says.
fn done_text(action: &str) -> Option<&'static str> {
    Some(match action {
        "accept" => {
            "Der Eingang wurde bestätigt; die antragstellende Person sieht es in ihrem Antrag."
        }
        "in_progress" => "Der Antrag ist als „In Bearbeitung“ vermerkt.",
        "query" => "Die Rückfrage wurde in das Postfach der antragstellenden Person gestellt.",
        "decision" => "Der Bescheid wurde in das Postfach der antragstellenden Person gestellt.",
        _ => return None,
    })
}

/// `GET …?erledigt=<action>`: the notice of the action just recorded.
pub(super) fn done_notice(query: Option<&str>) -> Option<&'static str> {
    query
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("erledigt=")))
        .and_then(done_text)
}

/// `POST /inbox/{procedure}/{message}/bearbeitung`
pub(super) async fn act(
    State(s): State<Shared>,
    headers: HeaderMap,
    found: Found,
    multipart: Multipart,
) -> Response {
    let Some(posted) = read_form(multipart).await else {
        let sent = Sent {
            error: format!(
                "Das Formular konnte nicht gelesen werden. Ist die Datei größer als {} MB? Bitte versuchen Sie es erneut.",
                MAX_DOCUMENT_BYTES / (1024 * 1024)
            ),
            ..Sent::default()
        };
        return document_page(&s, &found, Some(sent), None, StatusCode::BAD_REQUEST).await;
    };
    let signed = s.signed_in(&headers);
    if !signed.is_some_and(|signed| same_token(&posted.csrf, &signed.session.csrf)) {
        tracing::warn!(clerk = %found.session.user, "clerk inbox: POST without a valid CSRF token refused");
        return s.forbidden(Some(&found.session));
    }
    let refuse = |error: FormError, status: StatusCode| {
        let sent = Sent {
            action: posted.action.clone(),
            text: posted.text.clone(),
            appeal_text: posted.appeal_text.clone(),
            appeal_deadline: posted.appeal_deadline.clone(),
            fee_amount: posted.fee_amount.clone(),
            fee_purpose: posted.fee_purpose.clone(),
            error: error.message,
            field: error.field,
        };
        (sent, status)
    };
    // Only an application taken over is worked on: the take-over is its delivery.
    let taken = match s.hub.store.application(found.pickup.application_id).await {
        Ok(record) => record
            .as_ref()
            .and_then(|r| taken_over(&s.inbox, r, found.pickup.message_id))
            .is_some(),
        Err(e) => {
            tracing::error!(error = %e, "clerk inbox: reading an application failed");
            return s.unavailable(Some(&found.session));
        }
    };
    let outcome = match (
        Uuid::parse_str(&posted.token),
        action_of(&posted, today(&s)),
    ) {
        _ if !taken => Err(refuse(
            FormError::at(
                "",
                "Bitte übernehmen Sie den Antrag zuerst; erst dann kann er bearbeitet werden.",
            ),
            StatusCode::CONFLICT,
        )),
        (Err(_), _) => Err(refuse(
            FormError::at(
                "",
                "Das Formular ist unvollständig. Bitte laden Sie die Seite neu.",
            ),
            StatusCode::BAD_REQUEST,
        )),
        (_, Err(error)) => Err(refuse(error, StatusCode::UNPROCESSABLE_ENTITY)),
        (Ok(token), Ok(action)) => {
            let event = ClerkEvent {
                procedure: &found.procedure.id,
                clerk: &found.session.user,
                message_id: found.pickup.message_id,
                application_id: found.pickup.application_id,
                token,
                action,
            };
            s.hub
                .events
                .record_by_clerk(event)
                .await
                .map_err(|e| refuse(FormError::at("", refusal(&e)), refusal_status(&e)))
        }
    };
    match outcome {
        Ok(_) => {
            tracing::info!(
                procedure = %found.procedure.id,
                message_id = %found.pickup.message_id,
                clerk = %found.session.user,
                action = %posted.action,
                "clerk inbox: event recorded"
            );
            see_other(&format!(
                "/inbox/{}/{}?erledigt={}#erledigt",
                found.procedure.id,
                found.pickup.message_id,
                if done_text(&posted.action).is_some() {
                    posted.action.as_str()
                } else {
                    ""
                }
            ))
        }
        Err((_, StatusCode::SERVICE_UNAVAILABLE)) => s.unavailable(Some(&found.session)),
        Err((sent, status)) => document_page(&s, &found, Some(sent), None, status).await,
    }
}

/// What the clerk reads when the core refused the event.
fn refusal(error: &EventError) -> String {
    match error {
        EventError::OutOfOrder(status) => format!(
            "Der Antrag steht inzwischen auf „{}“; diese Aktion ist in diesem Stand nicht möglich. Die Seite zeigt jetzt, was möglich ist.",
            status_text(status.as_str())
        ),
        EventError::AlreadyFinal => {
            "Über den Antrag ist bereits entschieden; er kann nicht mehr bearbeitet werden.".to_owned()
        }
        EventError::ReceiptIdReused => "Dieses Formular wurde bereits mit anderem Inhalt abgeschickt. Bitte laden Sie die Seite neu und versuchen Sie es erneut.".to_owned(),
        EventError::BadDocument(_) => "Für diese Leistung muss der Bescheid ein PDF/A-Dokument sein (archivierbares PDF). Bitte speichern oder exportieren Sie ihn als PDF/A und laden Sie ihn erneut hoch.".to_owned(),
        EventError::NotDelivered | EventError::NoSuchMessage => {
            "Bitte übernehmen Sie den Antrag zuerst.".to_owned()
        }
        _ => "Die Aktion konnte nicht gespeichert werden. Bitte versuchen Sie es erneut.".to_owned(),
    }
}

fn refusal_status(error: &EventError) -> StatusCode {
    match error {
        EventError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        EventError::OutOfOrder(_) | EventError::AlreadyFinal | EventError::ReceiptIdReused => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// `GET /inbox/{procedure}/{message}/dokumente/{id}`: a document of the application
/// (the decision a clerk uploaded, or a procedure's).
pub(super) async fn document(
    State(s): State<Shared>,
    found: Found,
    Path((_, _, id)): Path<(String, String, String)>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return s.not_found(Some(&found.session));
    };
    match s.hub.store.document(found.pickup.application_id, id).await {
        Ok(Some((info, content))) => download(
            render::served_media_type(&info.media_type),
            &render::content_disposition(&info.filename),
            Body::from(content),
        ),
        Ok(None) => s.not_found(Some(&found.session)),
        Err(e) => {
            tracing::error!(error = %e, "clerk inbox: reading a document failed");
            s.unavailable(Some(&found.session))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_only_known_actions() {
        assert!(done_notice(Some("erledigt=query")).is_some());
        assert!(done_notice(Some("x=1&erledigt=decision")).is_some());
        assert_eq!(done_notice(Some("erledigt=<script>")), None);
        assert_eq!(done_notice(None), None);
    }
}
