//! What the provider remembers, in memory (a restart signs everyone out, as in the hub's
//! UIs): authorization requests waiting for the citizen's login, the citizens' sessions,
//! authorization codes and access tokens. Secrets are kept by their SHA-256 only, each
//! kind of entry has its lifetime on the provider's clock, and each map is capped so that
//! nobody can fill the memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use kopplung_core::clock::Clock;
use kopplung_web::shell::{random_hex, token_id};
use time::{Duration, OffsetDateTime};

use crate::people::{Identity, Level, Means};

/// An authorization request waits this long for the login.
pub const PENDING_TTL: Duration = Duration::minutes(30);
/// A sign-in at the provider lasts this long (single sign-on for further requests).
pub const SESSION_TTL: Duration = Duration::hours(2);
/// An authorization code must be redeemed within this (OAuth 2.0 recommends ≤ 10 min).
pub const CODE_TTL: Duration = Duration::seconds(60);
/// ID tokens and access tokens.
pub const TOKEN_TTL: Duration = Duration::minutes(10);
/// Entries per map; beyond it new ones are refused until old ones expire.
const MAX_ENTRIES: usize = 10_000;

/// How the citizen signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignIn {
    pub identity: &'static Identity,
    pub means: Means,
    pub auth_time: OffsetDateTime,
}

/// What a client asked for that its authorization code stays bound to: the token
/// request must name the same client, redirect URI and PKCE verifier.
#[derive(Debug, Clone)]
pub struct Request {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
}

/// An authorization request that passed every check, waiting for the login page.
#[derive(Debug, Clone)]
pub struct Pending {
    pub request: Request,
    pub state: Option<String>,
    pub min_level: Option<Level>,
    /// The SHA-256 of the browser cookie the request was started with: only that
    /// browser may answer it.
    pub browser: String,
    /// The login form's CSRF token.
    pub csrf: String,
    /// The identity of the session being stepped up, chosen in advance.
    pub suggested: Option<&'static str>,
}

/// A citizen's session at the provider.
#[derive(Debug, Clone)]
pub struct Session {
    pub sign_in: SignIn,
    /// The logout confirmation's CSRF token.
    pub csrf: String,
}

/// What an authorization code stands for.
#[derive(Debug, Clone)]
pub struct Grant {
    pub request: Request,
    pub sign_in: SignIn,
}

/// What an access token allows: the userinfo of one identity for one client.
#[derive(Debug, Clone)]
pub struct Access {
    pub client_id: String,
    pub identity: &'static Identity,
    pub scopes: Vec<String>,
    /// The code it was issued for: a replayed code revokes it.
    code: String,
}

/// Why a code is not redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeem {
    Unknown,
    Reused,
}

/// A map is full: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

#[derive(Debug)]
struct Entry<T> {
    value: T,
    expires: OffsetDateTime,
}

#[derive(Debug)]
struct Codes {
    grant: Grant,
    used: bool,
}

#[derive(Debug, Default)]
struct Maps {
    pending: HashMap<String, Entry<Pending>>,
    sessions: HashMap<String, Entry<Session>>,
    codes: HashMap<String, Entry<Codes>>,
    access: HashMap<String, Entry<Access>>,
}

/// The provider's memory.
#[derive(Debug)]
pub struct Store {
    clock: Arc<dyn Clock>,
    maps: Mutex<Maps>,
}

impl Store {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            maps: Mutex::default(),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn lock(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `value` for `ttl` in the map `which` chooses, under a new random secret,
    /// which it returns.
    fn keep<T>(
        &self,
        which: fn(&mut Maps) -> &mut HashMap<String, Entry<T>>,
        value: T,
        ttl: Duration,
    ) -> Result<String, Stored> {
        let secret = random_hex(32).map_err(|_| Stored::Random)?;
        let now = self.now();
        insert(which(&mut self.lock()), &secret, value, now, now + ttl)?;
        Ok(secret)
    }

    /// Keeps `pending` and returns its id (for the login page's address).
    pub fn put_pending(&self, pending: Pending) -> Result<String, Stored> {
        self.keep(|maps| &mut maps.pending, pending, PENDING_TTL)
    }

    /// The live entry kept under `secret` in the map `which` chooses.
    fn kept<T: Clone>(
        &self,
        which: fn(&mut Maps) -> &mut HashMap<String, Entry<T>>,
        secret: &str,
    ) -> Option<T> {
        let now = self.now();
        which(&mut self.lock())
            .get(&token_id(secret))
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.value.clone())
    }

    /// Forgets the entry kept under `secret` in the map `which` chooses.
    fn forget<T>(&self, which: fn(&mut Maps) -> &mut HashMap<String, Entry<T>>, secret: &str) {
        which(&mut self.lock()).remove(&token_id(secret));
    }

    pub fn pending(&self, id: &str) -> Option<Pending> {
        self.kept(|maps| &mut maps.pending, id)
    }

    pub fn drop_pending(&self, id: &str) {
        self.forget(|maps| &mut maps.pending, id);
    }

    /// A new session: its token for the cookie.
    pub fn open_session(&self, sign_in: SignIn) -> Result<String, Stored> {
        let csrf = random_hex(32).map_err(|_| Stored::Random)?;
        let session = Session { sign_in, csrf };
        self.keep(|maps| &mut maps.sessions, session, SESSION_TTL)
    }

    pub fn session(&self, token: &str) -> Option<Session> {
        self.kept(|maps| &mut maps.sessions, token)
    }

    pub fn end_session(&self, token: &str) {
        self.forget(|maps| &mut maps.sessions, token);
    }

    /// A new authorization code for `grant`.
    pub fn issue_code(&self, grant: Grant) -> Result<String, Stored> {
        let entry = Codes { grant, used: false };
        self.keep(|maps| &mut maps.codes, entry, CODE_TTL)
    }

    /// The grant of `code`, once. A second attempt revokes the access tokens issued
    /// for it (RFC 6749, 4.1.2): the code has leaked.
    pub fn redeem(&self, code: &str) -> Result<Grant, Redeem> {
        let now = self.now();
        let key = token_id(code);
        let mut maps = self.lock();
        let entry = match maps.codes.get_mut(&key) {
            Some(entry) if entry.expires > now => entry,
            _ => return Err(Redeem::Unknown),
        };
        if entry.value.used {
            maps.access.retain(|_, access| access.value.code != key);
            return Err(Redeem::Reused);
        }
        entry.value.used = true;
        Ok(entry.value.grant.clone())
    }

    /// A new access token for what `grant` allows.
    pub fn issue_access(&self, code: &str, grant: &Grant) -> Result<String, Stored> {
        let access = Access {
            client_id: grant.request.client_id.clone(),
            identity: grant.sign_in.identity,
            scopes: grant.request.scopes.clone(),
            code: token_id(code),
        };
        self.keep(|maps| &mut maps.access, access, TOKEN_TTL)
    }

    pub fn access(&self, token: &str) -> Option<Access> {
        self.kept(|maps| &mut maps.access, token)
    }
}

/// Why nothing was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Full,
    Random,
}

impl From<Full> for Stored {
    fn from(_: Full) -> Self {
        Self::Full
    }
}

fn insert<T>(
    map: &mut HashMap<String, Entry<T>>,
    secret: &str,
    value: T,
    now: OffsetDateTime,
    expires: OffsetDateTime,
) -> Result<(), Full> {
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, entry| entry.expires > now);
    }
    if map.len() >= MAX_ENTRIES {
        return Err(Full);
    }
    map.insert(token_id(secret), Entry { value, expires });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::IDENTITIES;
    use kopplung_core::clock::ManualClock;
    use time::macros::datetime;

    fn grant(now: OffsetDateTime) -> Grant {
        Grant {
            request: Request {
                client_id: "portal".into(),
                redirect_uri: "http://rp/cb".into(),
                code_challenge: "c".into(),
                nonce: None,
                scopes: vec!["openid".into()],
            },
            sign_in: SignIn {
                identity: &IDENTITIES[0],
                means: Means::IdCard,
                auth_time: now,
            },
        }
    }

    #[test]
    fn codes_are_single_use_short_lived_and_a_replay_revokes_the_token() {
        let clock = Arc::new(ManualClock::new(datetime!(2026-12-03 10:00 UTC)));
        let store = Store::new(clock.clone());
        let code = store.issue_code(grant(store.now())).unwrap();
        let grant = store.redeem(&code).unwrap();
        let token = store.issue_access(&code, &grant).unwrap();
        assert!(store.access(&token).is_some());
        assert_eq!(store.redeem(&code).unwrap_err(), Redeem::Reused);
        assert!(
            store.access(&token).is_none(),
            "the replay revokes the token"
        );

        let late = store.issue_code(grant.clone()).unwrap();
        clock.advance(CODE_TTL);
        assert_eq!(store.redeem(&late).unwrap_err(), Redeem::Unknown);
        assert_eq!(store.redeem("nonsense").unwrap_err(), Redeem::Unknown);
    }

    #[test]
    fn sessions_and_tokens_end_on_time() {
        let clock = Arc::new(ManualClock::new(datetime!(2026-12-03 10:00 UTC)));
        let store = Store::new(clock.clone());
        let g = grant(store.now());
        let session = store.open_session(g.sign_in).unwrap();
        let code = store.issue_code(g.clone()).unwrap();
        let token = store.issue_access(&code, &g).unwrap();
        clock.advance(TOKEN_TTL);
        assert!(store.access(&token).is_none());
        assert!(store.session(&session).is_some());
        clock.advance(SESSION_TTL);
        assert!(store.session(&session).is_none());
        let other = store.open_session(g.sign_in).unwrap();
        store.end_session(&other);
        assert!(store.session(&other).is_none());
    }

    #[test]
    fn a_full_map_refuses_until_entries_expire() {
        let mut map = HashMap::new();
        let now = datetime!(2026-12-03 10:00 UTC);
        for i in 0..MAX_ENTRIES {
            insert(&mut map, &i.to_string(), (), now, now + CODE_TTL).unwrap();
        }
        assert_eq!(insert(&mut map, "x", (), now, now + CODE_TTL), Err(Full));
        let later = now + CODE_TTL;
        assert!(insert(&mut map, "x", (), later, later + CODE_TTL).is_ok());
        assert_eq!(map.len(), 1);
    }
}
