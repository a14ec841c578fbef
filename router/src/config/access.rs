//! `[admin]`, `[[client]]` and `[[clerk]]`: who may use the hub, and how each proves it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kopplung_adapters::registry::{ApiToken, is_sha256_hex};
use kopplung_core::identity::TrustLevel;
use serde::Deserialize;

use super::problems::Findings;

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
    /// A file holding the integration engineers' token (role `engineer`: the mapping
    /// workbench at `/workbench`, nothing of the admin API); absent: no workbench.
    #[serde(default)]
    pub engineer_token_file: Option<PathBuf>,
}

impl AdminConfig {
    pub(super) fn check(&self, findings: &mut Findings) {
        if self.auditor_token_file.as_ref() == Some(&self.token_file) {
            // One token for both roles would make every auditor an operator.
            findings.key(
                "admin",
                "auditor_token_file",
                "must not be the operators' token_file",
            );
        }
        if let Some(engineer) = &self.engineer_token_file
            && (engineer == &self.token_file || self.auditor_token_file.as_ref() == Some(engineer))
        {
            // An engineer's token must not open the operators' or auditors' views.
            findings.key(
                "admin",
                "engineer_token_file",
                "must not be the operators' token_file or the auditors' auditor_token_file",
            );
        }
    }
}

/// A submitting client (a portal, a form solution) and how it authenticates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    /// Its bearer token: `token_sha256` or `token_file`.
    #[serde(flatten)]
    pub token: ApiToken,
    /// The highest trust level this client may assert on its own, without an identity
    /// provider's proof (a legacy portal's password accounts); absent: it may not. Its
    /// messages say that the client vouched.
    #[serde(default)]
    pub asserts_up_to: Option<TrustLevel>,
}

/// The problems of a bearer token given as `token_sha256` or `token_file`, each with
/// its key; `required`: one of them must be there.
pub(super) fn check_token(token: &ApiToken, required: bool, mut found: impl FnMut(&str, &str)) {
    match (&token.sha256, &token.file) {
        (Some(_), Some(_)) => found("token_sha256 and token_file", "give one, not both"),
        (None, None) if required => found("token_sha256", "give token_sha256 or token_file"),
        _ => {}
    }
    if token
        .sha256
        .as_deref()
        .is_some_and(|hash| !is_sha256_hex(hash))
    {
        found("token_sha256", "must be 64 hex digits");
    }
}

pub(super) fn check_clients(clients: &[ClientConfig], findings: &mut Findings) {
    findings.ids("client", clients, |c| &c.id);
    for client in clients {
        check_token(&client.token, true, |key, message| {
            findings.entry("client", &client.id, key, message)
        });
    }
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

/// Checks the clerks; returns their ids.
pub(super) fn check_clerks<'a>(
    clerks: &'a [ClerkConfig],
    findings: &mut Findings,
) -> BTreeSet<&'a str> {
    let ids = findings.ids("clerk", clerks, |c| &c.id);
    for clerk in clerks {
        if clerk.password_argon2.is_some() == clerk.password_file.is_some() {
            findings.entry(
                "clerk",
                &clerk.id,
                "password_argon2",
                "give exactly one of password_argon2 and password_file",
            );
        }
    }
    ids
}
