//! OAuth 2.0 client credentials for FIT-Connect clients: the token endpoint checks a
//! client's secret (kept as SHA-256, like every bearer token of the hub: clients ask
//! for a token before each call) and issues a short-lived JWT (HS256, the hub's own
//! key) whose `scope` names what it may reach.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use josekit::jws::{HS256, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use kopplung_core::fitconnect::Reach;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Error;
use crate::auth::Clients;
use crate::config::{ClientConfig, FitConnectConfig, FitRole};

/// FIT-Connect's sender scope for every destination.
pub const SEND_ALL: &str = "send:region:DE";
const SEND_ONE: &str = "send:destination:";
const SUBSCRIBE_ONE: &str = "subscribe:destination:";
const ISSUER: &str = "kopplung-fitconnect";

/// What a valid access token says.
#[derive(Debug, Clone)]
pub struct Grant {
    pub client: String,
    pub role: FitRole,
    pub reach: Reach,
}

/// An access token as the token endpoint hands it out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub scope: String,
    pub expires_in: u64,
}

/// The clients, their secrets and the key that signs their tokens.
pub struct Tokens {
    key: Vec<u8>,
    lifetime: u64,
    secrets: Clients,
    clients: BTreeMap<String, (FitRole, Option<BTreeSet<Uuid>>)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("clients", &self.clients.keys())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn load(config: &FitConnectConfig, data_dir: &Path) -> Result<Self, Error> {
        let path = data_dir.join(&config.token_key_file);
        let key = std::fs::read_to_string(&path)
            .map_err(|e| Error::Config {
                file: path.clone(),
                message: format!("[fitconnect] token_key_file: {e}"),
            })?
            .trim()
            .as_bytes()
            .to_vec();
        if key.len() < 32 {
            return Err(Error::Config {
                file: path,
                message: "[fitconnect] token_key_file: the key must have at least 32 characters (`kopplung tokens init` creates one)".into(),
            });
        }
        let secrets = config
            .clients
            .iter()
            .map(|c| ClientConfig {
                id: c.id.clone(),
                token: c.secret.clone(),
                asserts_up_to: None,
            })
            .collect::<Vec<_>>();
        Ok(Self {
            key,
            lifetime: config.token_lifetime_secs,
            secrets: Clients::load(&secrets, data_dir)?,
            clients: config
                .clients
                .iter()
                .map(|c| {
                    let reach = c.destinations.as_ref().map(|d| d.iter().copied().collect());
                    (c.id.clone(), (c.role, reach))
                })
                .collect(),
        })
    }

    /// A token for `client` if `secret` is its secret.
    pub fn issue(&self, client: &str, secret: &str, now: OffsetDateTime) -> Option<Issued> {
        if self.secrets.authenticate_token(secret) != Some(client) {
            return None;
        }
        let (role, reach) = self.clients.get(client)?;
        let scope = match (role, reach) {
            (FitRole::Sender, None) => SEND_ALL.to_owned(),
            (FitRole::Sender, Some(ids)) => scopes(SEND_ONE, ids),
            (FitRole::Subscriber, ids) => scopes(SUBSCRIBE_ONE, ids.iter().flatten()),
        };
        // Whole seconds: strict JWT libraries refuse fractional NumericDates.
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let mut payload = JwtPayload::new();
        payload.set_issuer(ISSUER);
        payload.set_subject(client);
        payload.set_issued_at(&now.into());
        let expires = now + time::Duration::seconds(i64::try_from(self.lifetime).ok()?);
        payload.set_expires_at(&expires.into());
        payload.set_jwt_id(Uuid::new_v4().to_string());
        payload
            .set_claim("scope", Some(Value::String(scope.clone())))
            .ok()?;
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        let signer = HS256.signer_from_bytes(&self.key).ok()?;
        let token = jwt::encode_with_signer(&payload, &header, &signer).ok()?;
        Some(Issued {
            token,
            scope,
            expires_in: self.lifetime,
        })
    }

    /// What a bearer token grants now, if it is one of ours and has not expired.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Option<Grant> {
        let verifier = HS256.verifier_from_bytes(&self.key).ok()?;
        let (payload, _) = jwt::decode_with_verifier(token, &verifier).ok()?;
        if payload.issuer() != Some(ISSUER) {
            return None;
        }
        let expires = OffsetDateTime::from(payload.expires_at()?);
        if expires <= now {
            return None;
        }
        let client = payload.subject()?.to_owned();
        // A client removed from the configuration loses its tokens at once.
        let (role, _) = self.clients.get(&client)?;
        let scope = payload.claim("scope")?.as_str()?;
        let reach = reach_of(scope, *role)?;
        Some(Grant {
            client,
            role: *role,
            reach,
        })
    }
}

fn scopes<'a>(prefix: &str, ids: impl IntoIterator<Item = &'a Uuid>) -> String {
    ids.into_iter()
        .map(|id| format!("{prefix}{id}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn reach_of(scope: &str, role: FitRole) -> Option<Reach> {
    let prefix = match role {
        FitRole::Sender if scope == SEND_ALL => return Some(Reach::All),
        FitRole::Sender => SEND_ONE,
        FitRole::Subscriber => SUBSCRIBE_ONE,
    };
    let ids = scope
        .split_whitespace()
        .map(|s| {
            s.strip_prefix(prefix)
                .and_then(|id| Uuid::parse_str(id).ok())
        })
        .collect::<Option<BTreeSet<_>>>()?;
    Some(Reach::Only(ids))
}

/// The token endpoint's answer (RFC 6749, 4.4 and 5): a token, or OAuth's JSON error.
pub(super) fn token_response(
    state: &super::FitState,
    form: &BTreeMap<String, String>,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let error = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let (Some(client), Some(secret)) = (form.get("client_id"), form.get("client_secret")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and client_secret are required in the form body",
        );
    };
    match state.tokens.issue(client, secret, state.hub.clock.now()) {
        Some(issued) => {
            tracing::info!(client = %client, "FIT-Connect access token issued");
            (
                StatusCode::OK,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(serde_json::json!({
                    "access_token": issued.token,
                    "token_type": "Bearer",
                    "expires_in": issued.expires_in,
                    "scope": issued.scope,
                })),
            )
                .into_response()
        }
        None => error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        ),
    }
}
