//! The conversation after the application (issue 23): the citizen's answer to a query,
//! documents sent later and an objection travel to the procedure as messages of their
//! own — sealed, receipted and shown with the application — through the real broker
//! and the reference procedure, and as a vendor opens them with stock `openssl` and
//! `xmllint`.

use kopplung_tests::keys::{DRESDEN, MAENGEL};
use std::process::Command;
use std::time::Duration;

use kopplung_tests::shared::{answer, fixture_request};
use kopplung_tests::vendor::{open_with_openssl_cli, xpath};
use kopplung_tests::{
    HubSetup, OTHER_TOKEN, TestHub, amqp, delete_queue, deliver_over, now_rfc3339,
    sign_cms_receipt, token_sha256, workspace,
};
use serde_json::{Value, json};

/// The dog tax: decided with a Bescheid that can be objected to (a report cannot).
const HUNDESTEUER: &str = "99999003000000";
const PULL_TOKEN: &str = "pull-token-of-dresden-maengel-conversation";

async fn send(hub: &TestHub, application: &str, token: &str, body: &Value) -> (u16, Value) {
    answer(
        reqwest::Client::new()
            .post(hub.url(&format!("/api/v1/applications/{application}/messages")))
            .bearer_auth(token)
            .json(body),
    )
    .await
}

/// Waits until the application lists its follow-up message `id` in `status`.
async fn follow_up_reaches(hub: &TestHub, application: &str, id: &str, status: &str) -> Value {
    hub.wait_until(
        application,
        &format!("list follow-up {id} as {status}"),
        Duration::from_secs(60),
        |current| {
            current["messages"]
                .as_array()
                .is_some_and(|all| all.iter().any(|m| m["id"] == id && m["status"] == status))
        },
    )
    .await
}

/// Over AMQP to the reference procedure: documents sent later while the case is open,
/// an objection once it is decided, each receipted by the procedure; what is no longer
/// possible is refused with the German reason the portal shows.
#[tokio::test]
async fn later_documents_and_an_objection_reach_the_procedure_over_the_broker() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    // The decision comes 8 s after the receipt: time to send documents first.
    let _sim = hub.procedure_sim_to(&[hub.url("")], &["dresden-buergerbuero"], 8);
    let body = fixture_request("hundesteuer/fixtures/vollstaendig", HUNDESTEUER, DRESDEN);
    let id = hub.submit_accepted(&body, None).await;

    hub.wait_for_status(&id, "received", Duration::from_secs(60))
        .await;
    let photo = json!({"kind": "nachreichung", "text": "Das Ergebnis des Wesenstests.",
        "attachments": [{"filename": "Wesenstest.png", "media_type": "image/png",
                         "content_base64": "iVBORw0KGgoAAAANSUhEUg=="}]});
    let (status, sent) = send(&hub, &id, &hub.token, &photo).await;
    assert_eq!(status, 202, "{sent:#}");
    assert_eq!(sent["kind"], "nachreichung");
    let later = sent["id"].as_str().unwrap().to_owned();
    // Another client's token finds no such application.
    assert_eq!(send(&hub, &id, OTHER_TOKEN, &photo).await.0, 404);
    let shown = follow_up_reaches(&hub, &id, &later, "received").await;
    let listed = &shown["messages"][0];
    assert_eq!(listed["message_type"], "hundesteuer.nachreichung.0202");
    assert_ne!(listed["message_id"], shown["delivery"]["message_id"]);
    // The follow-up is its own message with its own history.
    let own = hub.status(&later).await;
    assert_eq!(
        kopplung_tests::shared::history(&own, "status"),
        ["accepted", "prepared", "delivered", "received"]
    );

    let decided = hub
        .wait_for_status(&id, "decided", Duration::from_secs(60))
        .await;
    let decision = decided["mailbox"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, refused) = send(&hub, &id, &hub.token, &photo).await;
    assert_eq!(status, 409, "{refused:#}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("bereits abgeschlossen"),
        "{refused:#}"
    );
    let objection = json!({"kind": "widerspruch",
        "text": "Die Steuer ist zu hoch: Bello ist ein Blindenführhund."});
    let (status, sent) = send(&hub, &id, &hub.token, &objection).await;
    assert_eq!(status, 202, "{sent:#}");
    let objected = sent["id"].as_str().unwrap().to_owned();
    let shown = follow_up_reaches(&hub, &id, &objected, "received").await;
    let listed = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == objected.as_str())
        .unwrap();
    assert_eq!(listed["refers_to"], decision.as_str());
    // Once only.
    let (status, again) = send(&hub, &id, &hub.token, &objection).await;
    assert_eq!(status, 409, "{again:#}");
    assert!(
        again["detail"]
            .as_str()
            .unwrap()
            .contains("bereits Widerspruch"),
        "{again:#}"
    );
    // The application stays decided: its follow-ups do not move it.
    assert_eq!(hub.status(&id).await["status"], "decided");
    let sim_log = std::fs::read_to_string(hub.dir.path().join("sim.log")).unwrap();
    assert_eq!(
        sim_log.matches("follow-up message received").count(),
        2,
        "{sim_log}"
    );
    delete_queue(&broker, &hub.queue("dresden-buergerbuero")).await;
}

/// The whole conversation over the broker with the reference procedure that asks first:
/// it asks, the citizen answers with a photo, the procedure receives the answer and only
/// then decides, with appeal information; the citizen objects within the deadline.
#[tokio::test]
async fn the_procedure_asks_the_citizen_answers_and_then_it_decides() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let _sim = hub.procedure_sim_with(
        &["dresden-buergerbuero"],
        1,
        &["--ask-first", "dresden-buergerbuero"],
    );
    let body = fixture_request("hundesteuer/fixtures/minimal", HUNDESTEUER, DRESDEN);
    let id = hub.submit_accepted(&body, None).await;
    let asked = hub
        .wait_for_status(&id, "query", Duration::from_secs(60))
        .await;
    let query = &asked["mailbox"][0];
    assert!(
        query["text"].as_str().unwrap().starts_with("Rückfrage"),
        "{asked:#}"
    );
    // Nothing else happens until the citizen answers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hub.status(&id).await["status"], "query");

    // An answer needs a text or a document; the photo asked for may be all of it.
    let empty = json!({"kind": "antwort", "refers_to": query["event_id"], "text": " "});
    let (status, refused) = send(&hub, &id, &hub.token, &empty).await;
    assert_eq!(status, 422, "{refused:#}");
    assert_eq!(refused["errors"][0]["field"], "text", "{refused:#}");
    let reply = json!({"kind": "antwort", "refers_to": query["event_id"],
        "attachments": [{"filename": "Wesenstest.png", "media_type": "image/png",
                         "content_base64": "iVBORw0KGgoAAAANSUhEUg=="}]});
    let (status, sent) = send(&hub, &id, &hub.token, &reply).await;
    assert_eq!(status, 202, "{sent:#}");
    let decided = hub
        .wait_for_status(&id, "decided", Duration::from_secs(60))
        .await;
    assert_eq!(
        kopplung_tests::shared::history(&decided, "status"),
        [
            "accepted",
            "prepared",
            "delivered",
            "received",
            "query",
            "decided"
        ]
    );
    let answer = &decided["messages"][0];
    assert_eq!(
        (answer["kind"].as_str(), answer["refers_to"].as_str()),
        (Some("antwort"), query["event_id"].as_str())
    );
    assert_eq!(answer["status"], "received", "{decided:#}");
    let appeal = &decided["mailbox"][1]["appeal"];
    assert!(appeal["deadline"].is_string(), "{decided:#}");
    let objection = json!({"kind": "widerspruch", "text": "Die Entscheidung ist falsch."});
    let (status, sent) = send(&hub, &id, &hub.token, &objection).await;
    assert_eq!(status, 202, "{sent:#}");
    let sim_log = std::fs::read_to_string(hub.dir.path().join("sim.log")).unwrap();
    kopplung_tests::assert_has(&sim_log, "answer to the question received");
    delete_queue(&broker, &hub.queue("dresden-buergerbuero")).await;
}

/// As a vendor sees it: the procedure asks, the citizen answers, the vendor opens the
/// answer with `openssl cms` and validates it with `xmllint` against the follow-up
/// schema, finds the application and the query it refers to, and receipts it with the
/// application's id as the message names it.
#[tokio::test]
async fn a_vendor_opens_the_answer_to_its_query_with_stock_tools() {
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(std::sync::Arc::new(|routing| {
            deliver_over(
                &routing,
                "dresden-maengel",
                &format!(
                    "transport = \"pull\"\ntoken_sha256 = \"{}\"",
                    token_sha256(PULL_TOKEN)
                ),
            )
        })),
        ..HubSetup::default()
    })
    .await;
    let pki = hub.pki_dir();
    let body = fixture_request("maengelanzeige/fixtures/vollstaendig", MAENGEL, DRESDEN);
    let id = hub.submit_accepted(&body, None).await;
    let early = json!({"kind": "nachreichung", "attachments": [{"filename": "a.png",
        "media_type": "image/png", "content_base64": "iVBORw0KGgo="}]});
    // Not yet collected by the procedure: too early, and nothing is kept.
    let (status, refused) = send(&hub, &id, &hub.token, &early).await;
    assert_eq!(status, 409, "{refused:#}");
    assert!(hub.status(&id).await.get("messages").is_none());

    let application_message = pick_up(&hub, &id).await;
    let procedure = "/api/v1/procedures/dresden-maengel";
    let signed = |event: Value| sign_cms_receipt(&pki, "dresden-maengel", &event);
    let event = |receipt_id: &str, message: &str, kind: &str| {
        json!({"receipt_id": receipt_id, "procedure": "dresden-maengel", "message_id": message,
               "application_id": id, "event": kind, "issued_at": now_rfc3339()})
    };
    post_event(
        &hub,
        procedure,
        signed(event("r-1", &application_message, "accept")),
    )
    .await;
    let mut query = event("q-1", &application_message, "query");
    query["message"] = json!("Wie tief ist das Schlagloch?");
    post_event(&hub, procedure, signed(query)).await;

    let reply = json!({"kind": "antwort", "refers_to": "q-1",
        "text": "Etwa 30 cm „tief“ & 1 m breit."});
    // A character outside DIN 91379 (the schema's datatype C) is named, nothing kept.
    let emoji = json!({"kind": "antwort", "refers_to": "q-1", "text": "Tief 🕳"});
    let (status, refused) = send(&hub, &id, &hub.token, &emoji).await;
    assert_eq!(status, 422, "{refused:#}");
    assert_eq!(refused["errors"][0]["field"], "text", "{refused:#}");
    let (status, sent) = send(&hub, &id, &hub.token, &reply).await;
    assert_eq!(status, 202, "{sent:#}");
    let follow_up = sent["id"].as_str().unwrap().to_owned();
    let answer_message = pick_up(&hub, &follow_up).await;
    let sealed = reqwest::Client::new()
        .get(hub.url(&format!("{procedure}/messages/{answer_message}")))
        .bearer_auth(PULL_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(sealed.status(), 200);
    let xml = open_with_openssl_cli(&sealed.bytes().await.unwrap(), &pki, "dresden-maengel");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &xml).unwrap();
    let schema = workspace().join("mappings/xoev/kopplung-folgenachricht.xsd");
    let checked = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&schema)
        .arg(file.path())
        .output()
        .expect("xmllint (Debian package libxml2-utils)");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let at = |path: &str| {
        xpath(
            &xml,
            &format!("string(/*[local-name()='antwort.0201']/{path})"),
        )
    };
    assert_eq!(at("bezug/antragsID"), id);
    assert_eq!(at("bezug/nachrichtenUUID"), application_message);
    assert_eq!(at("bezug/ereignisID"), "q-1");
    // Typographic quotes become plain ones, as in every form field.
    assert_eq!(at("text"), "Etwa 30 cm \"tief\" & 1 m breit.");
    assert_eq!(
        at("nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID"),
        answer_message
    );

    // Receipted with the application's id, as the message names it (`antragsID`).
    post_event(
        &hub,
        procedure,
        signed(event("r-2", &answer_message, "accept")),
    )
    .await;
    let shown = follow_up_reaches(&hub, &id, &follow_up, "received").await;
    assert_eq!(
        shown["status"], "query",
        "the answer does not move the application"
    );
    // Progress and decisions name the application's own message, never a follow-up.
    let (status, refused) = answer(
        reqwest::Client::new()
            .post(hub.url(&format!("{procedure}/events")))
            .header("content-type", "application/pkcs7-mime")
            .body(signed(event("p-1", &answer_message, "in_progress"))),
    )
    .await;
    assert_eq!(
        (status, refused["type"].as_str().unwrap()),
        (422, "urn:kopplung:problem:unknown-message")
    );
    // Nor with the follow-up's own id (a transport's correlation id).
    let mut own = event("p-1b", &answer_message, "in_progress");
    own["application_id"] = json!(follow_up);
    let (status, refused) = answer(
        reqwest::Client::new()
            .post(hub.url(&format!("{procedure}/events")))
            .header("content-type", "application/pkcs7-mime")
            .body(signed(own)),
    )
    .await;
    assert_eq!(
        (status, refused["type"].as_str().unwrap()),
        (422, "urn:kopplung:problem:unknown-message")
    );
    post_event(
        &hub,
        procedure,
        signed(event("p-2", &application_message, "in_progress")),
    )
    .await;
    assert_eq!(hub.status(&id).await["status"], "in_progress");

    // A decision issued six days ago whose appeal deadline was that day: the deadline
    // (moved to the next working day where it falls on a weekend or holiday) has
    // passed, and the objection is refused with the date, in German.
    let six_days_ago = time::OffsetDateTime::now_utc() - time::Duration::days(6);
    let mut decision = event("d-1", &application_message, "decision");
    decision["issued_at"] = json!(
        six_days_ago
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    decision["message"] = json!("Der Mangel wird behoben.");
    decision["document"] = json!({"filename": "Bescheid.pdf", "media_type": "application/pdf",
        "content_base64": "JVBERi0xLjQgQmVzY2hlaWQ="});
    let deadline = six_days_ago.date();
    decision["appeal"] = json!({"text": "Gegen diesen Bescheid kann Widerspruch erhoben werden.",
        "deadline": deadline.to_string()});
    post_event(&hub, procedure, signed(decision)).await;
    let late = json!({"kind": "widerspruch", "text": "Ich widerspreche."});
    let (status, refused) = send(&hub, &id, &hub.token, &late).await;
    assert_eq!(status, 409, "{refused:#}");
    let last = kopplung_forms::deadline::period_end(deadline);
    let german = format!(
        "Die Widerspruchsfrist ist am {:02}.{:02}.{} abgelaufen",
        last.day(),
        u8::from(last.month()),
        last.year()
    );
    assert!(
        refused["detail"].as_str().unwrap().starts_with(&german),
        "{refused:#}"
    );
    let kept = hub.status(&id).await;
    assert_eq!(
        kept["messages"].as_array().unwrap().len(),
        1,
        "nothing kept: {kept:#}"
    );
}

/// Lists the procedure's pickups until `application` is there, acknowledges it
/// (without a receipt) and returns its message id.
async fn pick_up(hub: &TestHub, application: &str) -> String {
    let client = reqwest::Client::new();
    let list = hub.url("/api/v1/procedures/dresden-maengel/messages");
    for _ in 0..600 {
        let listed: Value = client
            .get(&list)
            .bearer_auth(PULL_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found = listed["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["application_id"] == application)
            .map(|m| m["message_id"].as_str().unwrap().to_owned());
        if let Some(message) = found {
            let acked = client
                .post(hub.url(&format!(
                    "/api/v1/procedures/dresden-maengel/messages/{message}/ack"
                )))
                .bearer_auth(PULL_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(acked.status(), 200);
            return message;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dresden-maengel never listed {application}:\n{}", hub.log());
}

async fn post_event(hub: &TestHub, procedure: &str, signed: Vec<u8>) {
    let (status, body) = answer(
        reqwest::Client::new()
            .post(hub.url(&format!("{procedure}/events")))
            .header("content-type", "application/pkcs7-mime")
            .body(signed),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
}
