//! The clerk's work on an application taken over: confirm its receipt, mark it in
//! progress, ask the citizen a question, decide with the decision as a PDF. Each is
//! recorded by the core's `Events::record_by_clerk` as the procedure's event would be,
//! and reaches the citizen's mailbox like one. Also what the document page shows of
//! the work: the state, the history, the messages to the citizen, the fee.

use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kopplung_core::events::{
    AppealProblem, ClerkAction, ClerkEvent, ClerkText, EventError, FeeProblem, MAX_APPEAL_CHARS,
    MAX_PURPOSE_CHARS, TextProblem, appeal_of, fee_of,
};
use kopplung_core::intake::{content_matches, valid_filename};
use kopplung_core::store::{
    Appeal, ApplicationRecord, DecisionFee, DocumentInfo, EventDocument, MailboxEntry, Status,
};
use kopplung_transformers::Mapping;
use kopplung_web::shell::{SignInUi, berlin, german_day, german_time, iso, same_token, see_other};
use serde::Serialize;
use serde_json::Value;
use time::{Date, Month};
use uuid::Uuid;

use super::pages::{Found, document_page, download, taken_over};
use super::{Inbox, Shared, render};

/// The largest decision document a clerk may upload (a procedure's event may carry 16 MiB).
pub(super) const MAX_DOCUMENT_BYTES: usize = 15 * 1024 * 1024;
/// The largest text field of the form (a question, a note); the text itself is
/// limited to [`ClerkText::MAX_CHARS`].
const MAX_FIELD_BYTES: usize = 64 * 1024;

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
        "Gegen diesen Bescheid kann innerhalb eines Monats nach Bekanntgabe Widerspruch erhoben werden. Der Widerspruch ist schriftlich oder zur Niederschrift bei {authority} einzulegen."
    )
}

/// Today in Germany, by the hub's clock.
fn today(s: &Shared) -> Date {
    berlin(s.hub.clock.now()).date()
}

/// The same day a month later (the last day of that month if it has no such day).
fn one_month_after(day: Date) -> Date {
    let (year, month) = match day.month() {
        Month::December => (day.year() + 1, Month::January),
        month => (day.year(), month.next()),
    };
    let last = time::util::days_in_month(month, year);
    Date::from_calendar_date(year, month, day.day().min(last)).unwrap_or(day)
}

/// A day as the date field sends it (`2027-01-06`) or as typed (`6.1.2027`).
fn parse_day(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some((d, rest)) = text.split_once('.') {
        let (m, y) = rest.split_once('.')?;
        let (d, m, y): (u8, u8, i32) = (d.parse().ok()?, m.parse().ok()?, y.parse().ok()?);
        let date = Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()?;
        return Some(date.to_string());
    }
    Some(text.to_owned())
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
            one_month_after(today(s)).to_string()
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
    if let Some(fee) = &mapping.info.fee {
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

/// What a form of the work section sent.
#[derive(Default)]
struct Posted {
    csrf: String,
    token: String,
    action: String,
    text: String,
    appeal_text: String,
    appeal_deadline: String,
    fee_amount: String,
    fee_purpose: String,
    document: Option<(String, Vec<u8>)>,
}

/// Reads the multipart form; `None` if it is malformed or too large.
async fn read_form(mut multipart: Multipart) -> Option<Posted> {
    let mut posted = Posted::default();
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "document" {
            let filename = field.file_name().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.ok()?;
            if bytes.len() > MAX_DOCUMENT_BYTES {
                return None;
            }
            // A form sent without choosing a file has an empty part.
            if !(filename.is_empty() && bytes.is_empty()) {
                posted.document = Some((filename, bytes.to_vec()));
            }
            continue;
        }
        let bytes = field.bytes().await.ok()?;
        if bytes.len() > MAX_FIELD_BYTES {
            return None;
        }
        let value = String::from_utf8(bytes.to_vec()).ok()?;
        match name.as_str() {
            "csrf" => posted.csrf = value,
            "token" => posted.token = value,
            "action" => posted.action = value,
            "text" => posted.text = value,
            "appeal_text" => posted.appeal_text = value,
            "appeal_deadline" => posted.appeal_deadline = value,
            "fee_amount" => posted.fee_amount = value,
            "fee_purpose" => posted.fee_purpose = value,
            _ => {}
        }
    }
    Some(posted)
}

/// Why a text was refused, in German.
/// `what` as inside a sentence ("die Rückfrage"); the sentence may start with it.
fn text_error(problem: TextProblem, what: &str) -> String {
    let mut chars = what.chars();
    let start: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    match problem {
        TextProblem::Empty => format!("Bitte geben Sie {what} ein."),
        TextProblem::TooLong { max, chars } => format!(
            "{start} ist mit {chars} Zeichen zu lang; erlaubt sind höchstens {max}. Bitte kürzen Sie den Text."
        ),
        TextProblem::ControlCharacter => format!(
            "{start} enthält ein unsichtbares Steuerzeichen. Bitte tippen Sie den Text neu, statt ihn einzufügen."
        ),
    }
}

/// The decision's appeal information (none if the clerk emptied the text), or the
/// German error to show.
fn appeal(posted: &Posted, today: Date) -> Result<Option<Appeal>, String> {
    if posted.appeal_text.trim().is_empty() {
        return Ok(None);
    }
    if posted.appeal_deadline.trim().is_empty() {
        return Err("Bitte geben Sie die Widerspruchsfrist an: den letzten Tag, an dem Widerspruch eingelegt werden kann.".to_owned());
    }
    let Some(deadline) = parse_day(&posted.appeal_deadline) else {
        return Err("Die Widerspruchsfrist ist kein gültiges Datum. Bitte geben Sie es als TT.MM.JJJJ an, z. B. 06.01.2027.".to_owned());
    };
    appeal_of(&posted.appeal_text, &deadline, today)
        .map(Some)
        .map_err(|problem| match problem {
            AppealProblem::BeforeDecision => "Die Widerspruchsfrist liegt in der Vergangenheit. Bitte geben Sie einen Tag ab heute an.".to_owned(),
            AppealProblem::NoDate => "Die Widerspruchsfrist ist kein gültiges Datum. Bitte geben Sie es als TT.MM.JJJJ an, z. B. 06.01.2027.".to_owned(),
            AppealProblem::ControlCharacter => "Die Rechtsbehelfsbelehrung enthält ein unsichtbares Steuerzeichen. Bitte tippen Sie den Text neu, statt ihn einzufügen.".to_owned(),
            AppealProblem::Empty | AppealProblem::TooLong => format!(
                "Die Rechtsbehelfsbelehrung ist mit {} Zeichen zu lang; erlaubt sind höchstens {MAX_APPEAL_CHARS}. Bitte kürzen Sie den Text.",
                posted.appeal_text.trim().chars().count()
            ),
        })
}

/// A fee the decision sets (none if the amount is left empty), or the German error.
fn decision_fee(posted: &Posted) -> Result<Option<DecisionFee>, String> {
    let typed = posted.fee_amount.trim().trim_end_matches('€').trim();
    if typed.is_empty() {
        return Ok(None);
    }
    // `30,70`, `30.70`, `30`, `1.250,00` as clerks type amounts.
    let plain = typed.replace(' ', "");
    let normalised = match plain.rsplit_once(',') {
        Some((euros, cents)) => format!("{}.{cents}", euros.replace('.', "")),
        None if plain.contains('.') => plain,
        None => format!("{plain}.00"),
    };
    let normalised = match normalised.split_once('.') {
        Some((euros, cents)) if cents.len() == 1 => format!("{euros}.{cents}0"),
        _ => normalised,
    };
    fee_of(&normalised, &posted.fee_purpose)
        .map(Some)
        .map_err(|problem| match problem {
            FeeProblem::NoAmount => "Die Gebühr ist kein Betrag. Bitte geben Sie ihn in Euro mit Komma an, z. B. 30,70.".to_owned(),
            FeeProblem::Zero => "Die Gebühr ist 0 €. Lassen Sie das Feld leer, wenn der Bescheid keine Gebühr festsetzt.".to_owned(),
            FeeProblem::TooHigh => "Die Gebühr ist höher als 100.000 €; so hohe Beträge können nicht online bezahlt werden.".to_owned(),
            FeeProblem::NoPurpose => "Bitte geben Sie den Verwendungszweck der Gebühr an, z. B. „Gebühr Bewohnerparkausweis“.".to_owned(),
            FeeProblem::PurposeTooLong => format!("Der Verwendungszweck ist zu lang; erlaubt sind höchstens {MAX_PURPOSE_CHARS} Zeichen."),
            FeeProblem::PurposeNotPlain => "Der Verwendungszweck muss in eine Zeile passen und darf keine Steuerzeichen enthalten.".to_owned(),
        })
}

/// The action the form asks for, or the German error to show.
fn action_of(posted: &Posted, today: Date) -> Result<ClerkAction, String> {
    match posted.action.as_str() {
        "accept" => Ok(ClerkAction::Accept),
        "in_progress" => Ok(ClerkAction::InProgress),
        "query" => ClerkText::new(&posted.text)
            .map(ClerkAction::Query)
            .map_err(|p| text_error(p, "die Rückfrage")),
        "decision" => {
            let message = ClerkText::new(&posted.text)
                .map_err(|p| text_error(p, "die Mitteilung zum Bescheid"))?;
            let Some((filename, content)) = &posted.document else {
                return Err("Bitte wählen Sie den Bescheid als PDF-Datei aus.".to_owned());
            };
            let filename = filename.rsplit(['/', '\\']).next().unwrap_or_default();
            if !valid_filename(filename) {
                return Err("Der Dateiname des Bescheids ist ungültig (leer, zu lang oder mit Sonderzeichen). Bitte benennen Sie die Datei um, z. B. in „bescheid.pdf“.".to_owned());
            }
            if !content_matches("application/pdf", content) {
                return Err(
                    "Die gewählte Datei ist kein PDF-Dokument. Bitte laden Sie den Bescheid als PDF hoch."
                        .to_owned(),
                );
            }
            Ok(ClerkAction::Decision {
                appeal: appeal(posted, today)?,
                fee: decision_fee(posted)?,
                message,
                document: EventDocument {
                    filename: filename.to_owned(),
                    media_type: "application/pdf".to_owned(),
                    content: content.clone(),
                },
            })
        }
        _ => Err("Unbekannte Aktion. Bitte laden Sie die Seite neu.".to_owned()),
    }
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
    let refuse = |error: String, status: StatusCode| {
        let sent = Sent {
            action: posted.action.clone(),
            text: posted.text.clone(),
            appeal_text: posted.appeal_text.clone(),
            appeal_deadline: posted.appeal_deadline.clone(),
            fee_amount: posted.fee_amount.clone(),
            fee_purpose: posted.fee_purpose.clone(),
            error,
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
            "Bitte übernehmen Sie den Antrag zuerst; erst dann kann er bearbeitet werden."
                .to_owned(),
            StatusCode::CONFLICT,
        )),
        (Err(_), _) => Err(refuse(
            "Das Formular ist unvollständig. Bitte laden Sie die Seite neu.".to_owned(),
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
                .map_err(|e| refuse(refusal(&e), refusal_status(&e)))
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

    fn posted(action: &str, text: &str, document: Option<(&str, &[u8])>) -> Posted {
        Posted {
            action: action.into(),
            text: text.into(),
            document: document.map(|(f, c)| (f.to_owned(), c.to_vec())),
            ..Posted::default()
        }
    }

    fn day() -> Date {
        time::macros::date!(2026 - 12 - 06)
    }

    fn action_of_(posted: &Posted) -> Result<ClerkAction, String> {
        action_of(posted, day())
    }

    #[test]
    fn the_form_becomes_an_action_or_a_german_error() {
        assert!(matches!(
            action_of(&posted("accept", "", None), day()),
            Ok(ClerkAction::Accept)
        ));
        assert_eq!(
            action_of_(&posted("query", "  ", None)).unwrap_err(),
            "Bitte geben Sie die Rückfrage ein."
        );
        let pdf = Some(("C:\\Ablage\\bescheid.pdf", &b"%PDF-1.7\n"[..]));
        match action_of_(&posted("decision", "Genehmigt.", pdf)) {
            Ok(ClerkAction::Decision { document, .. }) => {
                assert_eq!(document.filename, "bescheid.pdf");
            }
            other => panic!("{other:?}"),
        }
        let error = action_of_(&posted("decision", "Genehmigt.", None)).unwrap_err();
        assert!(error.contains("PDF-Datei"), "{error}");
        let not_pdf = Some(("bescheid.pdf", &b"PK\x03\x04"[..]));
        let error = action_of_(&posted("decision", "Genehmigt.", not_pdf)).unwrap_err();
        assert!(error.contains("kein PDF-Dokument"), "{error}");
        assert!(action_of_(&posted("delete", "", None)).is_err());
    }

    #[test]
    fn a_decision_carries_its_appeal_information_with_a_deadline_from_today() {
        let mut form = posted("decision", "Genehmigt.", Some(("b.pdf", &b"%PDF-1.7"[..])));
        form.appeal_text = "Widerspruch binnen eines Monats.".into();
        form.appeal_deadline = "6.1.2027".into();
        match action_of_(&form) {
            Ok(ClerkAction::Decision {
                appeal: Some(appeal),
                ..
            }) => {
                assert_eq!(appeal.deadline, time::macros::date!(2027 - 01 - 06));
            }
            other => panic!("{other:?}"),
        }
        form.appeal_deadline = "2026-12-05".into();
        assert!(action_of_(&form).unwrap_err().contains("Vergangenheit"));
        form.appeal_deadline = "31.02.2027".into();
        assert!(
            action_of_(&form)
                .unwrap_err()
                .contains("kein gültiges Datum")
        );
        form.appeal_deadline = String::new();
        assert!(
            action_of_(&form)
                .unwrap_err()
                .contains("Widerspruchsfrist an")
        );
        form.appeal_text = " ".into();
        assert!(matches!(
            action_of_(&form),
            Ok(ClerkAction::Decision { appeal: None, .. })
        ));
        assert_eq!(
            one_month_after(time::macros::date!(2027 - 01 - 31)),
            time::macros::date!(2027 - 02 - 28)
        );
        assert_eq!(
            one_month_after(time::macros::date!(2026 - 12 - 06)),
            time::macros::date!(2027 - 01 - 06)
        );
        assert_eq!(
            german_day(time::macros::date!(2027 - 03 - 01)),
            "1. März 2027"
        );
    }

    #[test]
    fn a_decisions_fee_is_typed_as_clerks_type_amounts() {
        let mut form = posted("decision", "Genehmigt.", Some(("b.pdf", &b"%PDF-1.7"[..])));
        form.fee_purpose = "Gebühr Bewohnerparkausweis".into();
        for (typed, cents) in [
            ("30,70", 3070),
            ("30.70", 3070),
            ("30", 3000),
            ("1.250,00 €", 125_000),
            ("7,5", 750),
        ] {
            form.fee_amount = typed.into();
            match action_of_(&form) {
                Ok(ClerkAction::Decision { fee: Some(fee), .. }) => {
                    assert_eq!(fee.cents, cents, "{typed}")
                }
                other => panic!("{typed}: {other:?}"),
            }
        }
        form.fee_amount = "dreißig".into();
        assert!(action_of_(&form).unwrap_err().contains("kein Betrag"));
        form.fee_amount = "30,70".into();
        form.fee_purpose = String::new();
        assert!(action_of_(&form).unwrap_err().contains("Verwendungszweck"));
        form.fee_amount = String::new();
        assert!(matches!(
            action_of_(&form),
            Ok(ClerkAction::Decision { fee: None, .. })
        ));
    }

    #[test]
    fn the_notice_names_only_known_actions() {
        assert!(done_notice(Some("erledigt=query")).is_some());
        assert!(done_notice(Some("x=1&erledigt=decision")).is_some());
        assert_eq!(done_notice(Some("erledigt=<script>")), None);
        assert_eq!(done_notice(None), None);
    }
}
