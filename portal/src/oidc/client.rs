//! The portal as an OpenID Connect relying party of one identity provider (the
//! `openidconnect` crate): discovery (cached, fetched again for new keys), the
//! authorization request with PKCE, state and nonce, the code exchange, the ID token's
//! checks, the userinfo endpoint for prefill, and the RP-initiated logout URL.

use std::sync::Arc;
use std::time::Duration;

use kopplung_core::identity::Means;
use kopplung_forms::TrustLevel;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims,
    CoreJwsSigningAlgorithm, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, SubjectIdentifier, TokenResponse,
};
use serde_json::Value;
use tokio::sync::RwLock;
use tokio::time::Instant;

use super::prefill;
use crate::Error;
use crate::config::identity::IdentityProvider;

/// The client as discovery builds it: authorization endpoint set, token and userinfo
/// endpoints as the provider announces them.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovery's answer is kept this long; new signing keys fetch it at once.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

struct Discovered {
    client: Client,
    end_session: Option<EndSessionUrl>,
    fetched: Instant,
}

/// One configured identity provider.
pub struct Provider {
    pub config: IdentityProvider,
    redirect: RedirectUrl,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
}

/// What the authorization request asks for.
pub struct Ask {
    /// At least this level (`acr_values`); `None`: whatever the citizen chooses.
    pub level: Option<TrustLevel>,
    /// `prompt=login`: authenticate again even with a session at the provider.
    pub again: bool,
    /// The citizen agreed to prefill forms: the configured scopes beyond `openid`.
    pub consent: bool,
}

/// An authorization request on its way: the URL for the browser, and what must be
/// kept until the citizen comes back.
pub struct Authorization {
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// What a verified ID token says.
pub struct Verified {
    pub issuer: String,
    pub subject: String,
    pub acr: String,
    pub level: TrustLevel,
    pub means: Means,
    pub auth_time: i64,
    pub expires_at: i64,
    /// The compact JWS as the provider issued it.
    pub id_token: String,
    /// With consent: the `person`/`anschrift` groups (see `prefill`).
    pub prefill: Option<Value>,
}

fn unavailable(provider: &str, what: impl std::fmt::Display) -> Error {
    Error::IdentityProviderUnavailable(format!("{provider}: {what}"))
}

fn rejected(provider: &str, what: impl std::fmt::Display) -> Error {
    Error::SignInRejected(format!("{provider}: {what}"))
}

/// A verification failure in words that carry no personal data (the crate's messages
/// may quote the subject).
fn failure_kind(error: &ClaimsVerificationError) -> &'static str {
    match error {
        ClaimsVerificationError::Expired(_) => "the ID token has expired",
        ClaimsVerificationError::InvalidAudience(_) => "the ID token is for another audience",
        ClaimsVerificationError::InvalidAuthContext(_) => "the ID token's acr is not accepted",
        ClaimsVerificationError::InvalidAuthTime(_) => "the ID token's auth_time is not accepted",
        ClaimsVerificationError::InvalidIssuer(_) => "the ID token names another issuer",
        ClaimsVerificationError::InvalidNonce(_) => "the ID token's nonce does not match",
        ClaimsVerificationError::InvalidSubject(_) => "the subject does not match",
        ClaimsVerificationError::SignatureVerification(_) => {
            "the ID token's signature does not verify"
        }
        ClaimsVerificationError::Unsupported(_) => "the ID token uses what is not supported",
        _ => "the ID token is not acceptable",
    }
}

impl Provider {
    /// The provider of `config`; the citizen returns to `redirect`
    /// (`<public_url>/konto/oidc/rueckkehr`). Its secret is read when the client is made
    /// (with discovery): a provider whose secret is not there yet is unavailable until
    /// it is, and says so at start; the rest of the portal works meanwhile.
    pub fn new(config: IdentityProvider, redirect: &str) -> Result<Self, Error> {
        if let Err(e) = read_secret(&config) {
            tracing::warn!(error = %e, "sign-in at this identity provider is not possible yet");
        }
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| Error::IdentityProviderConfig(format!("redirect URL {redirect}: {e}")))?;
        // Never follow redirects: the crate's advice against SSRF through the provider.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| Error::IdentityProviderConfig(e.to_string()))?;
        Ok(Self {
            config,
            redirect,
            http,
            discovered: RwLock::new(None),
        })
    }

    /// The provider's metadata and keys: cached, fetched when older than an hour or
    /// when `fresh` is asked for (a token signed with a key we do not know yet).
    async fn discovered(&self, fresh: bool) -> Result<Arc<Discovered>, Error> {
        if !fresh
            && let Some(found) = self.discovered.read().await.as_ref()
            && found.fetched.elapsed() < DISCOVERY_TTL
        {
            return Ok(found.clone());
        }
        let id = &self.config.id;
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| unavailable(id, e))?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unavailable(id, format!("discovery: {e}")))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(read_secret(&self.config)?),
        )
        .set_redirect_uri(self.redirect.clone());
        let found = Arc::new(Discovered {
            client,
            end_session,
            fetched: Instant::now(),
        });
        *self.discovered.write().await = Some(found.clone());
        Ok(found)
    }

    /// The authorization request (code flow, PKCE S256, random state and nonce).
    pub async fn authorize(&self, ask: &Ask) -> Result<Authorization, Error> {
        let discovered = self.discovered(false).await?;
        let state = kopplung_web::shell::random_hex(32)?;
        let nonce = kopplung_web::shell::random_hex(32)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (state_for, nonce_for) = (state.clone(), nonce.clone());
        let mut request = discovered
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state_for),
                move || Nonce::new(nonce_for),
            )
            .set_pkce_challenge(challenge);
        if ask.consent {
            for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
                request = request.add_scope(Scope::new(scope.clone()));
            }
        }
        if let Some(level) = ask.level {
            for acr in self.config.acr_values_for(level) {
                request = request.add_auth_context_value(AuthenticationContextClass::new(acr));
            }
        }
        if ask.again {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        let (url, _, _) = request.url();
        Ok(Authorization {
            url,
            state,
            nonce,
            pkce_verifier: verifier.secret().clone(),
        })
    }

    fn verify<'t>(
        discovered: &Discovered,
        token: &'t CoreIdToken,
        nonce: &Nonce,
    ) -> Result<&'t CoreIdTokenClaims, ClaimsVerificationError> {
        // RS256 only: never an HMAC with the client secret, never `none`.
        let verifier = discovered
            .client
            .id_token_verifier()
            .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
        token.claims(&verifier, nonce)
    }

    /// Exchanges `code` (with the PKCE verifier) and checks the ID token: signature,
    /// issuer, audience, expiry, nonce; then `acr` (a level must map) and `auth_time`.
    pub async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
        consent: bool,
    ) -> Result<Verified, Error> {
        let id = &self.config.id;
        let discovered = self.discovered(false).await?;
        let response = discovered
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| unavailable(id, e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(answer) => rejected(
                    id,
                    format!("the token endpoint refused the code: {}", answer.error()),
                ),
                RequestTokenError::Parse(..) => rejected(id, "the token response is unreadable"),
                other => unavailable(id, format!("token endpoint: {other}")),
            })?;
        let token = response
            .id_token()
            .ok_or_else(|| rejected(id, "the token response has no ID token"))?;
        let nonce = Nonce::new(nonce);
        let claims = match Self::verify(&discovered, token, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider may have rolled its keys since we fetched them.
                let discovered = self.discovered(true).await?;
                Self::verify(&discovered, token, &nonce)
            }
            other => other,
        }
        .map_err(|e| rejected(id, failure_kind(&e)))?;
        let acr = claims
            .auth_context_ref()
            .map(|acr| acr.as_str().to_owned())
            .ok_or_else(|| rejected(id, "the ID token has no acr"))?;
        let level = self.config.level_of(&acr).ok_or_else(|| {
            rejected(
                id,
                "the ID token's acr has no level in [identity_provider.levels]",
            )
        })?;
        let auth_time = claims
            .auth_time()
            .map(|t| t.timestamp())
            .ok_or_else(|| rejected(id, "the ID token has no auth_time"))?;
        let amr: Vec<&str> = claims
            .auth_method_refs()
            .map(|list| list.iter().map(|a| a.as_str()).collect())
            .unwrap_or_default();
        let mut found = prefill::Found::default();
        if consent {
            found = prefill::Found::of_claims(claims);
            if !found.complete()
                && let Ok(request) = discovered.client.user_info(
                    AccessToken::new(response.access_token().secret().clone()),
                    Some(SubjectIdentifier::new(claims.subject().as_str().to_owned())),
                )
            {
                // Claims the ID token left to the userinfo endpoint (oidc-provider does
                // by default); without them the form is only not prefilled.
                let answer: Result<CoreUserInfoClaims, _> = request.request_async(&self.http).await;
                match answer {
                    Ok(info) => found.complete_with(&prefill::Found::of_user_info(&info)),
                    Err(e) => {
                        tracing::warn!(provider = %id, error = %e, "userinfo failed; no prefill")
                    }
                }
            }
        }
        Ok(Verified {
            issuer: claims.issuer().as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            level,
            means: self.config.means_of(amr),
            acr,
            auth_time,
            expires_at: claims.expiration().timestamp(),
            id_token: token.to_string(),
            prefill: consent.then(|| found.groups()).flatten(),
        })
    }

    /// The provider's end-session URL with `id_token_hint`, `post_logout_redirect_uri`
    /// and `state`; `None` if it announces none.
    pub async fn logout_url(
        &self,
        id_token: &str,
        state: &str,
        back: &str,
    ) -> Result<Option<url::Url>, Error> {
        let discovered = self.discovered(false).await?;
        let Some(endpoint) = discovered.end_session.clone() else {
            return Ok(None);
        };
        let back = self
            .config
            .post_logout_redirect_uri
            .clone()
            .unwrap_or_else(|| back.to_owned());
        let back = PostLogoutRedirectUrl::new(back).map_err(|e| unavailable(&self.config.id, e))?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.config.client_id.clone()))
            .set_post_logout_redirect_uri(back)
            .set_state(CsrfToken::new(state.to_owned()));
        // The stored token was verified when it came; a token that no longer parses is
        // left out (the provider then asks the citizen).
        if let Ok(token) = id_token.parse::<CoreIdToken>() {
            request = request.set_id_token_hint(&token);
        }
        Ok(Some(request.http_get_url()))
    }
}

/// The client secret from `client_secret_file`.
fn read_secret(config: &IdentityProvider) -> Result<ClientSecret, Error> {
    let file = &config.client_secret_file;
    let problem = |what: String| {
        Error::IdentityProviderUnavailable(format!(
            "{}: [[identity_provider]] client_secret_file {}: {what}",
            config.id,
            file.display()
        ))
    };
    let secret = std::fs::read_to_string(file).map_err(|e| problem(e.to_string()))?;
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(problem("the file is empty".into()));
    }
    Ok(ClientSecret::new(secret.to_owned()))
}

/// The configured providers.
pub struct Providers(Vec<Provider>);

impl Providers {
    pub fn new(configs: &[IdentityProvider], public_url: &str) -> Result<Self, Error> {
        let redirect = format!("{}{}", public_url.trim_end_matches('/'), super::RETURN_PATH);
        configs
            .iter()
            .map(|config| Provider::new(config.clone(), &redirect))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.0.iter().find(|p| p.config.id == id)
    }

    pub fn all(&self) -> &[Provider] {
        &self.0
    }
}
