//! The time and connection limits of a listener (`[limits]` of the configuration).

use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// What one listener allows a client. Every default holds against the attacks in
/// `docs/reliability.md` ("Hostile clients"). A front end reads it flattened into its
/// `[limits]`, which refuses unknown keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ServerLimits {
    /// A new connection must deliver a complete request head within this many seconds
    /// of being accepted, and a kept-alive one within this many seconds of its first
    /// byte; otherwise it is closed.
    pub header_timeout_secs: u64,
    /// A request's body must arrive completely within this many seconds of its head:
    /// `408` and the connection is closed.
    pub request_timeout_secs: u64,
    /// A kept-alive connection with no request for this many seconds is closed.
    pub idle_timeout_secs: u64,
    /// Open connections of the listener. At the cap, the oldest connection between
    /// requests is closed for the new one; if every connection is serving a request,
    /// the new one is refused at once (`503`). Never more than the process's file
    /// limit allows (see `docs/operations.md`).
    pub max_connections: usize,
    /// Open connections from one address (an IPv6 /64); trusted proxies are exempt.
    pub max_connections_per_peer: usize,
    /// The largest request head (request line and headers), in bytes.
    pub max_head_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout_secs: 30,
            request_timeout_secs: 120,
            idle_timeout_secs: 60,
            max_connections: 4096,
            max_connections_per_peer: 256,
            max_head_bytes: 64 * 1024,
        }
    }
}

/// hyper's smallest read buffer.
const MIN_HEAD_BYTES: usize = 8 * 1024;

impl ServerLimits {
    /// Every problem of the settings at once, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<Error>> {
        let mut problems = Vec::new();
        let mut positive = |key: &'static str, value: u64| {
            if value == 0 {
                problems.push(Error::Config {
                    key,
                    message: "must be at least 1".into(),
                });
            }
        };
        positive("header_timeout_secs", self.header_timeout_secs);
        positive("request_timeout_secs", self.request_timeout_secs);
        positive("idle_timeout_secs", self.idle_timeout_secs);
        positive("max_connections", self.max_connections as u64);
        positive(
            "max_connections_per_peer",
            self.max_connections_per_peer as u64,
        );
        if self.max_head_bytes < MIN_HEAD_BYTES {
            problems.push(Error::Config {
                key: "max_head_bytes",
                message: format!("must be at least {MIN_HEAD_BYTES}"),
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_setting_is_named() {
        let limits = ServerLimits {
            header_timeout_secs: 0,
            max_connections: 0,
            max_head_bytes: 100,
            ..ServerLimits::default()
        };
        let problems: Vec<String> = limits
            .validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("header_timeout_secs"));
        assert!(problems[1].contains("max_connections"));
        assert!(problems[2].contains("max_head_bytes"));
        assert!(ServerLimits::default().validate().is_ok());
    }

    #[test]
    fn limits_are_read_from_toml_with_defaults() {
        let limits: ServerLimits = toml::from_str("header_timeout_secs = 5").unwrap();
        assert_eq!(limits.header_timeout_secs, 5);
        assert_eq!(limits.max_connections, 4096);
    }
}
