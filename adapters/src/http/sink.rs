use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_openssl::client::legacy::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use super::config::HttpSinkConfig;
use crate::{DestinationInfo, Error, OutboundMessage, Outcome, Sink};

/// The largest answer read from a procedure (a signed receipt fits many times over).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// `Retry-After` beyond this is capped: the retry policy's own maximum still applies.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// TLS material of one HTTP procedure, loaded (and checked) by the caller.
#[derive(Default)]
pub struct HttpTls {
    /// Trust anchor for the procedure's server certificate; system roots otherwise.
    pub server_ca: Option<X509>,
    /// Client certificate and key for mutual TLS.
    pub client: Option<(X509, PKey<Private>)>,
}

/// POSTs sealed messages to one procedure over a pooled hyper client.
pub struct HttpSink {
    config: HttpSinkConfig,
    uri: Uri,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl HttpSink {
    pub fn new(config: HttpSinkConfig, tls: HttpTls) -> Result<Self, Error> {
        if let Some(problem) = config.problems().into_iter().next() {
            return Err(Error::Invalid(problem));
        }
        let uri: Uri = config
            .url
            .parse()
            .map_err(|e| Error::Http(format!("url `{}`: {e}", config.url)))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));
        http.set_nodelay(true);
        let tls_error = |e: openssl::error::ErrorStack| Error::Http(format!("TLS set-up: {e}"));
        let mut ssl = SslConnector::builder(SslMethod::tls_client()).map_err(tls_error)?;
        // BSI TR-02102-2: TLS 1.2 or newer.
        ssl.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(tls_error)?;
        if let Some(ca) = tls.server_ca {
            let mut store = X509StoreBuilder::new().map_err(tls_error)?;
            store.add_cert(ca).map_err(tls_error)?;
            ssl.set_verify_cert_store(store.build())
                .map_err(tls_error)?;
        }
        if let Some((certificate, key)) = tls.client {
            ssl.set_certificate(&certificate).map_err(tls_error)?;
            ssl.set_private_key(&key).map_err(tls_error)?;
            ssl.check_private_key().map_err(|_| {
                Error::Http("the client certificate does not belong to the client key".into())
            })?;
        }
        let connector = HttpsConnector::with_connector(http, ssl).map_err(tls_error)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(8)
            .build(connector);
        Ok(Self {
            config,
            uri,
            client,
        })
    }

    fn request(&self, message: &OutboundMessage) -> Result<Request<Full<Bytes>>, String> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, message.content_type.as_str())
            // The receiver de-duplicates by it: the same on every retry and replay.
            .header("idempotency-key", message.message_id.as_str())
            .header("x-kopplung-message-id", message.message_id.as_str())
            .header("x-kopplung-correlation-id", message.correlation_id.as_str())
            .header("x-kopplung-message-type", message.message_type.as_str());
        for (key, value) in &message.headers {
            let name = HeaderName::try_from(format!("x-kopplung-{key}").replace('_', "-"))
                .map_err(|e| format!("header {key}: {e}"))?;
            let value =
                HeaderValue::try_from(value.as_str()).map_err(|e| format!("header {key}: {e}"))?;
            request = request.header(name, value);
        }
        request
            .body(Full::new(message.body.clone()))
            .map_err(|e| e.to_string())
    }

    async fn exchange(&self, message: &OutboundMessage) -> Outcome {
        let request = match self.request(message) {
            Ok(request) => request,
            Err(reason) => return Outcome::Permanent { reason },
        };
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(e) if e.is_connect() => {
                // The message never reached the procedure: wait for it like for a
                // broker that is down, without using up the message's attempts.
                return Outcome::Unavailable {
                    reason: format!(
                        "cannot connect to {}: {}",
                        self.config.url,
                        source_chain(&e)
                    ),
                    not_before: None,
                };
            }
            Err(e) => {
                return Outcome::Retry {
                    reason: format!(
                        "request to {} failed: {}",
                        self.config.url,
                        source_chain(&e)
                    ),
                    not_before: None,
                };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map(|collected| collected.to_bytes());
        classify(status, retry_after, body.map_err(|e| e.to_string()))
    }
}

/// What an answer means for the message.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Result<Bytes, String>,
) -> Outcome {
    if status.is_success() {
        // The procedure took the message: an unreadable answer body does not undo that.
        return match body {
            Ok(body) if !body.iter().all(u8::is_ascii_whitespace) => {
                Outcome::DeliveredWithReceipt(body)
            }
            _ => Outcome::Delivered,
        };
    }
    let reason = format!("the procedure answered {status}");
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        return Outcome::Retry {
            reason,
            not_before: retry_after,
        };
    }
    if status.is_client_error() {
        return Outcome::Permanent { reason };
    }
    // 1xx left over, 3xx: we do not follow redirects with personal data.
    Outcome::Permanent {
        reason: format!("{reason} (not followed)"),
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait]
impl Sink for HttpSink {
    async fn deliver(&self, message: &OutboundMessage) -> Outcome {
        let limit = Duration::from_millis(self.config.timeout_ms);
        match tokio::time::timeout(limit, self.exchange(message)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Retry {
                reason: format!(
                    "no complete answer from {} within {} ms",
                    self.config.url, self.config.timeout_ms
                ),
                not_before: None,
            },
        }
    }

    fn destination(&self) -> DestinationInfo {
        DestinationInfo {
            transport: "http",
            destination: self.config.url.clone(),
        }
    }
}

#[cfg(test)]
pub(crate) fn classify_for_tests(
    status: u16,
    retry_after: Option<Duration>,
    body: &'static [u8],
) -> Outcome {
    classify(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        retry_after,
        Ok(Bytes::from_static(body)),
    )
}
