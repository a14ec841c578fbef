//! Sealing at intake: the prepare step run before an application is stored, so that the
//! store's one durable write of intake holds the message ready for delivery. It saves
//! the outbox a read of the application, a state change and a durable write per
//! application; the answer (202) waits for the render and the seal (~0.3 ms of a core).

use std::sync::Arc;

use kopplung_core::intake::SealAhead;
use kopplung_core::store::{AttachmentContent, NewApplication, SealedAhead, Step, WorkItem};
use tokio::sync::Semaphore;

use crate::Observer;
use crate::prepare::Preparer;

/// Inline attachments up to this size in all are sealed at intake; an application with
/// more waits for the outbox, so that a large request does not hold a prepare slot
/// while its client waits (the outbox's prepares are bounded by memory, see
/// `outbox::PREPARE_INPUTS`).
const INLINE_BYTES: usize = 256 * 1024;

/// The preparer at intake, sharing the outbox's prepare slots: when every slot is busy
/// the application is stored unsealed and the outbox seals it, so intake never queues
/// behind a backlog.
pub struct Ahead {
    pub preparer: Arc<Preparer>,
    pub slots: Arc<Semaphore>,
    pub observer: Arc<dyn Observer>,
}

#[async_trait::async_trait]
impl SealAhead for Ahead {
    async fn seal(&self, new: &NewApplication) -> Option<SealedAhead> {
        let sealed = self.try_seal(new).await;
        self.observer.sealed_at_intake(sealed.is_some());
        sealed
    }
}

impl Ahead {
    async fn try_seal(&self, new: &NewApplication) -> Option<SealedAhead> {
        let inline: usize = new
            .attachments
            .iter()
            .map(|a| match &a.content {
                AttachmentContent::Inline(content) => content.len(),
                AttachmentContent::Upload(_) => 0,
            })
            .sum();
        if inline > INLINE_BYTES {
            return None;
        }
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        let item = WorkItem {
            application_id: new.id,
            service_key: new.service_key.clone(),
            procedure_id: new.procedure_id.clone(),
            message_id: new.message_id,
            message_type: new.message_type.clone(),
            step: Step::Prepare,
            attempts: 0,
            lease: String::new(),
            accepted_at: Some(new.received_at),
            sealed: None,
        };
        let input = new.prepare_input();
        // On the request's own worker, not the blocking pool: ~0.3 ms of a core, about
        // what the request's parsing and checks take, and two thread hand-offs less per
        // application (docs/performance.md).
        let prepared = self.preparer.prepare(&item, &input);
        drop(slot);
        match prepared {
            Ok(prepared) => {
                prepared.observe(self.observer.as_ref());
                Some(SealedAhead {
                    message: prepared.message.into(),
                    xml: prepared.xml.into(),
                    detail: self
                        .preparer
                        .prepared_detail(&new.procedure_id, new.message_id),
                })
            }
            // The outbox tries again and records why it failed; no field values here.
            Err(e) => {
                tracing::debug!(error = %e, "not sealed at intake; the outbox prepares it");
                None
            }
        }
    }
}
