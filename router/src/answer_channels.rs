//! What the answer channels outside the HTTP API share (AMQP reply queues, answer
//! folders): each body is taken as an event of its procedure, as `POST …/events` does.

use std::sync::Arc;

use kopplung_adapters::{BodyHandler, body_handler};
use kopplung_core::events::{EventError, Events, Taken};

/// Takes each body as an event of `procedure`; `outcome` says what the channel does with
/// the body then.
pub fn taking_events<T: Send + 'static>(
    events: Arc<Events>,
    procedure: String,
    outcome: impl Fn(Result<Taken, EventError>) -> T + Clone + Send + Sync + 'static,
) -> BodyHandler<T> {
    body_handler(
        (events, procedure, outcome),
        |(events, procedure, outcome), body| async move { outcome(events.take(&procedure, body).await) },
    )
}
