//! kopplung's pipeline: what happens to an accepted application until a transport has
//! it. The outbox dispatcher claims due work under a lease, the prepare step renders,
//! checks and seals the message, and the keyring holds the keys and certificates in
//! force (swapped whole on reload) and verifies the procedures' signed receipts.
//!
//! It sits between the domain core and the adapters and knows nothing of the router:
//! the router reads its configuration and hands down the plain values below.
#![forbid(unsafe_code)]

pub mod ahead;
mod authentifizierung;
pub mod catalog;
pub mod conformance;
pub mod keyring;
pub mod outbox;
pub mod prepare;
mod retry;
pub mod trust;

use std::path::PathBuf;

pub use ahead::Ahead;
pub use catalog::{Catalog, Mappings};
pub use keyring::{
    Keyring, KeyringConfig, NextSigning, Pkcs12, ProcedureKeys, ReceiptError, load_sealer,
};
pub use outbox::{
    CMS_CONTENT_TYPE, Deliveries, Dispatcher, JOSE_CONTENT_TYPE, LEASE, RetryPolicies,
};
pub use prepare::{PrepareError, Prepared, Preparer};
pub use retry::{Next, RetryPolicy, after_failure, full_jitter};
pub use trust::PublishedCertificate;

/// Errors of loading the pipeline's material (keys, certificates).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration {}: {message}", file.display())]
    Config { file: PathBuf, message: String },
    #[error(transparent)]
    Transform(#[from] kopplung_transformers::Error),
}

/// How a procedure's messages are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// CMS SignedData (ECDSA) inside AuthEnvelopedData (ECDH, AES-256-GCM).
    Cms,
    /// JWS (ES256) inside a compact JWE (RSA-OAEP-256, A256GCM), FIT-Connect style.
    Jose,
}

impl Envelope {
    /// The content type of a message in this envelope.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Cms => CMS_CONTENT_TYPE,
            Self::Jose => JOSE_CONTENT_TYPE,
        }
    }
}

/// What the pipeline reports as it works; the router counts it in its metrics.
pub trait Observer: Send + Sync {
    /// One delivery outcome of a procedure (`delivered`, `awaiting_pickup`, `retry`,
    /// `unavailable`, `dead_lettered`).
    fn delivery(&self, procedure: &str, transport: &str, outcome: &str);
    /// How long a prepare stage (`transform`, `seal`) took.
    fn prepare_stage(&self, stage: &str, seconds: f64);
    /// How long one delivery attempt took.
    fn delivery_attempt(&self, transport: &str, seconds: f64);
    /// From the 202 at intake to the procedure's taking the message.
    fn submit_to_delivered(&self, procedure: &str, seconds: f64);
    /// Entries taken over from an instance whose heartbeat had stopped.
    fn taken_over(&self, entries: u64);
    /// An application's message sealed at intake, or left to the outbox.
    fn sealed_at_intake(&self, sealed: bool);
    /// What became of a signed receipt in a procedure's answer to a delivery
    /// (`recorded`, `duplicate`, `unavailable`, or the problem type that refused it).
    fn answer_receipt(&self, procedure: &str, outcome: &str);
}

/// Wakes the outbox when new work is committed (intake, retry now, replay).
#[derive(Debug, Default)]
pub struct Wakeup(tokio::sync::Notify);

impl Wakeup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves once somebody rang since the last time.
    pub async fn rung(&self) {
        self.0.notified().await;
    }
}

impl kopplung_core::Wake for Wakeup {
    fn wake(&self) {
        self.0.notify_one();
    }
}
