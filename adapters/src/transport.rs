//! What every transport's settings provide ([`Transport`]) and what the hub gives them:
//! the rest of its configuration to check against ([`CheckContext`]) and what building
//! a sink needs ([`BuildContext`]). The transports themselves are listed in
//! [`crate::registry`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::broker::{AmqpBroker, AmqpBrokerConfig};
use crate::{ConfigProblem, Error, Sink, attempt_limit};

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

/// A bearer token for the hub's API as a configuration gives it: its hex SHA-256
/// (`token_sha256`: the configuration need not hold the secret itself), or a file
/// holding it (`token_file`, relative to the data directory). Flattened into each table
/// that takes one (`[[client]]`, `[[procedure]]`, a pull procedure's `[delivery]`), so
/// the keys stand in that table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ApiToken {
    #[serde(default, rename = "token_sha256")]
    pub sha256: Option<String>,
    #[serde(default, rename = "token_file")]
    pub file: Option<PathBuf>,
}

impl ApiToken {
    /// A token read from `file` (relative to the data directory).
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Self {
            sha256: None,
            file: Some(file.into()),
        }
    }

    /// Whether the configuration gives one at all.
    pub fn is_given(&self) -> bool {
        self.sha256.is_some() || self.file.is_some()
    }
}

/// A folder in which a procedure leaves its signed events for the hub (a `file`
/// procedure's `incoming`), and how often to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerFolder {
    pub path: PathBuf,
    pub poll: Duration,
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
    fn api_token(&self) -> Option<&ApiToken> {
        None
    }

    /// A queue on the hub's broker on which the procedure sends its events back.
    fn reply_queue(&self) -> Option<&str> {
        None
    }

    /// A folder in which the procedure leaves its events for the hub to read (the
    /// exchange folder of a `file` procedure), resolved against the data directory.
    fn answer_folder(&self, _data_dir: &Path) -> Option<AnswerFolder> {
        None
    }

    /// How long a delivered message may wait for the procedure's receipt before it is
    /// overdue, when the procedure sets no `receipt_deadline_secs` (0: never): a
    /// procedure that takes messages pushed to it confirms within minutes.
    fn default_receipt_deadline_secs(&self) -> u64 {
        15 * 60
    }

    /// Deliveries at once to one procedure when its `max_in_flight` is not given: few,
    /// unless the transport's receiver is built for many (a broker).
    fn default_max_in_flight(&self) -> u32 {
        8
    }
}

/// Whether `hash` is what a `token_sha256` key must hold.
pub fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}
