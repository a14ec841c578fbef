//! The hub's connection to RabbitMQ, shared by every AMQP procedure: one connection,
//! reconnected with a growing pause, channels in confirm mode lent to the sinks, and
//! queues declared before their first publish. The `amqp` transport publishes through it;
//! the transports' build context hands it over.

mod config;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use config::AmqpBrokerConfig;

/// What the broker declares for a sink: its durable queue, whether it is a quorum
/// queue, and the direct exchange and routing key it is bound with, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueSpec<'a> {
    pub queue: &'a str,
    pub quorum: bool,
    pub binding: Option<(&'a str, &'a str)>,
}

/// A lazily opened, self-healing connection to one broker, shared by its sinks.
///
/// Each delivery borrows a channel of its own, so a channel never has more than one
/// unconfirmed publish: a returned message and its confirm then belong to that delivery
/// without doubt. A lost connection is opened again on the next delivery; failed
/// attempts are spaced out (doubling up to a maximum) so a down broker is not hammered.
pub struct AmqpBroker {
    config: AmqpBrokerConfig,
    state: Mutex<BrokerState>,
}

#[derive(Default)]
struct BrokerState {
    link: Option<Link>,
    generation: u64,
    failures: u32,
    next_attempt: Option<Instant>,
    #[cfg(test)]
    connect_attempts: u32,
}

struct Link {
    connection: Connection,
    generation: u64,
    /// Confirm-mode channels not in use.
    idle: Vec<Channel>,
    /// Queues known to exist on this connection.
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
pub(crate) struct Unavailable {
    pub reason: String,
    pub retry_in: Duration,
}

/// A channel lent to one delivery.
pub(crate) struct Borrowed {
    pub channel: Channel,
    generation: u64,
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
            .is_some_and(|link| link.connection.status().connected())
    }

    /// For readiness checks: connected now, or a connection attempt (respecting the
    /// pause after failures) succeeds.
    pub async fn check(&self) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if state
            .link
            .as_ref()
            .is_some_and(|link| link.connection.status().connected())
        {
            return Ok(());
        }
        state.link = None;
        self.reconnect(&mut state).await.map_err(|u| u.reason)
    }

    /// Whether the broker of `config` answers: one connection (the AMQP handshake and
    /// the login), closed again, within `connect_timeout_secs`. For `kopplung check
    /// --connect`; the hub itself never needs the broker to start.
    pub async fn probe(config: &AmqpBrokerConfig) -> Result<(), crate::Error> {
        let target = match config.url.parse::<lapin::uri::AMQPUri>() {
            Ok(uri) => format!("broker {}:{}", uri.authority.host, uri.authority.port),
            Err(_) => format!("broker {}", config.redacted_url()),
        };
        let properties =
            ConnectionProperties::default().with_connection_name("kopplung check".into());
        let connection = bounded(
            Duration::from_secs(config.connect_timeout_secs),
            "connecting",
            Connection::connect(&config.url, properties),
        )
        .await
        .map_err(|unavailable| crate::Error::Unreachable {
            target,
            reason: unavailable.reason,
        })?;
        // Closing politely spares the broker a log line about a lost client.
        connection.close(200, "probe".into()).await.ok();
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.connect_timeout_secs)
    }

    /// A confirm-mode channel for one delivery to `queue`, which exists afterwards.
    pub(crate) async fn borrow(&self, spec: QueueSpec<'_>) -> Result<Borrowed, Unavailable> {
        let queue = spec.queue;
        let mut state = self.state.lock().await;
        if state
            .link
            .as_ref()
            .is_some_and(|link| !link.connection.status().connected())
        {
            state.link = None;
        }
        if state.link.is_none() {
            self.reconnect(&mut state).await?;
        }
        let timeout = self.timeout();
        let Some(link) = state.link.as_mut() else {
            return Err(Unavailable {
                reason: "no broker connection".into(),
                retry_in: self.reconnect_pause(1),
            });
        };
        if !link.declared.contains(queue) {
            declare(&link.connection, spec, timeout).await?;
            link.declared.insert(queue.to_owned());
        }
        let generation = link.generation;
        while let Some(channel) = link.idle.pop() {
            if channel.status().connected() {
                return Ok(Borrowed {
                    channel,
                    generation,
                });
            }
        }
        let channel = bounded(timeout, "opening a channel", async {
            let channel = link.connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Ok(channel)
        })
        .await?;
        Ok(Borrowed {
            channel,
            generation,
        })
    }

    async fn reconnect(&self, state: &mut BrokerState) -> Result<(), Unavailable> {
        if let Some(next) = state.next_attempt {
            let now = Instant::now();
            if next > now {
                return Err(Unavailable {
                    reason: "broker unreachable, waiting before the next connection attempt".into(),
                    retry_in: next - now,
                });
            }
        }
        #[cfg(test)]
        {
            state.connect_attempts += 1;
        }
        let properties = ConnectionProperties::default().with_connection_name("kopplung".into());
        let connected = bounded(
            self.timeout(),
            "connecting",
            Connection::connect(&self.config.url, properties),
        )
        .await;
        match connected {
            Ok(connection) => {
                tracing::info!(broker = %self.config.redacted_url(), "connected to broker");
                state.generation += 1;
                state.link = Some(Link {
                    connection,
                    generation: state.generation,
                    idle: Vec::new(),
                    declared: HashSet::new(),
                });
                state.failures = 0;
                state.next_attempt = None;
                Ok(())
            }
            Err(unavailable) => {
                state.failures = state.failures.saturating_add(1);
                let pause = self.reconnect_pause(state.failures);
                state.next_attempt = Some(Instant::now() + pause);
                tracing::warn!(broker = %self.config.redacted_url(), reason = %unavailable.reason, failures = state.failures, "broker unreachable");
                Err(Unavailable {
                    reason: format!("broker unreachable: {}", unavailable.reason),
                    retry_in: pause,
                })
            }
        }
    }

    /// Returns a channel after a delivery; a broken one, or one of an older connection,
    /// is dropped.
    pub(crate) async fn give_back(&self, borrowed: Borrowed) {
        let mut state = self.state.lock().await;
        if let Some(link) = state.link.as_mut()
            && link.generation == borrowed.generation
            && borrowed.channel.status().connected()
        {
            link.idle.push(borrowed.channel);
        }
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
    pub(crate) async fn forget_declared(&self, queue: &str) {
        if let Some(link) = self.state.lock().await.link.as_mut() {
            link.declared.remove(queue);
        }
    }

    #[cfg(test)]
    pub(crate) async fn connect_attempts(&self) -> u32 {
        self.state.lock().await.connect_attempts
    }
}

/// Runs a broker operation with a time limit.
async fn bounded<T>(
    limit: Duration,
    what: &str,
    operation: impl std::future::Future<Output = lapin::Result<T>>,
) -> Result<T, Unavailable> {
    match tokio::time::timeout(limit, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Unavailable {
            reason: format!("{what}: {e}"),
            retry_in: Duration::ZERO,
        }),
        Err(_) => Err(Unavailable {
            reason: format!("{what}: no answer within {}s", limit.as_secs()),
            retry_in: Duration::ZERO,
        }),
    }
}

/// Declares a durable queue (and the exchange and binding, if configured) on a channel
/// of its own, so that a refusal closes only that channel. A queue that already exists
/// with other arguments (limits set by the vendor: `PRECONDITION_FAILED`) is used as it is.
async fn declare(
    connection: &Connection,
    spec: QueueSpec<'_>,
    limit: Duration,
) -> Result<(), Unavailable> {
    let queue = spec.queue;
    let mut arguments = FieldTable::default();
    if spec.quorum {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from("quorum")),
        );
    }
    let channel = bounded(limit, "opening a channel", connection.create_channel()).await?;
    let declared = bounded(
        limit,
        &format!("declaring queue {queue}"),
        channel.queue_declare(queue.into(), QueueDeclareOptions::durable(), arguments),
    )
    .await;
    let outcome = match declared {
        Ok(_) => Ok(()),
        Err(unavailable) if unavailable.reason.contains("PRECONDITION_FAILED") => {
            tracing::warn!(
                queue,
                "queue exists with other arguments; publishing to it as it is"
            );
            Ok(())
        }
        Err(unavailable) => Err(unavailable),
    };
    if channel.status().connected() {
        let _ = channel.close(200, "declared".into()).await;
    }
    outcome?;
    if let Some((exchange, routing_key)) = spec.binding {
        let channel = bounded(limit, "opening a channel", connection.create_channel()).await?;
        bounded(
            limit,
            &format!("declaring exchange {exchange}"),
            channel.exchange_declare(
                exchange.into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        bounded(
            limit,
            &format!("binding queue {queue} to {exchange}"),
            channel.queue_bind(
                queue.into(),
                exchange.into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        let _ = channel.close(200, "declared".into()).await;
    }
    Ok(())
}
