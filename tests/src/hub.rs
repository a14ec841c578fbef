//! One hub under test: its configuration, data directory, PKI and process, and the
//! client API calls the tests make of it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    amqp_url, copy_dir, eventually, free_port, kopplung_bin, private_dir, shared, workspace,
    write_private,
};

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
    /// The procedures that stay FIT-Connect destinations (the demo's routing table
    /// offers every one; each costs an RSA-4096 key): with any, `[fitconnect]` is
    /// configured with the clients of [`crate::fitconnect`].
    pub fitconnect: Vec<&'static str>,
    /// Of those, the procedures that collect as FIT-Connect subscribers
    /// (`transport = "fitconnect"`, see [`crate::fitconnect::subscribe`]).
    pub fitconnect_subscribers: Vec<&'static str>,
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
            fitconnect: Vec::new(),
            fitconnect_subscribers: Vec::new(),
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

/// The integration engineers' token (the mapping workbench) of every test hub.
pub const ENGINEER_TOKEN: &str = "engineer-token-of-the-test-hub-0123456789";

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
        let mut routing = crate::fitconnect::keep_destinations(&routing, &setup.fitconnect);
        for procedure in &setup.fitconnect_subscribers {
            routing = crate::fitconnect::subscribe(&routing, procedure);
        }
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
        write_private(&data_dir.join("engineer-token"), ENGINEER_TOKEN.as_bytes());
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
        hub.issue_keys();
        for procedure in &setup.fitconnect_subscribers {
            crate::fitconnect::issue_subscriber_keys(&hub.pki_dir(), procedure);
        }
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
            "engineer-token",
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

    /// `kopplung keys init` for this hub's configuration: the demo PKI's missing keys
    /// and certificates (those of a procedure added to the routing table, say).
    pub fn issue_keys(&self) {
        let status = Command::new(kopplung_bin())
            .args(["keys", "init", "--dir"])
            .arg(self.pki_dir())
            .arg("--config")
            .arg(self.config_path())
            .stdout(Stdio::null())
            .status()
            .expect("kopplung keys init");
        assert!(status.success(), "kopplung keys init failed");
    }

    /// The routing table this hub reads (edit it, then reload).
    pub fn routing_path(&self) -> PathBuf {
        self.config_path().with_file_name("routing.toml")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/kopplung.toml")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    /// The exchange folder of `procedure` on the file drop (see [`HubSetup::file_drop`]).
    pub fn exchange_dir(&self, procedure: &str) -> PathBuf {
        self.data_dir().join("exchange").join(procedure)
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

# The test client vouches on its own for any level (the tests of the identity
# providers' assertions are tests/tests/intake_identity.rs).
[[client]]
id = "test"
token_file = "intake-token"
asserts_up_to = "hoch"

[[client]]
id = "other"
token_file = "other-token"

[admin]
token_file = "admin-token"
auditor_token_file = "auditor-token"
engineer_token_file = "engineer-token"

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
        let fitconnect = if setup.fitconnect.is_empty() {
            String::new()
        } else {
            let routing = std::fs::read_to_string(self.routing_path()).expect("routing");
            crate::fitconnect::configure(&self.data_dir(), &routing, &setup.fitconnect_subscribers)
        };
        let config = format!("{config}\n{fitconnect}\n{}\n", setup.extra_config);
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
        // Kept in the hub at once, so that dropping the hub kills it if the start fails.
        self.child = Some(child);
        let client = reqwest::Client::new();
        let healthz = self.url("/healthz");
        let log_file = self.dir.path().join("hub.log");
        let log = || std::fs::read_to_string(&log_file).unwrap_or_default();
        let child = &mut self.child;
        eventually(
            Duration::from_secs(30),
            Duration::from_millis(50),
            async || {
                if let Some(child) = child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    panic!("kopplung exited with {status} at start:\n{}", log());
                }
                client.get(&healthz).send().await.map(drop)
            },
            |_| format!("kopplung did not start:\n{}", log()),
        )
        .await;
    }

    /// Sends SIGHUP (reload the mappings).
    pub fn hangup(&self) {
        self.signal("HUP");
    }

    /// Sends the signal `name` (`HUP`, `STOP`, `CONT`) to the running hub.
    pub fn signal(&self, name: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([format!("-{name}"), child.id().to_string()])
                .status()
                .expect("kill");
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

    /// Polls `/metrics` until `series` has `value` (for up to 20 seconds).
    pub async fn wait_for_metric(&self, series: &str, value: f64) {
        eventually(
            Duration::from_secs(20),
            Duration::from_millis(50),
            async || match self.metric(series).await {
                Some(seen) if seen == value => Ok(()),
                seen => Err(seen),
            },
            |seen| format!("{series} is {seen:?}, not {value}:\n{}", self.log()),
        )
        .await;
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

    /// Submits each body in turn (with its idempotency key, if any), expecting 202 for
    /// each; the application ids in that order.
    pub async fn submit_all(
        &self,
        bodies: impl IntoIterator<Item = (Value, Option<String>)>,
    ) -> Vec<String> {
        let mut ids = Vec::new();
        for (body, key) in bodies {
            ids.push(self.submit_accepted(&body, key.as_deref()).await);
        }
        ids
    }

    /// The admin view of an application (any client's), as an operator sees it.
    pub async fn admin_view(&self, id: &str) -> Value {
        reqwest::Client::new()
            .get(self.url(&format!("/api/v1/admin/applications/{id}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the admin view")
            .json()
            .await
            .expect("its JSON")
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

    /// Submits `body` (expecting 202) and polls until the application's status is
    /// `status`: its id and that status.
    pub async fn submit_until(
        &self,
        body: &Value,
        status: &str,
        within: Duration,
    ) -> (String, Value) {
        let id = self.submit_accepted(body, None).await;
        let reached = self.wait_for_status(&id, status, within).await;
        (id, reached)
    }

    /// Polls until the application's status is `status`.
    pub async fn wait_for_status(&self, id: &str, status: &str, within: Duration) -> Value {
        self.wait_until(id, &format!("reach {status}"), within, |current| {
            current["status"] == status
        })
        .await
    }

    /// Waits until the application is delivered, and checks that it went to `procedure`.
    pub async fn wait_delivered_to(&self, id: &str, procedure: &str, within: Duration) -> Value {
        let status = self.wait_for_status(id, "delivered", within).await;
        assert_eq!(status["delivery"]["procedure"], procedure, "{status:#}");
        status
    }

    /// Polls until a delivery attempt of the application failed (`last_error` is set),
    /// for up to 20 seconds.
    pub async fn wait_for_failed_attempt(&self, id: &str) -> Value {
        self.wait_until(id, "fail an attempt", Duration::from_secs(20), |status| {
            status["delivery"]["last_error"].is_string()
        })
        .await
    }

    /// Polls until the application's status answer satisfies `done` (`what` says what
    /// it waits for, in the failure).
    pub async fn wait_until(
        &self,
        id: &str,
        what: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(
            within,
            Duration::from_millis(50),
            async || {
                let current = self.status(id).await;
                if done(&current) {
                    Ok(current)
                } else {
                    Err(current)
                }
            },
            |current| {
                format!(
                    "application {id} did not {what}: {current:#}\n{}",
                    self.log()
                )
            },
        )
        .await
    }

    /// Polls the hub's log until `done` holds for it; the log then.
    pub async fn wait_for_log(&self, within: Duration, done: impl Fn(&str) -> bool) -> String {
        eventually(
            within,
            Duration::from_millis(20),
            async || {
                let log = self.log();
                if done(&log) { Ok(log) } else { Err(log) }
            },
            |log| format!("the hub's log never showed what the test waits for:\n{log}"),
        )
        .await
    }

    /// Starts the reference procedures (`kopplung procedure-sim`) of `only` against this
    /// hub, deciding after a second; they log to `sim.log` beside the hub's log.
    pub fn procedure_sim(&self, only: &[&str]) -> Process {
        self.procedure_sim_to(&[self.url("")], only, 1)
    }

    /// The reference procedures of `only`, answering to the hub instances `hubs` in
    /// that order and deciding `decision_delay_secs` after the receipt. Their own data
    /// directory (the outbox) is [`TestHub::procedure_dir`], kept across restarts of
    /// the procedures; they append to `sim.log`.
    pub fn procedure_sim_to(
        &self,
        hubs: &[String],
        only: &[&str],
        decision_delay_secs: u64,
    ) -> Process {
        let mut command = self.sim_command(hubs, only, decision_delay_secs);
        Process(command.spawn().expect("kopplung procedure-sim"))
    }

    /// The reference procedures of `only` with more arguments of `kopplung
    /// procedure-sim` (e.g. `--ask-first <procedure>`), deciding after `decision_delay_secs`.
    pub fn procedure_sim_with(
        &self,
        only: &[&str],
        decision_delay_secs: u64,
        more: &[&str],
    ) -> Process {
        let mut command = self.sim_command(&[self.url("")], only, decision_delay_secs);
        command.args(more);
        Process(command.spawn().expect("kopplung procedure-sim"))
    }

    /// The reference procedures of `only`, trusting the hub certificates of the PEM file
    /// `hub_certificates` (the vendor's own trust, changed during a rotation; SIGHUP
    /// with [`Process::hangup`] makes them read it again).
    pub fn procedure_sim_trusting(&self, only: &[&str], hub_certificates: &Path) -> Process {
        let mut command = self.sim_command(&[self.url("")], only, 1);
        command.arg("--hub-certificates").arg(hub_certificates);
        Process(command.spawn().expect("kopplung procedure-sim"))
    }

    fn sim_command(&self, hubs: &[String], only: &[&str], decision_delay_secs: u64) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sim.log"))
            .expect("sim log");
        let mut command = Command::new(kopplung_bin());
        command
            .arg("procedure-sim")
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--state-dir")
            .arg(self.procedure_dir());
        for hub in hubs {
            command.arg("--hub").arg(hub);
        }
        for procedure in only {
            command.args(["--only", procedure]);
        }
        command
            .args(["--decision-delay-secs", &decision_delay_secs.to_string()])
            .stdout(Stdio::null())
            .stderr(log);
        command
    }

    /// The reference procedures' own data directory: `pending/` holds the answers no
    /// hub has taken yet, `refused/` those a hub refused for good.
    pub fn procedure_dir(&self) -> PathBuf {
        self.dir.path().join("procedure")
    }

    /// The reference procedures' log so far.
    pub fn sim_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sim.log")).unwrap_or_default()
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

/// A child process that is killed when the test lets go of it.
pub struct Process(pub Child);

impl Process {
    /// Sends SIGHUP (the reference procedures read their trust and keys again).
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.0.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.kill();
    }
}
