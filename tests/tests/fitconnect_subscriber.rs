//! A procedure that collects as a FIT-Connect subscriber (`transport = "fitconnect"`),
//! played by FIT-Connect's community Python SDK (`fitconnect` 0.4.2 from PyPI,
//! unmodified): a citizen reports a pothole with a photo in the portal, the subscriber
//! lists, fetches, decrypts and checks it with the SDK's own functions, and accepts it
//! with a signed Security Event Token, then rejects it; a forged or replayed token
//! changes nothing.

mod portal_support;

use std::time::Duration;

use base64::Engine;
use kopplung_tests::fitconnect::{
    destination_of, python_with_fitconnect, subscriber_id, subscriber_secret,
};
use kopplung_tests::{run_ok, workspace};
use portal_support::{Citizen, Cycle, Options};
use serde_json::Value;

const PROCEDURE: &str = "dresden-maengel";

/// Polls the admin view until `done` holds.
async fn wait_for(cycle: &Cycle, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let view = cycle.hub.admin_view(id).await;
        if done(&view) {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} did not {what}: {:#}", cycle.hub.admin_view(id).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fitconnect_subscriber_collects_a_portal_submission_and_accepts_it_with_a_signed_event() {
    let cycle = Cycle::with(Options {
        fitconnect: vec![PROCEDURE],
        fitconnect_subscribers: vec![PROCEDURE],
        ..Options::default()
    })
    .await;
    let mut citizen = Citizen::new(&cycle);
    citizen.register("abonnent@example.org").await;
    let (draft, next) = portal_support::start_pothole_report(&mut citizen).await;
    let csrf = citizen.get(&next).await.csrf();
    // A real picture: the portal writes every photo anew (upright, without metadata).
    let png = portal_support::photo_png();
    let upload = citizen
        .upload(&draft, &csrf, "schlagloch.png", "image/png", png.clone())
        .await;
    assert_eq!(upload.status, 303, "{}", upload.body);
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    citizen.submit_reviewed(&draft, &review).await;
    let id = cycle.application_of(&draft);
    // Prepared and waiting for its subscriber.
    wait_for(&cycle, &id, "wait for collection", |view| {
        view["delivery"]["transport"] == "fitconnect"
    })
    .await;

    let hub = &cycle.hub;
    let routing = std::fs::read_to_string(hub.routing_path()).expect("routing");
    let destination = destination_of(&routing, PROCEDURE);
    let pki = hub.pki_dir();
    let output = run_ok(
        std::process::Command::new(python_with_fitconnect())
            .arg(workspace().join("tests/fitconnect/subscriber.py"))
            .env("KOPPLUNG_URL", hub.url(""))
            .env("CLIENT_ID", subscriber_id(PROCEDURE))
            .env("CLIENT_SECRET", subscriber_secret(PROCEDURE))
            .env("SUBMISSION", &id)
            .env("DESTINATION", &destination)
            .env(
                "ENCRYPTION_KEY",
                pki.join(format!("procedures/{PROCEDURE}-abonnent.key")),
            )
            .env(
                "SIGNING_KEY",
                pki.join(format!("procedures/{PROCEDURE}-signatur.key")),
            ),
        "the FIT-Connect subscriber (Python SDK)",
    );
    let results: Value = serde_json::from_slice(&output.stdout).expect("the subscriber's results");

    // Listed at its destination, with the case FIT-Connect names it by.
    let listed = results["listed"].as_array().expect("listed");
    let entry = listed
        .iter()
        .find(|s| s["submissionId"] == id.as_str())
        .unwrap_or_else(|| panic!("not listed: {results:#}"));
    assert_eq!(entry["destinationId"], destination.as_str());
    assert_eq!(
        results["serviceType"]["identifier"],
        "urn:de:fim:leika:leistung:99999001000000"
    );
    // The data is the XÖV message, described as XML with the hub's schema; the photo
    // came through unchanged; the SDK's hash check works on it.
    let data = results["data"].as_str().expect("data");
    let metadata = &results["metadata"];
    assert!(data.contains("Königsbrücker Straße"), "{data}");
    assert!(data.contains(&id), "the message names its application");
    // Its attachment is the submission's: named by its FIT-Connect address, not inlined.
    let photo_id = metadata["contentStructure"]["attachments"][0]["attachmentId"]
        .as_str()
        .unwrap_or_default();
    assert!(
        data.contains(&format!(
            "/fitconnect/v1/submissions/{id}/attachments/{photo_id}"
        )) && data.contains("<format>FIT-Connect</format>"),
        "{data}"
    );
    let described = &metadata["contentStructure"]["data"]["submissionSchema"];
    assert_eq!(described["mimeType"], "application/xml");
    assert!(
        described["schemaUri"]
            .as_str()
            .unwrap_or_default()
            .ends_with(".xsd"),
        "{described}"
    );
    let attachments = results["attachments"].as_object().expect("attachments");
    assert_eq!(attachments.len(), 1, "{results:#}");
    let photo = attachments.values().next().and_then(Value::as_str).unwrap();
    let collected = base64::engine::general_purpose::STANDARD
        .decode(photo)
        .unwrap();
    assert_eq!(
        image::load_from_memory(&collected).unwrap().to_rgb8(),
        image::load_from_memory(&png).unwrap().to_rgb8(),
        "the photo as the citizen took it"
    );
    assert_eq!(
        metadata["contentStructure"]["attachments"][0]["filename"],
        "schlagloch.png"
    );
    assert_eq!(results["tampered_data_detected"], true);

    // Collected is delivered; the accept moved it to received, once; the reject on.
    assert_eq!(results["forged"]["status"], 403, "{results:#}");
    assert_eq!(
        results["forged"]["body"]["type"],
        "urn:kopplung:problem:receipt-unverifiable"
    );
    assert_eq!(results["accepted"]["status"], 204, "{results:#}");
    assert_eq!(results["replayed"]["status"], 204, "{results:#}");
    assert_eq!(results["rejected"]["status"], 204, "{results:#}");
    let view = wait_for(&cycle, &id, "become rejected", |view| {
        view["status"] == "rejected"
    })
    .await;
    let statuses: Vec<&str> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["status"].as_str())
        .collect();
    // The second `prepared` is the note "ready to collect".
    assert_eq!(
        statuses,
        [
            "accepted",
            "prepared",
            "prepared",
            "delivered",
            "received",
            "rejected"
        ],
        "the forged and the replayed event changed nothing: {view:#}"
    );
    // The case's event log holds the accept and the reject, as signed.
    let log = results["event_log"]["eventLog"]
        .as_array()
        .expect("event log");
    assert_eq!(log.len(), 2, "{results:#}");
    // The example of docs/fit-connect.md collects the next one and accepts it.
    let next = hub
        .submit_accepted(
            &serde_json::json!({"service": "99999001000000", "region": "146120000000",
                "data": {"kategorie": "muell", "beschreibung": "Sperrmüll am Gehweg seit Tagen",
                         "ort": {"strasse": "Prager Straße"}}}),
            None,
        )
        .await;
    wait_for(&cycle, &next, "wait for collection", |view| {
        view["delivery"]["transport"] == "fitconnect"
    })
    .await;
    let work = tempfile::tempdir().expect("temp dir");
    let secret = work.path().join("secret");
    std::fs::write(&secret, subscriber_secret(PROCEDURE)).unwrap();
    let collected = run_ok(
        std::process::Command::new(python_with_fitconnect())
            .arg(workspace().join("examples/fitconnect/collect.py"))
            .args(["--hub", &hub.url(""), "--client", &subscriber_id(PROCEDURE)])
            .arg("--secret-file")
            .arg(&secret)
            .args(["--destination", &destination])
            .arg("--encryption-key")
            .arg(pki.join(format!("procedures/{PROCEDURE}-abonnent.key")))
            .arg("--signing-key")
            .arg(pki.join(format!("procedures/{PROCEDURE}-signatur.key")))
            .arg("--out")
            .arg(work.path()),
        "examples/fitconnect/collect.py",
    );
    let printed = String::from_utf8_lossy(&collected.stdout);
    assert!(printed.contains(&format!("{next}: stored")), "{printed}");
    assert!(printed.contains("accept → 204"), "{printed}");
    let stored = std::fs::read_to_string(work.path().join(&next).join("nachricht.xml")).unwrap();
    assert!(stored.contains("Sperrmüll am Gehweg"));
    wait_for(&cycle, &next, "become received", |view| {
        view["status"] == "received"
    })
    .await;

    // The citizen sees that the authority received the report.
    let page = citizen.get(&format!("/antraege/{draft}")).await;
    assert_eq!(page.status, 200);
    assert!(!hub.log().contains("Tiefes Schlagloch"));
}
