//! The login limiter of every front end (portal, clerk inbox, admin console).
//!
//! Guessing passwords is limited **per account**: an attempt counts as a failure from
//! the moment it starts until it succeeds, so parallel guesses gain nothing; after
//! [`LoginPolicy::account_failures`] failures the account waits, and every further
//! failure doubles the wait (up to [`LoginPolicy::max_lockout`]) until the account has
//! been quiet for [`LoginPolicy::window`]. Per **address** there
//! is only a coarse cap ([`LoginPolicy::address_failures`]): people behind one proxy or
//! NAT must not lock each other out, and the address is the client's as the server
//! layer resolved it (trusted proxy header, see [`crate::client`]).
//!
//! Time comes from Tokio's clock, so tests can pause it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::limit_address;

/// How many failures are allowed before a login waits, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failures (attempts in flight included) per account before the first wait.
    pub account_failures: u32,
    /// The first wait; each further failure doubles it.
    pub first_lockout: Duration,
    /// The longest wait.
    pub max_lockout: Duration,
    /// An account's failures are forgotten after this long without one; an address's
    /// each this long after it.
    pub window: Duration,
    /// Failures per address in the window before every login from there waits for
    /// the window to pass: a coarse cap against one address trying many accounts.
    pub address_failures: u32,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            account_failures: 5,
            first_lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(60 * 60),
            window: Duration::from_secs(15 * 60),
            address_failures: 100,
        }
    }
}

/// What a login is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Default)]
struct Record {
    failures: VecDeque<Instant>,
    in_flight: u32,
    locked_until: Option<Instant>,
    /// Locks in a row: each doubles the next wait.
    lockouts: u32,
}

impl Record {
    /// An account forgets its failures after a quiet `window` since the last one or the
    /// end of its wait (so a growing wait keeps growing); an address forgets each
    /// failure `window` after it.
    fn prune(&mut self, now: Instant, window: Duration, account: bool) {
        let expired = |at: &Instant| now.duration_since(*at) >= window;
        if account {
            let quiet_since = self.failures.back().copied().max(self.locked_until);
            if quiet_since.as_ref().is_some_and(expired) {
                self.failures.clear();
                self.locked_until = None;
                self.lockouts = 0;
            }
        } else {
            while self.failures.front().is_some_and(expired) {
                self.failures.pop_front();
            }
        }
    }

    fn locked(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until.duration_since(now))
    }

    fn is_idle(&self, now: Instant) -> bool {
        self.failures.is_empty() && self.in_flight == 0 && self.locked(now).is_none()
    }

    fn counted(&self) -> u32 {
        u32::try_from(self.failures.len())
            .unwrap_or(u32::MAX)
            .saturating_add(self.in_flight)
    }
}

/// Why a login may not be tried now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub wait: Duration,
    /// Whether the address (rather than the account) is what waits.
    pub by_address: bool,
}

/// The limiter; clones share their records.
#[derive(Debug, Clone, Default)]
pub struct LoginLimiter {
    policy: LoginPolicy,
    records: Arc<Mutex<HashMap<Key, Record>>>,
}

/// Records kept before idle ones are swept.
const SWEEP_ABOVE: usize = 10_000;

/// How long a login waits while the account's budget is taken by attempts in flight.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(1);

impl LoginLimiter {
    pub fn new(policy: LoginPolicy) -> Self {
        Self {
            policy,
            records: Arc::default(),
        }
    }

    pub fn policy(&self) -> LoginPolicy {
        self.policy
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Record>> {
        match self.records.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Starts a login for `account` (normalised by the caller, e.g. lower-case e-mail;
    /// `None` where a login names no one, like a token) from `address`. The attempt
    /// counts as failed until [`Attempt::succeeded`] is called.
    pub fn begin(
        &self,
        account: Option<&str>,
        address: IpAddr,
        now: Instant,
    ) -> Result<Attempt, Refused> {
        let policy = self.policy;
        let mut keys = Vec::with_capacity(2);
        if let Some(account) = account {
            keys.push(Key::Account(account.to_owned()));
        }
        keys.push(Key::Address(limit_address(address)));
        let mut records = self.lock();
        if records.len() > SWEEP_ABOVE {
            records.retain(|key, record| {
                record.prune(now, policy.window, matches!(key, Key::Account(_)));
                !record.is_idle(now)
            });
        }
        let mut refused: Option<Refused> = None;
        for key in &keys {
            let Some(record) = records.get_mut(key) else {
                continue;
            };
            record.prune(now, policy.window, matches!(key, Key::Account(_)));
            let wait = match key {
                Key::Account(_) => match record.locked(now) {
                    Some(wait) => Some(wait),
                    // The budget is taken by attempts still being checked.
                    None if record.in_flight > 0 && record.counted() >= policy.account_failures => {
                        Some(IN_FLIGHT_WAIT)
                    }
                    None => None,
                },
                Key::Address(_) if record.counted() >= policy.address_failures => Some(
                    record
                        .failures
                        .front()
                        .map_or(IN_FLIGHT_WAIT, |first| {
                            policy.window.saturating_sub(now.duration_since(*first))
                        })
                        .max(IN_FLIGHT_WAIT),
                ),
                Key::Address(_) => None,
            };
            if let Some(wait) = wait {
                let candidate = Refused {
                    wait,
                    by_address: matches!(key, Key::Address(_)),
                };
                refused = Some(match refused {
                    Some(earlier) if earlier.wait >= wait => earlier,
                    _ => candidate,
                });
            }
        }
        if let Some(refused) = refused {
            return Err(refused);
        }
        for key in &keys {
            records.entry(key.clone()).or_default().in_flight += 1;
        }
        Ok(Attempt {
            limiter: self.clone(),
            keys,
            open: true,
        })
    }

    fn finish(&self, keys: &[Key], failed: bool, now: Instant) -> Option<Duration> {
        let policy = self.policy;
        let mut records = self.lock();
        let mut lock_began = None;
        for key in keys {
            let Some(record) = records.get_mut(key) else {
                continue;
            };
            record.in_flight = record.in_flight.saturating_sub(1);
            match (key, failed) {
                (Key::Account(_), false) => {
                    records.remove(key);
                }
                (Key::Address(_), false) => {
                    if record.is_idle(now) {
                        records.remove(key);
                    }
                }
                (Key::Account(_), true) => {
                    record.failures.push_back(now);
                    let failures = u32::try_from(record.failures.len()).unwrap_or(u32::MAX);
                    if failures >= policy.account_failures {
                        let doubling = record.lockouts.min(16);
                        let wait = policy
                            .first_lockout
                            .saturating_mul(1u32 << doubling)
                            .min(policy.max_lockout);
                        record.lockouts = record.lockouts.saturating_add(1);
                        record.locked_until = Some(now + wait);
                        lock_began = Some(wait);
                    }
                }
                (Key::Address(_), true) => record.failures.push_back(now),
            }
        }
        lock_began
    }
}

/// A login being checked. Dropped without a verdict, it counts as failed.
#[derive(Debug)]
pub struct Attempt {
    limiter: LoginLimiter,
    keys: Vec<Key>,
    open: bool,
}

impl Attempt {
    /// The password (or token) was right: the account's failures are forgiven; the
    /// address keeps its earlier failures.
    pub fn succeeded(mut self) {
        self.open = false;
        self.limiter.finish(&self.keys, false, Instant::now());
    }

    /// The login failed. Returns the wait that began with this failure, if one did.
    pub fn failed(mut self) -> Option<Duration> {
        self.open = false;
        self.limiter.finish(&self.keys, true, Instant::now())
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.open {
            self.limiter.finish(&self.keys, true, Instant::now());
        }
    }
}

/// `1 Minute`, `15 Minuten`: a wait for German pages, rounded up to whole minutes.
pub fn wait_in_minutes(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    if minutes == 1 {
        "1 Minute".to_owned()
    } else {
        format!("{minutes} Minuten")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

    /// The default policy but for `address_failures`.
    fn address_capped(address_failures: u32) -> LoginLimiter {
        LoginLimiter::new(LoginPolicy {
            address_failures,
            ..LoginPolicy::default()
        })
    }

    fn fail(limiter: &LoginLimiter, account: &str, address: IpAddr) -> Option<Duration> {
        limiter
            .begin(Some(account), address, Instant::now())
            .expect("allowed")
            .failed()
    }

    #[tokio::test(start_paused = true)]
    async fn parallel_attempts_cannot_exceed_the_account_budget() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        let attempts: Vec<Attempt> = (0..5)
            .map(|_| limiter.begin(Some("anna"), HOME, now).expect("allowed"))
            .collect();
        for address in [HOME, ELSEWHERE] {
            let refused = limiter.begin(Some("anna"), address, now).unwrap_err();
            assert_eq!(refused.wait, IN_FLIGHT_WAIT);
            assert!(!refused.by_address);
        }
        // Another account from the same address is not affected.
        assert!(limiter.begin(Some("bert"), HOME, now).is_ok());
        let waits: Vec<Option<Duration>> = attempts.into_iter().map(Attempt::failed).collect();
        assert_eq!(waits[4], Some(Duration::from_secs(60)));
        assert!(limiter.begin(Some("anna"), HOME, Instant::now()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn every_further_failure_doubles_the_wait_up_to_the_maximum() {
        let limiter = LoginLimiter::default();
        for _ in 0..4 {
            assert_eq!(fail(&limiter, "anna", HOME), None);
        }
        let mut expected = Duration::from_secs(60);
        for _ in 0..9 {
            let wait = fail(&limiter, "anna", HOME).expect("a lock began");
            assert_eq!(wait, expected);
            let refused = limiter
                .begin(Some("anna"), HOME, Instant::now())
                .unwrap_err();
            assert_eq!(refused.wait, wait);
            tokio::time::advance(wait).await;
            expected = (expected * 2).min(Duration::from_secs(3600));
        }
        // One probe after a lock, never two at once.
        let probe = limiter
            .begin(Some("anna"), HOME, Instant::now())
            .expect("a probe");
        assert!(limiter.begin(Some("anna"), HOME, Instant::now()).is_err());
        probe.succeeded();
        for _ in 0..4 {
            assert_eq!(fail(&limiter, "anna", HOME), None, "forgiven after success");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_attempt_counts_as_failed() {
        let limiter = LoginLimiter::default();
        for _ in 0..5 {
            drop(
                limiter
                    .begin(Some("anna"), HOME, Instant::now())
                    .expect("allowed"),
            );
        }
        assert!(limiter.begin(Some("anna"), HOME, Instant::now()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_forgotten_after_the_window() {
        let limiter = LoginLimiter::default();
        for _ in 0..4 {
            fail(&limiter, "anna", HOME);
        }
        tokio::time::advance(LoginPolicy::default().window).await;
        for _ in 0..4 {
            assert_eq!(fail(&limiter, "anna", HOME), None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_address_cap_is_coarse_and_outlives_a_success() {
        let limiter = address_capped(8);
        // Eight people behind one address each mistype once: nobody is locked out yet.
        for n in 0..7 {
            fail(&limiter, &format!("user{n}"), HOME);
        }
        limiter
            .begin(Some("user7"), HOME, Instant::now())
            .expect("allowed")
            .succeeded();
        fail(&limiter, "user8", HOME);
        let refused = limiter
            .begin(Some("user9"), HOME, Instant::now())
            .unwrap_err();
        assert!(refused.by_address);
        assert!(refused.wait > Duration::from_secs(14 * 60), "{refused:?}");
        assert!(
            limiter
                .begin(Some("user9"), ELSEWHERE, Instant::now())
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn logins_that_name_no_one_count_against_the_address_only() {
        let limiter = address_capped(5);
        let attempts: Vec<Attempt> = (0..5)
            .map(|_| limiter.begin(None, HOME, Instant::now()).expect("allowed"))
            .collect();
        assert!(limiter.begin(None, HOME, Instant::now()).is_err());
        drop(attempts);
        assert!(limiter.begin(None, HOME, Instant::now()).is_err());
        assert!(limiter.begin(None, ELSEWHERE, Instant::now()).is_ok());
    }

    #[test]
    fn waits_in_whole_minutes() {
        assert_eq!(wait_in_minutes(Duration::from_secs(1)), "1 Minute");
        assert_eq!(wait_in_minutes(Duration::from_secs(61)), "2 Minuten");
        assert_eq!(wait_in_minutes(Duration::from_secs(900)), "15 Minuten");
    }
}
