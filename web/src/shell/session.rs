//! Sessions kept in memory (the hub's UIs: a restart signs everyone out) and the CSRF
//! checks of forms. The portal keeps its sessions in its database but draws, stores
//! and compares their tokens the same way (`super::token`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::cookie::cookie;
use super::token::{random_hex, same_token, token_id};

/// How long a session lasts from the login on.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);

/// One signed-in user: a clerk (inbox) or a role (admin console).
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// Sent in every form, checked on every POST.
    pub csrf: String,
    expires: Instant,
}

/// Sessions by the SHA-256 of their token (the token itself is only in the cookie).
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `user`: its token (for the cookie) and the session.
    pub fn create(&self, user: &str) -> Result<(String, Session), openssl::error::ErrorStack> {
        let token = random_hex(32)?;
        let session = Session {
            user: user.to_owned(),
            csrf: random_hex(32)?,
            expires: Instant::now() + SESSION_TTL,
        };
        let mut map = lock(&self.map);
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.insert(token_id(&token), session.clone());
        Ok((token, session))
    }

    /// The live session of a token.
    pub fn get(&self, token: &str) -> Option<Session> {
        let key = token_id(token);
        let mut map = lock(&self.map);
        match map.get(&key) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, token: &str) {
        lock(&self.map).remove(&token_id(token));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A form that carries only the CSRF token (logout, actions).
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// The first checks of every login form: the form is complete, and its CSRF token is the
/// one the login page set in the cookie `login_cookie`. Otherwise the status and German
/// message for the login page.
pub fn checked_login_form<F>(
    headers: &HeaderMap,
    login_cookie: &str,
    form: Result<Form<F>, FormRejection>,
    csrf: impl Fn(&F) -> &str,
) -> Result<F, (StatusCode, &'static str)> {
    let Ok(Form(form)) = form else {
        return Err((
            StatusCode::BAD_REQUEST,
            "Das Formular war unvollständig. Bitte melden Sie sich erneut an.",
        ));
    };
    let form_token = cookie(headers, login_cookie).unwrap_or_default();
    if !same_token(&form_token, csrf(&form)) {
        return Err((
            StatusCode::FORBIDDEN,
            "Das Anmeldeformular ist abgelaufen. Bitte melden Sie sich erneut an.",
        ));
    }
    Ok(form)
}

/// The value of `name` in an urlencoded form's pairs.
pub fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Whether the form's `csrf` field is the session's token.
pub fn csrf_matches(pairs: &[(String, String)], expected: &str) -> bool {
    form_value(pairs, "csrf").is_some_and(|token| same_token(token, expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, header};

    #[test]
    fn sessions_expire_and_end() {
        let sessions = Sessions::default();
        let (token, session) = sessions.create("anna").expect("session");
        assert_eq!(token.len(), 64);
        assert_eq!(sessions.get(&token).map(|s| s.csrf), Some(session.csrf));
        assert_eq!(
            sessions.get(&token).map(|s| s.user).as_deref(),
            Some("anna")
        );
        assert!(sessions.get("other").is_none());
        sessions.remove(&token);
        assert!(sessions.get(&token).is_none());
    }

    #[derive(Debug, Deserialize)]
    struct Login {
        csrf: String,
    }

    #[test]
    fn login_forms_need_the_double_submitted_token() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("login=abc"));
        let form = |csrf: &str| Ok(Form(Login { csrf: csrf.into() }));
        let check = |form| checked_login_form(&headers, "login", form, |f: &Login| &f.csrf);
        assert!(check(form("abc")).is_ok());
        assert_eq!(check(form("abd")).unwrap_err().0, StatusCode::FORBIDDEN);
        assert_eq!(check(form("")).unwrap_err().0, StatusCode::FORBIDDEN);
    }

    #[test]
    fn form_pairs_carry_the_csrf_token() {
        let pairs = vec![
            ("email".to_owned(), "a@b".to_owned()),
            ("csrf".to_owned(), "t0k".to_owned()),
        ];
        assert_eq!(form_value(&pairs, "email"), Some("a@b"));
        assert_eq!(form_value(&pairs, "next"), None);
        assert!(csrf_matches(&pairs, "t0k"));
        assert!(!csrf_matches(&pairs, "t0K"));
        assert!(!csrf_matches(&[], ""));
    }
}
