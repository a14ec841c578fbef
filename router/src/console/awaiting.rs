//! Messages delivered without a receipt (Eingangsbestätigung) past their procedure's
//! receipt deadline: the list, and sending every overdue message of one procedure again
//! with its message id unchanged (operators; each resend in the history and audit trail).
//! One message alone is resent on its application's page.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use kopplung_web::shell::{SignInUi, counted, see_other};
use serde::{Deserialize, Serialize};

use super::application::Posted;
use super::{Area, Console, Role, TimeView, User};
use crate::catalog::service_name;

/// The page and the bulk resend (a GET of the action's address leads to the page).
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/awaiting-receipt", get(awaiting_receipt))
        .route(
            "/procedures/{id}/resend-overdue",
            get(back_to_list).post(resend_overdue),
        )
}

#[derive(Serialize)]
struct AwaitingPage {
    procedures: Vec<ProcedureGroup>,
    caption: String,
    notice: Option<String>,
    csrf: String,
    operator: bool,
}

/// The overdue messages of one procedure, with its bulk resend.
#[derive(Serialize)]
struct ProcedureGroup {
    procedure: String,
    deadline: String,
    resend_href: String,
    caption: String,
    messages: Vec<AwaitingRow>,
}

#[derive(Serialize)]
struct AwaitingRow {
    href: String,
    receipt: String,
    service: String,
    message_id: String,
    since: TimeView,
    due: TimeView,
}

#[derive(Debug, Default, Deserialize)]
struct ResentQuery {
    gesendet: Option<usize>,
}

async fn awaiting_receipt(
    State(console): State<Console>,
    user: User,
    resent: Result<Query<ResentQuery>, QueryRejection>,
) -> Response {
    let Ok(overdue) = console.hub.oversight.awaiting_receipt(None).await else {
        return console.unavailable(Some(&user.session));
    };
    let mappings = console.hub.catalog.current();
    let caption = format!(
        "{}, die älteste zuerst",
        counted(overdue.len(), "Nachricht", "Nachrichten")
    );
    let mut procedures: Vec<ProcedureGroup> = Vec::new();
    for awaiting in overdue {
        let row = AwaitingRow {
            href: format!("/console/applications/{}", awaiting.application_id),
            receipt: awaiting.receipt,
            service: service_name(&mappings, &awaiting.service),
            message_id: awaiting.message_id.to_string(),
            since: TimeView::of(awaiting.since),
            due: TimeView::of(awaiting.due),
        };
        match procedures
            .iter_mut()
            .find(|g| g.procedure == awaiting.procedure)
        {
            Some(group) => group.messages.push(row),
            None => procedures.push(ProcedureGroup {
                deadline: console
                    .hub
                    .oversight
                    .receipt_deadlines
                    .of(&awaiting.procedure)
                    .map(deadline_text)
                    .unwrap_or_default(),
                resend_href: format!("/console/procedures/{}/resend-overdue", awaiting.procedure),
                procedure: awaiting.procedure,
                caption: String::new(),
                messages: vec![row],
            }),
        }
    }
    for group in &mut procedures {
        group.caption = format!(
            "Verfahren {}: {}",
            group.procedure,
            counted(group.messages.len(), "Nachricht", "Nachrichten")
        );
    }
    let notice = match resent {
        Ok(Query(ResentQuery { gesendet: Some(n) })) => Some(format!(
            "{} erneut gesendet, jede mit ihrer Nachrichten-ID.",
            counted(n, "Nachricht", "Nachrichten")
        )),
        _ => None,
    };
    let page = AwaitingPage {
        procedures,
        caption,
        notice,
        csrf: user.session.csrf.clone(),
        operator: user.role == Role::Operator,
    };
    console.page_in(
        StatusCode::OK,
        Area::AwaitingReceipt,
        "Ohne Eingangsbestätigung",
        &user,
        "awaiting",
        &page,
    )
}

/// A deadline in German words: `15 Minuten`, `24 Stunden`, `90 Sekunden`.
fn deadline_text(deadline: time::Duration) -> String {
    let seconds = deadline.whole_seconds();
    let seconds = usize::try_from(seconds).unwrap_or(0);
    if seconds >= 3600 && seconds % 3600 == 0 {
        counted(seconds / 3600, "Stunde", "Stunden")
    } else if seconds >= 60 && seconds % 60 == 0 {
        counted(seconds / 60, "Minute", "Minuten")
    } else {
        counted(seconds, "Sekunde", "Sekunden")
    }
}

async fn back_to_list() -> Response {
    see_other("/console/awaiting-receipt")
}

/// `POST /console/procedures/{id}/resend-overdue`: every overdue message of the
/// procedure again (operators).
async fn resend_overdue(
    State(console): State<Console>,
    Posted {
        user,
        id: procedure,
    }: Posted,
) -> Response {
    if user.role != Role::Operator {
        let link = Some(("/console/awaiting-receipt", "Zurück zur Liste"));
        return console.error_page(
            StatusCode::FORBIDDEN,
            Some(&user.session),
            "Nicht erlaubt",
            "Mit der Rolle „auditor“ können Sie lesen, aber nichts ändern. Nachrichten erneut senden kann nur der Betrieb (Rolle „operator“).",
            link,
        );
    }
    if !console
        .hub
        .topology
        .now()
        .destinations
        .contains_key(&procedure)
    {
        return console.not_found(Some(&user.session));
    }
    match console
        .hub
        .oversight
        .resend_overdue(&procedure, user.role.name())
        .await
    {
        Ok(resent) => {
            tracing::info!(%procedure, resent = resent.len(), "overdue messages resent in the admin console");
            see_other(&format!(
                "/console/awaiting-receipt?gesendet={}",
                resent.len()
            ))
        }
        Err(_) => console.unavailable(Some(&user.session)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_read_in_their_largest_whole_unit() {
        assert_eq!(deadline_text(time::Duration::minutes(15)), "15 Minuten");
        assert_eq!(deadline_text(time::Duration::hours(24)), "24 Stunden");
        assert_eq!(deadline_text(time::Duration::hours(1)), "1 Stunde");
        assert_eq!(deadline_text(time::Duration::seconds(90)), "90 Sekunden");
    }
}
