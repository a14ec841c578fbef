//! An identity provider played by the test: a loopback HTTP server with an OpenID
//! Connect discovery document and the JWKS of its keys, and ID tokens signed with them
//! by OpenSSL (RS256, ES256) — independent of the hub's verifier. Its keys can be
//! rotated, and it counts how often its key set was fetched.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::{Value, json};

/// The acr values of the eIDAS levels, as the hub's default table maps them.
pub const ACR_LOW: &str = "http://eidas.europa.eu/LoA/low";
pub const ACR_SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
pub const ACR_HIGH: &str = "http://eidas.europa.eu/LoA/high";

/// A signing key and its id.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    key: PKey<Private>,
    es256: bool,
}

impl SigningKey {
    /// A fresh RSA key (2048 bits) for RS256.
    pub fn rsa(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            key: PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("key"),
            es256: false,
        }
    }

    /// A fresh P-256 key for ES256.
    pub fn p256(kid: &str) -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        Self {
            kid: kid.to_owned(),
            key: PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("key"),
            es256: true,
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let b64 = |bytes: Vec<u8>| URL_SAFE_NO_PAD.encode(bytes);
        if self.es256 {
            let ec = self.key.ec_key().expect("EC key");
            let mut ctx = openssl::bn::BigNumContext::new().expect("context");
            let (mut x, mut y) = (
                openssl::bn::BigNum::new().expect("x"),
                openssl::bn::BigNum::new().expect("y"),
            );
            ec.public_key()
                .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                .expect("coordinates");
            json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
                "x": b64(x.to_vec_padded(32).expect("x")), "y": b64(y.to_vec_padded(32).expect("y"))})
        } else {
            let rsa = self.key.rsa().expect("RSA key");
            json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                "n": b64(rsa.n().to_vec()), "e": b64(rsa.e().to_vec())})
        }
    }

    /// `claims` as a compact JWS signed with this key (`header` fields added).
    pub fn sign(&self, claims: &Value) -> String {
        let alg = if self.es256 { "ES256" } else { "RS256" };
        self.sign_with_header(&json!({"alg": alg, "typ": "JWT", "kid": self.kid}), claims)
    }

    /// `claims` signed under exactly `header` (its `alg` decides nothing here: the key
    /// signs as it can).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).expect("signer");
        signer.update(input.as_bytes()).expect("sign");
        let der = signer.sign_to_vec().expect("signature");
        let signature = if self.es256 {
            // JWS takes r || s, 32 bytes each, not DER.
            let sig = EcdsaSig::from_der(&der).expect("ECDSA signature");
            [
                sig.r().to_vec_padded(32).expect("r"),
                sig.s().to_vec_padded(32).expect("s"),
            ]
            .concat()
        } else {
            der
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// The identity provider on loopback.
pub struct TestIssuer {
    /// The issuer identifier (`iss`), `http://127.0.0.1:<port>`.
    pub url: String,
    /// The key it signs with now.
    key: Mutex<SigningKey>,
    /// The keys its JWKS publishes.
    published: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
    /// An issuer the hubs of [`TestIssuer::hub_config_for_refusals`] trust too, where
    /// nothing listens: its keys cannot be fetched.
    pub unreachable: String,
}

impl TestIssuer {
    /// Starts it with one RSA key.
    pub async fn start() -> Self {
        Self::start_with(SigningKey::rsa("key-1")).await
    }

    pub async fn start_with(key: SigningKey) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let published = Arc::new(Mutex::new(vec![key.jwk()]));
        let fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({
            "issuer": url,
            "authorization_endpoint": format!("{url}/auth"),
            "token_endpoint": format!("{url}/token"),
            "jwks_uri": format!("{url}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        });
        let app = {
            let (published, fetches) = (published.clone(), fetches.clone());
            axum::Router::new()
                .route(
                    "/.well-known/openid-configuration",
                    axum::routing::get(move || async move { axum::Json(discovery) }),
                )
                .route(
                    "/jwks",
                    axum::routing::get(move || {
                        let keys = published.lock().unwrap().clone();
                        fetches.fetch_add(1, Ordering::SeqCst);
                        async move { axum::Json(json!({ "keys": keys })) }
                    }),
                )
        };
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            key: Mutex::new(key),
            published,
            fetches,
            server,
            unreachable: format!("http://127.0.0.1:{}", crate::free_port()),
        }
    }

    /// How often the key set was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Signs with `key` from now on and publishes it beside the old ones.
    pub fn rotate(&self, key: SigningKey) {
        self.published.lock().unwrap().push(key.jwk());
        *self.key.lock().unwrap() = key;
    }

    /// An ID token with `claims`, signed with the current key.
    pub fn token(&self, claims: &Value) -> String {
        self.key.lock().unwrap().sign(claims)
    }

    /// The claims of a fresh sign-in at level `acr` by password (`pwd`) or ELSTER (`swk`)
    /// and so on, for `audience`: issued now, valid ten minutes.
    pub fn claims(&self, acr: &str, amr: &str, audience: &str) -> Value {
        let now = crate::now_unix();
        json!({
            "iss": self.url,
            "sub": "pairwise-subject-4711",
            "aud": audience,
            "exp": now + 600,
            "iat": now,
            "auth_time": now - 30,
            "nonce": "n-0S6_WzA2Mj",
            "acr": acr,
            "amr": [amr],
        })
    }

    /// A `[[identity_provider]]` section of `kopplung.toml` trusting it for `audience`,
    /// with the default levels and means.
    pub fn hub_config(&self, id: &str, audience: &str, max_age_secs: u64) -> String {
        format!(
            "[[identity_provider]]\nid = \"{id}\"\nissuer = \"{}\"\naudiences = [\"{audience}\"]\nmax_age_secs = {max_age_secs}\n",
            self.url
        )
    }

    /// What [`TestIssuer::refused_cases`] needs of a test hub's `kopplung.toml`: this
    /// issuer trusted for `portal` (maximum age an hour), an unreachable one, and the
    /// client `legacy` that may vouch for `basis` on its own.
    pub fn hub_config_for_refusals(&self) -> String {
        format!(
            "{}\n[[identity_provider]]\nid = \"unreachable-idp\"\nissuer = \"{}\"\naudiences = [\"portal\"]\n\n[[client]]\nid = \"legacy\"\ntoken_sha256 = \"{}\"\nasserts_up_to = \"basis\"\n",
            self.hub_config("test-idp", "portal", 3600),
            self.unreachable,
            crate::token_sha256(LEGACY_TOKEN)
        )
    }

    /// Every way the identification of an application for a service that needs
    /// `substanziell` is refused, on a hub configured by
    /// [`TestIssuer::hub_config_for_refusals`].
    pub fn refused_cases(&self) -> Vec<RefusedCase> {
        let now = crate::now_unix();
        let claims = self.claims(ACR_SUBSTANTIAL, "swk", "portal");
        let token = |changes: Value| {
            let mut changed = claims.clone();
            for (key, value) in changes.as_object().expect("claims") {
                if value.is_null() {
                    changed.as_object_mut().expect("claims").remove(key);
                } else {
                    changed[key] = value.clone();
                }
            }
            Some(assertion(&self.token(&changed)))
        };
        let forged = SigningKey::rsa(&self.key.lock().unwrap().kid).sign(&claims);
        let own = |level: &str| Some(crate::shared::vouched_applicant(level));
        let case = |what, sender, applicant, status, kind| RefusedCase {
            what,
            sender,
            applicant,
            status,
            kind,
        };
        use Sender::{Legacy, Other, Test};
        vec![
            case("no assertion", Test, None, 403, "authentication-required"),
            case(
                "forged signature (another key, the same key id)",
                Test,
                Some(assertion(&forged)),
                403,
                "assertion-signature",
            ),
            case(
                "expired",
                Test,
                token(json!({"exp": now - 600, "iat": now - 1200})),
                403,
                "assertion-expired",
            ),
            case(
                "issued for another client",
                Test,
                token(json!({"aud": "anderes-portal"})),
                403,
                "assertion-audience",
            ),
            case(
                "an issuer the hub does not trust",
                Test,
                token(json!({"iss": "https://idp.example"})),
                403,
                "issuer-unknown",
            ),
            case(
                "level basis for a service that needs substanziell",
                Test,
                token(json!({"acr": ACR_LOW, "amr": ["pwd"]})),
                403,
                "trust-level-too-low",
            ),
            case(
                "replay of an old sign-in beyond the maximum age",
                Test,
                token(json!({"auth_time": now - 7200})),
                403,
                "authentication-too-old",
            ),
            case(
                "no acr",
                Test,
                token(json!({"acr": null})),
                403,
                "assertion-incomplete",
            ),
            case(
                "an identity provider whose keys cannot be fetched",
                Test,
                token(json!({"iss": self.unreachable})),
                503,
                "identity-provider-unavailable",
            ),
            case(
                "no compact JWS",
                Test,
                Some(assertion("kein-token")),
                422,
                "authentication-malformed",
            ),
            case(
                "an assertion and a level at once",
                Test,
                Some(
                    json!({"authentication": {"assertion": self.token(&claims), "level": "hoch"}}),
                ),
                422,
                "authentication-malformed",
            ),
            case(
                "a block of unknown keys",
                Test,
                Some(json!({"authentifizierung": {}})),
                422,
                "authentication-malformed",
            ),
            case(
                "a client vouching without permission",
                Other,
                own("substanziell"),
                403,
                "client-may-not-assert",
            ),
            case(
                "a client vouching above its cap",
                Legacy,
                own("substanziell"),
                403,
                "client-may-not-assert",
            ),
            case(
                "a client vouching within its cap, for a service above it",
                Legacy,
                own("basis"),
                403,
                "trust-level-too-low",
            ),
        ]
    }
}

/// The token of the client `legacy` ([`TestIssuer::hub_config_for_refusals`]).
pub const LEGACY_TOKEN: &str = "legacy-portal-token-0123456789abcdef";

/// Which of the test hub's clients sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// `test`: may vouch for any level.
    Test,
    /// `other`: may not vouch.
    Other,
    /// `legacy`: may vouch for `basis`.
    Legacy,
}

impl Sender {
    pub fn token(self, hub: &crate::TestHub) -> String {
        match self {
            Self::Test => hub.token.clone(),
            Self::Other => crate::OTHER_TOKEN.to_owned(),
            Self::Legacy => LEGACY_TOKEN.to_owned(),
        }
    }
}

/// A request's `applicant` that is refused, and the answer it gets.
pub struct RefusedCase {
    pub what: &'static str,
    pub sender: Sender,
    /// None: no `applicant` at all.
    pub applicant: Option<Value>,
    pub status: u16,
    pub kind: &'static str,
}

/// `applicant` carrying an identity provider's assertion.
pub fn assertion(token: &str) -> Value {
    json!({"authentication": {"assertion": token}})
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
