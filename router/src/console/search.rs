//! The search: applications by receipt, service, procedure, state and day of receipt,
//! and the German names of the states.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use kopplung_web::shell::{Choice, SignInUi, berlin_midnight, counted, german_time, iso};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, UtcOffset};

use super::{Area, Console, User};
use crate::catalog::service_name;
use crate::context::Hub;
use crate::store::{ApplicationQuery, Status};

/// Applications shown per search.
const SEARCH_LIMIT: u32 = 100;

/// The search, the console's start page.
pub(super) fn routes() -> Router<Console> {
    Router::new().route("/", get(search))
}

#[derive(Serialize)]
struct SearchPage {
    form: SearchForm,
    services: Vec<Choice>,
    procedures: Vec<Choice>,
    statuses: Vec<Choice>,
    error: Option<String>,
    results: Vec<ResultRow>,
    caption: String,
    truncated: bool,
    limit: u32,
}

#[derive(Serialize)]
struct ResultRow {
    href: String,
    receipt: String,
    service: String,
    municipality: String,
    procedure: String,
    status: &'static str,
    attempts: u32,
    last_error: String,
    accepted: String,
    accepted_iso: String,
}

/// The search form as submitted (and shown again).
#[derive(Debug, Default, Deserialize, Serialize)]
struct SearchForm {
    #[serde(default)]
    receipt: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    procedure: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
}

/// German names of the states, in the order an application goes through them.
pub(super) const STATUSES: [(Status, &str); 10] = [
    (Status::Accepted, "angenommen"),
    (Status::Prepared, "vorbereitet"),
    (Status::Delivered, "zugestellt"),
    (Status::Received, "eingegangen (bestätigt)"),
    (Status::InProgress, "in Bearbeitung"),
    (Status::Query, "Rückfrage"),
    (Status::Decided, "entschieden"),
    (Status::Rejected, "abgelehnt"),
    (Status::Invalid, "nicht verarbeitbar"),
    (Status::DeadLettered, "unzustellbar"),
];

pub(super) fn status_label(status: Status) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("unbekannt", |(_, label)| label)
}

/// A status as stored in the history (a state's name, shown in German if it is one).
pub(super) fn status_text(status: &str) -> String {
    Status::parse(status).map_or_else(|| status.to_owned(), |s| status_label(s).to_owned())
}

/// `k7qx 2m4p`, `K7QX2M4P` → `K7QX-2M4P`.
fn normalize_receipt(text: &str) -> String {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    if compact.len() == 8 && compact.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("{}-{}", &compact[..4], &compact[4..])
    } else {
        compact
    }
}

/// A date from the form: `2025-03-14` (date field) or `14.03.2025` (typed).
fn parse_day(text: &str) -> Option<Date> {
    let text = text.trim();
    let (year, month, day) = if let Some((d, rest)) = text.split_once('.') {
        let (m, y) = rest.split_once('.')?;
        (y, m, d)
    } else {
        let mut parts = text.splitn(3, '-');
        (parts.next()?, parts.next()?, parts.next()?)
    };
    if year.len() != 4 {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
}

/// The store query of a submitted search form, or the message for the user. The form's
/// dates are shown again normalised.
fn query_of(form: &mut SearchForm, state: &Hub) -> Result<ApplicationQuery, String> {
    let given = |value: &str| {
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_owned())
    };
    let receipt = given(&form.receipt).map(|r| normalize_receipt(&r));
    let service = given(&form.service);
    if let Some(service) = &service
        && !state.catalog.current().contains_key(service)
    {
        return Err("Diese Leistung gibt es nicht.".into());
    }
    let procedure = given(&form.procedure);
    if let Some(procedure) = &procedure
        && !state.topology.now().destinations.contains_key(procedure)
    {
        return Err("Dieses Verfahren gibt es nicht.".into());
    }
    let status = match given(&form.status) {
        None => None,
        Some(text) => Some(Status::parse(&text).ok_or("Diesen Status gibt es nicht.")?),
    };
    let day = |value: &mut String, name: &str| -> Result<Option<Date>, String> {
        match given(value) {
            None => Ok(None),
            Some(text) => match parse_day(&text) {
                Some(day) => {
                    *value = day.to_string();
                    Ok(Some(day))
                }
                None => Err(format!(
                    "„{name}“ ist kein Datum. Bitte geben Sie es als JJJJ-MM-TT oder TT.MM.JJJJ an."
                )),
            },
        }
    };
    let from = day(&mut form.from, "Eingegangen ab")?;
    let until = day(&mut form.until, "Eingegangen bis")?;
    // The store compares times as text: hand it UTC.
    let utc = |t: OffsetDateTime| t.to_offset(UtcOffset::UTC);
    Ok(ApplicationQuery {
        receipt,
        service,
        procedure,
        status,
        from: from.map(|d| utc(berlin_midnight(d))),
        until: until
            .and_then(|d| d.next_day())
            .map(|d| utc(berlin_midnight(d))),
        limit: SEARCH_LIMIT,
        // Searching by state, an operator looks for what is stuck: follow-up messages
        // (answers, objections, payment records) are stuck the same way.
        follow_ups: status.is_some(),
    })
}

async fn search(
    State(console): State<Console>,
    user: User,
    query: Result<Query<SearchForm>, QueryRejection>,
) -> Response {
    let (mut form, mut error) = match query {
        Ok(Query(form)) => (form, None),
        Err(_) => (
            SearchForm::default(),
            Some("Die Suchangaben waren unvollständig.".to_owned()),
        ),
    };
    let mappings = console.hub.catalog.current();
    let mut results = Vec::new();
    if error.is_none() {
        match query_of(&mut form, &console.hub) {
            Ok(query) => match console.hub.store.search(&query).await {
                Ok(found) => {
                    results = found
                        .into_iter()
                        .map(|a| ResultRow {
                            href: format!("/console/applications/{}", a.id),
                            service: service_name(&mappings, &a.service),
                            municipality: console.hub.regions.name_or_ars(&a.region),
                            receipt: a.receipt,
                            procedure: a.procedure,
                            status: status_label(a.status),
                            attempts: a.attempts,
                            last_error: a
                                .last_error
                                .as_deref()
                                .map_or_else(|| "–".into(), super::wording::german),
                            accepted: german_time(a.created_at),
                            accepted_iso: iso(a.created_at),
                        })
                        .collect();
                }
                Err(e) => {
                    tracing::error!(error = %e, "admin console: searching applications failed");
                    return console.unavailable(Some(&user.session));
                }
            },
            Err(message) => error = Some(message),
        }
    }
    let choice = |value: &str, label: String, chosen: &str| Choice::new(value, label, Some(chosen));
    let mut services: Vec<Choice> = mappings
        .values()
        .map(|m| {
            choice(
                &m.info.key,
                format!("{} ({})", m.info.name, m.info.key),
                &form.service,
            )
        })
        .collect();
    services.sort_by(|a, b| a.label.cmp(&b.label));
    let procedures = console
        .hub
        .topology
        .now()
        .destinations
        .keys()
        .map(|id| choice(id, id.clone(), &form.procedure))
        .collect();
    let statuses = STATUSES
        .iter()
        .map(|(status, label)| choice(status.as_str(), (*label).to_owned(), &form.status))
        .collect();
    let found = counted(results.len(), "Antrag", "Anträge");
    let caption = format!("{found}, die neuesten zuerst");
    let page = SearchPage {
        truncated: results.len() >= SEARCH_LIMIT as usize,
        limit: SEARCH_LIMIT,
        caption,
        results,
        form,
        services,
        procedures,
        statuses,
        error,
    };
    let code = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    console.page_in(code, Area::Applications, "Anträge", &user, "search", &page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn receipts_and_days_are_read_as_people_type_them() {
        assert_eq!(normalize_receipt(" k7qx 2m4p "), "K7QX-2M4P");
        assert_eq!(normalize_receipt("K7QX2M4P"), "K7QX-2M4P");
        assert_eq!(normalize_receipt("k7qx-2m4p"), "K7QX-2M4P");
        assert_eq!(parse_day("2025-03-14"), Some(date!(2025 - 03 - 14)));
        assert_eq!(parse_day("14.03.2025"), Some(date!(2025 - 03 - 14)));
        assert_eq!(parse_day("4.3.2025"), Some(date!(2025 - 03 - 04)));
        assert_eq!(parse_day("2025-02-30"), None);
        assert_eq!(parse_day("14.03.25"), None);
        assert_eq!(parse_day("gestern"), None);
    }

    #[test]
    fn states_read_in_german() {
        assert_eq!(status_text("dead_lettered"), "unzustellbar");
        assert_eq!(status_text("something"), "something");
        for (status, _) in STATUSES {
            assert_ne!(status_label(status), "unbekannt");
        }
    }
}
