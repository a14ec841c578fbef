//! Sessions: every visitor gets one (random 256-bit token in an HttpOnly cookie, only
//! its SHA-256 stored), with a CSRF token for the forms. Signing in replaces the session
//! (no fixation); signing out deletes it.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kopplung_transformers::mapping::TrustLevel;
use sqlx::Row;

use super::Failure;
use crate::{Error, Shared, db};

pub const COOKIE: &str = "portal_session";
/// Sessions end after 8 hours.
pub const SESSION_SECONDS: i64 = 8 * 3600;

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub trust_level: TrustLevel,
}

/// Who is asking: the session and, when signed in, the account.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub session_id: String,
    pub csrf: String,
    pub account: Option<Account>,
}

pub fn random_hex(bytes: usize) -> Result<String, Error> {
    let mut buffer = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut buffer)?;
    Ok(hex::encode(buffer))
}

fn token_id(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

pub fn parse_trust_level(text: &str) -> TrustLevel {
    match text {
        "hoch" => TrustLevel::Hoch,
        "substanziell" => TrustLevel::Substanziell,
        _ => TrustLevel::Basis,
    }
}

async fn load(state: &Shared, token: &str) -> Result<Option<Visitor>, sqlx::Error> {
    let id = token_id(token);
    let row = sqlx::query(
        "SELECT s.csrf, a.id AS account_id, a.email, a.trust_level FROM sessions s
         LEFT JOIN accounts a ON a.id = s.account_id
         WHERE s.id = ? AND s.expires_at > ?",
    )
    .bind(&id)
    .bind(db::now())
    .fetch_optional(&state.db)
    .await?;
    Ok(row.map(|row| {
        let account_id: Option<String> = row.get("account_id");
        Visitor {
            session_id: id.clone(),
            csrf: row.get("csrf"),
            account: account_id.map(|account_id| Account {
                id: account_id,
                email: row.get("email"),
                trust_level: parse_trust_level(&row.get::<String, _>("trust_level")),
            }),
        }
    }))
}

/// Creates a session (for `account`, if given) and returns the cookie token.
pub async fn create(state: &Shared, account: Option<&str>) -> Result<(String, Visitor), Error> {
    let token = random_hex(32)?;
    let csrf = random_hex(32)?;
    let id = token_id(&token);
    let now = db::now();
    sqlx::query(
        "INSERT INTO sessions (id, account_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(account)
    .bind(&csrf)
    .bind(now)
    .bind(now + SESSION_SECONDS)
    .execute(&state.db)
    .await?;
    // Expired sessions go now and then.
    sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
        .bind(now)
        .execute(&state.db)
        .await?;
    Ok((
        token,
        Visitor {
            session_id: id,
            csrf,
            account: None,
        },
    ))
}

pub async fn delete(state: &Shared, visitor: &Visitor) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id = ?")
        .bind(&visitor.session_id)
        .execute(&state.db)
        .await?;
    Ok(())
}

pub fn set_cookie(state: &Shared, token: &str) -> HeaderValue {
    let secure = if state.secure { "; Secure" } else { "" };
    HeaderValue::try_from(format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECONDS}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Puts the `Visitor` into the request (creating a session if there is none) and
/// renders `Failure`s as error pages.
pub async fn middleware(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    // Assets and the provider's API need no session.
    let path = request.uri().path();
    if path.starts_with("/assets/")
        || path == "/healthz"
        || path.starts_with("/xbezahldienste/api/")
    {
        return next.run(request).await;
    }
    let existing = match super::cookie(request.headers(), COOKIE) {
        Some(token) => match load(&state, &token).await {
            Ok(found) => found,
            Err(e) => return Failure::from(e).into_response(),
        },
        None => None,
    };
    let (visitor, new_token) = match existing {
        Some(visitor) => (visitor, None),
        None => match create(&state, None).await {
            Ok((token, visitor)) => (visitor, Some(token)),
            Err(e) => return Failure::from(e).into_response(),
        },
    };
    request.extensions_mut().insert(visitor.clone());
    let response = next.run(request).await;
    let mut response = super::render_failures(&state, &visitor, response).await;
    // A handler that signed in or out set its own cookie.
    if let Some(token) = new_token
        && !response.headers().contains_key(header::SET_COOKIE)
    {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, set_cookie(&state, &token));
    }
    response
}
