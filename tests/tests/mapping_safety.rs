//! A mapping change cannot break production: every reload runs each service's lint and
//! fixtures (what `mapping lint` and `mapping test` check) and refuses on any failure,
//! counted, with the mappings in force kept; an application submitted meanwhile is
//! rendered with them and delivered. (`kopplung check` and start: check_cli.rs.)

use std::path::Path;

use kopplung_tests::{HubSetup, TestHub, amqp, delete_queue, mappings_copy, replace_in};
use serde_json::json;

const REFUSED: &str = "kopplung_mapping_reloads_total{outcome=\"refused\"}";
const APPLIED: &str = "kopplung_mapping_reloads_total{outcome=\"applied\"}";

#[tokio::test]
async fn a_broken_template_or_fixture_is_refused_on_reload_and_the_old_mapping_stays() {
    let broker = amqp().await;
    let mappings = mappings_copy();
    let hub = TestHub::start(HubSetup::with_mappings(mappings.path())).await;
    let folder = mappings.path().join("maengelanzeige");
    let template = folder.join("nachricht.xml.hbs");
    let expected = folder.join("fixtures/minimal.expected.xml");
    let field = "<beschreibung>{{data.beschreibung}}</beschreibung>";
    let root_end = "</mng:maengelanzeige.meldung.0101>";
    let breakages: [(&Path, &str, String, &str); 3] = [
        (
            &template,
            field,
            "<beschreibung>{{data.beschreibung}} {{data.farbe}}</beschreibung>".into(),
            "`data.farbe` refers to a field the form does not define",
        ),
        (
            &template,
            root_end,
            format!("{root_end}\n<zweite/>"),
            "more than one root element",
        ),
        (
            &expected,
            "ist seit einer Woche dunkel.",
            "ist seit zwei Wochen dunkel.".into(),
            "minimal.expected.xml",
        ),
    ];
    let last = breakages.len() - 1;
    for (n, (file, old, new, named)) in breakages.iter().enumerate() {
        let original = replace_in(file, old, new);
        hub.hangup();
        hub.wait_for_metric(REFUSED, (n + 1) as f64).await;
        let log = hub.log();
        assert!(
            log.contains("mapping reload refused") && log.contains(named),
            "`{named}` not in the log: {log}"
        );
        // The last breakage stays on disk while an application is submitted.
        if n != last {
            std::fs::write(file, original).unwrap();
        }
    }
    assert_eq!(hub.metric(APPLIED).await, Some(0.0));

    let id = hub
        .submit_accepted(
            &json!({
                "service": "99999001000000",
                "region": "146120000000",
                "data": {"kategorie": "muell", "beschreibung": "Sperrmüll liegt seit Tagen auf dem Gehweg", "ort": {"strasse": "Prager Straße"}}
            }),
            None,
        )
        .await;
    let xml = hub.delivered_xml(&broker, &id, "dresden-maengel").await;
    kopplung_tests::assert_has(
        &xml,
        "<beschreibung>Sperrmüll liegt seit Tagen auf dem Gehweg</beschreibung>",
    );
    assert!(!xml.contains("zweite"), "{xml}");

    // Fixed: the next reload applies.
    replace_in(
        &expected,
        "ist seit zwei Wochen dunkel.",
        "ist seit einer Woche dunkel.",
    );
    hub.hangup();
    hub.wait_for_metric(APPLIED, 1.0).await;
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}
