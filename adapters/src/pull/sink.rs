use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openssl::hash::MessageDigest;
use openssl::memcmp;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::{DestinationInfo, Error, OutboundMessage, Outcome, Sink};

/// Header with the callback's Unix time in seconds.
pub const CALLBACK_TIMESTAMP: &str = "callback-timestamp";
/// Header with the hex HMAC-SHA512 over `{timestamp}.{body}`.
pub const CALLBACK_AUTHENTICATION: &str = "callback-authentication";
/// A receiver refuses callbacks older than this (replay protection).
pub const CALLBACK_MAX_AGE: Duration = Duration::from_secs(5 * 60);
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Announces new messages of one pull procedure; the messages themselves wait in the hub.
pub struct PullSink {
    procedure: String,
    callback: Option<Callback>,
}

struct Callback {
    uri: Uri,
    secret: Vec<u8>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for PullSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullSink")
            .field("procedure", &self.procedure)
            .finish_non_exhaustive()
    }
}

impl PullSink {
    /// `callback`: the URL and the shared secret, if the procedure wants announcements.
    pub fn new(procedure: &str, callback: Option<(&str, Vec<u8>)>) -> Result<Self, Error> {
        let callback = match callback {
            Some((url, secret)) => {
                if secret.len() < 32 {
                    return Err(Error::Http(
                        "the callback secret must be at least 32 bytes".into(),
                    ));
                }
                let uri: Uri = url
                    .parse()
                    .map_err(|e| Error::Http(format!("callback_url `{url}`: {e}")))?;
                if uri.scheme_str() != Some("http") && uri.scheme_str() != Some("https") {
                    return Err(Error::Http(format!("callback_url `{url}`: need http(s)")));
                }
                let mut http = HttpConnector::new();
                http.set_connect_timeout(Some(Duration::from_secs(5)));
                Some(Callback {
                    uri,
                    secret,
                    client: Client::builder(TokioExecutor::new()).build(http),
                })
            }
            None => None,
        };
        Ok(Self {
            procedure: procedure.to_owned(),
            callback,
        })
    }
}

/// The hex HMAC-SHA512 over `{timestamp}.{body}` with the shared secret.
pub fn callback_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> Result<String, Error> {
    let sign = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let key = PKey::hmac(secret)?;
        let mut signer = Signer::new(MessageDigest::sha512(), &key)?;
        signer.update(timestamp.as_bytes())?;
        signer.update(b".")?;
        signer.update(body)?;
        signer.sign_to_vec()
    };
    sign()
        .map(hex::encode)
        .map_err(|e| Error::Http(format!("HMAC: {e}")))
}

/// Why a callback was refused by its receiver.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallbackError {
    #[error("the timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the callback is older than five minutes or from the future")]
    Stale,
    #[error("the signature does not match")]
    BadSignature,
}

/// The receiving side's check (what a procedure does with an announcement).
pub fn verify_callback(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: SystemTime,
) -> Result<(), CallbackError> {
    let sent: u64 = timestamp.parse().map_err(|_| CallbackError::BadTimestamp)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CallbackError::BadTimestamp)?
        .as_secs();
    // A little leeway for clocks that run ahead; none for old announcements.
    if sent > now + 30 || now.saturating_sub(sent) > CALLBACK_MAX_AGE.as_secs() {
        return Err(CallbackError::Stale);
    }
    let expected =
        callback_signature(secret, timestamp, body).map_err(|_| CallbackError::BadSignature)?;
    let given = signature.trim().to_ascii_lowercase();
    if given.len() != expected.len() || !memcmp::eq(given.as_bytes(), expected.as_bytes()) {
        return Err(CallbackError::BadSignature);
    }
    Ok(())
}

impl Callback {
    async fn announce(&self, procedure: &str, message: &OutboundMessage) -> Result<(), String> {
        let body = serde_json::json!({
            "type": "message-available",
            "procedure": procedure,
            "message_id": message.message_id,
            "message_type": message.message_type,
        })
        .to_string();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let signature = callback_signature(&self.secret, &timestamp, body.as_bytes())
            .map_err(|e| e.to_string())?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CALLBACK_TIMESTAMP, timestamp)
            .header(CALLBACK_AUTHENTICATION, signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(CALLBACK_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| "no answer within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }
}

#[async_trait]
impl Sink for PullSink {
    async fn deliver(&self, message: &OutboundMessage) -> Outcome {
        if let Some(callback) = &self.callback
            && let Err(reason) = callback.announce(&self.procedure, message).await
        {
            // Only a hint: the message is listed for the procedure whether or not the
            // announcement arrived.
            tracing::warn!(procedure = %self.procedure, %reason, "callback failed; the procedure will see the message when it polls");
        }
        Outcome::AwaitingPickup
    }

    fn destination(&self) -> DestinationInfo {
        DestinationInfo {
            transport: "pull",
            destination: format!("/api/v1/procedures/{}/messages", self.procedure),
        }
    }
}
