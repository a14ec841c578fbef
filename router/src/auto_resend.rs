//! The hub's own resend of messages delivered without a receipt past their procedure's
//! deadline, for the procedures that allow it (`receipt_auto_resends`; their receivers
//! de-duplicate on the message id). The core decides which and how often; this task
//! only asks every so often, until shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::context::Hub;

/// Resends what is due every `every` until `shutdown`.
pub async fn run(
    hub: Arc<Hub>,
    limits: BTreeMap<String, u32>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        // A store failure is logged where it happened; the next round tries again.
        if let Ok(resent) = hub.oversight.resend_automatically(&limits).await
            && !resent.is_empty()
        {
            tracing::warn!(
                resent = resent.len(),
                "no receipt within the deadline: messages resent automatically with their message ids"
            );
        }
    }
}
