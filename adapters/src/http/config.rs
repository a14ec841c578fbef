use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::sink::{HttpSink, HttpTls};
use crate::transport::{BuildContext, CheckContext, Transport};
use crate::{ConfigProblem, Error, Sink, files};

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
    /// Whether `url` may be plain `http://`. Messages are sealed end to end, but the
    /// procedure's API token and the transport metadata are not; only for a
    /// TLS-terminating proxy on the procedure's own host, or for tests.
    #[serde(default)]
    pub allow_plain_http: bool,
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
            allow_plain_http: false,
        }
    }

    /// Every problem of these settings on their own (the sink refuses to start with one).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        match self.url.parse::<hyper::Uri>() {
            Err(_) => problems.push(ConfigProblem::new(
                "url",
                format!("`{}` is not a URL", self.url),
            )),
            Ok(uri)
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() =>
            {
                problems.push(ConfigProblem::new(
                    "url",
                    format!("`{}`: need http:// or https:// and a host", self.url),
                ));
            }
            Ok(uri) if uri.scheme_str() == Some("http") && !self.allow_plain_http => {
                problems.push(ConfigProblem::new(
                    "url",
                    format!(
                        "`{}` is plain HTTP: use https:// (TLS 1.2 or newer), or set allow_plain_http = true where a TLS-terminating proxy runs on the procedure's host",
                        self.url
                    ),
                ));
            }
            Ok(_) => {}
        }
        if self.connect_timeout_ms == 0
            || self.timeout_ms == 0
            || self.connect_timeout_ms > self.timeout_ms
            || self.timeout_ms > 80_000
        {
            problems.push(ConfigProblem::new(
                "timeout_ms",
                "need 0 < connect_timeout_ms <= timeout_ms <= 80000 (one delivery attempt must end well within its lease)",
            ));
        }
        if self.client_certificate.is_some() != self.client_key.is_some() {
            problems.push(ConfigProblem::new(
                "client_key",
                "give client_certificate together with client_key",
            ));
        }
        problems
    }
}

impl Transport for HttpSinkConfig {
    fn validate(&self, context: &CheckContext<'_>) -> Vec<ConfigProblem> {
        let mut problems = self.problems();
        if let (Some(lease), Some(limit)) = (context.lease, context.attempt_limit())
            && u128::from(self.timeout_ms) > limit.as_millis()
        {
            problems.push(ConfigProblem::new(
                "timeout_ms",
                format!(
                    "must fit into three quarters of [delivery] lease_secs ({} s): a lease of at least {} s",
                    lease.as_secs(),
                    crate::minimum_lease(std::time::Duration::from_millis(self.timeout_ms)).as_secs()
                ),
            ));
        }
        problems
    }

    fn build(&self, context: &BuildContext<'_>) -> Result<Arc<dyn Sink>, Error> {
        let pki = |file: &PathBuf| context.pki_dir.join(file);
        let server_ca = match &self.server_ca {
            Some(file) => Some(files::certificate(&pki(file))?),
            None => None,
        };
        let client = match (&self.client_certificate, &self.client_key) {
            (Some(certificate), Some(key)) => Some((
                files::certificate(&pki(certificate))?,
                files::private_key(&pki(key))?,
            )),
            _ => None,
        };
        Ok(Arc::new(HttpSink::new(
            self.clone(),
            HttpTls { server_ca, client },
        )?))
    }
}
