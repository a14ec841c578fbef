//! The reference procedure (`kopplung procedure-sim`) closes the loop: it consumes the
//! queues, verifies each message as docs/vendors.md tells a vendor (cms and jose), and
//! answers with a signed receipt and, later, a decision with its document — over HTTP
//! (the cities) or on its AMQP reply queue (a district).

use std::time::Duration;

use kopplung_tests::shared::{
    assert_careless_report, assert_graded, conformance_against, file_names, history,
};
use kopplung_tests::{
    HubSetup, OTHER_TOKEN, TestHub, amqp, delete_queue, deliver_over, plain_http,
};

#[tokio::test]
async fn the_reference_procedures_receive_verify_confirm_and_decide() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    // A district procedure among them: its events come back on its AMQP reply queue.
    let _sim = hub.procedure_sim(&[
        "dresden-maengel",
        "leipzig-buergerbuero",
        "landkreis-leipzig-maengel",
    ]);
    let mut ids = Vec::new();
    for (service, region, fixture) in [
        (
            "99999001000000",
            "146120000000",
            "maengelanzeige/fixtures/vollstaendig",
        ),
        (
            "99115003000000",
            "147130000000",
            "meldebescheinigung/fixtures/vollstaendig",
        ),
        (
            "99999001000000",
            "147290050050",
            "maengelanzeige/fixtures/minimal",
        ),
        // The Gewerbeanmeldung demands PDF/A of its decision.
        (
            "99050012104000",
            "147130000000",
            "gewerbeanmeldung/fixtures/minimal",
        ),
    ] {
        let body = kopplung_tests::shared::fixture_request(fixture, service, region);
        ids.push((hub.submit_accepted(&body, None).await, service));
    }
    for (id, service) in &ids {
        decided_with_document(
            &hub,
            id,
            &["accepted", "prepared", "delivered", "received", "decided"],
            service,
        )
        .await;
    }
    let sim_log = std::fs::read_to_string(hub.dir.path().join("sim.log")).unwrap();
    kopplung_tests::assert_has(&sim_log, "event sent on the reply queue");
    for queue in [
        "dresden-maengel",
        "leipzig-buergerbuero",
        "landkreis-leipzig-maengel",
        "landkreis-leipzig-maengel.events",
    ] {
        delete_queue(&broker, &hub.queue(queue)).await;
    }
}

/// Waits for the decision; checks the history, the mailbox and that the decision's
/// document downloads for the applicant and no one else.
/// The demo's Mängelanzeige: a report, closed with a letter that decides nothing.
const REPORT: &str = "99999001000000";

/// How the reference procedure closes what the `service` is: the letter's title, whose
/// it is, and whether it decides (with a Rechtsbehelfsbelehrung). A report is answered
/// and a registration confirmed; nothing there can be objected to.
fn closing(service: &str) -> (&'static str, &'static str, bool) {
    match service {
        REPORT => ("Abschlussmitteilung", "Ihrer Meldung", false),
        "99050012104000" => ("Empfangsbescheinigung", "Ihrer Anmeldung", false),
        "99115005000000" => ("Meldebestätigung", "Ihrer Anmeldung", false),
        "99014002000000" => ("Bescheid", "Ihrer Bestellung", true),
        _ => ("Bescheid", "Ihrem Antrag", true),
    }
}

/// Waits until the procedure is done: closed with the letter [`closing`] names for the
/// application's `service`; a Bescheid says how and until when to object.
async fn decided_with_document(hub: &TestHub, id: &str, expected_history: &[&str], service: &str) {
    let (title, whose, decides) = closing(service);
    let status = hub
        .wait_for_status(id, "decided", Duration::from_secs(60))
        .await;
    let history = history(&status, "status");
    assert_eq!(history, expected_history, "{status:#}");
    // The decision in the mailbox, its document to download.
    let mailbox = status["mailbox"].as_array().unwrap();
    assert_eq!(mailbox.len(), 1);
    assert_eq!(mailbox[0]["kind"], "decided");
    let appeal = &mailbox[0]["appeal"];
    let text = mailbox[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("{title} zu {whose} ")),
        "{status:#}"
    );
    if !decides {
        // Nothing was applied for, so nothing decided that could be objected to.
        assert!(appeal.is_null(), "{status:#}");
        if service == REPORT {
            assert!(
                text.contains("Ihre Meldung ist damit erledigt."),
                "{status:#}"
            );
        }
        // The hub refuses an objection to it, with the reason the portal shows.
        let objection = serde_json::json!({"kind": "widerspruch", "text": "Das Loch ist noch da."});
        let (code, refused) = kopplung_tests::shared::answer(
            reqwest::Client::new()
                .post(hub.url(&format!("/api/v1/applications/{id}/messages")))
                .bearer_auth(&hub.token)
                .json(&objection),
        )
        .await;
        assert_eq!(code, 409, "{refused:#}");
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("keinen Bescheid mit Rechtsbehelfsbelehrung"),
            "{refused:#}"
        );
    } else {
        // The decision tells the citizen how and until when to object.
        assert!(
            appeal["text"].as_str().unwrap().contains("Widerspruch"),
            "{status:#}"
        );
        assert_eq!(appeal["deadline"].as_str().unwrap().len(), 10, "{status:#}");
    }
    assert!(
        mailbox[0]["text"]
            .as_str()
            .unwrap()
            .contains(status["receipt"].as_str().unwrap())
    );
    let document = &status["documents"][0];
    assert_eq!(document["media_type"], "application/pdf");
    let href = document["href"].as_str().unwrap();
    let own = hub.fetch(href, Some(&hub.token)).await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.headers()["content-type"], "application/pdf");
    assert_eq!(own.headers()["x-content-type-options"], "nosniff");
    let bytes = own.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    // A stock tool opens it: qpdf (Debian's package) reads every object and stream.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes).unwrap();
    kopplung_tests::run_ok(
        std::process::Command::new("qpdf")
            .arg("--check")
            .arg(file.path()),
        "qpdf --check (Debian package qpdf, in TEST_PACKAGES)",
    );
    let sha512 = hex::encode(openssl::sha::sha512(&bytes));
    assert_eq!(document["sha512"], sha512.as_str());
    // No one else: another client, no token.
    assert_eq!(hub.fetch(href, Some(OTHER_TOKEN)).await.status(), 404);
    assert_eq!(hub.fetch(href, None).await.status(), 401);
    // The history names the document by hash; the decision text stays out of it.
    let detail = status["history"][expected_history.len() - 1]["detail"]
        .as_str()
        .unwrap();
    let outcome = text.rsplit(": ").next().unwrap();
    assert!(
        detail.contains(&sha512) && !detail.contains(outcome),
        "{detail}"
    );
}

const PULL_TOKEN: &str = "pull-token-of-the-leipzig-buergerbuero-0123";

/// The same cycle over HTTP (Dresden's Mängelanzeige: the receipt is the answer to the
/// hub's POST) and over the pull API (Leipzig's Bürgerbüro, jose: the receipt goes with
/// the acknowledgement); the decisions come back on the events endpoint.
#[tokio::test]
async fn the_reference_procedures_answer_over_http_and_pull_too() {
    let port = kopplung_tests::free_port();
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(std::sync::Arc::new(move |routing| {
            let url = format!("http://127.0.0.1:{port}/fachverfahren/eingang");
            let routing = deliver_over(&routing, "dresden-maengel", &plain_http(&url, ""));
            deliver_over(
                &routing,
                "leipzig-buergerbuero",
                "transport = \"pull\"\ntoken_file = \"pull-token-leipzig\"",
            )
        })),
        before_start: |pki| {
            // The token file lives in the data directory, beside the PKI folder.
            std::fs::write(pki.parent().unwrap().join("pull-token-leipzig"), PULL_TOKEN).unwrap();
        },
        ..HubSetup::default()
    })
    .await;
    let _sim = hub.procedure_sim(&["dresden-maengel", "leipzig-buergerbuero"]);
    let mut cases = Vec::new();
    for (service, region, fixture, history) in [
        (
            "99999001000000",
            "146120000000",
            "maengelanzeige/fixtures/vollstaendig",
            &["accepted", "prepared", "delivered", "received", "decided"][..],
        ),
        (
            "99115003000000",
            "147130000000",
            "meldebescheinigung/fixtures/vollstaendig",
            // Prepared, then waiting for the procedure to collect it.
            &[
                "accepted",
                "prepared",
                "prepared",
                "delivered",
                "received",
                "decided",
            ][..],
        ),
    ] {
        let body = kopplung_tests::shared::fixture_request(fixture, service, region);
        cases.push((hub.submit_accepted(&body, None).await, history, service));
    }
    for (id, history, service) in &cases {
        decided_with_document(&hub, id, history, service).await;
    }
    let sim_log = std::fs::read_to_string(hub.dir.path().join("sim.log")).unwrap();
    // Each answer's line names its message and application (ids, no personal data).
    for needle in [
        "receipt in the HTTP answer",
        "collected and acknowledged with the receipt",
        "event sent",
    ] {
        assert!(
            sim_log.lines().any(|line| line.contains(needle)
                && line.contains("message_id=")
                && line.contains("application_id=")),
            "{needle}:\n{sim_log}"
        );
    }
}

/// A legacy procedure that only imports files: the hub writes each message with its
/// manifest into the exchange folder, the reference procedure imports it and leaves its
/// signed receipt and, later, the decision in the incoming folder; no network between
/// them. A forged answer is moved aside with the reason beside it.
#[tokio::test]
async fn the_reference_procedure_imports_files_and_answers_through_the_incoming_folder() {
    let hub = TestHub::start(HubSetup::file_drop("dresden-maengel")).await;
    let exchange = hub.exchange_dir("dresden-maengel");
    let _sim = hub.procedure_sim(&["dresden-maengel"]);
    let body = kopplung_tests::shared::fixture_request(
        "maengelanzeige/fixtures/vollstaendig",
        "99999001000000",
        "146120000000",
    );
    let id = hub.submit_accepted(&body, None).await;
    decided_with_document(
        &hub,
        &id,
        &["accepted", "prepared", "delivered", "received", "decided"],
        REPORT,
    )
    .await;
    // Imported and removed; both answers taken, none refused.
    let names = |dir: &str| file_names(&exchange.join(dir));
    assert_eq!(names("outgoing"), Vec::<String>::new());
    let taken = names("incoming/taken");
    assert_eq!(taken.len(), 2, "{taken:?}");
    assert!(taken.iter().all(|n| n.ends_with(".p7m")), "{taken:?}");
    let sim_log = hub.sim_log();
    assert!(
        sim_log.contains("imported; receipt left in the incoming folder")
            && sim_log.contains("event left in the incoming folder"),
        "{sim_log}"
    );

    // A forged answer: refused, with the problem document beside it.
    std::fs::write(
        exchange.join("incoming/gefaelscht.p7m"),
        b"not signed at all",
    )
    .unwrap();
    let problem = exchange.join("incoming/refused/gefaelscht.p7m.problem.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !problem.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "not refused: {:?}",
            names("incoming")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let problem: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&problem).unwrap()).unwrap();
    assert_eq!(
        problem["type"], "urn:kopplung:problem:receipt-unverifiable",
        "{problem:#}"
    );
    assert!(exchange.join("incoming/refused/gefaelscht.p7m").is_file());
}

/// The conformance kit, as a vendor runs it against a test system: the reference
/// procedure passes every case in both profiles; a careless receiver that takes
/// whatever comes fails, each case named.
#[tokio::test]
async fn the_conformance_kit_passes_the_reference_procedure_and_names_a_careless_receivers_faults()
{
    let (cms_port, jose_port) = (kopplung_tests::free_port(), kopplung_tests::free_port());
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(std::sync::Arc::new(move |routing| {
            let over_http = |port: u16| {
                plain_http(
                    &format!("http://127.0.0.1:{port}/fachverfahren/eingang"),
                    "",
                )
            };
            let routing = deliver_over(&routing, "dresden-maengel", &over_http(cms_port));
            deliver_over(&routing, "leipzig-buergerbuero", &over_http(jose_port))
        })),
        ..HubSetup::default()
    })
    .await;
    let _sim = hub.procedure_sim(&["dresden-maengel", "leipzig-buergerbuero"]);
    let conformance =
        async |procedure: &str, target: String| conformance_against(&hub, procedure, &target).await;
    for (procedure, port) in [
        ("dresden-maengel", cms_port),
        ("leipzig-buergerbuero", jose_port),
    ] {
        let target = format!("http://127.0.0.1:{port}/fachverfahren/eingang");
        // The receiver may still be starting.
        let mut attempt = 0;
        let (passed, report) = loop {
            let (passed, report) = conformance(procedure, target.clone()).await;
            attempt += 1;
            if passed || attempt == 20 || !report.contains("Connection refused") {
                break (passed, report);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(passed, "{procedure}: {report}");
        assert!(report.contains("8/8 passed (100%)"), "{report}");
        assert_graded(
            &report,
            "PASS",
            &[
                "tampered-ciphertext",
                "wrong-signer",
                "expired-signer",
                "oversized",
            ],
        );
    }

    // Takes everything with a 200 and an empty body.
    let careless = kopplung_tests::shared::serve(
        axum::Router::new().route("/eingang", axum::routing::post(|| async { "" })),
        "/eingang",
    )
    .await;
    let (passed, report) = conformance("dresden-maengel", careless).await;
    assert_careless_report(passed, &report, &[]);
}
