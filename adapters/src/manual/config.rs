use std::sync::Arc;

use serde::Deserialize;

use super::sink::ManualSink;
use crate::transport::{BuildContext, CheckContext, Transport};
use crate::{ConfigProblem, Error, Sink};

/// A procedure without an interface: which clerks may take over its applications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualConfig {
    /// Ids of `[[clerk]]`s of the hub's configuration.
    pub clerks: Vec<String>,
}

impl Transport for ManualConfig {
    fn validate(&self, context: &CheckContext<'_>) -> Vec<ConfigProblem> {
        if self.clerks.is_empty() {
            return vec![ConfigProblem::new("clerks", "name at least one clerk")];
        }
        self.clerks
            .iter()
            .filter(|clerk| !context.clerks.contains(clerk.as_str()))
            .map(|clerk| {
                ConfigProblem::new(
                    "clerks",
                    format!("unknown clerk `{clerk}` (no [[clerk]] with this id)"),
                )
            })
            .collect()
    }

    fn build(&self, context: &BuildContext<'_>) -> Result<Arc<dyn Sink>, Error> {
        Ok(Arc::new(ManualSink::new(context.procedure)))
    }

    /// A clerk reads the application at the hub: nothing leaves it.
    fn sealed(&self) -> bool {
        false
    }

    /// "Delivering" only marks the message for the inbox: nothing to protect.
    fn default_max_in_flight(&self) -> u32 {
        64
    }

    /// A clerk's inbox has no deadline.
    fn default_receipt_deadline_secs(&self) -> u64 {
        0
    }
}
