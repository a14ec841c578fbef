//! The prepare step: render the application through its service's mapping, check the
//! XML, and seal it for the receiving procedure with the keyring's certificates in
//! force. Pure work on the transformers.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use kopplung_core::Clock;
use kopplung_core::store::{Attachment, AttachmentContent, PrepareInput, WorkItem, fragment_count};
use kopplung_transformers::mapping::{
    Abruf, Anlage, AnlageArt, Antrag, Behoerde, MessageContext, Nachricht,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::Envelope;
use crate::authentifizierung::authentifizierung;
use crate::catalog::Catalog;
use crate::keyring::Keyring;

mod follow_up;

/// Why a message could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The mapping cannot produce a valid message: an engineer must look; no blind retries.
    #[error("{0}")]
    Invalid(String),
    /// Something an operator can fix (a certificate): try again later.
    #[error("{0}")]
    Blocked(String),
}

/// A prepared message and what preparing it cost, per stage.
#[derive(Debug)]
pub struct Prepared {
    /// The sealed message (the plain XML for a manual procedure).
    pub message: Vec<u8>,
    /// The XML exactly as it was signed and sealed: kept by the store for the admin
    /// view, since the hub cannot open the sealed message it made for the procedure.
    pub xml: String,
    /// Render, XML and XSD checks.
    pub transform: std::time::Duration,
    pub seal: std::time::Duration,
}

impl Prepared {
    /// Counts what each stage took (no seal stage for a manual procedure's plain XML).
    pub fn observe(&self, observer: &dyn crate::Observer) {
        observer.prepare_stage("transform", self.transform.as_secs_f64());
        if !self.seal.is_zero() {
            observer.prepare_stage("seal", self.seal.as_secs_f64());
        }
    }
}

/// Everything the prepare step needs, loaded and checked at start-up.
#[derive(Clone)]
pub struct Preparer {
    pub catalog: Arc<Catalog>,
    /// ARS -> municipality name.
    pub regions: Arc<BTreeMap<String, String>>,
    pub keyring: Arc<Keyring>,
    /// The hub as the author (`autor`) of every message.
    pub autor: Behoerde,
    /// Where procedures reach the hub: the claim-check links of attachments start here.
    pub public_url: String,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparer").finish_non_exhaustive()
    }
}

impl Preparer {
    /// The keys and certificates this preparer seals with.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// What the `prepared` history entry of a message says.
    pub fn prepared_detail(&self, procedure: &str, message_id: uuid::Uuid) -> String {
        match self.keyring.envelope(procedure) {
            Some(_) => format!("message {message_id} rendered, checked and sealed for {procedure}"),
            // Read in the hub's clerk inbox, or encrypted for a FIT-Connect subscriber
            // when it collects: never sealed ahead.
            None => format!(
                "message {message_id} rendered and checked for {procedure} (kept at the hub unsealed, for the clerk inbox or a FIT-Connect subscriber)"
            ),
        }
    }

    /// Encrypts one attachment fragment for `procedure` with its certificate in force:
    /// DER AuthEnvelopedData (`cms`) or a compact JWE (`jose`). Returns the content type
    /// and the bytes. Never unprotected: a procedure without an envelope gets none.
    pub fn seal_fragment(
        &self,
        procedure: &str,
        fragment: &[u8],
    ) -> Result<(&'static str, Vec<u8>), PrepareError> {
        let keys = self.keyring.keys();
        let recipient = keys.recipients.get(procedure).ok_or_else(|| {
            PrepareError::Blocked(format!("procedure {procedure} is not configured"))
        })?;
        let envelope = recipient.envelope.ok_or_else(|| {
            PrepareError::Blocked(format!("procedure {procedure} has no envelope profile"))
        })?;
        let certificate = keys
            .recipient_certificate(recipient, self.clock.as_ref())
            .map_err(|reason| PrepareError::Blocked(format!("certificate refused: {reason}")))?;
        match envelope {
            Envelope::Cms => kopplung_transformers::seal::encrypt(fragment, certificate)
                .map(|der| ("application/pkcs7-mime; smime-type=authEnveloped-data", der)),
            Envelope::Jose => keys
                .signer(self.clock.as_ref())
                .jose
                .seal_attachment(fragment, certificate)
                .map(|jwe| ("application/jose", jwe.into_bytes())),
        }
        .map_err(|e| PrepareError::Blocked(e.to_string()))
    }

    /// Where the procedure fetches attachment `position` instead of finding it inside
    /// the message, if it does: uploads (never loaded whole) and every attachment of the
    /// `jose` profile (separate JWEs, as FIT-Connect does) by claim check; a clerk of a
    /// manual procedure downloads an upload from the inbox as one file. Small
    /// attachments of the `cms` profile travel inside the signed content: `None`.
    fn claim_check(
        &self,
        (procedure, message_id): (&str, uuid::Uuid),
        (application, position): (uuid::Uuid, usize),
        attachment: &Attachment,
        (envelope, fitconnect): (Option<Envelope>, bool),
    ) -> Option<Abruf> {
        let n = position + 1;
        if fitconnect {
            // The subscriber collects each attachment as one of the submission.
            let id = kopplung_core::fitconnect::attachment_id(application, position);
            return Some(Abruf {
                adresse: format!(
                    "{}/fitconnect/v1/submissions/{application}/attachments/{id}",
                    self.public_url
                ),
                teile: 1,
                format: "FIT-Connect".to_owned(),
            });
        }
        match (&attachment.content, envelope) {
            (AttachmentContent::Inline(_), Some(Envelope::Cms) | None) => None,
            (_, Some(envelope)) => Some(Abruf {
                adresse: format!(
                    "{}/api/v1/procedures/{procedure}/messages/{message_id}/attachments/{n}",
                    self.public_url
                ),
                teile: fragment_count(attachment.size),
                format: match envelope {
                    Envelope::Cms => "CMS",
                    Envelope::Jose => "JWE",
                }
                .to_owned(),
            }),
            (AttachmentContent::Upload(_), None) => Some(Abruf {
                adresse: format!(
                    "{}/inbox/{procedure}/{message_id}/attachments/{n}",
                    self.public_url
                ),
                teile: 1,
                format: "Datei".to_owned(),
            }),
        }
    }

    /// The XÖV message of an application for `procedure`, rendered and checked (XML,
    /// schema), not sealed: what `prepare` seals, and what the admin console shows.
    pub fn render_message(
        &self,
        procedure: &str,
        message_id: uuid::Uuid,
        input: &PrepareInput,
    ) -> Result<String, PrepareError> {
        // One snapshot for the whole message: a reload never mixes old and new.
        let mappings = self.catalog.current();
        let mapping = mappings.get(&input.service_key).ok_or_else(|| {
            PrepareError::Invalid(format!("no mapping for service {}", input.service_key))
        })?;
        let keys = self.keyring.keys();
        let recipient = keys.recipients.get(procedure).ok_or_else(|| {
            PrepareError::Blocked(format!("procedure {procedure} is not configured"))
        })?;
        // A link the procedure cannot follow is no delivery: the message waits, and the
        // operator sees why.
        let claims: Vec<Option<Abruf>> = input
            .attachments
            .iter()
            .enumerate()
            .map(|(position, a)| {
                self.claim_check(
                    (procedure, message_id),
                    (input.id, position),
                    a,
                    (recipient.envelope, recipient.fitconnect_subscriber),
                )
            })
            .collect();
        if recipient.envelope.is_some()
            && !recipient.can_fetch
            && claims.iter().any(Option::is_some)
        {
            return Err(PrepareError::Blocked(format!(
                "procedure {procedure} has no API token (token_file or token_sha256 in its [[procedure]]) to fetch attachments by claim check"
            )));
        }
        let anlagen: Vec<Anlage> = input
            .attachments
            .iter()
            .zip(claims)
            .map(|(a, abruf)| Anlage {
                dateiname: a.filename.clone(),
                media_type: a.media_type.clone(),
                groesse: a.size,
                sha512: a.sha512.clone(),
                inhalt_base64: match (&a.content, &abruf) {
                    (AttachmentContent::Inline(content), None) => {
                        base64::engine::general_purpose::STANDARD.encode(content)
                    }
                    _ => String::new(),
                },
                abruf,
                art: AnlageArt::of(&mapping.form, a.slot.as_deref()),
            })
            .collect();
        let antrag = |id: String, antragsnummer: String, received: OffsetDateTime| Antrag {
            id,
            antragsnummer,
            eingangszeitpunkt: timestamp(received),
            leistung_schluessel: mapping.info.key.clone(),
            leistung_name: mapping.info.name.clone(),
            gebiet_ars: input.region.clone(),
            gebiet_name: self.regions.get(&input.region).cloned().unwrap_or_default(),
        };
        if let Some(of) = &input.follow_up {
            let context = follow_up::context(follow_up::Parts {
                mapping,
                message_id,
                of,
                leser: recipient.leser.clone(),
                autor: self.autor.clone(),
                antrag: antrag(
                    of.parent_id.to_string(),
                    of.parent_receipt.clone(),
                    of.parent_created_at,
                ),
                now: timestamp(self.clock.now()),
                received: timestamp(input.created_at),
                payload: &input.payload,
                anlagen,
            });
            return follow_up::render(mapping, &context);
        }
        let data = mapping.form.validate(&input.payload).map_err(|errors| {
            // Field names only: the values are personal data.
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            PrepareError::Invalid(format!(
                "stored data no longer fits the form of service {}: fields {}",
                input.service_key,
                fields.join(", ")
            ))
        })?;
        let info = &mapping.info;
        let context = MessageContext {
            nachricht: Nachricht::new(
                &info.message,
                message_id.to_string(),
                timestamp(self.clock.now()),
                env!("CARGO_PKG_VERSION").into(),
            ),
            leser: recipient.leser.clone(),
            autor: self.autor.clone(),
            antrag: antrag(
                input.id.to_string(),
                input.receipt.clone(),
                input.created_at,
            ),
            labels: mapping.labels(&data),
            // What is due for these entries (per certificate, say), as the portal charged.
            gebuehr: info.fee.as_ref().map(|fee| fee.due(&data)),
            data,
            anlagen,
            authentifizierung: input.authentication.as_ref().map(authentifizierung),
        };
        mapping
            .render(&context)
            .map_err(|e| PrepareError::Invalid(e.to_string()))
    }

    /// Renders, checks and seals one application's message.
    pub fn prepare(&self, item: &WorkItem, input: &PrepareInput) -> Result<Prepared, PrepareError> {
        let started = Instant::now();
        let keys = self.keyring.keys();
        let recipient = keys.recipients.get(&item.procedure_id).ok_or_else(|| {
            PrepareError::Blocked(format!("procedure {} is not configured", item.procedure_id))
        })?;
        let xml = self.render_message(&item.procedure_id, item.message_id, input)?;
        let transform = started.elapsed();
        let Some(envelope) = recipient.envelope else {
            // A manual procedure: the clerk reads it in the hub's inbox; it never leaves.
            return Ok(Prepared {
                message: xml.clone().into_bytes(),
                xml,
                transform,
                seal: std::time::Duration::ZERO,
            });
        };
        // Never unprotected: without a usable certificate the message waits.
        let certificate = keys
            .recipient_certificate(recipient, self.clock.as_ref())
            .map_err(|reason| PrepareError::Blocked(format!("certificate refused: {reason}")))?;
        let sealing = Instant::now();
        let message = match envelope {
            Envelope::Cms => keys.signer(self.clock.as_ref()).sealer.seal_at(
                xml.as_bytes(),
                certificate,
                self.clock.now(),
            ),
            // A compact JWE is ASCII text: sent as it is. Its JWS header carries the
            // applicant's identification as FIT-Connect's metadata does.
            Envelope::Jose => {
                let report = input.authentication.as_ref().map(|authentication| {
                    authentifizierung(authentication).identification_report(
                        &item.message_id.to_string(),
                        &input.id.to_string(),
                        &timestamp(self.clock.now()),
                    )
                });
                keys.signer(self.clock.as_ref())
                    .jose
                    .seal_with(xml.as_bytes(), certificate, report.as_ref())
                    .map(String::into_bytes)
            }
        }
        .map_err(|e| PrepareError::Blocked(e.to_string()))?;
        Ok(Prepared {
            message,
            xml,
            transform,
            seal: sealing.elapsed(),
        })
    }
}

pub(crate) fn timestamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The oversight service shows messages as the preparer renders them.
#[async_trait::async_trait]
impl kopplung_core::oversight::MessageRenderer for Preparer {
    async fn render(
        &self,
        procedure: &str,
        message_id: uuid::Uuid,
        input: PrepareInput,
    ) -> Result<String, kopplung_core::oversight::RenderError> {
        use kopplung_core::oversight::RenderError;
        // Rendering and the schema check are CPU work: off the async workers.
        let preparer = self.clone();
        let procedure = procedure.to_owned();
        match tokio::task::spawn_blocking(move || {
            preparer.render_message(&procedure, message_id, &input)
        })
        .await
        {
            Ok(Ok(xml)) => Ok(xml),
            Ok(Err(e)) => Err(RenderError::NotRenderable(e.to_string())),
            Err(_) => Err(RenderError::Failed),
        }
    }
}
