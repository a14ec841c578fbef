//! Sign-in with OpenID Connect (authorization code flow with PKCE, state and nonce) at
//! the configured identity providers, the Vertrauensniveau it brings, step-up,
//! RP-initiated logout, and what goes to the hub as proof of who applies
//! (docs/portal.md, "Sign-in and trust levels").
//!
//! `GET /konto/oidc/anmelden?anbieter=<id>&niveau=<level>&weiter=<path>` starts a
//! sign-in; the provider sends the citizen back to `GET /konto/oidc/rueckkehr` with the
//! code (or an error) and the state, which must belong to this session, be unused and
//! not have expired.

pub mod client;
mod pages;
mod prefill;
pub mod store;

use axum::extract::Query;
use axum::http::StatusCode;
use kopplung_forms::TrustLevel;
use kopplung_web::shell::{random_hex, see_other};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::level::{label as trust_label, parse as parse_level};
use crate::web::local_next;
use crate::web::session::{self, Account};
use crate::web::{Failure, Page, Visit, Visitor};
use crate::{Error, Shared, db};
pub use pages::{identify_page, offers, signed_in_view, step_up};

/// Where identity providers send citizens back (registered with each provider).
pub const RETURN_PATH: &str = "/konto/oidc/rueckkehr";

/// An ID token that expires within this many seconds is not sent to the hub any more.
const TOKEN_SLACK_SECS: i64 = 10;

/// The start of a sign-in at `provider` that comes back to `next`; `again` asks the
/// provider to authenticate anew, `consent` keeps the citizen's agreement to prefill.
pub fn start_href(
    provider: &str,
    level: Option<TrustLevel>,
    next: &str,
    again: bool,
    consent: bool,
) -> String {
    let mut href = format!(
        "/konto/oidc/anmelden?anbieter={}&weiter={}",
        crate::router_client::encode(provider),
        crate::router_client::encode(next)
    );
    if let Some(level) = level {
        href.push_str(&format!("&niveau={}", trust_label(level)));
    }
    if again {
        href.push_str("&erneut=1");
    }
    if consent {
        href.push_str("&uebernahme=ja");
    }
    href
}

#[derive(Deserialize)]
pub struct StartQuery {
    anbieter: Option<String>,
    niveau: Option<String>,
    weiter: Option<String>,
    uebernahme: Option<String>,
    erneut: Option<String>,
}

/// `GET /konto/oidc/anmelden`: to the identity provider, with the state bound to this
/// visitor's session (stored now if there is none).
pub async fn start(Visit { state, visitor }: Visit, Query(query): Query<StartQuery>) -> Page {
    let next = local_next(&state, query.weiter.as_deref());
    let Some(provider) = query
        .anbieter
        .as_deref()
        .and_then(|id| state.providers.get(id))
    else {
        return Err(Failure::bad_request(
            "Diesen Identitätsanbieter kennt das Portal nicht. Bitte wählen Sie auf der Seite „Identifizieren“ einen der angebotenen Anbieter.",
        ));
    };
    let level = match query.niveau.as_deref().filter(|l| !l.is_empty()) {
        None => None,
        Some(text) => Some(parse_level(text).ok_or_else(|| {
            Failure::bad_request(
                "Dieses Vertrauensniveau gibt es nicht. Möglich sind „Basis“, „substanziell“ und „hoch“.",
            )
        })?),
    };
    if level.is_some_and(|level| level > provider.config.highest_level()) {
        return Err(Failure::bad_request(format!(
            "{} kann dieses Vertrauensniveau nicht bestätigen. Bitte wählen Sie auf der Seite „Identifizieren“ einen anderen Anbieter.",
            provider.config.name
        )));
    }
    let ask = client::Ask {
        level,
        // A step-up or a sign-in that became too old authenticates again.
        again: query.erneut.is_some(),
        consent: query.uebernahme.as_deref() == Some("ja"),
    };
    let (visitor, cookie) = session::ensure(&state, &visitor).await?;
    let session_id = visitor
        .session_id
        .clone()
        .ok_or(Error::Database(sqlx::Error::RowNotFound))?;
    let authorization = provider.authorize(&ask).await?;
    store::save_login(
        &state,
        &session_id,
        &authorization.state,
        &store::Login {
            provider: provider.config.id.clone(),
            nonce: authorization.nonce,
            pkce_verifier: authorization.pkce_verifier,
            level: level.map(|l| trust_label(l).to_owned()),
            next,
            consent: ask.consent,
        },
    )
    .await?;
    Ok(store::with_cookie(
        see_other(authorization.url.as_str()),
        cookie,
    ))
}

#[derive(Deserialize)]
pub struct ReturnQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

/// `GET /konto/oidc/rueckkehr`: the provider's answer. Every way it can go wrong is a
/// German page that says what to do; nothing here is a 500.
pub async fn callback(Visit { state, visitor }: Visit, Query(query): Query<ReturnQuery>) -> Page {
    let login = match (&visitor.session_id, &query.state) {
        (Some(session_id), Some(oidc_state)) => {
            store::take_login(&state, session_id, oidc_state).await?
        }
        _ => None,
    };
    let Some(login) = login else {
        tracing::info!("sign-in return without a valid state");
        return Ok(pages::failed(
            &state,
            &visitor,
            StatusCode::BAD_REQUEST,
            "Die Anmeldung ist abgelaufen oder wurde in einem anderen Browser begonnen. Bitte melden Sie sich noch einmal an.",
            "/konto/identifizierung",
            "/",
        ));
    };
    let level = login.level.as_deref().and_then(parse_level);
    let retry = start_href(&login.provider, level, &login.next, true, login.consent);
    let Some(provider) = state.providers.get(&login.provider) else {
        return Err(Failure::bad_request(
            "Dieser Identitätsanbieter ist nicht mehr eingerichtet. Bitte wählen Sie auf der Seite „Identifizieren“ einen anderen.",
        ));
    };
    // RFC 9207: the answer must come from the provider the sign-in went to.
    if query
        .iss
        .as_deref()
        .is_some_and(|iss| iss != provider.config.issuer)
    {
        tracing::warn!(provider = %login.provider, "sign-in return names another issuer");
        return Ok(pages::failed(
            &state,
            &visitor,
            StatusCode::BAD_REQUEST,
            "Die Antwort stammt nicht vom gewählten Identitätsanbieter. Bitte melden Sie sich noch einmal an.",
            &retry,
            &login.next,
        ));
    }
    if let Some(error) = &query.error {
        tracing::info!(provider = %login.provider, error = %error.chars().take(64).collect::<String>(), "the identity provider answered with an error");
        let (status, message) = pages::provider_error(error, &provider.config.name);
        return Ok(pages::failed(
            &state,
            &visitor,
            status,
            &message,
            &retry,
            &login.next,
        ));
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Ok(pages::failed(
            &state,
            &visitor,
            StatusCode::BAD_REQUEST,
            "Die Antwort des Identitätsanbieters ist unvollständig. Bitte melden Sie sich noch einmal an.",
            &retry,
            &login.next,
        ));
    };
    let verified = match provider
        .finish(code, login.pkce_verifier, login.nonce, login.consent)
        .await
    {
        Ok(verified) => verified,
        Err(Error::SignInRejected(why)) => {
            tracing::warn!(reason = %why, "sign-in refused");
            return Ok(pages::failed(
                &state,
                &visitor,
                StatusCode::BAD_REQUEST,
                &format!(
                    "Die Anmeldung bei {} konnte nicht bestätigt werden. Bitte melden Sie sich noch einmal an. Gelingt es wieder nicht, wenden Sie sich bitte an den Betreiber des Portals (Kontaktdaten unter „Kontakt“ unten auf jeder Seite).",
                    provider.config.name
                ),
                &retry,
                &login.next,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(needed) = level
        && verified.level < needed
    {
        tracing::info!(provider = %login.provider, got = trust_label(verified.level), needed = trust_label(needed), "sign-in below the level asked for");
        return Ok(pages::too_low(
            &state,
            &visitor,
            verified.level,
            needed,
            &retry,
            &login.next,
        ));
    }
    store::sign_in(&state, &visitor, &login.provider, &verified, &login.next).await
}

/// Whether the session's sign-in may still be sent to the hub: its ID token has not
/// expired and it is younger than the provider's `max_age_secs`. Password sessions and
/// visitors without an account need nothing.
pub fn still_valid(state: &Shared, account: &Account) -> bool {
    let Some(identity) = &account.identity else {
        return true;
    };
    let now = db::now();
    let max_age = state
        .providers
        .get(&identity.provider)
        .map(|p| i64::try_from(p.config.max_age_secs).unwrap_or(i64::MAX))
        .unwrap_or(0);
    identity.token_expires_at > now + TOKEN_SLACK_SECS
        && now.saturating_sub(account.authenticated_at) < max_age
}

/// Where a citizen whose sign-in is too old goes to sign in again, at least at `level`,
/// and come back to `next`.
pub fn sign_in_again(account: &Account, level: TrustLevel, next: &str) -> String {
    match &account.identity {
        Some(identity) => start_href(
            &identity.provider,
            Some(level.max(account.trust_level)),
            next,
            true,
            identity.prefill,
        ),
        None => format!(
            "/konto/anmelden?weiter={}",
            crate::router_client::encode(next)
        ),
    }
}

/// `applicant` of a submission: the ID token of a session signed in at a provider; for
/// a password account the portal's own assertion at level basis (the hub allows it
/// with `asserts_up_to = "basis"`); nothing for a visitor without an account.
pub async fn applicant(state: &Shared, visitor: &Visitor) -> Result<Option<Value>, Error> {
    let Some(account) = &visitor.account else {
        return Ok(None);
    };
    if account.identity.is_some() {
        return Ok(store::held(state, visitor)
            .await?
            .map(|held| json!({"authentication": {"assertion": held.id_token}})));
    }
    let at = time::OffsetDateTime::from_unix_timestamp(account.authenticated_at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| Error::Template("a session's sign-in time is out of range".into()))?;
    Ok(Some(json!({"authentication": {
        "level": "basis",
        "means": kopplung_core::identity::Means::BenutzernamePasswort.code(),
        // The account's id: a pseudonym that says nothing about the citizen.
        "subject": account.id,
        "authenticated_at": at,
    }})))
}

/// `POST /konto/abmelden` continues here for a session signed in at a provider: the
/// provider's end-session URL (with `id_token_hint`, `post_logout_redirect_uri` and a
/// `state` kept until the citizen comes back), or `None` to end at the portal.
pub async fn logout_target(state: &Shared, visitor: &Visitor) -> Result<Option<String>, Error> {
    let Some(identity) = visitor.account.as_ref().and_then(|a| a.identity.as_ref()) else {
        return Ok(None);
    };
    let (Some(provider), Some(held)) = (
        state.providers.get(&identity.provider),
        store::held(state, visitor).await?,
    ) else {
        return Ok(None);
    };
    let logout_state = random_hex(32)?;
    let back = format!("{}/", state.base_url.as_str().trim_end_matches('/'));
    match provider
        .logout_url(&held.id_token, &logout_state, &back)
        .await
    {
        Ok(Some(url)) => {
            store::save_logout(state, &logout_state).await?;
            Ok(Some(url.to_string()))
        }
        Ok(None) => Ok(None),
        // Signed out here all the same; the provider's session ends on its own.
        Err(e) => {
            tracing::warn!(error = %e, "logout at the identity provider not possible");
            Ok(None)
        }
    }
}

/// Whether the start page is reached with the state of one of our logouts.
pub async fn logged_out(state: &Shared, logout_state: Option<&str>) -> Result<bool, Error> {
    match logout_state {
        Some(logout_state) => Ok(store::take_logout(state, logout_state).await?),
        None => Ok(false),
    }
}
