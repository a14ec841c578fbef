//! The hub's trust in identity providers. An application's `applicant.authentication`
//! may carry an identity provider's signed assertion — an OpenID Connect ID token, as the
//! portal received it at sign-in. [`Verifier`] checks it against the issuers configured
//! in `[[identity_provider]]`: the signature with the issuer's published keys (RS256 or
//! ES256 only), `iss`, `aud`, `exp` (with a small skew), `auth_time` within the
//! provider's maximum age, and maps `acr` to a trust level and `amr` to a means of
//! identification by the provider's tables. What comes out is the core's
//! [`Authentication`], or the [`Refusal`] that says why not; whether it suffices for a
//! service is the core's decision (`kopplung_core::identity::admit`).
//!
//! Verification follows OpenID Connect Core 1.0, section 3.1.3.7, through the
//! `openidconnect` crate; keys are fetched with its reqwest client (see [`keys`]).
#![forbid(unsafe_code)]

mod config;
mod keys;
mod token;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use kopplung_core::Clock;
use kopplung_core::identity::{Authentication, Refusal};
use kopplung_core::intake::IdentityVerifier;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    ClaimsVerificationError, ClientId, IssuerUrl, JsonWebKeySetUrl, Nonce,
    SignatureVerificationError, reqwest,
};
use time::OffsetDateTime;

pub use config::{MAX_AGE_LIMIT_SECS, ProviderConfig, default_levels, default_means};

use keys::Keys;

/// How long one fetch of a provider's discovery document or keys may take.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A provider's entry cannot be used (the configuration's check names why first).
    #[error("identity provider `{provider}`: {message}")]
    Config { provider: String, message: String },
    /// The HTTP client for fetching keys could not be made (TLS).
    #[error("the HTTP client for identity providers: {0}")]
    Http(String),
}

/// Verifies assertions of the configured identity providers.
pub struct Verifier {
    providers: Vec<Provider>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

struct Provider {
    config: ProviderConfig,
    issuer: IssuerUrl,
    keys: Keys,
}

impl Verifier {
    /// A verifier of `providers`' assertions; keys are fetched when first needed.
    pub fn new(providers: &[ProviderConfig], clock: Arc<dyn Clock>) -> Result<Self, Error> {
        // No redirects: a provider's keys are where it says, not where a redirect points.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(FETCH_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| Error::Http(e.to_string()))?;
        let providers = providers
            .iter()
            .map(|config| {
                let invalid = |message: String| Error::Config {
                    provider: config.id.clone(),
                    message,
                };
                let issuer = IssuerUrl::new(config.issuer.clone())
                    .map_err(|e| invalid(format!("issuer: {e}")))?;
                let jwks_url = config
                    .jwks_url
                    .clone()
                    .map(JsonWebKeySetUrl::new)
                    .transpose()
                    .map_err(|e| invalid(format!("jwks_url: {e}")))?;
                Ok(Provider {
                    keys: Keys::new(&config.id, issuer.clone(), jwks_url),
                    issuer,
                    config: config.clone(),
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            providers,
            http,
            clock,
        })
    }

    /// Whether any provider is trusted at all.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

#[async_trait]
impl IdentityVerifier for Verifier {
    async fn verify(&self, assertion: &str) -> Result<Authentication, Refusal> {
        let peeked = token::peek(assertion)?;
        // `iss` is compared exactly (OpenID Connect Core 1.0, 3.1.3.7 step 2).
        let Some(provider) = self
            .providers
            .iter()
            .find(|p| p.config.issuer == peeked.issuer)
        else {
            return Err(Refusal::UnknownIssuer);
        };
        let Some(audience) = provider
            .config
            .audiences
            .iter()
            .find(|a| peeked.audiences.contains(a))
        else {
            return Err(Refusal::WrongAudience);
        };
        let id_token = CoreIdToken::from_str(assertion)
            .map_err(|e| Refusal::Incomplete(format!("the ID token's claims: {e}")))?;
        let now = self.clock.now();
        let keys = provider
            .keys
            .current(&self.http, now)
            .await
            .map_err(|_| Refusal::KeysUnavailable)?;
        let claims = match provider.check(&id_token, audience, keys, now) {
            Err(Checked::UnknownKey) => match provider.keys.refetched(&self.http, now).await {
                // Rotated keys: try once more with the new set.
                Some(keys) => provider.check(&id_token, audience, keys, now),
                None => Err(Checked::UnknownKey),
            },
            other => other,
        }
        .map_err(Checked::refusal)?;
        token::authentication(&claims, &provider.config, now, assertion)
    }
}

/// What became of a check, with "no such key" apart: it may call for fresh keys.
enum Checked {
    UnknownKey,
    Refused(Refusal),
}

impl Checked {
    fn refusal(self) -> Refusal {
        match self {
            Self::UnknownKey => Refusal::BadSignature,
            Self::Refused(refusal) => refusal,
        }
    }
}

impl Provider {
    /// Verifies signature, issuer, audience and expiry with `keys`.
    fn check(
        &self,
        id_token: &CoreIdToken,
        audience: &str,
        keys: CoreJsonWebKeySet,
        now: OffsetDateTime,
    ) -> Result<CoreIdTokenClaims, Checked> {
        let audiences = self.config.audiences.clone();
        // The skew in our favour of the token: `exp` may have passed by that much.
        let then = chrono_time(now - token::SKEW);
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(audience.to_owned()),
            self.issuer.clone(),
            keys,
        )
        .set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ])
        // Every audience must be one of ours: a token also issued to others is not.
        .set_other_audience_verifier_fn(move |other| audiences.iter().any(|a| a == other.as_str()))
        .set_time_fn(move || then);
        // The nonce binds the token to the portal's sign-in; the portal checked it.
        let any_nonce = |_: Option<&Nonce>| Ok(());
        id_token
            .claims(&verifier, any_nonce)
            .cloned()
            .map_err(|e| match e {
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                ) => Checked::UnknownKey,
                other => Checked::Refused(refusal_of(other)),
            })
    }
}

fn refusal_of(error: ClaimsVerificationError) -> Refusal {
    match error {
        ClaimsVerificationError::SignatureVerification(_) => Refusal::BadSignature,
        ClaimsVerificationError::Expired(_) => Refusal::Expired,
        ClaimsVerificationError::InvalidAudience(_) => Refusal::WrongAudience,
        ClaimsVerificationError::InvalidIssuer(_) => Refusal::UnknownIssuer,
        // Encrypted, nested, `crit` headers, another `typ`: not an ID token as we take them.
        ClaimsVerificationError::Unsupported(message) => Refusal::Malformed(message),
        other => Refusal::Incomplete(other.to_string()),
    }
}

/// `at` as openidconnect's clock takes it (whole seconds suffice for `exp`).
fn chrono_time(at: OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    // Never reached (chrono's range is wider than time's); if it were, every token is
    // expired rather than none.
    chrono::DateTime::from_timestamp(at.unix_timestamp(), 0)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}
