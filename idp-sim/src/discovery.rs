//! OpenID Connect Discovery 1.0: what the provider offers, and its keys.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use crate::Shared;
use crate::pages::public_json;
use crate::people::Level;

/// `GET /.well-known/openid-configuration`
pub async fn configuration(State(state): State<Shared>) -> Response {
    let acr: Vec<&str> = Level::ALL.iter().map(|level| level.acr()).collect();
    public_json(&json!({
        "issuer": state.config.issuer,
        "authorization_endpoint": state.url("/authorize"),
        "token_endpoint": state.url("/token"),
        "userinfo_endpoint": state.url("/userinfo"),
        "jwks_uri": state.url("/jwks"),
        "end_session_endpoint": state.url("/abmeldung"),
        "scopes_supported": ["openid", "profile", "address"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": acr,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
            "given_name", "family_name", "birthdate", "address",
        ],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["de"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// `GET /jwks`
pub async fn jwks(State(state): State<Shared>) -> Response {
    public_json(state.keys.jwks())
}
