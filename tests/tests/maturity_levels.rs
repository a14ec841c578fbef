//! The demo's routing table (`config/routing.toml`) couples procedures of every maturity
//! level, and the reference procedure plays each: one application per transport and
//! profile travels to `decided` — AMQP with cms (Chemnitz) and jose (Leipzig's
//! Bürgerbüro), HTTP push (Görlitz), pull with jose (Zwickau) and a file drop
//! (Vogtlandkreis). The fifth level, the clerk inbox (Chemnitz's Bewohnerparkausweis),
//! is walked in `intake_identity.rs` and `clerk_inbox.rs` on the same table.

use std::time::Duration;

use kopplung_tests::shared::{assert_contains_all, fixture_request, mailbox_kinds};
use kopplung_tests::{HubSetup, TestHub, free_port};

#[tokio::test]
async fn one_application_per_transport_of_the_demo_reaches_decided() {
    let port = free_port();
    let hub = TestHub::start(HubSetup {
        // The demo's table as it is; only the HTTP receiver's port is one of the test's.
        rewrite_routing: Some(std::sync::Arc::new(move |routing| {
            assert!(
                routing.contains("127.0.0.1:9101"),
                "the demo's HTTP procedure"
            );
            routing.replace("127.0.0.1:9101", &format!("127.0.0.1:{port}"))
        })),
        ..HubSetup::default()
    })
    .await;
    let routing =
        std::fs::read_to_string(hub.config_path().with_file_name("routing.toml")).unwrap();
    for transport in ["amqp", "http", "pull", "file", "manual"] {
        assert!(
            routing.contains(&format!("transport = \"{transport}\"")),
            "the demo routes no procedure over {transport}"
        );
    }
    let procedures = [
        "chemnitz-maengel",
        "leipzig-buergerbuero",
        "goerlitz-maengel",
        "zwickau-maengel",
        "vogtlandkreis-maengel",
    ];
    let _sim = hub.procedure_sim(&procedures);
    let cases = [
        (
            "amqp",
            "99999001000000",
            "145110000000",
            "maengelanzeige/fixtures/vollstaendig",
        ),
        (
            "amqp",
            "99115003000000",
            "147130000000",
            "meldebescheinigung/fixtures/vollstaendig",
        ),
        (
            "http",
            "99999001000000",
            "146260110110",
            "maengelanzeige/fixtures/vollstaendig",
        ),
        (
            "pull",
            "99999001000000",
            "145240020020",
            "maengelanzeige/fixtures/minimal",
        ),
        (
            "file",
            "99999001000000",
            "145230010010",
            "maengelanzeige/fixtures/vollstaendig",
        ),
    ];
    let mut submitted = Vec::new();
    for (transport, service, region, fixture) in cases {
        let id = hub
            .submit_accepted(&fixture_request(fixture, service, region), None)
            .await;
        submitted.push((transport, id));
    }
    for ((transport, id), procedure) in submitted.iter().zip(procedures) {
        let status = hub
            .wait_for_status(id, "decided", Duration::from_secs(90))
            .await;
        assert_eq!(status["delivery"]["procedure"], procedure, "{status:#}");
        assert_eq!(status["delivery"]["transport"], *transport, "{status:#}");
        assert!(
            mailbox_kinds(&status).iter().any(|k| k == "decided"),
            "{procedure}: {status:#}"
        );
    }
    let sim_log = hub.sim_log();
    assert_contains_all(
        &sim_log,
        &[
            "receipt in the HTTP answer",
            "collected and acknowledged with the receipt",
            "imported; receipt left in the incoming folder",
            "event left in the incoming folder",
        ],
    );
}
