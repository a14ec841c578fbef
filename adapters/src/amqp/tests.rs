//! Against the real RabbitMQ at `KOPPLUNG_TEST_AMQP_URL` (default: the local broker).
//! A missing broker fails these tests; they never skip.

use std::time::Duration;

use bytes::Bytes;
use lapin::options::{BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};

use super::{AmqpBroker, AmqpBrokerConfig, AmqpSink, AmqpSinkConfig};
use crate::{OutboundMessage, Outcome, Sink};

fn broker_url() -> String {
    std::env::var("KOPPLUNG_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn test_connection() -> Connection {
    let url = broker_url();
    Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!("RabbitMQ is not reachable at {url} ({e}); start it: rabbitmq-server -detached")
        })
}

async fn delete_queue(channel: &lapin::Channel, queue: &str) {
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .unwrap();
}

fn message(body: &'static [u8]) -> OutboundMessage {
    OutboundMessage {
        message_id: uuid::Uuid::new_v4().to_string(),
        correlation_id: uuid::Uuid::new_v4().to_string(),
        message_type: "maengelanzeige.meldung.0101".into(),
        content_type: "application/pkcs7-mime".into(),
        headers: vec![("service".into(), "99999001000000".into())],
        body: Bytes::from_static(body),
    }
}

/// A sink on its own connection to the test broker.
fn sink_to(config: AmqpSinkConfig) -> AmqpSink {
    AmqpSink::new(AmqpBroker::new(AmqpBrokerConfig::new(broker_url())), config)
}

/// How many messages wait in `queue` (`None`: the broker has no such queue), as
/// `kopplung drain` looks: a passive declare on a connection of its own.
async fn length(queue: &str) -> Option<u32> {
    super::queue_length(&AmqpBrokerConfig::new(broker_url()), queue)
        .await
        .unwrap()
}

/// Declares the durable `queue` with `arguments`, as a vendor may have; an error if the
/// broker has it with others.
async fn declare_durable<const N: usize>(
    channel: &lapin::Channel,
    queue: &str,
    arguments: [(&str, AMQPValue); N],
) -> Result<(), lapin::Error> {
    let mut table = FieldTable::default();
    for (name, value) in arguments {
        table.insert(name.into(), value);
    }
    channel
        .queue_declare(queue.into(), QueueDeclareOptions::durable(), table)
        .await
        .map(drop)
}

/// A new unique queue, declared durable with `arguments` as a vendor may have: the
/// connection, a channel on it, and the queue.
async fn vendor_queue<const N: usize>(
    arguments: [(&str, AMQPValue); N],
) -> (Connection, lapin::Channel, String) {
    let connection = test_connection().await;
    let queue = unique_queue();
    let channel = connection.create_channel().await.unwrap();
    declare_durable(&channel, &queue, arguments).await.unwrap();
    (connection, channel, queue)
}

fn unique_queue() -> String {
    format!("kopplung.test.{}", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn a_confirmed_message_is_in_the_queue_with_its_properties() {
    let connection = test_connection().await;
    let queue = unique_queue();
    let sink = sink_to(AmqpSinkConfig::queue(queue.clone()));
    let sent = message(b"sealed bytes");
    assert_eq!(sink.deliver(&sent).await, Outcome::Delivered);

    let channel = connection.create_channel().await.unwrap();
    let got = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the message is in the queue");
    let props = &got.delivery.properties;
    assert_eq!(got.delivery.data, b"sealed bytes");
    assert_eq!(
        props.message_id().as_ref().unwrap().as_str(),
        sent.message_id
    );
    assert_eq!(
        props.correlation_id().as_ref().unwrap().as_str(),
        sent.correlation_id
    );
    assert_eq!(
        props.kind().as_ref().unwrap().as_str(),
        "maengelanzeige.meldung.0101"
    );
    assert_eq!(*props.delivery_mode(), Some(2));
    let headers = props.headers().as_ref().unwrap();
    assert!(matches!(
        headers.inner().get("service"),
        Some(AMQPValue::LongString(s)) if s.to_string() == "99999001000000"
    ));
    delete_queue(&channel, &queue).await;
}

#[tokio::test]
async fn a_returned_message_is_a_retry_and_the_queue_is_declared_again() {
    let connection = test_connection().await;
    let queue = unique_queue();
    let sink = sink_to(AmqpSinkConfig::queue(queue.clone()));
    assert_eq!(sink.deliver(&message(b"1")).await, Outcome::Delivered);
    let channel = connection.create_channel().await.unwrap();
    delete_queue(&channel, &queue).await;
    match sink.deliver(&message(b"2")).await {
        Outcome::Retry { reason, .. } => assert!(reason.contains("NO_ROUTE"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert_eq!(sink.deliver(&message(b"3")).await, Outcome::Delivered);
    delete_queue(&channel, &queue).await;
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_broker_is_a_retry_and_attempts_are_spaced_out() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let mut config = AmqpBrokerConfig::new("amqp://guest:guest@127.0.0.1:1/%2f");
    config.reconnect_base_ms = 1_000;
    config.reconnect_max_ms = 4_000;
    let broker = AmqpBroker::new(config);
    let sink = AmqpSink::new(broker.clone(), AmqpSinkConfig::queue("q"));

    let first = sink.deliver(&message(b"x")).await;
    assert!(
        matches!(&first, Outcome::Unavailable { reason, not_before: Some(d) } if reason.contains("unreachable") && *d == Duration::from_secs(1)),
        "{first:?}"
    );
    assert_eq!(broker.connect_attempts().await, 1);

    // Within the pause no new connection is attempted.
    tokio::time::advance(Duration::from_millis(500)).await;
    let waiting = sink.deliver(&message(b"x")).await;
    assert!(
        matches!(waiting, Outcome::Unavailable { not_before: Some(d), .. } if d == Duration::from_millis(500))
    );
    assert_eq!(broker.connect_attempts().await, 1);

    // After it, one attempt; the pause doubles and is capped.
    for (expected_pause, attempts) in [(2, 2), (4, 3), (4, 4)] {
        tokio::time::advance(Duration::from_secs(4)).await;
        let outcome = sink.deliver(&message(b"x")).await;
        assert!(
            matches!(outcome, Outcome::Unavailable { not_before: Some(d), .. } if d == Duration::from_secs(expected_pause)),
            "{outcome:?}"
        );
        assert_eq!(broker.connect_attempts().await, attempts);
    }
    assert!(!broker.is_connected().await);
}

#[test]
fn the_password_never_shows() {
    let config = AmqpBrokerConfig::new("amqps://hub:s3cret@mq.example:5671/prod");
    assert_eq!(
        config.redacted_url(),
        "amqps://hub:***@mq.example:5671/prod"
    );
}

#[tokio::test]
async fn a_queue_the_vendor_declared_with_other_arguments_is_used_as_it_is() {
    let (_connection, channel, queue) =
        vendor_queue([("x-max-length", AMQPValue::LongLongInt(1000))]).await;
    let sink = sink_to(AmqpSinkConfig::queue(queue.clone()));
    assert_eq!(sink.deliver(&message(b"1")).await, Outcome::Delivered);
    assert_eq!(sink.deliver(&message(b"2")).await, Outcome::Delivered);
    assert_eq!(length(&queue).await, Some(2));
    delete_queue(&channel, &queue).await;
}

#[tokio::test]
async fn concurrent_deliveries_are_each_confirmed_once() {
    let connection = test_connection().await;
    let queue = unique_queue();
    let sink = std::sync::Arc::new(sink_to(AmqpSinkConfig::queue(queue.clone())));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let sink = sink.clone();
        tasks.spawn(async move { sink.deliver(&message(b"parallel")).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.unwrap(), Outcome::Delivered);
    }
    let channel = connection.create_channel().await.unwrap();
    let mut count = 0;
    while channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .is_some()
    {
        count += 1;
    }
    assert_eq!(count, 64);
    delete_queue(&channel, &queue).await;
}

#[tokio::test]
async fn an_exchange_with_a_routing_key_and_a_quorum_queue() {
    let connection = test_connection().await;
    let queue = unique_queue();
    let exchange = format!("{queue}.exchange");
    let mut config = AmqpSinkConfig::queue(queue.clone());
    config.exchange = Some(exchange.clone());
    config.routing_key = Some("fachverfahren.eingang".into());
    config.queue_type = super::QueueType::Quorum;
    let sink = sink_to(config);
    assert_eq!(
        sink.deliver(&message(b"via exchange")).await,
        Outcome::Delivered
    );

    let channel = connection.create_channel().await.unwrap();
    // Declaring it passively as a quorum queue succeeds only if it is one.
    declare_durable(
        &channel,
        &queue,
        [("x-queue-type", AMQPValue::LongString("quorum".into()))],
    )
    .await
    .expect("the queue is a quorum queue");
    let got = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the message was routed to the queue");
    assert_eq!(got.delivery.data, b"via exchange");
    delete_queue(&channel, &queue).await;
    channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await
        .unwrap();
}

/// Every message id in `queue`, taken out of it.
async fn drain_ids(channel: &lapin::Channel, queue: &str) -> Vec<String> {
    let mut ids = Vec::new();
    while let Some(got) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        ids.push(
            got.delivery
                .properties
                .message_id()
                .as_ref()
                .unwrap()
                .to_string(),
        );
    }
    ids
}

/// Delivers every message at the same moment, each through its sink; the outcomes by
/// message id.
async fn deliver_at_once(
    deliveries: Vec<(std::sync::Arc<AmqpSink>, OutboundMessage)>,
) -> std::collections::BTreeMap<String, Outcome> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(deliveries.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for (sink, message) in deliveries {
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            (message.message_id.clone(), sink.deliver(&message).await)
        });
    }
    let mut outcomes = std::collections::BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (id, outcome) = done.unwrap();
        outcomes.insert(id, outcome);
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_deliveries_share_a_few_channels_and_each_is_in_the_queue_once() {
    let connection = test_connection().await;
    let queue = unique_queue();
    let broker = AmqpBroker::new(AmqpBrokerConfig::new(broker_url()));
    let sink = std::sync::Arc::new(AmqpSink::new(
        broker.clone(),
        AmqpSinkConfig::queue(queue.clone()),
    ));
    let messages: Vec<_> = (0..400)
        .map(|_| (sink.clone(), message(b"pipelined")))
        .collect();
    let mut sent: Vec<String> = messages.iter().map(|(_, m)| m.message_id.clone()).collect();
    let outcomes = deliver_at_once(messages).await;
    assert!(
        outcomes.values().all(|o| *o == Outcome::Delivered),
        "{outcomes:?}"
    );
    // Pipelined: far fewer channels than messages (one per message before).
    let channels = broker.channels_opened();
    assert!(channels < 40, "{channels} channels for 400 messages");

    let channel = connection.create_channel().await.unwrap();
    let mut arrived = drain_ids(&channel, &queue).await;
    arrived.sort();
    sent.sort();
    assert_eq!(arrived, sent, "every message once, none missing");
    delete_queue(&channel, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nack_in_the_middle_of_a_pipelined_batch_is_a_retry_and_never_delivered() {
    // The vendor's queue takes 5 messages and refuses the rest: RabbitMQ nacks each
    // publish beyond its length, while the others of the same window are acked.
    let (_connection, channel, queue) = vendor_queue([
        ("x-max-length", AMQPValue::LongLongInt(5)),
        ("x-overflow", AMQPValue::LongString("reject-publish".into())),
    ])
    .await;
    let broker = AmqpBroker::new(AmqpBrokerConfig::new(broker_url()));
    let sink = std::sync::Arc::new(AmqpSink::new(
        broker.clone(),
        AmqpSinkConfig::queue(queue.clone()),
    ));
    let outcomes = deliver_at_once((0..40).map(|_| (sink.clone(), message(b"n"))).collect()).await;

    let delivered: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o)| **o == Outcome::Delivered)
        .map(|(id, _)| id)
        .collect();
    let nacked = outcomes
        .values()
        .filter(|o| {
            matches!(o, Outcome::Retry { reason, .. } if reason == "negatively acknowledged by the broker")
        })
        .count();
    assert_eq!(delivered.len(), 5, "{outcomes:?}");
    assert_eq!(nacked, 35, "{outcomes:?}");
    assert!(broker.channels_opened() < 40, "the 40 were pipelined");
    // Exactly the ones counted as delivered are in the queue.
    let mut arrived = drain_ids(&channel, &queue).await;
    arrived.sort();
    let mut delivered: Vec<String> = delivered.into_iter().cloned().collect();
    delivered.sort();
    assert_eq!(arrived, delivered);
    delete_queue(&channel, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_returned_message_in_the_middle_of_a_pipelined_batch_is_a_retry_and_never_delivered() {
    let connection = test_connection().await;
    let channel = connection.create_channel().await.unwrap();
    let broker = AmqpBroker::new(AmqpBrokerConfig::new(broker_url()));
    let (kept, deleted) = (unique_queue(), unique_queue());
    let to_kept = std::sync::Arc::new(AmqpSink::new(
        broker.clone(),
        AmqpSinkConfig::queue(kept.clone()),
    ));
    let to_deleted = std::sync::Arc::new(AmqpSink::new(
        broker.clone(),
        AmqpSinkConfig::queue(deleted.clone()),
    ));
    // Both queues declared by the hub, then one deleted behind its back: its messages
    // are returned (NO_ROUTE), in the same windows as the other queue's.
    assert_eq!(
        to_kept.deliver(&message(b"first")).await,
        Outcome::Delivered
    );
    assert_eq!(
        to_deleted.deliver(&message(b"first")).await,
        Outcome::Delivered
    );
    drain_ids(&channel, &kept).await;
    delete_queue(&channel, &deleted).await;

    let deliveries: Vec<_> = (0..60)
        .map(|i| {
            let sink = if i % 3 == 0 { &to_deleted } else { &to_kept };
            (sink.clone(), message(b"mixed"))
        })
        .collect();
    let for_deleted: std::collections::BTreeSet<String> = deliveries
        .iter()
        .filter(|(sink, _)| std::sync::Arc::ptr_eq(sink, &to_deleted))
        .map(|(_, m)| m.message_id.clone())
        .collect();
    let outcomes = deliver_at_once(deliveries).await;
    assert!(broker.channels_opened() < 30, "the 60 were pipelined");

    let returned: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o)| {
            matches!(o, Outcome::Retry { reason, .. } if reason.starts_with("returned by the broker: 312 NO_ROUTE"))
        })
        .map(|(id, _)| id)
        .collect();
    assert!(!returned.is_empty(), "{outcomes:?}");
    assert!(returned.iter().all(|id| for_deleted.contains(*id)));
    for (id, outcome) in &outcomes {
        if !for_deleted.contains(id) {
            assert_eq!(*outcome, Outcome::Delivered, "{id}");
        }
    }
    // What counts as delivered is in its queue; nothing returned is anywhere. (After the
    // first return the hub declares the queue again, so later messages to it arrive.)
    let in_kept = drain_ids(&channel, &kept).await;
    let recreated = length(&deleted).await.is_some();
    let in_deleted = if recreated {
        drain_ids(&channel, &deleted).await
    } else {
        Vec::new()
    };
    for (id, outcome) in &outcomes {
        let arrived = in_kept.contains(id) || in_deleted.contains(id);
        assert_eq!(arrived, *outcome == Outcome::Delivered, "{id}: {outcome:?}");
    }
    delete_queue(&channel, &kept).await;
    if recreated {
        delete_queue(&channel, &deleted).await;
    }
}
