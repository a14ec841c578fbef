//! The mapping workbench in a real browser: Debian's `chromium`, driven by
//! `playwright-core`, with `axe-core` on each page type and the hub's own CSP in force.
//! The script `tests/browser/workbench.mjs` signs in, opens the Mängelanzeige, breaks
//! its template and sees the rendered XML and its validation error update as it types,
//! fixes it and applies (and previews once more without JavaScript); then the next
//! application is delivered with the applied template. The same run opens an
//! application in the admin console: its history in German, its tables scrollable with
//! the keyboard, and axe-core finds no violation of any impact there or in the workbench.

use kopplung_tests::chromium::Walk;
use kopplung_tests::{
    ADMIN_TOKEN, ENGINEER_TOKEN, HubSetup, TestHub, amqp, delete_queue, mappings_copy,
};
use serde_json::json;

/// What the script puts into the template (a comment: every fixture still matches).
const MARKED: &str = "<!-- in der Werkbank geprüft -->";

#[tokio::test]
async fn an_engineer_edits_sees_the_results_update_applies_and_the_next_application_uses_it() {
    // SCREENSHOTS=<folder>: the run leaves its screenshots there.
    let walk = Walk::new("workbench.mjs");
    let broker = amqp().await;
    let mappings = mappings_copy();
    let hub = TestHub::start(HubSetup::with_mappings(mappings.path())).await;
    // An application for the console's page, delivered to Leipzig (Dresden's queue is
    // read below).
    let shown = hub
        .submit_accepted(
            &json!({"service": "99999001000000", "region": "147130000000",
                    "data": {"kategorie": "muell", "beschreibung": "Papierkorb seit Tagen voll", "ort": {"strasse": "Markt"}}}),
            None,
        )
        .await;
    hub.wait_for_status(&shown, "delivered", std::time::Duration::from_secs(60))
        .await;
    let out = walk.out().to_owned();
    let walked = walk
        .arg(hub.url(""))
        .arg(ENGINEER_TOKEN)
        .arg(out)
        .arg(ADMIN_TOKEN)
        .arg(&shown)
        .run()
        .await;
    println!("{}", walked.stdout);
    walked.assert_passed(&[("hub log", hub.log())]);
    walked.assert_checked(&[
        "services",
        "service",
        "applied",
        "console search",
        "console application",
    ]);
    // Exactly the edit: no line breaks of the browser's (CRLF), no lost first line.
    let field = "<beschreibung>{{data.beschreibung}}</beschreibung>";
    let repository = kopplung_tests::workspace().join("mappings/maengelanzeige/nachricht.xml.hbs");
    let original = std::fs::read_to_string(repository).unwrap();
    let template = mappings.path().join("maengelanzeige/nachricht.xml.hbs");
    assert_eq!(
        std::fs::read_to_string(&template).unwrap(),
        original.replacen(field, &format!("{MARKED}{field}"), 1),
        "applied to the mappings folder"
    );

    let id = hub
        .submit_accepted(
            &json!({"service": "99999001000000", "region": "146120000000",
                    "data": {"kategorie": "muell", "beschreibung": "Glascontainer überfüllt", "ort": {"strasse": "Markt"}}}),
            None,
        )
        .await;
    let xml = hub.delivered_xml(&broker, &id, "dresden-maengel").await;
    assert!(
        xml.contains(MARKED),
        "the next application uses the applied template:\n{xml}"
    );
    kopplung_tests::assert_has(&xml, "<beschreibung>Glascontainer überfüllt</beschreibung>");
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
    delete_queue(&broker, &hub.queue("leipzig-maengel")).await;
}
