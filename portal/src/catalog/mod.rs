//! The start page with search, the Leistungskatalog, the Behördenkatalog and the
//! Zuständigkeitsfinder — all read from the router's public API.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::account::trust_label;
use crate::router_client::{Region, Service};
use crate::web::{Failure, Page, Visit, Visitor, euro};

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

fn service_summary(service: &Service) -> Value {
    json!({
        "key": service.key,
        "name": service.name,
        "description": service.description,
        "fee": service.fee.as_ref().map(|f| euro(&f.betrag)),
        "charge": service.charge.as_ref().map(|c| match c.kind {
            kopplung_forms::ChargeKind::Gebuehr => "Gebühr mit dem Bescheid",
            kopplung_forms::ChargeKind::Steuer => "Steuer mit dem Bescheid",
        }),
        "online": service.online,
    })
}

#[derive(Deserialize)]
pub struct StartQuery {
    /// An identity provider sends the citizen back here after logout, with our state.
    state: Option<String>,
}

pub async fn start(Visit { state, visitor }: Visit, Query(query): Query<StartQuery>) -> Page {
    let logged_out = crate::oidc::logged_out(&state, query.state.as_deref()).await?;
    let services = state.router.services().await?;
    let list: Vec<Value> = services.iter().map(service_summary).collect();
    state.templates.ok(
        &visitor,
        "start",
        "Verwaltungsleistungen in Sachsen online",
        &json!({ "services": list, "logged_out": logged_out }),
    )
}

/// Search in names and descriptions, every word must occur (any case).
fn matches(service: &Service, query: &str) -> bool {
    let haystack = format!("{} {}", service.name, service.description).to_lowercase();
    query
        .split_whitespace()
        .all(|word| haystack.contains(&word.to_lowercase()))
}

pub async fn services(Visit { state, visitor }: Visit, Query(query): Query<SearchQuery>) -> Page {
    let q = query.q.trim();
    let list: Vec<Value> = state
        .router
        .services()
        .await?
        .iter()
        .filter(|s| q.is_empty() || matches(s, q))
        .map(service_summary)
        .collect();
    let title = if q.is_empty() {
        "Leistungskatalog".to_owned()
    } else {
        format!("Suchergebnisse für „{q}“")
    };
    state.templates.ok(
        &visitor,
        "services",
        &title,
        &json!({ "q": q, "found": found(list.len()), "services": list, "title": title }),
    )
}

/// How many services a search found, as a German sentence.
fn found(count: usize) -> String {
    match count {
        0 => "Keine Leistung gefunden.".to_owned(),
        1 => "Eine Leistung gefunden.".to_owned(),
        n => format!("{n} Leistungen gefunden."),
    }
}

/// Where a service is available online, in words.
async fn availability(state: &Shared, service: &Service) -> Result<Vec<String>, Failure> {
    let mut places = Vec::new();
    for prefix in &service.available_in {
        if prefix == "14" {
            places.push("in allen Gemeinden des Freistaates Sachsen".to_owned());
            continue;
        }
        let regions = state.router.regions(prefix).await?;
        match regions.as_slice() {
            [one] => places.push(one.name.clone()),
            [] => {}
            many => places.push(format!("{} Gemeinden im Gebiet {prefix}", many.len())),
        }
    }
    Ok(places)
}

pub async fn service(Visit { state, visitor }: Visit, Path(key): Path<String>) -> Page {
    let Some(service) = state.router.service(&key).await? else {
        return Err(Failure::not_found());
    };
    let places = availability(&state, &service).await?;
    state.templates.ok(
        &visitor,
        "service",
        &service.name,
        &json!({
            "key": service.key,
            "name": service.name,
            "description": service.description,
            "documents": service.documents,
            "fee": service.fee.as_ref().map(|f| json!({"amount": euro(&f.betrag), "description": f.beschreibung})),
            "charge": service.charge.as_ref().map(kopplung_forms::Charge::sentence),
            "online": service.online,
            "places": places,
            "trust_level": trust_label(service.trust_level),
            "anonymous": service.anonymous,
        }),
    )
}

pub async fn authorities(Visit { state, visitor }: Visit) -> Page {
    let list = state.router.authorities().await?;
    state.templates.ok(
        &visitor,
        "authorities",
        "Behördenkatalog",
        &json!({ "authorities": list }),
    )
}

pub async fn authority(Visit { state, visitor }: Visit, Path(id): Path<String>) -> Page {
    let Some(authority) = state.router.authority(&id).await? else {
        return Err(Failure::not_found());
    };
    let services = state.router.services().await?;
    let offered: Vec<Value> = services
        .iter()
        .filter(|s| authority.services.contains(&s.key))
        .map(service_summary)
        .collect();
    state.templates.ok(
        &visitor,
        "authority",
        &authority.name,
        &json!({ "authority": authority, "services": offered }),
    )
}

#[derive(Deserialize)]
pub struct FinderQuery {
    #[serde(default)]
    leistung: String,
    #[serde(default)]
    ort: String,
}

/// The Zuständigkeitsfinder: a service and a municipality (name or ARS) -> the
/// responsible authority and whether the service can be applied for online there.
pub async fn finder(Visit { state, visitor }: Visit, Query(query): Query<FinderQuery>) -> Page {
    let services = state.router.services().await?;
    let place = query.ort.trim().to_owned();
    let options: Vec<Value> = services
        .iter()
        .map(|s| json!({"key": s.key, "name": s.name, "selected": s.key == query.leistung}))
        .collect();
    let mut view = json!({
        "services": options,
        "ort": place,
        "leistung": query.leistung,
        "csrf": visitor.csrf,
        "errors": [],
        "candidates": [],
        "result": null,
    });
    let asked = !query.leistung.is_empty() || !place.is_empty();
    let mut errors = Vec::new();
    let service = services.iter().find(|s| s.key == query.leistung);
    if asked && service.is_none() {
        errors.push(json!({"id": "leistung", "message": "Bitte wählen Sie eine Leistung."}));
    }
    if asked && place.is_empty() {
        errors.push(json!({"id": "ort", "message": "Bitte geben Sie Ihre Gemeinde an (Name oder Regionalschlüssel)."}));
    }
    let mut region: Option<Region> = None;
    if asked && !place.is_empty() {
        let found = state.router.regions(&place).await?;
        let exact = found
            .iter()
            .filter(|r| {
                r.ars == place
                    || r.name.eq_ignore_ascii_case(&place)
                    || r.name
                        .split(',')
                        .next()
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case(&place))
            })
            .cloned()
            .collect::<Vec<_>>();
        match (exact.as_slice(), found.as_slice()) {
            ([one], _) | ([], [one]) => region = Some(one.clone()),
            (_, []) => errors.push(json!({"id": "ort", "message": format!("Keine sächsische Gemeinde gefunden, die „{place}“ heißt. Bitte prüfen Sie die Schreibweise oder geben Sie den 12-stelligen Regionalschlüssel an.")})),
            (_, many) => {
                view["candidates"] = json!(many.iter().take(50).map(|r| json!({
                    "ars": r.ars, "name": r.name,
                })).collect::<Vec<_>>());
            }
        }
    }
    if let (Some(service), Some(region), true) = (service, region, errors.is_empty())
        && let Some(found) = state
            .router
            .responsibility(&service.key, &region.ars)
            .await?
    {
        view["result"] = json!({
            "service": found.service,
            "service_name": found.service_name,
            "region": found.region,
            "region_name": found.region_name,
            "authority": found.authority,
            "online": found.online,
        });
        view["ort"] = json!(found.region_name);
    }
    let title = if errors.is_empty() {
        "Zuständigkeitsfinder"
    } else {
        "Fehler: Zuständigkeitsfinder"
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    view["errors"] = json!(errors);
    Ok(page_with(&state, &visitor, status, "finder", title, &view))
}

fn page_with(
    state: &Shared,
    visitor: &Visitor,
    status: StatusCode,
    template: &str,
    title: &str,
    view: &Value,
) -> Response {
    state.templates.page(visitor, status, template, title, view)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_number_found_reads_as_a_german_sentence() {
        assert_eq!(super::found(0), "Keine Leistung gefunden.");
        assert_eq!(super::found(1), "Eine Leistung gefunden.");
        assert_eq!(super::found(6), "6 Leistungen gefunden.");
    }
}
