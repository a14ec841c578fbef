use std::sync::Arc;

use serde::Deserialize;

use super::sink::AmqpSink;
use crate::broker::QueueSpec;
use crate::transport::{BuildContext, CheckContext, Transport};
use crate::{ConfigProblem, Error, Sink};

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

    /// What the broker declares before the first publish.
    pub(crate) fn spec(&self) -> QueueSpec<'_> {
        QueueSpec {
            queue: &self.queue,
            quorum: self.queue_type == QueueType::Quorum,
            binding: self.exchange.as_deref().map(|_| self.publish_target()),
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

impl Transport for AmqpSinkConfig {
    fn validate(&self, context: &CheckContext<'_>) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if context.broker.is_none() {
            problems.push(no_broker());
        }
        if self.queue.is_empty() {
            problems.push(ConfigProblem::new("queue", "must not be empty"));
        }
        if self.reply_queue.as_deref() == Some(self.queue.as_str()) {
            problems.push(ConfigProblem::new(
                "reply_queue",
                "must differ from queue (the hub would consume its own messages)",
            ));
        }
        problems
    }

    fn build(&self, context: &BuildContext<'_>) -> Result<Arc<dyn Sink>, Error> {
        let broker = context.broker.ok_or_else(|| Error::Invalid(no_broker()))?;
        Ok(Arc::new(AmqpSink::new(broker.clone(), self.clone())))
    }

    fn reply_queue(&self) -> Option<&str> {
        self.reply_queue.as_deref()
    }

    /// A broker takes hundreds of publishes at once: they share channels and are
    /// confirmed together (see `broker/window.rs`).
    fn default_max_in_flight(&self) -> u32 {
        DEFAULT_MAX_IN_FLIGHT
    }
}

/// Deliveries at once to a broker queue by default.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 256;

fn no_broker() -> ConfigProblem {
    ConfigProblem::new(
        "transport",
        "delivered over AMQP, but there is no [amqp] section",
    )
}
