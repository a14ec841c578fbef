use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Confirmation};

use super::config::AmqpSinkConfig;
use crate::broker::AmqpBroker;
use crate::{DestinationInfo, OutboundMessage, Outcome, Sink};

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

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
        let (exchange, routing_key) = self.config.publish_target();
        let borrowed = match self.broker.borrow(self.config.spec()).await {
            Ok(borrowed) => borrowed,
            Err(unavailable) => {
                return Outcome::Unavailable {
                    reason: unavailable.reason,
                    not_before: Some(unavailable.retry_in),
                };
            }
        };
        let channel = &borrowed.channel;
        let publish = async {
            channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
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
        let timeout = Duration::from_secs(self.broker.config().confirm_timeout_secs);
        let confirmed = tokio::time::timeout(timeout, publish).await;
        let outcome = match confirmed {
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
            // Never a success without a confirm: this channel is not in confirm mode.
            Ok(Ok(Confirmation::NotRequested)) => {
                return Outcome::Retry {
                    reason: "channel not in confirm mode".into(),
                    not_before: None,
                };
            }
            Ok(Err(e)) => Outcome::Retry {
                reason: format!("publishing failed: {e}"),
                not_before: None,
            },
            // The confirm may still come: this channel is not reused.
            Err(_) => {
                return Outcome::Retry {
                    reason: format!("no confirm within {}s", timeout.as_secs()),
                    not_before: None,
                };
            }
        };
        self.broker.give_back(borrowed).await;
        outcome
    }

    fn destination(&self) -> DestinationInfo {
        DestinationInfo {
            transport: "amqp",
            destination: self.config.queue.clone(),
        }
    }
}
