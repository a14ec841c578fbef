use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use tokio::sync::watch;

use crate::broker::AmqpBrokerConfig;

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

/// Takes one message body of a reply queue.
pub type ReplyHandler = crate::BodyHandler<Handled>;

/// Consumes every `(queue, handler)` until `shutdown` turns true, handing each message
/// body to its queue's handler and acknowledging only after it returned. All queues
/// share one connection (a channel each): a connection costs the broker and the hub far
/// more than a channel. Reconnects with a doubling pause.
pub async fn consume_replies(
    broker: AmqpBrokerConfig,
    queues: Vec<(String, ReplyHandler)>,
    shutdown: watch::Receiver<bool>,
) {
    if queues.is_empty() {
        return;
    }
    let base = Duration::from_millis(broker.reconnect_base_ms);
    let max = Duration::from_millis(broker.reconnect_max_ms);
    let (broker, queues) = (&broker, &queues);
    reconnecting(shutdown, base, max, || async move {
        let session = async {
            let properties =
                ConnectionProperties::default().with_connection_name("kopplung-events".into());
            let connection = Connection::connect(&broker.url, properties).await?;
            let mut consumers = Vec::new();
            for (queue, handle) in queues {
                let (_channel, consumer) =
                    open_consumer(&connection, queue, 16, "kopplung-events").await?;
                consumers.push(consume(consumer, handle.clone(), base));
            }
            tracing::info!(queues = queues.len(), "consuming events");
            // Ends with the first error: the connection is gone for all of them.
            futures_util::future::try_join_all(consumers).await?;
            Ok::<(), lapin::Error>(())
        };
        if let Err(e) = session.await {
            tracing::warn!(error = %e, "event queue connection lost; reconnecting");
        }
    })
    .await;
}

/// Runs `session` again until `shutdown` turns true, pausing after each end of it: the
/// pause starts at `base` and doubles up to `max`. A session ends when its connection does.
pub async fn reconnecting<S, F>(
    mut shutdown: watch::Receiver<bool>,
    base: Duration,
    max: Duration,
    mut session: S,
) where
    S: FnMut() -> F,
    F: Future<Output = ()>,
{
    let mut pause = base;
    while !*shutdown.borrow() {
        tokio::select! {
            () = session() => {}
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        pause = (pause * 2).min(max);
    }
}

/// A channel consuming `queue` as `tag`, at most `prefetch` messages unacknowledged. It
/// declares the queue (durable) first: whichever side starts first creates it.
pub async fn open_consumer(
    connection: &Connection,
    queue: &str,
    prefetch: u16,
    tag: &str,
) -> Result<(lapin::Channel, lapin::Consumer), lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

/// Hands each message of one consumer to `handle`; acknowledges after it returned.
async fn consume(
    mut consumer: lapin::Consumer,
    handle: ReplyHandler,
    base: Duration,
) -> Result<(), lapin::Error> {
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        match handle(delivery.data.clone()).await {
            Handled::Done => {
                delivery.acker.ack(BasicAckOptions::default()).await?;
            }
            Handled::Refused => {
                delivery.acker.nack(BasicNackOptions::default()).await?;
            }
            Handled::Later => requeue_after(&delivery.acker, base).await?,
        }
    }
    Ok(())
}

/// Puts a message back into its queue after `pause`, for a later attempt: what could not
/// be taken now is neither lost nor taken again at once.
pub async fn requeue_after(acker: &lapin::Acker, pause: Duration) -> Result<(), lapin::Error> {
    tokio::time::sleep(pause).await;
    acker
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await?;
    Ok(())
}
