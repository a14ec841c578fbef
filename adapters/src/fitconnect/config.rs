use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::sink::FitConnectSink;
use crate::transport::{BuildContext, CheckContext, Transport};
use crate::{ConfigProblem, Error, Sink};

/// A procedure that collects as a FIT-Connect subscriber.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitConnectSinkConfig {
    /// The procedure's encryption certificate as a FIT-Connect subscriber (RSA of at
    /// least 4096 bits), relative to the PKI folder: what it collects is encrypted for
    /// it. The subscriber's access is a `[[fitconnect.client]]` with role `subscriber`.
    pub certificate: PathBuf,
}

impl Transport for FitConnectSinkConfig {
    fn validate(&self, _context: &CheckContext<'_>) -> Vec<ConfigProblem> {
        if self.certificate.as_os_str().is_empty() {
            return vec![ConfigProblem::new(
                "certificate",
                "name the subscriber's encryption certificate",
            )];
        }
        Vec::new()
    }

    fn build(&self, context: &BuildContext<'_>) -> Result<Arc<dyn Sink>, Error> {
        Ok(Arc::new(FitConnectSink::new(context.procedure)))
    }

    /// The hub encrypts what the subscriber collects with FIT-Connect's own scheme at
    /// collection; the stored message is the checked XML.
    fn sealed(&self) -> bool {
        false
    }

    /// "Delivering" only marks the message for collection: nothing to protect.
    fn default_max_in_flight(&self) -> u32 {
        64
    }

    /// A subscriber may collect once a day.
    fn default_receipt_deadline_secs(&self) -> u64 {
        24 * 3600
    }
}
