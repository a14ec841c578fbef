//! The reference procedure never drops a decision (issue 19): a decision no hub instance
//! takes waits in the procedure's own outbox — across a restart of the procedure — and
//! goes out when an instance is reachable again; with several hub URLs each answer goes
//! to the first instance that takes it. Nor a message it refuses: that is kept aside.

use std::path::Path;
use std::time::Duration;

use kopplung_tests::pki::{Role, issue, list_dresden_next_certificate};
use kopplung_tests::shared::{assert_contains_none, fixture_request, history};
use kopplung_tests::{
    HubSetup, PostgresDatabase, TestHub, amqp, delete_queue, eventually, eventually_count,
    free_port,
};

/// Dresden's Mängelanzeige: delivered on its AMQP queue, without a reply queue, so its
/// receipts and decisions go to the hub over HTTP.
const PROCEDURE: &str = "dresden-maengel";

async fn submit(hub: &TestHub, count: usize) -> Vec<String> {
    let body = fixture_request(
        "maengelanzeige/fixtures/vollstaendig",
        "99999001000000",
        "146120000000",
    );
    hub.submit_all((0..count).map(|_| (body.clone(), None)))
        .await
}

/// The answers waiting in the outbox.
fn pending(hub: &TestHub) -> usize {
    files(&hub.procedure_dir().join("pending"))
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

/// Whether a log line names exactly the instance `url` (not one whose port starts alike).
fn names(line: &str, url: &str) -> bool {
    let field = format!("hub={url}");
    line.contains(&format!("{field} ")) || line.ends_with(&field)
}

/// How many lines of the log contain `needle` and name the instance `url`.
fn lines_naming(log: &str, needle: &str, url: &str) -> usize {
    log.lines()
        .filter(|line| line.contains(needle) && names(line, url))
        .count()
}

/// Waits until the application is decided, and checks it went through every state.
async fn wait_decided(hub: &TestHub, id: &str, seconds: u64) -> serde_json::Value {
    let status = hub
        .wait_for_status(id, "decided", Duration::from_secs(seconds))
        .await;
    assert_eq!(
        history(&status, "status"),
        ["accepted", "prepared", "delivered", "received", "decided"],
        "{status:#}"
    );
    status
}

/// Personal data of the fixture must never reach the procedure's log, nor the decision's
/// text.
fn assert_no_personal_data(log: &str) {
    assert_contains_none(
        log,
        &[
            "Jürgen",
            "j.weiss@example.org",
            "Schlagloch",
            "stattgegeben",
        ],
    );
}

#[tokio::test]
async fn decisions_wait_for_a_killed_hub_across_a_restart_of_the_procedure() {
    let broker = amqp().await;
    let mut hub = TestHub::start(HubSetup::default()).await;
    let hub_url = hub.url("");
    // Decisions 5 s after the receipt: the hub is dead by then.
    let sim = hub.procedure_sim_to(std::slice::from_ref(&hub_url), &[PROCEDURE], 5);
    let ids = submit(&hub, 4).await;
    for id in &ids {
        hub.wait_for_status(id, "received", Duration::from_secs(30))
            .await;
    }
    // Stored right after the receipt, before the message is acknowledged: all four
    // are in the outbox, due in 5 s.
    eventually_count(
        Duration::from_secs(5),
        Duration::from_millis(20),
        ids.len(),
        || pending(&hub),
        |n| format!("{n} decisions in the outbox, not {}", ids.len()),
    )
    .await;
    hub.kill();
    // Every failed attempt is one warn line naming the instance and the attempt.
    eventually(
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || {
            let log = hub.sim_log();
            let failed = log.lines().any(|line| {
                line.contains("WARN")
                    && line.contains("event not taken by this hub instance")
                    && names(line, &hub_url)
                    && line.contains("attempt=2")
            });
            if failed { Ok(()) } else { Err(log) }
        },
        |log| format!("no second failed attempt logged:\n{log}"),
    )
    .await;
    // The procedure dies too (SIGKILL): its outbox keeps every decision.
    drop(sim);
    assert_eq!(pending(&hub), ids.len());
    let _sim = hub.procedure_sim_to(std::slice::from_ref(&hub_url), &[PROCEDURE], 5);
    eventually(
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || {
            let log = hub.sim_log();
            let seen = log.matches("pending answer from an earlier run").count();
            if seen == ids.len() { Ok(()) } else { Err(log) }
        },
        |log| format!("the restarted procedure did not take up its outbox:\n{log}"),
    )
    .await;
    // The same instance comes back: every decision arrives.
    hub.spawn().await;
    for id in &ids {
        let status = wait_decided(&hub, id, 90).await;
        assert_eq!(status["documents"][0]["media_type"], "application/pdf");
    }
    eventually_count(
        Duration::from_secs(10),
        Duration::from_millis(100),
        0,
        || pending(&hub),
        |n| format!("{n} answers still pending after every application was decided"),
    )
    .await;
    assert_eq!(files(&hub.procedure_dir().join("refused")), 0);
    assert_no_personal_data(&hub.sim_log());
    delete_queue(&broker, &hub.queue(PROCEDURE)).await;
}

#[tokio::test]
async fn with_two_hub_urls_answers_go_to_the_one_that_takes_them() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    // Nothing listens on the first URL: an instance that died.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let _sim = hub.procedure_sim_to(&[dead.clone(), hub.url("")], &[PROCEDURE], 1);
    let ids = submit(&hub, 3).await;
    for id in &ids {
        wait_decided(&hub, id, 60).await;
    }
    let log = hub.sim_log();
    let lines = |needle: &str, url: &str| lines_naming(&log, needle, url);
    // Each receipt and each decision tried the dead instance first, then the live one.
    assert!(
        lines("event not taken by this hub instance", &dead) >= 2 * ids.len(),
        "{log}"
    );
    assert_eq!(lines("event sent", &hub.url("")), 2 * ids.len(), "{log}");
    assert_eq!(pending(&hub), 0);
    assert_no_personal_data(&log);
    delete_queue(&broker, &hub.queue(PROCEDURE)).await;
}

/// A hub in front of `hub` that passes everything on but refuses every decision for good
/// (`422`), as a hub would one whose message it does not know.
async fn refusing_decisions(hub: String) -> String {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (client, hub) = (client.clone(), hub.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
            // The cms profile's signed JSON is readable inside the signature.
            if body.windows(10).any(|w| w == b"\"decision\"") {
                let problem = r#"{"type":"urn:kopplung:problem:unknown-message","title":"The receipt names no message of this hub","status":422}"#;
                return (
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    [("content-type", "application/problem+json")],
                    problem,
                )
                    .into_response();
            }
            let mut forward = client
                .request(parts.method, format!("{hub}{}", parts.uri))
                .body(body);
            for (name, value) in &parts.headers {
                if name != "host" {
                    forward = forward.header(name, value);
                }
            }
            let response = forward.send().await.unwrap();
            let status = response.status();
            (status, response.bytes().await.unwrap()).into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn a_decision_refused_for_good_is_logged_at_error_and_kept_aside() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let refusing = refusing_decisions(hub.url("")).await;
    // The refusing instance first: a permanent refusal is not passed on to the next.
    let _sim = hub.procedure_sim_to(&[refusing.clone(), hub.url("")], &[PROCEDURE], 1);
    let ids = submit(&hub, 2).await;
    for id in &ids {
        hub.wait_for_status(id, "received", Duration::from_secs(30))
            .await;
    }
    let refused = hub.procedure_dir().join("refused");
    eventually_count(
        Duration::from_secs(30),
        Duration::from_millis(100),
        ids.len(),
        || files(&refused),
        |n| {
            format!(
                "{n} answers kept aside, not {}:\n{}",
                ids.len(),
                hub.sim_log()
            )
        },
    )
    .await;
    assert_eq!(pending(&hub), 0);
    // The simulator logs each refusal after it has kept the file aside: its log may
    // trail the files by a moment.
    let refusals = |log: &str| {
        log.lines()
            .filter(|line| {
                line.contains("ERROR")
                    && line.contains("answer refused for good by the hub; kept aside")
            })
            .count()
    };
    eventually_count(
        Duration::from_secs(10),
        Duration::from_millis(50),
        ids.len(),
        || refusals(&hub.sim_log()),
        |n| format!("{n} refusals logged, not {}:\n{}", ids.len(), hub.sim_log()),
    )
    .await;
    let log = hub.sim_log();
    // Not sent anywhere else, and the applications say so: still waiting for a decision.
    for id in &ids {
        assert_eq!(hub.status(id).await["status"], "received");
    }
    assert_no_personal_data(&log);
    delete_queue(&broker, &hub.queue(PROCEDURE)).await;
}

/// As an operator runs it: two instances on one PostgreSQL database, the procedure given
/// both URLs. The first dies with decisions due; they go to the second.
#[tokio::test]
async fn two_instances_on_postgresql_the_decisions_go_to_the_survivor() {
    let broker = amqp().await;
    let database = PostgresDatabase::create();
    let setup = || HubSetup {
        extra_config: format!("[store]\npostgres_url = \"{}\"\n", database.url()),
        ..HubSetup::default()
    };
    let mut first = TestHub::start(setup()).await;
    let second = first.start_peer(&setup()).await;
    let (first_url, second_url) = (first.url(""), second.url(""));
    let _sim = first.procedure_sim_to(&[first_url.clone(), second_url.clone()], &[PROCEDURE], 5);
    let ids = submit(&first, 4).await;
    for id in &ids {
        first
            .wait_for_status(id, "received", Duration::from_secs(30))
            .await;
    }
    first.kill();
    for id in &ids {
        wait_decided(&second, id, 60).await;
    }
    let log = first.sim_log();
    let lines = |needle: &str, url: &str| lines_naming(&log, needle, url);
    // Every decision tried the dead first instance, then went to the second.
    assert!(
        lines("event not taken by this hub instance", &first_url) >= ids.len(),
        "{log}"
    );
    assert_eq!(lines("event sent", &second_url), ids.len(), "{log}");
    assert_eq!(pending(&first), 0);
    delete_queue(&broker, &first.queue(PROCEDURE)).await;
}

/// The message files kept in `refused/messages/` and their descriptions.
fn refused_messages(hub: &TestHub) -> Vec<serde_json::Value> {
    let dir = hub.procedure_dir().join("refused/messages");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect()
}

/// A message signed by a certificate the procedure does not trust (as when the hub's
/// next certificate is activated before the vendor trusts it) is kept in
/// `refused/messages/` with its reason before it is acknowledged — not lost —, and is
/// answered once the vendor trusts the hub's certificate and reloads (SIGHUP). The
/// reload names the decryption keys and warns of a listed next certificate whose key is
/// missing.
#[tokio::test]
async fn a_refused_message_is_kept_aside_and_answered_after_a_reload() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let pki = hub.pki_dir();
    // The vendor trusts another certificate of the same CA, not the hub's.
    issue(&pki, "other-hub", "Not the hub", Role::Signer, 0, 730);
    let vendor_trust = hub.dir.path().join("vendor-hub-certificates.pem");
    std::fs::copy(pki.join("other-hub.crt"), &vendor_trust).unwrap();
    let sim = hub.procedure_sim_trusting(&[PROCEDURE], &vendor_trust);
    let ids = submit(&hub, 1).await;
    let kept = eventually(
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || match refused_messages(&hub).pop() {
            Some(kept) => Ok(kept),
            None => Err(hub.sim_log()),
        },
        |log| format!("no refused message kept aside:\n{log}"),
    )
    .await;
    assert_eq!(kept["procedure"], PROCEDURE, "{kept:#}");
    assert_eq!(kept["transport"], "amqp", "{kept:#}");
    assert!(!kept["reason"].as_str().unwrap().is_empty(), "{kept:#}");
    assert!(kept["refused_at"].as_str().is_some(), "{kept:#}");
    let message_id = kept["message_id"].as_str().unwrap();
    let raw = hub
        .procedure_dir()
        .join("refused/messages")
        .join(kept["file"].as_str().unwrap());
    assert!(!std::fs::read(&raw).unwrap().is_empty());
    let log = hub.sim_log();
    assert!(
        log.lines().any(|line| line.contains("ERROR")
            && line.contains("message refused")
            && line.contains("kept aside")
            && line.contains(message_id)
            && line.contains("refused/messages/")),
        "{log}"
    );
    // Not answered: the application waits for its receipt.
    assert_eq!(hub.status(&ids[0]).await["status"], "delivered");

    // The operator lists Dresden's next certificate; the vendor has no key for it yet.
    list_dresden_next_certificate(&pki, &hub.dir.path().join("config/routing.toml"));
    std::fs::remove_file(pki.join("procedures/dresden-maengel-next.key")).unwrap();
    // The vendor trusts the hub's certificate and reloads: the kept message is answered.
    std::fs::copy(pki.join("hub.crt"), &vendor_trust).unwrap();
    sim.hangup();
    wait_decided(&hub, &ids[0], 60).await;
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        async || match files(&hub.procedure_dir().join("refused/messages")) {
            0 => Ok(()),
            n => Err(n),
        },
        |n| format!("{n} refused messages still kept after they were answered"),
    )
    .await;
    let log = hub.sim_log();
    assert!(
        log.lines().any(|line| line.contains("keys reloaded")
            && line.contains("decryption_keys=1")
            && line.contains("next_key=none")),
        "{log}"
    );
    assert!(
        log.lines().any(|line| line.contains("WARN")
            && line.contains("next certificate listed, but no key beside it")
            && line.contains("dresden-maengel-next.key")),
        "{log}"
    );
    assert!(
        log.lines().any(|line| line.contains("event sent")
            && line.contains(&format!("message_id={message_id}"))
            && line.contains("application_id=")),
        "{log}"
    );
    assert_no_personal_data(&log);
    delete_queue(&broker, &hub.queue(PROCEDURE)).await;
}
