//! The assertion itself: what may be read of it before it is verified (only to choose the
//! provider and the audience), and what a verified ID token's claims mean here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kopplung_core::identity::{Authentication, Means, Pseudonym, Refusal, Voucher};
use openidconnect::core::CoreIdTokenClaims;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::config::ProviderConfig;

/// The largest assertion read at all: an ID token is a few kilobytes.
pub(crate) const MAX_ASSERTION_BYTES: usize = 16 * 1024;

/// How far clocks may disagree: for `exp` and for an `auth_time` just ahead of ours.
pub(crate) const SKEW: Duration = Duration::seconds(60);

/// What an unverified token says about whom to ask: nothing of it is trusted yet.
#[derive(Debug)]
pub(crate) struct Peek {
    pub issuer: String,
    pub audiences: Vec<String>,
}

/// Reads `iss` and `aud` of a compact JWS without verifying it; anything that is no
/// compact JWS with JSON header and claims is malformed.
pub(crate) fn peek(assertion: &str) -> Result<Peek, Refusal> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(Refusal::Malformed(format!(
            "the assertion is longer than {MAX_ASSERTION_BYTES} bytes"
        )));
    }
    let malformed = || {
        Refusal::Malformed(
            "the assertion must be a compact JWS: three base64url parts, JSON header and claims"
                .into(),
        )
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(malformed());
    };
    let json = |part: &str| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
    };
    let (Some(_), Some(claims), true) = (
        json(header),
        json(claims),
        URL_SAFE_NO_PAD.decode(signature).is_ok(),
    ) else {
        return Err(malformed());
    };
    let Some(issuer) = claims.get("iss").and_then(Value::as_str) else {
        return Err(Refusal::Incomplete(
            "the assertion names no issuer (iss)".into(),
        ));
    };
    let audiences = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Peek {
        issuer: issuer.to_owned(),
        audiences,
    })
}

/// What a verified ID token's claims say, as the hub and the procedure read it.
pub(crate) fn authentication(
    claims: &CoreIdTokenClaims,
    provider: &ProviderConfig,
    now: OffsetDateTime,
    assertion: &str,
) -> Result<Authentication, Refusal> {
    // OpenID Connect allows 255 ASCII characters; the message carries them as they are.
    let subject = Pseudonym::parse(claims.subject().as_str())
        .map_err(|e| Refusal::Incomplete(format!("sub: {e}")))?;
    let Some(auth_time) = claims.auth_time() else {
        return Err(Refusal::Incomplete("the assertion has no auth_time".into()));
    };
    let authenticated_at = OffsetDateTime::from_unix_timestamp(auth_time.timestamp())
        .map_err(|_| Refusal::Incomplete("auth_time is out of range".into()))?;
    if authenticated_at > now + SKEW {
        return Err(Refusal::Incomplete("auth_time lies in the future".into()));
    }
    let max_age = Duration::seconds(i64::try_from(provider.max_age_secs).unwrap_or(i64::MAX));
    if now - authenticated_at > max_age {
        return Err(Refusal::TooOld);
    }
    let Some(acr) = claims.auth_context_ref() else {
        return Err(Refusal::Incomplete(
            "the assertion has no acr (level of assurance)".into(),
        ));
    };
    let Some(level) = provider.levels.get(acr.as_str()).copied() else {
        return Err(Refusal::Incomplete(format!(
            "acr `{}` means no trust level at this hub",
            acr.as_str()
        )));
    };
    // The first method the provider's table knows; the level never depends on it.
    let means = claims
        .auth_method_refs()
        .into_iter()
        .flatten()
        .find_map(|amr| provider.means.get(amr.as_str()).copied())
        .unwrap_or(Means::Sonstiges);
    Ok(Authentication {
        level,
        means,
        issuer: provider.issuer.clone(),
        subject,
        authenticated_at,
        voucher: Voucher::IdentityProvider,
        assertion_sha256: Some(hex::encode(openssl::sha::sha256(assertion.as_bytes()))),
        assertion: provider.forward_assertion.then(|| assertion.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn only_a_compact_jws_with_json_is_read() {
        let header = part(&serde_json::json!({"alg": "RS256"}));
        let claims =
            part(&serde_json::json!({"iss": "https://id.example", "aud": ["portal", "x"]}));
        let peeked = peek(&format!("{header}.{claims}.c2ln")).unwrap();
        assert_eq!(peeked.issuer, "https://id.example");
        assert_eq!(peeked.audiences, ["portal", "x"]);
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            &format!("{header}.bm9wZQ.c2ln"),
            &format!("{header}.{claims}.!!"),
            &format!("{header}.{}.c2ln", part(&serde_json::json!(["iss"]))),
            &"x".repeat(MAX_ASSERTION_BYTES + 1),
        ] {
            assert!(matches!(peek(bad), Err(Refusal::Malformed(_))), "{bad}");
        }
        let no_issuer = format!("{header}.{}.c2ln", part(&serde_json::json!({"aud": "p"})));
        assert!(matches!(peek(&no_issuer), Err(Refusal::Incomplete(_))));
    }
}
