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

use crate::{TestHub, kopplung_bin, run_ok, stdout_of, workspace};

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

/// `kopplung COMMAND ARGS --hub … --token-file …` against the hub's admin API with the
/// operator's token (`deadletters`, `awaiting-receipt`).
pub fn admin_cli(hub: &TestHub, command: &str, args: &[&str]) -> (bool, String) {
    let token_file = hub.data_dir().join("admin-token");
    let mut all: Vec<std::ffi::OsString> = vec![command.into()];
    all.extend(args.iter().map(Into::into));
    all.extend([
        "--hub".into(),
        hub.url("").into(),
        "--token-file".into(),
        token_file.into_os_string(),
    ]);
    kopplung(all)
}

/// The arguments of `kopplung conformance` for `procedure` of the hub (its
/// configuration and data directory), then `more` (`--target URL`, `--listen ADDR`, …).
pub fn conformance_args(hub: &TestHub, procedure: &str, more: &[&str]) -> Vec<String> {
    let mut args = vec![
        "conformance".to_owned(),
        "--config".into(),
        hub.config_path().display().to_string(),
        "--data-dir".into(),
        hub.data_dir().display().to_string(),
        "--procedure".into(),
        procedure.to_owned(),
    ];
    args.extend(more.iter().map(|arg| arg.to_string()));
    args
}

/// `kopplung conformance` for `procedure` of the hub against the receiver at `target`,
/// in a blocking task (the receiver may run on this runtime): whether it passed, and its
/// report.
pub async fn conformance_against(hub: &TestHub, procedure: &str, target: &str) -> (bool, String) {
    let args = conformance_args(hub, procedure, &["--target", target]);
    tokio::task::spawn_blocking(move || kopplung(args))
        .await
        .expect("kopplung conformance")
}

/// The forged cases of the conformance kit a receiver that takes whatever comes fails.
pub const FORGED_CASES: [&str; 5] = [
    "tampered-ciphertext",
    "wrong-signer",
    "expired-signer",
    "schema-invalid",
    "unknown-message-type",
];

/// A command that must fail, naming each of `expected` on stderr.
pub fn assert_fails_naming(output: &std::process::Output, expected: &[&str]) {
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_contains_all(&String::from_utf8_lossy(&output.stderr), expected);
}

/// A Mängelanzeige for Dresden with the given description.
pub fn maengel(beschreibung: &str) -> serde_json::Value {
    serde_json::json!({"service": "99999001000000", "region": "146120000000",
           "data": {"kategorie": "muell", "beschreibung": beschreibung, "ort": {"strasse": "Terrassenufer"}}})
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

/// A hub whose `procedure` retries as `retry` says (`[procedure.retry]` lines) and whose
/// queue refuses every publish ([`refuse_publishes`]): the broker, the hub, and that queue.
pub async fn hub_refusing(procedure: &str, retry: &str) -> (Connection, TestHub, String) {
    let broker = crate::amqp().await;
    let hub = TestHub::start(crate::HubSetup::retrying(procedure, retry)).await;
    let queue = hub.queue(procedure);
    refuse_publishes(&broker, &queue).await;
    (broker, hub, queue)
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
/// `service` in `region`. Unless the service takes anonymous applications, the applicant
/// is identified at the service's trust level, vouched for by the test client itself
/// ([`vouched_applicant`]).
pub fn fixture_request(fixture: &str, service: &str, region: &str) -> Value {
    let mut body: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join(format!("mappings/{fixture}.input.json")))
            .expect("fixture input"),
    )
    .expect("fixture JSON");
    body["service"] = service.into();
    body["region"] = region.into();
    let folder = fixture.split('/').next().expect("a mapping folder");
    let info = std::fs::read_to_string(workspace().join(format!("mappings/{folder}/service.toml")))
        .expect("service.toml");
    let setting = |key: &str| {
        info.lines()
            .find_map(|line| {
                line.strip_prefix(key)?
                    .trim()
                    .strip_prefix('=')
                    .map(str::trim)
            })
            .map(|value| value.trim_matches('"').to_owned())
    };
    if setting("anonymous").as_deref() != Some("true") {
        let level = setting("trust_level").unwrap_or_else(|| "basis".into());
        body["applicant"] = vouched_applicant(&level);
    }
    body
}

/// `applicant` of a request whose client vouches for the applicant's identification at
/// `level` on its own: the test hubs' client `test` may (`asserts_up_to = "hoch"`).
pub fn vouched_applicant(level: &str) -> Value {
    let means = match level {
        "hoch" => "online-ausweis",
        "substanziell" => "elster-zertifikat",
        _ => "benutzername-passwort",
    };
    serde_json::json!({"authentication": {
        "level": level,
        "means": means,
        "subject": "pseudonym-of-the-test-citizen",
        "authenticated_at": crate::now_rfc3339(),
    }})
}

/// Arrivals per message id.
pub type Seen = Arc<tokio::sync::Mutex<BTreeMap<String, u32>>>;

/// An HTTP procedure on loopback that takes every POST to `/eingang` (answering after
/// `delay`) and counts the messages by their `Idempotency-Key` (the message id): its
/// URL and the counts.
pub async fn counting_receiver(delay: std::time::Duration) -> (String, Seen) {
    let (url, seen, _arrived) = counting_receiver_with_arrivals(delay).await;
    (url, seen)
}

/// [`counting_receiver`], also counting the requests that arrived (before their delay):
/// a test knows when deliveries are in flight.
pub async fn counting_receiver_with_arrivals(
    delay: std::time::Duration,
) -> (String, Seen, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Seen = Arc::default();
    let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = {
        let (seen, arrived) = (seen.clone(), arrived.clone());
        axum::Router::new().route(
            "/eingang",
            axum::routing::post(move |headers: HeaderMap, _body: axum::body::Bytes| {
                let seen = seen.clone();
                arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    tokio::time::sleep(delay).await;
                    let id = header_text(&headers, "idempotency-key");
                    *seen.lock().await.entry(id).or_default() += 1;
                    StatusCode::ACCEPTED
                }
            }),
        )
    };
    (serve(app, "/eingang").await, seen, arrived)
}

/// Serves `app` on a free port of loopback; the URL of `path` there.
pub async fn serve(app: axum::Router, path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}{path}")
}

/// Runs SQL on a SQLite file with the `sqlite3` command line (read-only with
/// `read_only`, beside a running process); its output, trimmed.
pub fn sqlite3(db: &std::path::Path, sql: &str, read_only: bool) -> String {
    let mut command = Command::new("sqlite3");
    if read_only {
        command.arg("-readonly");
    }
    let output = run_ok(
        command.arg(db).arg(sql),
        &format!("sqlite3 {sql} (apt-get install sqlite3)"),
    );
    stdout_of(&output).trim().to_owned()
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

    /// `GET path` without a token (public routes); the JSON answer.
    pub async fn public_json(&self, path: &str) -> Value {
        json_of(reqwest::Client::new().get(self.url(path))).await
    }

    /// `GET path` (with a bearer token, if any): the answer.
    pub async fn fetch(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let request = reqwest::Client::new().get(self.url(path));
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().await.expect("the hub answers")
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

/// Sends `request`: the answer's status code and its JSON (null if none).
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// One field (`status`, `detail`) of each entry of an application's history, oldest
/// first (empty where an entry has none).
pub fn history<'a>(status: &'a Value, field: &str) -> Vec<&'a str> {
    status["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|entry| entry[field].as_str().unwrap_or_default())
        .collect()
}

/// `text` must contain each of `expected`.
pub fn assert_contains_all(text: &str, expected: &[&str]) {
    for wanted in expected {
        assert!(text.contains(wanted), "missing {wanted:?} in:\n{text}");
    }
}

/// `text` must contain none of `unwanted`.
pub fn assert_contains_none(text: &str, unwanted: &[&str]) {
    for bad in unwanted {
        assert!(!text.contains(bad), "{bad:?} in:\n{text}");
    }
}

/// A conformance report (`kopplung conformance`) must grade each of `cases` as
/// `verdict` (`PASS` or `FAIL`).
pub fn assert_graded(report: &str, verdict: &str, cases: &[&str]) {
    for case in cases {
        assert!(
            report.contains(&format!("{verdict} {case}")),
            "{verdict} {case}: {report}"
        );
    }
}

/// The conformance report of a receiver that takes whatever comes: it fails, names each
/// of the [`FORGED_CASES`] and the `more` cases as failed (the first three in its
/// summary), and the valid message passed.
pub fn assert_careless_report(passed: bool, report: &str, more: &[&str]) {
    assert!(!passed, "{report}");
    assert_graded(report, "FAIL", &FORGED_CASES);
    assert_graded(report, "FAIL", more);
    assert_contains_all(
        report,
        &[
            "PASS valid",
            "failed: tampered-ciphertext, wrong-signer, expired-signer",
        ],
    );
}

/// Asks for `/healthz` on a raw keep-alive connection, which must answer 200 and stay
/// open (for tests of what the server does with it next).
pub async fn healthz_on(connection: &mut tokio::net::TcpStream, host: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    connection
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    let mut buffer = [0u8; 1024];
    let n = connection.read(&mut buffer).await.expect("read the answer");
    let answer = String::from_utf8_lossy(&buffer[..n]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The answer's `content-type` must start with `expected` (parameters may follow).
pub fn assert_content_type(headers: &reqwest::header::HeaderMap, expected: &str) {
    let content_type = header_text(headers, "content-type");
    assert!(content_type.starts_with(expected), "{content_type}");
}

/// The names in `dir`, sorted; none if it does not exist.
pub fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The kinds of the entries of an application's mailbox (`GET /api/v1/applications/{id}`).
pub fn mailbox_kinds(status: &serde_json::Value) -> Vec<String> {
    status["mailbox"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["kind"].as_str().map(str::to_owned))
        .collect()
}
