//! What operators and auditors do, the same for the admin API (JSON) and the admin
//! console (HTML): look for applications, look at one (its transformed message only
//! with the view recorded first), ask for the next attempt now, replay a dead letter,
//! and read the state of the hub.

mod awaiting;
mod search;
mod status;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

pub use awaiting::{AwaitingReceipt, ReceiptDeadlines, ResendError, resends};
pub use search::{SearchCriteria, SearchError};
pub use status::{
    CertificateStatus, Destination, InForce, MappingStatus, ProcedureStatus, StatusReport,
};

use crate::audit::AuditEntry;
use crate::store::{
    ApplicationQuery, ApplicationRecord, ApplicationSummary, DeadLetter, PrepareInput, Store,
    StoreError,
};
use crate::{Clock, Wake};

/// Renders an application's XÖV message with the mapping in force (not sealed).
#[async_trait]
pub trait MessageRenderer: Send + Sync {
    async fn render(
        &self,
        procedure: &str,
        message_id: Uuid,
        input: PrepareInput,
    ) -> Result<String, RenderError>;
}

/// Why a message could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The mapping in force cannot render the stored data.
    #[error("{0}")]
    NotRenderable(String),
    /// Rendering broke off (the worker failed).
    #[error("rendering failed")]
    Failed,
}

/// The store could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the store is not reachable: {0}")]
pub struct Unavailable(pub StoreError);

/// Why one application or dead letter cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no such application")]
    NotFound,
    #[error("the store is not reachable: {0}")]
    Unavailable(StoreError),
}

/// Why the next attempt was not scheduled now.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// Delivered, being worked on right now, a dead letter (replay it), or unknown.
    #[error("nothing of this application waits for an attempt")]
    NothingToRetry,
    #[error("the store is not reachable: {0}")]
    Unavailable(StoreError),
}

/// Why a dead letter was not replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no dead letter for this application")]
    NoDeadLetter,
    #[error("the store is not reachable: {0}")]
    Unavailable(StoreError),
}

/// Why an application was not reprocessed.
#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error("the application is not invalid")]
    NotInvalid,
    #[error("the store is not reachable: {0}")]
    Unavailable(StoreError),
}

/// The refusal of an operator's action on the outbox (retry, replay): nothing there to
/// act on, or the store failed.
pub trait ActionError: Sized {
    /// The store's failure; `None` when there was nothing to act on.
    fn store_failure(self) -> Option<StoreError>;
    /// Nothing there to act on.
    fn nothing() -> Self;
    fn unavailable(error: StoreError) -> Self;
}

macro_rules! action_error {
    ($($error:ident::$nothing:ident),*) => {
        $(impl ActionError for $error {
            fn store_failure(self) -> Option<StoreError> {
                match self {
                    Self::$nothing => None,
                    Self::Unavailable(e) => Some(e),
                }
            }
            fn nothing() -> Self {
                Self::$nothing
            }
            fn unavailable(error: StoreError) -> Self {
                Self::Unavailable(error)
            }
        })*
    };
}

action_error!(
    RetryError::NothingToRetry,
    ReplayError::NoDeadLetter,
    ReprocessError::NotInvalid
);

/// An action's outcome as a page tells it: done (`true`), nothing to act on (`false`),
/// or the store's failure.
pub fn outcome_of<E: ActionError>(result: Result<(), E>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(e) => e.store_failure().map_or(Ok(false), Err),
    }
}

/// Why the transformed message is not shown.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("no such application")]
    NotFound,
    /// Retention deleted the personal data.
    #[error("the personal data was deleted")]
    Purged,
    /// The mapping in force cannot render the stored data.
    #[error("not renderable: {0}")]
    NotRenderable(String),
    #[error("the store is not reachable")]
    Unavailable(StoreError),
    #[error("rendering failed")]
    Internal,
}

/// An application with its audit entries (Laufzettel).
#[derive(Debug, Clone)]
pub struct ApplicationView {
    pub record: ApplicationRecord,
    pub audit: Vec<AuditEntry>,
}

/// Where the XML of a viewed message comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageSource {
    /// Exactly the XML that was signed and sealed for the procedure (and sent, or to be
    /// sent): kept when the message was prepared.
    AsSent,
    /// Rendered now with the mapping in force, because no copy of the sealed XML is
    /// kept: the message is not prepared yet (or `invalid`), or was prepared before the
    /// hub kept one. It may differ from what the procedure received.
    Rerendered,
}

impl MessageSource {
    /// The name the admin API gives it (`as-sent`, `re-rendered`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AsSent => "as-sent",
            Self::Rerendered => "re-rendered",
        }
    }
}

/// The transformed message of an application, its view recorded.
#[derive(Debug, Clone)]
pub struct MessageViewed {
    /// The XML (not sealed): as sent, or rendered now, as `source` says.
    pub xml: String,
    pub source: MessageSource,
    pub message_id: Uuid,
    pub message_type: String,
    pub receipt: String,
}

/// What a message view shows: the XML kept when the message was sealed, or the input
/// to render it from now.
enum Shown {
    Kept(String),
    Rendered(Box<PrepareInput>),
}

/// The oversight service.
pub struct Oversight {
    pub store: Arc<dyn Store>,
    pub renderer: Arc<dyn MessageRenderer>,
    pub in_force: Arc<dyn InForce>,
    pub wake: Arc<dyn Wake>,
    pub clock: Arc<dyn Clock>,
    /// Per procedure, how long a delivered message may wait for its receipt.
    pub receipt_deadlines: ReceiptDeadlines,
}

impl Oversight {
    /// The dead letters, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, Unavailable> {
        self.store.dead_letters().await.map_err(|e| {
            tracing::error!(error = %e, "reading dead letters failed");
            Unavailable(e)
        })
    }

    /// The dead letter of one application.
    pub async fn dead_letter(&self, id: Uuid) -> Result<DeadLetter, LookupError> {
        let letters = self
            .dead_letters()
            .await
            .map_err(|Unavailable(e)| LookupError::Unavailable(e))?;
        letters
            .into_iter()
            .find(|l| l.application_id == id)
            .ok_or(LookupError::NotFound)
    }

    /// Puts a dead letter back into the outbox (same message id), for `by`.
    pub async fn replay(&self, id: Uuid, by: &str) -> Result<(), ReplayError> {
        self.acted(
            self.store.replay(id, by).await,
            "replaying a dead letter failed",
        )?;
        tracing::info!(application_id = %id, operator = %by, "dead letter replayed");
        Ok(())
    }

    /// Puts every dead letter of `procedure` back into the outbox, each as `replay`
    /// does (same message id, its own history and audit entry); returns the applications
    /// replayed, oldest first. One replayed by someone else meanwhile is skipped. A store
    /// failure stops it: what was replayed until then stays replayed, and asking again
    /// replays the rest.
    pub async fn replay_all(&self, procedure: &str, by: &str) -> Result<Vec<Uuid>, Unavailable> {
        let letters = self.dead_letters().await?;
        // Each history entry says it was part of a bulk replay.
        let bulk = format!("{by}, with every dead letter of {procedure}");
        let mut replayed = Vec::new();
        for letter in letters.iter().filter(|l| l.procedure == procedure) {
            match self.replay(letter.application_id, &bulk).await {
                Ok(()) => replayed.push(letter.application_id),
                Err(ReplayError::NoDeadLetter) => {}
                Err(ReplayError::Unavailable(e)) => return Err(Unavailable(e)),
            }
        }
        tracing::info!(%procedure, operator = %by, replayed = replayed.len(), "dead letters of a procedure replayed");
        Ok(replayed)
    }

    /// Renders and seals an `invalid` application again with the mapping now in force,
    /// its message id unchanged, for `by` (after the mapping was fixed).
    pub async fn reprocess(&self, id: Uuid, by: &str) -> Result<(), ReprocessError> {
        self.acted(
            self.store.reprocess(id, by).await,
            "reprocessing an application failed",
        )?;
        tracing::info!(application_id = %id, operator = %by, "invalid application reprocessed");
        Ok(())
    }

    /// The next attempt now, asked for by `by` (a role).
    pub async fn retry_now(&self, id: Uuid, by: &str) -> Result<(), RetryError> {
        let detail = format!("next attempt requested now by {by}");
        self.acted(self.store.retry_now(id, &detail).await, "retry now failed")?;
        tracing::info!(application_id = %id, role = %by, "next attempt requested");
        Ok(())
    }

    /// An operator's change to the outbox as its action's answer: done (the outbox woken),
    /// nothing there to act on, or the store's failure (logged as `failed`).
    fn acted<E: ActionError>(
        &self,
        changed: Result<bool, StoreError>,
        failed: &str,
    ) -> Result<(), E> {
        match self.woken(changed, failed) {
            Ok(true) => Ok(()),
            Ok(false) => Err(E::nothing()),
            Err(e) => Err(E::unavailable(e)),
        }
    }

    /// Wakes the outbox when a change to it took effect (`Ok(true)`), so that it acts on
    /// it now rather than at its next poll; logs a store failure as `failed`.
    fn woken(&self, changed: Result<bool, StoreError>, failed: &str) -> Result<bool, StoreError> {
        match &changed {
            Ok(true) => self.wake.wake(),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "{failed}"),
        }
        changed
    }

    /// Applications matching every given part of `query`, newest first.
    pub async fn search(
        &self,
        query: &ApplicationQuery,
    ) -> Result<Vec<ApplicationSummary>, SearchError> {
        self.store.search(query).await.map_err(|e| {
            tracing::error!(error = %e, "searching applications failed");
            SearchError::Unavailable(e)
        })
    }

    /// One application: state, delivery, history and audit entries.
    pub async fn application(&self, id: Uuid) -> Result<ApplicationView, LookupError> {
        match (
            self.store.application(id).await,
            self.store.audit_entries(id).await,
        ) {
            (Ok(Some(record)), Ok(audit)) => Ok(ApplicationView { record, audit }),
            (Ok(None), _) => Err(LookupError::NotFound),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "reading an application failed");
                Err(LookupError::Unavailable(e))
            }
        }
    }

    /// Records that `role` looks at the transformed message of application `id` (from
    /// `place`), then shows it: no view without its trace in the history and audit
    /// trail. The XML is the one that was signed and sealed, as the store kept it; only
    /// a message without that copy (not prepared yet, or prepared before the hub kept
    /// it) is rendered with the mapping in force, and says so ([`MessageSource`]).
    pub async fn view_message(
        &self,
        id: Uuid,
        role: &str,
        place: &str,
    ) -> Result<MessageViewed, ViewError> {
        let unavailable = |e: StoreError| {
            tracing::error!(error = %e, "reading an application failed");
            ViewError::Unavailable(e)
        };
        let record = self
            .store
            .application(id)
            .await
            .map_err(unavailable)?
            .ok_or(ViewError::NotFound)?;
        // Retention clears the kept XML with the payload: a message without it is either
        // purged or never kept, which the payload tells apart.
        let shown = match self.store.sent_xml(id).await.map_err(unavailable)? {
            Some(xml) => Shown::Kept(xml),
            None => {
                let input = self.store.prepare_input(id).await.map_err(unavailable)?;
                if input.payload == serde_json::json!({}) {
                    return Err(ViewError::Purged);
                }
                Shown::Rendered(Box::new(input))
            }
        };
        let source = match shown {
            Shown::Kept(_) => MessageSource::AsSent,
            Shown::Rendered(_) => MessageSource::Rerendered,
        };
        let detail = format!(
            "transformed XML of message {} viewed by {role} ({place}, {})",
            record.delivery.message_id,
            match source {
                MessageSource::AsSent => "as sent",
                MessageSource::Rerendered => "re-rendered with the mapping in force",
            }
        );
        match self.store.record_access(id, &detail).await {
            Ok(true) => {}
            Ok(false) => return Err(ViewError::NotFound),
            Err(e) => {
                tracing::error!(error = %e, "recording an access failed");
                return Err(ViewError::Unavailable(e));
            }
        }
        let message_id = record.delivery.message_id;
        let xml = match shown {
            Shown::Kept(xml) => xml,
            Shown::Rendered(input) => match self
                .renderer
                .render(&record.delivery.procedure, message_id, *input)
                .await
            {
                Ok(xml) => xml,
                Err(RenderError::NotRenderable(reason)) => {
                    return Err(ViewError::NotRenderable(reason));
                }
                Err(RenderError::Failed) => return Err(ViewError::Internal),
            },
        };
        tracing::info!(application_id = %id, %role, %place, source = source.as_str(), "transformed XML viewed");
        Ok(MessageViewed {
            xml,
            source,
            message_id,
            message_type: record.delivery.message_type,
            receipt: record.receipt,
        })
    }

    /// Mappings, certificates, procedures and their backlog, gathered now.
    pub async fn status(&self) -> Result<StatusReport, Unavailable> {
        let backlog = self.store.backlog().await.map_err(|e| {
            tracing::error!(error = %e, "reading the backlog failed");
            Unavailable(e)
        })?;
        Ok(status::report(self.in_force.as_ref(), &backlog))
    }
}
