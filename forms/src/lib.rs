//! What a service asks of the citizen, and the rules its answers must follow: the form
//! definition (`form.toml`) with its validation, the text normalisation every value goes
//! through (NFC, DIN 91379), the trust level a service needs and its fee.
//!
//! The hub validates at intake, the portal renders and pre-validates with the same
//! definitions; neither needs the XML and cryptography of `kopplung-transformers` for it.
#![forbid(unsafe_code)]

pub mod deadline;
pub mod fee;
pub mod form;
pub mod german;
pub mod text;
pub mod wording;

pub use fee::Fee;
pub use form::{
    AttachmentRules, Field, FieldError, FieldKind, FormDefinition, Repeat, SharedGroups,
};
pub use wording::Wording;

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

/// What a service demands of the document that comes with its decision (Bescheid):
/// `[decision] document` in its `service.toml`. The hub refuses a decision whose
/// document falls short (`422 bad-document`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum DecisionDocument {
    /// Any document whose content is of its declared media type.
    #[default]
    #[serde(rename = "any")]
    Any,
    /// A PDF/A file (ISO 19005), for archives that keep decisions for decades.
    #[serde(rename = "pdf/a")]
    PdfA,
}

impl DecisionDocument {
    /// The code in `service.toml`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::PdfA => "pdf/a",
        }
    }
}

impl TryFrom<String> for DecisionDocument {
    type Error = String;

    // By hand rather than serde's variant names, so that the message names the key.
    fn try_from(code: String) -> Result<Self, String> {
        [Self::Any, Self::PdfA]
            .into_iter()
            .find(|kind| kind.code() == code)
            .ok_or_else(|| format!("[decision] document: `{code}` is neither `any` nor `pdf/a`"))
    }
}

/// What a service demands of its decision (`[decision]` in its `service.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    pub document: DecisionDocument,
}

/// A charge the authority sets with its decision, not paid online at submission: a fee
/// after the decision, or a tax (the dog tax). `charge = { kind = "steuer", beschreibung =
/// "…" }` in `service.toml`; a fee paid at submission is `fee`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    pub kind: ChargeKind,
    /// German sentences: how much, and when it is due.
    pub beschreibung: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChargeKind {
    /// A fee (Gebühr) the decision sets.
    Gebuehr,
    /// A tax (Steuer), set by a tax decision.
    Steuer,
}

impl Charge {
    /// What a citizen reads about the cost of a service with this charge.
    pub fn sentence(&self) -> String {
        let what = match self.kind {
            ChargeKind::Gebuehr => "Für diese Leistung wird eine Gebühr erhoben",
            ChargeKind::Steuer => "Für diese Leistung wird eine Steuer erhoben",
        };
        format!(
            "{what}: {} Sie wird mit dem Bescheid festgesetzt; beim Absenden des Antrags zahlen Sie nichts.",
            self.beschreibung.trim()
        )
    }
}
