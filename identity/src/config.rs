//! `[[identity_provider]]`: an issuer the hub trusts, where its keys are, for whom its
//! tokens must be issued, and what its `acr` and `amr` values mean.

use std::collections::BTreeMap;

use kopplung_core::identity::{Means, TrustLevel};
use serde::Deserialize;
use url::Url;

/// One trusted identity provider, as `kopplung.toml` gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub id: String,
    /// The issuer identifier, exactly as the ID tokens' `iss` carries it.
    pub issuer: String,
    /// Where its keys are; by default from `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The client ids its tokens may be issued to (`aud`), e.g. the portal's.
    pub audiences: Vec<String>,
    /// How long ago the citizen may have authenticated (`auth_time`).
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Whether the assertion itself is kept and forwarded to the procedure (else only
    /// its SHA-256).
    #[serde(default)]
    pub forward_assertion: bool,
    /// `acr` value -> trust level.
    #[serde(default = "default_levels")]
    pub levels: BTreeMap<String, TrustLevel>,
    /// `amr` value -> means of identification (an unmapped one is `sonstiges`).
    #[serde(default = "default_means")]
    pub means: BTreeMap<String, Means>,
}

fn default_max_age_secs() -> u64 {
    3600
}

/// The eIDAS levels of assurance.
pub fn default_levels() -> BTreeMap<String, TrustLevel> {
    [
        ("http://eidas.europa.eu/LoA/low", TrustLevel::Basis),
        (
            "http://eidas.europa.eu/LoA/substantial",
            TrustLevel::Substanziell,
        ),
        ("http://eidas.europa.eu/LoA/high", TrustLevel::Hoch),
    ]
    .into_iter()
    .map(|(acr, level)| (acr.to_owned(), level))
    .collect()
}

/// RFC 8176's codes for what the Servicekonto offers.
pub fn default_means() -> BTreeMap<String, Means> {
    [
        ("pwd", Means::BenutzernamePasswort),
        ("swk", Means::ElsterZertifikat),
        ("hwk", Means::OnlineAusweis),
    ]
    .into_iter()
    .map(|(amr, means)| (amr.to_owned(), means))
    .collect()
}

/// The longest `max_age_secs` accepted: a day. An identification older than that is no
/// proof of who applies now.
pub const MAX_AGE_LIMIT_SECS: u64 = 86_400;

impl ProviderConfig {
    /// Every problem of this entry: the key and what is wrong with it.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        if self.id.trim().is_empty() || self.id.chars().any(char::is_whitespace) {
            found.push(("id", "must be a name without spaces".to_owned()));
        }
        if let Err(message) = trusted_url(&self.issuer) {
            found.push(("issuer", message));
        }
        if let Some(jwks) = &self.jwks_url
            && let Err(message) = trusted_url(jwks)
        {
            found.push(("jwks_url", message));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            found.push((
                "audiences",
                "name at least one client id, none of them empty".to_owned(),
            ));
        }
        if !(1..=MAX_AGE_LIMIT_SECS).contains(&self.max_age_secs) {
            found.push(("max_age_secs", format!("must be 1 to {MAX_AGE_LIMIT_SECS}")));
        }
        if self.levels.is_empty() {
            found.push((
                "levels",
                "map at least one acr value to basis, substanziell or hoch".to_owned(),
            ));
        }
        if self
            .levels
            .keys()
            .chain(self.means.keys())
            .any(|k| k.is_empty())
        {
            found.push(("levels", "an acr or amr value is empty".to_owned()));
        }
        found
    }
}

/// An issuer or key URL the hub may trust: HTTPS, or plain HTTP on this machine only
/// (the demo's identity provider); no query, fragment or credentials.
fn trusted_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("`{text}` is no URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.host().is_none() {
        return Err(format!(
            "`{text}`: need https:// and a host (http:// only on 127.0.0.1, ::1 or localhost)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("`{text}`: no query, fragment or user name"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(extra: &str) -> ProviderConfig {
        toml_like(&format!(
            r#"{{"id": "servicekonto", "issuer": "https://id.example", "audiences": ["portal"]{extra}}}"#
        ))
    }

    fn toml_like(json: &str) -> ProviderConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_are_the_eidas_levels_and_an_hour() {
        let p = provider("");
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        assert_eq!(p.max_age_secs, 3600);
        assert!(!p.forward_assertion);
        assert_eq!(
            p.levels.get("http://eidas.europa.eu/LoA/substantial"),
            Some(&TrustLevel::Substanziell)
        );
        assert_eq!(p.means.get("hwk"), Some(&Means::OnlineAusweis));
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let p = toml_like(
            r#"{"id": "", "issuer": "http://id.example", "jwks_url": "https://id.example/jwks?x=1",
                "audiences": [], "max_age_secs": 0, "levels": {}}"#,
        );
        let keys: Vec<&str> = p.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "id",
                "issuer",
                "jwks_url",
                "audiences",
                "max_age_secs",
                "levels"
            ]
        );
        let local = toml_like(
            r#"{"id": "demo", "issuer": "http://127.0.0.1:8082", "audiences": ["portal"]}"#,
        );
        assert!(local.problems().is_empty());
    }
}
