//! Sessions of the web UIs (random tokens, kept in memory). The login limit is
//! `kopplung_web::LoginLimiter`, shared with the portal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts from the login on.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);

/// `n` random bytes as hex, from OpenSSL's CSPRNG.
pub fn random_hex(n: usize) -> Result<String, openssl::error::ErrorStack> {
    let mut bytes = vec![0u8; n];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(hex::encode(bytes))
}

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
    map: Mutex<HashMap<[u8; 32], Session>>,
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
        map.insert(openssl::sha::sha256(token.as_bytes()), session.clone());
        Ok((token, session))
    }

    /// The live session of a token.
    pub fn get(&self, token: &str) -> Option<Session> {
        let key = openssl::sha::sha256(token.as_bytes());
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
        lock(&self.map).remove(&openssl::sha::sha256(token.as_bytes()));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
