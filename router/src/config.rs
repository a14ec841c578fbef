//! The hub's configuration: `kopplung.toml` (server, hub identity, broker, clients)
//! and the routing table it names (authorities, procedures, routes).
//!
//! Paths in `kopplung.toml` are relative to that file; `pki_dir` and `token_file`
//! are relative to the data directory; procedure certificates to the PKI folder.
//! Everything is checked at load time: a running hub only ever holds a valid config.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kopplung_adapters::amqp::{AmqpBrokerConfig, AmqpSinkConfig};
use kopplung_adapters::http::HttpSinkConfig;
use kopplung_adapters::pull::PullConfig;
use serde::Deserialize;

use crate::Error;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub monitoring: MonitoringConfig,
    pub hub: HubIdentity,
    /// The mapping folders, one per service.
    pub mappings: PathBuf,
    /// Authorities, procedures and routes.
    pub routing: PathBuf,
    /// The municipalities (ARS, name) the hub accepts as `region`.
    pub regions: PathBuf,
    #[serde(default = "default_pki_dir")]
    pub pki_dir: PathBuf,
    /// Where applications and the outbox live: SQLite in the data directory by default,
    /// or a PostgreSQL database shared by several hub instances.
    #[serde(default)]
    pub store: Option<StoreConfig>,
    pub amqp: Option<AmqpBrokerConfig>,
    #[serde(default)]
    pub delivery: RetryPolicy,
    pub signing: Option<SigningConfig>,
    pub admin: Option<AdminConfig>,
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientConfig>,
    /// Clerks of procedures without an interface (`transport = "manual"`).
    #[serde(default, rename = "clerk")]
    pub clerks: Vec<ClerkConfig>,
    /// When personal data is deleted after an application's final state; kept until an
    /// operator deletes it otherwise.
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
    /// The audit trail's signed checkpoints.
    #[serde(default)]
    pub audit: AuditConfig,
}

/// Signed checkpoints of the audit chain's head (see `core/src/audit/checkpoint.rs`):
/// written at start, every `checkpoint_secs` while the chain grows, and at shutdown.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub checkpoint_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_secs: 300,
        }
    }
}

/// Deletion of personal data (DSGVO): `days` after an application was decided or
/// rejected, its form data, attachments, sealed message, documents and mailbox texts
/// are deleted; ids, states, history and the audit trail's hashes stay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days after the final state, for every service without its own.
    pub days: u32,
    /// Days per service (LeiKa key = days).
    #[serde(default)]
    pub service: BTreeMap<String, u32>,
    /// How often the hub looks for what is due (seconds).
    #[serde(default = "default_sweep_secs")]
    pub sweep_secs: u64,
}

fn default_sweep_secs() -> u64 {
    3600
}

impl RetentionConfig {
    /// The retention of one service in days.
    pub fn days_for(&self, service: &str) -> u32 {
        self.service.get(service).copied().unwrap_or(self.days)
    }
}

fn default_pki_dir() -> PathBuf {
    "pki".into()
}

/// A shared PostgreSQL store (several hub instances on one database).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// e.g. `postgres://kopplung@db.example/kopplung`. The password, if any, better comes
    /// from `PGPASSWORD` or `~/.pgpass` than from this file.
    pub postgres_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The address the hub is reached at, for `Location` headers and printed hints.
    #[serde(default)]
    pub public_url: Option<String>,
}

/// Limits of requests and connections (`[limits]`). Over them a request is refused
/// and nothing is stored; see `docs/operations.md` and, for the attacks they answer,
/// `docs/reliability.md` ("Hostile clients").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// An application request (form and inline attachments, base64).
    pub max_body_bytes: usize,
    /// One attachment uploaded on its own (`POST /api/v1/attachments`), streamed.
    pub max_upload_bytes: u64,
    /// Uploads no application names are removed after this many hours.
    pub upload_ttl_hours: u32,
    /// A request's body must arrive completely within this many seconds: `408`.
    pub request_timeout_secs: u64,
    /// A connection must send a complete request head within this many seconds of its
    /// accept (kept alive: of its first byte), or it is closed.
    pub header_timeout_secs: u64,
    /// A kept-alive connection idle for this many seconds is closed.
    pub idle_timeout_secs: u64,
    /// Open connections of the listener (within the open file limit).
    pub max_connections: usize,
    /// Open connections from one address (IPv6: one /64); trusted proxies are exempt.
    pub max_connections_per_peer: usize,
    /// The largest request head in bytes.
    pub max_head_bytes: usize,
    /// A receipt or event without the procedure's token is read up to this size;
    /// with the token up to `max_event_bytes`.
    pub max_unauthenticated_event_bytes: usize,
    /// A receipt or event with the procedure's token (a decision with its document).
    pub max_event_bytes: usize,
    /// How far a receipt's or event's `issued_at` may lie in the future (clock skew).
    pub event_clock_skew_secs: u64,
    /// How old a receipt or event may be when it arrives (a procedure that resends
    /// after an outage must do so within this time).
    pub event_max_age_secs: u64,
    /// Reverse proxies whose client address header is believed (addresses or CIDR).
    pub trusted_proxies: Vec<String>,
    /// Their header; `X-Forwarded-For` if not given.
    pub client_address_header: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        let server = kopplung_web::ServerLimits::default();
        Self {
            // Three 5 MiB photos, base64-encoded, plus the form.
            max_body_bytes: 24 * 1024 * 1024,
            max_upload_bytes: 100 * 1024 * 1024,
            upload_ttl_hours: 24,
            request_timeout_secs: server.request_timeout_secs,
            header_timeout_secs: server.header_timeout_secs,
            idle_timeout_secs: server.idle_timeout_secs,
            max_connections: server.max_connections,
            max_connections_per_peer: server.max_connections_per_peer,
            max_head_bytes: server.max_head_bytes,
            max_unauthenticated_event_bytes: 64 * 1024,
            max_event_bytes: 16 * 1024 * 1024,
            event_clock_skew_secs: 300,
            event_max_age_secs: 7 * 24 * 3600,
            trusted_proxies: Vec::new(),
            client_address_header: None,
        }
    }
}

impl Limits {
    /// The limits of the hub's listener.
    pub fn server(&self) -> kopplung_web::ServerLimits {
        kopplung_web::ServerLimits {
            header_timeout_secs: self.header_timeout_secs,
            request_timeout_secs: self.request_timeout_secs,
            idle_timeout_secs: self.idle_timeout_secs,
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            max_head_bytes: self.max_head_bytes,
        }
    }

    /// Who is a trusted proxy.
    pub fn proxies(&self) -> kopplung_web::ProxyConfig {
        kopplung_web::ProxyConfig {
            trusted_proxies: self.trusted_proxies.clone(),
            client_address_header: self.client_address_header.clone(),
        }
    }

    /// Every problem of the section at once.
    fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = match self.server().validate() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
        if let Err(e) = self.proxies().build() {
            problems.push(e.to_string());
        }
        if self.max_unauthenticated_event_bytes < 1024
            || self.max_event_bytes < self.max_unauthenticated_event_bytes
        {
            problems.push(
                "[limits] max_unauthenticated_event_bytes: need 1024 <= max_unauthenticated_event_bytes <= max_event_bytes".into(),
            );
        }
        if self.event_max_age_secs == 0 {
            problems.push("[limits] event_max_age_secs: must be at least 1".into());
        }
        problems
    }
}

/// Where `/metrics` and `/readyz` are served (`[monitoring]`): on the public listener
/// by default; with `listen`, only on that separate listener; with `token_file`, only
/// to requests that carry that bearer token.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    pub listen: Option<SocketAddr>,
    /// Relative to the data directory.
    pub token_file: Option<PathBuf>,
}

/// The hub as the author (`autor`) of its messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubIdentity {
    pub kennung: String,
    pub name: String,
    #[serde(default = "default_directory")]
    pub verzeichnisdienst: String,
    #[serde(default = "default_directory_version")]
    pub verzeichnisdienst_list_version: String,
}

fn default_directory() -> String {
    "DVDV".into()
}
fn default_directory_version() -> String {
    "2".into()
}

/// When to try a failed delivery again: exponential backoff with full jitter, and when
/// to give up (dead letter). Waiting for an unreachable broker is not an attempt.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "default_base_delay")]
    pub base_delay_ms: u64,
    #[serde(default = "default_max_delay")]
    pub max_delay_ms: u64,
    /// Attempts before the message is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long an instance holds a claimed outbox entry (`[delivery]` of kopplung.toml
    /// only): after a crash, another instance takes the entry over once this has passed.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

fn default_lease_secs() -> u64 {
    120
}

fn default_base_delay() -> u64 {
    1_000
}
fn default_max_delay() -> u64 {
    60_000
}
fn default_max_attempts() -> u32 {
    10
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay_ms: default_base_delay(),
            max_delay_ms: default_max_delay(),
            max_attempts: default_max_attempts(),
            lease_secs: default_lease_secs(),
        }
    }
}

/// How operators authenticate at the admin API (`/api/v1/admin/…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// A file holding the operators' token (role `operator`: read, retry, replay),
    /// relative to the data directory.
    pub token_file: PathBuf,
    /// A file holding the auditors' token (role `auditor`: read only).
    #[serde(default)]
    pub auditor_token_file: Option<PathBuf>,
}

/// A submitting client (a portal, a form solution) and how it authenticates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    /// Hex SHA-256 of the bearer token: the config need not hold the secret itself.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// A file holding the token, relative to the data directory.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// A clerk who reads applications in the hub's clerk inbox (`/inbox`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClerkConfig {
    pub id: String,
    /// The name shown in the inbox and in the history ("taken over by …").
    pub name: String,
    /// The password as an argon2id PHC string (`kopplung clerk hash-password`).
    #[serde(default)]
    pub password_argon2: Option<String>,
    /// Or a file holding the password, relative to the data directory (the demo's).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingFile {
    #[serde(default, rename = "authority")]
    pub authorities: Vec<Authority>,
    #[serde(default, rename = "procedure")]
    pub procedures: Vec<ProcedureConfig>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    pub id: String,
    pub name: String,
    /// Identifier in the directory service (DVDV).
    pub kennung: String,
    #[serde(default = "default_directory")]
    pub verzeichnisdienst: String,
    #[serde(default = "default_directory_version")]
    pub verzeichnisdienst_list_version: String,
    /// What the portal's Behördenkatalog shows (all optional, public information).
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    /// Opening hours, one line per entry (e.g. `Mo, Mi 9–12 Uhr`).
    #[serde(default)]
    pub opening_hours: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureConfig {
    pub id: String,
    pub authority: String,
    /// How the message is protected; every transport but `manual` needs one.
    #[serde(default)]
    pub envelope: Option<Envelope>,
    /// The procedure's encryption certificate, relative to the PKI folder.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// Several certificates with overlapping validity, for rotation: each message is
    /// sealed for the newest one that is valid now.
    #[serde(default)]
    pub certificates: Vec<PathBuf>,
    /// The procedure's signing certificate, against which its receipts are verified
    /// (relative to the PKI folder). Without it, receipts are refused.
    #[serde(default)]
    pub receipt_certificate: Option<PathBuf>,
    pub delivery: DeliveryConfig,
    /// This procedure's retry policy; `[delivery]` of kopplung.toml otherwise.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// Deliveries to this procedure at once: a slow procedure holds at most this many
    /// of the hub's delivery slots, so the others go on.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// The procedure's bearer token for the hub's API (hex SHA-256, or a file relative
    /// to the data directory): with it, it fetches attachments by claim check. A pull
    /// procedure has its token in `[delivery]`.
    #[serde(default)]
    pub token_sha256: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

fn default_max_in_flight() -> u32 {
    8
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Envelope {
    /// CMS SignedData (ECDSA) inside AuthEnvelopedData (ECDH, AES-256-GCM).
    Cms,
    /// JWS (ES256) inside a compact JWE (RSA-OAEP-256, A256GCM), FIT-Connect style.
    Jose,
}

impl ProcedureConfig {
    /// The certificate files, relative to the PKI folder.
    pub fn certificate_paths(&self) -> Vec<PathBuf> {
        self.certificate
            .iter()
            .chain(self.certificates.iter())
            .cloned()
            .collect()
    }
}

/// Where the hub's signing identity comes from. Default: `hub.crt` and `hub.key` in the
/// PKI folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// A PKCS#12 file (relative to the PKI folder) instead of PEM files.
    pub pkcs12: Option<PathBuf>,
    /// The environment variable that holds the PKCS#12 passphrase.
    pub passphrase_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "transport", rename_all = "lowercase")]
pub enum DeliveryConfig {
    /// Level 3: the procedure's queue on RabbitMQ.
    Amqp(AmqpSinkConfig),
    /// Level 2: POST to the procedure's URL.
    Http(HttpSinkConfig),
    /// Level 1: the procedure collects its messages from the pull API.
    Pull(PullConfig),
    /// Level 0: a clerk reads the application in the hub's clerk inbox.
    Manual(ManualConfig),
}

impl DeliveryConfig {
    pub fn transport(&self) -> &'static str {
        match self {
            Self::Amqp(_) => "amqp",
            Self::Http(_) => "http",
            Self::Pull(_) => "pull",
            Self::Manual(_) => "manual",
        }
    }
}

/// A procedure without an interface: which clerks may take over its applications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualConfig {
    pub clerks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// LeiKa key of the service.
    pub service: String,
    /// ARS or a prefix of it (`14612` = every municipality in Dresden).
    pub region: String,
    pub procedure: String,
}

/// A loaded configuration with every path resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (for reloads).
    pub source: PathBuf,
    pub file: FileConfig,
    pub routing: RoutingFile,
    pub mappings_dir: PathBuf,
    pub regions_file: PathBuf,
    pub data_dir: PathBuf,
    pub pki_dir: PathBuf,
}

impl Config {
    /// Reads `kopplung.toml` and its routing table and checks that they fit together.
    pub fn load(path: &Path, data_dir: &Path) -> Result<Self, Error> {
        let file: FileConfig = read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let routing_path = base.join(&file.routing);
        let routing: RoutingFile = read_toml(&routing_path)?;
        let config = Self {
            source: path.to_owned(),
            mappings_dir: base.join(&file.mappings),
            regions_file: base.join(&file.regions),
            pki_dir: data_dir.join(&file.pki_dir),
            data_dir: data_dir.to_owned(),
            file,
            routing,
        };
        config.check(path, &routing_path)?;
        Ok(config)
    }

    fn check(&self, main: &Path, routing: &Path) -> Result<(), Error> {
        let invalid = |file: &Path, message: String| Error::Config {
            file: file.to_owned(),
            message,
        };
        let problems = self.file.limits.problems();
        if !problems.is_empty() {
            return Err(invalid(main, problems.join("; ")));
        }
        let mut clients = BTreeSet::new();
        for client in &self.file.clients {
            if !clients.insert(client.id.as_str()) {
                return Err(invalid(
                    main,
                    format!("client `{}` is defined twice", client.id),
                ));
            }
            if client.token_sha256.is_some() == client.token_file.is_some() {
                return Err(invalid(
                    main,
                    format!(
                        "client `{}`: give exactly one of token_sha256 and token_file",
                        client.id
                    ),
                ));
            }
            if let Some(hash) = &client.token_sha256
                && (hash.len() != 64 || hex::decode(hash).is_err())
            {
                return Err(invalid(
                    main,
                    format!("client `{}`: token_sha256 must be 64 hex digits", client.id),
                ));
            }
        }
        if self.file.audit.checkpoint_secs == 0 {
            return Err(invalid(
                main,
                "[audit]: checkpoint_secs must be at least 1".into(),
            ));
        }
        if let Some(signing) = &self.file.signing
            && signing.pkcs12.is_some() != signing.passphrase_env.is_some()
        {
            return Err(invalid(
                main,
                "[signing]: give pkcs12 together with passphrase_env".into(),
            ));
        }
        let check_policy = |policy: &RetryPolicy, file: &Path, at: &str| {
            if policy.base_delay_ms < 10
                || policy.max_delay_ms < policy.base_delay_ms
                || policy.max_delay_ms > 86_400_000
                || policy.max_attempts == 0
            {
                return Err(invalid(
                    file,
                    format!(
                        "{at}: need 10 <= base_delay_ms <= max_delay_ms <= 86400000 (one day) and max_attempts >= 1"
                    ),
                ));
            }
            Ok(())
        };
        check_policy(&self.file.delivery, main, "[delivery]")?;
        let lease = self.file.delivery.lease_secs;
        if !(5..=3600).contains(&lease) {
            return Err(invalid(
                main,
                "[delivery]: lease_secs must be 5 to 3600".into(),
            ));
        }
        // One attempt is cut off at three quarters of the lease: the transports' own
        // timeouts must fit into that.
        let limit_ms = lease * 750;
        if let Some(amqp) = &self.file.amqp {
            let attempt_ms = (amqp.connect_timeout_secs * 2 + amqp.confirm_timeout_secs) * 1000;
            if attempt_ms > limit_ms {
                return Err(invalid(
                    main,
                    format!(
                        "[amqp]: 2 * connect_timeout_secs + confirm_timeout_secs must fit into three quarters of [delivery] lease_secs ({lease} s)"
                    ),
                ));
            }
        }
        for procedure in &self.routing.procedures {
            if let DeliveryConfig::Http(http) = &procedure.delivery
                && http.timeout_ms > limit_ms
            {
                return Err(invalid(
                    routing,
                    format!(
                        "procedure `{}`: timeout_ms must fit into three quarters of [delivery] lease_secs ({lease} s)",
                        procedure.id
                    ),
                ));
            }
        }
        for procedure in &self.routing.procedures {
            if let Some(policy) = &procedure.retry {
                check_policy(
                    policy,
                    routing,
                    &format!("procedure `{}` retry", procedure.id),
                )?;
            }
        }
        if let Some(amqp) = &self.file.amqp {
            let attempt = amqp
                .connect_timeout_secs
                .saturating_mul(2)
                .saturating_add(amqp.confirm_timeout_secs);
            if amqp.connect_timeout_secs == 0 || amqp.confirm_timeout_secs == 0 || attempt > 80 {
                return Err(invalid(
                    main,
                    "[amqp]: timeouts must be positive and 2 * connect_timeout_secs + confirm_timeout_secs at most 80 (one delivery attempt must end well within its lease)".into(),
                ));
            }
            if amqp.reconnect_base_ms == 0 || amqp.reconnect_max_ms < amqp.reconnect_base_ms {
                return Err(invalid(
                    main,
                    "[amqp]: need 0 < reconnect_base_ms <= reconnect_max_ms".into(),
                ));
            }
        }
        if let Some(retention) = &self.file.retention {
            if retention.sweep_secs == 0 || retention.days > 36_500 {
                return Err(invalid(
                    main,
                    "[retention]: need sweep_secs >= 1 and days <= 36500".into(),
                ));
            }
            for (service, days) in &retention.service {
                if service.len() != 14 || !service.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(
                        main,
                        format!("[retention.service]: `{service}` is no 14-digit LeiKa key"),
                    ));
                }
                if *days > 36_500 {
                    return Err(invalid(
                        main,
                        format!("[retention.service] {service}: at most 36500 days"),
                    ));
                }
            }
        }
        let mut clerks = BTreeSet::new();
        for clerk in &self.file.clerks {
            if !clerks.insert(clerk.id.as_str()) {
                return Err(invalid(
                    main,
                    format!("clerk `{}` is defined twice", clerk.id),
                ));
            }
            if clerk.password_argon2.is_some() == clerk.password_file.is_some() {
                return Err(invalid(
                    main,
                    format!(
                        "clerk `{}`: give exactly one of password_argon2 and password_file",
                        clerk.id
                    ),
                ));
            }
        }
        let mut authorities = BTreeSet::new();
        for authority in &self.routing.authorities {
            if !authorities.insert(authority.id.as_str()) {
                return Err(invalid(
                    routing,
                    format!("authority `{}` is defined twice", authority.id),
                ));
            }
        }
        let mut procedures = BTreeMap::new();
        for procedure in &self.routing.procedures {
            let valid_id = !procedure.id.is_empty()
                && procedure
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid_id {
                return Err(invalid(
                    routing,
                    format!(
                        "procedure `{}`: ids use lowercase letters, digits and `-`",
                        procedure.id
                    ),
                ));
            }
            if procedures
                .insert(procedure.id.as_str(), procedure)
                .is_some()
            {
                return Err(invalid(
                    routing,
                    format!("procedure `{}` is defined twice", procedure.id),
                ));
            }
            let manual = matches!(procedure.delivery, DeliveryConfig::Manual(_));
            if manual {
                if procedure.envelope.is_some() || !procedure.certificate_paths().is_empty() {
                    return Err(invalid(
                        routing,
                        format!(
                            "procedure `{}`: a manual procedure is read in the clerk inbox; it takes no envelope and no certificate",
                            procedure.id
                        ),
                    ));
                }
            } else if procedure.envelope.is_none() {
                return Err(invalid(
                    routing,
                    format!(
                        "procedure `{}`: give `envelope` (cms or jose)",
                        procedure.id
                    ),
                ));
            } else if procedure.certificate_paths().is_empty() {
                return Err(invalid(
                    routing,
                    format!(
                        "procedure `{}`: give `certificate` or `certificates`",
                        procedure.id
                    ),
                ));
            }
            if procedure.max_in_flight == 0 || procedure.max_in_flight > 256 {
                return Err(invalid(
                    routing,
                    format!(
                        "procedure `{}`: max_in_flight must be 1 to 256",
                        procedure.id
                    ),
                ));
            }
            if !authorities.contains(procedure.authority.as_str()) {
                return Err(invalid(
                    routing,
                    format!(
                        "procedure `{}`: unknown authority `{}`",
                        procedure.id, procedure.authority
                    ),
                ));
            }
            match &procedure.delivery {
                DeliveryConfig::Amqp(_) if self.file.amqp.is_none() => {
                    return Err(invalid(
                        main,
                        format!(
                            "procedure `{}` is delivered over AMQP, but there is no [amqp] section",
                            procedure.id
                        ),
                    ));
                }
                DeliveryConfig::Amqp(_) => {}
                DeliveryConfig::Http(http) => {
                    if let Some(problem) = http.problem() {
                        return Err(invalid(
                            routing,
                            format!("procedure `{}` [delivery]: {problem}", procedure.id),
                        ));
                    }
                }
                _ if procedure.token_sha256.is_some() && procedure.token_file.is_some() => {
                    return Err(invalid(
                        routing,
                        format!(
                            "procedure `{}`: give token_sha256 or token_file, not both",
                            procedure.id
                        ),
                    ));
                }
                DeliveryConfig::Pull(pull) => {
                    if pull.token_sha256.is_some() == pull.token_file.is_some() {
                        return Err(invalid(
                            routing,
                            format!(
                                "procedure `{}` [delivery]: give exactly one of token_sha256 and token_file",
                                procedure.id
                            ),
                        ));
                    }
                    if pull.callback_url.is_some() != pull.callback_secret_file.is_some() {
                        return Err(invalid(
                            routing,
                            format!(
                                "procedure `{}` [delivery]: give callback_url together with callback_secret_file",
                                procedure.id
                            ),
                        ));
                    }
                }
                DeliveryConfig::Manual(manual) => {
                    if manual.clerks.is_empty() {
                        return Err(invalid(
                            routing,
                            format!("procedure `{}`: name at least one clerk", procedure.id),
                        ));
                    }
                    for clerk in &manual.clerks {
                        if !clerks.contains(clerk.as_str()) {
                            return Err(invalid(
                                routing,
                                format!(
                                    "procedure `{}`: unknown clerk `{clerk}` (no [[clerk]] with this id in {})",
                                    procedure.id,
                                    main.display()
                                ),
                            ));
                        }
                    }
                }
            }
        }
        let mut routes = BTreeSet::new();
        for route in &self.routing.routes {
            if route.service.len() != 14 || !route.service.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    routing,
                    format!(
                        "route {}: service must be a 14-digit LeiKa key",
                        route.service
                    ),
                ));
            }
            if route.region.is_empty()
                || route.region.len() > 12
                || !route.region.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid(
                    routing,
                    format!(
                        "route {} / {}: region must be an ARS or a prefix of one (1 to 12 digits)",
                        route.service, route.region
                    ),
                ));
            }
            if !procedures.contains_key(route.procedure.as_str()) {
                return Err(invalid(
                    routing,
                    format!(
                        "route {} / {}: unknown procedure `{}`",
                        route.service, route.region, route.procedure
                    ),
                ));
            }
            if !routes.insert((route.service.as_str(), route.region.as_str())) {
                return Err(invalid(
                    routing,
                    format!(
                        "route {} / {} is defined twice (ambiguous)",
                        route.service, route.region
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn procedure(&self, id: &str) -> Option<&ProcedureConfig> {
        self.routing.procedures.iter().find(|p| p.id == id)
    }

    pub fn authority(&self, id: &str) -> Option<&Authority> {
        self.routing.authorities.iter().find(|a| a.id == id)
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        file: path.to_owned(),
        message: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| Error::Config {
        file: path.to_owned(),
        message: describe_toml_error(&text, &e),
    })
}

/// `line N: message` for a TOML error, so an operator finds the spot.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}
