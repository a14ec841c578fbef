//! `amqp`: publish to the procedure's durable queue on RabbitMQ with publisher confirms.

mod config;
mod sink;
#[cfg(test)]
mod tests;

pub use config::{AmqpBrokerConfig, AmqpSinkConfig};
pub use sink::{AmqpBroker, AmqpSink};
