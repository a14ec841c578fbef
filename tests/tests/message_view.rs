//! The admin view of a message shows it as it was signed, sealed and sent — not as the
//! mapping in force would render it today. After a template change (a new code-list
//! version) and a reload, a message sent with version 1.0 still shows 1.0, in the admin
//! API and the console alike, labelled as sent; only a message without the kept copy (as
//! one prepared before the hub kept it) is rendered anew, and says so.

use std::time::Duration;

use kopplung_tests::browser::Browser;
use kopplung_tests::shared::{header_text, sqlite3};
use kopplung_tests::{
    ADMIN_TOKEN, HubSetup, TestHub, amqp, delete_queue, drain, mappings_copy, replace_in,
};
use serde_json::{Value, json};

const OLD: &str = "urn:kopplung:codeliste:maengelkategorie\" listVersionID=\"1.0\"";
const NEW: &str = "urn:kopplung:codeliste:maengelkategorie\" listVersionID=\"1.1\"";

fn report(beschreibung: &str) -> Value {
    json!({
        "service": "99999001000000",
        "region": "146120000000",
        "data": {"kategorie": "beleuchtung", "beschreibung": beschreibung, "ort": {"strasse": "Prager Straße"}}
    })
}

/// The admin API's view of application `id`: the source header and the XML.
async fn viewed(hub: &TestHub, id: &str) -> (String, String) {
    let response = hub
        .fetch(
            &format!("/api/v1/admin/applications/{id}/message"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(response.status(), 200);
    let source = header_text(response.headers(), "x-message-source");
    (source, response.text().await.unwrap())
}

#[tokio::test]
async fn the_view_shows_the_message_as_sent_after_the_mapping_changed() {
    let broker = amqp().await;
    let mappings = mappings_copy();
    let hub = TestHub::start(HubSetup::with_mappings(mappings.path())).await;
    let sent = hub
        .submit_accepted(&report("Laterne defekt vor Haus 3"), None)
        .await;
    hub.wait_for_status(&sent, "delivered", Duration::from_secs(20))
        .await;

    // The code list's new version, in the template and (so that the reload's fixture
    // check passes) in every expected XML.
    let folder = mappings.path().join("maengelanzeige");
    replace_in(&folder.join("nachricht.xml.hbs"), OLD, NEW);
    for entry in std::fs::read_dir(folder.join("fixtures")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".expected.xml") {
            replace_in(&path, OLD, NEW);
        }
    }
    hub.hangup();
    hub.wait_for_metric("kopplung_mapping_reloads_total{outcome=\"applied\"}", 1.0)
        .await;
    let later = hub
        .submit_accepted(&report("Laterne defekt vor Haus 5"), None)
        .await;
    hub.wait_for_status(&later, "delivered", Duration::from_secs(20))
        .await;

    // The admin API: as sent, with the old version; the later one with the new.
    let (source, xml) = viewed(&hub, &sent).await;
    assert_eq!(source, "as-sent");
    assert!(xml.contains(OLD) && !xml.contains(NEW), "{xml}");
    assert!(xml.contains("Laterne defekt vor Haus 3"), "{xml}");
    let (source, xml) = viewed(&hub, &later).await;
    assert_eq!(source, "as-sent");
    assert!(xml.contains(NEW), "{xml}");

    // The console: the same version, labelled as sent; the view recorded first.
    let mut operator = Browser::new(&hub);
    operator
        .log_in("/console/login", &[("token", ADMIN_TOKEN)])
        .await;
    let application = format!("/console/applications/{sent}");
    let csrf = operator.get(&application).await.csrf();
    let page = operator
        .post(&format!("{application}/xml"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    kopplung_tests::assert_has(&text, "so, wie sie an das Fachverfahren gesendet wurde");
    // As the page escapes it.
    let version = |v: &str| format!("maengelkategorie&quot; listVersionID&#x3D;&quot;{v}&quot;");
    assert!(text.contains(&version("1.0")), "{text}");
    assert!(!text.contains(&version("1.1")), "{text}");
    assert!(!text.contains("Neu erzeugt"), "{text}");
    let status = hub.status(&sent).await;
    let details: Vec<&str> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["detail"].as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.ends_with("viewed by operator (admin console, as sent)")),
        "{details:#?}"
    );

    // A message prepared before the hub kept its XML has no copy: rendered now with the
    // mapping in force, and labelled so in both places.
    sqlite3(
        &hub.data_dir().join("kopplung.db"),
        &format!(
            "PRAGMA busy_timeout = 5000; UPDATE deliveries SET sent_xml = NULL WHERE application_id = '{sent}';"
        ),
        false,
    );
    let (source, xml) = viewed(&hub, &sent).await;
    assert_eq!(source, "re-rendered");
    assert!(xml.contains(NEW), "today's mapping: {xml}");
    let page = operator
        .post(&format!("{application}/xml"), &[("csrf", &csrf)])
        .await;
    let text = page.text();
    kopplung_tests::assert_has(&text, "Neu erzeugt, nicht die gesendete Fassung");
    assert!(text.contains(&version("1.1")), "{text}");
    assert!(
        hub.log().contains("re-rendered"),
        "the view's source is logged"
    );

    let queue = hub.queue("dresden-maengel");
    drain(&broker, &queue, Duration::from_millis(300)).await;
    delete_queue(&broker, &queue).await;
}
