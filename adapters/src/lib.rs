//! Transports of kopplung: each delivers one sealed message to one specialist procedure
//! and classifies what happened. Adapters know the message and its destination, nothing
//! of applications, stores or schedules: when to try again is the router's decision.
//!
//! One folder per transport, each with the same files: `config.rs` (what an operator
//! writes, how it is checked and how it builds its sink), `sink.rs` (the delivery),
//! `tests.rs` (against the real peer). [`registry`] lists them once.
#![forbid(unsafe_code)]

pub mod amqp;
mod broker;
pub mod file;
mod files;
pub mod fitconnect;
pub mod http;
pub mod manual;
pub mod pull;
pub mod registry;
#[cfg(test)]
mod test_support;
pub mod transport;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// Takes one body that came in on an answer channel (a reply queue's message, an
/// answer folder's file) and says what became of it, for the channel to act on.
pub type BodyHandler<T> =
    Arc<dyn Fn(Vec<u8>) -> Pin<Box<dyn Future<Output = T> + Send>> + Send + Sync>;

/// The handler that runs `take` with its own copy of `shared` for each body.
pub fn body_handler<S, F, T>(
    shared: S,
    take: impl Fn(S, Vec<u8>) -> F + Send + Sync + 'static,
) -> BodyHandler<T>
where
    S: Clone + Send + Sync + 'static,
    F: Future<Output = T> + Send + 'static,
{
    Arc::new(move |body| Box::pin(take(shared.clone(), body)))
}

/// A sealed message ready to leave the hub.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    /// `nachrichtenUUID`: stable across retries, so receivers can de-duplicate.
    pub message_id: String,
    /// The application this message belongs to.
    pub correlation_id: String,
    /// XÖV message type, e.g. `maengelanzeige.meldung.0101`.
    pub message_type: String,
    pub content_type: String,
    /// Further routing metadata; never personal data.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiving side took responsibility for the message.
    Delivered,
    /// Delivered, and the procedure answered with a body (its signed receipt), which
    /// the router verifies like any event of this procedure.
    DeliveredWithReceipt(Bytes),
    /// The message waits at the hub until the procedure collects it (pull API, clerk
    /// inbox); collecting it is the delivery.
    AwaitingPickup,
    /// Not delivered this time; try again, not before `not_before` if given. Counts as
    /// an attempt at this message.
    Retry {
        reason: String,
        not_before: Option<Duration>,
    },
    /// The destination is not reachable at all (broker down): wait and try again. Says
    /// nothing about this message, so it does not count towards dead-lettering.
    Unavailable {
        reason: String,
        not_before: Option<Duration>,
    },
    /// Trying again cannot help (the destination refuses the message itself).
    Permanent { reason: String },
}

/// Where a sink delivers, for status pages and logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DestinationInfo {
    pub transport: &'static str,
    pub destination: String,
}

/// One procedure's way in.
#[async_trait]
pub trait Sink: Send + Sync {
    async fn deliver(&self, message: &OutboundMessage) -> Outcome;
    fn destination(&self) -> DestinationInfo;
}

/// One problem of a transport's configuration: the key it concerns (within the
/// transport's section) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: &'static str,
    pub message: String,
}

impl ConfigProblem {
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Errors of setting up a transport (not of delivering: that is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid (the config check names every problem first).
    #[error("{0}")]
    Invalid(ConfigProblem),
    #[error("HTTP transport: {0}")]
    Http(String),
    /// A file the configuration names (certificate, key, secret) cannot be used.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A destination did not answer a probe (`kopplung check --connect`): `target` is
    /// what was tried (host and port, never a password).
    #[error("{target}: {reason}")]
    Unreachable { target: String, reason: String },
}

/// Three quarters of `lease`.
pub fn attempt_limit(lease: Duration) -> Duration {
    lease * 3 / 4
}

/// The shortest lease that an attempt of `attempt` fits into ([`attempt_limit`]): four
/// thirds of it, rounded up to whole seconds.
pub fn minimum_lease(attempt: Duration) -> Duration {
    let millis = u64::try_from(attempt.as_millis()).unwrap_or(u64::MAX / 4);
    Duration::from_secs((millis * 4).div_ceil(3_000))
}
