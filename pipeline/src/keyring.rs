//! The keyring: the hub's signing identity, the trust anchors and every procedure's
//! certificates in force, swapped whole on reload (SIGHUP, rotation without downtime).
//! It chooses the certificate to seal for and verifies the procedures' signed receipts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kopplung_core::{Clock, ProcedureId};
use kopplung_transformers::jose::JoseSealer;
use kopplung_transformers::mapping::Behoerde;
use kopplung_transformers::pki::PkiLayout;
use kopplung_transformers::receipt::{self, Receipt};
use kopplung_transformers::seal::{check_cms_recipient, load_certificate};
use kopplung_transformers::{Sealer, TrustAnchors};
use openssl::asn1::Asn1Time;
use openssl::x509::X509;
use tokio::time::Instant;

use crate::{Envelope, Error};

/// What the keyring loads: read from the hub's configuration by the router.
#[derive(Debug, Clone)]
pub struct KeyringConfig {
    /// The configuration file this comes from (named in errors).
    pub source: PathBuf,
    /// The PKI folder: `hub.crt`, `hub.key`, `ca.crt` and the procedures' certificates.
    pub pki_dir: PathBuf,
    /// The hub's signing identity in a PKCS#12 file instead of `hub.crt` and `hub.key`.
    pub pkcs12: Option<Pkcs12>,
    pub procedures: Vec<ProcedureKeys>,
}

/// A PKCS#12 file with the hub's key and certificate.
#[derive(Debug, Clone)]
pub struct Pkcs12 {
    /// Relative to the PKI folder.
    pub file: PathBuf,
    /// The environment variable that holds the passphrase (never the passphrase itself).
    pub passphrase_env: String,
}

/// One procedure's certificates and the authority that reads its messages.
#[derive(Debug, Clone)]
pub struct ProcedureKeys {
    pub id: ProcedureId,
    /// `None`: kept at the hub for the clerk inbox, never sent (manual procedures).
    pub envelope: Option<Envelope>,
    /// Encryption certificates (several during a rotation), relative to the PKI folder.
    pub certificates: Vec<PathBuf>,
    /// The procedure's signing certificate for its receipts, relative to the PKI folder.
    pub receipt_certificate: Option<PathBuf>,
    /// The authority (`leser` of the message).
    pub reader: Behoerde,
    /// Whether it has a token for the hub's API, to fetch attachments by claim check.
    pub can_fetch: bool,
}

/// One procedure's certificates (several during a rotation) and its authority.
pub(crate) struct Recipient {
    pub(crate) envelope: Option<Envelope>,
    certificates: Vec<(PathBuf, X509)>,
    receipt_certificate: Option<X509>,
    pub(crate) leser: Behoerde,
    pub(crate) can_fetch: bool,
    /// The last choice among `certificates` and when it was made (see
    /// [`Keys::recipient_certificate`]).
    chosen: Mutex<Option<(Instant, Result<usize, String>)>>,
}

/// How long the choice of a recipient certificate holds before its chains are verified
/// again: verifying them for every message cost more than the signature (perf). A
/// newly valid certificate is taken, a revoked anchor noticed, within this time; an
/// expired one never (checked on every use).
const RECIPIENT_RECHECK: Duration = Duration::from_secs(60);

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

/// The key material in force at one moment.
pub(crate) struct Keys {
    pub(crate) sealer: Sealer,
    /// The same identity for the `jose` profile (ES256 with the hub's EC key).
    pub(crate) jose: JoseSealer,
    anchors: TrustAnchors,
    pub(crate) recipients: BTreeMap<String, Recipient>,
}

/// The keys and certificates in force.
pub struct Keyring {
    keys: RwLock<Arc<Keys>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
    }
}

/// Loads the hub's signing identity as configured (PEM files or PKCS#12).
pub fn load_sealer(config: &KeyringConfig) -> Result<Sealer, Error> {
    let pki = PkiLayout::new(&config.pki_dir);
    match &config.pkcs12 {
        Some(Pkcs12 {
            file,
            passphrase_env,
        }) => {
            let passphrase = std::env::var(passphrase_env).map_err(|_| Error::Config {
                file: config.pki_dir.join(file),
                message: format!("the passphrase variable {passphrase_env} is not set"),
            })?;
            Ok(Sealer::from_pkcs12(
                &config.pki_dir.join(file),
                &passphrase,
            )?)
        }
        None => Ok(Sealer::load(&pki.hub_cert(), &pki.hub_key())?),
    }
}

fn load_keys(config: &KeyringConfig) -> Result<Keys, Error> {
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
    for procedure in &config.procedures {
        let mut certificates = Vec::new();
        for file in &procedure.certificates {
            let path = config.pki_dir.join(file);
            certificates.push((path.clone(), load_certificate(&path)?));
        }
        let receipt_certificate = match &procedure.receipt_certificate {
            Some(file) => Some(load_certificate(&config.pki_dir.join(file))?),
            None => None,
        };
        recipients.insert(
            procedure.id.to_string(),
            Recipient {
                envelope: procedure.envelope,
                certificates,
                receipt_certificate,
                leser: procedure.reader.clone(),
                can_fetch: procedure.can_fetch,
                chosen: Mutex::new(None),
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
    pub(crate) fn recipient_certificate<'a>(
        &'a self,
        recipient: &'a Recipient,
        clock: &dyn Clock,
    ) -> Result<&'a X509, String> {
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
                        && still_valid(certificate, clock)
                    {
                        return Ok(certificate);
                    }
                }
                Err(reason) => return Err(reason.clone()),
            }
        }
        let choice = self.choose_certificate(recipient);
        *chosen = Some((Instant::now(), choice.clone()));
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

/// Now as OpenSSL counts time.
fn asn1_now(clock: &dyn Clock) -> Result<Asn1Time, openssl::error::ErrorStack> {
    Asn1Time::from_unix(clock.now().unix_timestamp())
}

/// Whether a certificate has not expired yet.
fn still_valid(certificate: &X509, clock: &dyn Clock) -> bool {
    asn1_now(clock)
        .ok()
        .and_then(|now| certificate.not_after().compare(&now).ok())
        .is_some_and(|order| order == std::cmp::Ordering::Greater)
}

impl Keyring {
    /// Loads the hub's signing key, the trust anchors and every procedure's
    /// certificates. Unreadable files are an error; a certificate that is expired or
    /// untrusted is not: it blocks only its procedure (see [`Keyring::problems`]).
    pub fn load(config: &KeyringConfig, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        Ok(Self {
            keys: RwLock::new(Arc::new(load_keys(config)?)),
            clock,
        })
    }

    pub(crate) fn keys(&self) -> Arc<Keys> {
        match self.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Loads keys and certificates again (rotation without downtime); on any error
    /// the current ones stay in force.
    pub fn reload(&self, config: &KeyringConfig) -> Result<(), Error> {
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
            return Err(Error::Config {
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
                keys.recipient_certificate(recipient, self.clock())
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
        let now = asn1_now(self.clock());
        let days_left = |certificate: &X509| {
            now.as_ref()
                .map_err(Clone::clone)
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

    /// The hub's signing certificate in force.
    pub fn signing_certificate(&self) -> X509 {
        self.keys().sealer.certificate().clone()
    }
}

/// The keyring verifies the events the core's events service takes.
impl kopplung_core::events::EventVerifier for Keyring {
    fn verify(
        &self,
        procedure: &str,
        signed: &[u8],
    ) -> Result<kopplung_core::events::VerifiedEvent, kopplung_core::events::Unverified> {
        use kopplung_core::events::{EventKind, SignedDocument, Unverified, VerifiedEvent};
        use kopplung_transformers::receipt::ReceiptEvent;
        let receipt = self
            .verify_receipt(procedure, signed)
            .map_err(|e| match e {
                ReceiptError::UnknownProcedure(_) => Unverified::UnknownProcedure,
                e @ ReceiptError::NoCertificate(_) => Unverified::NoCertificate(e.to_string()),
                ReceiptError::Refused(reason) => Unverified::Refused(reason),
            })?;
        // The hash of the receipt as JSON, whatever the profile: the same event sent
        // again (or over another channel) is recognised as a duplicate.
        let content_sha256 = hex::encode(openssl::sha::sha256(
            &serde_json::to_vec(&receipt).unwrap_or_default(),
        ));
        Ok(VerifiedEvent {
            receipt_id: receipt.receipt_id,
            message_id: receipt.message_id,
            application_id: receipt.application_id,
            kind: match receipt.event {
                ReceiptEvent::Accept => EventKind::Accept,
                ReceiptEvent::Reject => EventKind::Reject,
                ReceiptEvent::InProgress => EventKind::InProgress,
                ReceiptEvent::Query => EventKind::Query,
                ReceiptEvent::Decision => EventKind::Decision,
            },
            message: receipt.message,
            document: receipt.document.map(|d| SignedDocument {
                filename: d.filename,
                media_type: d.media_type,
                content_base64: d.content_base64,
            }),
            problem_types: receipt.problems.into_iter().map(|p| p.kind).collect(),
            issued_at: receipt.issued_at,
            content_sha256,
        })
    }
}
