//! The events of `file` procedures: each file the procedure leaves in its `incoming`
//! folder is taken like an event POSTed to the API, and a refusal is written beside it
//! as the problem document the API would have answered (adapters/src/file).

use std::sync::Arc;

use kopplung_adapters::file::{AnswerHandler, Answered};
use kopplung_core::events::{EventError, Events};

use crate::answer_channels::taking_events;

/// The problem document (JSON) for a refused event: the API's (`api::event_problem`),
/// passed in so that this edge does not depend on the HTTP one.
pub type Refusal = fn(EventError) -> Vec<u8>;

/// Takes one event file of `procedure`.
pub fn handler(events: Arc<Events>, procedure: String, refusal: Refusal) -> AnswerHandler {
    taking_events(events, procedure, move |taken| match taken {
        Ok(_) => Answered::Taken,
        // Nothing was recorded, and the file may be taken later: the store is back, or
        // the receipt this decision follows has arrived.
        Err(EventError::Unavailable(_) | EventError::OutOfOrder(_)) => Answered::Later,
        Err(refused) => Answered::Refused(refusal(refused)),
    })
}
