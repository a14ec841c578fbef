//! `[delivery]` and `[amqp]`: when a failed delivery is tried again, how long an instance
//! holds a claimed one, and the broker connection AMQP procedures share.

use std::time::Duration;

use kopplung_adapters::amqp::AmqpBrokerConfig;
use kopplung_adapters::registry::DeliveryConfig;
use serde::Deserialize;

use super::problems::Findings;
use super::procedures::ProcedureConfig;

/// When to try a failed delivery again: exponential backoff with full jitter, and when
/// to give up (dead letter). Waiting for an unreachable broker is not an attempt.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "default_base_delay")]
    pub base_delay_ms: u64,
    #[serde(default = "default_max_delay")]
    pub max_delay_ms: u64,
    /// Attempts before the message is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long an instance holds a claimed outbox entry (`[delivery]` of kopplung.toml
    /// only): after a crash, another instance takes the entry over once this has passed.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// After how long without a heartbeat another instance takes over an instance's
    /// claims (`[delivery]` of kopplung.toml only; matters with PostgreSQL, where several
    /// instances share the outbox).
    #[serde(default = "default_heartbeat_timeout_secs")]
    pub heartbeat_timeout_secs: u64,
}

fn default_heartbeat_timeout_secs() -> u64 {
    10
}

fn default_lease_secs() -> u64 {
    120
}
fn default_base_delay() -> u64 {
    1_000
}
fn default_max_delay() -> u64 {
    60_000
}
fn default_max_attempts() -> u32 {
    10
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay_ms: default_base_delay(),
            max_delay_ms: default_max_delay(),
            max_attempts: default_max_attempts(),
            lease_secs: default_lease_secs(),
            heartbeat_timeout_secs: default_heartbeat_timeout_secs(),
        }
    }
}

impl RetryPolicy {
    /// The lease, if it is valid: 5 seconds to an hour.
    pub(super) fn lease(&self) -> Option<Duration> {
        (5..=3600)
            .contains(&self.lease_secs)
            .then(|| Duration::from_secs(self.lease_secs))
    }

    /// The problems of the backoff, each given to `found` with its key.
    pub(super) fn check_backoff(&self, mut found: impl FnMut(&str, String)) {
        if self.base_delay_ms < 10 || self.max_delay_ms < self.base_delay_ms {
            found(
                "base_delay_ms",
                "need 10 <= base_delay_ms <= max_delay_ms".into(),
            );
        }
        if self.max_delay_ms > 86_400_000 {
            found("max_delay_ms", "at most 86400000 (one day)".into());
        }
        if self.max_attempts == 0 {
            found("max_attempts", "must be at least 1".into());
        }
    }

    /// `[delivery]` of kopplung.toml: the backoff and the lease.
    pub(super) fn check(&self, findings: &mut Findings) {
        self.check_backoff(|key, message| findings.key("delivery", key, message));
        if self.lease().is_none() {
            findings.key("delivery", "lease_secs", "must be 5 to 3600");
        }
        if !(2..=600).contains(&self.heartbeat_timeout_secs) {
            findings.key("delivery", "heartbeat_timeout_secs", "must be 2 to 600");
        }
    }
}

/// `[amqp]`: the broker's own settings, and that one attempt fits into the lease.
pub(super) fn check_broker(
    broker: &AmqpBrokerConfig,
    lease: Option<Duration>,
    findings: &mut Findings,
) {
    for problem in broker.validate(lease) {
        findings.key("amqp", problem.key, problem.message);
    }
}

/// What bounds `[delivery] lease_secs` from below: one delivery attempt must end within
/// three quarters of the lease (so that a lease never runs out under work still going
/// on), so the lease is at least 4/3 of the longest attempt the transports allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFloor {
    /// The longest one delivery attempt may take by the configuration.
    pub attempt: Duration,
    /// What sets it, e.g. `[amqp] 2 * connect_timeout_secs + confirm_timeout_secs`.
    pub set_by: String,
    /// 4/3 of `attempt`, rounded up to whole seconds.
    pub minimum: Duration,
}

/// The floor of the lease for `procedures` over `broker`; `None` if no procedure's
/// transport has a timeout (pull and manual procedures only).
pub fn lease_floor(
    broker: Option<&AmqpBrokerConfig>,
    procedures: &[ProcedureConfig],
) -> Option<LeaseFloor> {
    let broker = broker.map(|b| {
        (
            b.attempt(),
            "[amqp] 2 * connect_timeout_secs + confirm_timeout_secs".to_owned(),
        )
    });
    procedures
        .iter()
        .filter_map(|procedure| match &procedure.delivery {
            DeliveryConfig::Amqp(_) => broker.clone(),
            DeliveryConfig::Http(http) => Some((
                Duration::from_millis(http.timeout_ms),
                format!("procedure {} timeout_ms", procedure.id),
            )),
            _ => None,
        })
        .max_by_key(|(attempt, _)| *attempt)
        .map(|(attempt, set_by)| LeaseFloor {
            attempt,
            set_by,
            minimum: kopplung_adapters::minimum_lease(attempt),
        })
}
