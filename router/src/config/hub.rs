//! `[hub]`, `[signing]` and `[audit]`: the hub as the author of its messages, the key it
//! signs with, and the signed checkpoints of its audit trail.

use std::path::PathBuf;

use serde::Deserialize;

use super::problems::Findings;

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

pub(super) fn default_directory() -> String {
    "DVDV".into()
}
pub(super) fn default_directory_version() -> String {
    "2".into()
}

impl HubIdentity {
    pub(super) fn check(&self, findings: &mut Findings) {
        for (key, value) in [("kennung", &self.kennung), ("name", &self.name)] {
            if value.trim().is_empty() {
                findings.key(
                    "hub",
                    key,
                    "must not be empty (every message names its author)",
                );
            }
        }
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
    /// Staged rotation: the next signing certificate (PEM, relative to the PKI folder),
    /// published at once (`GET /api/v1/trust`), in use from `activate_at`.
    pub next_certificate: Option<PathBuf>,
    /// The next certificate's key (PEM, relative to the PKI folder, `chmod 600`).
    pub next_key: Option<PathBuf>,
    /// When the next certificate takes over (RFC 3339); without it, it stays published.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub activate_at: Option<time::OffsetDateTime>,
}

impl SigningConfig {
    pub(super) fn check(&self, findings: &mut Findings) {
        if self.pkcs12.is_some() != self.passphrase_env.is_some() {
            findings.key(
                "signing",
                "passphrase_env",
                "give pkcs12 together with passphrase_env",
            );
        }
        if self.next_certificate.is_some() != self.next_key.is_some() {
            findings.key(
                "signing",
                "next_key",
                "give next_certificate together with next_key",
            );
        }
        if self.activate_at.is_some() && self.next_certificate.is_none() {
            findings.key(
                "signing",
                "activate_at",
                "activates a next certificate: give next_certificate and next_key",
            );
        }
    }
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

impl AuditConfig {
    pub(super) fn check(&self, findings: &mut Findings) {
        if self.checkpoint_secs == 0 {
            findings.key("audit", "checkpoint_secs", "must be at least 1");
        }
    }
}
