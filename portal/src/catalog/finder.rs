//! The Zuständigkeitsfinder: a service and a municipality — by name, postcode or ARS —
//! lead to the responsible authority with its contact details, and say whether the
//! service can be applied for online there. Where no authority is connected to the hub
//! for the service, the municipality's administration is named with what the data has
//! (its keys and postcodes) and a link to the Free State's own Zuständigkeitsfinder.

use axum::extract::Query;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::postcodes;
use super::search::fold;
use crate::router_client::Region;
use crate::web::{Page, Visit};

/// The Free State of Saxony's service portal, whose Zuständigkeitsfinder has every
/// authority's address, phone and opening hours.
pub const AMT24: &str = "https://amt24.sachsen.de/";

#[derive(Deserialize)]
pub struct FinderQuery {
    #[serde(default)]
    leistung: String,
    #[serde(default)]
    ort: String,
}

/// What a citizen's `ort` names.
#[derive(Debug)]
pub enum Located {
    One(Region),
    /// Several municipalities: to choose from; `postcode` when a postcode named them.
    Several {
        regions: Vec<Region>,
        postcode: Option<String>,
    },
    /// A postcode of no Saxon municipality.
    UnknownPostcode(String),
    Unknown,
}

use kopplung_forms::german::place_name;

/// Whether the municipality is a town (`…, Stadt`).
fn is_town(name: &str) -> bool {
    name.split(',').skip(1).any(|part| part.trim() == "Stadt")
}

/// The Amtlicher Gemeindeschlüssel of an ARS: the first five and the last three digits.
pub fn ags(ars: &str) -> Option<String> {
    (ars.len() == 12 && ars.is_ascii()).then(|| format!("{}{}", &ars[..5], &ars[9..]))
}

/// Finds what `place` names among `regions` (all the hub's municipalities): a postcode
/// (`01067`, also `01067 Dresden`), an ARS or its prefix, or a name — exact before
/// partial, umlauts and case folded (`Grossenhain` is Großenhain).
pub fn locate(place: &str, regions: &[Region]) -> Located {
    let place = place.trim();
    let (first, rest) = place
        .split_once(char::is_whitespace)
        .map_or((place, ""), |(f, r)| (f, r.trim()));
    if postcodes::is_postcode(first) {
        let arses = postcodes::municipalities(first);
        let reached: Vec<Region> = regions
            .iter()
            .filter(|r| arses.contains(&r.ars.as_str()))
            .cloned()
            .collect();
        if !reached.is_empty() {
            let named = by_name(rest, &reached);
            let chosen = if rest.is_empty() || named.is_empty() {
                reached
            } else {
                named
            };
            return one_or_several(chosen, Some(first));
        }
    }
    if !place.is_empty() && place.bytes().all(|b| b.is_ascii_digit()) {
        let found: Vec<Region> = regions
            .iter()
            .filter(|r| r.ars.starts_with(place))
            .cloned()
            .collect();
        if found.is_empty() && postcodes::is_postcode(place) {
            return Located::UnknownPostcode(place.to_owned());
        }
        return one_or_several(found, None);
    }
    one_or_several(by_name(place, regions), None)
}

fn one_or_several(mut found: Vec<Region>, postcode: Option<&str>) -> Located {
    match found.len() {
        0 => Located::Unknown,
        1 => found.pop().map_or(Located::Unknown, Located::One),
        _ => Located::Several {
            regions: found,
            postcode: postcode.map(str::to_owned),
        },
    }
}

/// The municipalities a name means: those whose name or German short name is it; else
/// those whose short name is it before a qualifier (`Weißenborn` for
/// `Weißenborn/Erzgeb.`); else those whose name contains it.
fn by_name(name: &str, regions: &[Region]) -> Vec<Region> {
    let wanted = fold(name.trim());
    if wanted.is_empty() {
        return Vec::new();
    }
    let tiers: [&dyn Fn(&Region) -> bool; 3] = [
        &|r| fold(&r.name) == wanted || fold(place_name(&r.name)) == wanted,
        &|r| {
            let short = place_name(&r.name);
            fold(short.split('/').next().unwrap_or(short)) == wanted
        },
        &|r| fold(&r.name).contains(&wanted),
    ];
    for tier in tiers {
        let found: Vec<Region> = regions.iter().filter(|r| tier(r)).cloned().collect();
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// What the finder shows of a municipality whose authority is not connected: its
/// administration, its keys and postcodes, and where to find the contact details.
fn administration(region: &Region) -> Value {
    let short = place_name(&region.name);
    let name = if is_town(&region.name) {
        format!("Stadt {short}")
    } else {
        format!("Gemeinde {short}")
    };
    json!({
        "name": name,
        "short_name": short,
        "ags": ags(&region.ars),
        "postcodes": postcodes::of(&region.ars).join(", "),
        "amt24": AMT24,
    })
}

/// The Zuständigkeitsfinder: a service and a municipality (name, postcode or ARS) -> the
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
        "candidates_postcode": null,
        "result": null,
    });
    let asked = !query.leistung.is_empty() || !place.is_empty();
    let mut errors = Vec::new();
    let service = services.iter().find(|s| s.key == query.leistung);
    if asked && service.is_none() {
        errors.push(json!({"id": "leistung", "message": "Bitte wählen Sie eine Leistung."}));
    }
    if asked && place.is_empty() {
        errors.push(json!({"id": "ort", "message": "Bitte geben Sie Ihre Gemeinde an: ihren Namen oder Ihre Postleitzahl."}));
    }
    let mut region: Option<Region> = None;
    if asked && !place.is_empty() {
        let all = state.router.regions("").await?;
        match locate(&place, &all) {
            Located::One(one) => region = Some(one),
            Located::Several { regions, postcode } => {
                view["candidates"] = json!(regions.iter().take(50).map(|r| json!({
                    "ars": r.ars, "name": r.name,
                })).collect::<Vec<_>>());
                view["candidates_postcode"] = json!(postcode);
            }
            Located::UnknownPostcode(code) => errors.push(json!({"id": "ort", "message": format!("Zur Postleitzahl {code} kennen wir keine sächsische Gemeinde. Bitte prüfen Sie die Postleitzahl oder geben Sie den Namen Ihrer Gemeinde an.")})),
            Located::Unknown => errors.push(json!({"id": "ort", "message": format!("Keine sächsische Gemeinde gefunden, die „{place}“ heißt. Bitte prüfen Sie die Schreibweise oder geben Sie Ihre Postleitzahl an.")})),
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
            "region_name": place_name(&found.region_name),
            "authority": found.authority,
            "administration": administration(&region),
            "online": found.online,
            "words": crate::forms::wording_view(service.wording),
        });
        view["ort"] = json!(found.region_name);
    }
    let (title, status) = if errors.is_empty() {
        ("Zuständigkeitsfinder", StatusCode::OK)
    } else {
        (
            "Fehler: Zuständigkeitsfinder",
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    view["errors"] = json!(errors);
    Ok(state
        .templates
        .page(&visitor, status, "finder", title, &view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(ars: &str, name: &str) -> Region {
        Region {
            ars: ars.to_owned(),
            name: name.to_owned(),
        }
    }

    fn regions() -> Vec<Region> {
        vec![
            region("146120000000", "Dresden, Stadt"),
            region("146270210210", "Radebeul, Stadt"),
            region("146270060060", "Großenhain, Stadt"),
            region("145220430430", "Oberschöna"),
            region("145225113590", "Weißenborn/Erzgeb."),
            region(
                "146250020020",
                "Bautzen / Budyšin, Stadt, Hochschulstadt / Wysokošulske město",
            ),
            region("146250380380", "Neukirch/Lausitz"),
            region("146255218370", "Neukirch"),
        ]
    }

    fn names(located: &Located) -> Vec<&str> {
        match located {
            Located::One(r) => vec![r.name.as_str()],
            Located::Several { regions, .. } => regions.iter().map(|r| r.name.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_postcode_finds_its_municipality_or_offers_several() {
        let regions = regions();
        assert_eq!(names(&locate("01067", &regions)), ["Dresden, Stadt"]);
        assert_eq!(names(&locate(" 01445 ", &regions)), ["Radebeul, Stadt"]);
        let several = locate("09600", &regions);
        assert_eq!(names(&several), ["Oberschöna", "Weißenborn/Erzgeb."]);
        assert!(matches!(several, Located::Several { postcode: Some(ref p), .. } if p == "09600"));
        // With the name after it, the one meant.
        assert_eq!(names(&locate("09600 Oberschöna", &regions)), ["Oberschöna"]);
        assert!(matches!(locate("10115", &regions), Located::UnknownPostcode(p) if p == "10115"));
    }

    #[test]
    fn names_are_found_without_case_umlauts_or_qualifiers() {
        let regions = regions();
        assert_eq!(names(&locate("dresden", &regions)), ["Dresden, Stadt"]);
        assert_eq!(
            names(&locate("Grossenhain", &regions)),
            ["Großenhain, Stadt"]
        );
        assert_eq!(
            names(&locate("Bautzen", &regions)),
            ["Bautzen / Budyšin, Stadt, Hochschulstadt / Wysokošulske město"]
        );
        assert_eq!(
            names(&locate("Weissenborn", &regions)),
            ["Weißenborn/Erzgeb."]
        );
        // Exact before partial: Neukirch is one, Neukir both.
        assert_eq!(names(&locate("Neukirch", &regions)), ["Neukirch"]);
        assert_eq!(names(&locate("Neukir", &regions)).len(), 2);
        assert!(matches!(locate("Atlantis", &regions), Located::Unknown));
    }

    #[test]
    fn an_ars_or_its_prefix_still_works() {
        let regions = regions();
        assert_eq!(names(&locate("146120000000", &regions)), ["Dresden, Stadt"]);
        assert_eq!(names(&locate("14612", &regions)), ["Dresden, Stadt"]);
        assert_eq!(names(&locate("14625", &regions)).len(), 3);
    }

    #[test]
    fn the_administration_of_a_municipality_not_connected() {
        let town = administration(&region("146270210210", "Radebeul, Stadt"));
        assert_eq!(town["name"], "Stadt Radebeul");
        assert_eq!(town["ags"], "14627210");
        assert!(town["postcodes"].as_str().unwrap().contains("01445"));
        assert_eq!(town["amt24"], AMT24);
        let village = administration(&region("145220430430", "Oberschöna"));
        assert_eq!(village["name"], "Gemeinde Oberschöna");
        let sorbian = administration(&region(
            "146250020020",
            "Bautzen / Budyšin, Stadt, Hochschulstadt / Wysokošulske město",
        ));
        assert_eq!(sorbian["name"], "Stadt Bautzen");
    }
}
