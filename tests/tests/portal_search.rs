//! Search that finds (issue 25): everyday queries find the right service first, on the
//! real hub (the repository's mappings with their `keywords`) and portal; the
//! Zuständigkeitsfinder takes postcodes, offers the municipalities of a postcode that
//! reaches several, and names contact details for every authority — for one that is
//! not connected the municipality's administration, its keys and postcodes and the way
//! to the Free State's Zuständigkeitsfinder, never an invented phone number.

mod portal_support;

use kopplung_tests::keys::MAENGEL;
use kopplung_tests::shared::assert_contains_all;
use portal_support::{Citizen, Cycle, Page};

/// Everyday queries and the service each must find first (the table the portal's unit
/// test `everyday_queries_find_the_right_service_first` reads too).
fn table() -> Vec<(&'static str, &'static str)> {
    include_str!("../../portal/src/catalog/search/everyday.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .collect()
}

const PARKEN: &str = "99108001000000";

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The names of the services a result page lists, in its order.
fn results(page: &Page) -> Vec<String> {
    let marker = "<h2 class=\"kern-heading-small\"><a class=\"kern-link\" href=\"/leistungen/";
    page.body
        .split(marker)
        .skip(1)
        .filter_map(|rest| {
            let name = rest.split_once("\">")?.1;
            Some(name.split_once("</a>")?.0.to_owned())
        })
        .collect()
}

async fn finder(visitor: &mut Citizen, service: &str, ort: &str) -> Page {
    visitor
        .get(&format!(
            "/zustaendigkeit?leistung={service}&ort={}",
            encode(ort)
        ))
        .await
}

#[tokio::test]
async fn everyday_queries_find_the_right_service_first() {
    let cycle = Cycle::start(false).await;
    let mut visitor = Citizen::new(&cycle);
    let mut wrong = Vec::new();
    let mut seen = Vec::new();
    for (query, expected) in table() {
        let page = visitor
            .get(&format!("/leistungen?q={}", encode(query)))
            .await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        let found = results(&page);
        seen.push(format!("{query:?} → {}", found.join(", ")));
        if found.first().map(String::as_str) != Some(expected) {
            wrong.push(format!(
                "{query:?}: expected {expected} first, found {found:?}"
            ));
        }
    }
    println!("{}", seen.join("\n"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(table().len() >= 20);

    // Nothing found: said as a sentence, with the way to all of Saxony's services.
    let page = visitor.get("/leistungen?q=F%C3%BChrerschein").await;
    assert!(results(&page).is_empty());
    assert_contains_all(
        &page.body,
        &[
            "Keine Leistung gefunden.",
            "Versuchen Sie einen anderen Suchbegriff",
            "href=\"https://amt24.sachsen.de/\"",
        ],
    );
    // A municipality alone lists what can be applied for online there.
    let page = visitor.get("/leistungen?q=Radebeul").await;
    assert_eq!(results(&page), ["Mängelanzeige"], "{}", page.body);
}

#[tokio::test]
async fn the_finder_takes_postcodes_and_names_every_authority_s_contacts() {
    let cycle = Cycle::start(false).await;
    let mut visitor = Citizen::new(&cycle);

    // A postcode of one municipality: Dresden's Bürgerbüro, with its contact details.
    let page = finder(&mut visitor, PARKEN, "01067").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_contains_all(
        &page.body,
        &[
            "Bewohnerparkausweis in Dresden<",
            "Landeshauptstadt Dresden, Bürgerbüro",
            "Theaterstraße 11, 01067 Dresden",
            "+49 351 488-6311",
            "Öffnungszeiten",
            "Online möglich",
        ],
    );
    // With the name after it, and with umlauts and ß written out.
    let page = finder(&mut visitor, MAENGEL, "01445 Radebeul").await;
    assert_contains_all(
        &page.body,
        &["Mängelanzeige in Radebeul<", "Landratsamt Meißen"],
    );
    let page = finder(&mut visitor, MAENGEL, "Grossenhain").await;
    assert_contains_all(&page.body, &["Mängelanzeige in Großenhain<"]);

    // A postcode that reaches several municipalities: offered to choose from.
    let page = finder(&mut visitor, PARKEN, "09600").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_contains_all(
        &page.body,
        &[
            "Mehrere Gemeinden gefunden",
            "Die Postleitzahl 09600 gehört zu mehreren Gemeinden.",
            "ort=145220430430\">Oberschöna</a>",
            "ort=145225113590\">Weißenborn/Erzgeb.</a>",
        ],
    );

    // A postcode outside Saxony: a German sentence that says what to do.
    let page = finder(&mut visitor, PARKEN, "10115").await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_contains_all(
        &page.body,
        &[
            "Zur Postleitzahl 10115 kennen wir keine sächsische Gemeinde. Bitte prüfen Sie die Postleitzahl oder geben Sie den Namen Ihrer Gemeinde an.",
        ],
    );

    // Not connected: the municipality's administration, its keys and postcodes, and
    // the way to the Free State's Zuständigkeitsfinder; no phone number made up.
    let page = finder(&mut visitor, PARKEN, "Radebeul").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_contains_all(
        &page.body,
        &[
            "Bewohnerparkausweis in Radebeul<",
            "Für Radebeul ist keine Behörde an dieses Portal angeschlossen",
            "die Verwaltung der Stadt Radebeul",
            "Suchen Sie dort nach „Bewohnerparkausweis“",
            "href=\"https://amt24.sachsen.de/\"",
            "Amtlicher Gemeindeschlüssel",
            "14627210",
            "01445",
            "146270210210",
            "Nicht online möglich",
        ],
    );
    let block = page
        .body
        .split("id=\"ansprechstelle\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap_or_default();
    assert!(
        !block.is_empty() && !block.contains(">Telefon<") && !block.contains("+49"),
        "{block}"
    );
    let page = finder(&mut visitor, PARKEN, "Oberschöna").await;
    assert_contains_all(
        &page.body,
        &["die Verwaltung der Gemeinde Oberschöna", "09600"],
    );
}
