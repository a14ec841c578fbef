//! `[fitconnect]` of `kopplung.toml` (the FIT-Connect edge: its clients, their tokens,
//! the metadata schema) and `[procedure.fitconnect]` of the routing table (a
//! procedure's destination).

use std::collections::BTreeSet;
use std::path::PathBuf;

use kopplung_adapters::registry::ApiToken;
use serde::Deserialize;
use uuid::Uuid;

use super::access::check_token;
use super::problems::Findings;

/// The FIT-Connect edge: online services submit (senders), procedures collect
/// (subscribers), as FIT-Connect's Submission API v1 defines it (`docs/fit-connect.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitConnectConfig {
    /// The key that signs the clients' access tokens (HMAC-SHA256, at least 32 bytes),
    /// relative to the data directory; `kopplung tokens init` creates it.
    pub token_key_file: PathBuf,
    /// How long an access token is valid.
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_secs: u64,
    /// FIT-Connect's metadata schema 1.0.0
    /// (`https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json`),
    /// against which every submission's metadata is checked; relative to the data
    /// directory (a file installed with FIT-Connect's tools, not part of the hub).
    pub metadata_schema: PathBuf,
    #[serde(default, rename = "client")]
    pub clients: Vec<FitClientConfig>,
}

fn default_token_lifetime() -> u64 {
    1800
}

/// A FIT-Connect client: an online service that submits, or a procedure that collects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitClientConfig {
    /// Its `client_id`.
    pub id: String,
    pub role: FitRole,
    /// Its `client_secret`: `token_sha256` (hex SHA-256) or `token_file`.
    #[serde(flatten)]
    pub secret: ApiToken,
    /// The destinations it may send to or collect from. A sender without the list may
    /// send to every destination (FIT-Connect's `send:region:DE`).
    #[serde(default)]
    pub destinations: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FitRole {
    Sender,
    Subscriber,
}

/// `[procedure.fitconnect]`: the procedure is a FIT-Connect destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// The destination's id (`destinationId`), as senders address it.
    pub destination: Uuid,
    /// The destination's encryption key and certificate, relative to the PKI folder;
    /// `fitconnect/<procedure>.key` and `.crt` without them.
    #[serde(default)]
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub certificate: Option<PathBuf>,
}

impl FitConnectConfig {
    pub(super) fn check(&self, findings: &mut Findings) {
        if self.token_lifetime_secs == 0 || self.token_lifetime_secs > 86_400 {
            findings.key(
                "fitconnect",
                "token_lifetime_secs",
                "must be between 1 and 86400",
            );
        }
        findings.ids("fitconnect.client", &self.clients, |c| &c.id);
        for client in &self.clients {
            check_token(&client.secret, true, |key, message| {
                findings.entry("fitconnect.client", &client.id, key, message)
            });
            if client.role == FitRole::Subscriber && client.destinations.is_none() {
                findings.entry(
                    "fitconnect.client",
                    &client.id,
                    "destinations",
                    "a subscriber collects only from the destinations it names",
                );
            }
        }
    }

    /// The destinations every client names must exist.
    pub(super) fn check_destinations(&self, known: &BTreeSet<Uuid>, findings: &mut Findings) {
        for client in &self.clients {
            for destination in client.destinations.iter().flatten() {
                if !known.contains(destination) {
                    findings.entry(
                        "fitconnect.client",
                        &client.id,
                        "destinations",
                        format!("no procedure has the destination {destination}"),
                    );
                }
            }
        }
    }
}
