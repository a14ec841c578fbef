use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::sink::PullSink;
use crate::transport::{ApiToken, BuildContext, CheckContext, Transport, is_sha256_hex};
use crate::{ConfigProblem, Error, Sink, files};

/// A procedure that collects its messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// The procedure's bearer token for the pull API.
    #[serde(flatten)]
    pub token: ApiToken,
    /// Announce each new message with a POST to this URL (optional; polling always works).
    #[serde(default)]
    pub callback_url: Option<String>,
    /// A file (relative to the data directory) holding the shared secret the callback is
    /// signed with (HMAC-SHA512). Required with `callback_url`.
    #[serde(default)]
    pub callback_secret_file: Option<PathBuf>,
}

impl Transport for PullConfig {
    fn validate(&self, _context: &CheckContext<'_>) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.token.sha256.is_some() == self.token.file.is_some() {
            problems.push(ConfigProblem::new(
                "token_sha256",
                "give exactly one of token_sha256 and token_file",
            ));
        }
        if let Some(hash) = &self.token.sha256
            && !is_sha256_hex(hash)
        {
            problems.push(ConfigProblem::new("token_sha256", "must be 64 hex digits"));
        }
        if self.callback_url.is_some() != self.callback_secret_file.is_some() {
            problems.push(ConfigProblem::new(
                "callback_secret_file",
                "give callback_url together with callback_secret_file",
            ));
        }
        if let Some(url) = &self.callback_url
            && !url
                .parse::<hyper::Uri>()
                .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")))
        {
            problems.push(ConfigProblem::new(
                "callback_url",
                format!("`{url}`: need an http:// or https:// URL"),
            ));
        }
        problems
    }

    fn build(&self, context: &BuildContext<'_>) -> Result<Arc<dyn Sink>, Error> {
        let callback = match (&self.callback_url, &self.callback_secret_file) {
            (Some(url), Some(file)) => {
                Some((url.as_str(), files::secret(&context.data_dir.join(file))?))
            }
            _ => None,
        };
        Ok(Arc::new(PullSink::new(context.procedure, callback)?))
    }

    /// "Delivering" only marks the message for collection: nothing to protect.
    fn default_max_in_flight(&self) -> u32 {
        64
    }

    fn api_token(&self) -> Option<&ApiToken> {
        Some(&self.token)
    }

    /// A procedure that collects may run once a day.
    fn default_receipt_deadline_secs(&self) -> u64 {
        24 * 3600
    }
}
