//! `[server]`, `[limits]`, `[monitoring]` and `[store]`: where the hub listens, what it
//! admits, where it keeps its data.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::problems::Findings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The address the hub is reached at, for `Location` headers and printed hints.
    #[serde(default)]
    pub public_url: Option<String>,
}

impl ServerConfig {
    pub(super) fn check(&self, findings: &mut Findings) {
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            findings.key(
                "server",
                "public_url",
                format!("`{url}`: need an http:// or https:// URL"),
            );
        }
    }
}

/// A shared PostgreSQL store (several hub instances on one database).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// e.g. `postgres://kopplung@db.example/kopplung`. The password, if any, better comes
    /// from `PGPASSWORD` or `~/.pgpass` than from this file.
    pub postgres_url: String,
}

impl StoreConfig {
    pub(super) fn check(&self, findings: &mut Findings) {
        if !(self.postgres_url.starts_with("postgres://")
            || self.postgres_url.starts_with("postgresql://"))
        {
            // Not the URL itself: it may hold a password.
            findings.key(
                "store",
                "postgres_url",
                "need a postgres:// or postgresql:// URL",
            );
        }
    }
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

    pub(super) fn check(&self, findings: &mut Findings) {
        let mut web = |error: kopplung_web::Error| match error {
            kopplung_web::Error::Config { key, message } => findings.key("limits", key, message),
            other => findings.key("limits", "", other.to_string()),
        };
        if let Err(errors) = self.server().validate() {
            errors.into_iter().for_each(&mut web);
        }
        if let Err(error) = self.proxies().build() {
            web(error);
        }
        if self.max_unauthenticated_event_bytes < 1024
            || self.max_event_bytes < self.max_unauthenticated_event_bytes
        {
            findings.key(
                "limits",
                "max_unauthenticated_event_bytes",
                "need 1024 <= max_unauthenticated_event_bytes <= max_event_bytes",
            );
        }
        if self.event_max_age_secs == 0 {
            findings.key("limits", "event_max_age_secs", "must be at least 1");
        }
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

impl MonitoringConfig {
    pub(super) fn check(&self, server: &ServerConfig, findings: &mut Findings) {
        if let Some(listen) = self.listen
            && listen == server.listen
            && listen.port() != 0
        {
            findings.key(
                "monitoring",
                "listen",
                "must differ from [server] listen (or leave it out to serve monitoring there)",
            );
        }
    }
}
