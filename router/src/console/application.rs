//! One application: its state, delivery, history and audit trail; its transformed XML
//! (each view recorded before it is shown); and the operators' actions — the next
//! attempt now, a dead letter replayed, a delivered message without a receipt resent.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kopplung_web::shell::{CsrfForm, SignInUi, counted, german_time_seconds, see_other};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::search::{status_label, status_text};
use super::{Area, Console, Role, TimeView, User, wording};
use crate::catalog::service_name;
use crate::store::{ApplicationRecord, AuditEntry, Status, StoreError};
use kopplung_core::oversight::{MessageSource, ViewError, outcome_of};

/// Hex digits shown of a hash.
const HASH_SHOWN: usize = 12;

/// The application's page and its actions (a GET of an action's address — a bookmark,
/// a reload — leads back to the page).
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/applications/{id}", get(application))
        .route("/applications/{id}/xml", get(back_to_application).post(xml))
        .merge(action_routes())
}

#[derive(Serialize)]
struct ApplicationPage {
    id: String,
    receipt: String,
    service: String,
    service_key: String,
    municipality: String,
    region: String,
    client: String,
    status: &'static str,
    status_code: &'static str,
    created: TimeView,
    updated: TimeView,
    procedure: String,
    transport: String,
    destination: String,
    message_type: String,
    message_id: String,
    attempts: u32,
    last_error: Option<String>,
    next_attempt: Option<TimeView>,
    delivered: Option<TimeView>,
    /// Delivered, and the receipt is overdue: delivered at.
    awaiting_receipt_since: Option<TimeView>,
    notice: Option<&'static str>,
    csrf: String,
    xml_href: String,
    retry_href: String,
    replay_href: String,
    resend_href: String,
    reprocess_href: String,
    can_retry: bool,
    can_replay: bool,
    can_resend: bool,
    can_reprocess: bool,
    read_only: bool,
    history: Vec<HistoryRow>,
    history_caption: String,
    audit: Vec<AuditRow>,
    audit_caption: String,
}

#[derive(Serialize)]
struct HistoryRow {
    at: TimeView,
    status: String,
    detail: String,
}

#[derive(Serialize)]
struct AuditRow {
    seq: i64,
    at: TimeView,
    status: String,
    detail: String,
    message_hash: Option<String>,
    hash: String,
}

#[derive(Serialize)]
struct XmlPage {
    receipt: String,
    back_href: String,
    at: String,
    role: &'static str,
    message_type: String,
    message_id: String,
    xml: String,
    /// The XML as it was signed and sealed (else rendered now by the mapping in force).
    as_sent: bool,
}

#[derive(Debug, Default, Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    hinweis: String,
}

/// The first hex digits of a hash, for tables.
fn short_hash(hash: &str) -> String {
    match hash.get(..HASH_SHOWN) {
        Some(start) if hash.len() > HASH_SHOWN => format!("{start}…"),
        _ => hash.to_owned(),
    }
}

/// The application of a path, or the answer for an unknown one.
async fn find(
    console: &Console,
    user: &User,
    id: &str,
) -> Result<(Uuid, ApplicationRecord), Box<Response>> {
    let Ok(id) = Uuid::parse_str(id) else {
        return Err(Box::new(console.not_found(Some(&user.session))));
    };
    match console.hub.store.application(id).await {
        Ok(Some(record)) => Ok((id, record)),
        Ok(None) => Err(Box::new(console.not_found(Some(&user.session)))),
        Err(e) => {
            tracing::error!(error = %e, "admin console: reading an application failed");
            Err(Box::new(console.unavailable(Some(&user.session))))
        }
    }
}

async fn application(
    State(console): State<Console>,
    user: User,
    Path(id): Path<String>,
    notice: Result<Query<NoticeQuery>, QueryRejection>,
) -> Response {
    let (id, record) = match find(&console, &user, &id).await {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let audit: Vec<AuditEntry> = match console.hub.store.audit_entries(id).await {
        Ok(audit) => audit,
        Err(e) => {
            tracing::error!(error = %e, "admin console: reading the audit trail failed");
            return console.unavailable(Some(&user.session));
        }
    };
    let notice = match notice.map(|Query(q)| q.hinweis).as_deref() {
        Ok("versuch") => Some("Der nächste Zustellversuch wurde angestoßen."),
        Ok("eingeliefert") => Some(
            "Die Nachricht wurde erneut eingeliefert; sie geht mit derselben Nachrichten-ID noch einmal hinaus.",
        ),
        Ok("neu") => Some(
            "Der Antrag wird mit der jetzt geltenden Zuordnung neu erzeugt; die Nachrichten-ID bleibt dieselbe.",
        ),
        Ok("gesendet") => Some(
            "Die Nachricht geht mit derselben Nachrichten-ID noch einmal hinaus; die Eingangsbestätigung des Verfahrens steht weiter aus.",
        ),
        _ => None,
    };
    let mappings = console.hub.catalog.current();
    let topology = console.hub.topology.now();
    let destination = topology.destinations.get(&record.delivery.procedure);
    let operator = user.role == Role::Operator;
    let base = format!("/console/applications/{id}");
    let delivery = &record.delivery;
    let awaiting_receipt_since = console
        .hub
        .oversight
        .receipt_deadlines
        .overdue_since(&record, console.hub.clock.now());
    let page = ApplicationPage {
        id: id.to_string(),
        receipt: record.receipt.clone(),
        service: service_name(&mappings, &record.service),
        service_key: record.service.clone(),
        municipality: console.hub.regions.name_or_ars(&record.region),
        region: record.region.clone(),
        client: record.client_id.clone(),
        status: status_label(record.status),
        status_code: record.status.as_str(),
        created: TimeView::of(record.created_at),
        updated: TimeView::of(record.updated_at),
        procedure: delivery.procedure.clone(),
        transport: destination.map_or_else(|| "–".to_owned(), |d| d.transport.to_owned()),
        destination: destination.map_or_else(|| "–".to_owned(), |d| d.destination.clone()),
        message_type: delivery.message_type.clone(),
        message_id: delivery.message_id.to_string(),
        attempts: delivery.attempts,
        last_error: delivery.last_error.as_deref().map(wording::german),
        next_attempt: delivery.next_attempt_at.map(TimeView::of),
        delivered: delivery.delivered_at.map(TimeView::of),
        awaiting_receipt_since: awaiting_receipt_since.map(TimeView::of),
        notice,
        csrf: user.session.csrf.clone(),
        xml_href: format!("{base}/xml"),
        retry_href: format!("{base}/retry"),
        replay_href: format!("{base}/replay"),
        resend_href: format!("{base}/resend"),
        reprocess_href: format!("{base}/reprocess"),
        can_retry: operator && matches!(record.status, Status::Accepted | Status::Prepared),
        can_replay: operator && record.status == Status::DeadLettered,
        can_reprocess: operator && record.status == Status::Invalid,
        can_resend: operator
            && console
                .hub
                .oversight
                .receipt_deadlines
                .may_be_resent(&record),
        read_only: !operator,
        history_caption: format!(
            "{}, der älteste zuerst",
            counted(record.history.len(), "Eintrag", "Einträge")
        ),
        history: record
            .history
            .iter()
            .map(|h| HistoryRow {
                at: TimeView::of(h.at),
                status: status_text(&h.status),
                detail: wording::german(&h.detail),
            })
            .collect(),
        audit_caption: counted(audit.len(), "Eintrag", "Einträge"),
        audit: audit
            .iter()
            .map(|a| AuditRow {
                seq: a.seq,
                at: TimeView::parse(&a.at),
                status: status_text(&a.status),
                detail: wording::german(&a.detail),
                message_hash: a.message_sha256.as_deref().map(short_hash),
                hash: short_hash(&a.hash),
            })
            .collect(),
    };
    let title = format!("Antrag {}", record.receipt);
    console.page_in(
        StatusCode::OK,
        Area::Applications,
        &title,
        &user,
        "application",
        &page,
    )
}

/// A GET of an action's address (a bookmark, a reload): the application's page.
async fn back_to_application(Path(id): Path<String>) -> Response {
    match Uuid::parse_str(&id) {
        Ok(id) => see_other(&format!("/console/applications/{id}")),
        Err(_) => see_other("/console"),
    }
}

/// `POST …/xml`: records the view, then shows the transformed XML (escaped).
async fn xml(State(console): State<Console>, Posted { user, id }: Posted) -> Response {
    let (id, _) = match find(&console, &user, &id).await {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let back = format!("/console/applications/{id}");
    let role = user.role.name();
    let viewed = console
        .hub
        .oversight
        .view_message(id, role, "admin console")
        .await;
    let viewed = match viewed {
        Ok(viewed) => viewed,
        Err(ViewError::Purged) => {
            return console.error_back(
                    StatusCode::GONE,
                    &user,
                    "Daten gelöscht",
                    "Die personenbezogenen Daten dieses Antrags wurden nach Ablauf der Aufbewahrungsfrist gelöscht; die Nachricht kann nicht mehr gezeigt werden. Historie und Laufzettel bleiben.",
                    &back,
                );
        }
        Err(ViewError::NotRenderable(e)) => {
            let message = format!(
                "Die geltende Abbildung kann diesen Antrag nicht in eine Nachricht umsetzen: {e}"
            );
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let heading = "Nachricht nicht darstellbar";
            return console.error_back(status, &user, heading, &message, &back);
        }
        Err(ViewError::NotFound) => return console.not_found(Some(&user.session)),
        Err(ViewError::Unavailable(_)) => return console.unavailable(Some(&user.session)),
        Err(ViewError::Internal) => return console.shell.internal_error(),
    };
    let receipt = viewed.receipt;
    let page = XmlPage {
        receipt: receipt.clone(),
        back_href: back,
        at: german_time_seconds(console.hub.clock.now()),
        role,
        message_type: viewed.message_type,
        message_id: viewed.message_id.to_string(),
        xml: viewed.xml,
        as_sent: viewed.source == MessageSource::AsSent,
    };
    let title = format!("XÖV-Nachricht von Antrag {receipt}");
    console.page_in(
        StatusCode::OK,
        Area::Applications,
        &title,
        &user,
        "xml",
        &page,
    )
}

/// An operator's action on an application and how its outcome is told.
struct Action {
    /// In the log: what was done.
    done: &'static str,
    /// The application page's notice afterwards (`?hinweis=`).
    notice: &'static str,
    /// The page when there was nothing to do: heading and message.
    nothing: (&'static str, &'static str),
    /// In the log: what failed.
    failed: &'static str,
}

const RETRY: Action = Action {
    done: "next attempt requested in the admin console",
    notice: "versuch",
    nothing: (
        "Kein Versuch ausstehend",
        "Für diesen Antrag wartet kein Zustellversuch: Er ist zugestellt, wird gerade bearbeitet, ist unzustellbar (dann erneut einliefern) oder unbekannt.",
    ),
    failed: "admin console: retry now failed",
};

const REPLAY: Action = Action {
    done: "dead letter replayed in the admin console",
    notice: "eingeliefert",
    nothing: (
        "Keine unzustellbare Nachricht",
        "Die Nachricht dieses Antrags ist nicht (mehr) unzustellbar.",
    ),
    failed: "admin console: replaying a dead letter failed",
};

const RESEND: Action = Action {
    done: "message without a receipt resent in the admin console",
    notice: "gesendet",
    nothing: (
        "Nichts erneut zu senden",
        "Die Nachricht dieses Antrags ist nicht (mehr) zugestellt ohne Eingangsbestätigung: Das Verfahren hat den Eingang bestätigt, oder sie ist noch im Postausgang.",
    ),
    failed: "admin console: resending a message failed",
};

const REPROCESS: Action = Action {
    done: "invalid application reprocessed in the admin console",
    notice: "neu",
    nothing: (
        "Nichts neu zu erzeugen",
        "Dieser Antrag ist nicht (mehr) ungültig: Nur ein Antrag, dessen Nachricht die Zuordnung nicht erzeugen konnte, wird neu erzeugt.",
    ),
    failed: "admin console: reprocessing an application failed",
};

/// The handler of each action: `POST …/<name>` asks the oversight service's `$call` for
/// the signed-in operator and tells the outcome as `$action` says.
macro_rules! action_handlers {
    ($($(#[$doc:meta])* $name:ident => $call:ident, $action:ident;)*) => {
        $(
        $(#[$doc])*
        async fn $name(State(console): State<Console>, Operating(user, id): Operating) -> Response {
            let outcome = outcome_of(console.hub.oversight.$call(id, user.role.name()).await);
            acted(&console, &user, id, &$action, outcome)
        }
    )*

        /// `…/<name>` of every action.
        fn action_routes() -> Router<Console> {
            Router::new()
                $(.route(
                    concat!("/applications/{id}/", stringify!($name)),
                    get(back_to_application).post($name),
                ))*
        }
    };
}

action_handlers! {
    /// `POST …/retry`: the next attempt now.
    retry => retry_now, RETRY;
    /// `POST …/replay`: a dead letter back into the outbox.
    replay => replay, REPLAY;
    /// `POST …/resend`: a delivered message without a receipt again, same message id.
    resend => resend, RESEND;
    /// `POST …/reprocess`: an invalid application rendered again after the mapping was
    /// fixed, same message id.
    reprocess => reprocess, REPROCESS;
}

/// A POST on an application: its signed-in user (with the session's CSRF token) and
/// the application's id as in the path.
pub(super) struct Posted {
    pub(super) user: User,
    pub(super) id: String,
}

impl FromRequest<Console> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Path(id) = Path::<String>::from_request_parts(&mut parts, console)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let request = Request::from_parts(parts, body);
        let form = Form::<CsrfForm>::from_request(request, console).await;
        let user = console
            .posted_user(&headers, form)
            .map_err(|response| *response)?;
        Ok(Self { user, id })
    }
}

/// An operator's action on an application: the operator and the application's id. An
/// auditor is told that the role only reads.
struct Operating(User, Uuid);

impl FromRequest<Console> for Operating {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Self, Response> {
        let Posted { user, id } = Posted::from_request(request, console).await?;
        let Ok(id) = Uuid::parse_str(&id) else {
            return Err(console.not_found(Some(&user.session)));
        };
        if user.role != Role::Operator {
            let back = format!("/console/applications/{id}");
            return Err(console.error_back(
                StatusCode::FORBIDDEN,
                &user,
                "Nicht erlaubt",
                "Mit der Rolle „auditor“ können Sie lesen, aber nichts ändern. Zustellungen anstoßen kann nur der Betrieb (Rolle „operator“).",
                &back,
            ));
        }
        Ok(Self(user, id))
    }
}

/// The answer to an action: back to the application with a notice, or why not.
fn acted(
    console: &Console,
    user: &User,
    id: Uuid,
    action: &Action,
    outcome: Result<bool, StoreError>,
) -> Response {
    let back = format!("/console/applications/{id}");
    match outcome {
        Ok(true) => {
            tracing::info!(application_id = %id, role = user.role.name(), "{}", action.done);
            see_other(&format!("{back}?hinweis={}", action.notice))
        }
        Ok(false) => {
            let (heading, message) = action.nothing;
            console.error_back(StatusCode::CONFLICT, user, heading, message, &back)
        }
        Err(e) => {
            tracing::error!(error = %e, "{}", action.failed);
            console.unavailable(Some(&user.session))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_shortened() {
        assert_eq!(short_hash(&"ab".repeat(32)), "abababababab…");
        assert_eq!(short_hash("abc"), "abc");
    }
}
