//! The search's unit tests: the everyday queries against the repository's mappings,
//! folding, matching, compounds, places and ranking.

use super::*;

/// The services of the repository's `mappings/`, as the hub serves them.
struct Service {
    name: String,
    keywords: Vec<String>,
    description: String,
    available_in: Vec<String>,
}

fn services() -> Vec<Service> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings");
    let mut found = Vec::new();
    for dir in std::fs::read_dir(root).unwrap() {
        let path = dir.unwrap().path().join("service.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let value: toml::Value = toml::from_str(&text).unwrap();
        let strings = |key: &str| -> Vec<String> {
            value
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        found.push(Service {
            name: value["name"].as_str().unwrap().to_owned(),
            keywords: strings("keywords"),
            description: value["description"].as_str().unwrap_or_default().to_owned(),
            available_in: strings("available_in"),
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

const PLACES: &[(&str, &str)] = &[
    ("146120000000", "Dresden, Stadt"),
    ("147130000000", "Leipzig, Stadt"),
    ("146270210210", "Radebeul, Stadt"),
    ("145210035035", "Aue-Bad Schlema, Stadt"),
    (
        "146250020020",
        "Bautzen / Budyšin, Stadt, Hochschulstadt / Wysokošulske město",
    ),
    ("146280270270", "Bad Schandau, Stadt"),
    ("145210110110", "Breitenbrunn/Erzgeb., Hochschulort"),
    ("146120000000", "01067"),
];

fn places() -> Vec<Place<'static>> {
    PLACES
        .iter()
        .map(|(ars, name)| Place { ars, name })
        .collect()
}

/// The names of the services found, best first.
fn search(services: &[Service], query: &str) -> Vec<String> {
    let entries: Vec<Entry<'_>> = services
        .iter()
        .map(|s| Entry {
            name: &s.name,
            keywords: &s.keywords,
            description: &s.description,
            available_in: &s.available_in,
        })
        .collect();
    rank(&entries, &Query::parse(query, &places()))
        .into_iter()
        .map(|i| services[i].name.clone())
        .collect()
}

/// Everyday queries and the service each must find first (`everyday.tsv`; the same
/// table runs against a real hub and portal in tests/tests/portal_search.rs).
fn table() -> Vec<(&'static str, &'static str)> {
    include_str!("everyday.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .collect()
}

#[test]
fn everyday_queries_find_the_right_service_first() {
    let services = services();
    let mut wrong = Vec::new();
    for (query, expected) in table() {
        let found = search(&services, query);
        if found.first().map(String::as_str) != Some(expected) {
            wrong.push(format!(
                "{query:?}: expected {expected} first, found {found:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn folding_treats_umlauts_and_sharp_s_both_ways() {
    assert_eq!(fold("Straße"), fold("STRASSE"));
    assert_eq!(fold("Mängel"), fold("Maengel"));
    assert_eq!(fold("Mängel"), fold("Mangel"));
    assert_eq!(fold("Bürgerbüro"), fold("Buergerbuero"));
    assert_eq!(fold("Großenhain"), "grossenhain");
    assert_eq!(fold("Budyšin"), "budysin");
}

#[test]
fn hyphenated_words_count_apart_and_together() {
    assert_eq!(
        words("Hundesteuer-Anmeldung, jetzt!"),
        ["hundesteur", "anmeldung", "hundesteuranmeldung", "jetzt"]
    );
}

fn word(text: &str) -> Word {
    Word::new(&Stemmer::create(Algorithm::German), fold(text))
}

#[test]
fn words_match_exactly_as_part_or_with_a_typo() {
    assert_eq!(quality(&word("Schlaglöcher"), &word("Schlagloch")), EXACT);
    assert_eq!(quality(&word("Anmeldung"), &word("anmelden")), EXACT);
    assert_eq!(
        quality(&word("Parkausweis"), &word("Bewohnerparkausweis")),
        PART
    );
    assert_eq!(quality(&word("Schlagloh"), &word("Schlagloch")), TYPO);
    // Two edits only from nine letters on.
    assert_eq!(
        quality(&word("Meldebschinigung"), &word("Meldebescheinigung")),
        TYPO
    );
    assert_eq!(quality(&word("Umzgu"), &word("Umzug")), TYPO);
    assert_eq!(quality(&word("Umzgi"), &word("Umzug")), 0.0);
    // Short words must be right.
    assert_eq!(quality(&word("Hnud"), &word("Hund")), 0.0);
    // A typo in a compound's part.
    assert_eq!(
        quality(&word("Parkauswies"), &word("Bewohnerparkausweis")),
        TYPO_PART
    );
    assert_eq!(quality(&word("Umzug"), &word("Zuzug")), 0.0);
}

#[test]
fn a_compound_found_nowhere_is_searched_by_its_longest_known_last_part() {
    let stemmer = Stemmer::create(Algorithm::German);
    let keywords = Vec::new();
    let entries = [Entry {
        name: "Bewohnerparken",
        keywords: &keywords,
        description: "Ihr Parkausweis für die Bewohnerparkzone.",
        available_in: &[],
    }];
    let indexed: Vec<Indexed> = entries.iter().map(|e| Indexed::new(&stemmer, e)).collect();
    let (head, factor) = resolve(&stemmer, &indexed, &fold("Anwohnerparkausweis"));
    assert_eq!((head.folded.as_str(), factor), ("parkausweis", HEAD));
    let query = Query::parse("Anwohnerparkausweis", &[]);
    assert_eq!(rank(&entries, &query), [0]);
    // A last part of half the word or less is too general.
    assert!(rank(&entries, &Query::parse("Behindertenausweis", &[])).is_empty());
}

#[test]
fn place_names_and_postcodes_are_no_search_words() {
    let places = places();
    let query = Query::parse("Parkausweis in Dresden", &places);
    assert_eq!(query.terms, ["parkausweis"]);
    assert_eq!(query.places, ["146120000000"]);
    let query = Query::parse("Mängel Bad Schandau", &places);
    assert_eq!(
        (query.terms.as_slice(), query.places.as_slice()),
        (&["mangel".to_owned()][..], &["146280270270".to_owned()][..])
    );
    let query = Query::parse("Schlagloch Aue", &places);
    assert_eq!(query.places, ["145210035035"]);
    let query = Query::parse("Bautzen Schlagloch Breitenbrunn 01067", &places);
    assert_eq!(query.terms, ["schlagloch"]);
    assert_eq!(query.places.len(), 3);
}

#[test]
fn no_name_or_keyword_of_a_service_is_taken_for_a_municipality() {
    let csv = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/regions.csv"),
    )
    .unwrap();
    // `ars,"name, Stadt",kreis`: the name between the first and the last comma.
    let regions: Vec<(&str, &str)> = csv
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (ars, rest) = l.split_once(',')?;
            Some((ars, rest.rsplit_once(',')?.0.trim_matches('"')))
        })
        .collect();
    assert_eq!(regions.len(), 418);
    let places: Vec<Place<'_>> = regions
        .iter()
        .map(|(ars, name)| Place { ars, name })
        .collect();
    for service in services() {
        for text in service.keywords.iter().chain([&service.name]) {
            let query = Query::parse(text, &places);
            assert!(query.places.is_empty(), "{text:?} names {:?}", query.places);
        }
    }
    // The places themselves are recognised.
    let query = Query::parse("Parkausweis Chemnitz", &places);
    assert_eq!(query.places, ["145110000000"]);
}

#[test]
fn every_word_must_match_and_a_place_alone_lists_what_is_online_there() {
    let services = services();
    assert!(search(&services, "Schlagloch Hund").is_empty());
    assert!(search(&services, "Führerschein").is_empty());
    // Only the Mängelanzeige is online in Radebeul; in Dresden, all.
    assert_eq!(search(&services, "Radebeul"), ["Mängelanzeige"]);
    assert_eq!(search(&services, "Dresden").len(), services.len());
}

#[test]
fn a_service_online_in_the_place_named_comes_first() {
    let keywords = Vec::new();
    let (dresden, leipzig) = (["14612".to_owned()], ["14713".to_owned()]);
    let entries = [
        Entry {
            name: "Parkausweis",
            keywords: &keywords,
            description: "",
            available_in: &dresden,
        },
        Entry {
            name: "Parkausweis",
            keywords: &keywords,
            description: "",
            available_in: &leipzig,
        },
    ];
    let places = places();
    assert_eq!(
        rank(&entries, &Query::parse("Parkausweis", &places)),
        [0, 1]
    );
    assert_eq!(
        rank(&entries, &Query::parse("Parkausweis Leipzig", &places)),
        [1, 0]
    );
    assert_eq!(
        rank(&entries, &Query::parse("Parkausweis 01067", &places)),
        [0, 1]
    );
}

#[test]
fn a_hit_in_the_name_ranks_before_one_in_the_keywords_or_description() {
    let services = services();
    // `Wohnsitz` is Wohnsitzanmeldung's name and Meldebescheinigung's keyword.
    let found = search(&services, "Wohnsitz");
    assert_eq!(
        found.first().map(String::as_str),
        Some("Wohnsitzanmeldung"),
        "{found:?}"
    );
    let found = search(&services, "Urkunde");
    assert_eq!(
        found.first().map(String::as_str),
        Some("Urkundenbestellung"),
        "{found:?}"
    );
}
