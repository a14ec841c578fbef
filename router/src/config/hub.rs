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
