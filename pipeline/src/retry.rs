//! When to try a failed delivery again: exponential backoff with full jitter, and when
//! to give up (dead letter).

use std::time::Duration;

use rand::Rng;

/// A retry policy (`[delivery]` of the hub, or a procedure's own). Waiting for an
/// unreachable destination is not an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Attempts before the message is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay_ms: 1_000,
            max_delay_ms: 60_000,
            max_attempts: 10,
        }
    }
}

/// What follows a failed attempt (`Outcome::Retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The policy's attempts are used up: dead letter.
    GiveUp { attempts: u32 },
    /// Another attempt after this pause (backoff, never shorter than `Retry-After`).
    TryAgainIn(Duration),
}

/// The decision after the failure of attempt number `attempts + 1`.
pub fn after_failure(
    policy: &RetryPolicy,
    attempts: u32,
    not_before: Option<Duration>,
    rng: &mut impl Rng,
) -> Next {
    let attempts_now = attempts + 1;
    if attempts_now >= policy.max_attempts {
        return Next::GiveUp {
            attempts: attempts_now,
        };
    }
    let jitter = full_jitter(policy, attempts, rng);
    Next::TryAgainIn(not_before.map_or(jitter, |floor| jitter.max(floor)))
}

/// The pause before the next attempt: full jitter, but not before `not_before`.
pub(crate) fn backoff(
    policy: &RetryPolicy,
    attempts: u32,
    not_before: Option<Duration>,
) -> Duration {
    let jitter = full_jitter(policy, attempts, &mut rand::rng());
    not_before.map_or(jitter, |floor| jitter.max(floor))
}

/// Exponential backoff with full jitter: uniform in `[0, min(max, base * 2^attempts)]`.
pub fn full_jitter(policy: &RetryPolicy, attempts: u32, rng: &mut impl Rng) -> Duration {
    let ceiling = policy
        .base_delay_ms
        .saturating_mul(1u64 << attempts.min(32))
        .min(policy.max_delay_ms);
    Duration::from_millis(rng.random_range(0..=ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A policy with a base delay of 100 ms, and a random source seeded with `seed`.
    fn policy_and_rng(
        max_delay_ms: u64,
        max_attempts: u32,
        seed: u64,
    ) -> (RetryPolicy, rand::rngs::StdRng) {
        let policy = RetryPolicy {
            base_delay_ms: 100,
            max_delay_ms,
            max_attempts,
        };
        (policy, rand::rngs::StdRng::seed_from_u64(seed))
    }

    #[test]
    fn retry_after_is_a_floor_and_the_last_attempt_gives_up() {
        let (policy, mut rng) = policy_and_rng(60_000, 4, 11);
        for attempts in 0..3 {
            for _ in 0..200 {
                // A receiver that says `Retry-After: 7` is not asked again sooner.
                let Next::TryAgainIn(pause) =
                    after_failure(&policy, attempts, Some(Duration::from_secs(7)), &mut rng)
                else {
                    panic!("gave up after {} attempts", attempts + 1);
                };
                assert!(pause >= Duration::from_secs(7), "{pause:?}");
                assert!(pause <= Duration::from_secs(60));
                // Without it, the backoff's ceiling for this attempt holds.
                let Next::TryAgainIn(pause) = after_failure(&policy, attempts, None, &mut rng)
                else {
                    panic!("gave up early");
                };
                assert!(pause <= Duration::from_millis(100 << attempts), "{pause:?}");
            }
        }
        // The fourth failure is the last: dead letter, whatever Retry-After said.
        assert_eq!(
            after_failure(&policy, 3, Some(Duration::from_secs(1)), &mut rng),
            Next::GiveUp { attempts: 4 }
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let (policy, mut rng) = policy_and_rng(1_000, 10, 7);
        for attempts in 0..40 {
            let ceiling = (100u64 << attempts.min(32)).min(1_000);
            for _ in 0..50 {
                let d = full_jitter(&policy, attempts, &mut rng);
                assert!(d <= Duration::from_millis(ceiling), "{attempts}: {d:?}");
            }
        }
        // Full jitter spreads: not every draw at a high attempt count is the cap.
        let draws: Vec<_> = (0..20)
            .map(|_| full_jitter(&policy, 10, &mut rng))
            .collect();
        assert!(draws.iter().any(|d| *d < Duration::from_millis(900)));
    }
}
