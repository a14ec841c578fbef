//! FIT-Connect at the hub's edge, with FIT-Connect code we did not write: the community
//! Python SDK (`fitconnect` 0.4.2 from PyPI, unmodified; its two addresses point at the
//! hub) submits as a sender, and the hub routes, maps, seals and delivers the
//! application over the procedure's own transport.

use std::time::Duration;

use kopplung_tests::fitconnect::{
    FOREIGN_ID, FOREIGN_SECRET, SENDER_ID, SENDER_SECRET, destination_of, python_with_fitconnect,
};
use kopplung_tests::{HubSetup, TestHub, amqp, run_ok, workspace};
use serde_json::Value;

const MAENGELANZEIGE: &str = "99999001000000";
/// Dresden (ARS), whose Mängelanzeige the procedure `dresden-maengel` receives (AMQP).
const DRESDEN: &str = "146120000000";

/// Polls the admin view (the application is the FIT-Connect sender's, not the test
/// client's) until it is delivered.
async fn delivered(hub: &TestHub, id: &str) -> Value {
    let mut view = Value::Null;
    for _ in 0..300 {
        view = hub.admin_view(id).await;
        if view["status"] == "delivered" {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} was not delivered: {view:#}");
}

fn applications(hub: &TestHub) -> i64 {
    hub.store_counts()
        .into_iter()
        .find(|(table, _)| table == "applications")
        .map(|(_, n)| n)
        .expect("applications counted")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_submits_to_a_kopplung_destination_and_the_procedure_receives_it() {
    let hub = TestHub::start(HubSetup {
        fitconnect: vec!["dresden-maengel"],
        ..Default::default()
    })
    .await;
    let routing = std::fs::read_to_string(hub.routing_path()).expect("routing");
    let destination = destination_of(&routing, "dresden-maengel");
    let work = tempfile::tempdir().expect("temp dir");
    let pdf = work.path().join("foto-dokumentation.pdf");
    std::fs::write(
        &pdf,
        b"%PDF-1.7\n% Fotodokumentation des Schlaglochs\n%%EOF\n",
    )
    .expect("pdf");

    let mut command = std::process::Command::new(python_with_fitconnect());
    command
        .arg(workspace().join("tests/fitconnect/sender.py"))
        .env("KOPPLUNG_URL", hub.url(""))
        .env("DESTINATION", &destination)
        .env("LEIKA", MAENGELANZEIGE)
        .env("REGION", DRESDEN)
        .env("SENDER_ID", SENDER_ID)
        .env("SENDER_SECRET", SENDER_SECRET)
        .env("FOREIGN_ID", FOREIGN_ID)
        .env("FOREIGN_SECRET", FOREIGN_SECRET)
        .env("PDF", &pdf);
    let output = run_ok(&mut command, "the FIT-Connect sender (Python SDK)");
    let results: Value = serde_json::from_slice(&output.stdout).expect("the sender's results");

    // The all-in-one submission: accepted, stored as an application with the
    // submission's id, delivered over the procedure's AMQP queue.
    let sent = &results["sent"];
    assert_eq!(sent["status"], "submitted", "{results:#}");
    assert_eq!(sent["destinationId"], destination.as_str());
    let id = sent["submissionId"]
        .as_str()
        .expect("submission id")
        .to_owned();
    assert!(sent["caseId"].is_string());
    assert_eq!(results["repeated"]["status"], "submitted", "{results:#}");
    assert_eq!(results["repeated"]["receipt"], sent["receipt"]);

    // Every refusal is a problem document with its type; none stored anything.
    let problem = |case: &str| {
        results[case]["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        problem("wrong_data_hash"),
        "urn:kopplung:problem:hash-mismatch"
    );
    assert_eq!(
        problem("wrong_attachment_hash"),
        "urn:kopplung:problem:hash-mismatch"
    );
    assert_eq!(
        problem("schema_violation"),
        "urn:kopplung:problem:metadata-invalid"
    );
    assert!(
        results["schema_violation"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("/contentStructure/data/hash/type"),
        "{results:#}"
    );
    assert_eq!(
        problem("missing_attachment"),
        "urn:kopplung:problem:missing-attachment"
    );
    assert_eq!(
        problem("data_bomb"),
        "urn:kopplung:problem:encryption-issue"
    );
    assert!(
        results["data_bomb"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("inflates beyond"),
        "{results:#}"
    );
    let unknown = results["unknown_destination"].as_str().unwrap_or_default();
    assert!(unknown.contains("destination does not exist"), "{unknown}");
    let foreign = results["foreign_token"].as_str().unwrap_or_default();
    kopplung_tests::assert_has(foreign, "urn:kopplung:problem:forbidden");
    assert_eq!(applications(&hub), 1, "only the good submission is stored");
    // Counted by operation and answer.
    let submits = |outcome: &str| {
        format!("kopplung_fitconnect_requests_total{{operation=\"submit\",outcome=\"{outcome}\"}}")
    };
    assert_eq!(
        hub.metric(&submits("ok")).await,
        Some(2.0),
        "the submission and its repeat"
    );
    assert_eq!(hub.metric(&submits("422")).await, Some(5.0));

    let broker = amqp().await;
    let view = delivered(&hub, &id).await;
    assert_eq!(view["delivery"]["procedure"], "dresden-maengel", "{view:#}");
    let message = kopplung_tests::drain_one(&broker, &hub.queue("dresden-maengel")).await;
    let xml =
        kopplung_tests::open_with_openssl_cli(&message.body, &hub.pki_dir(), "dresden-maengel");
    assert!(xml.contains("Prager Straße"), "{xml}");
    assert!(
        xml.contains(&id),
        "the message names the application (the submission)"
    );
    assert!(
        xml.contains("foto-dokumentation") || xml.contains("anlage-1.pdf"),
        "{xml}"
    );

    // The example of docs/fit-connect.md does the same with a route lookup first.
    let secret = work.path().join("secret");
    std::fs::write(&secret, SENDER_SECRET).unwrap();
    let example = run_ok(
        std::process::Command::new(python_with_fitconnect())
            .arg(workspace().join("examples/fitconnect/send.py"))
            .args(["--hub", &hub.url(""), "--client", SENDER_ID])
            .arg("--secret-file")
            .arg(&secret)
            .args(["--ars", DRESDEN])
            .arg("--attachment")
            .arg(&pdf),
        "examples/fitconnect/send.py",
    );
    let printed = String::from_utf8_lossy(&example.stdout);
    kopplung_tests::assert_has(&printed, format!("→ destination {destination}"));
    assert!(printed.contains("submitted: submission "), "{printed}");
    assert_eq!(applications(&hub), 2);

    // The citizen's text is in no log line of the hub.
    assert!(!hub.log().contains("Schlagloch vor der Hausnummer"));
}

/// A service that needs the applicant identified (substanziell) and a fee: the
/// sender's identification report (an ID token of a Nutzerkonto the hub trusts) and
/// booked payment travel into the procedure's message; without the report the hub
/// refuses it and stores nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_identified_and_paid_submission_carries_both_into_the_message() {
    use kopplung_tests::issuer::{ACR_SUBSTANTIAL, TestIssuer};
    const MELDEBESCHEINIGUNG: &str = "99115003000000";
    const PROCEDURE: &str = "dresden-buergerbuero";
    let issuer = TestIssuer::start().await;
    let hub = TestHub::start(HubSetup {
        fitconnect: vec![PROCEDURE],
        // The Nutzerkonto that identifies citizens for the online service.
        extra_config: issuer.hub_config("nutzerkonto-test", SENDER_ID, 3600),
        ..Default::default()
    })
    .await;
    let routing = std::fs::read_to_string(hub.routing_path()).expect("routing");
    let report = issuer.token(&issuer.claims(ACR_SUBSTANTIAL, "swk", SENDER_ID));
    let output = run_ok(
        std::process::Command::new(python_with_fitconnect())
            .arg(workspace().join("tests/fitconnect/sender_identified.py"))
            .env("KOPPLUNG_URL", hub.url(""))
            .env("DESTINATION", destination_of(&routing, PROCEDURE))
            .env("LEIKA", MELDEBESCHEINIGUNG)
            .env("REGION", DRESDEN)
            .env("SENDER_ID", SENDER_ID)
            .env("SENDER_SECRET", SENDER_SECRET)
            .env("REPORT", &report),
        "the FIT-Connect sender (Python SDK)",
    );
    let results: Value = serde_json::from_slice(&output.stdout).expect("the sender's results");
    assert_eq!(results["identified"]["status"], "submitted", "{results:#}");
    assert_eq!(results["anonymous"]["status"], 403, "{results:#}");
    assert_eq!(
        results["anonymous"]["type"],
        "urn:kopplung:problem:authentication-required"
    );
    assert_eq!(applications(&hub), 1, "{results:#}");

    let id = results["identified"]["submissionId"].as_str().unwrap();
    let broker = amqp().await;
    delivered(&hub, id).await;
    let message = kopplung_tests::drain_one(&broker, &hub.queue(PROCEDURE)).await;
    let xml = kopplung_tests::open_with_openssl_cli(&message.body, &hub.pki_dir(), PROCEDURE);
    assert!(
        xml.contains("XBZ-2026-0000815"),
        "the payment reference: {xml}"
    );
    assert!(xml.contains("substanziell"), "the identification: {xml}");
    assert!(
        xml.contains("nutzerkonto-test") || xml.contains(&issuer.url),
        "{xml}"
    );
}
