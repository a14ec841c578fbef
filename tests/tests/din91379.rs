//! DIN 91379 at the intake and in the delivered message: typographic characters become
//! plain, combining characters compose, ß stays, anything outside the normed set is
//! refused naming the character — and nothing outside it ever leaves.

use kopplung_tests::{HubSetup, TestHub, amqp, delete_queue, xpath};
use serde_json::{Value, json};

fn report(beschreibung: &str, strasse: &str) -> Value {
    json!({
        "service": "99999001000000",
        "region": "146120000000",
        "data": {"kategorie": "sonstiges", "beschreibung": beschreibung, "ort": {"strasse": strasse}}
    })
}

#[tokio::test]
async fn normed_text_is_normalised_and_delivered() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let id = hub
        .submit_accepted(
            &report(
                "Schild \u{201E}Einbahnstra\u{00DF}e\u{201C} verdreht \u{2013} seit Mo\u{2014}Fr",
                "Jose\u{301}-Marti\u{301}-Stra\u{00DF}e",
            ),
            None,
        )
        .await;
    let xml = hub.delivered_xml(&broker, &id, "dresden-maengel").await;
    assert_eq!(
        xpath(&xml, "string(//beschreibung)"),
        "Schild \"Einbahnstraße\" verdreht - seit Mo-Fr"
    );
    assert_eq!(xpath(&xml, "string(//ort/strasse)"), "José-Martí-Straße");
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}

#[tokio::test]
async fn characters_outside_the_norm_are_refused_by_name() {
    let hub = TestHub::start(HubSetup::default()).await;
    let before = hub.store_counts();
    for (text, code) in [
        ("Riesiges Schlagloch \u{1F573}\u{FE0F} hier", "U+1F573"),
        ("Straße mit \u{03A9}-Kurve und Loch", "U+03A9"),
        ("Schlagloch vor Hausnummer x\u{301}", "U+0301"),
    ] {
        let response = hub.submit(&report(text, "Markt"), None).await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "data.beschreibung");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(code), "{message}");
    }
    assert_eq!(hub.store_counts(), before);
}
