//! The reference procedure (`kopplung procedure-sim`) closes the loop: it consumes the
//! queues, verifies each message as docs/vendors.md tells a vendor (cms and jose), and
//! answers with a signed receipt the hub accepts.

use std::process::{Command, Stdio};
use std::time::Duration;

use kopplung_tests::{HubSetup, TestHub, amqp, delete_queue, kopplung_bin, workspace};
use serde_json::Value;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_reference_procedures_receive_verify_and_confirm() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let log = std::fs::File::create(hub.dir.path().join("sim.log")).unwrap();
    let _sim = Child(
        Command::new(kopplung_bin())
            .arg("procedure-sim")
            .arg("--config")
            .arg(hub.config_path())
            .arg("--data-dir")
            .arg(hub.data_dir())
            .arg("--hub")
            .arg(hub.url(""))
            .args([
                "--only",
                "dresden-maengel",
                "--only",
                "leipzig-buergerbuero",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
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
    ] {
        let mut body: Value = serde_json::from_str(
            &std::fs::read_to_string(workspace().join(format!("mappings/{fixture}.input.json")))
                .unwrap(),
        )
        .unwrap();
        body["service"] = service.into();
        body["region"] = region.into();
        let response = hub.submit(&body, None).await;
        assert_eq!(response.status(), 202);
        ids.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &ids {
        let status = hub
            .wait_for_status(id, "received", Duration::from_secs(60))
            .await;
        let history: Vec<&str> = status["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            history,
            ["accepted", "prepared", "delivered", "received"],
            "{status:#}"
        );
    }
    let sim_log = std::fs::read_to_string(hub.dir.path().join("sim.log")).unwrap();
    assert!(sim_log.contains("receipt sent"), "{sim_log}");
    for queue in ["dresden-maengel", "leipzig-buergerbuero"] {
        delete_queue(&broker, &hub.queue(queue)).await;
    }
}
