//! The sign-in limit: after 5 failures for one address or 20 from one network peer
//! within 15 minutes, sign-in is refused for the rest of the window. Registrations
//! (`register:<peer>`) count the same way, 10 per peer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_PER_ACCOUNT: usize = 5;
const MAX_PER_PEER: usize = 20;
const MAX_REGISTRATIONS_PER_PEER: usize = 10;

#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    fn limit(key: &str) -> usize {
        if key.starts_with("peer:") {
            MAX_PER_PEER
        } else if key.starts_with("register:") {
            MAX_REGISTRATIONS_PER_PEER
        } else {
            MAX_PER_ACCOUNT
        }
    }

    /// How long the sign-in stays refused for any of `keys`, if it is.
    pub fn locked(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|key| {
                let list = failures.get_mut(key)?;
                list.retain(|t| now.duration_since(*t) < WINDOW);
                (list.len() >= Self::limit(key))
                    .then(|| {
                        list.first()
                            .map(|first| WINDOW.saturating_sub(now.duration_since(*first)))
                    })
                    .flatten()
            })
            .max()
    }

    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, list| list.iter().any(|t| now.duration_since(*t) < WINDOW));
        }
        for key in keys {
            failures.entry(key.clone()).or_default().push(now);
        }
    }

    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}
