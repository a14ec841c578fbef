//! What sign-in with OpenID Connect keeps in the portal's database: sign-ins under way
//! (`oidc_logins`), which identity belongs to which account (`account_identities`), the
//! session's identity with its ID token (`session_identities`), and logouts under way.

use axum::http::{HeaderValue, header};
use kopplung_web::shell::{random_hex, see_other, token_id};
use serde_json::Value;
use sqlx::Row;

use super::client::Verified;
use crate::level::label as trust_label;
use crate::web::session::{self, SignIn};
use crate::web::{Page, Visitor};
use crate::{Error, Shared, db};

/// How long a sign-in may take at the provider before its state is void.
pub const LOGIN_TTL_SECS: i64 = 600;

/// A sign-in under way, as stored with its state.
pub struct Login {
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The level asked for; `None`: any.
    pub level: Option<String>,
    pub next: String,
    pub consent: bool,
}

pub async fn save_login(
    state: &Shared,
    session_id: &str,
    oidc_state: &str,
    login: &Login,
) -> Result<(), sqlx::Error> {
    let now = db::now();
    sqlx::query(
        "INSERT INTO oidc_logins (state_hash, session_id, provider, nonce, pkce_verifier, level, next, consent, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(token_id(oidc_state))
    .bind(session_id)
    .bind(&login.provider)
    .bind(&login.nonce)
    .bind(&login.pkce_verifier)
    .bind(&login.level)
    .bind(&login.next)
    .bind(login.consent)
    .bind(now)
    .bind(now + LOGIN_TTL_SECS)
    .execute(&state.db)
    .await?;
    Ok(())
}

/// The sign-in of `oidc_state` if this session began it and it has not expired; taken
/// out, so that it can be used once only.
pub async fn take_login(
    state: &Shared,
    session_id: &str,
    oidc_state: &str,
) -> Result<Option<Login>, sqlx::Error> {
    let row = sqlx::query(
        "DELETE FROM oidc_logins WHERE state_hash = ? AND session_id = ?
         RETURNING provider, nonce, pkce_verifier, level, next, consent, expires_at",
    )
    .bind(token_id(oidc_state))
    .bind(session_id)
    .fetch_optional(&state.db)
    .await?;
    Ok(row
        .filter(|row| row.get::<i64, _>("expires_at") > db::now())
        .map(|row| Login {
            provider: row.get("provider"),
            nonce: row.get("nonce"),
            pkce_verifier: row.get("pkce_verifier"),
            level: row.get("level"),
            next: row.get("next"),
            consent: row.get("consent"),
        }))
}

/// Signs the visitor in with `verified`: the account of the identity — the one signed
/// in now if it has none yet from this issuer (a password account that identifies
/// itself), else a new one — in a new session that replaces the old (no fixation),
/// taking over what the visitor started anonymously. Sends the visitor on to `next`.
pub async fn sign_in(
    state: &Shared,
    old: &Visitor,
    provider: &str,
    verified: &Verified,
    next: &str,
) -> Page {
    let csrf = random_hex(32).map_err(Error::from)?;
    let mut tx = db::write_transaction(&state.db).await?;
    let now = db::now();
    let linked: Option<String> = sqlx::query_scalar(
        "SELECT account_id FROM account_identities WHERE issuer = ? AND subject = ?",
    )
    .bind(&verified.issuer)
    .bind(&verified.subject)
    .fetch_optional(&mut *tx)
    .await?;
    let account_id = match linked {
        Some(id) => id,
        None => {
            let current = match &old.account {
                Some(account) => {
                    let taken: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM account_identities WHERE account_id = ? AND issuer = ?",
                    )
                    .bind(&account.id)
                    .bind(&verified.issuer)
                    .fetch_one(&mut *tx)
                    .await?;
                    (taken == 0).then(|| account.id.clone())
                }
                None => None,
            };
            let id = match current {
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    // No e-mail, no password: the placeholder no sign-in form reaches.
                    sqlx::query(
                        "INSERT INTO accounts (id, email, password_hash, trust_level, master_data, created_at, kind)
                         VALUES (?, ?, '', 'basis', '{}', ?, 'oidc')",
                    )
                    .bind(&id)
                    .bind(format!("oidc:{id}"))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            sqlx::query(
                "INSERT INTO account_identities (issuer, subject, account_id, provider, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&verified.issuer)
            .bind(&verified.subject)
            .bind(&id)
            .bind(provider)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            id
        }
    };
    if let Some(session_id) = &old.session_id {
        if old.account.is_none() {
            sqlx::query(
                "UPDATE drafts SET account_id = ?, session_id = NULL WHERE session_id = ? AND account_id IS NULL",
            )
            .bind(&account_id)
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
    }
    let sign_in = SignIn {
        account: &account_id,
        level: verified.level,
        authenticated_at: verified.auth_time,
    };
    let (token, session_id) = session::insert(&mut tx, state, Some(&sign_in), &csrf).await?;
    sqlx::query(
        "INSERT INTO session_identities (session_id, provider, issuer, subject, acr, means, auth_time, id_token, id_token_expires_at, prefill)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&session_id)
    .bind(provider)
    .bind(&verified.issuer)
    .bind(&verified.subject)
    .bind(&verified.acr)
    .bind(verified.means.code())
    .bind(verified.auth_time)
    .bind(&verified.id_token)
    .bind(verified.expires_at)
    .bind(verified.prefill.as_ref().map(Value::to_string))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        account = %account_id,
        %provider,
        level = trust_label(verified.level),
        means = verified.means.code(),
        "signed in at an identity provider"
    );
    let mut response = see_other(next);
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::set_cookie(state, &token));
    Ok(response)
}

/// What the session's sign-in at a provider left: the raw ID token, the subject and the
/// prefill (only with consent).
pub struct Held {
    pub id_token: String,
    pub prefill: Option<Value>,
}

pub async fn held(state: &Shared, visitor: &Visitor) -> Result<Option<Held>, sqlx::Error> {
    let Some(session_id) = &visitor.session_id else {
        return Ok(None);
    };
    let row = sqlx::query("SELECT id_token, prefill FROM session_identities WHERE session_id = ?")
        .bind(session_id)
        .fetch_optional(&state.db)
        .await?;
    Ok(row.map(|row| Held {
        id_token: row.get("id_token"),
        prefill: row
            .get::<Option<String>, _>("prefill")
            .and_then(|text| serde_json::from_str(&text).ok()),
    }))
}

/// A logout's state, kept until the provider sends the citizen back with it.
pub async fn save_logout(state: &Shared, logout_state: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO oidc_logouts (state_hash, expires_at) VALUES (?, ?)")
        .bind(token_id(logout_state))
        .bind(db::now() + LOGIN_TTL_SECS)
        .execute(&state.db)
        .await?;
    Ok(())
}

/// Whether `logout_state` is one of ours (used once).
pub async fn take_logout(state: &Shared, logout_state: &str) -> Result<bool, sqlx::Error> {
    let found = sqlx::query("DELETE FROM oidc_logouts WHERE state_hash = ? AND expires_at > ?")
        .bind(token_id(logout_state))
        .bind(db::now())
        .execute(&state.db)
        .await?
        .rows_affected();
    Ok(found > 0)
}

/// Sign-ins and logouts whose time ran out; how many (the retention sweep).
pub async fn sweep(state: &Shared, now: i64) -> Result<u64, sqlx::Error> {
    let logins = crate::db::delete_expired(&state.db, "oidc_logins", now).await?;
    let logouts = crate::db::delete_expired(&state.db, "oidc_logouts", now).await?;
    Ok(logins + logouts)
}

/// The cookie header of a response, for handlers that add one.
pub fn with_cookie(
    mut page: axum::response::Response,
    cookie: Option<HeaderValue>,
) -> axum::response::Response {
    if let Some(cookie) = cookie {
        page.headers_mut().append(header::SET_COOKIE, cookie);
    }
    page
}
