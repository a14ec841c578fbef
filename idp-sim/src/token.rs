//! The token endpoint (RFC 6749, 4.1.3; RFC 7636, 4.6) and userinfo (OpenID Connect
//! Core 1.0, 5.3). Errors are the protocol's JSON (`error`, `error_description`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::config::Client;
use crate::params::Params;
use crate::store::{Grant, TOKEN_TTL};
use crate::{Shared, State as Idp};

/// `POST /token`
pub async fn exchange(State(state): State<Shared>, headers: HeaderMap, params: Params) -> Response {
    if !params.readable {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the parameters as application/x-www-form-urlencoded",
        );
    }
    if let Some(key) = params.repeated() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("{key} is given more than once"),
        );
    }
    let param = |name: &str| params.get(name);
    let client = match authenticate(&state, &headers, param("client_id"), param("client_secret")) {
        Ok(client) => client,
        Err(response) => return *response,
    };
    if param("grant_type") != Some("authorization_code") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code is supported",
        );
    }
    let Some(code) = param("code") else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code is missing",
        );
    };
    let Ok(grant) = state.store.redeem(code) else {
        tracing::warn!(client = %client.id, "unknown, expired or reused authorization code");
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code is unknown, expired or already used",
        );
    };
    if grant.request.client_id != client.id {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code was issued to another client",
        );
    }
    if param("redirect_uri") != Some(grant.request.redirect_uri.as_str()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        );
    }
    if !pkce_matches(param("code_verifier"), &grant.request.code_challenge) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        );
    }
    let tokens = state
        .store
        .issue_access(code, &grant)
        .map_err(|_| ())
        .and_then(|access| {
            id_token(&state, &grant)
                .map(|id| (access, id))
                .map_err(|_| ())
        });
    match tokens {
        Ok((access_token, id_token)) => no_store(
            StatusCode::OK,
            json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL.whole_seconds(),
                "id_token": id_token,
                "scope": grant.request.scopes.join(" "),
            }),
        ),
        Err(()) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again in a few minutes",
        ),
    }
}

/// `client_secret_basic` or `client_secret_post`, never both (RFC 6749, 2.3).
fn authenticate<'a>(
    state: &'a Idp,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<&'a Client, Box<Response>> {
    let basic = authorization(headers, "Basic");
    let credentials = match (basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(Box::new(refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "use one client authentication method, not two",
            )));
        }
        (Some(encoded), None) => {
            basic_credentials(encoded).filter(|(id, _)| form_id.is_none_or(|form_id| form_id == id))
        }
        (None, Some(secret)) => form_id.map(|id| (id.to_owned(), secret.to_owned())),
        (None, None) => None,
    };
    let client = credentials.and_then(|(id, secret)| {
        state
            .config
            .client(&id)
            .filter(|client| kopplung_web::shell::same_token(&secret, &client.secret))
    });
    client.ok_or_else(|| {
        tracing::warn!("client authentication failed at the token endpoint");
        let mut response = refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"servicekonto\""),
        );
        Box::new(response)
    })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749, 2.3.1).
fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |part: &str| {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// RFC 7636, 4.6: BASE64URL(SHA256(verifier)) == challenge; the verifier is 43 to 128
/// unreserved characters.
fn pkce_matches(verifier: Option<&str>, challenge: &str) -> bool {
    let Some(verifier) = verifier else {
        return false;
    };
    let unreserved = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~');
    if !(43..=128).contains(&verifier.len()) || !verifier.chars().all(unreserved) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    computed.len() == challenge.len()
        && openssl::memcmp::eq(computed.as_bytes(), challenge.as_bytes())
}

/// The signed ID token of `grant`: the claims of the contract (`docs/identity.md`).
fn id_token(state: &Idp, grant: &Grant) -> Result<String, crate::Error> {
    let now = state.store.now().unix_timestamp();
    let sign_in = grant.sign_in;
    let mut claims = sign_in.identity.claims(&grant.request.scopes);
    let mut set = |key: &str, value: Value| {
        claims.insert(key.to_owned(), value);
    };
    set("iss", json!(state.config.issuer));
    set(
        "sub",
        json!(
            state
                .keys
                .subject(sign_in.identity.id, &grant.request.client_id)
        ),
    );
    set("aud", json!(grant.request.client_id));
    set("iat", json!(now));
    set("exp", json!(now + TOKEN_TTL.whole_seconds()));
    set("auth_time", json!(sign_in.auth_time.unix_timestamp()));
    set("acr", json!(sign_in.means.level().acr()));
    set("amr", json!([sign_in.means.amr()]));
    if let Some(nonce) = &grant.request.nonce {
        set("nonce", json!(nonce));
    }
    state.keys.sign(claims)
}

/// The credentials of the `Authorization` header under `scheme` (`Basic`, `Bearer`),
/// written as given or in lower case.
fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix(scheme)
        .or_else(|| value.strip_prefix(scheme.to_lowercase().as_str()))?
        .strip_prefix(' ')
}

/// `GET` or `POST /userinfo` with the access token as bearer token (RFC 6750).
pub async fn userinfo(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let token = authorization(&headers, "Bearer");
    let Some(token) = token else {
        return unauthorized("Bearer realm=\"servicekonto\"");
    };
    let Some(access) = state.store.access(token.trim()) else {
        return unauthorized(
            "Bearer realm=\"servicekonto\", error=\"invalid_token\", error_description=\"the access token is unknown or expired\"",
        );
    };
    let mut claims = access.identity.claims(&access.scopes);
    claims.insert(
        "sub".into(),
        json!(state.keys.subject(access.identity.id, &access.client_id)),
    );
    no_store(StatusCode::OK, Value::Object(claims))
}

fn unauthorized(challenge: &'static str) -> Response {
    let mut response = no_store(
        StatusCode::UNAUTHORIZED,
        json!({ "error": "invalid_token" }),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// JSON that no cache keeps (RFC 6749, 5.1).
fn no_store(status: StatusCode, body: Value) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_as_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(Some(verifier), challenge));
        assert!(!pkce_matches(Some(&verifier.replace('d', "e")), challenge));
        assert!(!pkce_matches(None, challenge));
        assert!(!pkce_matches(Some("short"), challenge));
    }

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        let encoded = STANDARD.encode("my%3Aclient:s%2Bcret+x");
        assert_eq!(
            basic_credentials(&encoded),
            Some(("my:client".into(), "s+cret x".into()))
        );
        assert_eq!(basic_credentials("!!"), None);
    }
}
