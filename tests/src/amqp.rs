//! The real RabbitMQ of the tests: connecting, draining and deleting queues, and a
//! gate in front of it that makes it unreachable on purpose.

use std::time::{Duration, Instant};

use lapin::options::{BasicGetOptions, QueueDeleteOptions, QueuePurgeOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::free_port;

pub fn amqp_url() -> String {
    std::env::var("KOPPLUNG_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A broker URL where nothing listens: deliveries wait in the outbox.
pub const UNREACHABLE_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:1/%2f";

pub async fn amqp() -> Connection {
    let url = amqp_url();
    Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!("RabbitMQ is not reachable at {url} ({e}); start it: rabbitmq-server -detached")
        })
}

/// A message taken from a queue.
pub struct Received {
    pub body: Vec<u8>,
    pub properties: BasicProperties,
}

impl Received {
    pub fn message_id(&self) -> String {
        self.properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

/// Takes every message from `queue` until none arrives for `quiet`.
pub async fn drain(connection: &Connection, queue: &str, quiet: Duration) -> Vec<Received> {
    let channel = connection.create_channel().await.expect("channel");
    let mut received = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        match channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
        {
            Ok(Some(message)) => {
                received.push(Received {
                    body: message.delivery.data.clone(),
                    properties: message.delivery.properties.clone(),
                });
                last = Instant::now();
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            // The queue does not exist yet: the hub declares it on first delivery.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Box::pin(drain(
                    connection,
                    queue,
                    quiet.saturating_sub(last.elapsed()),
                ))
                .await
                .into_iter()
                .chain(received)
                .collect();
            }
        }
    }
    received
}

/// The one message `queue` should hold (after half a second without another): exactly one.
pub async fn drain_one(connection: &Connection, queue: &str) -> Received {
    let mut received = drain(connection, queue, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 1, "messages on {queue}");
    received.remove(0)
}

/// Takes every message from `queue` (as [`drain`]), then deletes the queue: a test's
/// last look at a procedure's queue.
pub async fn drain_and_delete(
    connection: &Connection,
    queue: &str,
    quiet: Duration,
) -> Vec<Received> {
    let received = drain(connection, queue, quiet).await;
    delete_queue(connection, queue).await;
    received
}

pub async fn delete_queue(connection: &Connection, queue: &str) {
    if let Ok(channel) = connection.create_channel().await {
        let _ = channel
            .queue_purge(queue.into(), QueuePurgeOptions::default())
            .await;
        let _ = channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await;
    }
}

/// A TCP forwarder on loopback in front of the real broker, to make the broker
/// unreachable and reachable again without disturbing other tests' connections.
pub struct BrokerGate {
    pub port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl BrokerGate {
    /// A closed gate: connections to `port` are refused until [`BrokerGate::open`].
    pub fn closed() -> Self {
        Self {
            port: free_port(),
            task: None,
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts forwarding to the broker of [`amqp_url`] (host and port 5672 by default).
    pub async fn open(&mut self) {
        let upstream =
            std::env::var("KOPPLUNG_TEST_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".into());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the gate");
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }
}

impl Drop for BrokerGate {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Publishes `body` to `queue` through the default exchange (as a procedure answers on
/// its reply queue); the broker's confirm, to await or not.
pub async fn publish(
    channel: &lapin::Channel,
    queue: &str,
    body: &[u8],
    properties: BasicProperties,
) -> lapin::Result<lapin::PublisherConfirm> {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            lapin::options::BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
}
