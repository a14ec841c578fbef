//! The broker's own ceiling, without the hub, and a consumer of a procedure's queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kopplung_tests::amqp_url;
use lapin::options::{BasicConsumeOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::MESSAGE_BYTES;
use crate::system::{broker_pid, cpu_seconds};

/// Persistent 4 KiB publishes with confirms, 4 channels each keeping 64 unconfirmed.
pub async fn broker_ceiling(duration: Duration) -> anyhow::Result<Ceiling> {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let queue = format!("kopplung.bench.{}", uuid::Uuid::new_v4().simple());
    let setup = declare(&connection, &queue).await?;
    let body = Arc::new(vec![b'x'; MESSAGE_BYTES]);
    let broker = broker_pid()?;
    let broker_before = cpu_seconds(broker)?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let (queue, body) = (queue.clone(), body.clone());
        tasks.spawn(async move {
            let mut confirmed = 0u64;
            while started.elapsed() < duration {
                let mut window = Vec::with_capacity(64);
                for _ in 0..64 {
                    window.push(
                        kopplung_tests::publish(
                            &channel,
                            &queue,
                            &body,
                            BasicProperties::default().with_delivery_mode(2),
                        )
                        .await?,
                    );
                }
                for confirm in window {
                    if confirm.await?.is_ack() {
                        confirmed += 1;
                    }
                }
            }
            Ok::<u64, lapin::Error>(confirmed)
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let broker_cpu = cpu_seconds(broker)? - broker_before;
    setup
        .queue_delete(queue.as_str().into(), Default::default())
        .await?;
    Ok(Ceiling {
        rate,
        broker_cpu_per_publish: broker_cpu / total.max(1) as f64,
    })
}

pub struct Ceiling {
    pub rate: f64,
    /// RabbitMQ's CPU seconds per confirmed publish (no consumer).
    pub broker_cpu_per_publish: f64,
}

/// Declares `queue` and consumes it without acknowledgements.
pub async fn consume(queue: &str, tag: &str) -> anyhow::Result<(Connection, lapin::Consumer)> {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let channel = declare(&connection, queue).await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((connection, consumer))
}

/// A new channel, with the durable `queue` declared on it.
async fn declare(connection: &Connection, queue: &str) -> Result<lapin::Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    Ok(channel)
}
