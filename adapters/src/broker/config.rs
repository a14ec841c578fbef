use std::time::Duration;

use serde::Deserialize;

use crate::{ConfigProblem, attempt_limit};

/// One delivery attempt may connect twice and wait for the confirm; it must end well
/// within the outbox lease however long that is.
const MAX_ATTEMPT_SECS: u64 = 80;

/// The broker connection, shared by all AMQP procedures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpBrokerConfig {
    /// e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// How long one connection attempt may take.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// How long to wait for the broker's confirm of one message.
    #[serde(default = "default_confirm_timeout")]
    pub confirm_timeout_secs: u64,
    /// Pause after a failed connection attempt, doubled per failure up to the maximum.
    #[serde(default = "default_reconnect_base")]
    pub reconnect_base_ms: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
}

fn default_connect_timeout() -> u64 {
    5
}
fn default_confirm_timeout() -> u64 {
    30
}
fn default_reconnect_base() -> u64 {
    500
}
fn default_reconnect_max() -> u64 {
    30_000
}

impl AmqpBrokerConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout_secs: default_connect_timeout(),
            confirm_timeout_secs: default_confirm_timeout(),
            reconnect_base_ms: default_reconnect_base(),
            reconnect_max_ms: default_reconnect_max(),
        }
    }

    /// Every problem of `[amqp]`; `lease` as in [`CheckContext`].
    pub fn validate(&self, lease: Option<Duration>) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        // The parser's own message would repeat the URL, password and all.
        if self.url.parse::<lapin::uri::AMQPUri>().is_err() {
            problems.push(ConfigProblem::new(
                "url",
                format!("`{}` is no amqp:// or amqps:// URL", self.redacted_url()),
            ));
        }
        if self.connect_timeout_secs == 0 {
            problems.push(ConfigProblem::new(
                "connect_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.confirm_timeout_secs == 0 {
            problems.push(ConfigProblem::new(
                "confirm_timeout_secs",
                "must be at least 1",
            ));
        }
        let attempt = self.attempt().as_secs();
        if attempt > MAX_ATTEMPT_SECS {
            problems.push(ConfigProblem::new(
                "confirm_timeout_secs",
                format!("2 * connect_timeout_secs + confirm_timeout_secs must be at most {MAX_ATTEMPT_SECS} (one delivery attempt must end well within its lease)"),
            ));
        } else if let Some(lease) = lease
            && Duration::from_secs(attempt) > attempt_limit(lease)
        {
            problems.push(ConfigProblem::new(
                "confirm_timeout_secs",
                format!(
                    "2 * connect_timeout_secs + confirm_timeout_secs must fit into three quarters of [delivery] lease_secs ({} s): a lease of at least {} s",
                    lease.as_secs(),
                    crate::minimum_lease(self.attempt()).as_secs()
                ),
            ));
        }
        if self.reconnect_base_ms == 0 || self.reconnect_max_ms < self.reconnect_base_ms {
            problems.push(ConfigProblem::new(
                "reconnect_max_ms",
                "need 0 < reconnect_base_ms <= reconnect_max_ms",
            ));
        }
        problems
    }

    /// The longest one delivery attempt may take: two connection attempts and the wait
    /// for the confirm (`2 * connect_timeout_secs + confirm_timeout_secs`).
    pub fn attempt(&self) -> Duration {
        Duration::from_secs(
            self.connect_timeout_secs
                .saturating_mul(2)
                .saturating_add(self.confirm_timeout_secs),
        )
    }

    /// The URL without its password, for logs and status pages.
    pub fn redacted_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.url[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{}{user}:***{}", &self.url[..scheme + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }
}
