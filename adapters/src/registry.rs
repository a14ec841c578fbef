//! The transports, listed once. A procedure names its transport in its
//! `[procedure.delivery]` section (`transport = "amqp"` and that transport's settings);
//! the hub checks the section and builds the procedure's sink through this list, and
//! the reference procedure plays the receiving side of the same list.
//!
//! Adding a transport: a folder beside `amqp/` whose `config.rs` implements
//! [`Transport`], and one line in the `transports!` list at the end of this file.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::amqp::{AmqpBroker, AmqpBrokerConfig};
use crate::{ConfigProblem, Error, Sink, amqp, http, manual, pull};

/// The rest of the hub's configuration, as far as a transport's settings must fit it.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    /// `[amqp]`: the hub's broker connection, if there is one.
    pub broker: Option<&'a AmqpBrokerConfig>,
    /// How long the hub holds a claimed delivery (`[delivery] lease_secs`); `None` if
    /// that is invalid itself (and named as such).
    pub lease: Option<Duration>,
    /// The ids of the clerks of the hub's clerk inbox (`[[clerk]]`).
    pub clerks: &'a BTreeSet<&'a str>,
}

impl CheckContext<'_> {
    /// One delivery attempt is cut off after three quarters of the lease: a transport's
    /// own timeouts must end before.
    pub fn attempt_limit(&self) -> Option<Duration> {
        self.lease.map(attempt_limit)
    }
}

/// Three quarters of `lease`.
pub fn attempt_limit(lease: Duration) -> Duration {
    lease * 3 / 4
}

/// What building a sink needs from the hub.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    /// The procedure the sink delivers to.
    pub procedure: &'a str,
    /// Certificates and keys a transport's settings name are relative to this folder.
    pub pki_dir: &'a Path,
    /// Secrets a transport's settings name are relative to the data directory.
    pub data_dir: &'a Path,
    /// The hub's broker connection, if `[amqp]` is configured.
    pub broker: Option<&'a Arc<AmqpBroker>>,
}

/// A bearer token for the hub's API that a transport's settings carry (the pull API's):
/// its hex SHA-256, or a file holding it (relative to the data directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiToken<'a> {
    pub sha256: Option<&'a str>,
    pub file: Option<&'a Path>,
}

/// What every transport's settings (`config.rs` of its folder) provide.
pub trait Transport {
    /// Every problem of the settings at once, each naming its key; empty if valid.
    fn validate(&self, context: &CheckContext<'_>) -> Vec<ConfigProblem>;

    /// The procedure's sink. Files the settings name are read (and checked) here.
    fn build(&self, context: &BuildContext<'_>) -> Result<Arc<dyn Sink>, Error>;

    /// Whether the message is sealed for the procedure (it needs an `envelope` and a
    /// certificate); not so where a clerk reads it at the hub.
    fn sealed(&self) -> bool {
        true
    }

    /// The token with which the procedure collects its messages from the hub's API.
    fn api_token(&self) -> Option<ApiToken<'_>> {
        None
    }

    /// A queue on the hub's broker on which the procedure sends its events back.
    fn reply_queue(&self) -> Option<&str> {
        None
    }
}

/// Whether `hash` is what a `token_sha256` key must hold.
pub fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

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

    fn api_token(&self) -> Option<ApiToken<'_>> {
        self.settings().api_token()
    }

    fn reply_queue(&self) -> Option<&str> {
        self.settings().reply_queue()
    }
}

transports! {
    /// Level 3: the procedure's durable queue on RabbitMQ.
    "amqp" => Amqp(amqp::AmqpSinkConfig),
    /// Level 2: POST to the procedure's URL.
    "http" => Http(http::HttpSinkConfig),
    /// Level 1: the procedure collects its messages from the pull API.
    "pull" => Pull(pull::PullConfig),
    /// Level 0: a clerk reads the application in the hub's clerk inbox.
    "manual" => Manual(manual::ManualConfig),
}

#[cfg(test)]
mod tests;
