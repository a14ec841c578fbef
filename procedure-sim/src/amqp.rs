//! `transport = "amqp"`: consumes the procedure's queue; receipts go back on its reply
//! queue if it has one, else over the hub's HTTP API.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kopplung_adapters::amqp::{open_consumer, reconnecting, requeue_after};
use kopplung_transformers::receipt::Receipt;
use lapin::options::{BasicAckOptions, BasicNackOptions, ConfirmSelectOptions};
use lapin::{Connection, ConnectionProperties};
use tokio::sync::watch;

use crate::answer::{later_decide, send};
use crate::open::{Outcome, open};
use crate::refused;
use crate::setup::{Procedure, Shared};

/// A receipt the hub refused for good goes with its message (nacked below); it is kept
/// in the outbox's `refused/` so that the answer is not lost with it.
fn keep_refused(procedure: &Procedure, shared: &Shared, receipt: &Receipt, outcome: &Outcome) {
    if let Outcome::Refused(reason) = outcome {
        match shared.outbox.keep_refused(receipt) {
            Ok(file) => {
                tracing::error!(procedure = %procedure.id, receipt_id = %receipt.receipt_id, %reason, file = %file.display(), "receipt refused for good by the hub; kept aside")
            }
            Err(e) => {
                tracing::error!(procedure = %procedure.id, receipt_id = %receipt.receipt_id, %reason, error = %e, "receipt refused for good by the hub, and not kept")
            }
        }
    }
}

/// Consumes one procedure's queue, reconnecting with a growing pause.
pub(crate) async fn consume(
    procedure: Arc<Procedure>,
    queue: String,
    shared: Arc<Shared>,
    amqp_url: String,
    shutdown: watch::Receiver<bool>,
) {
    let (procedure, queue, shared, amqp_url) = (&procedure, &queue, &shared, &amqp_url);
    let (base, max) = (Duration::from_secs(1), Duration::from_secs(30));
    reconnecting(shutdown, base, max, || async move {
        let session = async {
            let connection =
                Connection::connect(amqp_url, ConnectionProperties::default()).await?;
            // The hub declares the queue on first delivery; a vendor may start first.
            let tag = format!("sim-{}", procedure.id);
            let (channel, mut consumer) = open_consumer(&connection, queue, 8, &tag).await?;
            // Events on the reply queue wait for the broker's confirm.
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            while let Some(delivery) = consumer.next().await {
                let delivery = delivery?;
                let property = |value: &Option<lapin::types::ShortString>| {
                    value.as_ref().map(|m| m.to_string()).unwrap_or_default()
                };
                let message_type = property(delivery.properties.kind());
                let message_id = property(delivery.properties.message_id());
                // The receipt is sent and the decision stored before the ack: until
                // then the broker keeps the message, and a failure redelivers it.
                let handled = match open(procedure, shared, &delivery.data, &message_type).await {
                    Ok(handled) => send(procedure, shared, Some(&channel), &handled.receipt, 1)
                        .await
                        .inspect_err(|outcome| keep_refused(procedure, shared, &handled.receipt, outcome))
                        .and_then(|()| {
                            later_decide(procedure, shared, Some(channel.clone()), handled.accepted)
                        }),
                    Err(outcome) => Err(outcome),
                };
                match handled {
                    Ok(()) => {
                        delivery.acker.ack(BasicAckOptions::default()).await?;
                    }
                    Err(Outcome::TryLater(reason)) => {
                        tracing::warn!(procedure = %procedure.id, %message_id, %reason, "receipt not sent; message stays in the queue");
                        requeue_after(&delivery.acker, Duration::from_secs(2)).await?;
                    }
                    Err(Outcome::Refused(reason)) => {
                        // Kept before the nack: after it the broker forgets the message.
                        match refused::keep(&shared.outbox.refused, &procedure.id, "amqp", Some(&message_id), &message_type, &reason, &delivery.data) {
                            Ok(file) => {
                                tracing::error!(procedure = %procedure.id, %message_id, %reason, file = %file.display(), "message refused (not from the hub or not for us); kept aside");
                                delivery.acker.nack(BasicNackOptions::default()).await?;
                            }
                            Err(e) => {
                                tracing::error!(procedure = %procedure.id, %message_id, %reason, error = %e, "message refused and not kept; it stays in the queue");
                                requeue_after(&delivery.acker, Duration::from_secs(2)).await?;
                            }
                        }
                    }
                }
            }
            Ok::<(), lapin::Error>(())
        };
        if let Err(e) = session.await {
            tracing::warn!(procedure = %procedure.id, error = %e, "broker connection lost; reconnecting");
        }
    })
    .await;
}
