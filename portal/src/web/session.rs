//! Sessions and CSRF tokens.
//!
//! A session is stored only when a visitor does something that needs one: starts a
//! draft or signs in (a random 256-bit token in an HttpOnly cookie, only its SHA-256
//! stored). Reading pages stores nothing: the forms of a visitor without a session
//! carry a stateless double-submit token — random, in an HttpOnly cookie, compared with
//! the form's field. A session has its own synchronizer token (the double-submit token
//! it began with, or a new one when signing in). Signing in replaces the session (no
//! fixation); signing out deletes it.
//!
//! A signed-in session carries its Vertrauensniveau: `basis` after a password, what the
//! identity provider's `acr` says after OpenID Connect (`crate::oidc`). It ends
//! `[accounts] session_hours` after it began, or `idle_timeout_secs` after its last
//! request, whichever comes first.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kopplung_forms::TrustLevel;
use kopplung_web::ClientAddr;
use kopplung_web::shell::{Cookies, SameSite, cookie, is_token, random_hex, token_id};
use sqlx::Row;

use super::Failure;
use crate::{Error, Shared, db};

pub const COOKIE: &str = "portal_session";

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    /// The address of a password account; `None` for one created at an identity provider.
    pub email: Option<String>,
    /// The level of this session's sign-in.
    pub trust_level: TrustLevel,
    /// When the citizen signed in (the provider's `auth_time`; for a password, the
    /// session's start).
    pub authenticated_at: i64,
    /// Signed in at an identity provider: which, and what it said.
    pub identity: Option<SessionIdentity>,
}

/// What a session signed in with OpenID Connect knows without reading the token: no
/// personal data (the subject, the token and the prefill stay in the database).
#[derive(Debug, Clone)]
pub struct SessionIdentity {
    /// `[[identity_provider]] id`.
    pub provider: String,
    /// The means of identification's code (`online-ausweis`, …).
    pub means: String,
    pub token_expires_at: i64,
    /// The citizen agreed to prefill forms and the provider gave something to prefill.
    pub prefill: bool,
}

/// Who is asking: the client's address, the session if there is one and, when signed
/// in, the account.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub session_id: Option<String>,
    pub csrf: String,
    pub account: Option<Account>,
    /// As the server layer resolved it (trusted proxies' header).
    pub client: IpAddr,
}

/// A stored level; anything unknown counts as `basis`.
pub fn parse_trust_level(text: &str) -> TrustLevel {
    crate::level::parse(text).unwrap_or_default()
}

/// The session of cookie `token`, if it exists and has not expired (nor, signed in,
/// been idle too long); the last request's time is kept for the idle limit.
async fn load(
    state: &Shared,
    token: &str,
) -> Result<Option<(String, String, Option<Account>)>, sqlx::Error> {
    let id = token_id(token);
    let now = db::now();
    let idle = state.config.settings.accounts.idle_seconds();
    let row = sqlx::query(
        "SELECT s.csrf, s.level, s.created_at, s.authenticated_at, s.last_seen_at,
                a.id AS account_id, a.email, a.kind,
                i.provider, i.means, i.id_token_expires_at, i.prefill IS NOT NULL AS prefill
         FROM sessions s
         LEFT JOIN accounts a ON a.id = s.account_id
         LEFT JOIN session_identities i ON i.session_id = s.id
         WHERE s.id = ? AND s.expires_at > ?
           AND (s.account_id IS NULL OR COALESCE(s.last_seen_at, s.created_at) > ?)",
    )
    .bind(&id)
    .bind(now)
    .bind(now.saturating_sub(idle))
    .fetch_optional(&state.db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let account_id: Option<String> = row.get("account_id");
    if account_id.is_some() && row.get::<Option<i64>, _>("last_seen_at") != Some(now) {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ?")
            .bind(now)
            .bind(&id)
            .execute(&state.db)
            .await?;
    }
    let account = account_id.map(|account_id| {
        let provider: Option<String> = row.get("provider");
        Account {
            id: account_id,
            email: (row.get::<String, _>("kind") == "password").then(|| row.get("email")),
            trust_level: parse_trust_level(&row.get::<String, _>("level")),
            authenticated_at: row
                .get::<Option<i64>, _>("authenticated_at")
                .unwrap_or_else(|| row.get("created_at")),
            identity: provider.map(|provider| SessionIdentity {
                provider,
                means: row.get("means"),
                token_expires_at: row.get("id_token_expires_at"),
                prefill: row.get("prefill"),
            }),
        }
    });
    Ok(Some((id.clone(), row.get("csrf"), account)))
}

/// The sign-in a new session carries.
pub struct SignIn<'a> {
    pub account: &'a str,
    pub level: TrustLevel,
    pub authenticated_at: i64,
}

/// Stores a new session on `connection` (a transaction's, to store more with it);
/// returns the cookie token and the session's id.
pub async fn insert(
    connection: &mut sqlx::SqliteConnection,
    state: &Shared,
    sign_in: Option<&SignIn<'_>>,
    csrf: &str,
) -> Result<(String, String), Error> {
    let token = random_hex(32)?;
    let id = token_id(&token);
    let now = db::now();
    sqlx::query(
        "INSERT INTO sessions (id, account_id, csrf, created_at, expires_at, level, authenticated_at, last_seen_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(sign_in.map(|s| s.account))
    .bind(csrf)
    .bind(now)
    .bind(now + state.config.settings.accounts.session_seconds())
    .bind(crate::level::label(
        sign_in.map(|s| s.level).unwrap_or_default(),
    ))
    .bind(sign_in.map(|s| s.authenticated_at))
    .bind(now)
    .execute(connection)
    .await?;
    Ok((token, id))
}

/// A new session (for `account`, signed in with a password: level basis, if given)
/// with CSRF token `csrf`; returns the cookie token and the session's id.
pub async fn create(
    state: &Shared,
    account: Option<&str>,
    csrf: &str,
) -> Result<(String, String), Error> {
    let sign_in = account.map(|account| SignIn {
        account,
        level: TrustLevel::Basis,
        authenticated_at: db::now(),
    });
    let mut connection = state.db.acquire().await?;
    insert(&mut connection, state, sign_in.as_ref(), csrf).await
}

/// The visitor's session, storing one first if there is none (within the quota of new
/// sessions per address). The cookie to set comes with a new one.
pub async fn ensure(
    state: &Shared,
    visitor: &Visitor,
) -> Result<(Visitor, Option<HeaderValue>), Failure> {
    if visitor.session_id.is_some() {
        return Ok((visitor.clone(), None));
    }
    state.quotas.new_session(visitor.client)?;
    // The page's forms carry the double-submit token: it becomes the session's.
    let (token, id) = create(state, None, &visitor.csrf).await?;
    tracing::debug!("anonymous session stored");
    let visitor = Visitor {
        session_id: Some(id),
        ..visitor.clone()
    };
    Ok((visitor, Some(set_cookie(state, &token))))
}

pub async fn delete(state: &Shared, visitor: &Visitor) -> Result<(), sqlx::Error> {
    if let Some(id) = &visitor.session_id {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id)
            .execute(&state.db)
            .await?;
    }
    Ok(())
}

/// The portal's cookies: for all of it, SameSite=Lax (links from mails and search
/// engines keep the session), `Secure` behind TLS.
fn cookies(state: &Shared) -> Cookies {
    Cookies {
        path: "/",
        same_site: SameSite::Lax,
        secure: state.secure,
    }
}

pub fn set_cookie(state: &Shared, token: &str) -> HeaderValue {
    let age = state.config.settings.accounts.session_seconds();
    cookies(state).set(COOKIE, token, Some(age.unsigned_abs()))
}

pub fn clear_cookie(state: &Shared) -> HeaderValue {
    cookies(state).clear(COOKIE)
}

/// The double-submit cookie's name: `__Host-` behind TLS, so that no other host of the
/// domain can plant one.
fn csrf_cookie(state: &Shared) -> String {
    cookies(state).host_only("portal_csrf")
}

/// The client's address: the server layer's `ClientAddr`, else the TCP peer.
fn client_of(request: &Request) -> IpAddr {
    if let Some(ClientAddr(address)) = request.extensions().get::<ClientAddr>() {
        return *address;
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Puts the `Visitor` into the request — without storing anything — and renders
/// `Failure`s as error pages.
pub async fn middleware(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    // Assets, the icon and the provider's API need no visitor.
    let path = request.uri().path();
    if path.starts_with("/assets/")
        || path.starts_with("/favicon.")
        || path == "/healthz"
        || path.starts_with("/xbezahldienste/api/")
    {
        return next.run(request).await;
    }
    let client = client_of(&request);
    let session_cookie = cookie(request.headers(), COOKIE);
    let session = match &session_cookie {
        Some(token) if is_token(token) => match load(&state, token).await {
            Ok(found) => found,
            Err(e) => return Failure::from(e).into_response(),
        },
        _ => None,
    };
    let stale_cookie = session_cookie.is_some() && session.is_none();
    let mut new_csrf = None;
    let visitor = match session {
        Some((id, csrf, account)) => Visitor {
            session_id: Some(id),
            csrf,
            account,
            client,
        },
        None => {
            let csrf = match cookie(request.headers(), &csrf_cookie(&state)) {
                Some(token) if is_token(&token) => token,
                _ => match random_hex(32) {
                    Ok(token) => {
                        new_csrf = Some(token.clone());
                        token
                    }
                    Err(e) => return Failure::from(Error::from(e)).into_response(),
                },
            };
            Visitor {
                session_id: None,
                csrf,
                account: None,
                client,
            }
        }
    };
    request.extensions_mut().insert(visitor.clone());
    let response = next.run(request).await;
    let mut response = super::render_failures(&state, &visitor, response).await;
    // A handler that stored a session or signed out set its own session cookie.
    let handler_set = response.headers().contains_key(header::SET_COOKIE);
    if stale_cookie && !handler_set {
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear_cookie(&state));
    }
    if let Some(token) = new_csrf {
        let value = cookies(&state).set(&csrf_cookie(&state), &token, None);
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
