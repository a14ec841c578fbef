//! `amqp`: publish to the procedure's durable queue on RabbitMQ with publisher confirms,
//! and consume the procedure's reply queue for its events.

mod config;
mod drain;
mod sink;
mod source;
#[cfg(test)]
mod tests;

pub use crate::broker::{AmqpBroker, AmqpBrokerConfig};
pub use config::{AmqpSinkConfig, QueueType};
pub use drain::{Drained, drain_queue, queue_length};
pub use sink::AmqpSink;
pub use source::{
    Handled, ReplyHandler, consume_replies, open_consumer, reconnecting, requeue_after,
};
