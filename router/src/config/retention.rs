//! `[retention]`: when personal data is deleted (DSGVO).

use std::collections::BTreeMap;

use kopplung_core::ServiceKey;
use serde::{Deserialize, Deserializer};

use super::problems::Findings;

/// The longest retention: a hundred years.
const MAX_DAYS: u32 = 36_500;

/// Deletion of personal data (DSGVO): `days` after an application was decided or
/// rejected, its form data, attachments, sealed message, documents and mailbox texts
/// are deleted; ids, states, history and the audit trail's hashes stay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days after the final state, for every service without its own.
    pub days: u32,
    /// Days per service (LeiKa key = days).
    #[serde(default, deserialize_with = "days_by_service")]
    pub service: BTreeMap<ServiceKey, u32>,
    /// How often the hub looks for what is due (seconds).
    #[serde(default = "default_sweep_secs")]
    pub sweep_secs: u64,
}

fn default_sweep_secs() -> u64 {
    3600
}

/// The keys of `[retention.service]`, each a LeiKa key.
fn days_by_service<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<ServiceKey, u32>, D::Error> {
    BTreeMap::<String, u32>::deserialize(deserializer)?
        .into_iter()
        .map(|(key, days)| match ServiceKey::parse(&key) {
            Ok(service) => Ok((service, days)),
            Err(_) => Err(serde::de::Error::custom(format!(
                "[retention.service]: `{key}` is no 14-digit LeiKa key"
            ))),
        })
        .collect()
}

impl RetentionConfig {
    /// The retention of one service in days.
    pub fn days_for(&self, service: &str) -> u32 {
        self.service
            .iter()
            .find(|(key, _)| key.as_str() == service)
            .map_or(self.days, |(_, days)| *days)
    }

    pub(super) fn check(&self, findings: &mut Findings) {
        if self.sweep_secs == 0 {
            findings.key("retention", "sweep_secs", "must be at least 1");
        }
        if self.days > MAX_DAYS {
            findings.key("retention", "days", format!("at most {MAX_DAYS}"));
        }
        for (service, days) in &self.service {
            if *days > MAX_DAYS {
                findings.key(
                    "retention.service",
                    service.as_str(),
                    format!("at most {MAX_DAYS} days"),
                );
            }
        }
    }
}
