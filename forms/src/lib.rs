//! What a service asks of the citizen, and the rules its answers must follow: the form
//! definition (`form.toml`) with its validation, the text normalisation every value goes
//! through (NFC, DIN 91379), the trust level a service needs and its fee.
//!
//! The hub validates at intake, the portal renders and pre-validates with the same
//! definitions; neither needs the XML and cryptography of `kopplung-transformers` for it.
#![forbid(unsafe_code)]

pub mod form;
pub mod text;

pub use form::{AttachmentRules, Field, FieldError, FieldKind, FormDefinition, SharedGroups};

use serde::{Deserialize, Serialize};

/// Vertrauensniveau of an identification, lowest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    #[default]
    Basis,
    Substanziell,
    Hoch,
}

impl TrustLevel {
    /// The code in messages, configuration files and problem details.
    pub fn code(self) -> &'static str {
        match self {
            Self::Basis => "basis",
            Self::Substanziell => "substanziell",
            Self::Hoch => "hoch",
        }
    }
}

/// A fee in euros.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fee {
    /// Decimal with two places, e.g. `"30.50"`.
    pub betrag: String,
    pub beschreibung: String,
}
