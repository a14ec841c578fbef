//! "Meine Fälle": the applications of the clerk's procedures in every state, newest
//! first, filtered by state, service and receipt number — the list a clerk works from
//! once applications are taken over (the start page lists only those waiting).

use std::collections::BTreeSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kopplung_core::store::{ApplicationQuery, ApplicationSummary, Status};
use kopplung_web::shell::{Choice, SignInUi, counted, german_time, iso, see_other};
use serde::{Deserialize, Serialize};

use super::Shared;
use crate::catalog::service_name;

/// Applications read per procedure and filter.
const CASES_LIMIT: u32 = 300;

/// The state filters, as the form offers them: (value, label).
const STATES: [(&str, &str); 6] = [
    ("offen", "Alle offenen"),
    ("neu", "Noch nicht übernommen"),
    ("bearbeitung", "Übernommen, eingegangen oder in Bearbeitung"),
    ("rueckfrage", "Rückfrage gestellt"),
    ("erledigt", "Entschieden oder zurückgewiesen"),
    ("alle", "Alle"),
];

/// The query string; unknown or empty values mean "no filter".
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    stand: String,
    #[serde(default)]
    leistung: String,
    #[serde(default)]
    nummer: String,
}

/// Whether an application in `status` is shown under the state filter `state`.
fn state_matches(state: &str, status: Status) -> bool {
    match state {
        "neu" => status == Status::Prepared,
        "bearbeitung" => matches!(
            status,
            Status::Delivered | Status::Received | Status::InProgress
        ),
        "rueckfrage" => status == Status::Query,
        "erledigt" => status.is_final(),
        "alle" => true,
        // "offen", the default
        _ => !status.is_final(),
    }
}

/// The one status a state filter names, for the store to filter by.
fn single_status(state: &str) -> Option<Status> {
    match state {
        "neu" => Some(Status::Prepared),
        "rueckfrage" => Some(Status::Query),
        _ => None,
    }
}

/// `k7qx 2m4p` → `K7QX-2M4P`, as receipt numbers are printed.
fn normalize_receipt(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_uppercase();
    (!compact.is_empty()).then(|| {
        if compact.len() == 8 {
            format!("{}-{}", &compact[..4], &compact[4..])
        } else {
            compact
        }
    })
}

fn status_text(status: Status) -> &'static str {
    match status {
        Status::Prepared => "Wartet auf Übernahme",
        Status::Delivered => "Übernommen",
        Status::Received => "Eingang bestätigt",
        Status::InProgress => "In Bearbeitung",
        Status::Query => "Rückfrage gestellt",
        Status::Decided => "Entschieden",
        Status::Rejected => "Zurückgewiesen",
        Status::Accepted => "Eingegangen",
        Status::Invalid | Status::DeadLettered => "Gestört (Betrieb informiert)",
    }
}

#[derive(Serialize)]
struct CasesPage {
    states: Vec<Choice>,
    services: Vec<Choice>,
    nummer: String,
    caption: String,
    cases: Vec<CaseRow>,
    truncated: bool,
    limit: u32,
}

#[derive(Serialize)]
struct CaseRow {
    href: String,
    receipt: String,
    service: String,
    municipality: String,
    status: &'static str,
    received: String,
    received_iso: String,
    updated: String,
    updated_iso: String,
    authority: String,
}

/// `GET /inbox/faelle?stand=&leistung=&nummer=`
pub(super) async fn list(
    State(s): State<Shared>,
    headers: HeaderMap,
    filter: Result<Query<Filter>, QueryRejection>,
) -> Response {
    let Some(session) = s.signed_in(&headers).map(|signed| signed.session) else {
        return see_other("/inbox/login");
    };
    let filter = filter.map(|Query(filter)| filter).unwrap_or_default();
    let state = STATES
        .iter()
        .find(|(value, _)| *value == filter.stand)
        .map_or("offen", |(value, _)| value);
    let mappings = s.hub.catalog.current();
    let topology = s.hub.topology.now();
    let procedures = s.inbox.procedures_of(&session.user);
    // The services whose routes lead to the clerk's procedures.
    let offered: BTreeSet<String> = topology
        .config
        .routing
        .routes
        .iter()
        .filter(|route| {
            procedures
                .iter()
                .any(|p| p.id == route.procedure.to_string())
        })
        .map(|route| route.service.to_string())
        .collect();
    let service = Some(filter.leistung.as_str()).filter(|key| offered.contains(*key));
    let receipt = normalize_receipt(&filter.nummer);
    let mut found: Vec<(ApplicationSummary, String)> = Vec::new();
    let mut truncated = false;
    for procedure in &procedures {
        let query = ApplicationQuery {
            receipt: receipt.clone(),
            service: service.map(str::to_owned),
            procedure: Some(procedure.id.clone()),
            status: single_status(state),
            from: None,
            until: None,
            limit: CASES_LIMIT,
            // Cases; each lists its follow-up messages on its page.
            follow_ups: false,
        };
        match s.hub.store.search(&query).await {
            Ok(cases) => {
                truncated |= cases.len() >= CASES_LIMIT as usize;
                found.extend(
                    cases
                        .into_iter()
                        .filter(|case| state_matches(state, case.status))
                        .map(|case| (case, procedure.authority.clone())),
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "clerk inbox: listing cases failed");
                return s.unavailable(Some(&session));
            }
        }
    }
    found.sort_by_key(|(case, _)| std::cmp::Reverse(case.created_at));
    let cases: Vec<CaseRow> = found
        .into_iter()
        .map(|(case, authority)| CaseRow {
            href: format!("/inbox/{}/{}", case.procedure, case.message_id),
            receipt: case.receipt,
            service: service_name(&mappings, &case.service),
            municipality: s.hub.regions.name_or_ars(&case.region),
            status: status_text(case.status),
            received: german_time(case.created_at),
            received_iso: iso(case.created_at),
            updated: german_time(case.updated_at),
            updated_iso: iso(case.updated_at),
            authority,
        })
        .collect();
    let page = CasesPage {
        states: STATES
            .iter()
            .map(|(value, label)| Choice::new(*value, *label, Some(state)))
            .collect(),
        services: offered
            .iter()
            .map(|key| Choice::new(key.as_str(), service_name(&mappings, key), service))
            .collect(),
        nummer: filter.nummer.chars().take(40).collect(),
        caption: counted(cases.len(), "Fall", "Fälle"),
        cases,
        truncated,
        limit: CASES_LIMIT,
    };
    s.page(
        StatusCode::OK,
        "Meine Fälle",
        Some(&session),
        "cases",
        &page,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_filters_split_the_states() {
        assert!(state_matches("offen", Status::Query));
        assert!(!state_matches("offen", Status::Decided));
        assert!(state_matches("neu", Status::Prepared));
        assert!(state_matches("bearbeitung", Status::Received));
        assert!(!state_matches("bearbeitung", Status::Query));
        assert!(state_matches("erledigt", Status::Rejected));
        assert!(state_matches("alle", Status::Decided));
        assert!(state_matches("unbekannt", Status::Delivered), "the default");
    }

    #[test]
    fn receipt_numbers_are_found_as_typed() {
        assert_eq!(normalize_receipt(" k7qx 2m4p"), Some("K7QX-2M4P".into()));
        assert_eq!(normalize_receipt("K7QX-2M4P"), Some("K7QX-2M4P".into()));
        assert_eq!(normalize_receipt(" "), None);
    }
}
