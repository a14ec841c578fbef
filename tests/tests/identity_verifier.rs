//! The hub's verifier of ID tokens (crate `kopplung-identity`) against an identity
//! provider played by the test on loopback: real discovery, real JWKS over HTTP, tokens
//! signed by OpenSSL. The hub's clock is a `ManualClock`, so key refetching and its rate
//! limit are shown without waiting.

use std::sync::Arc;

use kopplung_core::ManualClock;
use kopplung_core::identity::{Means, Refusal, TrustLevel, Voucher};
use kopplung_core::intake::IdentityVerifier;
use kopplung_identity::{ProviderConfig, Verifier};
use kopplung_tests::issuer::{ACR_HIGH, ACR_LOW, ACR_SUBSTANTIAL, SigningKey, TestIssuer};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

fn provider(issuer: &TestIssuer, extra: &str) -> ProviderConfig {
    let config: Value = serde_json::from_str(&format!(
        r#"{{"id": "test-idp", "issuer": "{}", "audiences": ["portal"]{extra}}}"#,
        issuer.url
    ))
    .unwrap();
    serde_json::from_value(config).unwrap()
}

fn verifier_of(providers: &[ProviderConfig]) -> (Verifier, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    (Verifier::new(providers, clock.clone()).unwrap(), clock)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(openssl::sha::sha256(text.as_bytes()))
}

#[tokio::test]
async fn a_valid_token_becomes_an_authentication_by_the_providers_tables() {
    let issuer = TestIssuer::start().await;
    let (verifier, _) = verifier_of(&[provider(&issuer, "")]);
    let token = issuer.token(&issuer.claims(ACR_SUBSTANTIAL, "swk", "portal"));
    let auth = verifier.verify(&token).await.unwrap();
    assert_eq!(auth.level, TrustLevel::Substanziell);
    assert_eq!(auth.means, Means::ElsterZertifikat);
    assert_eq!(auth.issuer, issuer.url);
    assert_eq!(auth.subject.as_str(), "pairwise-subject-4711");
    assert_eq!(auth.voucher, Voucher::IdentityProvider);
    assert_eq!(auth.assertion_sha256, Some(sha256_hex(&token)));
    assert_eq!(auth.assertion, None, "kept only where configured");
    // Discovery once, then the cached keys.
    verifier.verify(&token).await.unwrap();
    assert_eq!(issuer.jwks_fetches(), 1);

    // The provider's own tables, and forwarding the assertion.
    let custom = provider(
        &issuer,
        r#", "forward_assertion": true, "levels": {"urn:idp:stark": "hoch"}, "means": {"card": "online-ausweis"}"#,
    );
    let (verifier, _) = verifier_of(&[custom]);
    let mut claims = issuer.claims("urn:idp:stark", "mfa", "portal");
    claims["amr"] = json!(["mfa", "card"]);
    let token = issuer.token(&claims);
    let auth = verifier.verify(&token).await.unwrap();
    assert_eq!(
        (auth.level, auth.means),
        (TrustLevel::Hoch, Means::OnlineAusweis)
    );
    assert_eq!(auth.assertion.as_deref(), Some(token.as_str()));
    // An amr no table names is `sonstiges`; an acr without a level is refused.
    claims["amr"] = json!(["mfa"]);
    let auth = verifier.verify(&issuer.token(&claims)).await.unwrap();
    assert_eq!(auth.means, Means::Sonstiges);
    let unknown_acr = issuer.claims(ACR_HIGH, "hwk", "portal");
    assert!(matches!(
        verifier.verify(&issuer.token(&unknown_acr)).await,
        Err(Refusal::Incomplete(_))
    ));
}

#[tokio::test]
async fn es256_is_accepted_and_other_algorithms_are_not() {
    let issuer = TestIssuer::start_with(SigningKey::p256("ec-1")).await;
    let (verifier, _) = verifier_of(&[provider(&issuer, "")]);
    let claims = issuer.claims(ACR_LOW, "pwd", "portal");
    let auth = verifier.verify(&issuer.token(&claims)).await.unwrap();
    assert_eq!(
        (auth.level, auth.means),
        (TrustLevel::Basis, Means::BenutzernamePasswort)
    );
    let b64 = |value: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    for alg in ["none", "HS256", "RS512", "PS256"] {
        let unsigned = format!(
            "{}.{}.c2lnbmF0dXJl",
            b64(&json!({"alg": alg, "kid": "ec-1"})),
            b64(&claims)
        );
        assert_eq!(
            verifier.verify(&unsigned).await,
            Err(Refusal::BadSignature),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn rotated_keys_are_fetched_once_and_unknown_key_ids_cannot_hammer_the_provider() {
    let issuer = TestIssuer::start().await;
    let (verifier, clock) = verifier_of(&[provider(&issuer, "")]);
    let claims = issuer.claims(ACR_SUBSTANTIAL, "swk", "portal");
    verifier.verify(&issuer.token(&claims)).await.unwrap();
    assert_eq!(issuer.jwks_fetches(), 1);

    // The provider rotates: the new key id is fetched once, on first sight.
    clock.advance(Duration::seconds(120));
    issuer.rotate(SigningKey::rsa("key-2"));
    verifier.verify(&issuer.token(&claims)).await.unwrap();
    assert_eq!(issuer.jwks_fetches(), 2);

    // A key nobody published: one refetch at most per minute, then a bad signature.
    clock.advance(Duration::seconds(120));
    let forged = SigningKey::rsa("key-x").sign(&claims);
    assert_eq!(verifier.verify(&forged).await, Err(Refusal::BadSignature));
    assert_eq!(issuer.jwks_fetches(), 3);
    for _ in 0..5 {
        assert_eq!(verifier.verify(&forged).await, Err(Refusal::BadSignature));
    }
    assert_eq!(issuer.jwks_fetches(), 3, "rate limited");
    clock.advance(Duration::seconds(61));
    assert_eq!(verifier.verify(&forged).await, Err(Refusal::BadSignature));
    assert_eq!(issuer.jwks_fetches(), 4);

    // A published key id with another key's signature: bad, without a fetch.
    let same_kid = SigningKey::rsa("key-2").sign(&claims);
    assert_eq!(verifier.verify(&same_kid).await, Err(Refusal::BadSignature));
    assert_eq!(issuer.jwks_fetches(), 4);
}

#[tokio::test]
async fn time_audience_and_claims_are_checked() {
    let issuer = TestIssuer::start().await;
    let (verifier, clock) = verifier_of(&[provider(&issuer, r#", "max_age_secs": 600"#)]);
    let base = issuer.claims(ACR_SUBSTANTIAL, "swk", "portal");
    let now = clock.now_unix();
    let with = |changes: Value| {
        let mut claims = base.clone();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        issuer.token(&claims)
    };
    let cases = [
        ("expired", json!({"exp": now - 120}), Err(Refusal::Expired)),
        ("expired within the skew", json!({"exp": now - 30}), Ok(())),
        (
            "authenticated longer ago than max_age",
            json!({"auth_time": now - 700}),
            Err(Refusal::TooOld),
        ),
        (
            "another audience",
            json!({"aud": "anderes-portal"}),
            Err(Refusal::WrongAudience),
        ),
        (
            "ours and an untrusted one",
            json!({"aud": ["portal", "fremd"]}),
            Err(Refusal::WrongAudience),
        ),
        (
            "an unknown issuer",
            json!({"iss": "https://idp.example"}),
            Err(Refusal::UnknownIssuer),
        ),
        (
            "no auth_time",
            json!({"auth_time": null}),
            Err(Refusal::Incomplete(String::new())),
        ),
        (
            "no acr",
            json!({"acr": null}),
            Err(Refusal::Incomplete(String::new())),
        ),
        (
            "no sub",
            json!({"sub": null}),
            Err(Refusal::Incomplete(String::new())),
        ),
        (
            "a sub the message's XML cannot carry",
            json!({"sub": "Erika Müller"}),
            Err(Refusal::Incomplete(String::new())),
        ),
    ];
    for (what, changes, expected) in cases {
        let got = verifier.verify(&with(changes)).await.map(drop);
        match (&got, &expected) {
            (Err(Refusal::Incomplete(_)), Err(Refusal::Incomplete(_))) => {}
            _ => assert_eq!(got, expected, "{what}"),
        }
    }
    assert!(matches!(
        verifier.verify("kein.jwt").await,
        Err(Refusal::Malformed(_))
    ));
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable_not_a_bad_signature() {
    let issuer = TestIssuer::start().await;
    let mut config = provider(&issuer, "");
    // Its keys are said to be where nothing listens.
    config.jwks_url = Some(format!(
        "http://127.0.0.1:{}/jwks",
        kopplung_tests::free_port()
    ));
    let (verifier, clock) = verifier_of(&[config]);
    let token = issuer.token(&issuer.claims(ACR_SUBSTANTIAL, "swk", "portal"));
    assert_eq!(verifier.verify(&token).await, Err(Refusal::KeysUnavailable));
    clock.advance(Duration::seconds(10));
    assert_eq!(verifier.verify(&token).await, Err(Refusal::KeysUnavailable));
}

/// The clock's now in seconds since the epoch.
trait Unix {
    fn now_unix(&self) -> i64;
}

impl Unix for ManualClock {
    fn now_unix(&self) -> i64 {
        use kopplung_core::Clock;
        self.now().unix_timestamp()
    }
}
