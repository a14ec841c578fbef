//! Who applied and how they were identified: the proof an application carries, and the
//! rule that a service's Vertrauensniveau is met before anything is stored.
//!
//! Verifying an identity provider's signed assertion (an OpenID Connect ID token) needs
//! HTTP (its JWKS) and cryptography, so it happens at the edge; what comes out is an
//! [`Authentication`], or a [`Refusal`] that says exactly why not. The decision whether
//! that suffices for a service is made here, once, for every intake path.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use kopplung_forms::TrustLevel;

/// The means of identification (Identifizierungsmittel), as the procedure reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Means {
    /// User name and password of a Servicekonto (basis).
    BenutzernamePasswort,
    /// An ELSTER software certificate (substanziell).
    ElsterZertifikat,
    /// The online function of the ID card, eID card or residence permit (hoch).
    OnlineAusweis,
    /// A notified eID of another EU member state.
    EuEid,
    /// Anything else the identity provider names; its level still comes from `acr`.
    Sonstiges,
}

impl Means {
    /// The code in messages and configuration files.
    pub fn code(self) -> &'static str {
        match self {
            Self::BenutzernamePasswort => "benutzername-passwort",
            Self::ElsterZertifikat => "elster-zertifikat",
            Self::OnlineAusweis => "online-ausweis",
            Self::EuEid => "eu-eid",
            Self::Sonstiges => "sonstiges",
        }
    }
}

/// A pseudonymous subject as the issuer gave it (OpenID Connect's `sub`): 1 to 255
/// printable ASCII characters without spaces, as the message's XML (`kb:KennungType`)
/// carries it. A value outside that is refused at intake, never found later when the
/// message fails its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pseudonym(String);

/// Why a text is no pseudonym. It does not quote the text: a subject is personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a pseudonym must be 1 to {} printable ASCII characters without spaces",
    Pseudonym::MAX_CHARS
)]
pub struct InvalidPseudonym;

impl Pseudonym {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(input: &str) -> Result<Self, InvalidPseudonym> {
        let printable = input.bytes().all(|b| b.is_ascii_graphic());
        if input.is_empty() || input.len() > Self::MAX_CHARS || !printable {
            return Err(InvalidPseudonym);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Pseudonym {
    type Error = InvalidPseudonym;
    fn try_from(input: String) -> Result<Self, InvalidPseudonym> {
        Self::parse(&input)
    }
}

impl From<Pseudonym> for String {
    fn from(pseudonym: Pseudonym) -> Self {
        pseudonym.0
    }
}

impl std::fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who vouches for the identification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Voucher {
    /// A trusted identity provider's signed assertion, verified by the hub.
    IdentityProvider,
    /// The client itself, configured to assert levels on its own (a legacy portal): the
    /// hub has no proof, and the message says so.
    Client { client: String },
}

/// A verified identification of the applicant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    pub level: TrustLevel,
    pub means: Means,
    /// The identity provider's issuer URL, or the client's id for a client's own assertion.
    pub issuer: String,
    /// The pseudonymous subject the issuer gave (never a name or an ID card number).
    pub subject: Pseudonym,
    /// When the citizen authenticated at the identity provider.
    #[serde(with = "time::serde::rfc3339")]
    pub authenticated_at: OffsetDateTime,
    pub voucher: Voucher,
    /// SHA-256 (hex) of the assertion's bytes as received; none for a client's own.
    pub assertion_sha256: Option<String>,
    /// The assertion itself, kept only where the hub is configured to forward it.
    pub assertion: Option<String>,
}

/// What a service asks of the applicant's identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub level: TrustLevel,
    /// May be submitted without any identification (the Mängelanzeige).
    pub anonymous: bool,
}

/// Why an application's identification is not accepted. Each has its own problem type;
/// none of them stores anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The service needs an identification and the request has none.
    #[error("the service requires an authenticated applicant")]
    Missing,
    /// The `applicant.authentication` block is not what it must be (a 422, not a 403).
    #[error("the authentication block is malformed: {0}")]
    Malformed(String),
    /// The assertion names an issuer the hub does not trust.
    #[error("the assertion's issuer is not trusted")]
    UnknownIssuer,
    /// The signature does not verify with the issuer's keys (or the algorithm is not allowed).
    #[error("the assertion's signature does not verify")]
    BadSignature,
    /// `exp` has passed.
    #[error("the assertion has expired")]
    Expired,
    /// Issued for another relying party.
    #[error("the assertion was issued for another audience")]
    WrongAudience,
    /// The authentication happened longer ago than the issuer's maximum age.
    #[error("the authentication is older than the maximum age")]
    TooOld,
    /// A claim the hub needs (`acr`, `auth_time`, `sub`) is missing or has no mapping.
    #[error("the assertion lacks what the hub needs: {0}")]
    Incomplete(String),
    /// The issuer's keys could not be fetched: the client may retry (a 503).
    #[error("the identity provider's keys are not available")]
    KeysUnavailable,
    /// The client asserted a level on its own without being allowed to, or above its cap.
    #[error("the client may not assert this level on its own")]
    ClientMayNotAssert,
    /// Identified, but below the service's Vertrauensniveau.
    #[error("trust level {given:?} is below the service's {needed:?}")]
    LevelTooLow {
        needed: TrustLevel,
        given: TrustLevel,
    },
}

/// Whether an applicant so identified (or not at all) may submit to a service with this
/// requirement. An anonymous service still takes an identified applicant, at any level.
pub fn admit(
    requirement: Requirement,
    authentication: Option<&Authentication>,
) -> Result<(), Refusal> {
    match authentication {
        None if requirement.anonymous => Ok(()),
        None => Err(Refusal::Missing),
        Some(_) if requirement.anonymous => Ok(()),
        Some(auth) if auth.level < requirement.level => Err(Refusal::LevelTooLow {
            needed: requirement.level,
            given: auth.level,
        }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(level: TrustLevel) -> Authentication {
        Authentication {
            level,
            means: Means::ElsterZertifikat,
            issuer: "https://idp.example".into(),
            subject: Pseudonym::parse("a1b2").unwrap(),
            authenticated_at: OffsetDateTime::UNIX_EPOCH,
            voucher: Voucher::IdentityProvider,
            assertion_sha256: None,
            assertion: None,
        }
    }

    #[test]
    fn level_must_reach_the_services() {
        let needs = |level| Requirement {
            level,
            anonymous: false,
        };
        assert_eq!(admit(needs(TrustLevel::Basis), None), Err(Refusal::Missing));
        assert_eq!(
            admit(
                needs(TrustLevel::Hoch),
                Some(&auth(TrustLevel::Substanziell))
            ),
            Err(Refusal::LevelTooLow {
                needed: TrustLevel::Hoch,
                given: TrustLevel::Substanziell
            })
        );
        assert_eq!(
            admit(
                needs(TrustLevel::Substanziell),
                Some(&auth(TrustLevel::Substanziell))
            ),
            Ok(())
        );
        assert_eq!(
            admit(
                needs(TrustLevel::Substanziell),
                Some(&auth(TrustLevel::Hoch))
            ),
            Ok(())
        );
    }

    #[test]
    fn anonymous_services_take_anyone() {
        let open = Requirement {
            level: TrustLevel::Basis,
            anonymous: true,
        };
        assert_eq!(admit(open, None), Ok(()));
        assert_eq!(admit(open, Some(&auth(TrustLevel::Basis))), Ok(()));
    }

    #[test]
    fn authentication_round_trips_as_stored() {
        let stored = serde_json::to_string(&auth(TrustLevel::Hoch)).unwrap();
        assert!(stored.contains(r#""level":"hoch""#), "{stored}");
        assert!(
            stored.contains(r#""means":"elster-zertifikat""#),
            "{stored}"
        );
        assert!(
            stored.contains(r#""voucher":{"kind":"identity-provider"}"#),
            "{stored}"
        );
        let back: Authentication = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, auth(TrustLevel::Hoch));
    }
}
