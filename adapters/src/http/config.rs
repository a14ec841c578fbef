use std::path::PathBuf;

use serde::Deserialize;

/// One procedure's HTTP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// `http://` or `https://` URL the sealed message is POSTed to.
    pub url: String,
    /// How long establishing the connection (TCP and TLS) may take.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// How long the whole exchange may take, from connecting to the last byte of the answer.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// CA certificate (PEM) that the procedure's server certificate must chain to;
    /// the system's trust store otherwise. Relative to the PKI folder.
    #[serde(default)]
    pub server_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS, relative to the PKI folder.
    #[serde(default)]
    pub client_certificate: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

fn default_connect_timeout() -> u64 {
    5_000
}
fn default_timeout() -> u64 {
    30_000
}

impl HttpSinkConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout_ms: default_connect_timeout(),
            timeout_ms: default_timeout(),
            server_ca: None,
            client_certificate: None,
            client_key: None,
        }
    }

    /// The problem with this configuration, if any (for the config check).
    pub fn problem(&self) -> Option<String> {
        let Ok(uri) = self.url.parse::<hyper::Uri>() else {
            return Some(format!("url `{}` is not a URL", self.url));
        };
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Some(format!(
                "url `{}`: need http:// or https:// and a host",
                self.url
            ));
        }
        if self.connect_timeout_ms == 0
            || self.timeout_ms == 0
            || self.connect_timeout_ms > self.timeout_ms
            || self.timeout_ms > 80_000
        {
            return Some(
                "need 0 < connect_timeout_ms <= timeout_ms <= 80000 (one delivery attempt must end well within its lease)".into(),
            );
        }
        if self.client_certificate.is_some() != self.client_key.is_some() {
            return Some("give client_certificate together with client_key".into());
        }
        None
    }
}
