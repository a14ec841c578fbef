//! The sender's three steps: announce, upload attachments, submit.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::metadata::sha512_hex;
use super::{
    Announcement, Destinations, Metadata, MetadataSchema, Reach, SubmissionError, case_of,
    service_of,
};
use crate::intake::{Intake, Submission};
use crate::store::{FRAGMENT_BYTES, IntakeStore, NewUpload, fragment_count};
use crate::{Ars, Clock};

/// The media type of an announcement kept as an upload.
const ANNOUNCEMENT: &str = "application/vnd.kopplung.fitconnect-submission+json";
/// The media type of an encrypted attachment kept as an upload.
const JWE: &str = "application/jose";

/// The FIT-Connect sender's submission service, over one snapshot of the destinations.
pub struct Submissions<'a> {
    pub store: &'a dyn IntakeStore,
    pub intake: &'a Intake,
    pub clock: &'a dyn Clock,
    pub destinations: &'a dyn Destinations,
    pub schema: &'a MetadataSchema,
    /// The largest data document (decrypted) the hub takes: as large as an
    /// application at its own API (`[limits] max_body_bytes`). Attachments are bound
    /// by the service's form, the metadata by [`MAX_METADATA_BYTES`].
    pub max_data_bytes: usize,
}

/// The largest metadata document (decrypted): it names hashes and ids, nothing large.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// A submission announced: its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub submission: Uuid,
    pub case: Uuid,
    pub destination: Uuid,
    pub attachments: Vec<Uuid>,
}

/// A submission whose content the hub accepted as an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub submission: Uuid,
    pub case: Uuid,
    pub destination: Uuid,
    /// The application's receipt number.
    pub receipt: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnnounceRequest {
    destination_id: Uuid,
    #[serde(default)]
    announced_attachments: Vec<Uuid>,
    service_type: ServiceType,
}

#[derive(Deserialize)]
struct ServiceType {
    identifier: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubmitRequest {
    encrypted_metadata: String,
    encrypted_data: String,
}

/// The data document a sender submits: the service's JSON Schema describes it.
#[derive(Deserialize)]
struct DataDocument {
    region: String,
    data: Value,
}

impl Submissions<'_> {
    /// `POST /submissions`: checks destination, scope and service, and keeps the
    /// announcement until the content comes.
    pub async fn announce(
        &self,
        client: &str,
        reach: &Reach,
        body: &[u8],
    ) -> Result<Announced, SubmissionError> {
        let request: AnnounceRequest =
            serde_json::from_slice(body).map_err(|e| SubmissionError::Malformed(e.to_string()))?;
        let id = request.destination_id;
        let destination = self
            .destinations
            .destination(id)
            .ok_or(SubmissionError::DestinationNotFound(id))?;
        if !reach.includes(id) {
            return Err(SubmissionError::NotInScope(id));
        }
        let identifier = request.service_type.identifier;
        let service = service_of(&identifier)
            .filter(|service| destination.services.contains(service))
            .ok_or(SubmissionError::ServiceNotAccepted(identifier))?;
        // FIT-Connect's Python SDK announces one id once per attachment: the same id
        // twice is one attachment.
        let mut seen = std::collections::BTreeSet::new();
        let attachments: Vec<Uuid> = request
            .announced_attachments
            .into_iter()
            .filter(|id| seen.insert(*id))
            .collect();
        let (max, _) = self.attachment_rules(&service);
        if attachments.len() > max {
            return Err(SubmissionError::TooManyAttachments {
                announced: attachments.len(),
                max,
            });
        }
        let announcement = Announcement {
            destination: id,
            procedure: destination.procedure,
            service: service.to_string(),
            attachments: attachments.clone(),
        };
        let submission = Uuid::now_v7();
        let text = serde_json::to_vec(&announcement)
            .map_err(|e| SubmissionError::Malformed(e.to_string()))?;
        self.keep(submission, client, ANNOUNCEMENT, &text).await?;
        tracing::info!(%submission, destination = %id, %service, "FIT-Connect submission announced");
        Ok(Announced {
            submission,
            case: case_of(submission),
            destination: id,
            attachments,
        })
    }

    /// `PUT /submissions/{id}/attachments/{attachmentId}`: keeps the encrypted
    /// attachment once it decrypts with the destination's key (again: replaced).
    pub async fn attach(
        &self,
        client: &str,
        reach: &Reach,
        (submission, attachment): (Uuid, Uuid),
        jwe: &[u8],
    ) -> Result<(), SubmissionError> {
        let announcement = self.announcement(client, reach, submission).await?;
        if !announcement.attachments.contains(&attachment) {
            return Err(SubmissionError::AttachmentNotAnnounced(attachment));
        }
        let text = String::from_utf8_lossy(jwe).into_owned();
        let (_, max_bytes) = self.attachment_rules_of(&announcement.service);
        self.destinations
            .decrypt(announcement.destination, text, max_bytes)
            .await
            .map_err(|reason| SubmissionError::Undecryptable {
                what: format!("attachment {attachment}"),
                reason,
            })?;
        let id = attachment_upload(submission, attachment);
        self.store.discard_upload(id).await?;
        self.keep(id, client, JWE, jwe).await
    }

    /// `PUT /submissions/{id}`: decrypts metadata and data, checks the metadata against
    /// the schema and every hash, and hands the content to intake as one application
    /// whose id is the submission's. A repeated submit answers as the first.
    pub async fn submit(
        &self,
        client: &str,
        reach: &Reach,
        submission: Uuid,
        body: &[u8],
    ) -> Result<Submitted, SubmissionError> {
        let announcement = match self.announcement(client, reach, submission).await {
            Err(SubmissionError::SubmissionNotFound(_)) => {
                // Submitted before: the application holds it, the announcement is gone.
                return self.submitted_before(client, submission).await;
            }
            other => other?,
        };
        let request: SubmitRequest =
            serde_json::from_slice(body).map_err(|e| SubmissionError::Malformed(e.to_string()))?;
        let destination = announcement.destination;
        let open = |what: String, jwe: String, max_bytes: usize| async move {
            self.destinations
                .decrypt(destination, jwe, max_bytes)
                .await
                .map_err(|reason| SubmissionError::Undecryptable { what, reason })
        };
        let metadata = open(
            "the metadata".into(),
            request.encrypted_metadata,
            MAX_METADATA_BYTES,
        )
        .await?;
        let metadata = Metadata::read(&metadata, self.schema)?;
        let data = open(
            "the data".into(),
            request.encrypted_data,
            self.max_data_bytes,
        )
        .await?;
        let described = metadata.data()?;
        if sha512_hex(&data) != described.hash.content {
            return Err(SubmissionError::DataHash);
        }
        // Exactly the announced ones, each once.
        let listed: std::collections::BTreeSet<Uuid> = metadata
            .content_structure
            .attachments
            .iter()
            .map(|a| a.attachment_id)
            .collect();
        let announced: std::collections::BTreeSet<Uuid> =
            announcement.attachments.iter().copied().collect();
        if listed != announced || listed.len() != metadata.content_structure.attachments.len() {
            return Err(SubmissionError::AttachmentsDiffer);
        }
        let (_, max_bytes) = self.attachment_rules_of(&announcement.service);
        let mut attachments = Vec::new();
        for (index, info) in metadata.content_structure.attachments.iter().enumerate() {
            let id = info.attachment_id;
            let jwe = self
                .read(attachment_upload(submission, id))
                .await?
                .ok_or(SubmissionError::AttachmentMissing(id))?;
            let content = open(
                format!("attachment {id}"),
                String::from_utf8_lossy(&jwe).into_owned(),
                max_bytes,
            )
            .await?;
            if sha512_hex(&content) != info.hash.content {
                return Err(SubmissionError::AttachmentHash(id));
            }
            let filename = info
                .filename
                .clone()
                .unwrap_or_else(|| format!("anlage-{}{}", index + 1, extension(&info.mime_type)));
            attachments.push(json!({
                "filename": filename,
                "media_type": info.mime_type,
                "content_base64": STANDARD.encode(content),
            }));
        }
        let document: DataDocument = serde_json::from_slice(&data)
            .map_err(|e| SubmissionError::DataMalformed(e.to_string()))?;
        let service = service_of(&announcement.service)
            .ok_or_else(|| SubmissionError::ServiceNotAccepted(announcement.service.clone()))?;
        if let Ok(region) = Ars::parse(&document.region)
            && self.destinations.responsible(&service, &region).as_deref()
                != Some(announcement.procedure.as_str())
        {
            return Err(SubmissionError::NotResponsible {
                service: service.to_string(),
                region: region.to_string(),
            });
        }
        let mut data = document.data;
        if let Some(payment) = booked_payment(metadata.payment_information.as_ref()) {
            self.fill_payment(&service, &mut data, payment);
        }
        let mut application = json!({
            "service": announcement.service,
            "region": document.region,
            "data": data,
            "attachments": attachments,
        });
        if let Some(report) = identification_report(metadata.authentication_information.as_ref()) {
            // Verified like any identity provider's assertion: the Nutzerkonto that
            // issued it must be one of the hub's identity providers.
            application["applicant"] = json!({"authentication": {"assertion": report}});
        }
        let body = serde_json::to_vec(&application)
            .map_err(|e| SubmissionError::Malformed(e.to_string()))?;
        let key = submission.to_string();
        let reply_channel = metadata
            .reply_channel
            .as_ref()
            .map(|channel| channel.to_string());
        let admitted = self
            .intake
            .accept(Submission {
                client,
                idempotency_key: Some(&key),
                asserts_up_to: None,
                body: &body,
                id: Some(submission),
                reply_channel: reply_channel.as_deref(),
            })
            .await
            .result?;
        // The application holds everything now: the kept parts go (or expire later).
        for id in std::iter::once(submission).chain(
            announcement
                .attachments
                .iter()
                .map(|a| attachment_upload(submission, *a)),
        ) {
            if let Err(e) = self.store.discard_upload(id).await {
                tracing::warn!(upload_id = %id, error = %e, "discarding a FIT-Connect part failed; the cleanup removes it later");
            }
        }
        tracing::info!(%submission, application_id = %admitted.id, "FIT-Connect submission accepted");
        Ok(Submitted {
            submission,
            case: case_of(submission),
            destination,
            receipt: admitted.receipt,
        })
    }

    /// The answer to a submission this client made before (a repeated `PUT`).
    async fn submitted_before(
        &self,
        client: &str,
        submission: Uuid,
    ) -> Result<Submitted, SubmissionError> {
        let application = self
            .store
            .application(submission)
            .await?
            .filter(|a| a.client_id == client && a.follow_up.is_none())
            .ok_or(SubmissionError::SubmissionNotFound(submission))?;
        let destination = self
            .destinations
            .destination_of(&application.delivery.procedure)
            .ok_or(SubmissionError::SubmissionNotFound(submission))?;
        Ok(Submitted {
            submission,
            case: case_of(submission),
            destination,
            receipt: application.receipt,
        })
    }

    /// How many attachments the service's form takes, and how large each may be.
    fn attachment_rules(&self, service: &crate::ServiceKey) -> (usize, usize) {
        let snapshot = self.intake.catalog.snapshot();
        snapshot.offer(service).map_or((0, 0), |offer| {
            (
                offer.form.attachments.max_count,
                offer.form.attachments.max_bytes,
            )
        })
    }

    /// [`Submissions::attachment_rules`] of a service key as stored.
    fn attachment_rules_of(&self, service: &str) -> (usize, usize) {
        service_of(service).map_or((0, 0), |key| self.attachment_rules(&key))
    }

    /// Puts a booked payment's reference where the service's form expects what the
    /// payment provider reported (its field `filled_by = "payment"`).
    fn fill_payment(&self, service: &crate::ServiceKey, data: &mut Value, reference: &str) {
        let snapshot = self.intake.catalog.snapshot();
        let Some(offer) = snapshot.offer(service) else {
            return;
        };
        let field = offer
            .form
            .fields
            .iter()
            .find(|f| f.filled_by.as_deref() == Some("payment"));
        if let (Some(field), Some(object)) = (field, data.as_object_mut()) {
            object.insert(field.name.clone(), json!({"referenz": reference}));
        }
    }

    /// The announcement of `submission`, if this client made it and may still reach
    /// its destination.
    async fn announcement(
        &self,
        client: &str,
        reach: &Reach,
        submission: Uuid,
    ) -> Result<Announcement, SubmissionError> {
        let not_found = SubmissionError::SubmissionNotFound(submission);
        let Some(info) = self.store.upload(submission).await? else {
            return Err(not_found);
        };
        if info.client_id != client || info.media_type != ANNOUNCEMENT {
            return Err(not_found);
        }
        let text = self.read(submission).await?.ok_or(not_found)?;
        let announcement: Announcement = serde_json::from_slice(&text)
            .map_err(|_| SubmissionError::SubmissionNotFound(submission))?;
        if !reach.includes(announcement.destination) {
            return Err(SubmissionError::NotInScope(announcement.destination));
        }
        Ok(announcement)
    }

    /// Keeps `content` as a complete upload of `client`.
    async fn keep(
        &self,
        id: Uuid,
        client: &str,
        media_type: &str,
        content: &[u8],
    ) -> Result<(), SubmissionError> {
        self.store
            .create_upload(&NewUpload {
                id,
                client_id: client.to_owned(),
                filename: format!("fitconnect-{id}"),
                media_type: media_type.to_owned(),
                created_at: self.clock.now(),
            })
            .await?;
        for (seq, chunk) in content.chunks(FRAGMENT_BYTES).enumerate() {
            self.store
                .append_upload_chunk(id, seq as u64, chunk)
                .await?;
        }
        self.store
            .complete_upload(id, content.len() as u64, &sha512_hex(content))
            .await?;
        Ok(())
    }

    /// A complete upload's content, if it exists.
    async fn read(&self, id: Uuid) -> Result<Option<Vec<u8>>, SubmissionError> {
        let Some(info) = self.store.upload(id).await? else {
            return Ok(None);
        };
        let Some((size, _)) = info.complete else {
            return Ok(None);
        };
        let mut content = Vec::new();
        for seq in 0..fragment_count(size) {
            match self.store.upload_chunk(id, seq).await? {
                Some(chunk) => content.extend_from_slice(&chunk),
                None if size == 0 => {}
                None => return Ok(None),
            }
        }
        Ok(Some(content))
    }
}

/// The reference of a payment FIT-Connect's `paymentInformation` reports as booked.
fn booked_payment(information: Option<&Value>) -> Option<&str> {
    let information = information?;
    (information.get("status").and_then(Value::as_str) == Some("BOOKED"))
        .then(|| {
            information
                .get("transactionReference")
                .and_then(Value::as_str)
        })
        .flatten()
}

/// The identification report among FIT-Connect's `authenticationInformation` (its
/// `content`, a signed token of the citizen's Nutzerkonto).
fn identification_report(information: Option<&Value>) -> Option<String> {
    information?
        .as_array()?
        .iter()
        .find(|entry| entry.get("type").and_then(Value::as_str) == Some("identificationReport"))?
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The upload that keeps attachment `attachment` of `submission` (senders choose
/// attachment ids; two submissions may use the same).
fn attachment_upload(submission: Uuid, attachment: Uuid) -> Uuid {
    let mut name = submission.as_bytes().to_vec();
    name.extend_from_slice(attachment.as_bytes());
    Uuid::new_v5(&submission, &name)
}

/// A file name extension for a media type the forms accept.
fn extension(media_type: &str) -> &'static str {
    match media_type {
        "application/pdf" => ".pdf",
        "image/jpeg" => ".jpg",
        "image/png" => ".png",
        "application/xml" | "text/xml" => ".xml",
        _ => "",
    }
}
