//! One provider's signing keys (its JWKS): fetched when first needed, kept, fetched again
//! when they are old or a token names a key the set does not have — at most once per
//! [`REFETCH_INTERVAL`], so that tokens with made-up key ids cannot make the hub hammer
//! the provider.

use openidconnect::core::{CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::reqwest;
use openidconnect::{IssuerUrl, JsonWebKeySetUrl};
use time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;

/// Keys older than this are fetched again before use (kept if that fails).
pub(crate) const KEYS_MAX_AGE: Duration = Duration::hours(1);

/// The least time between two fetches caused by unknown key ids.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::seconds(60);

/// After a failed fetch with no keys at hand, requests are refused at once for this long
/// instead of each waiting for the provider again.
pub(crate) const FAILED_BACKOFF: Duration = Duration::seconds(5);

#[derive(Default)]
struct Cached {
    /// Learnt from discovery (or configured).
    jwks_url: Option<JsonWebKeySetUrl>,
    /// The keys and when they were fetched.
    keys: Option<(CoreJsonWebKeySet, OffsetDateTime)>,
    /// When a fetch was last tried, and whether it failed.
    last_try: Option<(OffsetDateTime, bool)>,
}

pub(crate) struct Keys {
    provider: String,
    /// Whose discovery document names the key set, unless it is configured.
    issuer: IssuerUrl,
    // A tokio mutex: one fetch at a time; the others wait for its keys.
    cached: Mutex<Cached>,
}

/// Why no keys could be had.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unavailable(String);

impl Keys {
    pub(crate) fn new(
        provider: &str,
        issuer: IssuerUrl,
        jwks_url: Option<JsonWebKeySetUrl>,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            issuer,
            cached: Mutex::new(Cached {
                jwks_url,
                ..Cached::default()
            }),
        }
    }

    /// The keys to verify with: those at hand, fetched if there are none or they are old.
    pub(crate) async fn current(
        &self,
        http: &reqwest::Client,
        now: OffsetDateTime,
    ) -> Result<CoreJsonWebKeySet, Unavailable> {
        let mut cached = self.cached.lock().await;
        match &cached.keys {
            Some((keys, fetched)) if now - *fetched < KEYS_MAX_AGE => return Ok(keys.clone()),
            _ => {}
        }
        let failed_lately =
            matches!(cached.last_try, Some((at, true)) if now - at < FAILED_BACKOFF);
        if !failed_lately {
            // Old keys stay in use if this fails.
            self.fetch(&mut cached, http, now).await;
        }
        cached
            .keys
            .as_ref()
            .map(|(keys, _)| keys.clone())
            .ok_or_else(|| Unavailable(format!("no keys of provider {}", self.provider)))
    }

    /// The keys fetched again after a token named one the set lacks; none if that was
    /// done less than [`REFETCH_INTERVAL`] ago or brought nothing new.
    pub(crate) async fn refetched(
        &self,
        http: &reqwest::Client,
        now: OffsetDateTime,
    ) -> Option<CoreJsonWebKeySet> {
        let mut cached = self.cached.lock().await;
        if cached
            .last_try
            .is_some_and(|(at, _)| now - at < REFETCH_INTERVAL)
        {
            return None;
        }
        if self.fetch(&mut cached, http, now).await {
            cached.keys.as_ref().map(|(keys, _)| keys.clone())
        } else {
            None
        }
    }

    /// Fetches the keys (and, the first time, the discovery document); keeps the old
    /// keys if that fails. Whether it succeeded.
    async fn fetch(
        &self,
        cached: &mut Cached,
        http: &reqwest::Client,
        now: OffsetDateTime,
    ) -> bool {
        let fetched = match &cached.jwks_url {
            Some(url) => CoreJsonWebKeySet::fetch_async(url, http)
                .await
                .map(|keys| (keys, url.clone()))
                .map_err(|e| e.to_string()),
            None => CoreProviderMetadata::discover_async(self.issuer.clone(), http)
                .await
                .map(|metadata| (metadata.jwks().clone(), metadata.jwks_uri().clone()))
                .map_err(|e| e.to_string()),
        };
        match fetched {
            Ok((keys, url)) => {
                tracing::info!(provider = %self.provider, keys = keys.keys().len(), "identity provider's keys fetched");
                cached.jwks_url = Some(url);
                cached.keys = Some((keys, now));
                cached.last_try = Some((now, false));
                true
            }
            Err(error) => {
                tracing::warn!(provider = %self.provider, %error, "fetching the identity provider's keys failed");
                cached.last_try = Some((now, true));
                false
            }
        }
    }
}
