//! The hub's connection to RabbitMQ, shared by every AMQP procedure: one connection,
//! reconnected with a growing pause, publishes pipelined on confirm-mode channels
//! ([`window`]), and queues declared before their first publish. The `amqp` transport
//! publishes through it; the transports' build context hands it over.

mod config;
mod window;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::options::{
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use config::AmqpBrokerConfig;
pub(crate) use window::Fate;
use window::{After, Report, Window};

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
/// Deliveries share channels: many publishes are in flight on one channel, grouped in
/// windows that settle together (see [`window`]), so that a returned message is matched
/// to its delivery without doubt. A lost connection is opened again on the next delivery;
/// failed attempts are spaced out (doubling up to a maximum) so a down broker is not
/// hammered.
pub struct AmqpBroker {
    config: AmqpBrokerConfig,
    state: Mutex<BrokerState>,
    #[cfg(test)]
    channels_opened: std::sync::atomic::AtomicU32,
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
    /// The window new publishes join while it is open.
    open: Option<Arc<Window>>,
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

/// One message to publish: where to, and what.
pub(crate) struct Publish<'a> {
    pub spec: QueueSpec<'a>,
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub message_id: &'a str,
    pub body: &'a [u8],
    pub properties: BasicProperties,
}

/// A place in a window. Reports a failure if dropped before its publish reported (the
/// delivery was cancelled), so that the window still settles.
struct Member {
    window: Arc<Window>,
    reported: bool,
}

impl Drop for Member {
    fn drop(&mut self) {
        if !self.reported
            && self
                .window
                .report(&Report::Failed("delivery cancelled".into()))
                == After::Discard
        {
            close_later(self.window.channel.clone());
        }
    }
}

/// Closes a channel that must not be used again, without waiting for it.
fn close_later(channel: Channel) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            if channel.status().connected() {
                let _ = channel.close(200, "window broken".into()).await;
            }
        });
    }
}

impl AmqpBroker {
    pub fn new(config: AmqpBrokerConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            state: Mutex::new(BrokerState::default()),
            #[cfg(test)]
            channels_opened: Default::default(),
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

    /// Publishes one message and waits until its fate is known: delivered (acknowledged,
    /// and its window settled without it among the returned), returned, negatively
    /// acknowledged, or unsure. `timeout` bounds the whole publish.
    pub(crate) async fn publish(
        &self,
        publish: Publish<'_>,
        timeout: Duration,
    ) -> Result<Fate, Unavailable> {
        let deadline = Instant::now() + timeout;
        let window = self.window(publish.spec).await?;
        let mut member = Member {
            window: window.clone(),
            reported: false,
        };
        let sent = async {
            window
                .channel
                .basic_publish(
                    publish.exchange.into(),
                    publish.routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    publish.body,
                    publish.properties,
                )
                .await?
                .await
        };
        let own = match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(confirmation)) => Report::Confirmed(Box::new(confirmation)),
            Ok(Err(e)) => Report::Failed(format!("publishing failed: {e}")),
            Err(_) => Report::Failed(format!("no confirm within {}s", timeout.as_secs())),
        };
        member.reported = true;
        let after = window.report(&own);
        self.settle(&window, &after).await;
        let verdict = match tokio::time::timeout_at(deadline, window.settled()).await {
            Ok(verdict) => verdict,
            Err(_) => window::Verdict::Broken(format!(
                "the other confirms of its window did not come within {}s",
                timeout.as_secs()
            )),
        };
        Ok(window::fate(publish.message_id, &own, &verdict))
    }

    /// The open window of the connection, with a place taken in it; a new one (on an idle
    /// or a new channel) if there is none. Connects and declares `spec`'s queue first.
    async fn window(&self, spec: QueueSpec<'_>) -> Result<Arc<Window>, Unavailable> {
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
        if let Some(open) = &link.open
            && open.channel.status().connected()
            && open.join()
        {
            return Ok(open.clone());
        }
        let channel = loop {
            match link.idle.pop() {
                Some(channel) if channel.status().connected() => break channel,
                Some(_) => continue,
                None => {
                    #[cfg(test)]
                    self.channels_opened
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    break bounded(timeout, "opening a channel", async {
                        let channel = link.connection.create_channel().await?;
                        channel
                            .confirm_select(ConfirmSelectOptions::default())
                            .await?;
                        Ok(channel)
                    })
                    .await?;
                }
            }
        };
        let window = Window::new(channel, link.generation);
        // A fresh window is open and empty: the place is there.
        window.join();
        link.open = Some(window.clone());
        Ok(window)
    }

    /// After the last report of a window: its channel takes the next window, or is
    /// closed if the window broke or its connection is gone.
    async fn settle(&self, window: &Window, after: &After) {
        match after {
            After::Pending => {}
            After::Discard => close_later(window.channel.clone()),
            After::Reuse => {
                let mut state = self.state.lock().await;
                if let Some(link) = state.link.as_mut()
                    && link.generation == window.generation
                    && window.channel.status().connected()
                {
                    link.idle.push(window.channel.clone());
                }
            }
        }
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
                    open: None,
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

    #[cfg(test)]
    pub(crate) fn channels_opened(&self) -> u32 {
        self.channels_opened
            .load(std::sync::atomic::Ordering::Relaxed)
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
