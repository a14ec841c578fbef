//! A template that cannot render an application (a field it uses is not set) makes it
//! `invalid` with a reason engineers and operators can act on — the template file, line
//! and column and the field path, not handlebars' internals — wherever the reason
//! surfaces: the status, the console, `kopplung invalid list`, the log (without any
//! value of the form).

use std::time::Duration;

use kopplung_tests::browser::Browser;
use kopplung_tests::shared::admin_cli;
use kopplung_tests::{ADMIN_TOKEN, HubSetup, TestHub, mappings_copy, replace_in};
use serde_json::json;

const DESCRIPTION: &str = "Sperrmüll vor dem Haus Nummer neun";

#[tokio::test]
async fn a_missing_field_is_named_with_the_templates_place_and_its_path() {
    let mappings = mappings_copy();
    let template = mappings.path().join("maengelanzeige/nachricht.xml.hbs");
    // Only for a category no fixture has, so the mapping passes its checks and loads;
    // the contact is optional, and the application below leaves it out.
    replace_in(
        &template,
        "<beschreibung>{{data.beschreibung}}",
        "<beschreibung>{{#if (eq data.kategorie \"muell\")}}{{data.kontakt.name}}{{/if}}{{data.beschreibung}}",
    );
    let line = std::fs::read_to_string(&template)
        .unwrap()
        .lines()
        .position(|l| l.contains("<beschreibung>"))
        .unwrap()
        + 1;
    let hub = TestHub::start(HubSetup::with_mappings(mappings.path())).await;
    let id = hub
        .submit_accepted(
            &json!({
                "service": "99999001000000",
                "region": "146120000000",
                "data": {"kategorie": "muell", "beschreibung": DESCRIPTION, "ort": {"strasse": "Prager Straße"}}
            }),
            None,
        )
        .await;
    let status = hub
        .wait_for_status(&id, "invalid", Duration::from_secs(20))
        .await;
    let place = format!("nachricht.xml.hbs:{line}:");
    let what = "data.kontakt.name is not set in the application's data";
    let reason = status["delivery"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains(&place) && reason.contains(what),
        "{status:#}"
    );
    assert!(!reason.contains("strict mode"), "{reason}");

    // `kopplung invalid list` says why.
    let (ok, listed) = admin_cli(&hub, "invalid", &["list"]);
    assert!(ok, "{listed}");
    assert!(listed.contains(&place) && listed.contains(what), "{listed}");

    // The console's application page.
    let mut operator = Browser::new(&hub);
    operator
        .log_in("/console/login", &[("token", ADMIN_TOKEN)])
        .await;
    let page = operator.get(&format!("/console/applications/{id}")).await;
    let text = page.text();
    assert!(
        text.contains(&place) && text.contains("data.kontakt.name is not set in the application"),
        "{text}"
    );

    // The log: the reason, never the form's values.
    let log = hub.log();
    assert!(log.contains(what), "{log}");
    assert!(!log.contains("strict mode"), "{log}");
    assert!(!log.contains(DESCRIPTION), "no form data in the log");
}
