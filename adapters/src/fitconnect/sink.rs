use async_trait::async_trait;

use crate::{DestinationInfo, OutboundMessage, Outcome, Sink};

/// Parks every message for the FIT-Connect subscriber to collect.
#[derive(Debug)]
pub struct FitConnectSink {
    procedure: String,
}

impl FitConnectSink {
    pub fn new(procedure: &str) -> Self {
        Self {
            procedure: procedure.to_owned(),
        }
    }
}

#[async_trait]
impl Sink for FitConnectSink {
    async fn deliver(&self, _message: &OutboundMessage) -> Outcome {
        Outcome::AwaitingPickup
    }

    fn destination(&self) -> DestinationInfo {
        DestinationInfo {
            transport: "fitconnect",
            destination: format!("/fitconnect/v1/submissions ({})", self.procedure),
        }
    }
}
