//! Sessions of the web UIs (random tokens, kept in memory) and the login rate limit.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts from the login on.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Failed logins per key (a clerk id, an address) before the lock.
pub const MAX_FAILURES: usize = 5;
/// The window in which failures count, and how long the lock lasts.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

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

/// What a login attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// The clerk id the attempt names (clerk inbox).
    Clerk(String),
    /// The address the attempt comes from.
    Address(IpAddr),
}

#[derive(Debug, Default)]
struct Record {
    /// Failed attempts in the window, and attempts still being checked.
    attempts: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

impl Record {
    fn prune(&mut self, now: Instant) {
        if self.locked_until.is_some_and(|until| until <= now) {
            self.locked_until = None;
            self.attempts.clear();
        }
        while self
            .attempts
            .front()
            .is_some_and(|at| now.duration_since(*at) >= FAILURE_WINDOW)
        {
            self.attempts.pop_front();
        }
    }

    fn is_idle(&self) -> bool {
        self.attempts.is_empty() && self.locked_until.is_none()
    }
}

/// After [`MAX_FAILURES`] failed logins within [`FAILURE_WINDOW`] for one clerk id or
/// from one address, further attempts are refused for [`LOCKOUT`]. An attempt counts as
/// a failure from its start until it succeeds, so parallel guesses gain nothing.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    records: Mutex<HashMap<LimitKey, Record>>,
}

/// Records kept before idle ones are swept.
const SWEEP_ABOVE: usize = 10_000;

impl LoginLimiter {
    /// Starts an attempt, or says how long the caller must wait.
    pub fn begin(&self, keys: &[LimitKey], now: Instant) -> Result<(), Duration> {
        let mut records = lock(&self.records);
        if records.len() > SWEEP_ABOVE {
            records.retain(|_, record| {
                record.prune(now);
                !record.is_idle()
            });
        }
        let mut wait = None::<Duration>;
        for key in keys {
            if let Some(record) = records.get_mut(key) {
                record.prune(now);
                let blocked = match record.locked_until {
                    Some(until) => Some(until.duration_since(now)),
                    // Attempts still being checked fill the budget: wait a moment.
                    None if record.attempts.len() >= MAX_FAILURES => Some(Duration::from_secs(1)),
                    None => None,
                };
                if let Some(blocked) = blocked {
                    wait = Some(wait.map_or(blocked, |w| w.max(blocked)));
                }
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for key in keys {
            records
                .entry(key.clone())
                .or_default()
                .attempts
                .push_back(now);
        }
        Ok(())
    }

    /// The attempt failed: it stays counted; the fifth failure locks. Returns whether
    /// a lock began.
    pub fn failed(&self, keys: &[LimitKey], now: Instant) -> bool {
        let mut records = lock(&self.records);
        let mut locked = false;
        for key in keys {
            if let Some(record) = records.get_mut(key)
                && record.locked_until.is_none()
                && record.attempts.len() >= MAX_FAILURES
            {
                record.locked_until = Some(now + LOCKOUT);
                locked = true;
            }
        }
        locked
    }

    /// The attempt succeeded: the clerk's failures are forgiven; the address keeps its
    /// earlier failures, minus this attempt.
    pub fn succeeded(&self, keys: &[LimitKey]) {
        let mut records = lock(&self.records);
        for key in keys {
            match key {
                LimitKey::Clerk(_) => {
                    records.remove(key);
                }
                LimitKey::Address(_) => {
                    if let Some(record) = records.get_mut(key) {
                        record.attempts.pop_back();
                        if record.is_idle() {
                            records.remove(key);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_attempt_after_five_failures_waits_fifteen_minutes() {
        let limiter = LoginLimiter::default();
        let keys = [
            LimitKey::Clerk("anna".into()),
            LimitKey::Address([127, 0, 0, 1].into()),
        ];
        let start = Instant::now();
        for i in 0..5 {
            let now = start + Duration::from_secs(i);
            limiter.begin(&keys, now).expect("allowed");
            assert_eq!(limiter.failed(&keys, now), i == 4);
        }
        let wait = limiter
            .begin(&keys, start + Duration::from_secs(60))
            .expect_err("locked");
        assert!(wait > Duration::from_secs(14 * 60), "{wait:?}");
        // Another clerk from the same address is locked too; from elsewhere not.
        let other = [
            LimitKey::Clerk("bert".into()),
            LimitKey::Address([127, 0, 0, 1].into()),
        ];
        assert!(
            limiter
                .begin(&other, start + Duration::from_secs(61))
                .is_err()
        );
        let elsewhere = [
            LimitKey::Clerk("bert".into()),
            LimitKey::Address([10, 0, 0, 1].into()),
        ];
        assert!(
            limiter
                .begin(&elsewhere, start + Duration::from_secs(62))
                .is_ok()
        );
        // After the lock, attempts are allowed again.
        assert!(
            limiter
                .begin(&keys, start + Duration::from_secs(4) + LOCKOUT)
                .is_ok()
        );
    }

    #[test]
    fn failures_outside_the_window_and_before_a_success_do_not_count() {
        let limiter = LoginLimiter::default();
        let keys = [LimitKey::Clerk("anna".into())];
        let start = Instant::now();
        for _ in 0..4 {
            limiter.begin(&keys, start).expect("allowed");
            limiter.failed(&keys, start);
        }
        let later = start + FAILURE_WINDOW;
        limiter.begin(&keys, later).expect("old failures expired");
        assert!(!limiter.failed(&keys, later));
        limiter.begin(&keys, later).expect("allowed");
        limiter.succeeded(&keys);
        for _ in 0..5 {
            limiter.begin(&keys, later).expect("forgiven after success");
            limiter.failed(&keys, later);
        }
        assert!(limiter.begin(&keys, later).is_err());
    }

    #[test]
    fn an_address_alone_is_limited_and_keeps_its_failures_after_a_success() {
        let limiter = LoginLimiter::default();
        let keys = [LimitKey::Address([192, 0, 2, 1].into())];
        let now = Instant::now();
        for _ in 0..4 {
            limiter.begin(&keys, now).expect("allowed");
            limiter.failed(&keys, now);
        }
        limiter.begin(&keys, now).expect("allowed");
        limiter.succeeded(&keys);
        limiter.begin(&keys, now).expect("the fifth attempt");
        assert!(
            limiter.failed(&keys, now),
            "four earlier failures and this one"
        );
        assert!(limiter.begin(&keys, now).is_err());
    }

    #[test]
    fn parallel_attempts_cannot_exceed_the_budget() {
        let limiter = LoginLimiter::default();
        let keys = [LimitKey::Clerk("anna".into())];
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            limiter.begin(&keys, now).expect("allowed");
        }
        assert!(limiter.begin(&keys, now).is_err(), "five still in flight");
    }

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
