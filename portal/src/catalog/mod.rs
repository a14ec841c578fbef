//! The start page with search, the Leistungskatalog, the Behördenkatalog and the
//! Zuständigkeitsfinder — all read from the router's public API.

mod finder;
mod postcodes;
mod search;

use axum::extract::{Path, Query};
use serde::Deserialize;
use serde_json::{Value, json};

pub use finder::finder;

use crate::Shared;
use crate::router_client::Service;
use crate::web::{Failure, Page, Visit, euro};

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

/// The services that match `q`, best first (`search`); all of them without `q`. The
/// municipalities and postcodes are asked for only when there is something to search.
async fn found_services<'a>(
    state: &Shared,
    services: &'a [Service],
    q: &str,
) -> Result<Vec<&'a Service>, Failure> {
    if q.is_empty() {
        return Ok(services.iter().collect());
    }
    let regions = state.router.regions("").await?;
    let places: Vec<search::Place<'_>> = regions
        .iter()
        .map(|r| search::Place {
            ars: &r.ars,
            name: &r.name,
        })
        .chain(postcodes::all().map(|(code, ars)| search::Place { ars, name: code }))
        .collect();
    let entries: Vec<search::Entry<'_>> = services
        .iter()
        .map(|s| search::Entry {
            name: &s.name,
            keywords: &s.keywords,
            description: &s.description,
            available_in: &s.available_in,
        })
        .collect();
    let query = search::Query::parse(q, &places);
    Ok(search::rank(&entries, &query)
        .into_iter()
        .filter_map(|i| services.get(i))
        .collect())
}

pub async fn services(Visit { state, visitor }: Visit, Query(query): Query<SearchQuery>) -> Page {
    let q = query.q.trim();
    let services = state.router.services().await?;
    let list: Vec<Value> = found_services(&state, &services, q)
        .await?
        .into_iter()
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
        &json!({ "q": q, "found": found(list.len()), "services": list, "title": title, "amt24": finder::AMT24 }),
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
            "trust_level": crate::level::name(service.trust_level),
            "anonymous": service.anonymous,
            "words": crate::forms::wording_view(service.wording),
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_number_found_reads_as_a_german_sentence() {
        assert_eq!(super::found(0), "Keine Leistung gefunden.");
        assert_eq!(super::found(1), "Eine Leistung gefunden.");
        assert_eq!(super::found(6), "6 Leistungen gefunden.");
    }
}
