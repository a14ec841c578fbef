//! The mapping workbench (`/workbench`): integration engineers sign in with their token;
//! every POST needs the session's CSRF token; a service's files are previewed with the
//! checks every reload runs (reasons with file, line and column); a broken template is
//! refused on apply with its reasons while the mapping in force stays and delivers; a
//! good edit is applied through the reloader and the next application uses it; an apply
//! the reload refuses restores the files; every apply is recorded without content.
//! Real hub process, real HTTP, cookies by hand (the browser run: workbench_browser.rs).

use std::path::Path;

use kopplung_tests::browser::{Browser, Page};
use kopplung_tests::shared::{assert_contains_all, assert_contains_none};
use kopplung_tests::{
    ADMIN_TOKEN, ENGINEER_TOKEN, HubSetup, TestHub, amqp, delete_queue, mappings_copy, replace_in,
};
use serde_json::{Value, json};

const SERVICE: &str = "/workbench/services/99999001000000";
const APPLIED: &str = "kopplung_mapping_reloads_total{outcome=\"applied\"}";
const REFUSED: &str = "kopplung_mapping_reloads_total{outcome=\"refused\"}";
const FIELD: &str = "<beschreibung>{{data.beschreibung}}</beschreibung>";
/// Comments are not compared with a fixture's expected XML: a change the next
/// application shows while every fixture still matches.
const MARKED: &str = "<!-- in der Werkbank geprüft -->";

fn report(text: &str) -> Value {
    json!({"service": "99999001000000", "region": "146120000000",
           "data": {"kategorie": "muell", "beschreibung": text, "ort": {"strasse": "Markt"}}})
}

/// German, one main heading, its script only from its own file (the CSP allows no
/// other), no inline style or event handlers.
fn assert_german_page(page: &Page) {
    let text = page.text();
    assert!(text.contains("<html lang=\"de\">"), "{text}");
    assert_eq!(text.matches("<h1>").count(), 1, "{text}");
    assert_eq!(
        text.matches("<script").count(),
        text.matches("<script src=\"/workbench/workbench.js\" defer></script>")
            .count(),
        "{text}"
    );
    assert_contains_none(
        &text,
        &["style=", "<style", "javascript:", " onclick=", " oninput="],
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("cache-control"), "no-store");
}

/// Signs in with `token` at the workbench's login form.
async fn sign_in(hub: &TestHub, token: &str) -> (Browser, Page) {
    let mut browser = Browser::new(hub);
    let page = browser
        .log_in("/workbench/login", &[("token", token)])
        .await;
    (browser, page)
}

/// The three files of the service page's form, as they are on disk with `template`.
fn fields<'a>(folder: &Path, template: &'a str, csrf: &'a str) -> Vec<(String, String)> {
    let read = |name: &str| std::fs::read_to_string(folder.join(name)).unwrap();
    vec![
        ("csrf".into(), csrf.into()),
        ("form".into(), read("form.toml")),
        ("template".into(), template.into()),
        ("schema".into(), read("nachricht.xsd")),
    ]
}

async fn post(browser: &mut Browser, path: &str, fields: &[(String, String)]) -> Page {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post(path, &pairs).await
}

fn journal(hub: &TestHub) -> Vec<Value> {
    std::fs::read_to_string(hub.data_dir().join("workbench-journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn engineers_preview_and_apply_and_a_broken_template_is_refused_with_the_old_mapping_in_force()
 {
    let broker = amqp().await;
    let mappings = mappings_copy();
    let hub = TestHub::start(HubSetup::with_mappings(mappings.path())).await;
    let folder = mappings.path().join("maengelanzeige");
    let template_file = folder.join("nachricht.xml.hbs");
    let original = std::fs::read_to_string(&template_file).unwrap();

    // Signed in only, and only with the engineers' token.
    let mut stranger = Browser::new(&hub);
    let page = stranger.get("/workbench").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), "/workbench/login");
    let page = stranger.get(SERVICE).await;
    assert_eq!(page.status, 303);
    let page = post(
        &mut stranger,
        &format!("{SERVICE}/apply"),
        &fields(&folder, &original, "x"),
    )
    .await;
    assert_eq!(page.status, 403, "{}", page.text());
    let (_, page) = sign_in(&hub, ADMIN_TOKEN).await;
    assert_eq!(page.status, 401, "the operators' token is no engineer's");
    // The engineers' token opens nothing of the admin API.
    let admin_api = reqwest::Client::new()
        .get(hub.url("/api/v1/admin/deadletters"))
        .bearer_auth(ENGINEER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_api.status(), 401);
    let (mut engineer, page) = sign_in(&hub, ENGINEER_TOKEN).await;
    assert_eq!(page.status, 303, "{}", page.text());
    assert_eq!(page.header("location"), "/workbench");

    // The services in force, and one's files with their results.
    let page = engineer.get("/workbench").await;
    assert_eq!(page.status, 200);
    assert_german_page(&page);
    assert_contains_all(&page.text(), &["Mängelanzeige", SERVICE]);
    let page = engineer.get(SERVICE).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_german_page(&page);
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let text = page.text();
    assert_contains_all(
        &text,
        &[
            "<label for=\"template\">",
            "Alle Prüfungen bestanden",
            "XSD-gültig",
            "Entspricht der erwarteten Nachricht",
            "Testfall <code>minimal</code>",
            // The portal's rendering of the form: its own field template.
            "class=\"kern-label\"",
            "name=\"beschreibung\"",
            "aria-live=\"polite\"",
            "Vorschau aktualisieren",
            "Übernehmen",
        ],
    );
    let csrf = page.csrf();

    // A broken template: the preview names file, line and column; without the session's
    // CSRF token nothing is answered.
    let broken = original.replacen(
        FIELD,
        "<beschreibung>{{data.beschreibung}} {{data.farbe}}</beschreibung>",
        1,
    );
    let page = post(
        &mut engineer,
        &format!("{SERVICE}/preview"),
        &fields(&folder, &broken, "wrong"),
    )
    .await;
    assert_eq!(page.status, 403, "{}", page.text());
    let mut preview = fields(&folder, &broken, &csrf);
    preview.push(("teil".into(), "ergebnis".into()));
    let page = post(&mut engineer, &format!("{SERVICE}/preview"), &preview).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let fragment = page.text();
    assert!(!fragment.contains("<html"), "only the results: {fragment}");
    let line = original.lines().position(|l| l.contains(FIELD)).unwrap() + 1;
    assert_contains_all(
        &fragment,
        &[
            &format!("nachricht.xml.hbs:{line}:"),
            // Backticks are escaped in HTML.
            "&#x60;data.farbe&#x60; refers to a field the form does not define",
        ],
    );

    // Applied: refused with the reasons, nothing written, the mapping in force delivers.
    let page = post(
        &mut engineer,
        &format!("{SERVICE}/apply"),
        &fields(&folder, &broken, &csrf),
    )
    .await;
    assert_eq!(page.status, 422, "{}", page.text());
    assert_contains_all(
        &page.text(),
        &["Nicht übernommen", "data.farbe", "role=\"alert\""],
    );
    assert_eq!(std::fs::read_to_string(&template_file).unwrap(), original);
    let id = hub
        .submit_accepted(&report("Ampel ohne Funktion"), None)
        .await;
    let xml = hub.delivered_xml(&broker, &id, "dresden-maengel").await;
    kopplung_tests::assert_has(&xml, "<beschreibung>Ampel ohne Funktion</beschreibung>");

    // A good edit: applied through the reloader, the next application uses it.
    let marked = original.replacen(FIELD, &format!("{MARKED}{FIELD}"), 1);
    let page = post(
        &mut engineer,
        &format!("{SERVICE}/apply"),
        &fields(&folder, &marked, &csrf),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_contains_all(&page.text(), &["Übernommen", "role=\"status\""]);
    assert_eq!(std::fs::read_to_string(&template_file).unwrap(), marked);
    hub.wait_for_metric(APPLIED, 1.0).await;
    let id = hub.submit_accepted(&report("Bank umgestürzt"), None).await;
    let xml = hub.delivered_xml(&broker, &id, "dresden-maengel").await;
    assert!(xml.contains(MARKED), "{xml}");

    // Another service broken on disk: the reload refuses, and this edit's files are
    // restored — nothing stays half applied.
    let other = mappings.path().join("gewerbeanmeldung/nachricht.xml.hbs");
    let other_text = std::fs::read_to_string(&other).unwrap();
    let root_end = other_text
        .trim_end()
        .rsplit_once('\n')
        .unwrap()
        .1
        .to_owned();
    replace_in(&other, &root_end, &format!("{root_end}\n<zweite/>"));
    let page = post(
        &mut engineer,
        &format!("{SERVICE}/apply"),
        &fields(&folder, &original, &csrf),
    )
    .await;
    assert_eq!(page.status, 422, "{}", page.text());
    assert_contains_all(
        &page.text(),
        &["Dateien wurden wiederhergestellt", "gewerbeanmeldung"],
    );
    assert_eq!(std::fs::read_to_string(&template_file).unwrap(), marked);
    hub.wait_for_metric(REFUSED, 1.0).await;

    // Every apply recorded: who, which service, the outcome, hashes — no content.
    let entries = journal(&hub);
    let outcomes: Vec<&str> = entries
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["refused", "applied", "refused"], "{entries:?}");
    for (n, entry) in entries.iter().enumerate() {
        assert_eq!(entry["role"], "engineer");
        assert_eq!(entry["service"], "99999001000000");
        if n > 0 {
            assert_eq!(entry["prev"], entries[n - 1]["hash"], "chained");
        }
    }
    let raw = std::fs::read_to_string(hub.data_dir().join("workbench-journal.jsonl")).unwrap();
    assert_contains_none(&raw, &["beschreibung", "farbe", "Werkbank"]);
    let log = hub.log();
    assert!(log.contains("workbench: mapping apply"), "{log}");
    assert_contains_none(&log, &["Ampel ohne Funktion", "Bank umgestürzt"]);

    std::fs::write(&other, other_text).unwrap();
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}

/// A change of the output fails the fixtures: refused until the engineer accepts the
/// reviewed renders ("bless"), then applied with the fixtures' expected XML rewritten,
/// and the next application carries it.
#[tokio::test]
async fn a_changed_output_is_applied_only_with_its_renders_accepted_as_expected() {
    let broker = amqp().await;
    let mappings = mappings_copy();
    let hub = TestHub::start(HubSetup::with_mappings(mappings.path())).await;
    let folder = mappings.path().join("maengelanzeige");
    let original = std::fs::read_to_string(folder.join("nachricht.xml.hbs")).unwrap();
    let changed = original.replacen(
        FIELD,
        "<beschreibung>Meldung: {{data.beschreibung}}</beschreibung>",
        1,
    );
    let (mut engineer, _) = sign_in(&hub, ENGINEER_TOKEN).await;
    let csrf = engineer.get(SERVICE).await.csrf();
    let expected = folder.join("fixtures/vollstaendig.expected.xml");
    let before = std::fs::read_to_string(&expected).unwrap();

    let page = post(
        &mut engineer,
        &format!("{SERVICE}/apply"),
        &fields(&folder, &changed, &csrf),
    )
    .await;
    assert_eq!(page.status, 422, "{}", page.text());
    assert_contains_all(
        &page.text(),
        &["Nicht übernommen", "vollstaendig.expected.xml"],
    );
    assert_eq!(std::fs::read_to_string(&expected).unwrap(), before);

    let mut blessing = fields(&folder, &changed, &csrf);
    blessing.push(("bless".into(), "ja".into()));
    let page = post(&mut engineer, &format!("{SERVICE}/apply"), &blessing).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_contains_all(
        &page.text(),
        &[
            "Übernommen",
            "Als erwartete Ausgabe übernommen",
            "vollstaendig",
        ],
    );
    let now = std::fs::read_to_string(&expected).unwrap();
    assert!(now.contains("<beschreibung>Meldung: "), "{now}");
    // The journal names the fixtures accepted.
    let last = journal(&hub).pop().unwrap();
    assert_eq!(last["outcome"], "applied");
    assert!(
        last["blessed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "vollstaendig"),
        "{last}"
    );
    hub.wait_for_metric(APPLIED, 1.0).await;
    let id = hub
        .submit_accepted(&report("Laterne flackert seit Tagen"), None)
        .await;
    let xml = hub.delivered_xml(&broker, &id, "dresden-maengel").await;
    kopplung_tests::assert_has(
        &xml,
        "<beschreibung>Meldung: Laterne flackert seit Tagen</beschreibung>",
    );
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}
