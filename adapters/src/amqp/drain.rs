//! Draining a reply queue that no procedure answers on any more: when a procedure's
//! transport changes from AMQP to another, its events queue may still hold decisions.
//! They are taken one by one (`basic.get`) until the queue is empty, then the drain
//! stops: nothing consumes the queue for ever, nothing is left in it unread.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ErrorKind};
use tokio::sync::watch;

use super::source::{Handled, ReplyHandler, requeue_after};
use crate::broker::AmqpBrokerConfig;

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The queue is empty: `taken` messages were handed over (or refused) until then.
    Empty { taken: u64 },
    /// The broker has no such queue (nothing to drain).
    Missing,
    /// Shutdown came first; `taken` messages were handed over until then.
    Stopped { taken: u64 },
}

/// Takes every message of `queue` with `handle` until the queue is empty or `shutdown`
/// turns true. A message is acknowledged only after `handle` returned (`Later`: back
/// into the queue after a pause, and taken again). Reconnects with a doubling pause.
pub async fn drain_queue(
    broker: &AmqpBrokerConfig,
    queue: &str,
    handle: &ReplyHandler,
    mut shutdown: watch::Receiver<bool>,
) -> Drained {
    let base = Duration::from_millis(broker.reconnect_base_ms);
    let max = Duration::from_millis(broker.reconnect_max_ms);
    let mut pause = base;
    let mut taken = 0;
    while !*shutdown.borrow() {
        tokio::select! {
            ended = session(broker, queue, handle, base, &mut taken) => match ended {
                Ok(drained) => return drained,
                Err(e) => tracing::warn!(error = %e, %queue, "draining a reply queue: connection lost; reconnecting"),
            },
            _ = shutdown.changed() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => break,
        }
        pause = (pause * 2).min(max);
    }
    Drained::Stopped { taken }
}

/// One connection's worth of draining; counts into `taken` as it goes, so a lost
/// connection loses no count.
async fn session(
    broker: &AmqpBrokerConfig,
    queue: &str,
    handle: &ReplyHandler,
    pause: Duration,
    taken: &mut u64,
) -> Result<Drained, lapin::Error> {
    let properties = ConnectionProperties::default().with_connection_name("kopplung-drain".into());
    let connection = Connection::connect(&broker.url, properties).await?;
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(queue.into(), passive(), FieldTable::default())
        .await;
    let waiting = match declared {
        Ok(declared) => declared.message_count(),
        Err(e) if not_found(&e) => {
            let _ = connection.close(200, "no such queue".into()).await;
            return Ok(Drained::Missing);
        }
        Err(e) => return Err(e),
    };
    tracing::info!(%queue, waiting, "draining a reply queue no procedure answers on any more");
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions::default())
        .await?
    {
        let delivery = message.delivery;
        match handle(delivery.data.clone()).await {
            Handled::Done => {
                delivery.acker.ack(BasicAckOptions::default()).await?;
            }
            Handled::Refused => {
                delivery.acker.nack(BasicNackOptions::default()).await?;
            }
            Handled::Later => {
                requeue_after(&delivery.acker, pause).await?;
                continue;
            }
        }
        *taken += 1;
    }
    let _ = connection.close(200, "drained".into()).await;
    Ok(Drained::Empty { taken: *taken })
}

/// How many messages wait in `queue`; `None` if the broker has no such queue.
pub async fn queue_length(
    broker: &AmqpBrokerConfig,
    queue: &str,
) -> Result<Option<u32>, lapin::Error> {
    let properties = ConnectionProperties::default().with_connection_name("kopplung-drain".into());
    let connection = Connection::connect(&broker.url, properties).await?;
    let channel = connection.create_channel().await?;
    let length = match channel
        .queue_declare(queue.into(), passive(), FieldTable::default())
        .await
    {
        Ok(declared) => Some(declared.message_count()),
        Err(e) if not_found(&e) => None,
        Err(e) => return Err(e),
    };
    let _ = connection.close(200, "looked".into()).await;
    Ok(length)
}

/// Only look: declaring a queue anew would create an empty one that no one uses, or
/// fail on one declared with other arguments (quorum).
fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    }
}

/// The broker answered 404: the queue does not exist.
fn not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}
