//! FIT-Connect's Submission API as a second intake: an online service (a sender)
//! announces a submission to a destination, uploads its encrypted attachments, then
//! sends the encrypted metadata and data. The hub is the destination's key holder on
//! behalf of the procedure behind it: it decrypts, checks the metadata against
//! FIT-Connect's schema and the hashes, and hands the content to [`Intake`] as one
//! application — routed, mapped, sealed and delivered like any other.
//!
//! Nothing here knows HTTP: the edge maps [`SubmissionError`] to FIT-Connect's problem
//! types (`router/src/fitconnect/`).

mod collect;
mod metadata;
mod submission;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use collect::{Collected, Collections, Listed, attachment_id};
pub use metadata::{METADATA_SCHEMA_URI, Metadata, MetadataSchema};
pub use submission::{Announced, MAX_METADATA_BYTES, Submissions, Submitted};

use crate::intake::IntakeError;
use crate::store::StoreError;
use crate::{Ars, ServiceKey};

#[cfg(test)]
mod tests;

/// How FIT-Connect names a LeiKa service: `urn:de:fim:leika:leistung:<key>`.
pub const LEIKA_URN_PREFIX: &str = "urn:de:fim:leika:leistung:";

/// The service a FIT-Connect `serviceType.identifier` names: the LeiKa URN or the bare
/// 14-digit key.
pub fn service_of(identifier: &str) -> Option<ServiceKey> {
    let key = identifier
        .strip_prefix(LEIKA_URN_PREFIX)
        .unwrap_or(identifier);
    ServiceKey::parse(key).ok()
}

/// The URN of a service, as FIT-Connect writes it.
pub fn urn_of(service: &ServiceKey) -> String {
    urn_of_key(service.as_ref())
}

/// The URN of a service key as stored.
pub fn urn_of_key(key: &str) -> String {
    format!("{LEIKA_URN_PREFIX}{key}")
}

/// The case of a submission: FIT-Connect's `caseId`, derived from the submission's id
/// (the application's) so that neither needs a table: the id with a fixed mask, which
/// leaves its version and variant bits as they are, and undoes itself.
pub fn case_of(submission: Uuid) -> Uuid {
    Uuid::from_u128(submission.as_u128() ^ CASE_MASK)
}

/// The submission of a case (see [`case_of`]).
pub fn submission_of(case: Uuid) -> Uuid {
    Uuid::from_u128(case.as_u128() ^ CASE_MASK)
}

/// Random bits, zero where a UUID keeps its version (bits 76–79) and variant (62–63).
const CASE_MASK: u128 = 0x6f1d_2b1e_8a57_0c1e_3d0b_3f6e_55c2_a7e4;

/// A FIT-Connect destination as the routing table in force has it.
#[derive(Debug, Clone)]
pub struct Destination {
    pub id: Uuid,
    /// The procedure behind it.
    pub procedure: String,
    /// The services routed to that procedure.
    pub services: Vec<ServiceKey>,
}

/// The destinations in force, their keys and the routes (one snapshot per request).
#[async_trait::async_trait]
pub trait Destinations: Send + Sync {
    fn destination(&self, id: Uuid) -> Option<Destination>;
    /// Decrypts a compact JWE a sender encrypted for destination `id`'s key, its
    /// content at most `max_bytes`; `Err` says why not (no personal data). Off the
    /// request's thread: inflating and decrypting megabytes takes time.
    async fn decrypt(&self, id: Uuid, jwe: String, max_bytes: usize) -> Result<Vec<u8>, String>;
    /// The procedure responsible for `service` in `region`.
    fn responsible(&self, service: &ServiceKey, region: &Ars) -> Option<String>;
    /// The destination of `procedure`, if it is one.
    fn destination_of(&self, procedure: &str) -> Option<Uuid>;
    /// The destinations whose procedure collects as a FIT-Connect subscriber.
    fn subscribed(&self) -> Vec<Destination>;
    /// Encrypts `content` for the subscriber of destination `id` (a compact JWE).
    fn encrypt_for_subscriber(
        &self,
        id: Uuid,
        content: &[u8],
        content_type: &str,
    ) -> Result<String, String>;
}

/// Which destinations a client's token reaches (its scopes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every destination (`send:region:DE`).
    All,
    Only(BTreeSet<Uuid>),
}

impl Reach {
    pub fn includes(&self, destination: Uuid) -> bool {
        match self {
            Reach::All => true,
            Reach::Only(ids) => ids.contains(&destination),
        }
    }
}

/// An announced submission, kept until its content arrives (as an upload of the
/// sender, so that it survives restarts and expires like an abandoned upload).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Announcement {
    pub destination: Uuid,
    pub procedure: String,
    pub service: String,
    pub attachments: Vec<Uuid>,
}

/// Why a FIT-Connect request was refused; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    #[error("the request is malformed: {0}")]
    Malformed(String),
    #[error("destination {0} does not exist")]
    DestinationNotFound(Uuid),
    /// The client's token does not reach the destination.
    #[error("the client may not use destination {0}")]
    NotInScope(Uuid),
    #[error("the destination does not accept service {0}")]
    ServiceNotAccepted(String),
    #[error("submission {0} does not exist")]
    SubmissionNotFound(Uuid),
    #[error("attachment {0} was not announced")]
    AttachmentNotAnnounced(Uuid),
    /// More attachments announced than the service takes.
    #[error("{announced} attachments announced; the service takes at most {max}")]
    TooManyAttachments { announced: usize, max: usize },
    /// A subscriber asked for an attachment the submission does not have.
    #[error("the submission has no attachment {0}")]
    AttachmentNotFound(Uuid),
    #[error("attachment {0} was announced but not uploaded")]
    AttachmentMissing(Uuid),
    /// A JWE could not be decrypted with the destination's key.
    #[error("{what} cannot be decrypted: {reason}")]
    Undecryptable { what: String, reason: String },
    #[error("the metadata violates FIT-Connect's metadata schema: {}", .0.join("; "))]
    MetadataInvalid(Vec<String>),
    #[error("the metadata's attachments differ from the announced ones")]
    AttachmentsDiffer,
    #[error("the data's hash differs from the metadata's")]
    DataHash,
    #[error("the hash of attachment {0} differs from the metadata's")]
    AttachmentHash(Uuid),
    /// The data is no JSON document of the service's schema.
    #[error("the data is invalid: {0}")]
    DataMalformed(String),
    /// The region's responsible procedure is not the destination's.
    #[error("the destination is not responsible for service {service} in region {region}")]
    NotResponsible { service: String, region: String },
    /// What intake refused (field errors, identification, storage).
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error("the store is not reachable: {0}")]
    Store(#[from] StoreError),
}
