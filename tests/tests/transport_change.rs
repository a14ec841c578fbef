//! A procedure moves from AMQP to HTTP while decisions wait in its old reply queue: the
//! restarted hub takes them from that queue until it is empty (the applications reach
//! `decided`), then forgets the queue. `kopplung check` names the queue before.

use std::time::Duration;

use kopplung_tests::shared::kopplung;
use kopplung_tests::{
    HubSetup, TestHub, amqp, delete_queue, deliver_over, publish, sign_cms_receipt,
};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::{Value, json};

const PROCEDURE: &str = "landkreis-leipzig-maengel";
/// Borna: district Leipzig, whose procedure answers on its reply queue.
const BORNA: &str = "147290050050";

fn check(hub: &TestHub) -> (bool, String) {
    kopplung([
        "check".into(),
        "--config".into(),
        hub.config_path().into_os_string(),
        "--data-dir".into(),
        hub.data_dir().into_os_string(),
    ] as [std::ffi::OsString; 5])
}

fn event(status: &Value, kind: &str) -> Value {
    let mut event = json!({
        "receipt_id": format!("{kind}-{}", status["id"].as_str().unwrap()),
        "procedure": PROCEDURE,
        "message_id": status["delivery"]["message_id"],
        "application_id": status["id"],
        "event": kind,
        "issued_at": kopplung_tests::now_rfc3339()
    });
    if kind == "decision" {
        event["message"] = json!("Der Mangel wurde behoben.");
        event["document"] = json!({"filename": "bescheid.pdf", "media_type": "application/pdf",
                                   "content_base64": "JVBERi0xLjcKYmVzY2hlaWQ="});
    }
    event
}

#[tokio::test]
async fn decisions_left_in_the_old_reply_queue_are_taken_after_a_switch_to_http() {
    let broker = amqp().await;
    let mut hub = TestHub::start(HubSetup::default()).await;
    let reply_queue = hub.queue(&format!("{PROCEDURE}.events"));
    let mut delivered = Vec::new();
    for text in ["Schlagloch in der Hauptstraße", "Laterne am Markt defekt"] {
        let body = kopplung_tests::shared::fixture_request(
            "maengelanzeige/fixtures/minimal",
            "99999001000000",
            BORNA,
        );
        let mut body = body;
        body["data"]["beschreibung"] = json!(text);
        let id = hub.submit_accepted(&body, None).await;
        delivered.push(
            hub.wait_for_status(&id, "delivered", Duration::from_secs(60))
                .await,
        );
    }
    hub.wait_for_log(Duration::from_secs(20), |log| {
        log.contains("consuming events")
    })
    .await;
    // Nothing was left behind so far.
    let (ok, output) = check(&hub);
    assert!(ok && !output.contains(&reply_queue), "{output}");

    // The hub stops; the procedure answers on its reply queue meanwhile, then the
    // operator moves it to HTTP.
    hub.terminate(Duration::from_secs(20));
    let channel = broker.create_channel().await.unwrap();
    let pki = hub.pki_dir();
    for status in &delivered {
        for kind in ["accept", "decision"] {
            let signed = sign_cms_receipt(&pki, PROCEDURE, &event(status, kind));
            publish(&channel, &reply_queue, &signed, Default::default())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }
    let routing_file = hub.config_path().with_file_name("routing.toml");
    let routing = std::fs::read_to_string(&routing_file).unwrap();
    let switched = deliver_over(
        &routing,
        PROCEDURE,
        "transport = \"http\"\nallow_plain_http = true\nurl = \"http://127.0.0.1:9/receive\"\nconnect_timeout_ms = 1000\ntimeout_ms = 5000",
    );
    assert!(!switched.contains(&reply_queue));
    std::fs::write(&routing_file, switched).unwrap();

    // `check` names the queue and what becomes of it.
    let (ok, output) = check(&hub);
    assert!(ok, "{output}");
    assert!(
        output.contains(&reply_queue) && output.contains("taken until empty"),
        "{output}"
    );

    // The restarted hub takes the decisions in.
    hub.spawn().await;
    for status in &delivered {
        let id = status["id"].as_str().unwrap();
        hub.wait_for_status(id, "decided", Duration::from_secs(30))
            .await;
    }
    let log = hub
        .wait_for_log(Duration::from_secs(20), |log| {
            log.contains("old reply queue drained")
        })
        .await;
    assert!(log.contains(&reply_queue), "{log}");
    let left = channel
        .queue_declare(
            reply_queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(left.message_count(), 0);

    // Drained and forgotten: no warning any more, and a restart does not look again.
    let (ok, output) = check(&hub);
    assert!(ok && !output.contains(&reply_queue), "{output}");
    hub.terminate(Duration::from_secs(20));
    hub.spawn().await;
    hub.wait_for_log(Duration::from_secs(10), |log| {
        log.contains("kopplung listening")
    })
    .await;
    assert!(!hub.log().contains("draining"), "{}", hub.log());

    // A procedure gone from the configuration left a queue with an event in it: its
    // events cannot be verified any more, so the hub names the queue and its count at
    // every start until someone empties or deletes it; then it forgets it.
    hub.terminate(Duration::from_secs(20));
    let gone_queue = hub.queue("abgeschaltet-maengel.events");
    channel
        .queue_declare(
            gone_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish(&channel, &gone_queue, b"an event", Default::default())
        .await
        .unwrap()
        .await
        .unwrap();
    let remembered_file = hub.data_dir().join("reply-queues.json");
    let mut remembered: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&remembered_file).unwrap()).unwrap();
    remembered.push(json!({"procedure": "abgeschaltet-maengel", "queue": gone_queue}));
    std::fs::write(&remembered_file, serde_json::to_vec(&remembered).unwrap()).unwrap();
    let (ok, output) = check(&hub);
    assert!(
        ok && output.contains(&gone_queue) && output.contains("no longer configured"),
        "{output}"
    );
    hub.spawn().await;
    let log = hub
        .wait_for_log(Duration::from_secs(20), |log| log.contains("waiting=1"))
        .await;
    assert!(log.contains(&gone_queue), "{log}");
    hub.terminate(Duration::from_secs(20));
    delete_queue(&broker, &gone_queue).await;
    hub.spawn().await;
    hub.wait_for_log(Duration::from_secs(10), |log| {
        log.contains("kopplung listening")
    })
    .await;
    kopplung_tests::eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        async || {
            let (ok, output) = check(&hub);
            if ok && !output.contains(&gone_queue) {
                Ok(())
            } else {
                Err(output)
            }
        },
        |output| format!("the deleted queue is still named: {output:?}"),
    )
    .await;
    delete_queue(&broker, &reply_queue).await;
    delete_queue(&broker, &hub.queue(PROCEDURE)).await;
}
