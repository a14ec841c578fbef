//! The mapping workbench in a real browser: Debian's `chromium`, driven by
//! `playwright-core`, with `axe-core` on each page type and the hub's own CSP in force.
//! The script `tests/browser/workbench.mjs` signs in, opens the Mängelanzeige, breaks
//! its template and sees the rendered XML and its validation error update as it types,
//! fixes it and applies (and previews once more without JavaScript); then the next
//! application is delivered with the applied template. The same run opens an
//! application in the admin console: its history in German, its tables scrollable with
//! the keyboard, and axe-core finds no violation of any impact there or in the workbench.

use std::process::Command;

use kopplung_tests::{
    ADMIN_TOKEN, ENGINEER_TOKEN, HubSetup, TestHub, amqp, delete_queue, mappings_copy,
};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
/// What the script puts into the template (a comment: every fixture still matches).
const MARKED: &str = "<!-- in der Werkbank geprüft -->";

#[tokio::test]
async fn an_engineer_edits_sees_the_results_update_applies_and_the_next_application_uses_it() {
    assert!(
        std::path::Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: `apt-get install chromium` (scripts/test does)"
    );
    let browser_dir = kopplung_tests::node_packages(
        "browser",
        &["playwright-core", "axe-core"],
        "the workbench's browser test",
    );
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
    let out = tempfile::tempdir().expect("output dir");
    // SCREENSHOTS=<folder>: the run leaves its screenshots there.
    let out_path = std::env::var_os("SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| out.path().to_owned());
    let (script, base, out_for_run, shown_id) = (
        browser_dir.join("workbench.mjs"),
        hub.url(""),
        out_path.clone(),
        shown.clone(),
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(base)
            .arg(ENGINEER_TOKEN)
            .arg(out_for_run)
            .arg(ADMIN_TOKEN)
            .arg(shown_id)
            .env("CHROMIUM", CHROMIUM)
            .output()
            .expect("node")
    })
    .await
    .expect("browser run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    if !output.status.success() || !stdout.contains("PASSED") {
        let html = std::fs::read_to_string(out_path.join("failure.html")).unwrap_or_default();
        panic!(
            "the browser run failed:\n{stdout}\n{stderr}\n--- page ---\n{}\n--- hub log ---\n{}",
            html.chars().take(6000).collect::<String>(),
            hub.log()
        );
    }
    for checked in [
        "services",
        "service",
        "applied",
        "console search",
        "console application",
    ] {
        assert!(
            stdout.contains(&format!("ok axe-core {checked}:")),
            "{checked} not checked:\n{stdout}"
        );
    }
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
    assert!(
        xml.contains("<beschreibung>Glascontainer überfüllt</beschreibung>"),
        "{xml}"
    );
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
    delete_queue(&broker, &hub.queue("leipzig-maengel")).await;
}
