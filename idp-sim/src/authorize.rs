//! The authorization endpoint (OpenID Connect Core 1.0, 3.1.2; RFC 7636 PKCE): checks the
//! request, then either answers at once from the citizen's session (single sign-on) or
//! keeps the request and sends the browser to the login page.
//!
//! An unknown client or a redirect URI that is not registered for it gets a German error
//! page and never a redirect; every later problem goes back to the client as the
//! protocol says (`error`, `error_description`, `state`, `iss`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_web::shell::{cookie, is_token, random_hex, see_other, token_id};

use crate::params::Params;
use crate::people::{Level, required_level};
use crate::store::{Grant, Pending, Request, Session, SignIn};
use crate::{Shared, State as Idp};

/// The cookie that ties a login page to the browser that started it.
pub const BROWSER_COOKIE: &str = "servicekonto_browser";
/// The citizen's session at the provider.
pub const SESSION_COOKIE: &str = "servicekonto_sitzung";

/// `GET /authorize?…` or `POST /authorize` (form-encoded, as OpenID Connect allows).
pub async fn endpoint(State(state): State<Shared>, headers: HeaderMap, params: Params) -> Response {
    if params.readable {
        authorize(&state, &headers, &params)
    } else {
        state.pages.error(
            StatusCode::BAD_REQUEST,
            "Anmeldung nicht möglich",
            "Die Anmeldeanfrage ist nicht lesbar. Bitte kehren Sie zum Portal zurück und starten Sie die Anmeldung dort neu.",
        )
    }
}

fn authorize(state: &Idp, headers: &HeaderMap, params: &Params) -> Response {
    let client = params
        .get("client_id")
        .and_then(|id| state.config.client(id));
    let Some(client) = client else {
        return state.pages.error(
            StatusCode::BAD_REQUEST,
            "Unbekannter Dienst",
            "Der Dienst, der Sie hierher geschickt hat, ist beim Servicekonto nicht bekannt. Bitte kehren Sie zum Portal zurück; besteht der Fehler weiter, wenden Sie sich an dessen Betreiber.",
        );
    };
    let redirect_uri = params.get("redirect_uri");
    let registered = redirect_uri.filter(|uri| client.redirect_uris.iter().any(|r| r == uri));
    let Some(redirect_uri) = registered else {
        tracing::warn!(client = %client.id, "authorization request with an unregistered redirect_uri refused");
        return state.pages.error(
            StatusCode::BAD_REQUEST,
            "Rücksprungadresse nicht zugelassen",
            "Die Adresse, an die das Servicekonto Sie nach der Anmeldung zurückschicken soll, ist für diesen Dienst nicht eingetragen. Zu Ihrem Schutz leiten wir Sie nicht dorthin weiter. Bitte kehren Sie zum Portal zurück; besteht der Fehler weiter, wenden Sie sich an dessen Betreiber.",
        );
    };
    let back = Back {
        redirect_uri,
        state: params.get("state"),
        issuer: &state.config.issuer,
    };
    if let Some(key) = params.repeated() {
        return back.error("invalid_request", &format!("{key} is given more than once"));
    }
    if params.get("response_type") != Some("code") {
        return back.error(
            "unsupported_response_type",
            "only the authorization code flow (response_type=code) is supported",
        );
    }
    if params
        .get("response_mode")
        .is_some_and(|mode| mode != "query")
    {
        return back.error("invalid_request", "only response_mode=query is supported");
    }
    if params.get("request").is_some() {
        return back.error("request_not_supported", "request objects are not supported");
    }
    if params.get("request_uri").is_some() {
        return back.error("request_uri_not_supported", "request_uri is not supported");
    }
    let scopes: Vec<String> = params
        .get("scope")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return back.error("invalid_scope", "the scope must contain openid");
    }
    let Some(code_challenge) = params.get("code_challenge") else {
        return back.error(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        );
    };
    if params.get("code_challenge_method") != Some("S256") {
        return back.error("invalid_request", "code_challenge_method must be S256");
    }
    // SHA-256 in base64url without padding: 43 characters.
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if code_challenge.len() != 43 || !code_challenge.chars().all(base64url) {
        return back.error("invalid_request", "code_challenge is no S256 challenge");
    }
    let max_age = match params.get("max_age").map(str::parse::<u64>) {
        None => None,
        Some(Ok(secs)) => Some(secs),
        Some(Err(_)) => {
            return back.error("invalid_request", "max_age must be a number of seconds");
        }
    };
    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts
        .iter()
        .any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account"))
    {
        return back.error(
            "invalid_request",
            "prompt may be none, login, consent or select_account",
        );
    }
    let silent = prompts.contains(&"none");
    if silent && prompts.len() > 1 {
        return back.error(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        );
    }
    let min_level = required_level(params.get("acr_values"));
    let pending = Pending {
        request: Request {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: code_challenge.to_owned(),
            nonce: params.get("nonce").map(str::to_owned),
            scopes,
        },
        state: params.get("state").map(str::to_owned),
        min_level,
        browser: String::new(),
        csrf: String::new(),
        suggested: None,
    };
    // Single sign-on: the session answers unless the client asks for a new login, the
    // login is older than max_age, or its means does not reach the level asked for.
    let session = session_of(state, headers).map(|(_, session)| session);
    let fresh = session.as_ref().filter(|session| {
        let age = (state.store.now() - session.sign_in.auth_time).whole_seconds();
        !prompts.iter().any(|p| matches!(*p, "login" | "select_account"))
            // max_age=0 asks for a new login, like prompt=login.
            && max_age.is_none_or(|max| max > 0 && age <= i64::try_from(max).unwrap_or(i64::MAX))
            && reaches(session.sign_in, min_level)
    });
    if let Some(session) = fresh {
        return issue(state, &pending, session.sign_in);
    }
    if silent {
        return back.error("login_required", "the citizen must sign in");
    }
    wait_for_login(state, headers, pending, session)
}

/// Keeps the request and sends the browser to the login page, tying the two by the
/// browser cookie.
fn wait_for_login(
    state: &Idp,
    headers: &HeaderMap,
    mut pending: Pending,
    session: Option<Session>,
) -> Response {
    let existing =
        cookie(headers, &state.cookies.host_only(BROWSER_COOKIE)).filter(|t| is_token(t));
    let (browser, new_cookie) = match existing {
        Some(token) => (token, false),
        None => match random_hex(32) {
            Ok(token) => (token, true),
            Err(_) => return unavailable(state),
        },
    };
    let Ok(csrf) = random_hex(32) else {
        return unavailable(state);
    };
    pending.browser = token_id(&browser);
    pending.csrf = csrf;
    // A step-up keeps the person: the session's identity is chosen in advance.
    pending.suggested = session.map(|s| s.sign_in.identity.id);
    let Ok(id) = state.store.put_pending(pending) else {
        return unavailable(state);
    };
    let mut response = see_other(&format!("/anmeldung?vorgang={id}"));
    if new_cookie {
        let value = state
            .cookies
            .set(&state.cookies.host_only(BROWSER_COOKIE), &browser, None);
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub fn unavailable(state: &Idp) -> Response {
    state.pages.error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Servicekonto ausgelastet",
        "Das Servicekonto kann Ihre Anmeldung gerade nicht annehmen. Bitte warten Sie einige Minuten und starten Sie die Anmeldung im Portal dann noch einmal.",
    )
}

/// Whether a sign-in reaches `level` (eIDAS levels include those below).
pub fn reaches(sign_in: SignIn, level: Option<Level>) -> bool {
    level.is_none_or(|level| sign_in.means.level() >= level)
}

/// The citizen's live session, with its token.
pub fn session_of(state: &Idp, headers: &HeaderMap) -> Option<(String, Session)> {
    let token =
        cookie(headers, &state.cookies.host_only(SESSION_COOKIE)).filter(|t| is_token(t))?;
    let session = state.store.session(&token)?;
    Some((token, session))
}

/// The authorization response: a new code for `sign_in`, back to the client.
pub fn issue(state: &Idp, pending: &Pending, sign_in: SignIn) -> Response {
    let back = Back::of(pending, &state.config.issuer);
    let grant = Grant {
        request: pending.request.clone(),
        sign_in,
    };
    match state.store.issue_code(grant) {
        Ok(code) => back.with(&[("code", &code)]),
        Err(_) => back.error("temporarily_unavailable", "try again in a few minutes"),
    }
}

/// Where the answer to an authorization request goes: a registered redirect URI.
pub struct Back<'a> {
    pub redirect_uri: &'a str,
    pub state: Option<&'a str>,
    pub issuer: &'a str,
}

impl<'a> Back<'a> {
    /// The answer to `pending`, from `issuer`.
    pub fn of(pending: &'a Pending, issuer: &'a str) -> Self {
        Self {
            redirect_uri: &pending.request.redirect_uri,
            state: pending.state.as_deref(),
            issuer,
        }
    }

    /// `303` to the redirect URI with `pairs`, `state` and `iss` (RFC 9207) added to
    /// its query.
    pub fn with(&self, pairs: &[(&str, &str)]) -> Response {
        let Ok(mut url) = url::Url::parse(self.redirect_uri) else {
            // Registered URIs were checked at load time.
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in pairs {
                query.append_pair(key, value);
            }
            if let Some(state) = self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", self.issuer);
        }
        let mut response = see_other(url.as_str());
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    pub fn error(&self, error: &str, description: &str) -> Response {
        self.with(&[("error", error), ("error_description", description)])
    }
}
