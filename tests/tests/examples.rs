//! The example receivers of the vendor kit (`examples/receivers/`), run as a vendor runs
//! them against a hub: each transport takes an application to `decided`, and the
//! conformance kit grades the Python receiver fully.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kopplung_tests::shared::{
    conformance_against, file_names, fixture_request, kopplung, mailbox_kinds,
};
use kopplung_tests::{
    HubSetup, TestHub, amqp, amqp_url, delete_queue, free_port, plain_http, python_with_pika,
    run_ok, workspace,
};

/// The Python example receiver (standard library, openssl and xmllint; pika for AMQP).
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the Python receiver for dresden-maengel over `transport` with the hub's demo
/// files, `python` as the interpreter and the transport's own `options`.
fn python_receiver(hub: &TestHub, transport: &str, python: &Path, options: &[&str]) -> Receiver {
    let state = hub.dir.path().join(format!("python-{transport}"));
    let log = std::fs::File::create(hub.dir.path().join(format!("python-{transport}.log")))
        .expect("log file");
    let child = Command::new(python)
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
        .args(options)
        .args(["--interval", "0.3"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("python3 runs");
    Receiver(child)
}

/// The receiver over HTTP push or pull: plain `python3`, listening on `port`.
fn stdlib_receiver(hub: &TestHub, transport: &str, port: u16) -> Receiver {
    let listen = format!("127.0.0.1:{port}");
    python_receiver(
        hub,
        transport,
        Path::new("python3"),
        &["--listen", &listen, "--path", "/eingang"],
    )
}

fn receiver_log(hub: &TestHub, transport: &str) -> String {
    std::fs::read_to_string(hub.dir.path().join(format!("python-{transport}.log")))
        .unwrap_or_default()
}

/// Waits until the receiver's log has `needle` (it may log after the hub recorded what
/// it sent); the log.
async fn wait_for_receiver_log(hub: &TestHub, transport: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = receiver_log(hub, transport);
        if log.contains(needle) {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `{needle}` in the log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    kopplung_tests::assert_lacks(receiver_log(hub, transport), "Traceback");
    status
}

/// A hub that pushes Dresden's Mängelanzeige over plain HTTP to a receiver on `port`.
async fn hub_pushing_to(port: u16) -> TestHub {
    TestHub::start(HubSetup::delivering(
        "dresden-maengel",
        plain_http(&format!("http://127.0.0.1:{port}/eingang"), ""),
    ))
    .await
}

#[tokio::test]
async fn the_python_receiver_takes_http_pushes_decides_and_passes_the_conformance_kit() {
    let port = free_port();
    let hub = hub_pushing_to(port).await;
    let _receiver = stdlib_receiver(&hub, "http", port);
    let status = decided(&hub, "http").await;
    assert!(
        mailbox_kinds(&status).iter().any(|k| k == "decided"),
        "{status:#}"
    );

    let target = format!("http://127.0.0.1:{port}/eingang");
    let (passed, report) = conformance_against(&hub, "dresden-maengel", &target).await;
    assert!(passed, "{report}\n{}", receiver_log(&hub, "http"));
    assert!(report.contains("8/8 passed (100%)"), "{report}");
}

#[tokio::test]
async fn the_python_receiver_collects_over_pull_and_decides() {
    let hub = TestHub::start(HubSetup::delivering(
        "dresden-maengel",
        "transport = \"pull\"\ntoken_file = \"procedure-tokens/dresden-maengel\"".into(),
    ))
    .await;
    let _receiver = stdlib_receiver(&hub, "pull", free_port());
    decided(&hub, "pull").await;
    let log = wait_for_receiver_log(&hub, "pull", "decision sent").await;
    assert!(log.contains("collected and acknowledged"), "{log}");
}

/// AMQP: the receiver consumes the procedure's durable queue and acknowledges a message
/// only after its receipt was taken — on the reply queue where the routing gives the
/// procedure one, else by the receipts endpoint; the decision goes the same way.
async fn the_python_receiver_consumes_amqp(reply: bool) {
    let broker = amqp().await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let queue = format!("{prefix}.dresden-maengel");
    let reply_queue = format!("{prefix}.dresden-maengel.events");
    let delivery = format!(
        "transport = \"amqp\"\nqueue = \"{queue}\"{}",
        if reply {
            format!("\nreply_queue = \"{reply_queue}\"")
        } else {
            String::new()
        }
    );
    let hub = TestHub::start(HubSetup::delivering("dresden-maengel", delivery)).await;
    let python = tokio::task::spawn_blocking(python_with_pika).await.unwrap();
    let mut options = vec![
        "--amqp".to_owned(),
        amqp_url(),
        "--queue".into(),
        queue.clone(),
    ];
    if reply {
        options.extend(["--reply-queue".to_owned(), reply_queue.clone()]);
    }
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let _receiver = python_receiver(&hub, "amqp", &python, &options);
    decided(&hub, "amqp").await;
    let log = wait_for_receiver_log(&hub, "amqp", "decision sent").await;
    let via = if reply {
        "reply-queue"
    } else {
        "receipts-endpoint"
    };
    assert!(
        log.contains("consumed and acknowledged message_id=")
            && log.contains(&format!("via={via}")),
        "{log}"
    );
    delete_queue(&broker, &queue).await;
    delete_queue(&broker, &reply_queue).await;
}

#[tokio::test]
async fn the_python_receiver_consumes_amqp_and_answers_on_the_reply_queue() {
    the_python_receiver_consumes_amqp(true).await;
}

#[tokio::test]
async fn the_python_receiver_consumes_amqp_and_answers_over_http() {
    the_python_receiver_consumes_amqp(false).await;
}

/// File drop: the receiver imports the hub's message once its manifest is there, leaves
/// its signed receipt and decision in `incoming`, and reports what the hub refused.
#[tokio::test]
async fn the_python_receiver_imports_files_answers_in_the_incoming_folder_and_reports_refusals() {
    let hub = TestHub::start(HubSetup::file_drop("dresden-maengel")).await;
    let exchange = hub.exchange_dir("dresden-maengel");
    let folder = exchange.display().to_string();
    let _receiver = python_receiver(&hub, "file", Path::new("python3"), &["--exchange", &folder]);
    decided(&hub, "file").await;
    let names = |dir: &str| file_names(&exchange.join(dir));
    // Imported and removed; the receipt and the decision taken.
    assert_eq!(names("outgoing"), Vec::<String>::new());
    let taken = names("incoming/taken");
    assert_eq!(taken.len(), 2, "{taken:?}");
    assert!(
        taken[0].starts_with("decision-") && taken[1].starts_with("receipt-"),
        "{taken:?}"
    );
    let log = wait_for_receiver_log(&hub, "file", "decision sent").await;
    assert!(log.contains("imported; receipt left in incoming"), "{log}");

    // An answer the hub refuses: the receiver reports it with the hub's reason.
    std::fs::write(
        exchange.join("incoming/gefaelscht.p7m"),
        b"not signed at all",
    )
    .unwrap();
    wait_for_receiver_log(
        &hub,
        "file",
        "answer refused by the hub file=gefaelscht.p7m \
         problem=urn:kopplung:problem:receipt-unverifiable",
    )
    .await;
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
    run_ok(
        Command::new("javac")
            .arg("-d")
            .arg(&classes)
            .args(["-cp", &jars.join(":")])
            .arg(workspace().join("examples/receivers/java/Receiver.java")),
        "javac (a JDK 17)",
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
    let hub = hub_pushing_to(port).await;
    let _receiver = java_receiver(&hub, port);
    let body = fixture_request(
        "maengelanzeige/fixtures/vollstaendig",
        "99999001000000",
        "146120000000",
    );
    let id = hub.submit_accepted(&body, None).await;
    hub.wait_for_status(&id, "decided", Duration::from_secs(60))
        .await;
    let target = format!("http://127.0.0.1:{port}/eingang");
    let (passed, report) = conformance_against(&hub, "dresden-maengel", &target).await;
    let log = std::fs::read_to_string(hub.dir.path().join("java-http.log")).unwrap_or_default();
    assert!(passed, "{report}\n{log}");
    assert!(report.contains("8/8 passed (100%)"), "{report}");
}

/// The message catalogue for vendors (`docs/messages.md`) is exactly what `kopplung
/// mapping catalogue` makes of the current mappings: a changed template, schema or
/// fixture without the regenerated catalogue fails here.
#[test]
fn the_message_catalogue_in_the_docs_is_generated_from_the_current_mappings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("messages.md");
    let config = workspace().join("config/kopplung.toml");
    let (ok, output) = kopplung([
        "mapping".as_ref(),
        "catalogue".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(ok, "{output}");
    let generated = std::fs::read_to_string(&out).expect("generated catalogue");
    let committed =
        std::fs::read_to_string(workspace().join("docs/messages.md")).unwrap_or_default();
    let first_difference = generated
        .lines()
        .zip(committed.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(generated.lines().count().min(committed.lines().count()));
    assert!(
        generated == committed,
        "docs/messages.md is not what the mappings generate (first difference in line {}); \
         regenerate it: kopplung mapping catalogue --out docs/messages.md",
        first_difference + 1
    );
    // Every example event is one the hub would parse: the keys and types of a receipt.
    for block in generated.split("```json\n").skip(1) {
        let json = block.split("\n```").next().unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(json).expect("example JSON");
        if value.get("receipt_id").is_some() {
            serde_json::from_value::<kopplung_transformers::receipt::Receipt>(value)
                .expect("an example event the hub parses");
        }
    }
}
