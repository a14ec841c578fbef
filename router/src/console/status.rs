//! The hub's state at a glance: per procedure the backlog and what blocks it, the
//! certificates and how long they last, the mappings; and the dead letters.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use kopplung_web::shell::{SignInUi, counted};
use serde::Serialize;

use super::{Area, Console, TimeView, User};
use crate::catalog::service_name;
use kopplung_core::Stage;
use kopplung_core::oversight::{CertificateStatus, MappingStatus, ProcedureStatus};

/// Certificates expiring sooner (in days) are highlighted, as the example alert rule
/// in docs/operations.md warns.
const CERTIFICATE_WARN_DAYS: u32 = 21;

/// The status page and the dead letters.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/status", get(status_page))
        .route("/deadletters", get(dead_letters))
}

#[derive(Serialize)]
struct StatusPage {
    procedures: Vec<ProcedureRow>,
    procedures_caption: String,
    certificates: Vec<CertificateRow>,
    certificates_caption: String,
    warn_days: u32,
    mappings: Vec<MappingRow>,
    mappings_caption: String,
}

#[derive(Serialize)]
struct ProcedureRow {
    procedure: String,
    transport: &'static str,
    destination: String,
    pending: u64,
    oldest: Option<TimeView>,
    blocked: Option<String>,
}

#[derive(Serialize)]
struct CertificateRow {
    owner: String,
    certificate: String,
    days: String,
    state: String,
    class: Option<&'static str>,
}

#[derive(Serialize)]
struct MappingRow {
    name: String,
    service: String,
    message_type: String,
    online: &'static str,
}

#[derive(Serialize)]
struct DeadLettersPage {
    letters: Vec<DeadLetterRow>,
    caption: String,
}

#[derive(Serialize)]
struct DeadLetterRow {
    href: String,
    receipt: String,
    service: String,
    procedure: String,
    attempts: u32,
    reason: String,
    since: TimeView,
}

async fn status_page(State(console): State<Console>, user: User) -> Response {
    let Ok(report) = console.hub.oversight.status().await else {
        return console.unavailable(Some(&user.session));
    };
    let page = StatusPage {
        procedures_caption: counted(report.procedures.len(), "Verfahren", "Verfahren"),
        procedures: rows(report.procedures),
        certificates_caption: counted(report.certificates.len(), "Zertifikat", "Zertifikate"),
        certificates: rows(report.certificates),
        warn_days: CERTIFICATE_WARN_DAYS,
        mappings_caption: counted(report.mappings.len(), "Abbildung", "Abbildungen"),
        mappings: rows(report.mappings),
    };
    console.page_in(
        StatusCode::OK,
        Area::Status,
        "Status",
        &user,
        "status",
        &page,
    )
}

impl From<ProcedureStatus> for ProcedureRow {
    fn from(p: ProcedureStatus) -> Self {
        Self {
            procedure: p.procedure,
            transport: p.transport,
            destination: p.destination,
            pending: p.pending,
            oldest: p.oldest_since.map(TimeView::of),
            blocked: p.blocked,
        }
    }
}

impl From<CertificateStatus> for CertificateRow {
    fn from(c: CertificateStatus) -> Self {
        let (state, class) = certificate_state(c.days_left);
        // Both certificates of a rotation are valid: the stage tells which one is used.
        let state = match c.stage {
            Some(stage) => format!("{state}, {}", stage_name(stage)),
            None => state.to_owned(),
        };
        Self {
            owner: c.owner,
            certificate: c.certificate,
            days: if c.days_left.is_finite() {
                format!("{}", c.days_left)
            } else {
                "–".to_owned()
            },
            state,
            class,
        }
    }
}

impl From<MappingStatus> for MappingRow {
    fn from(m: MappingStatus) -> Self {
        Self {
            name: m.name,
            service: m.service,
            message_type: m.message_type,
            online: if m.online { "ja" } else { "nein (keine Route)" },
        }
    }
}

/// The table rows of a report's items.
fn rows<T, R: From<T>>(items: Vec<T>) -> Vec<R> {
    items.into_iter().map(R::from).collect()
}

/// How a certificate stands, and the row's highlight.
/// A rotation stage in the console's German.
fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Published => "veröffentlicht",
        Stage::Active => "aktiv",
        Stage::Retired => "abgelöst",
    }
}

fn certificate_state(days_left: f64) -> (&'static str, Option<&'static str>) {
    if !days_left.is_finite() {
        ("nicht lesbar", Some("expired"))
    } else if days_left < 0.0 {
        ("abgelaufen", Some("expired"))
    } else if days_left < f64::from(CERTIFICATE_WARN_DAYS) {
        ("läuft bald ab", Some("warn"))
    } else {
        ("gültig", None)
    }
}

async fn dead_letters(State(console): State<Console>, user: User) -> Response {
    let letters = match console.hub.store.dead_letters().await {
        Ok(letters) => letters,
        Err(e) => {
            tracing::error!(error = %e, "admin console: reading dead letters failed");
            return console.unavailable(Some(&user.session));
        }
    };
    let mappings = console.hub.catalog.current();
    let page = DeadLettersPage {
        caption: format!(
            "{}, die älteste zuerst",
            counted(
                letters.len(),
                "unzustellbare Nachricht",
                "unzustellbare Nachrichten"
            )
        ),
        letters: letters
            .into_iter()
            .map(|l| DeadLetterRow {
                href: format!("/console/applications/{}", l.application_id),
                receipt: l.receipt,
                service: service_name(&mappings, &l.service),
                procedure: l.procedure,
                attempts: l.attempts,
                reason: super::wording::german(&l.reason),
                since: TimeView::of(l.since),
            })
            .collect(),
    };
    console.page_in(
        StatusCode::OK,
        Area::DeadLetters,
        "Unzustellbare Nachrichten",
        &user,
        "deadletters",
        &page,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_highlighted_before_and_after_expiry() {
        assert_eq!(certificate_state(365.0), ("gültig", None));
        assert_eq!(certificate_state(21.0), ("gültig", None));
        assert_eq!(certificate_state(20.0), ("läuft bald ab", Some("warn")));
        assert_eq!(certificate_state(0.0), ("läuft bald ab", Some("warn")));
        assert_eq!(certificate_state(-1.0), ("abgelaufen", Some("expired")));
        assert_eq!(certificate_state(f64::NAN).1, Some("expired"));
    }

    #[test]
    fn a_rotating_certificate_shows_its_stage() {
        let row = |stage| {
            CertificateRow::from(CertificateStatus {
                owner: "hub".into(),
                certificate: "next".into(),
                days_left: 365.0,
                stage,
            })
            .state
        };
        assert_eq!(row(None), "gültig");
        assert_eq!(row(Some(Stage::Published)), "gültig, veröffentlicht");
        assert_eq!(row(Some(Stage::Active)), "gültig, aktiv");
        assert_eq!(row(Some(Stage::Retired)), "gültig, abgelöst");
    }
}
