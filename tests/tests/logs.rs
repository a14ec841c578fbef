//! Personal data never reaches the log: an application with known, unmistakable values
//! (form fields, an attachment) goes through intake, validation errors, delivery and a
//! dead letter with the hub logging at `trace`, as text and as JSON; no log line holds
//! any of the values.

use std::time::Duration;

use kopplung_tests::shared::refuse_publishes;
use kopplung_tests::{HubSetup, TestHub, amqp, delete_queue, drain};
use serde_json::{Value, json};

/// Values no log line could contain by chance.
struct Marked {
    description: String,
    street: String,
    name: String,
    email: String,
    attachment: String,
}

impl Marked {
    fn new() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Self {
            description: format!("Beschreibung-{tag} Schlagloch"),
            street: format!("Strasse{tag}"),
            name: format!("Name{tag}"),
            email: format!("mail{tag}@example.org"),
            // A PNG signature and the tag, base64 in the request.
            attachment: format!("PNGINHALT{tag}"),
        }
    }

    fn all(&self) -> Vec<String> {
        use base64::Engine;
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(self.attachment.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
        vec![
            self.description.clone(),
            self.street.clone(),
            self.name.clone(),
            self.email.clone(),
            self.attachment.clone(),
            encoded,
        ]
    }

    fn body(&self) -> Value {
        use base64::Engine;
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(self.attachment.as_bytes());
        json!({"service": "99999001000000", "region": "146120000000",
            "data": {"kategorie": "strassenschaden", "beschreibung": self.description,
                     "ort": {"strasse": self.street, "hausnummer": "12"},
                     "kontakt": {"name": self.name, "email": self.email}},
            "attachments": [{"filename": "foto.png", "media_type": "image/png",
                             "content_base64": base64::engine::general_purpose::STANDARD.encode(&png)}]})
    }
}

async fn run_and_check(extra_args: Vec<&'static str>) {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup {
        rust_log: "trace",
        extra_args,
        // Chemnitz's queue refuses everything: a dead letter with its reason in the log.
        ..HubSetup::retrying("chemnitz-maengel", "max_attempts = 1")
    })
    .await;
    let marked = Marked::new();
    // Accepted and delivered.
    let id = hub.submit_accepted(&marked.body(), None).await;
    hub.wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    // Refused with field errors that quote nothing back into the log.
    let mut invalid = marked.body();
    invalid["data"]["kontakt"]["email"] = json!(format!("{} kein mail", marked.email));
    invalid["data"]["kategorie"] = json!(marked.name);
    let refused = hub.submit(&invalid, None).await;
    assert_eq!(refused.status(), 422);
    // Malformed JSON around the values.
    let malformed = reqwest::Client::new()
        .post(hub.url("/api/v1/applications"))
        .bearer_auth(&hub.token)
        .header("content-type", "application/json")
        .body(format!("{{\"service\": \"{}\"", marked.description))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    // A dead letter: Chemnitz's queue refuses every publish.
    let queue = hub.queue("chemnitz-maengel");
    refuse_publishes(&broker, &queue).await;
    let mut chemnitz = marked.body();
    chemnitz["region"] = json!("145110000000");
    let dead = hub.submit_accepted(&chemnitz, None).await;
    hub.wait_for_status(&dead, "dead_lettered", Duration::from_secs(30))
        .await;

    let log = hub.log();
    assert!(
        log.lines().count() > 20,
        "the hub logged too little to prove anything:\n{log}"
    );
    assert!(log.contains(&id), "the log names applications by id");
    for value in marked.all() {
        let leaking: Vec<&str> = log.lines().filter(|l| l.contains(&value)).collect();
        assert!(
            leaking.is_empty(),
            "personal data `{value}` in the log:\n{}",
            leaking.join("\n")
        );
    }
    println!(
        "logs: {} lines at trace ({:?}), {} personal values checked, 0 found",
        log.lines().count(),
        if hub_json(&log) { "json" } else { "text" },
        marked.all().len()
    );
    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
    let _ = drain(&broker, &queue, Duration::from_millis(10)).await;
    delete_queue(&broker, &queue).await;
}

fn hub_json(log: &str) -> bool {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .all(|l| serde_json::from_str::<Value>(l).is_ok())
}

#[tokio::test]
async fn no_form_value_or_attachment_reaches_the_text_log() {
    run_and_check(Vec::new()).await;
}

#[tokio::test]
async fn no_form_value_or_attachment_reaches_the_json_log() {
    run_and_check(vec!["--log-format", "json"]).await;
}
