//! `applicant.authentication`: who applied and how they were identified, as the request
//! claims it, turned into a verified [`Authentication`] (or the [`Refusal`] that says
//! why not) before anything is stored.
//!
//! Two forms: an identity provider's signed assertion (`{"assertion": "<compact JWS>"}`),
//! verified at the edge through an [`IdentityVerifier`]; or, for a client configured to
//! vouch on its own, the client's own statement (`level`, `means`, `subject`,
//! `authenticated_at`), capped by its configuration and marked as the client's.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::identity::{Authentication, Means, Pseudonym, Refusal, TrustLevel, Voucher};

/// Verifies an identity provider's signed assertion. Fetching the issuer's keys and
/// checking signatures is the edge's (crate `kopplung-identity`); the core only asks.
#[async_trait]
pub trait IdentityVerifier: Send + Sync {
    /// The identification the assertion proves, or why it proves nothing.
    async fn verify(&self, assertion: &str) -> Result<Authentication, Refusal>;
}

/// How far a client's own `authenticated_at` may lie ahead of the hub's clock.
const FUTURE_SKEW: time::Duration = time::Duration::seconds(60);

/// What the request claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Claimed {
    /// No `applicant.authentication`.
    Nothing,
    /// An identity provider's assertion, to be verified.
    Assertion(String),
    /// The client's own statement.
    Own(Own),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Own {
    level: TrustLevel,
    means: Means,
    subject: Pseudonym,
    authenticated_at: OffsetDateTime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplicantIn {
    #[serde(default)]
    authentication: Option<AuthenticationIn>,
}

/// Every key optional here: which ones are given decides the form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthenticationIn {
    #[serde(default)]
    assertion: Option<String>,
    #[serde(default)]
    level: Option<TrustLevel>,
    #[serde(default)]
    means: Option<Means>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    authenticated_at: Option<OffsetDateTime>,
}

/// Reads the request's `applicant` (absent or `null`: nothing claimed).
pub(super) fn parse(applicant: Option<&Value>) -> Result<Claimed, Refusal> {
    let Some(applicant) = applicant.filter(|v| !v.is_null()) else {
        return Ok(Claimed::Nothing);
    };
    let applicant = ApplicantIn::deserialize(applicant)
        .map_err(|e| Refusal::Malformed(format!("applicant: {e}")))?;
    let Some(block) = applicant.authentication else {
        return Ok(Claimed::Nothing);
    };
    let own = (
        block.level,
        block.means,
        block.subject,
        block.authenticated_at,
    );
    match (block.assertion, own) {
        (Some(assertion), (None, None, None, None)) => {
            if assertion.is_empty() {
                return Err(Refusal::Malformed(
                    "applicant.authentication.assertion is empty".into(),
                ));
            }
            Ok(Claimed::Assertion(assertion))
        }
        (None, (Some(level), Some(means), Some(subject), Some(authenticated_at))) => {
            let subject = Pseudonym::parse(&subject).map_err(|e| {
                Refusal::Malformed(format!("applicant.authentication.subject: {e}"))
            })?;
            Ok(Claimed::Own(Own {
                level,
                means,
                subject,
                authenticated_at,
            }))
        }
        _ => Err(Refusal::Malformed(
            "applicant.authentication takes either `assertion`, or `level`, `means`, `subject` and `authenticated_at` together".into(),
        )),
    }
}

/// Who the client is and what it may vouch for on its own.
#[derive(Debug, Clone, Copy)]
pub(super) struct Vouching<'a> {
    pub client: &'a str,
    /// The highest level the client may assert itself; none: it may not.
    pub asserts_up_to: Option<TrustLevel>,
    pub now: OffsetDateTime,
}

/// The verified identification, if the request claims one.
pub(super) async fn identify(
    claimed: Claimed,
    vouching: Vouching<'_>,
    verifier: &dyn IdentityVerifier,
) -> Result<Option<Authentication>, Refusal> {
    match claimed {
        Claimed::Nothing => Ok(None),
        Claimed::Assertion(assertion) => verifier.verify(&assertion).await.map(Some),
        Claimed::Own(own) => vouched(own, vouching).map(Some),
    }
}

/// The client's own statement, within what it may assert.
fn vouched(own: Own, vouching: Vouching<'_>) -> Result<Authentication, Refusal> {
    if vouching.asserts_up_to.is_none_or(|cap| own.level > cap) {
        return Err(Refusal::ClientMayNotAssert);
    }
    if own.authenticated_at > vouching.now + FUTURE_SKEW {
        return Err(Refusal::Malformed(
            "applicant.authentication.authenticated_at lies in the future".into(),
        ));
    }
    Ok(Authentication {
        level: own.level,
        means: own.means,
        // The client vouches: it is the issuer, and there is no proof to keep.
        issuer: vouching.client.to_owned(),
        subject: own.subject,
        authenticated_at: own.authenticated_at,
        voucher: Voucher::Client {
            client: vouching.client.to_owned(),
        },
        assertion_sha256: None,
        assertion: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-01 10:00 UTC);

    struct Nobody;

    #[async_trait]
    impl IdentityVerifier for Nobody {
        async fn verify(&self, _: &str) -> Result<Authentication, Refusal> {
            Err(Refusal::UnknownIssuer)
        }
    }

    fn own(level: &str) -> Value {
        json!({"authentication": {"level": level, "means": "benutzername-passwort",
            "subject": "k-123", "authenticated_at": "2025-06-01T09:58:00Z"}})
    }

    fn portal(asserts_up_to: Option<TrustLevel>) -> Vouching<'static> {
        Vouching {
            client: "portal",
            asserts_up_to,
            now: NOW,
        }
    }

    async fn run(
        applicant: Value,
        vouching: Vouching<'_>,
    ) -> Result<Option<Authentication>, Refusal> {
        identify(parse(Some(&applicant))?, vouching, &Nobody).await
    }

    #[tokio::test]
    async fn a_client_vouches_only_up_to_its_cap_and_says_so() {
        let auth = run(own("basis"), portal(Some(TrustLevel::Basis)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(auth.level, TrustLevel::Basis);
        assert_eq!(auth.issuer, "portal");
        assert_eq!(
            auth.voucher,
            Voucher::Client {
                client: "portal".into()
            }
        );
        assert_eq!(auth.assertion_sha256, None);
        assert_eq!(
            run(own("substanziell"), portal(Some(TrustLevel::Basis))).await,
            Err(Refusal::ClientMayNotAssert)
        );
        assert_eq!(
            run(own("basis"), portal(None)).await,
            Err(Refusal::ClientMayNotAssert)
        );
    }

    #[tokio::test]
    async fn nothing_claimed_is_none_and_an_assertion_goes_to_the_verifier() {
        assert_eq!(run(json!({}), portal(None)).await, Ok(None));
        assert_eq!(parse(None), Ok(Claimed::Nothing));
        assert_eq!(parse(Some(&Value::Null)), Ok(Claimed::Nothing));
        assert_eq!(
            run(
                json!({"authentication": {"assertion": "a.b.c"}}),
                portal(None)
            )
            .await,
            Err(Refusal::UnknownIssuer)
        );
    }

    #[test]
    fn a_malformed_block_is_named() {
        let cases = [
            json!("ja"),
            json!({"authentifizierung": {}}),
            json!({"authentication": "a.b.c"}),
            json!({"authentication": {"assertion": ""}}),
            json!({"authentication": {"assertion": 7}}),
            json!({"authentication": {"assertion": "a.b.c", "level": "basis"}}),
            json!({"authentication": {"level": "basis", "means": "benutzername-passwort"}}),
            json!({"authentication": {"level": "mittel", "means": "benutzername-passwort",
                "subject": "s", "authenticated_at": "2025-06-01T09:58:00Z"}}),
            json!({"authentication": {"level": "basis", "means": "benutzername-passwort",
                "subject": "s", "authenticated_at": "gestern"}}),
            json!({"authentication": {"level": "basis", "means": "benutzername-passwort",
                "subject": "", "authenticated_at": "2025-06-01T09:58:00Z"}}),
            // What the message's XML could not carry: spaces, umlauts, over 255.
            json!({"authentication": {"level": "basis", "means": "benutzername-passwort",
                "subject": "Konto 12", "authenticated_at": "2025-06-01T09:58:00Z"}}),
            json!({"authentication": {"level": "basis", "means": "benutzername-passwort",
                "subject": "Jürgen", "authenticated_at": "2025-06-01T09:58:00Z"}}),
            json!({"authentication": {"level": "basis", "means": "benutzername-passwort",
                "subject": "k".repeat(256), "authenticated_at": "2025-06-01T09:58:00Z"}}),
        ];
        for case in cases {
            assert!(
                matches!(parse(Some(&case)), Err(Refusal::Malformed(_))),
                "{case}"
            );
        }
    }

    #[tokio::test]
    async fn a_client_cannot_date_an_identification_ahead() {
        let mut ahead = own("basis");
        ahead["authentication"]["authenticated_at"] = json!("2025-06-01T10:05:00Z");
        assert!(matches!(
            run(ahead, portal(Some(TrustLevel::Hoch))).await,
            Err(Refusal::Malformed(_))
        ));
    }
}
