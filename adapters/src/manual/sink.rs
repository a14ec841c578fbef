use async_trait::async_trait;

use crate::{DestinationInfo, OutboundMessage, Outcome, Sink};

/// Parks every message for the clerk inbox.
#[derive(Debug)]
pub struct ManualSink {
    procedure: String,
}

impl ManualSink {
    pub fn new(procedure: &str) -> Self {
        Self {
            procedure: procedure.to_owned(),
        }
    }
}

#[async_trait]
impl Sink for ManualSink {
    async fn deliver(&self, _message: &OutboundMessage) -> Outcome {
        Outcome::AwaitingPickup
    }

    fn destination(&self) -> DestinationInfo {
        DestinationInfo {
            transport: "manual",
            destination: format!("/inbox/{}", self.procedure),
        }
    }
}
