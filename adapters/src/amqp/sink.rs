use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use super::config::AmqpSinkConfig;
use crate::broker::{AmqpBroker, Fate, Publish};
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
        let timeout = Duration::from_secs(self.broker.config().confirm_timeout_secs);
        let publish = Publish {
            spec: self.config.spec(),
            exchange,
            routing_key,
            message_id: &message.message_id,
            body: &message.body,
            properties: properties(message),
        };
        match self.broker.publish(publish, timeout).await {
            Ok(Fate::Delivered) => Outcome::Delivered,
            Ok(Fate::Returned(reply)) => {
                // The queue is gone (deleted behind the hub's back): declare it again.
                self.broker.forget_declared(queue).await;
                Outcome::Retry {
                    reason: format!("returned by the broker: {reply}"),
                    not_before: None,
                }
            }
            Ok(Fate::Nacked) => Outcome::Retry {
                reason: "negatively acknowledged by the broker".into(),
                not_before: None,
            },
            Ok(Fate::Unsure(reason)) => Outcome::Retry {
                reason,
                not_before: None,
            },
            Err(unavailable) => Outcome::Unavailable {
                reason: unavailable.reason,
                not_before: Some(unavailable.retry_in),
            },
        }
    }

    fn destination(&self) -> DestinationInfo {
        DestinationInfo {
            transport: "amqp",
            destination: self.config.queue.clone(),
        }
    }
}
