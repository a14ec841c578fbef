//! The example receivers of the vendor kit (`examples/receivers/`), run as a vendor runs
//! them against a hub: each transport takes an application to `decided`, and the
//! conformance kit grades the Python receiver fully.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kopplung_tests::shared::{fixture_request, kopplung};
use kopplung_tests::{HubSetup, TestHub, deliver_over, free_port, workspace};

/// The Python example receiver (standard library, openssl and xmllint only).
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_receiver(hub: &TestHub, transport: &str, port: u16) -> Receiver {
    let state = hub.dir.path().join(format!("python-{transport}"));
    let log = std::fs::File::create(hub.dir.path().join(format!("python-{transport}.log")))
        .expect("log file");
    let child = Command::new("python3")
        .arg(workspace().join("examples/receivers/python/receiver.py"))
        .args([
            transport,
            "--hub",
            &hub.url(""),
            "--procedure",
            "dresden-maengel",
        ])
        .arg("--data-dir")
        .arg(hub.data_dir())
        .arg("--state")
        .arg(&state)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--path",
            "/eingang",
        ])
        .args(["--interval", "0.3"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("python3 runs");
    Receiver(child)
}

fn receiver_log(hub: &TestHub, transport: &str) -> String {
    std::fs::read_to_string(hub.dir.path().join(format!("python-{transport}.log")))
        .unwrap_or_default()
}

/// Submits a Mängelanzeige for Dresden and waits until the receiver decided it.
async fn decided(hub: &TestHub, transport: &str) -> serde_json::Value {
    let body = fixture_request(
        "maengelanzeige/fixtures/vollstaendig",
        "99999001000000",
        "146120000000",
    );
    let id = hub.submit_accepted(&body, None).await;
    let status = hub
        .wait_for_status(&id, "decided", Duration::from_secs(60))
        .await;
    assert!(
        !receiver_log(hub, transport).contains("Traceback"),
        "{}",
        receiver_log(hub, transport)
    );
    status
}

#[tokio::test]
async fn the_python_receiver_takes_http_pushes_decides_and_passes_the_conformance_kit() {
    let port = free_port();
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(std::sync::Arc::new(move |routing| {
            deliver_over(
                &routing,
                "dresden-maengel",
                &format!(
                    "transport = \"http\"\nallow_plain_http = true\nurl = \"http://127.0.0.1:{port}/eingang\""
                ),
            )
        })),
        ..HubSetup::default()
    })
    .await;
    let _receiver = python_receiver(&hub, "http", port);
    let status = decided(&hub, "http").await;
    let kinds: Vec<&str> = status["mailbox"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"decided"), "{status:#}");

    let args = [
        "conformance".to_owned(),
        "--config".into(),
        hub.config_path().display().to_string(),
        "--data-dir".into(),
        hub.data_dir().display().to_string(),
        "--procedure".into(),
        "dresden-maengel".into(),
        "--target".into(),
        format!("http://127.0.0.1:{port}/eingang"),
    ];
    let (passed, report) = tokio::task::spawn_blocking(move || kopplung(args))
        .await
        .unwrap();
    assert!(passed, "{report}\n{}", receiver_log(&hub, "http"));
    assert!(report.contains("8/8 passed (100%)"), "{report}");
}

#[tokio::test]
async fn the_python_receiver_collects_over_pull_and_decides() {
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(std::sync::Arc::new(|routing| {
            deliver_over(
                &routing,
                "dresden-maengel",
                "transport = \"pull\"\ntoken_file = \"procedure-tokens/dresden-maengel\"",
            )
        })),
        ..HubSetup::default()
    })
    .await;
    let _receiver = python_receiver(&hub, "pull", free_port());
    decided(&hub, "pull").await;
    let log = receiver_log(&hub, "pull");
    assert!(log.contains("collected and acknowledged"), "{log}");
    assert!(log.contains("decision sent"), "{log}");
}

/// The Java example receiver with BouncyCastle from Debian (`libbcpkix-java`), compiled
/// with the machine's `javac`.
fn java_receiver(hub: &TestHub, port: u16) -> Receiver {
    let jars = ["bcprov", "bcpkix", "bcutil"].map(|jar| format!("/usr/share/java/{jar}.jar"));
    for jar in &jars {
        assert!(
            std::path::Path::new(jar).is_file(),
            "{jar} is missing: apt-get install libbcpkix-java (scripts/lib/setup.sh does)"
        );
    }
    let classes = hub.dir.path().join("java-classes");
    let compiled = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .args(["-cp", &jars.join(":")])
        .arg(workspace().join("examples/receivers/java/Receiver.java"))
        .output()
        .expect("javac runs (a JDK 17)");
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let log = std::fs::File::create(hub.dir.path().join("java-http.log")).expect("log file");
    let child = Command::new("java")
        .args(["-cp", &format!("{}:{}", classes.display(), jars.join(":"))])
        .arg("Receiver")
        .args(["--hub", &hub.url(""), "--procedure", "dresden-maengel"])
        .arg("--data-dir")
        .arg(hub.data_dir())
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--path",
            "/eingang",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("java runs");
    Receiver(child)
}

#[tokio::test]
async fn the_java_receiver_with_bouncycastle_decides_and_passes_the_conformance_kit() {
    let port = free_port();
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(std::sync::Arc::new(move |routing| {
            deliver_over(
                &routing,
                "dresden-maengel",
                &format!(
                    "transport = \"http\"\nallow_plain_http = true\nurl = \"http://127.0.0.1:{port}/eingang\""
                ),
            )
        })),
        ..HubSetup::default()
    })
    .await;
    let _receiver = java_receiver(&hub, port);
    let body = fixture_request(
        "maengelanzeige/fixtures/vollstaendig",
        "99999001000000",
        "146120000000",
    );
    let id = hub.submit_accepted(&body, None).await;
    hub.wait_for_status(&id, "decided", Duration::from_secs(60))
        .await;
    let args = [
        "conformance".to_owned(),
        "--config".into(),
        hub.config_path().display().to_string(),
        "--data-dir".into(),
        hub.data_dir().display().to_string(),
        "--procedure".into(),
        "dresden-maengel".into(),
        "--target".into(),
        format!("http://127.0.0.1:{port}/eingang"),
    ];
    let (passed, report) = tokio::task::spawn_blocking(move || kopplung(args))
        .await
        .unwrap();
    let log = std::fs::read_to_string(hub.dir.path().join("java-http.log")).unwrap_or_default();
    assert!(passed, "{report}\n{log}");
    assert!(report.contains("8/8 passed (100%)"), "{report}");
}
