//! The conformance kit over the transports whose answers come later: the kit plays the
//! hub's side (it sends through the procedure's own sink, serves the pull and events
//! API, consumes the reply queue, reads the answer folder) and grades what comes back.
//! The reference procedure passes every case over AMQP (answers on its reply queue, or
//! to the events API), pull (jose) and the file drop; a careless file importer that
//! signs an accept for whatever arrives fails the forged cases, each named.

use std::path::Path;
use std::time::Duration;

use kopplung_tests::shared::{assert_careless_report, assert_graded, conformance_args, kopplung};
use kopplung_tests::{HubSetup, TestHub, free_port, sign_cms_receipt};
use serde_json::json;

fn conformance(hub: &TestHub, procedure: &str, listen: &str) -> (bool, String) {
    kopplung(conformance_args(
        hub,
        procedure,
        &["--listen", listen, "--wait-secs", "40"],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_grades_receivers_over_amqp_pull_and_the_file_drop() {
    let mut hub = TestHub::start(HubSetup::default()).await;
    // The kit takes the answers in the hub's place: a hub consuming the reply queue
    // would take them first, and the kit says so instead of grading.
    let listen = format!("127.0.0.1:{}", free_port());
    let (passed, report) =
        tokio::task::block_in_place(|| conformance(&hub, "landkreis-leipzig-maengel", &listen));
    assert!(!passed, "{report}");
    assert!(report.contains("a hub is taking the answers"), "{report}");
    hub.kill();

    let procedures = [
        "landkreis-leipzig-maengel",
        "chemnitz-maengel",
        "zwickau-maengel",
        "vogtlandkreis-maengel",
    ];
    let sim = hub.procedure_sim_to(&[format!("http://{listen}")], &procedures, 1);
    for (procedure, over) in [
        ("landkreis-leipzig-maengel", "over amqp"),
        ("chemnitz-maengel", "over amqp"),
        ("zwickau-maengel", "over pull"),
        ("vogtlandkreis-maengel", "over file"),
    ] {
        let (passed, report) =
            tokio::task::block_in_place(|| conformance(&hub, procedure, &listen));
        println!("{report}");
        assert!(passed, "{procedure}: {report}\n{}", hub.sim_log());
        assert!(report.contains(over), "{report}");
        assert!(report.contains("8/8 passed (100%)"), "{report}");
        assert_graded(
            &report,
            "PASS",
            &["tampered-ciphertext", "wrong-signer", "redelivered"],
        );
    }
    drop(sim);

    // Signs an accept for every manifest it finds, without opening anything.
    let exchange = hub.data_dir().join("exchange/vogtlandkreis-maengel");
    let pki = hub.pki_dir();
    let careless = tokio::spawn(async move {
        let mut answered = std::collections::BTreeSet::new();
        loop {
            accept_everything(&exchange, &pki, &mut answered);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let (passed, report) =
        tokio::task::block_in_place(|| conformance(&hub, "vogtlandkreis-maengel", &listen));
    careless.abort();
    println!("{report}");
    assert_careless_report(passed, &report, &["oversized"]);
    kopplung_tests::assert_has(
        &report,
        "answered with a signed `accept`: a receiver must refuse",
    );
}

fn accept_everything(
    exchange: &Path,
    pki: &Path,
    answered: &mut std::collections::BTreeSet<String>,
) {
    let Ok(entries) = std::fs::read_dir(exchange.join("outgoing")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".manifest.json") || !answered.insert(name.clone()) {
            continue;
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
        let message_id = manifest["message_id"].as_str().unwrap();
        let receipt = json!({
            "receipt_id": format!("sorglos-{message_id}"),
            "procedure": "vogtlandkreis-maengel",
            "message_id": message_id,
            "application_id": manifest["application_id"],
            "event": "accept",
            "issued_at": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        });
        let signed = sign_cms_receipt(pki, "vogtlandkreis-maengel", &receipt);
        let incoming = exchange.join("incoming");
        std::fs::create_dir_all(&incoming).unwrap();
        let temporary = incoming.join(format!(".{message_id}.tmp"));
        std::fs::write(&temporary, signed).unwrap();
        std::fs::rename(&temporary, incoming.join(format!("{message_id}.p7m"))).unwrap();
    }
}
