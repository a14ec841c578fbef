use serde::Deserialize;

/// The broker connection, shared by all AMQP procedures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpBrokerConfig {
    /// e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// How long one connection attempt may take.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// How long to wait for the broker's confirm of one message.
    #[serde(default = "default_confirm_timeout")]
    pub confirm_timeout_secs: u64,
    /// Pause after a failed connection attempt, doubled per failure up to the maximum.
    #[serde(default = "default_reconnect_base")]
    pub reconnect_base_ms: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
}

fn default_connect_timeout() -> u64 {
    5
}
fn default_confirm_timeout() -> u64 {
    30
}
fn default_reconnect_base() -> u64 {
    500
}
fn default_reconnect_max() -> u64 {
    30_000
}

impl AmqpBrokerConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout_secs: default_connect_timeout(),
            confirm_timeout_secs: default_confirm_timeout(),
            reconnect_base_ms: default_reconnect_base(),
            reconnect_max_ms: default_reconnect_max(),
        }
    }

    /// The URL without its password, for logs and status pages.
    pub fn redacted_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.url[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{}{user}:***{}", &self.url[..scheme + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }
}

/// One procedure's destination on the broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSinkConfig {
    /// The durable queue the procedure consumes; declared by the hub if missing.
    pub queue: String,
    /// A durable queue on which the procedure sends its signed events back, consumed
    /// by the hub (optional; events can also come over HTTP).
    #[serde(default)]
    pub reply_queue: Option<String>,
    /// Publish to this durable direct exchange (declared and bound to `queue` with
    /// `routing_key`) instead of the default exchange.
    #[serde(default)]
    pub exchange: Option<String>,
    /// The routing key with `exchange`; the queue name by default.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// `quorum` for a replicated quorum queue on a RabbitMQ cluster; `classic` by default.
    /// An existing queue is used as it is.
    #[serde(default)]
    pub queue_type: QueueType,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
}

impl AmqpSinkConfig {
    /// A classic queue on the default exchange.
    pub fn queue(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            reply_queue: None,
            exchange: None,
            routing_key: None,
            queue_type: QueueType::Classic,
        }
    }

    /// The exchange and routing key a message is published with.
    pub fn publish_target(&self) -> (&str, &str) {
        match &self.exchange {
            Some(exchange) => (
                exchange.as_str(),
                self.routing_key.as_deref().unwrap_or(&self.queue),
            ),
            None => ("", self.queue.as_str()),
        }
    }
}
