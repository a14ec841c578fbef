//! `transport = "pull"`: polls the hub's pull API, as docs/vendors.md shows with curl.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;

use crate::answer::{later_decide, sign};
use crate::open::{Outcome, fetch, open};
use crate::setup::{Procedure, Shared};

/// One waiting message of the pull API's listing.
#[derive(Deserialize)]
struct Waiting {
    message_id: String,
    message_type: String,
}

#[derive(Deserialize)]
struct Listing {
    messages: Vec<Waiting>,
}

/// Polls the pull API (`transport = "pull"`): lists, downloads, opens and acknowledges
/// each message with the signed receipt, as docs/vendors.md shows with curl.
pub(crate) async fn poll(
    procedure: Arc<Procedure>,
    token: String,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // The pull API of whichever instance answers; after a failure, the next one.
    let mut current = 0usize;
    // Messages we cannot open stay listed; say so once, not on every poll.
    let mut refused = std::collections::HashSet::new();
    tracing::info!(procedure = %procedure.id, "polling the pull API");
    while !*shutdown.borrow() {
        let Some(hub) = shared.hubs.get(current % shared.hubs.len().max(1)) else {
            return;
        };
        let base = format!("{hub}/api/v1/procedures/{}/messages", procedure.id);
        let listing = async {
            shared
                .http
                .get(&base)
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .json::<Listing>()
                .await
        };
        match listing.await {
            Ok(listing) => {
                for waiting in listing.messages {
                    if refused.contains(&waiting.message_id) {
                        continue;
                    }
                    match collect(&procedure, &shared, &token, &base, &waiting).await {
                        Ok(()) => {}
                        Err(Outcome::Refused(reason)) => {
                            tracing::error!(procedure = %procedure.id, message_id = %waiting.message_id, %reason, "message refused (not from the hub or not for us); left unacknowledged");
                            refused.insert(waiting.message_id);
                        }
                        Err(Outcome::TryLater(reason)) => {
                            tracing::warn!(procedure = %procedure.id, message_id = %waiting.message_id, %hub, %reason, "not collected yet");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(procedure = %procedure.id, %hub, error = %e, "listing failed; the next poll asks the next hub instance");
                current = current.wrapping_add(1);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Downloads, opens and acknowledges one waiting message.
async fn collect(
    procedure: &Arc<Procedure>,
    shared: &Arc<Shared>,
    token: &str,
    base: &str,
    waiting: &Waiting,
) -> Result<(), Outcome> {
    let url = format!("{base}/{}", waiting.message_id);
    let sealed = fetch(shared, &url, token)
        .await
        .map_err(|e| Outcome::TryLater(format!("download: {e}")))?;
    let handled = open(procedure, shared, &sealed, &waiting.message_type).await?;
    let (signed, content_type) = sign(procedure, &handled.receipt)?;
    // Stored before the acknowledgement: once acknowledged, the hub never lists the
    // message again, so the decision must not depend on this process living on.
    later_decide(procedure, shared, None, handled.accepted)?;
    let acknowledged = shared
        .http
        .post(format!("{url}/ack"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(signed)
        .send()
        .await
        .map_err(|e| Outcome::TryLater(format!("acknowledgement: {e}")))?;
    if !acknowledged.status().is_success() {
        return Err(Outcome::TryLater(format!(
            "acknowledgement answered {}",
            acknowledged.status()
        )));
    }
    tracing::info!(procedure = %procedure.id, message_id = %handled.receipt.message_id, application_id = %handled.receipt.application_id, event = ?handled.receipt.event, "collected and acknowledged with the receipt");
    Ok(())
}
