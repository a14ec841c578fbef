//! Recovery after a mapping fix: an application its mapping could not render (`invalid`)
//! is reprocessed once the mapping is fixed and reloaded — through `kopplung invalid`
//! (the admin API) and the console's button alike — and reaches its procedure with the
//! message id it was given at intake; nothing else is reprocessed.

use std::time::Duration;

use kopplung_tests::browser::Browser;
use kopplung_tests::shared::admin_cli;
use kopplung_tests::{
    ADMIN_TOKEN, HubSetup, TestHub, amqp, delete_queue, drain, mappings_copy,
    open_with_openssl_cli, replace_in,
};
use serde_json::{Value, json};

fn report(kategorie: &str) -> Value {
    json!({
        "service": "99999001000000",
        "region": "146120000000",
        "data": {"kategorie": kategorie, "beschreibung": "Müll liegt seit Tagen am Gehweg", "ort": {"strasse": "Prager Straße"}}
    })
}

#[tokio::test]
async fn an_invalid_application_reaches_its_procedure_with_its_message_id_after_the_fix() {
    let broker = amqp().await;
    let mappings = mappings_copy();
    let template = mappings.path().join("maengelanzeige/nachricht.xml.hbs");
    // Broken only for a category no fixture has, so the mapping loads (see reload.rs).
    let original = replace_in(
        &template,
        "<beschreibung>",
        "{{#if (eq data.kategorie \"muell\")}}<hinweis/>{{/if}}<beschreibung>",
    );
    let hub = TestHub::start(HubSetup::with_mappings(mappings.path())).await;
    let mut invalid = Vec::new();
    for _ in 0..2 {
        let id = hub.submit_accepted(&report("muell"), None).await;
        let status = hub
            .wait_for_status(&id, "invalid", Duration::from_secs(20))
            .await;
        let message_id = status["delivery"]["message_id"]
            .as_str()
            .unwrap()
            .to_owned();
        invalid.push((id, message_id));
    }
    let delivered = hub.submit_accepted(&report("beleuchtung"), None).await;
    hub.wait_for_status(&delivered, "delivered", Duration::from_secs(20))
        .await;

    let (ok, listed) = admin_cli(&hub, "invalid", &["list", "--ids"]);
    assert!(ok, "{listed}");
    for (id, _) in &invalid {
        assert!(listed.contains(id.as_str()), "{listed}");
    }
    assert!(!listed.contains(&delivered), "{listed}");

    // The fix, in force after the reload.
    std::fs::write(&template, original).unwrap();
    hub.hangup();
    hub.wait_for_metric("kopplung_mapping_reloads_total{outcome=\"applied\"}", 1.0)
        .await;

    // One over the CLI, one with the console's button.
    let (first, first_message_id) = &invalid[0];
    let (ok, said) = admin_cli(&hub, "invalid", &["reprocess", first]);
    assert!(ok, "{said}");
    let (second, second_message_id) = &invalid[1];
    console_reprocess(&hub, second).await;

    let queue = hub.queue("dresden-maengel");
    for (id, message_id) in &invalid {
        let status = hub
            .wait_for_status(id, "delivered", Duration::from_secs(30))
            .await;
        assert_eq!(status["delivery"]["message_id"], message_id.as_str());
    }
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(
        received.len(),
        3,
        "the delivered one and the two reprocessed"
    );
    for message_id in [first_message_id, second_message_id] {
        let message = received
            .iter()
            .find(|m| m.message_id() == *message_id)
            .unwrap_or_else(|| panic!("no message {message_id}"));
        let xml = open_with_openssl_cli(&message.body, &hub.pki_dir(), "dresden-maengel");
        kopplung_tests::assert_has(
            &xml,
            format!("<nachrichtenUUID>{message_id}</nachrichtenUUID>"),
        );
        assert!(!xml.contains("<hinweis/>"), "rendered with the fix: {xml}");
    }

    // In the history and audit trail, by who asked; once only.
    let view = hub
        .get_json(&format!("/api/v1/admin/applications/{first}"), ADMIN_TOKEN)
        .await;
    let history = view["history"].as_array().unwrap();
    assert!(
        history.iter().any(|h| h["detail"]
            .as_str()
            .unwrap()
            .contains("reprocessed by operator")),
        "{view}"
    );
    assert!(
        view["audit"].as_array().unwrap().iter().any(|a| a["detail"]
            .as_str()
            .unwrap()
            .contains("reprocessed by operator")),
        "{view}"
    );
    let (ok, said) = admin_cli(&hub, "invalid", &["reprocess", first]);
    assert!(
        !ok && said.contains("409") && said.contains("its mapping could not render"),
        "{said}"
    );
    let again = reqwest::Client::new()
        .post(hub.url(&format!("/api/v1/admin/applications/{delivered}/reprocess")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let problem: Value = again.json().await.unwrap();
    assert_eq!(problem["type"], "urn:kopplung:problem:not-invalid");
    delete_queue(&broker, &queue).await;
}

/// The operator signs in to the console, sees the button on the application's page and
/// presses it; the page it leads back to says what happens.
async fn console_reprocess(hub: &TestHub, id: &str) {
    let mut operator = Browser::new(hub);
    operator
        .log_in("/console/login", &[("token", ADMIN_TOKEN)])
        .await;
    let application = format!("/console/applications/{id}");
    let page = operator.get(&application).await;
    let text = page.text();
    kopplung_tests::assert_has(&text, "Mit der behobenen Zuordnung neu erzeugen");
    let csrf = page.csrf();
    let pressed = operator
        .post(&format!("{application}/reprocess"), &[("csrf", &csrf)])
        .await;
    assert_eq!(pressed.status, 303, "{}", pressed.text());
    let after = operator.get(&pressed.header("location")).await.text();
    kopplung_tests::assert_has(&after, "wird mit der jetzt geltenden Zuordnung neu erzeugt");
}
