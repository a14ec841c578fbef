use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::{AmqpBrokerConfig, AmqpSinkConfig};
use crate::{DestinationInfo, OutboundMessage, Outcome, Sink};

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

/// A lazily opened, self-healing connection to one broker, shared by its sinks.
///
/// A lost connection is dropped and opened again on the next delivery; failed attempts
/// are spaced out (doubling up to a maximum) so that a down broker is not hammered.
pub struct AmqpBroker {
    config: AmqpBrokerConfig,
    state: Mutex<BrokerState>,
}

#[derive(Default)]
struct BrokerState {
    link: Option<Link>,
    failures: u32,
    next_attempt: Option<Instant>,
    #[cfg(test)]
    connect_attempts: u32,
}

struct Link {
    // Kept so the connection lives as long as the channel.
    _connection: Connection,
    channel: Channel,
    declared: HashSet<String>,
}

impl std::fmt::Debug for AmqpBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBroker")
            .field("url", &self.config.redacted_url())
            .finish_non_exhaustive()
    }
}

/// Why there is no channel right now.
struct Unavailable {
    reason: String,
    retry_in: Duration,
}

impl AmqpBroker {
    pub fn new(config: AmqpBrokerConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            state: Mutex::new(BrokerState::default()),
        })
    }

    pub fn config(&self) -> &AmqpBrokerConfig {
        &self.config
    }

    /// Whether a connection is open right now (for readiness checks).
    pub async fn is_connected(&self) -> bool {
        let state = self.state.lock().await;
        state
            .link
            .as_ref()
            .is_some_and(|link| link.channel.status().connected())
    }

    /// A confirm-mode channel on which `queue` is declared.
    async fn channel_for(&self, queue: &str) -> Result<Channel, Unavailable> {
        let mut state = self.state.lock().await;
        if state
            .link
            .as_ref()
            .is_some_and(|link| !link.channel.status().connected())
        {
            state.link = None;
        }
        if state.link.is_none() {
            if let Some(next) = state.next_attempt {
                let now = Instant::now();
                if next > now {
                    return Err(Unavailable {
                        reason: "broker unreachable, waiting before the next connection attempt"
                            .into(),
                        retry_in: next - now,
                    });
                }
            }
            #[cfg(test)]
            {
                state.connect_attempts += 1;
            }
            match self.connect().await {
                Ok(link) => {
                    tracing::info!(broker = %self.config.redacted_url(), "connected to broker");
                    state.link = Some(link);
                    state.failures = 0;
                    state.next_attempt = None;
                }
                Err(reason) => {
                    state.failures = state.failures.saturating_add(1);
                    let pause = self.reconnect_pause(state.failures);
                    state.next_attempt = Some(Instant::now() + pause);
                    tracing::warn!(broker = %self.config.redacted_url(), %reason, failures = state.failures, "broker unreachable");
                    return Err(Unavailable {
                        reason: format!("broker unreachable: {reason}"),
                        retry_in: pause,
                    });
                }
            }
        }
        let Some(link) = state.link.as_mut() else {
            return Err(Unavailable {
                reason: "no broker connection".into(),
                retry_in: self.reconnect_pause(1),
            });
        };
        if !link.declared.contains(queue) {
            let declared = link
                .channel
                .queue_declare(
                    queue.into(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await;
            match declared {
                Ok(_) => {
                    link.declared.insert(queue.to_owned());
                }
                Err(e) => {
                    // A failed declare closes the channel: start afresh next time.
                    state.link = None;
                    return Err(Unavailable {
                        reason: format!("declaring queue {queue}: {e}"),
                        retry_in: self.reconnect_pause(1),
                    });
                }
            }
        }
        Ok(link.channel.clone())
    }

    async fn connect(&self) -> Result<Link, String> {
        let timeout = Duration::from_secs(self.config.connect_timeout_secs);
        let properties = ConnectionProperties::default().with_connection_name("kopplung".into());
        let connection =
            tokio::time::timeout(timeout, Connection::connect(&self.config.url, properties))
                .await
                .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
                .map_err(|e| e.to_string())?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| e.to_string())?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Link {
            _connection: connection,
            channel,
            declared: HashSet::new(),
        })
    }

    fn reconnect_pause(&self, failures: u32) -> Duration {
        let factor = 1u64 << failures.saturating_sub(1).min(20);
        Duration::from_millis(
            self.config
                .reconnect_base_ms
                .saturating_mul(factor)
                .min(self.config.reconnect_max_ms),
        )
    }

    /// Declares the queue again before the next publish (it may have been deleted).
    async fn forget_declared(&self, queue: &str) {
        if let Some(link) = self.state.lock().await.link.as_mut() {
            link.declared.remove(queue);
        }
    }

    /// Forgets the current connection after a failure that may have broken it.
    async fn reset(&self) {
        self.state.lock().await.link = None;
    }

    #[cfg(test)]
    pub(crate) async fn connect_attempts(&self) -> u32 {
        self.state.lock().await.connect_attempts
    }
}

/// Delivers one procedure's messages into its queue.
#[derive(Debug)]
pub struct AmqpSink {
    broker: Arc<AmqpBroker>,
    config: AmqpSinkConfig,
}

impl AmqpSink {
    pub fn new(broker: Arc<AmqpBroker>, config: AmqpSinkConfig) -> Self {
        Self { broker, config }
    }
}

fn properties(message: &OutboundMessage) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (key, value) in &message.headers {
        headers.insert(
            key.as_str().into(),
            AMQPValue::LongString(LongString::from(value.as_str())),
        );
    }
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    BasicProperties::default()
        .with_message_id(ShortString::from(message.message_id.as_str()))
        .with_correlation_id(ShortString::from(message.correlation_id.as_str()))
        .with_content_type(ShortString::from(message.content_type.as_str()))
        .with_type(ShortString::from(message.message_type.as_str()))
        .with_app_id("kopplung".into())
        .with_timestamp(timestamp)
        .with_delivery_mode(PERSISTENT)
        .with_headers(headers)
}

#[async_trait]
impl Sink for AmqpSink {
    async fn deliver(&self, message: &OutboundMessage) -> Outcome {
        let queue = self.config.queue.as_str();
        let channel = match self.broker.channel_for(queue).await {
            Ok(channel) => channel,
            Err(unavailable) => {
                return Outcome::Retry {
                    reason: unavailable.reason,
                    not_before: Some(unavailable.retry_in),
                };
            }
        };
        let publish = async {
            channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &message.body,
                    properties(message),
                )
                .await?
                .await
        };
        let timeout = Duration::from_secs(self.broker.config.confirm_timeout_secs);
        match tokio::time::timeout(timeout, publish).await {
            Ok(Ok(Confirmation::Ack(None))) => Outcome::Delivered,
            Ok(Ok(Confirmation::Ack(Some(returned)))) => {
                self.broker.forget_declared(queue).await;
                Outcome::Retry {
                    reason: format!(
                        "returned by the broker: {} {}",
                        returned.reply_code, returned.reply_text
                    ),
                    not_before: None,
                }
            }
            Ok(Ok(Confirmation::Nack(_))) => Outcome::Retry {
                reason: "negatively acknowledged by the broker".into(),
                not_before: None,
            },
            Ok(Ok(Confirmation::NotRequested)) => {
                // Never a success without a confirm: the channel is not in confirm mode.
                self.broker.reset().await;
                Outcome::Retry {
                    reason: "channel not in confirm mode".into(),
                    not_before: None,
                }
            }
            Ok(Err(e)) => {
                self.broker.reset().await;
                Outcome::Retry {
                    reason: format!("publishing failed: {e}"),
                    not_before: None,
                }
            }
            Err(_) => {
                self.broker.reset().await;
                Outcome::Retry {
                    reason: format!("no confirm within {}s", timeout.as_secs()),
                    not_before: None,
                }
            }
        }
    }

    fn destination(&self) -> DestinationInfo {
        DestinationInfo {
            transport: "amqp",
            destination: self.config.queue.clone(),
        }
    }
}
