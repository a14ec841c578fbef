//! Accepting an application: parse the request into domain values, check every field
//! at once, route it to the responsible procedure, and store it durably — with its
//! outbox entry and idempotency key in one transaction — before anyone is told "202".

mod applicant;
mod attachments;
mod receipt;

use std::sync::Arc;

use kopplung_forms::{FieldError, FormDefinition};
use openssl::sha::sha256;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

pub use applicant::IdentityVerifier;
pub use attachments::{content_matches, valid_filename};

use crate::identity::{self, Authentication, Refusal, Requirement, TrustLevel};
use crate::store::{
    IdempotencyKey, Inserted, IntakeStore, NewApplication, SealedAhead, StoreError, UploadInfo,
};
use crate::{Ars, Clock, ServiceKey, Wake};

/// What a service asks and sends, from the mappings in force.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    pub form: &'a FormDefinition,
    /// The message type of its XÖV message.
    pub message_type: &'a str,
    /// The identification it asks of the applicant (`trust_level`, `anonymous`).
    pub requirement: Requirement,
}

/// One snapshot of the services on offer: a request is checked against one version of
/// the mappings, never half old, half new.
pub trait ServiceSnapshot: Send + Sync {
    fn offer(&self, service: &ServiceKey) -> Option<Offer<'_>>;
}

/// The services the hub offers (reloaded as a whole).
pub trait ServiceCatalog: Send + Sync {
    fn snapshot(&self) -> Box<dyn ServiceSnapshot>;
}

/// Zuständigkeit: which procedure receives a service's applications from a region.
pub trait Routes: Send + Sync {
    fn resolve(&self, service: &ServiceKey, region: &Ars) -> Option<String>;
}

/// The municipalities the hub knows.
pub trait Municipalities: Send + Sync {
    fn knows(&self, region: &Ars) -> bool;
}

/// Renders, checks and seals an application's message before it is stored, so that
/// intake's one durable write holds it ready for delivery (see [`SealedAhead`]).
#[async_trait::async_trait]
pub trait SealAhead: Send + Sync {
    /// The sealed message, or `None`: the outbox prepares it as before (when sealing
    /// now would hold the answer up, or cannot succeed; a mapping that fails is then
    /// recorded by the outbox, after the application is safely stored).
    async fn seal(&self, new: &NewApplication) -> Option<SealedAhead>;
}

/// A submission as it arrived: who sent it, their idempotency key, and the body.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The authenticated client.
    pub client: &'a str,
    /// The `Idempotency-Key`, already checked to be plain.
    pub idempotency_key: Option<&'a str>,
    /// The highest trust level the client may assert on its own (its `asserts_up_to`);
    /// none: only an identity provider's assertion identifies the applicant.
    pub asserts_up_to: Option<TrustLevel>,
    /// The JSON body.
    pub body: &'a [u8],
    /// The id the application takes, if the client chose it before (a FIT-Connect
    /// submission's id, announced before its content came); a fresh one otherwise.
    pub id: Option<Uuid>,
    /// The reply channel a FIT-Connect sender named (JSON), kept with the application.
    pub reply_channel: Option<&'a str>,
}

/// An application the hub holds: its id and receipt number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub id: Uuid,
    pub receipt: String,
    /// Whether this is the answer to an earlier request with the same idempotency key.
    pub replayed: bool,
}

/// What became of a submission, and the service it named if that is one of ours (for
/// the metrics' labels, whatever the outcome).
#[derive(Debug)]
pub struct IntakeOutcome {
    pub service: Option<ServiceKey>,
    pub result: Result<Admitted, IntakeError>,
}

/// Why an application was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The body is no application (JSON, unknown fields); the parser's message.
    #[error("the body is not a valid application: {0}")]
    Malformed(String),
    /// Fields are invalid: every problem at once.
    #[error("{} invalid fields", .0.len())]
    Invalid(Vec<FieldError>),
    /// No authority is responsible for the service in the region.
    #[error("no route for service {service} in region {region}")]
    NoRoute { service: ServiceKey, region: Ars },
    #[error("attachments[{index}] is larger than {max_bytes} bytes")]
    AttachmentTooLarge { index: usize, max_bytes: usize },
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was used with a different request")]
    KeyReused,
    /// The store could not be read; nothing happened.
    #[error("the store is not reachable: {0}")]
    StoreUnreachable(StoreError),
    /// Storing failed; nothing was kept, the client may retry.
    #[error("the application could not be stored: {0}")]
    NotStored(StoreError),
    /// The applicant's identification is missing, not proven, or not enough for the
    /// service: nothing was stored.
    #[error("identification refused: {0}")]
    Refused(Refusal),
    /// Every receipt number drawn was taken.
    #[error("no free receipt number")]
    NoFreeReceipt,
    /// The store answered what it must not.
    #[error("the store gave an impossible answer")]
    Internal,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntakeRequest {
    service: String,
    region: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
    /// `{"authentication": …}`, read by [`applicant::parse`] so that a bad block is an
    /// identification's refusal (422), not a malformed body.
    #[serde(default)]
    applicant: Option<Value>,
}

/// An attachment: either inside the request (`filename`, `media_type`,
/// `content_base64`), or uploaded before (`upload`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentIn {
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    content_base64: Option<String>,
    #[serde(default)]
    upload: Option<String>,
    /// The form's attachment slot it fills (`[[attachments.slot]]`), if any.
    #[serde(default)]
    slot: Option<String>,
}

impl AttachmentIn {
    /// The upload it names, if that is an id.
    pub fn upload_id(&self) -> Option<Uuid> {
        self.upload
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
    }
}

/// Checks attachments against a form's rules as intake does: for the documents of a
/// follow-up message too.
pub use attachments::check as check_attachments;

/// The intake service.
pub struct Intake {
    pub store: Arc<dyn IntakeStore>,
    pub catalog: Arc<dyn ServiceCatalog>,
    pub routes: Arc<dyn Routes>,
    pub municipalities: Arc<dyn Municipalities>,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<dyn Wake>,
    /// Verifies identity providers' assertions.
    pub identity: Arc<dyn IdentityVerifier>,
    /// Seals messages before they are stored; none: the outbox does it all.
    pub seal_ahead: Option<Arc<dyn SealAhead>>,
}

/// Draws of a receipt number before intake gives up (each collision is 1 in 32^8).
const RECEIPT_DRAWS: usize = 5;

impl Intake {
    /// Accepts one application: checked, routed and stored, or why not.
    pub async fn accept(&self, submission: Submission<'_>) -> IntakeOutcome {
        let mut service = None;
        let result = self.admit(submission, &mut service).await;
        IntakeOutcome { service, result }
    }

    async fn admit(
        &self,
        submission: Submission<'_>,
        service: &mut Option<ServiceKey>,
    ) -> Result<Admitted, IntakeError> {
        let idempotency = submission.idempotency_key.map(|key| IdempotencyKey {
            key: key.to_owned(),
            request_sha256: hex::encode(sha256(submission.body)),
        });
        let mut request: IntakeRequest = serde_json::from_slice(submission.body)
            .map_err(|e| IntakeError::Malformed(e.to_string()))?;
        // One snapshot of the mappings for the whole request.
        let snapshot = self.catalog.snapshot();
        let key = ServiceKey::parse(&request.service).ok();
        *service = key.clone().filter(|key| snapshot.offer(key).is_some());
        // A repeated request has the same body, so it parses as the first one did.
        if let Some(idempotency) = &idempotency {
            match self
                .store
                .idempotent_answer(submission.client, idempotency)
                .await
            {
                Ok(Some(answer)) => return admitted(answer),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "reading idempotency keys failed");
                    return Err(IntakeError::StoreUnreachable(e));
                }
            }
        }
        let uploads = self.find_uploads(&request).await?;
        // A malformed key and an unknown one are told apart: the first is the client's
        // mistake in the form of the request (the API document states it), the second a
        // question of the deployment's catalogue.
        let Some(key) = key else {
            return Err(IntakeError::Invalid(vec![FieldError::new(
                "service",
                "muss ein 14-stelliger Leistungsschlüssel (LeiKa) sein",
            )]));
        };
        let Some(offer) = snapshot.offer(&key) else {
            return Err(IntakeError::Invalid(vec![FieldError::new(
                "service",
                "unbekannte Leistung",
            )]));
        };
        let applicant = request.applicant.take();
        let checked = Checked {
            id: submission.id,
            reply_channel: submission.reply_channel.map(str::to_owned),
            client: submission.client,
            service: key,
            offer,
            uploads: &uploads,
        };
        let mut new = self.validate(&checked, request, idempotency)?;
        // Who applied, once the request is complete and routable (checked offline, and
        // before an identity provider's keys may need fetching); a refusal stores nothing.
        new.authentication = self
            .identify(&submission, offer.requirement, applicant.as_ref())
            .await
            .map_err(IntakeError::Refused)?;
        new.sealed = self.seal_ahead(&new).await;
        for _ in 0..RECEIPT_DRAWS {
            match self.store.insert_application(&new).await {
                Ok(Inserted::ReceiptTaken) => {
                    // The receipt number is inside the message: sealed anew.
                    new.receipt = receipt::generate();
                    new.sealed = self.seal_ahead(&new).await;
                }
                Ok(Inserted::UploadTaken(index)) => {
                    return Err(IntakeError::Invalid(vec![FieldError::new(
                        format!("attachments[{index}].upload"),
                        "dieser Upload gehört bereits zu einem anderen Antrag",
                    )]));
                }
                Ok(answer) => {
                    if let Inserted::Created(accepted) = &answer {
                        tracing::info!(application_id = %accepted.id, service = %new.service_key, procedure = %new.procedure_id, "application accepted");
                        self.wake.wake();
                    }
                    return admitted(answer);
                }
                Err(e) => {
                    tracing::error!(error = %e, "storing an application failed");
                    return Err(IntakeError::NotStored(e));
                }
            }
        }
        Err(IntakeError::NoFreeReceipt)
    }

    async fn seal_ahead(&self, new: &NewApplication) -> Option<SealedAhead> {
        match &self.seal_ahead {
            Some(sealer) => sealer.seal(new).await,
            None => None,
        }
    }

    /// The applicant's verified identification (none: anonymous), if it meets the
    /// service's requirement.
    async fn identify(
        &self,
        submission: &Submission<'_>,
        requirement: Requirement,
        applicant: Option<&Value>,
    ) -> Result<Option<Authentication>, Refusal> {
        let claimed = applicant::parse(applicant)?;
        let vouching = applicant::Vouching {
            client: submission.client,
            asserts_up_to: submission.asserts_up_to,
            now: self.clock.now(),
        };
        let authentication = applicant::identify(claimed, vouching, self.identity.as_ref()).await?;
        identity::admit(requirement, authentication.as_ref())?;
        Ok(authentication)
    }

    /// The uploads the request names, as the store has them (absent ones left out).
    async fn find_uploads(&self, request: &IntakeRequest) -> Result<Vec<UploadInfo>, IntakeError> {
        let mut found = Vec::new();
        for attachment in &request.attachments {
            let Some(id) = attachment
                .upload
                .as_deref()
                .and_then(|id| Uuid::parse_str(id).ok())
            else {
                continue;
            };
            match self.store.upload(id).await {
                Ok(Some(upload)) => found.push(upload),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "reading an upload failed");
                    return Err(IntakeError::StoreUnreachable(e));
                }
            }
        }
        Ok(found)
    }

    /// Checks everything before anything is stored; collects all field errors at once.
    fn validate(
        &self,
        checked: &Checked<'_>,
        request: IntakeRequest,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<NewApplication, IntakeError> {
        let Ok(region) = Ars::parse(&request.region) else {
            return Err(IntakeError::Invalid(vec![FieldError::new(
                "region",
                "muss ein 12-stelliger Regionalschlüssel (ARS) sein",
            )]));
        };
        if !self.municipalities.knows(&region) {
            return Err(IntakeError::Invalid(vec![FieldError::new(
                "region",
                "unbekannte Gemeinde",
            )]));
        }
        let Some(procedure) = self.routes.resolve(&checked.service, &region) else {
            return Err(IntakeError::NoRoute {
                service: checked.service.clone(),
                region,
            });
        };
        let mut errors = Vec::new();
        let today = kopplung_forms::german::today(self.clock.now());
        let data = match checked.offer.form.validate_submitted(&request.data, today) {
            Ok(data) => Some(data),
            Err(field_errors) => {
                errors.extend(field_errors.into_iter().map(|e| FieldError {
                    field: format!("data.{}", e.field),
                    ..e
                }));
                None
            }
        };
        // The slots' conditions look at the validated data, or, where it has errors, at
        // what was sent: every problem is reported at once.
        let attachments = attachments::check(
            checked.offer.form,
            data.as_ref().unwrap_or(&request.data),
            checked.client,
            checked.uploads,
            request.attachments,
            &mut errors,
        )?;
        let (Some(data), true) = (data, errors.is_empty()) else {
            return Err(IntakeError::Invalid(errors));
        };
        // Time-ordered ids (UUIDv7, RFC 9562): the store's indexes on them grow at the
        // end instead of at random pages, so a commit of many applications writes few
        // pages.
        Ok(NewApplication {
            id: checked.id.unwrap_or_else(Uuid::now_v7),
            receipt: receipt::generate(),
            client_id: checked.client.to_owned(),
            service_key: checked.service.to_string(),
            region: region.to_string(),
            procedure_id: procedure,
            payload: data,
            attachments,
            message_id: Uuid::now_v7(),
            message_type: checked.offer.message_type.to_owned(),
            idempotency,
            received_at: self.clock.now(),
            // Set once the applicant's identification is verified.
            authentication: None,
            // Set once everything is checked.
            sealed: None,
            follow_up: None,
            reply_channel: checked.reply_channel.clone(),
        })
    }
}

/// What is known of a request once its service is one of ours.
struct Checked<'a> {
    id: Option<Uuid>,
    reply_channel: Option<String>,
    client: &'a str,
    service: ServiceKey,
    offer: Offer<'a>,
    uploads: &'a [UploadInfo],
}

/// The answer for a stored (or earlier stored) application.
fn admitted(answer: Inserted) -> Result<Admitted, IntakeError> {
    match answer {
        Inserted::Created(accepted) => Ok(Admitted {
            id: accepted.id,
            receipt: accepted.receipt,
            replayed: false,
        }),
        Inserted::Replayed(accepted) => Ok(Admitted {
            id: accepted.id,
            receipt: accepted.receipt,
            replayed: true,
        }),
        Inserted::KeyConflict => Err(IntakeError::KeyReused),
        // An application is no follow-up: the store never answers so for one.
        Inserted::ReceiptTaken | Inserted::UploadTaken(_) | Inserted::AlreadySent => {
            Err(IntakeError::Internal)
        }
    }
}

#[cfg(test)]
mod tests;
