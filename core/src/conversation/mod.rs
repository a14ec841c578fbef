//! The conversation after the application: the citizen answers a query (Antwort),
//! sends documents later (Nachreichung) or objects to a decision (Widerspruch). Each is
//! its own message to the procedure — same application, new message id, a message type
//! of the service's family — stored as a child of the application with its own outbox
//! entry, so it travels, is retried and receipted like the application itself.

mod payment;
mod rules;

use std::sync::Arc;

use kopplung_forms::FieldError;
use serde::Deserialize;
use uuid::Uuid;

pub use crate::follow_up::{FollowUpInput, FollowUpKind, FollowUpOf, FollowUpRecord};
pub use payment::Accounting;
pub use rules::{MAX_FOLLOW_UPS, Refusal, may_follow};

use crate::events::ClerkText;
use crate::intake::ServiceCatalog;
use crate::store::{
    EventStore, IdempotencyKey, Inserted, IntakeStore, NewApplication, StoreError, UploadInfo,
};
use crate::{Clock, ServiceKey, Status, Wake};

/// A follow-up message as the citizen's portal sends it (`POST
/// /api/v1/applications/{id}/messages`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowUpRequest {
    kind: String,
    /// The event it answers or objects to (the mailbox entry's `event_id`); an
    /// objection without it objects to the decision.
    #[serde(default)]
    refers_to: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<crate::intake::AttachmentIn>,
    /// A payment record's payment (kind `zahlung`).
    #[serde(default)]
    payment: Option<payment::PaymentIn>,
}

/// A follow-up message the hub holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub id: Uuid,
    pub message_id: Uuid,
    pub kind: FollowUpKind,
    /// The answer to an earlier request with the same idempotency key.
    pub replayed: bool,
}

/// Why a follow-up message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("the body is not a valid message: {0}")]
    Malformed(String),
    #[error("{} invalid fields", .0.len())]
    Invalid(Vec<FieldError>),
    /// No application of this client has the id.
    #[error("no such application")]
    UnknownApplication,
    /// The application's state does not allow this message now.
    #[error("{0}")]
    Refused(Refusal),
    #[error("attachments[{index}] is larger than {max_bytes} bytes")]
    AttachmentTooLarge { index: usize, max_bytes: usize },
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was used with a different request")]
    KeyReused,
    #[error("the store is not reachable: {0}")]
    StoreUnreachable(StoreError),
    #[error("the message could not be stored: {0}")]
    NotStored(StoreError),
}

/// The conversation service.
pub struct Conversation {
    pub store: Arc<dyn IntakeStore>,
    pub events: Arc<dyn EventStore>,
    pub catalog: Arc<dyn ServiceCatalog>,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<dyn Wake>,
    /// Where payment records go.
    pub accounting: Arc<dyn Accounting>,
}

impl Conversation {
    /// Accepts one follow-up message of `client` for application `parent`: checked
    /// against the application's state and the service's attachment rules, stored with
    /// its outbox entry, or why not.
    pub async fn send(
        &self,
        client: &str,
        parent: Uuid,
        body: &[u8],
        idempotency_key: Option<&str>,
    ) -> Result<Sent, ConversationError> {
        let idempotency = idempotency_key.map(|key| IdempotencyKey {
            // Apart from the client's keys of applications: one space per application.
            key: format!("{parent}/messages/{key}"),
            request_sha256: hex::encode(openssl::sha::sha256(body)),
        });
        if let Some(idempotency) = &idempotency {
            match self.store.idempotent_answer(client, idempotency).await {
                Ok(Some(Inserted::Created(earlier) | Inserted::Replayed(earlier))) => {
                    return self.sent_before(earlier.id).await;
                }
                Ok(Some(Inserted::KeyConflict)) => return Err(ConversationError::KeyReused),
                Ok(_) => {}
                Err(e) => return Err(ConversationError::StoreUnreachable(e)),
            }
        }
        let request: FollowUpRequest = serde_json::from_slice(body)
            .map_err(|e| ConversationError::Malformed(e.to_string()))?;
        let Some(kind) = FollowUpKind::parse(&request.kind) else {
            return Err(ConversationError::Invalid(vec![FieldError::new(
                "kind",
                "muss antwort, nachreichung, widerspruch oder zahlung sein",
            )]));
        };
        let record = match self.store.application(parent).await {
            Ok(Some(record)) if record.client_id == client && record.follow_up.is_none() => record,
            Ok(_) => return Err(ConversationError::UnknownApplication),
            Err(e) => return Err(ConversationError::StoreUnreachable(e)),
        };
        let (mailbox, _) = self
            .events
            .mailbox(parent)
            .await
            .map_err(ConversationError::StoreUnreachable)?;
        let today = kopplung_forms::german::today(self.clock.now());
        let refers_to = may_follow(kind, request.refers_to.as_deref(), &record, &mailbox, today)
            .map_err(ConversationError::Refused)?;
        let mut errors = Vec::new();
        let zahlung = if kind == FollowUpKind::Zahlung {
            if !request.attachments.is_empty() {
                errors.push(FieldError::new(
                    "attachments",
                    "Eine Zahlungsmeldung hat keine Anlagen.",
                ));
            }
            payment::checked(request.payment, &mut errors)
        } else {
            if request.payment.is_some() {
                errors.push(FieldError::new(
                    "payment",
                    "Nur eine Zahlungsmeldung (kind zahlung) hat eine Zahlung.",
                ));
            }
            None
        };
        let text = match request.text.as_deref().map(ClerkText::new) {
            // Held to the schema's datatype C (DIN 91379) like every form field, so that
            // what is accepted here also renders valid.
            Some(Ok(text)) => match kopplung_forms::text::normalise(text.as_str()) {
                Ok(plain) => match ClerkText::new(&plain) {
                    Ok(plain) => Some(plain),
                    Err(_) => {
                        errors.push(FieldError::new("text", "Bitte schreiben Sie einen Text."));
                        None
                    }
                },
                Err(problem) => {
                    errors.push(FieldError::new(
                        "text",
                        format!("{problem}. Bitte ersetzen oder entfernen Sie dieses Zeichen."),
                    ));
                    None
                }
            },
            // Later documents and payment records need no text; an answer may be just
            // the document the authority asked for.
            None | Some(Err(crate::events::TextProblem::Empty))
                if matches!(kind, FollowUpKind::Nachreichung | FollowUpKind::Zahlung)
                    || (kind == FollowUpKind::Antwort && !request.attachments.is_empty()) =>
            {
                None
            }
            None | Some(Err(crate::events::TextProblem::Empty)) => {
                errors.push(FieldError::new("text", "Bitte schreiben Sie einen Text."));
                None
            }
            Some(Err(crate::events::TextProblem::TooLong { max, chars })) => {
                errors.push(FieldError::new(
                    "text",
                    format!("Der Text hat {chars} Zeichen; höchstens {max} sind möglich. Bitte kürzen Sie ihn."),
                ));
                None
            }
            Some(Err(crate::events::TextProblem::ControlCharacter)) => {
                errors.push(FieldError::new(
                    "text",
                    "Der Text enthält Steuerzeichen; bitte entfernen Sie sie.",
                ));
                None
            }
        };
        if kind == FollowUpKind::Nachreichung && request.attachments.is_empty() {
            errors.push(FieldError::new(
                "attachments",
                "Bitte fügen Sie mindestens ein Dokument bei.",
            ));
        }
        let service = ServiceKey::parse(&record.service).map_err(|_| {
            ConversationError::NotStored(StoreError::Corrupt(format!("service key of {parent}")))
        })?;
        let uploads = self.find_uploads(&request.attachments).await?;
        let snapshot = self.catalog.snapshot();
        let Some(offer) = snapshot.offer(&service) else {
            return Err(ConversationError::Refused(Refusal::ServiceWithdrawn));
        };
        // Checked like the service's attachments, none of its slots: what a slot
        // requires depends on the form, which a later document does not fill in.
        let attachments = crate::intake::check_attachments(
            offer.form,
            &serde_json::Value::Null,
            client,
            &uploads,
            request.attachments,
            &mut errors,
        )
        .map_err(|e| match e {
            crate::intake::IntakeError::AttachmentTooLarge { index, max_bytes } => {
                ConversationError::AttachmentTooLarge { index, max_bytes }
            }
            other => ConversationError::Malformed(other.to_string()),
        })?;
        if !errors.is_empty() {
            return Err(ConversationError::Invalid(errors));
        }
        // A payment record for the application's own procedure must not overtake the
        // application (the accounting procedure is another one and may take it at once).
        let procedure_id = match kind {
            FollowUpKind::Zahlung => self
                .accounting
                .accounting_of(&record.delivery.procedure)
                .unwrap_or_else(|| record.delivery.procedure.clone()),
            _ => record.delivery.procedure.clone(),
        };
        if procedure_id == record.delivery.procedure
            && matches!(
                record.status,
                Status::Accepted | Status::Prepared | Status::Invalid | Status::DeadLettered
            )
        {
            return Err(ConversationError::Refused(Refusal::NotYetDelivered));
        }
        let id = Uuid::now_v7();
        let message_id = Uuid::now_v7();
        let new = NewApplication {
            id,
            // Unique like every receipt number, and readable as the application's.
            receipt: format!("{}/{}", record.receipt, &id.simple().to_string()[24..]),
            client_id: client.to_owned(),
            service_key: record.service.clone(),
            region: record.region.clone(),
            // A payment record goes to the accounting (HKR) procedure, if there is one.
            procedure_id,
            payload: serde_json::json!({
                "text": text.as_ref().map(ClerkText::as_str),
                "zahlung": zahlung,
            }),
            attachments,
            message_id,
            message_type: kind.message_type(&record.delivery.message_type),
            idempotency,
            received_at: self.clock.now(),
            authentication: None,
            sealed: None,
            follow_up: Some(FollowUpOf {
                parent_id: parent,
                kind,
                refers_to,
            }),
            reply_channel: None,
        };
        match self.store.insert_application(&new).await {
            Ok(Inserted::Created(_)) => {
                tracing::info!(application_id = %parent, message_id = %message_id, kind = kind.as_str(), "follow-up message accepted");
                self.wake.wake();
                Ok(Sent {
                    id,
                    message_id,
                    kind,
                    replayed: false,
                })
            }
            // The same request at the same time: the one that was stored.
            Ok(Inserted::Replayed(earlier)) => self.sent_before(earlier.id).await,
            Ok(Inserted::KeyConflict) => Err(ConversationError::KeyReused),
            // Another request stored the same kind at the same moment.
            Ok(Inserted::AlreadySent) => Err(ConversationError::Refused(match kind {
                FollowUpKind::Zahlung => Refusal::PaymentReported,
                _ => Refusal::AlreadyObjected,
            })),
            Ok(Inserted::UploadTaken(index)) => {
                Err(ConversationError::Invalid(vec![FieldError::new(
                    format!("attachments[{index}].upload"),
                    "dieser Upload gehört bereits zu einem anderen Antrag",
                )]))
            }
            Ok(_) => Err(ConversationError::NotStored(StoreError::Corrupt(
                "the follow-up message was not stored".into(),
            ))),
            Err(e) => Err(ConversationError::NotStored(e)),
        }
    }

    /// The follow-up message stored for an earlier request with the same key.
    async fn sent_before(&self, id: Uuid) -> Result<Sent, ConversationError> {
        match self.store.application(id).await {
            Ok(Some(record)) => match &record.follow_up {
                Some(of) => Ok(Sent {
                    id,
                    message_id: record.delivery.message_id,
                    kind: of.kind,
                    replayed: true,
                }),
                None => Err(ConversationError::KeyReused),
            },
            Ok(None) => Err(ConversationError::NotStored(StoreError::Corrupt(format!(
                "the follow-up message {id} of an idempotency key is gone"
            )))),
            Err(e) => Err(ConversationError::StoreUnreachable(e)),
        }
    }

    async fn find_uploads(
        &self,
        attachments: &[crate::intake::AttachmentIn],
    ) -> Result<Vec<UploadInfo>, ConversationError> {
        let mut found = Vec::new();
        for id in attachments
            .iter()
            .filter_map(crate::intake::AttachmentIn::upload_id)
        {
            match self.store.upload(id).await {
                Ok(Some(upload)) => found.push(upload),
                Ok(None) => {}
                Err(e) => return Err(ConversationError::StoreUnreachable(e)),
            }
        }
        Ok(found)
    }
}
