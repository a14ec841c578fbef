//! The prepare step: render the application through its service's mapping, check the
//! XML, and seal it for the receiving procedure. Pure work on the transformers.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use kopplung_transformers::mapping::{Abruf, Anlage, Antrag, Behoerde, MessageContext, Nachricht};
use std::path::PathBuf;
use std::sync::RwLock;

use kopplung_transformers::jose::JoseSealer;
use kopplung_transformers::pki::PkiLayout;
use kopplung_transformers::receipt::{self, Receipt};
use kopplung_transformers::seal::{check_cms_recipient, load_certificate};
use kopplung_transformers::{Sealer, TrustAnchors};
use openssl::x509::X509;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::catalog::Catalog;
use crate::config::{Authority, Config, Envelope, HubIdentity};
use crate::regions::Regions;
use crate::store::{Attachment, AttachmentContent, PrepareInput, WorkItem, fragment_count};

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
    /// Render, XML and XSD checks.
    pub transform: std::time::Duration,
    pub seal: std::time::Duration,
}

/// One procedure's certificates (several during a rotation) and its authority.
struct Recipient {
    /// `None`: kept at the hub for the clerk inbox, never sent (manual procedures).
    envelope: Option<Envelope>,
    certificates: Vec<(PathBuf, X509)>,
    /// The procedure's signing certificate, for its receipts.
    receipt_certificate: Option<X509>,
    leser: Behoerde,
    /// Whether it has a token for the hub's API, to fetch attachments by claim check.
    can_fetch: bool,
    /// The last choice among `certificates` and when it was made (see
    /// [`Keys::recipient_certificate`]).
    chosen: std::sync::Mutex<Option<(std::time::Instant, Result<usize, String>)>>,
}

/// How long the choice of a recipient certificate holds before its chains are verified
/// again: verifying them for every message cost more than the signature (perf). A
/// newly valid certificate is taken, a revoked anchor noticed, within this time; an
/// expired one never (checked on every use).
const RECIPIENT_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a receipt was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("no procedure {0}")]
    UnknownProcedure(String),
    #[error("procedure {0} has no receipt certificate configured")]
    NoCertificate(String),
    #[error("{0}")]
    Refused(String),
}

/// The key material in force: swapped whole on reload (SIGHUP), like the mappings.
struct Keys {
    sealer: Sealer,
    /// The same identity for the `jose` profile (ES256 with the hub's EC key).
    jose: JoseSealer,
    anchors: TrustAnchors,
    recipients: BTreeMap<String, Recipient>,
}

/// Everything the prepare step needs, loaded and checked at start-up.
pub struct Preparer {
    catalog: Arc<Catalog>,
    regions: Arc<Regions>,
    keys: RwLock<Arc<Keys>>,
    autor: Behoerde,
    /// Where procedures reach the hub: the claim-check links of attachments start here.
    public_url: String,
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparer").finish_non_exhaustive()
    }
}

fn behoerde_of_hub(hub: &HubIdentity) -> Behoerde {
    Behoerde {
        verzeichnisdienst: hub.verzeichnisdienst.clone(),
        verzeichnisdienst_list_version: hub.verzeichnisdienst_list_version.clone(),
        kennung: hub.kennung.clone(),
        name: hub.name.clone(),
    }
}

fn behoerde_of(authority: &Authority) -> Behoerde {
    Behoerde {
        verzeichnisdienst: authority.verzeichnisdienst.clone(),
        verzeichnisdienst_list_version: authority.verzeichnisdienst_list_version.clone(),
        kennung: authority.kennung.clone(),
        name: authority.name.clone(),
    }
}

/// Loads the hub's signing identity as configured (PEM files or PKCS#12).
pub fn load_sealer(config: &Config) -> Result<Sealer, crate::Error> {
    let pki = PkiLayout::new(&config.pki_dir);
    match config
        .file
        .signing
        .as_ref()
        .and_then(|s| s.pkcs12.as_ref().zip(s.passphrase_env.as_ref()))
    {
        Some((file, variable)) => {
            let passphrase = std::env::var(variable).map_err(|_| crate::Error::Config {
                file: config.pki_dir.join(file),
                message: format!("the passphrase variable {variable} is not set"),
            })?;
            Ok(Sealer::from_pkcs12(
                &config.pki_dir.join(file),
                &passphrase,
            )?)
        }
        None => Ok(Sealer::load(&pki.hub_cert(), &pki.hub_key())?),
    }
}

fn load_keys(config: &Config) -> Result<Keys, crate::Error> {
    let pki = PkiLayout::new(&config.pki_dir);
    let sealer = load_sealer(config)?;
    let jose = JoseSealer::new(
        sealer.certificate().clone(),
        sealer.key().clone(),
        Vec::new(),
    )?;
    let anchors = TrustAnchors::load(&pki.ca_cert())?;
    // The hub's own certificate must be valid and trusted, or every vendor would refuse
    // what it signs: refuse it here (at start and on reload), not at the vendor.
    anchors.check(sealer.certificate())?;
    if let Some(usage) = sealer.certificate().key_usage()
        && !usage.contains(openssl::x509::X509KeyUsage::DIGITAL_SIGNATURE)
    {
        return Err(kopplung_transformers::Error::Certificate(
            "the hub's certificate does not allow digitalSignature".into(),
        )
        .into());
    }
    let mut recipients = BTreeMap::new();
    for procedure in &config.routing.procedures {
        let mut certificates = Vec::new();
        for file in procedure.certificate_paths() {
            let path = config.pki_dir.join(&file);
            certificates.push((path.clone(), load_certificate(&path)?));
        }
        let receipt_certificate = match &procedure.receipt_certificate {
            Some(file) => Some(load_certificate(&config.pki_dir.join(file))?),
            None => None,
        };
        let authority =
            config
                .authority(&procedure.authority)
                .ok_or_else(|| crate::Error::Config {
                    file: config.pki_dir.clone(),
                    message: format!("unknown authority `{}`", procedure.authority),
                })?;
        recipients.insert(
            procedure.id.clone(),
            Recipient {
                envelope: procedure.envelope,
                certificates,
                receipt_certificate,
                leser: behoerde_of(authority),
                can_fetch: procedure.token_sha256.is_some()
                    || procedure.token_file.is_some()
                    || matches!(procedure.delivery, crate::config::DeliveryConfig::Pull(_)),
                chosen: std::sync::Mutex::new(None),
            },
        );
    }
    Ok(Keys {
        sealer,
        jose,
        anchors,
        recipients,
    })
}

impl Keys {
    /// The certificate to seal for: among those valid now (chain, validity, key usage
    /// and algorithm for the profile), the one issued last. Otherwise every reason.
    /// The choice is kept for [`RECIPIENT_RECHECK`], but never past the chosen
    /// certificate's expiry.
    fn recipient_certificate<'a>(&'a self, recipient: &'a Recipient) -> Result<&'a X509, String> {
        let mut chosen = recipient
            .chosen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((at, choice)) = chosen.as_ref()
            && at.elapsed() < RECIPIENT_RECHECK
        {
            match choice {
                Ok(index) => {
                    if let Some((_, certificate)) = recipient.certificates.get(*index)
                        && still_valid(certificate)
                    {
                        return Ok(certificate);
                    }
                }
                Err(reason) => return Err(reason.clone()),
            }
        }
        let choice = self.choose_certificate(recipient);
        *chosen = Some((std::time::Instant::now(), choice.clone()));
        choice.and_then(|index| {
            recipient
                .certificates
                .get(index)
                .map(|(_, certificate)| certificate)
                .ok_or_else(|| "no certificate".to_owned())
        })
    }

    /// Verifies every certificate of a recipient; the index of the one to use.
    fn choose_certificate(&self, recipient: &Recipient) -> Result<usize, String> {
        let mut usable: Vec<(usize, &X509)> = Vec::new();
        let mut problems = Vec::new();
        for (index, (path, certificate)) in recipient.certificates.iter().enumerate() {
            let checked = self
                .anchors
                .check(certificate)
                .and_then(|()| match recipient.envelope {
                    Some(Envelope::Jose) => {
                        kopplung_transformers::jose::check_recipient(certificate)
                    }
                    _ => check_cms_recipient(certificate),
                });
            match checked {
                Ok(()) => usable.push((index, certificate)),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        usable
            .into_iter()
            .max_by(|(_, a), (_, b)| {
                a.not_before()
                    .compare(b.not_before())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|(index, _)| index)
            .ok_or_else(|| problems.join("; "))
    }
}

/// Whether a certificate has not expired yet.
fn still_valid(certificate: &X509) -> bool {
    openssl::asn1::Asn1Time::days_from_now(0)
        .ok()
        .and_then(|now| certificate.not_after().compare(&now).ok())
        .is_some_and(|order| order == std::cmp::Ordering::Greater)
}

impl Preparer {
    /// Loads the hub's signing key, the trust anchors and every procedure's
    /// certificates. Unreadable files stop the start; a certificate that is expired or
    /// untrusted does not: it blocks only its procedure (see [`Preparer::problems`]).
    pub fn load(
        config: &Config,
        catalog: Arc<Catalog>,
        regions: Arc<Regions>,
    ) -> Result<Self, crate::Error> {
        Ok(Self {
            catalog,
            regions,
            keys: RwLock::new(Arc::new(load_keys(config)?)),
            autor: behoerde_of_hub(&config.file.hub),
            public_url: config.file.server.public_url.clone().unwrap_or_default(),
        })
    }

    /// The address procedures reach the hub at, once the listener is bound.
    pub fn with_public_url(mut self, public_url: String) -> Self {
        self.public_url = public_url;
        self
    }

    fn keys(&self) -> Arc<Keys> {
        match self.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads keys and certificates again (rotation without downtime); on any error
    /// the current ones stay in force.
    pub fn reload_keys(&self, config: &Config) -> Result<(), crate::Error> {
        let keys = Arc::new(load_keys(config)?);
        // Sinks and routes are built at start: a reload may change keys and certificates,
        // not which procedures exist or their envelope profile.
        let current = self.keys();
        let shape = |keys: &Keys| {
            keys.recipients
                .iter()
                .map(|(id, r)| (id.clone(), r.envelope))
                .collect::<Vec<_>>()
        };
        if shape(&current) != shape(&keys) {
            return Err(crate::Error::Config {
                file: config.source.clone(),
                message: "procedures or their envelope profiles changed: restart the hub for that"
                    .into(),
            });
        }
        match self.keys.write() {
            Ok(mut guard) => *guard = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        Ok(())
    }

    /// A detached CMS signature over `content` by the hub's signing identity in force
    /// (as a Laufzettel export is signed): for the audit trail's checkpoints.
    pub fn sign_detached(&self, content: &[u8]) -> Result<Vec<u8>, kopplung_transformers::Error> {
        kopplung_transformers::laufzettel::sign_detached(&self.keys().sealer, content)
    }

    /// Procedures that cannot receive messages now, with the operator's reason.
    pub fn problems(&self) -> Vec<String> {
        let keys = self.keys();
        keys.recipients
            .iter()
            .filter(|(_, recipient)| recipient.envelope.is_some())
            .filter_map(|(id, recipient)| {
                keys.recipient_certificate(recipient)
                    .err()
                    .map(|reason| format!("procedure {id}: no usable certificate: {reason}"))
            })
            .collect()
    }

    /// Verifies a procedure's signed receipt in its profile: CMS SignedData (`cms`) or a
    /// Security Event Token (`jose`), signed with the procedure's receipt certificate,
    /// which chains to the trust anchors and is valid now. The receipt must name the
    /// procedure it came from.
    pub fn verify_receipt(&self, procedure: &str, body: &[u8]) -> Result<Receipt, ReceiptError> {
        let keys = self.keys();
        let recipient = keys
            .recipients
            .get(procedure)
            .ok_or_else(|| ReceiptError::UnknownProcedure(procedure.to_owned()))?;
        let certificate = recipient
            .receipt_certificate
            .as_ref()
            .ok_or_else(|| ReceiptError::NoCertificate(procedure.to_owned()))?;
        let receipt = match recipient.envelope {
            Some(Envelope::Cms) | None => receipt::verify_cms(body, certificate, &keys.anchors),
            Some(Envelope::Jose) => std::str::from_utf8(body)
                .map_err(|_| {
                    kopplung_transformers::Error::ReceiptRefused("not a compact JWS".into())
                })
                .and_then(|token| receipt::verify_set(token.trim(), certificate, &keys.anchors)),
        }
        .map_err(|e| ReceiptError::Refused(e.to_string()))?;
        if receipt.procedure != procedure {
            return Err(ReceiptError::Refused(format!(
                "the receipt names procedure {}, not {procedure}",
                receipt.procedure
            )));
        }
        Ok(receipt)
    }

    /// Days until each certificate in force expires (negative once expired): the hub's
    /// signing certificate and every procedure's encryption and receipt certificates,
    /// as (owner, file name, days).
    pub fn certificate_expiries(&self) -> Vec<(String, String, f64)> {
        let keys = self.keys();
        let days_left = |certificate: &X509| {
            openssl::asn1::Asn1Time::days_from_now(0)
                .and_then(|now| now.diff(certificate.not_after()))
                .map(|d| f64::from(d.days) + f64::from(d.secs) / 86_400.0)
                .unwrap_or(f64::NAN)
        };
        let mut out = vec![(
            "hub".to_owned(),
            "hub.crt".to_owned(),
            days_left(keys.sealer.certificate()),
        )];
        for (id, recipient) in &keys.recipients {
            for (path, certificate) in &recipient.certificates {
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((id.clone(), file, days_left(certificate)));
            }
            if let Some(certificate) = &recipient.receipt_certificate {
                out.push((id.clone(), "receipt".to_owned(), days_left(certificate)));
            }
        }
        out
    }

    /// The envelope profile of a procedure (for the message's content type).
    pub fn envelope(&self, procedure: &str) -> Option<Envelope> {
        self.keys()
            .recipients
            .get(procedure)
            .and_then(|r| r.envelope)
    }

    /// Encrypts one attachment fragment for `procedure` with its certificate in force:
    /// DER AuthEnvelopedData (`cms`) or a compact JWE (`jose`). Returns the content type
    /// and the bytes. Never unprotected: a procedure without an envelope gets none.
    pub fn seal_fragment(
        &self,
        procedure: &str,
        fragment: &[u8],
    ) -> Result<(&'static str, Vec<u8>), PrepareError> {
        let keys = self.keys();
        let recipient = keys.recipients.get(procedure).ok_or_else(|| {
            PrepareError::Blocked(format!("procedure {procedure} is not configured"))
        })?;
        let envelope = recipient.envelope.ok_or_else(|| {
            PrepareError::Blocked(format!("procedure {procedure} has no envelope profile"))
        })?;
        let certificate = keys
            .recipient_certificate(recipient)
            .map_err(|reason| PrepareError::Blocked(format!("certificate refused: {reason}")))?;
        match envelope {
            Envelope::Cms => kopplung_transformers::seal::encrypt(fragment, certificate)
                .map(|der| ("application/pkcs7-mime; smime-type=authEnveloped-data", der)),
            Envelope::Jose => keys
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
        procedure: &str,
        message_id: uuid::Uuid,
        position: usize,
        attachment: &Attachment,
        envelope: Option<Envelope>,
    ) -> Option<Abruf> {
        let n = position + 1;
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

    /// The hub's signing certificate in force.
    pub fn signing_certificate(&self) -> X509 {
        self.keys().sealer.certificate().clone()
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
        let keys = self.keys();
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
                self.claim_check(procedure, message_id, position, a, recipient.envelope)
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
            nachricht: Nachricht {
                uuid: message_id.to_string(),
                typ: info.message.message_type.clone(),
                typ_list_uri: info.message.list_uri.clone(),
                typ_list_version: info.message.list_version.clone(),
                standard: info.message.standard.clone(),
                version: info.message.version.clone(),
                erstellungszeitpunkt: timestamp(OffsetDateTime::now_utc()),
                produkt: "kopplung".into(),
                produkthersteller: "kopplung".into(),
                produktversion: env!("CARGO_PKG_VERSION").into(),
            },
            leser: recipient.leser.clone(),
            autor: self.autor.clone(),
            antrag: Antrag {
                id: input.id.to_string(),
                antragsnummer: input.receipt.clone(),
                eingangszeitpunkt: timestamp(input.created_at),
                leistung_schluessel: info.key.clone(),
                leistung_name: info.name.clone(),
                gebiet_ars: input.region.clone(),
                gebiet_name: self
                    .regions
                    .name(&input.region)
                    .unwrap_or_default()
                    .to_owned(),
            },
            labels: mapping.labels(&data),
            data,
            anlagen: input
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
                })
                .collect(),
            gebuehr: info.fee.clone(),
        };
        mapping
            .render(&context)
            .map_err(|e| PrepareError::Invalid(e.to_string()))
    }

    /// Renders, checks and seals one application's message.
    pub fn prepare(&self, item: &WorkItem, input: &PrepareInput) -> Result<Prepared, PrepareError> {
        let started = std::time::Instant::now();
        let keys = self.keys();
        let recipient = keys.recipients.get(&item.procedure_id).ok_or_else(|| {
            PrepareError::Blocked(format!("procedure {} is not configured", item.procedure_id))
        })?;
        let xml = self.render_message(&item.procedure_id, item.message_id, input)?;
        let transform = started.elapsed();
        let Some(envelope) = recipient.envelope else {
            // A manual procedure: the clerk reads it in the hub's inbox; it never leaves.
            return Ok(Prepared {
                message: xml.into_bytes(),
                transform,
                seal: std::time::Duration::ZERO,
            });
        };
        // Never unprotected: without a usable certificate the message waits.
        let certificate = keys
            .recipient_certificate(recipient)
            .map_err(|reason| PrepareError::Blocked(format!("certificate refused: {reason}")))?;
        let sealing = std::time::Instant::now();
        let message = match envelope {
            Envelope::Cms => keys.sealer.seal(xml.as_bytes(), certificate),
            // A compact JWE is ASCII text: sent as it is.
            Envelope::Jose => keys
                .jose
                .seal(xml.as_bytes(), certificate)
                .map(String::into_bytes),
        }
        .map_err(|e| PrepareError::Blocked(e.to_string()))?;
        Ok(Prepared {
            message,
            transform,
            seal: sealing.elapsed(),
        })
    }
}

fn timestamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
