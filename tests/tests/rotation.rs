//! Staged rotation under load, with the reference procedures running: first the hub's
//! signing certificate (published → active at its `activate_at` → the old one retired),
//! then one procedure's encryption certificate (published → confirmed by the vendor →
//! active), then that procedure's receipt signing certificate (accepted beside the old
//! one before the vendor signs with it), while applications flow the whole time. No message is refused, none is
//! stuck: every application ends `decided`. Afterwards the old keys are retired for
//! good, and new applications still go through: the hub really signs with the new key
//! and seals for the new certificate.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kopplung_tests::pki::{Role, issue, list_dresden_next_certificate};
use kopplung_tests::shared::fixture_request;
use kopplung_tests::{
    HubSetup, TestHub, amqp, delete_queue, eventually, kopplung_bin, run_ok, stdout_of,
};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;

const PLAYED: [&str; 2] = ["dresden-maengel", "leipzig-buergerbuero"];

/// One application for Dresden (cms) or Leipzig (jose), by turns.
fn application(n: usize) -> Value {
    if n.is_multiple_of(2) {
        fixture_request(
            "maengelanzeige/fixtures/vollstaendig",
            "99999001000000",
            "146120000000",
        )
    } else {
        fixture_request(
            "meldebescheinigung/fixtures/vollstaendig",
            "99115003000000",
            "147130000000",
        )
    }
}

/// Submits applications every 150 ms until `flowing` turns false; their ids.
async fn keep_submitting(hub: Arc<TestHub>, flowing: Arc<AtomicBool>) -> Vec<String> {
    let mut ids = Vec::new();
    while flowing.load(Ordering::SeqCst) {
        ids.push(hub.submit_accepted(&application(ids.len()), None).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    ids
}

async fn trust(hub: &TestHub) -> Vec<Value> {
    let body: Value = reqwest::get(hub.url("/api/v1/trust"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["signing"].as_array().unwrap().clone()
}

/// The stages of the hub's signing certificates, once they are `expected`.
async fn wait_for_stages(hub: &TestHub, expected: &[&str]) -> Vec<Value> {
    eventually(
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || {
            let certificates = trust(hub).await;
            let stages: Vec<&str> = certificates
                .iter()
                .map(|c| c["stage"].as_str().unwrap())
                .collect();
            if stages == expected {
                Ok(certificates)
            } else {
                Err(stages.join(", "))
            }
        },
        |stages| format!("the hub's certificates are {stages}, not {expected:?}"),
    )
    .await
}

fn edit(file: &Path, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, edit(text)).unwrap();
}

fn fingerprint(pem_file: &Path) -> String {
    let cert = openssl::x509::X509::from_pem(&std::fs::read(pem_file).unwrap()).unwrap();
    let digest = cert.digest(openssl::hash::MessageDigest::sha256()).unwrap();
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Waits until the reference procedures logged their `n`th reload.
async fn sim_reloaded(hub: &TestHub, n: usize) {
    eventually(
        Duration::from_secs(30),
        Duration::from_millis(50),
        async || {
            let log = hub.sim_log();
            if log.matches("trust and keys reloaded").count() >= n {
                Ok(())
            } else {
                Err(log)
            }
        },
        |log| format!("the reference procedures did not reload {n} times:\n{log}"),
    )
    .await;
}

/// `kopplung check`'s warnings.
fn check_warnings(hub: &TestHub) -> String {
    let output = std::process::Command::new(kopplung_bin())
        .arg("check")
        .arg("--config")
        .arg(hub.config_path())
        .arg("--data-dir")
        .arg(hub.data_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

async fn all_decided(hub: &TestHub, ids: &[String]) {
    for id in ids {
        hub.wait_for_status(id, "decided", Duration::from_secs(120))
            .await;
    }
}

#[tokio::test]
async fn certificates_rotate_in_stages_while_applications_flow() {
    let broker = amqp().await;
    let hub = Arc::new(TestHub::start(HubSetup::default()).await);
    let pki = hub.pki_dir();
    let config = hub.config_path();
    let routing = hub.dir.path().join("config/routing.toml");
    // The vendor's own trust: the hub certificate the operator handed over.
    let vendor_trust = hub.dir.path().join("vendor-hub-certificates.pem");
    std::fs::copy(pki.join("hub.crt"), &vendor_trust).unwrap();
    let sim = hub.procedure_sim_trusting(&PLAYED, &vendor_trust);

    let flowing = Arc::new(AtomicBool::new(true));
    let load = tokio::spawn(keep_submitting(hub.clone(), flowing.clone()));
    let mut reloads = 0.0;
    let mut hub_reload = async || {
        hub.hangup();
        reloads += 1.0;
        hub.wait_for_metric("kopplung_key_reloads_total{outcome=\"applied\"}", reloads)
            .await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. The hub's next signing certificate is published, not used.
    issue(&pki, "hub-next", "kopplung Hub 2027", Role::Signer, 0, 730);
    edit(&config, |text| {
        format!(
            "{text}\n[signing]\nnext_certificate = \"hub-next.crt\"\nnext_key = \"hub-next.key\"\n"
        )
    });
    hub_reload().await;
    let published = wait_for_stages(&hub, &["active", "published"]).await;
    let next_fingerprint = fingerprint(&pki.join("hub-next.crt"));
    assert_eq!(
        published[1]["fingerprint_sha256"],
        next_fingerprint.as_str()
    );
    assert!(
        check_warnings(&hub).contains("next signing certificate"),
        "kopplung check does not say that the next signing certificate waits"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. The vendor trusts it beside the current one (from the published PEM, after
    //    comparing the fingerprint the operator announced).
    let pem = published[1]["pem"].as_str().unwrap();
    edit(&vendor_trust, |text| format!("{text}{pem}"));
    sim.hangup();
    sim_reloaded(&hub, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 3. Activation at a configured time, a few seconds on: the next one signs, the
    //    old one is retired.
    let at = (time::OffsetDateTime::now_utc() + time::Duration::seconds(3))
        .format(&Rfc3339)
        .unwrap();
    let activated = run_ok(
        Command::new(kopplung_bin())
            .args(["keys", "activate", "--config"])
            .arg(&config)
            .args(["--at", &at]),
        "kopplung keys activate",
    );
    kopplung_tests::assert_has(
        stdout_of(&activated),
        format!("[signing] activate_at = \"{at}\""),
    );
    hub_reload().await;
    let retired = wait_for_stages(&hub, &["retired", "active"]).await;
    assert_eq!(retired[1]["fingerprint_sha256"], next_fingerprint.as_str());
    // The switch is in the log, with the fingerprint now signing.
    let switched = format!("now signing SHA-256 {next_fingerprint}");
    hub.wait_for_log(Duration::from_secs(20), |log| log.contains(&switched))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 4. Dresden's next encryption certificate: published, not yet confirmed.
    list_dresden_next_certificate(&pki, &routing);
    hub_reload().await;
    let warnings = check_warnings(&hub);
    assert!(
        warnings.contains("procedure dresden-maengel") && warnings.contains("not yet confirmed"),
        "{warnings}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 5. The vendor installs the next key (it decrypts with both now) and confirms;
    //    the operator records the confirmation: the hub seals for the next one.
    sim.hangup();
    sim_reloaded(&hub, 2).await;
    run_ok(
        Command::new(kopplung_bin())
            .args(["keys", "confirm", "--config"])
            .arg(&config)
            .args(["--procedure", "dresden-maengel"]),
        "kopplung keys confirm",
    );
    assert!(
        std::fs::read_to_string(&routing)
            .unwrap()
            .contains("next_confirmed = true")
    );
    hub_reload().await;
    assert!(!check_warnings(&hub).contains("not yet confirmed"));
    hub.wait_for_log(Duration::from_secs(20), |log| {
        log.contains("procedure dresden-maengel: messages are now sealed for its next certificate")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 6. Dresden's receipt signing certificate: the hub accepts both, then the vendor
    //    signs its receipts and decisions with the next one.
    issue(
        &pki,
        "procedures/dresden-maengel-signatur-next",
        "dresden-maengel (Signatur) 2027",
        Role::Signer,
        0,
        730,
    );
    edit(&routing, |text| {
        text.replace(
            "receipt_certificate = \"procedures/dresden-maengel-signatur.crt\"",
            "receipt_certificate = \"procedures/dresden-maengel-signatur.crt\"\nreceipt_certificate_next = \"procedures/dresden-maengel-signatur-next.crt\"",
        )
    });
    hub_reload().await;
    sim.hangup();
    sim_reloaded(&hub, 3).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Each switch was logged once.
    let log = hub.log();
    assert_eq!(log.matches(&switched).count(), 1, "{log}");
    assert_eq!(
        log.matches("procedure dresden-maengel: messages are now sealed")
            .count(),
        1,
        "{log}"
    );

    // Every application of the overlap is decided; none refused, none stuck.
    flowing.store(false, Ordering::SeqCst);
    let ids = load.await.unwrap();
    assert!(ids.len() >= 20, "only {} applications flowed", ids.len());
    all_decided(&hub, &ids).await;
    eprintln!("{} applications decided across both rotations", ids.len());

    // 7. The rotations end: the operator makes the next the current ones (files and
    //    routing), the vendor drops the old hub certificate and its old keys.
    std::fs::copy(pki.join("hub-next.crt"), pki.join("hub.crt")).unwrap();
    std::fs::copy(pki.join("hub-next.key"), pki.join("hub.key")).unwrap();
    edit(&config, |text| {
        text[..text.find("\n[signing]").unwrap()].to_owned() + "\n"
    });
    edit(&routing, |text| {
        text.lines()
            .filter(|line| {
                !line.starts_with("certificate_next =") && !line.starts_with("next_confirmed =")
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace(
                "certificate = \"procedures/dresden-maengel.crt\"",
                "certificate = \"procedures/dresden-maengel-next.crt\"",
            )
        .replace(
            "receipt_certificate = \"procedures/dresden-maengel-signatur.crt\"\nreceipt_certificate_next = \"procedures/dresden-maengel-signatur-next.crt\"",
            "receipt_certificate = \"procedures/dresden-maengel-signatur-next.crt\"",
        )
    });
    hub_reload().await;
    let after = wait_for_stages(&hub, &["active"]).await;
    assert_eq!(after[0]["fingerprint_sha256"], next_fingerprint.as_str());
    std::fs::write(&vendor_trust, pem).unwrap();
    sim.hangup();
    sim_reloaded(&hub, 4).await;
    // Only the new hub certificate and Dresden's new keys are left: what still goes
    // through was signed and sealed with the new keys, and its answers signed with
    // Dresden's new signing key.
    let last: Vec<String> = {
        let mut last = Vec::new();
        for n in 0..4 {
            last.push(hub.submit_accepted(&application(n), None).await);
        }
        last
    };
    all_decided(&hub, &last).await;

    let sim_log = hub.sim_log();
    assert!(!sim_log.contains("message refused"), "{sim_log}");
    assert!(!sim_log.contains("reload refused"), "{sim_log}");
    let log = hub.log();
    assert!(!log.contains("procedure blocked"), "{log}");
    assert!(!log.contains("reload refused"), "{log}");
    drop(sim);
    for procedure in PLAYED {
        delete_queue(&broker, &hub.queue(procedure)).await;
    }
}
