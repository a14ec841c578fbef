//! The pure stages of kopplung: given the same inputs they produce the same outputs,
//! with no network and no database.
//!
//! `form` validates what a citizen submitted, `mapping` renders it through a service's
//! Handlebars template into an XÖV message, `xml` checks that message, and `seal`
//! signs and encrypts it for the receiving procedure.
#![forbid(unsafe_code)]

pub mod authentifizierung;
pub mod fitconnect;
mod fixture_diff;
pub mod fixtures;

pub mod jose;
pub mod laufzettel;
pub mod mapping;
pub mod pki;
pub mod receipt;
mod render_failure;
pub mod schema;
pub mod schema_bundle;
pub mod seal;
pub mod verify;
pub mod xml;

use std::path::PathBuf;

// The form types moved to `kopplung-forms`; re-exported for the hub.
pub use kopplung_forms::{FieldError, FormDefinition, form, text};
pub use mapping::{Mapping, MessageContext, follow_up};
pub use seal::{Sealer, TrustAnchors};

/// Everything that can go wrong in a transformation. Messages never contain form data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mapping {}: {message}", file.display())]
    Mapping { file: PathBuf, message: String },
    #[error("rendering the message of service {service}: {message}")]
    Render { service: String, message: String },
    #[error("rendered message is not well-formed XML at byte {position}: {message}")]
    NotWellFormed { position: u64, message: String },
    #[error("schema {}: {}", file.display(), join(violations))]
    Schema {
        file: PathBuf,
        violations: Vec<schema::Violation>,
    },
    #[error("message does not match schema {}: {}", schema.display(), join(violations))]
    Invalid {
        schema: PathBuf,
        violations: Vec<schema::Violation>,
    },
    #[error("private key {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },
    #[error("receipt refused: {0}")]
    ReceiptRefused(String),
    /// The signature verified, but the signed content is no receipt.
    #[error("receipt malformed: {0}")]
    ReceiptMalformed(String),
    #[error("certificate refused: {0}")]
    Certificate(String),
    #[error("{context}: {source}")]
    Crypto {
        context: String,
        source: openssl::error::ErrorStack,
    },
    #[error("{context}: {source}")]
    Jose {
        context: String,
        source: josekit::JoseError,
    },
    /// Assembling the `cms` envelope's ASN.1 failed.
    #[error("building the CMS envelope: {0}")]
    Envelope(String),
    #[error("JOSE message refused: {0}")]
    JoseRefused(String),
}

fn join(violations: &[schema::Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
