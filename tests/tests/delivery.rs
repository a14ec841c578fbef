//! Delivery by maturity level against real receivers: an HTTP procedure on loopback
//! (failing, refusing, answering with a signed receipt, hanging) and pull procedures
//! that collect their messages. The hub runs as its own process.

use kopplung_tests::keys::{DRESDEN, LEIPZIG};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use kopplung_tests::shared::{answer, header_text, history, serve};
use kopplung_tests::{
    ADMIN_TOKEN, HubSetup, TestHub, amqp, deliver_over, drain_and_delete, eventually,
    open_with_openssl_cli, plain_http, sign_cms_receipt, token_sha256, with_procedure_settings,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

fn maengel(region: &str) -> Value {
    json!({"service": "99999001000000", "region": region,
           "data": {"kategorie": "muell", "beschreibung": "Sperrmüll am Gehweg", "ort": {"strasse": "Prager Straße"}}})
}

/// One request as the receiver saw it.
#[derive(Clone)]
struct Arrival {
    at: Instant,
    idempotency_key: String,
    message_id: String,
    application_id: String,
}

type Answer = Arc<dyn Fn(u32, &Arrival) -> Response + Send + Sync>;

/// A real HTTP receiver on loopback: `answer(n, arrival)` decides the n-th answer.
async fn receiver(answer: Answer) -> (String, Arc<Mutex<Vec<Arrival>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicU32::new(0));
    let app = {
        let arrivals = arrivals.clone();
        Router::new().route(
            "/fachverfahren/eingang",
            post(move |headers: HeaderMap, _body: Bytes| {
                let arrivals = arrivals.clone();
                let calls = calls.clone();
                let answer = answer.clone();
                async move {
                    let header = |name: &str| header_text(&headers, name);
                    let arrival = Arrival {
                        at: Instant::now(),
                        idempotency_key: header("idempotency-key"),
                        message_id: header("x-kopplung-message-id"),
                        application_id: header("x-kopplung-application-id"),
                    };
                    arrivals.lock().await.push(arrival.clone());
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    // Signing with the openssl CLI blocks: off the runtime's threads.
                    tokio::task::spawn_blocking(move || answer(n, &arrival))
                        .await
                        .unwrap()
                }
            }),
        )
    };
    (serve(app, "/fachverfahren/eingang").await, arrivals)
}

/// A test hub whose Dresden Mängelanzeige procedure takes its messages over HTTP at
/// `url`, with the hub's default retries.
async fn hub_over_http(url: &str) -> TestHub {
    TestHub::start(HubSetup::over_http("dresden-maengel", url, 5000)).await
}

/// Submits a Mängelanzeige for Dresden and waits until it is `status`: its id and its
/// status then.
async fn submit_until(hub: &TestHub, status: &str) -> (String, Value) {
    hub.submit_until(&maengel(DRESDEN), status, Duration::from_secs(30))
        .await
}

fn status_with(status: u16, retry_after: Option<&str>) -> Response {
    let mut response = StatusCode::from_u16(status).unwrap().into_response();
    if let Some(value) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", value.parse().unwrap());
    }
    response
}

#[tokio::test]
async fn an_http_procedure_that_fails_twice_gets_the_message_once_after_retry_after() {
    let (url, arrivals) = receiver(Arc::new(|n, _| match n {
        0 | 1 => status_with(503, Some("1")),
        _ => status_with(202, None),
    }))
    .await;
    let hub = hub_over_http(&url).await;
    let (id, status) = submit_until(&hub, "delivered").await;
    let arrivals = arrivals.lock().await.clone();
    assert_eq!(arrivals.len(), 3, "two refusals, one success, nothing more");
    let message_id = status["delivery"]["message_id"].as_str().unwrap();
    for arrival in &arrivals {
        assert_eq!(arrival.idempotency_key, message_id);
        assert_eq!(arrival.message_id, message_id);
        assert_eq!(arrival.application_id, id);
    }
    // `Retry-After: 1` is a floor under the backoff (base 50 ms in the test hub).
    for pair in arrivals.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(950),
            "retried after {:?}",
            pair[1].at - pair[0].at
        );
    }
    assert_eq!(status["delivery"]["attempts"], 3);
    let history = history(&status, "detail");
    assert!(
        history.iter().any(|d| d.contains("via http")),
        "{history:?}"
    );
}

#[tokio::test]
async fn a_permanent_refusal_is_dead_lettered_and_a_replay_delivers_with_the_same_id() {
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (url, arrivals) = {
        let refuse = refuse.clone();
        receiver(Arc::new(move |_, _| {
            if refuse.load(Ordering::SeqCst) {
                status_with(400, None)
            } else {
                status_with(200, None)
            }
        }))
        .await
    };
    let hub = hub_over_http(&url).await;
    let (id, dead) = submit_until(&hub, "dead_lettered").await;
    assert!(
        dead["delivery"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("400"),
        "{dead:#}"
    );
    assert_eq!(arrivals.lock().await.len(), 1, "a 4xx is not retried");

    refuse.store(false, Ordering::SeqCst);
    let (replay, _) = answer(
        reqwest::Client::new()
            .post(hub.url(&format!("/api/v1/admin/deadletters/{id}/replay")))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert!((200..300).contains(&replay), "{replay}");
    let delivered = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    let arrivals = arrivals.lock().await.clone();
    assert_eq!(arrivals.len(), 2);
    assert_eq!(arrivals[0].message_id, arrivals[1].message_id);
    assert_eq!(
        delivered["delivery"]["message_id"].as_str().unwrap(),
        arrivals[1].message_id
    );
}

#[tokio::test]
async fn a_signed_receipt_in_the_http_answer_is_verified_and_applied() {
    // The receiver needs the PKI path, known only after the hub made it: shared cell.
    let pki: Arc<std::sync::Mutex<Option<std::path::PathBuf>>> = Arc::default();
    let (url, _arrivals) = {
        let pki = pki.clone();
        receiver(Arc::new(move |_, arrival| {
            let Some(dir) = pki.lock().unwrap().clone() else {
                return status_with(503, Some("1"));
            };
            let receipt = json!({
                "receipt_id": format!("eingang-{}", arrival.message_id),
                "procedure": "dresden-maengel",
                "message_id": arrival.message_id,
                "application_id": arrival.application_id,
                "event": "accept",
                "issued_at": kopplung_tests::now_rfc3339()
            });
            let signed = sign_cms_receipt(&dir, "dresden-maengel", &receipt);
            (
                StatusCode::OK,
                [(
                    "content-type",
                    "application/pkcs7-mime; smime-type=signed-data",
                )],
                signed,
            )
                .into_response()
        }))
        .await
    };
    let hub = hub_over_http(&url).await;
    *pki.lock().unwrap() = Some(hub.pki_dir());
    let (_, status) = submit_until(&hub, "received").await;
    assert_eq!(status["delivery"]["procedure"], "dresden-maengel");
}

#[tokio::test]
async fn a_refused_receipt_in_the_http_answer_is_counted_and_the_message_awaits_its_receipt() {
    let pki: Arc<std::sync::Mutex<Option<std::path::PathBuf>>> = Arc::default();
    let answered = Arc::new(AtomicU32::new(0));
    let (url, _arrivals) = {
        let (pki, answered) = (pki.clone(), answered.clone());
        receiver(Arc::new(move |_, arrival| {
            let Some(dir) = pki.lock().unwrap().clone() else {
                return status_with(503, Some("1"));
            };
            // The first answer is a rejection without its problems (signed correctly);
            // the vendor's fix, an acceptance, comes with the next message.
            let first = answered.fetch_add(1, Ordering::SeqCst) == 0;
            let receipt = json!({
                "receipt_id": format!("eingang-{}", arrival.message_id),
                "procedure": "dresden-maengel",
                "message_id": arrival.message_id,
                "application_id": arrival.application_id,
                "event": if first { "reject" } else { "accept" },
                "issued_at": kopplung_tests::now_rfc3339()
            });
            let signed = sign_cms_receipt(&dir, "dresden-maengel", &receipt);
            (StatusCode::OK, signed).into_response()
        }))
        .await
    };
    let hub = hub_over_http(&url).await;
    *pki.lock().unwrap() = Some(hub.pki_dir());
    let (first, _) = submit_until(&hub, "delivered").await;
    hub.wait_for_metric(
        r#"kopplung_answer_receipts_total{outcome="missing-field",procedure="dresden-maengel"}"#,
        1.0,
    )
    .await;
    hub.wait_for_log(Duration::from_secs(10), |log| {
        log.contains("receipt in the delivery answer refused")
    })
    .await;
    // Delivered, not confirmed: it waits for its receipt (and its deadline).
    assert_eq!(hub.status(&first).await["status"], "delivered");
    let (_, second) = submit_until(&hub, "received").await;
    assert_eq!(second["delivery"]["procedure"], "dresden-maengel");
    hub.wait_for_metric(
        r#"kopplung_answer_receipts_total{outcome="recorded",procedure="dresden-maengel"}"#,
        1.0,
    )
    .await;
    assert_eq!(hub.status(&first).await["status"], "delivered");
}

#[tokio::test]
async fn a_hanging_procedure_does_not_delay_the_others() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let url = format!("http://{addr}/fachverfahren/eingang");
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::rewriting(move |routing| {
        let routing = deliver_over(
            &routing,
            "dresden-maengel",
            &plain_http(&url, "timeout_ms = 60000"),
        );
        with_procedure_settings(&routing, "dresden-maengel", "max_in_flight = 2")
    }))
    .await;
    // More hanging work than the hub has delivery slots (32).
    for _ in 0..40 {
        hub.submit_accepted(&maengel(DRESDEN), None).await;
    }
    let id = hub.submit_accepted(&maengel(LEIPZIG), None).await;
    let status = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(20))
        .await;
    assert_eq!(status["delivery"]["procedure"], "leipzig-maengel");
    let ready = hub.public_json("/readyz").await;
    let backlog = ready.to_string();
    assert!(backlog.contains("dresden-maengel"), "{backlog}");
    let delivered = drain_and_delete(
        &broker,
        &hub.queue("leipzig-maengel"),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(delivered.len(), 1);
}

const TOKEN_A: &str = "pull-token-of-dresden-0123456789abcdef";
const TOKEN_B: &str = "pull-token-of-leipzig-0123456789abcdef";

fn pull_procedures() -> Arc<dyn Fn(String) -> String + Send + Sync> {
    Arc::new(|routing| {
        let routing = deliver_over(
            &routing,
            "dresden-maengel",
            &format!(
                "transport = \"pull\"\ntoken_sha256 = \"{}\"",
                token_sha256(TOKEN_A)
            ),
        );
        deliver_over(
            &routing,
            "leipzig-maengel",
            &format!(
                "transport = \"pull\"\ntoken_sha256 = \"{}\"",
                token_sha256(TOKEN_B)
            ),
        )
    })
}

#[tokio::test]
async fn pull_procedures_see_collect_and_acknowledge_only_their_own_messages() {
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(pull_procedures()),
        ..HubSetup::default()
    })
    .await;
    let id = hub.submit_accepted(&maengel(DRESDEN), None).await;
    // Waits for the procedure: prepared, listed, not delivered.
    let listed = eventually(
        Duration::from_secs(20),
        Duration::from_millis(50),
        async || {
            let list = hub
                .get_json("/api/v1/procedures/dresden-maengel/messages", TOKEN_A)
                .await;
            if list["messages"].as_array().is_some_and(|m| !m.is_empty()) {
                Ok(list)
            } else {
                Err(list)
            }
        },
        |list| format!("never listed: {list}\n{}", hub.log()),
    )
    .await;
    let entry = &listed["messages"][0];
    assert_eq!(entry["application_id"], id.as_str());
    let message_id = entry["message_id"].as_str().unwrap().to_owned();
    assert_eq!(hub.status(&id).await["status"], "prepared");

    // Leipzig's procedure sees nothing of it, by any path.
    let theirs: Value = hub
        .get_json("/api/v1/procedures/leipzig-maengel/messages", TOKEN_B)
        .await;
    assert_eq!(theirs["messages"], json!([]));
    let own_path = format!("/api/v1/procedures/dresden-maengel/messages/{message_id}");
    let their_path = format!("/api/v1/procedures/leipzig-maengel/messages/{message_id}");
    assert_eq!(hub.fetch(&own_path, Some(TOKEN_B)).await.status(), 403);
    assert_eq!(hub.fetch(&their_path, Some(TOKEN_B)).await.status(), 404);
    assert_eq!(
        hub.fetch("/api/v1/procedures/dresden-maengel/messages", Some(TOKEN_B))
            .await
            .status(),
        403
    );
    assert_eq!(hub.fetch(&own_path, None).await.status(), 401);
    assert_eq!(
        hub.fetch(&own_path, Some("wrong-token-0123456789"))
            .await
            .status(),
        401
    );
    let ack_path = format!("{own_path}/ack");
    let foreign_ack = reqwest::Client::new()
        .post(hub.url(&ack_path))
        .bearer_auth(TOKEN_B)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign_ack.status(), 403);
    assert_eq!(hub.status(&id).await["status"], "prepared");

    // Dresden downloads and opens it with the vendor's tools.
    let response = hub.fetch(&own_path, Some(TOKEN_A)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-kopplung-message-id"]
            .to_str()
            .unwrap(),
        message_id
    );
    let sealed = response.bytes().await.unwrap();
    let xml = open_with_openssl_cli(&sealed, &hub.pki_dir(), "dresden-maengel");
    assert!(xml.contains(&message_id), "{xml}");

    // The procedure acknowledges with a receipt it signed (for `message`).
    let acknowledge = async |receipt_id: &str, message: &str| {
        let receipt = sign_cms_receipt(
            &hub.pki_dir(),
            "dresden-maengel",
            &json!({"receipt_id": receipt_id, "procedure": "dresden-maengel",
                    "message_id": message, "application_id": id,
                    "event": "accept", "issued_at": kopplung_tests::now_rfc3339()}),
        );
        answer(
            reqwest::Client::new()
                .post(hub.url(&ack_path))
                .bearer_auth(TOKEN_A)
                .body(receipt),
        )
        .await
    };
    // A receipt for another message refuses the acknowledgement; nothing changes.
    let (refused, _) = acknowledge("r-wrong", &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(refused, 422);
    assert_eq!(hub.status(&id).await["status"], "prepared");

    // The acknowledgement with the signed receipt: delivered, then received.
    let (acked, answer) = acknowledge("r-1", &message_id).await;
    assert_eq!(acked, 200);
    assert_eq!(answer["acknowledged"], true);
    assert_eq!(answer["already_acknowledged"], false);
    assert_eq!(answer["receipt"]["status"], "received", "{answer:#}");
    let status = hub.status(&id).await;
    assert_eq!(status["status"], "received");
    assert!(status["delivery"]["delivered_at"].is_string(), "{status:#}");

    // Listed no more; a second acknowledgement changes nothing.
    let list: Value = hub
        .get_json("/api/v1/procedures/dresden-maengel/messages", TOKEN_A)
        .await;
    assert_eq!(list["messages"], json!([]));
    let again: Value = hub.post_json(&ack_path, TOKEN_A).await;
    assert_eq!(again["already_acknowledged"], true);
    assert_eq!(hub.status(&id).await["status"], "received");
}
