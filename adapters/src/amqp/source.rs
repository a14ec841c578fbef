use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use tokio::sync::watch;

use super::config::AmqpBrokerConfig;

/// What became of one message from a reply queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Taken (or recognised as a duplicate): acknowledged.
    Done,
    /// Refused for good (forged, malformed): removed from the queue.
    Refused,
    /// Could not be taken now (store unavailable): back into the queue, later.
    Later,
}

/// Consumes `queue` until `shutdown` turns true, handing each message body to `handle`
/// and acknowledging only after it returned. Reconnects with a doubling pause.
pub async fn consume_replies<F, Fut>(
    broker: AmqpBrokerConfig,
    queue: String,
    handle: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Vec<u8>) -> Fut,
    Fut: Future<Output = Handled>,
{
    let base = Duration::from_millis(broker.reconnect_base_ms);
    let mut pause = base;
    while !*shutdown.borrow() {
        let session = async {
            let connection =
                Connection::connect(&broker.url, ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await?;
            channel.basic_qos(16, BasicQosOptions::default()).await?;
            let mut consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    "kopplung-events".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            tracing::info!(%queue, "consuming events");
            while let Some(delivery) = consumer.next().await {
                let delivery = delivery?;
                match handle(delivery.data.clone()).await {
                    Handled::Done => {
                        delivery.acker.ack(BasicAckOptions::default()).await?;
                    }
                    Handled::Refused => {
                        delivery.acker.nack(BasicNackOptions::default()).await?;
                    }
                    Handled::Later => {
                        tokio::time::sleep(base).await;
                        delivery
                            .acker
                            .nack(BasicNackOptions {
                                requeue: true,
                                ..Default::default()
                            })
                            .await?;
                    }
                }
            }
            Ok::<(), lapin::Error>(())
        };
        tokio::select! {
            outcome = session => {
                if let Err(e) = outcome {
                    tracing::warn!(%queue, error = %e, "event queue connection lost; reconnecting");
                }
            }
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        pause = (pause * 2).min(Duration::from_millis(broker.reconnect_max_ms));
    }
}
