//! Small steps many end-to-end tests take: running the `kopplung` command, a broker
//! queue that refuses every publish, a receiver that counts messages by id, a fixture's
//! request.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::process::Command;
use std::sync::Arc;

use lapin::Connection;
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::Value;

use crate::{TestHub, kopplung_bin, workspace};

/// Runs `kopplung <args>`: whether it succeeded, and what it printed (stdout, then
/// stderr).
pub fn kopplung<I, S>(args: I) -> (bool, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(kopplung_bin())
        .args(args)
        .output()
        .expect("the kopplung binary runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `kopplung audit verify` on the hub's data directory must find the trail intact.
pub fn assert_audit_intact(hub: &TestHub) {
    let data_dir = hub.data_dir();
    let (ok, output) = kopplung([
        OsStr::new("audit"),
        OsStr::new("verify"),
        OsStr::new("--data-dir"),
        data_dir.as_os_str(),
    ]);
    assert!(ok, "{output}");
}

/// Declares `queue` so that the broker refuses every publish (a vendor's length limit
/// with reject-publish): each delivery attempt is a nack.
pub async fn refuse_publishes(connection: &Connection, queue: &str) {
    let mut refusing = FieldTable::default();
    refusing.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
    refusing.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    connection
        .create_channel()
        .await
        .expect("channel")
        .queue_declare(queue.into(), QueueDeclareOptions::durable(), refusing)
        .await
        .expect("a refusing queue");
}

/// `routing` with a `[procedure.retry]` section (`retry`: its lines) for `procedure`.
pub fn with_retry(routing: &str, procedure: &str, retry: &str) -> String {
    let queue = format!(".{procedure}\"\n");
    assert!(routing.contains(&queue), "no queue of {procedure}");
    routing.replacen(
        &queue,
        &format!("{queue}\n[procedure.retry]\n{}\n", retry.trim_end()),
        1,
    )
}

/// The request of a mapping's fixture (`maengelanzeige/fixtures/minimal`) for
/// `service` in `region`.
pub fn fixture_request(fixture: &str, service: &str, region: &str) -> Value {
    let mut body: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join(format!("mappings/{fixture}.input.json")))
            .expect("fixture input"),
    )
    .expect("fixture JSON");
    body["service"] = service.into();
    body["region"] = region.into();
    body
}

/// Arrivals per message id.
pub type Seen = Arc<tokio::sync::Mutex<BTreeMap<String, u32>>>;

/// An HTTP procedure on loopback that takes every POST to `/eingang` (answering after
/// `delay`) and counts the messages by their `Idempotency-Key` (the message id): its
/// URL and the counts.
pub async fn counting_receiver(delay: std::time::Duration) -> (String, Seen) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Seen = Arc::default();
    let app = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/eingang",
            axum::routing::post(move |headers: HeaderMap, _body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    let id = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    *seen.lock().await.entry(id).or_default() += 1;
                    StatusCode::ACCEPTED
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/eingang", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Runs SQL on a SQLite file with the `sqlite3` command line (read-only with
/// `read_only`, beside a running process); its output, trimmed.
pub fn sqlite3(db: &std::path::Path, sql: &str, read_only: bool) -> String {
    let mut command = Command::new("sqlite3");
    if read_only {
        command.arg("-readonly");
    }
    let output = command
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 (apt-get install sqlite3)");
    assert!(
        output.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A header's value as text, empty if missing.
pub fn header_text(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl TestHub {
    /// One SQL query on the hub's SQLite store, read-only beside the running hub.
    pub fn sql(&self, query: &str) -> String {
        sqlite3(&self.data_dir().join("kopplung.db"), query, true)
    }

    /// `GET path` with a bearer token; the JSON answer (null if none).
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let request = reqwest::Client::new().get(self.url(path));
        json_of(request.bearer_auth(token)).await
    }

    /// `POST path` without a body, with a bearer token; the JSON answer (null if none).
    pub async fn post_json(&self, path: &str, token: &str) -> Value {
        let request = reqwest::Client::new().post(self.url(path));
        json_of(request.bearer_auth(token)).await
    }
}

async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("the hub answers")
        .json()
        .await
        .unwrap_or(Value::Null)
}
