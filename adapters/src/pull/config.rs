use std::path::PathBuf;

use serde::Deserialize;

/// A procedure that collects its messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// Hex SHA-256 of the procedure's bearer token for the pull API.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Or a file holding the token, relative to the data directory.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Announce each new message with a POST to this URL (optional; polling always works).
    #[serde(default)]
    pub callback_url: Option<String>,
    /// A file (relative to the data directory) holding the shared secret the callback is
    /// signed with (HMAC-SHA512). Required with `callback_url`.
    #[serde(default)]
    pub callback_secret_file: Option<PathBuf>,
}
