//! The subscriber's side: a procedure with `transport = "fitconnect"` collects its
//! messages as FIT-Connect submissions. The data is the checked XÖV message (the XML
//! the hub rendered), the metadata names its hash and every attachment's, and each part
//! is encrypted for the subscriber's own key at collection. The first collection of a
//! submission is its delivery.

use serde_json::{Value, json};
use uuid::Uuid;

use super::metadata::sha512_hex;
use super::{Destination, Destinations, METADATA_SCHEMA_URI, Reach, SubmissionError, case_of};
use crate::store::{IntakeStore, OutboxStore, PickupAck, PickupStore, fragment_count};

/// At most this many submissions are listed per destination at once.
const LIST_LIMIT: u32 = 500;

/// The subscriber's collection service, over one snapshot of the destinations.
pub struct Collections<'a> {
    pub pickups: &'a dyn PickupStore,
    pub outbox: &'a dyn OutboxStore,
    pub applications: &'a dyn IntakeStore,
    pub destinations: &'a dyn Destinations,
    /// Where the XÖV schema of a message type is published (`submissionSchema`).
    pub schema_uri: &'a (dyn Fn(&str) -> String + Sync),
}

/// A submission waiting for its subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub destination: Uuid,
    pub submission: Uuid,
    pub case: Uuid,
}

/// A submission as the subscriber collects it: every part encrypted for its key.
#[derive(Debug, Clone)]
pub struct Collected {
    pub destination: Uuid,
    pub submission: Uuid,
    pub case: Uuid,
    pub service: String,
    pub encrypted_metadata: String,
    pub encrypted_data: String,
    pub attachments: Vec<Uuid>,
}

impl Collections<'_> {
    /// The submissions waiting at the subscriber's destinations (or at `only`).
    pub async fn list(
        &self,
        reach: &Reach,
        only: Option<Uuid>,
    ) -> Result<Vec<Listed>, SubmissionError> {
        let mut listed = Vec::new();
        for destination in self.destinations.subscribed() {
            if !reach.includes(destination.id) || only.is_some_and(|id| id != destination.id) {
                continue;
            }
            for pickup in self
                .pickups
                .pickups(&destination.procedure, LIST_LIMIT)
                .await?
            {
                listed.push(Listed {
                    destination: destination.id,
                    submission: pickup.application_id,
                    case: case_of(pickup.application_id),
                });
            }
        }
        Ok(listed)
    }

    /// One submission, encrypted for the subscriber; collecting it delivers it.
    pub async fn fetch(
        &self,
        reach: &Reach,
        submission: Uuid,
    ) -> Result<Collected, SubmissionError> {
        let (destination, message_id) = self.addressed(reach, submission).await?;
        let not_found = || SubmissionError::SubmissionNotFound(submission);
        let (pickup, xml) = self
            .pickups
            .pickup(&destination.procedure, message_id)
            .await?
            .ok_or_else(not_found)?;
        let input = self.outbox.prepare_input(submission).await?;
        let attachments: Vec<Value> = input
            .attachments
            .iter()
            .enumerate()
            .map(|(position, attachment)| {
                json!({
                    "attachmentId": attachment_id(submission, position),
                    "hash": {"type": "sha512", "content": attachment.sha512},
                    "mimeType": attachment.media_type,
                    "filename": attachment.filename,
                    "purpose": "attachment",
                })
            })
            .collect();
        let mut metadata = json!({
            "$schema": METADATA_SCHEMA_URI,
            "publicServiceType": {"identifier": super::urn_of_key(&pickup.service)},
            "contentStructure": {
                "data": {
                    "hash": {"type": "sha512", "content": sha512_hex(&xml)},
                    "submissionSchema": {
                        "schemaUri": (self.schema_uri)(&pickup.message_type),
                        "mimeType": "application/xml",
                    },
                },
                "attachments": attachments,
            },
        });
        // The reply channel a FIT-Connect sender named, kept for the procedure.
        if let Some(channel) = input
            .reply_channel
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        {
            metadata["replyChannel"] = channel;
        }
        let metadata =
            serde_json::to_vec(&metadata).map_err(|e| SubmissionError::Malformed(e.to_string()))?;
        let encrypt = |content: &[u8], content_type: &str| {
            self.destinations
                .encrypt_for_subscriber(destination.id, content, content_type)
                .map_err(|reason| SubmissionError::Undecryptable {
                    what: "the submission".into(),
                    reason,
                })
        };
        let collected = Collected {
            destination: destination.id,
            submission,
            case: case_of(submission),
            service: pickup.service.clone(),
            encrypted_metadata: encrypt(&metadata, "application/json")?,
            encrypted_data: encrypt(&xml, "application/xml")?,
            attachments: (0..input.attachments.len())
                .map(|position| attachment_id(submission, position))
                .collect(),
        };
        let detail = format!(
            "collected by the FIT-Connect subscriber of destination {}",
            destination.id
        );
        match self
            .pickups
            .acknowledge_pickup(&destination.procedure, message_id, &detail)
            .await?
        {
            PickupAck::Acknowledged => {
                tracing::info!(%submission, procedure = %destination.procedure, "FIT-Connect submission collected");
            }
            PickupAck::AlreadyAcknowledged | PickupAck::Unknown => {}
        }
        Ok(collected)
    }

    /// One attachment of a submission, encrypted for the subscriber (its raw bytes).
    pub async fn attachment(
        &self,
        reach: &Reach,
        submission: Uuid,
        attachment: Uuid,
    ) -> Result<String, SubmissionError> {
        let (destination, message_id) = self.addressed(reach, submission).await?;
        let input = self.outbox.prepare_input(submission).await?;
        let Some((position, info)) = input
            .attachments
            .iter()
            .enumerate()
            .find(|(position, _)| attachment_id(submission, *position) == attachment)
        else {
            return Err(SubmissionError::AttachmentNotFound(attachment));
        };
        let mut content = Vec::new();
        for fragment in 0..fragment_count(info.size) {
            let part = self
                .pickups
                .attachment_fragment(
                    &destination.procedure,
                    message_id,
                    u32::try_from(position).unwrap_or(u32::MAX),
                    fragment,
                )
                .await?
                .ok_or(SubmissionError::AttachmentMissing(attachment))?;
            content.extend_from_slice(&part);
        }
        self.destinations
            .encrypt_for_subscriber(destination.id, &content, &info.media_type)
            .map_err(|reason| SubmissionError::Undecryptable {
                what: format!("attachment {attachment}"),
                reason,
            })
    }

    /// The subscribed destination and message of a submission the subscriber may see.
    async fn addressed(
        &self,
        reach: &Reach,
        submission: Uuid,
    ) -> Result<(Destination, Uuid), SubmissionError> {
        let not_found = || SubmissionError::SubmissionNotFound(submission);
        let application = self
            .applications
            .application(submission)
            .await?
            .ok_or_else(not_found)?;
        let destination = self
            .destinations
            .subscribed()
            .into_iter()
            .find(|d| d.procedure == application.delivery.procedure && reach.includes(d.id))
            .ok_or_else(not_found)?;
        Ok((destination, application.delivery.message_id))
    }
}

/// The id of attachment `position` of a submission: stable, derived from both.
pub fn attachment_id(submission: Uuid, position: usize) -> Uuid {
    Uuid::new_v5(&submission, format!("attachment-{position}").as_bytes())
}
