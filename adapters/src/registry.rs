//! The transports, listed once. A procedure names its transport in its
//! `[procedure.delivery]` section (`transport = "amqp"` and that transport's settings);
//! the hub checks the section and builds the procedure's sink through this list, and
//! the reference procedure plays the receiving side of the same list.
//!
//! Adding a transport: a folder beside `amqp/` whose `config.rs` implements
//! [`Transport`] (`transport.rs`), and one line in the `transports!` list at the end of this file.

use std::sync::Arc;

pub use crate::attempt_limit;
pub use crate::transport::{
    AnswerFolder, ApiToken, BuildContext, CheckContext, Transport, is_sha256_hex,
};
use std::path::Path;

use crate::{ConfigProblem, Error, Sink, amqp, file, fitconnect, http, manual, pull};

macro_rules! transports {
    ($($(#[$doc:meta])* $name:literal => $variant:ident($config:ty),)+) => {
        /// A procedure's `[procedure.delivery]`: `transport = "…"` and that transport's
        /// settings.
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(tag = "transport")]
        pub enum DeliveryConfig {
            $($(#[$doc])* #[serde(rename = $name)] $variant($config),)+
        }

        impl DeliveryConfig {
            /// Every transport, as `transport = "…"` names it.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The name of this transport.
            pub fn transport(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)+
                }
            }

            /// This transport's settings.
            pub fn settings(&self) -> &dyn Transport {
                match self {
                    $(Self::$variant(settings) => settings,)+
                }
            }
        }
    };
}

impl Transport for DeliveryConfig {
    fn validate(&self, context: &CheckContext<'_>) -> Vec<ConfigProblem> {
        self.settings().validate(context)
    }

    fn build(&self, context: &BuildContext<'_>) -> Result<Arc<dyn Sink>, Error> {
        self.settings().build(context)
    }

    fn sealed(&self) -> bool {
        self.settings().sealed()
    }

    fn api_token(&self) -> Option<&ApiToken> {
        self.settings().api_token()
    }

    fn reply_queue(&self) -> Option<&str> {
        self.settings().reply_queue()
    }

    fn answer_folder(&self, data_dir: &Path) -> Option<AnswerFolder> {
        self.settings().answer_folder(data_dir)
    }

    fn default_max_in_flight(&self) -> u32 {
        self.settings().default_max_in_flight()
    }

    fn default_receipt_deadline_secs(&self) -> u64 {
        self.settings().default_receipt_deadline_secs()
    }
}

transports! {
    /// Level 3: the procedure's durable queue on RabbitMQ.
    "amqp" => Amqp(amqp::AmqpSinkConfig),
    /// Level 2: POST to the procedure's URL.
    "http" => Http(http::HttpSinkConfig),
    /// Level 1: the procedure collects its messages from the pull API.
    "pull" => Pull(pull::PullConfig),
    /// Level 1: the procedure collects as a FIT-Connect subscriber (the hub's Submission API).
    "fitconnect" => FitConnect(fitconnect::FitConnectSinkConfig),
    /// Level 1: the procedure imports files from a folder and leaves its answers in another.
    "file" => File(file::FileConfig),
    /// Level 0: a clerk reads the application in the hub's clerk inbox.
    "manual" => Manual(manual::ManualConfig),
}

#[cfg(test)]
mod tests;
