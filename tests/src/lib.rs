//! Harness of the end-to-end tests: runs the real `kopplung` binary as a child process
//! against the real RabbitMQ, and opens messages with the `openssl` command line as a
//! vendor would. A missing service fails the tests loudly; nothing is skipped.
#![forbid(unsafe_code)]

pub mod browser;
pub mod faults;
pub mod pki;
pub mod shared;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lapin::options::{BasicGetOptions, QueueDeleteOptions, QueuePurgeOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;

/// The workspace root (where `config/` and `mappings/` are).
/// Copies a folder tree (for a scratch copy of the mappings).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `kopplung` binary: `$KOPPLUNG_BIN`, or the one cargo built next to this test.
pub fn kopplung_bin() -> PathBuf {
    if let Ok(path) = std::env::var("KOPPLUNG_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/kopplung; a binary of this crate
    // (the benchmark) lives in target/<profile> itself.
    let dir = exe.parent().expect("target directory");
    let bin = if dir.ends_with("deps") {
        dir.parent().expect("target directory").join("kopplung")
    } else {
        dir.join("kopplung")
    };
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build --workspace --bins` (scripts/test does)",
        bin.display()
    );
    bin
}

pub fn amqp_url() -> String {
    std::env::var("KOPPLUNG_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A broker URL where nothing listens: deliveries wait in the outbox.
pub const UNREACHABLE_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:1/%2f";

pub async fn amqp() -> Connection {
    let url = amqp_url();
    Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!("RabbitMQ is not reachable at {url} ({e}); start it: rabbitmq-server -detached")
        })
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A folder of a data directory, `0700` as the hub wants it (`kopplung check`).
pub fn private_dir(dir: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .expect("private dir");
}

/// A secret of a data directory (a token), `0600` as the hub wants it.
pub fn write_private(path: &Path, content: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("private file");
    file.write_all(content).expect("write private file");
}

/// Now as RFC 3339, for the `issued_at` of receipts and events the tests sign (the hub
/// refuses events older than `[limits] event_max_age_secs`).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format now")
}

/// Now in seconds since the epoch, for the `iat` of Security Event Tokens.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Settings of one test hub.
pub struct HubSetup {
    pub amqp_url: String,
    pub max_body_bytes: usize,
    /// Edits the demo routing table before use (e.g. to remove a route).
    pub edit_routing: fn(String) -> String,
    /// Runs after the PKI is made and before the hub starts, with the PKI folder.
    pub before_start: fn(&Path),
    /// The mappings folder; the repository's by default.
    pub mappings: Option<PathBuf>,
    /// The routing table; the repository's `config/routing.toml` by default.
    pub routing: Option<PathBuf>,
    /// A further edit of the routing table that may capture values (a receiver's port).
    pub rewrite_routing: Option<std::sync::Arc<dyn Fn(String) -> String + Send + Sync>>,
    /// Appended to `kopplung.toml` (e.g. `[[clerk]]` sections).
    pub extra_config: String,
    /// `[delivery] lease_secs`: how soon another instance takes over a dead one's work.
    pub lease_secs: u64,
    /// `RUST_LOG` of the hub process, and extra arguments (e.g. `--log-format json`).
    pub rust_log: &'static str,
    pub extra_args: Vec<&'static str>,
    /// `[limits] request_timeout_secs` (the hub's default when `None`).
    pub request_timeout_secs: Option<u64>,
    /// `[limits] max_upload_bytes`: one streamed upload.
    pub max_upload_bytes: u64,
    /// More lines of `[limits]` (connection caps, deadlines).
    pub extra_limits: String,
}

/// Replaces the `[procedure.delivery]` section of `procedure` in a routing table with
/// `delivery` (TOML lines after the section header), e.g. to deliver over HTTP.
pub fn deliver_over(routing: &str, procedure: &str, delivery: &str) -> String {
    let start = routing
        .find(&format!("id = \"{procedure}\"\n"))
        .unwrap_or_else(|| panic!("no procedure {procedure}"));
    let section = start
        + routing[start..]
            .find("[procedure.delivery]\n")
            .expect("a delivery section");
    let body = section + "[procedure.delivery]\n".len();
    let end = routing[body..]
        .find("\n\n")
        .map_or(routing.len(), |i| body + i);
    format!(
        "{}{}{}",
        &routing[..body],
        delivery.trim_end(),
        &routing[end..]
    )
}

impl Default for HubSetup {
    fn default() -> Self {
        Self {
            amqp_url: amqp_url(),
            max_body_bytes: 24 * 1024 * 1024,
            edit_routing: |r| r,
            before_start: |_| {},
            mappings: None,
            routing: None,
            rewrite_routing: None,
            extra_config: String::new(),
            lease_secs: 120,
            rust_log: "info",
            extra_args: Vec::new(),
            request_timeout_secs: None,
            max_upload_bytes: 100 * 1024 * 1024,
            extra_limits: String::new(),
        }
    }
}

/// Writes the procedures' API tokens (claim-check downloads) that `routing` names as
/// `token_file = "procedure-tokens/<id>"`: see [`procedure_token`].
fn write_procedure_tokens(routing: &str, data_dir: &Path) {
    for line in routing.lines() {
        if let Some(procedure) = line
            .strip_prefix("token_file = \"procedure-tokens/")
            .and_then(|rest| rest.strip_suffix('"'))
        {
            let file = data_dir.join("procedure-tokens").join(procedure);
            private_dir(file.parent().expect("parent"));
            write_private(&file, procedure_token(procedure).as_bytes());
        }
    }
}

/// The API token of a procedure of the test hubs (`token_file =
/// "procedure-tokens/<id>"` in the routing table).
pub fn procedure_token(procedure: &str) -> String {
    format!("{procedure}-token-of-the-test-hub-0123456789")
}

/// The admin token of every test hub.
pub const ADMIN_TOKEN: &str = "admin-token-of-the-test-hub-0123456789";

/// The auditor token (read-only admin role) of every test hub.
pub const AUDITOR_TOKEN: &str = "auditor-token-of-the-test-hub-0123456789";

/// The token of the second client of every test hub.
pub const OTHER_TOKEN: &str = "other-client-token-0123456789abcdef";

/// One hub under test: its own config, data directory, port and queue names.
pub struct TestHub {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub token: String,
    /// Queue names are `<queue_prefix>.<procedure-id>`.
    pub queue_prefix: String,
    child: Option<Child>,
    rust_log: &'static str,
    extra_args: Vec<&'static str>,
}

impl TestHub {
    /// Writes the configuration (the demo's, with unique queue names), creates the
    /// PKI with `kopplung keys init`, and starts the hub.
    pub async fn start(setup: HubSetup) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let queue_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let root = workspace();
        let routing_file = setup
            .routing
            .clone()
            .unwrap_or_else(|| root.join("config/routing.toml"));
        let routing = std::fs::read_to_string(&routing_file)
            .expect("routing table")
            .replace("queue = \"kopplung.", &format!("queue = \"{queue_prefix}."));
        let routing = (setup.edit_routing)(routing);
        let routing = match &setup.rewrite_routing {
            Some(rewrite) => rewrite(routing),
            None => routing,
        };
        let config_dir = dir.path().join("config");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        let token = uuid::Uuid::new_v4().simple().to_string();
        let data_dir = dir.path().join("data");
        private_dir(&data_dir);
        write_procedure_tokens(&routing, &data_dir);
        std::fs::write(config_dir.join("routing.toml"), routing).expect("routing");
        write_private(&data_dir.join("intake-token"), token.as_bytes());
        // A second client, to show that clients see only their own applications.
        write_private(&data_dir.join("other-token"), OTHER_TOKEN.as_bytes());
        write_private(&data_dir.join("admin-token"), ADMIN_TOKEN.as_bytes());
        write_private(&data_dir.join("auditor-token"), AUDITOR_TOKEN.as_bytes());
        let hub = Self {
            dir,
            port: free_port(),
            token,
            queue_prefix,
            child: None,
            rust_log: setup.rust_log,
            extra_args: setup.extra_args.clone(),
        };
        hub.write_config(&setup);
        let status = Command::new(kopplung_bin())
            .args(["keys", "init", "--dir"])
            .arg(hub.pki_dir())
            .arg("--config")
            .arg(hub.config_path())
            .stdout(Stdio::null())
            .status()
            .expect("kopplung keys init");
        assert!(status.success(), "kopplung keys init failed");
        (setup.before_start)(&hub.pki_dir());
        let mut hub = hub;
        hub.spawn().await;
        hub
    }

    /// A second instance of the same hub (same routing table, keys and tokens; its own
    /// port and data directory), for a shared PostgreSQL store.
    pub async fn start_peer(&self, setup: &HubSetup) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("config")).expect("config dir");
        std::fs::copy(
            self.dir.path().join("config/routing.toml"),
            dir.path().join("config/routing.toml"),
        )
        .expect("routing");
        copy_dir(&self.pki_dir(), &dir.path().join("data/pki"));
        let routing =
            std::fs::read_to_string(dir.path().join("config/routing.toml")).expect("routing");
        write_procedure_tokens(&routing, &dir.path().join("data"));
        for file in [
            "intake-token",
            "other-token",
            "admin-token",
            "auditor-token",
        ] {
            std::fs::copy(
                self.data_dir().join(file),
                dir.path().join("data").join(file),
            )
            .expect("token");
        }
        let mut peer = Self {
            dir,
            port: free_port(),
            token: self.token.clone(),
            queue_prefix: self.queue_prefix.clone(),
            child: None,
            rust_log: setup.rust_log,
            extra_args: setup.extra_args.clone(),
        };
        peer.write_config(setup);
        peer.spawn().await;
        peer
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/kopplung.toml")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir().join("pki")
    }
    pub fn queue(&self, procedure: &str) -> String {
        format!("{}.{procedure}", self.queue_prefix)
    }
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Rewrites `kopplung.toml`, e.g. to point at another broker before a restart.
    pub fn write_config(&self, setup: &HubSetup) {
        let root = workspace();
        let config = format!(
            r#"
mappings = "{mappings}"
routing = "routing.toml"
regions = "{regions}"

[server]
listen = "127.0.0.1:{port}"

[limits]
max_body_bytes = {max_body}
{request_timeout}
max_upload_bytes = {max_upload}
{extra_limits}

[hub]
kennung = "kopplung:test"
name = "kopplung Test"

[amqp]
url = "{amqp}"
reconnect_base_ms = 100
reconnect_max_ms = 500
{amqp_timeouts}

[delivery]
base_delay_ms = 50
max_delay_ms = 500
lease_secs = {lease_secs}

[[client]]
id = "test"
token_file = "intake-token"

[[client]]
id = "other"
token_file = "other-token"

[admin]
token_file = "admin-token"
auditor_token_file = "auditor-token"

# The clerk of the demo's manual procedure (password: kopplung-test-clerk-password).
[[clerk]]
id = "demo-sachbearbeitung"
name = "Demo-Sachbearbeitung"
password_argon2 = "$argon2id$v=19$m=19456,t=2,p=1$0diLRVahFSArbIH9xYzzLw$EbS6xFduBPoi0UP1SfQlhjvofok6oWT8CHK2CDOsXy8"
"#,
            mappings = setup
                .mappings
                .clone()
                .unwrap_or_else(|| root.join("mappings"))
                .display(),
            regions = root.join("config/regions.csv").display(),
            port = self.port,
            max_body = setup.max_body_bytes,
            max_upload = setup.max_upload_bytes,
            request_timeout = setup
                .request_timeout_secs
                .map(|s| format!("request_timeout_secs = {s}"))
                .unwrap_or_default(),
            extra_limits = setup.extra_limits,
            amqp = setup.amqp_url,
            lease_secs = setup.lease_secs,
            // A short lease needs short broker timeouts: an attempt must end within it.
            amqp_timeouts = if setup.lease_secs < 60 {
                "connect_timeout_secs = 2\nconfirm_timeout_secs = 3"
            } else {
                ""
            },
        );
        let config = format!("{config}\n{}\n", setup.extra_config);
        std::fs::write(self.config_path(), config).expect("write config");
    }

    /// Starts the hub process and waits until it answers.
    pub async fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("hub.log")).expect("log file");
        let child = Command::new(kopplung_bin())
            .args(&self.extra_args)
            .arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .env("RUST_LOG", self.rust_log)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kopplung");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("kopplung exited with {status} at start:\n{}", self.log());
            }
            if client.get(self.url("/healthz")).send().await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kopplung did not start:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGHUP (reload the mappings).
    pub fn hangup(&self) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args(["-HUP", &child.id().to_string()])
                .status()
                .expect("kill -HUP");
            assert!(status.success());
        }
    }

    /// The value of a metric series from `/metrics`, e.g.
    /// `kopplung_mapping_reloads_total{outcome="applied"}`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    /// SIGTERM, then waits (up to `within`) for the process to exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running hub");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the hub did not stop within {within:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The hub process's id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hub.log")).unwrap_or_default()
    }

    pub async fn submit(&self, body: &Value, idempotency_key: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(self.url("/api/v1/applications"))
            .bearer_auth(&self.token)
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("submit")
    }

    /// Submits `body`, expects 202 and returns the application id.
    pub async fn submit_accepted(&self, body: &Value, idempotency_key: Option<&str>) -> String {
        let response = self.submit(body, idempotency_key).await;
        assert_eq!(response.status(), 202, "submission refused");
        let accepted: Value = response.json().await.expect("202 body");
        accepted["id"].as_str().expect("an id").to_owned()
    }

    pub async fn status(&self, id: &str) -> Value {
        reqwest::Client::new()
            .get(self.url(&format!("/api/v1/applications/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("status json")
    }

    /// Polls until the application's status is `status`.
    pub async fn wait_for_status(&self, id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let current = self.status(id).await;
            if current["status"] == status {
                return current;
            }
            assert!(
                Instant::now() < deadline,
                "application {id} did not reach {status}: {current:#}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Row counts of every table: the store's state, for "nothing stored" checks.
    pub fn store_counts(&self) -> Vec<(String, i64)> {
        let db = self.data_dir().join("kopplung.db");
        let tables = [
            "applications",
            "attachments",
            "deliveries",
            "idempotency_keys",
            "history",
        ];
        let output = shared::sqlite3(
            &db,
            &tables
                .iter()
                .map(|t| format!("SELECT '{t}', COUNT(*) FROM {t};"))
                .collect::<String>(),
            true,
        );
        output
            .lines()
            .filter_map(|line| {
                let (table, count) = line.split_once('|')?;
                Some((table.to_owned(), count.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A message taken from a queue.
pub struct Received {
    pub body: Vec<u8>,
    pub properties: BasicProperties,
}

impl Received {
    pub fn message_id(&self) -> String {
        self.properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

/// Takes every message from `queue` until none arrives for `quiet`.
pub async fn drain(connection: &Connection, queue: &str, quiet: Duration) -> Vec<Received> {
    let channel = connection.create_channel().await.expect("channel");
    let mut received = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        match channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
        {
            Ok(Some(message)) => {
                received.push(Received {
                    body: message.delivery.data.clone(),
                    properties: message.delivery.properties.clone(),
                });
                last = Instant::now();
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            // The queue does not exist yet: the hub declares it on first delivery.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Box::pin(drain(
                    connection,
                    queue,
                    quiet.saturating_sub(last.elapsed()),
                ))
                .await
                .into_iter()
                .chain(received)
                .collect();
            }
        }
    }
    received
}

pub async fn delete_queue(connection: &Connection, queue: &str) {
    if let Ok(channel) = connection.create_channel().await {
        let _ = channel
            .queue_purge(queue.into(), QueuePurgeOptions::default())
            .await;
        let _ = channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await;
    }
}

/// Opens a sealed message exactly as `docs/vendors.md` tells a vendor: `openssl cms`
/// decrypt with the procedure's key, then verify against the CA, checking that the
/// signer is the hub. Returns the XML.
pub fn open_with_openssl_cli(sealed: &[u8], pki: &Path, procedure: &str) -> String {
    open_cms(
        sealed,
        &pki.join(format!("procedures/{procedure}.crt")),
        &pki.join(format!("procedures/{procedure}.key")),
        &pki.join("ca.crt"),
        &pki.join("hub.crt"),
    )
}

/// The vendor's commands with explicit files: the recipient's certificate and key, the
/// CA, and the certificate of the hub that must have signed.
pub fn open_cms(sealed: &[u8], cert: &Path, key: &Path, ca: &Path, hub: &Path) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let message = work.path().join("nachricht.p7m");
    std::fs::write(&message, sealed).expect("write message");
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(work.path())
            .output()
            .expect("openssl on PATH");
        assert!(
            output.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(&[
        "cms",
        "-decrypt",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "nachricht.p7m",
        "-recip",
        &cert.to_string_lossy(),
        "-inkey",
        &key.to_string_lossy(),
        "-out",
        "signiert.der",
    ]);
    run(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "signiert.der",
        "-CAfile",
        &ca.to_string_lossy(),
        "-signer",
        "absender.pem",
        "-out",
        "nachricht.xml",
    ]);
    let hub_fingerprint = run(&[
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        &hub.to_string_lossy(),
    ]);
    let signer_fingerprint = run(&[
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        "absender.pem",
    ]);
    assert_eq!(signer_fingerprint, hub_fingerprint, "the signer is the hub");
    std::fs::read_to_string(work.path().join("nachricht.xml")).expect("decrypted XML")
}

/// Evaluates an XPath expression with `xmllint`, an XML parser independent of the
/// hub's own code, as a vendor's tooling would.
pub fn xpath(xml: &str, expression: &str) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("m.xml");
    std::fs::write(&file, xml).expect("write xml");
    let output = Command::new("xmllint")
        .arg("--xpath")
        .arg(expression)
        .arg(&file)
        .output()
        .expect("xmllint (apt-get install libxml2-utils)");
    assert!(
        output.status.success(),
        "xmllint --xpath {expression}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    // xmllint ends the result with a newline of its own.
    text.strip_suffix('\n').unwrap_or(&text).to_owned()
}

/// A TCP forwarder on loopback in front of the real broker, to make the broker
/// unreachable and reachable again without disturbing other tests' connections.
pub struct BrokerGate {
    pub port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl BrokerGate {
    /// A closed gate: connections to `port` are refused until [`BrokerGate::open`].
    pub fn closed() -> Self {
        Self {
            port: free_port(),
            task: None,
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts forwarding to the broker of [`amqp_url`] (host and port 5672 by default).
    pub async fn open(&mut self) {
        let upstream =
            std::env::var("KOPPLUNG_TEST_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".into());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the gate");
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }
}

impl Drop for BrokerGate {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The Python of a virtualenv with jwcrypto (a JOSE library of another ecosystem),
/// shared with the transformers' tests under `target/tmp/jose-venv`. Created once;
/// fails loudly when it cannot be.
pub fn python_with_jwcrypto() -> PathBuf {
    use std::sync::OnceLock;
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            // The vendors' tools of another ecosystem: a JOSE library and an OpenAPI
            // validator, pinned.
            const PACKAGES: [&str; 2] = ["jwcrypto==1.5.6", "openapi-spec-validator==0.7.1"];
            let marker = PACKAGES.join("+");
            let target = workspace().join("target/tmp");
            std::fs::create_dir_all(&target).expect("target/tmp");
            let venv = target.join("jose-venv");
            let ready = venv.join(format!("kopplung-ready-{marker}"));
            let lock = std::fs::File::create(target.join("jose-venv.lock")).expect("lock file");
            lock.lock().expect("lock");
            if !ready.is_file() {
                if venv.exists() {
                    std::fs::remove_dir_all(&venv).expect("remove old venv");
                }
                for command in [
                    Command::new("python3").arg("-m").arg("venv").arg(&venv),
                    Command::new(venv.join("bin/pip"))
                        .args(["install", "--quiet", "--disable-pip-version-check"])
                        .args(PACKAGES),
                ] {
                    let output = command.output().expect("python3");
                    assert!(
                        output.status.success(),
                        "setting up the Python virtualenv (jwcrypto, openapi-spec-validator) failed: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                std::fs::write(&ready, b"").expect("marker");
            }
            let _ = lock.unlock();
            venv.join("bin/python")
        })
        .clone()
}

/// Opens a `jose` message with jwcrypto exactly as docs/vendors.md shows
/// (`transformers/tests/jose_verify.py`), pinning the hub's certificate. Returns the XML.
pub fn open_jose_with_python(jwe: &[u8], pki: &Path, procedure: &str) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("nachricht.jwe");
    std::fs::write(&file, jwe).expect("write message");
    let fingerprint = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pki.join("hub.crt"))
        .output()
        .expect("openssl");
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .to_owned();
    let output = Command::new(python_with_jwcrypto())
        .arg(workspace().join("transformers/tests/jose_verify.py"))
        .arg(&file)
        .arg(pki.join(format!("procedures/{procedure}.crt")))
        .arg(pki.join(format!("procedures/{procedure}.key")))
        .arg(pki.join("ca.crt"))
        .arg(&fingerprint)
        .output()
        .expect("jose_verify.py");
    assert!(
        output.status.success(),
        "jwcrypto refused the message: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A receipt (event) signed as a `cms` procedure signs it, with `openssl cms -sign` and
/// the procedure's signing key from the demo PKI.
pub fn sign_cms_receipt(pki: &Path, procedure: &str, receipt: &Value) -> Vec<u8> {
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::write(work.path().join("receipt.json"), receipt.to_string()).expect("write");
    let output = Command::new("openssl")
        .args([
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-outform",
            "DER",
            "-md",
            "sha256",
            "-in",
            "receipt.json",
            "-out",
            "receipt.p7m",
            "-signer",
        ])
        .arg(pki.join(format!("procedures/{procedure}-signatur.crt")))
        .arg("-inkey")
        .arg(pki.join(format!("procedures/{procedure}-signatur.key")))
        .current_dir(work.path())
        .output()
        .expect("openssl on PATH");
    assert!(
        output.status.success(),
        "openssl cms -sign: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(work.path().join("receipt.p7m")).expect("signed receipt")
}

/// The hex SHA-256 of a token, as `token_sha256` in the configuration wants it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

/// A fresh, empty PostgreSQL database on the local server (127.0.0.1:5432), dropped
/// when the guard goes. Fails loudly if PostgreSQL does not answer.
pub struct PostgresDatabase {
    pub name: String,
}

impl PostgresDatabase {
    pub fn create() -> Self {
        let name = format!("kopplung_e2e_{}", uuid::Uuid::new_v4().simple());
        psql(&format!("CREATE DATABASE {name}"));
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Runs one statement on the `test` database as `postgres`.
pub fn psql(sql: &str) -> String {
    psql_in("test", sql)
}

/// Runs one statement on `database` as `postgres`; unaligned output.
pub fn psql_in(database: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            database,
            "-c",
        ])
        .arg(sql)
        .output()
        .expect("psql on PATH (PostgreSQL client)");
    assert!(
        output.status.success(),
        "PostgreSQL on 127.0.0.1:5432 must be running (scripts/test starts it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
