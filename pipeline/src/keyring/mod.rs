//! The keyring: the hub's signing identity, the trust anchors and every procedure's
//! certificates in force, swapped whole on reload (SIGHUP, rotation without downtime).
//! It chooses the certificate to seal for and verifies the procedures' signed receipts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kopplung_core::{Clock, ProcedureId, Rotation};
use kopplung_transformers::jose::JoseSealer;
use kopplung_transformers::mapping::Behoerde;
use kopplung_transformers::pki::PkiLayout;
use kopplung_transformers::seal::{
    check_cms_recipient, key_belongs, load_certificate, load_private_key,
};
use kopplung_transformers::{Sealer, TrustAnchors};
use openssl::asn1::Asn1Time;
use openssl::x509::X509;
use tokio::time::Instant;

use crate::{Envelope, Error};

mod receipts;

pub use receipts::ReceiptError;

/// What the keyring loads: read from the hub's configuration by the router.
#[derive(Debug, Clone)]
pub struct KeyringConfig {
    /// The configuration file this comes from (named in errors).
    pub source: PathBuf,
    /// The PKI folder: `hub.crt`, `hub.key`, `ca.crt` and the procedures' certificates.
    pub pki_dir: PathBuf,
    /// The hub's signing identity in a PKCS#12 file instead of `hub.crt` and `hub.key`.
    pub pkcs12: Option<Pkcs12>,
    /// The next signing identity of a staged rotation.
    pub next_signing: Option<NextSigning>,
    pub procedures: Vec<ProcedureKeys>,
}

/// The hub's next signing certificate and key (PEM, relative to the PKI folder) and
/// when they take over.
#[derive(Debug, Clone)]
pub struct NextSigning {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub rotation: Rotation,
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
    /// The next encryption certificate of a staged rotation and when it takes over.
    pub certificate_next: Option<(PathBuf, Rotation)>,
    /// The procedure's signing certificate for its receipts, relative to the PKI folder.
    pub receipt_certificate: Option<PathBuf>,
    /// Its next signing certificate: receipts signed with either are accepted.
    pub receipt_certificate_next: Option<PathBuf>,
    /// The authority (`leser` of the message).
    pub reader: Behoerde,
    /// Whether it has a token for the hub's API, to fetch attachments by claim check.
    pub can_fetch: bool,
    /// It collects as a FIT-Connect subscriber: its attachments are those of the
    /// FIT-Connect submission.
    pub fitconnect_subscriber: bool,
}

/// One procedure's certificates (several during a rotation) and its authority.
pub(crate) struct Recipient {
    pub(crate) envelope: Option<Envelope>,
    certificates: Vec<(PathBuf, X509)>,
    /// The next certificate of a staged rotation (the last of `certificates`).
    pub(crate) next: Option<Rotation>,
    /// The signing certificates its receipts are verified with (two during a rotation).
    receipt_certificates: Vec<X509>,
    pub(crate) leser: Behoerde,
    pub(crate) can_fetch: bool,
    pub(crate) fitconnect_subscriber: bool,
    /// The last choice among `certificates`, when it was made and whether the next
    /// certificate was in force then (see [`Keys::recipient_certificate`]).
    chosen: Mutex<Option<Choice>>,
}

/// A choice of certificate: when it was made, whether the next certificate of a
/// rotation was in force then, and the index chosen or why none could be.
type Choice = (Instant, bool, Result<usize, String>);

impl Recipient {
    /// The current certificates and the next one, each with its file.
    pub(crate) fn certificate_files(&self) -> &[(PathBuf, X509)] {
        &self.certificates
    }

    /// The index of the next certificate in `certificates`.
    fn next_index(&self) -> Option<usize> {
        self.next.map(|_| self.certificates.len().saturating_sub(1))
    }
}

/// A signing identity in both profiles: CMS and, with the same EC key, ES256.
pub(crate) struct Signer {
    pub(crate) sealer: Sealer,
    pub(crate) jose: JoseSealer,
}

impl Signer {
    fn new(sealer: Sealer) -> Result<Self, Error> {
        let jose = JoseSealer::new(
            sealer.certificate().clone(),
            sealer.key().clone(),
            Vec::new(),
        )?;
        Ok(Self { sealer, jose })
    }
}

/// How long the choice of a recipient certificate holds before its chains are verified
/// again: verifying them for every message cost more than the signature (perf). A
/// newly valid certificate is taken, a revoked anchor noticed, within this time; an
/// expired one never (checked on every use).
const RECIPIENT_RECHECK: Duration = Duration::from_secs(60);

/// The key material in force at one moment.
pub(crate) struct Keys {
    /// The hub's signing identity (the current one of a rotation).
    pub(crate) current: Signer,
    /// The next one of a staged rotation, and when it takes over.
    pub(crate) next: Option<(Signer, Rotation)>,
    anchors: TrustAnchors,
    pub(crate) recipients: BTreeMap<String, Recipient>,
}

/// The keys and certificates in force.
pub struct Keyring {
    keys: RwLock<Arc<Keys>>,
    clock: Arc<dyn Clock>,
    /// What was in force when [`Keyring::switches`] last looked.
    pub(crate) reported: Mutex<InForce>,
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

/// The hub's own certificate must be valid and trusted, or every vendor would refuse
/// what it signs: refuse it here (at start and on reload), not at the vendor.
fn check_signer(anchors: &TrustAnchors, sealer: &Sealer) -> Result<(), Error> {
    anchors.check(sealer.certificate())?;
    if let Some(usage) = sealer.certificate().key_usage()
        && !usage.contains(openssl::x509::X509KeyUsage::DIGITAL_SIGNATURE)
    {
        return Err(kopplung_transformers::Error::Certificate(
            "the hub's certificate does not allow digitalSignature".into(),
        )
        .into());
    }
    Ok(())
}

/// The next signing identity of a staged rotation. Errors name the setting and its
/// file: the operator wrote them a moment ago and needs to know which one is wrong.
fn load_next_signer(
    config: &KeyringConfig,
    next: &NextSigning,
    anchors: &TrustAnchors,
) -> Result<Sealer, Error> {
    let refused = |key: &str, message: String| Error::Config {
        file: config.source.clone(),
        message: format!("[signing] {key}: {message}"),
    };
    let (cert_file, key_file) = (next.certificate.display(), next.key.display());
    let certificate = load_certificate(&config.pki_dir.join(&next.certificate))
        .map_err(|e| refused("next_certificate", e.to_string()))?;
    let key = load_private_key(&config.pki_dir.join(&next.key))
        .map_err(|e| refused("next_key", e.to_string()))?;
    if !key_belongs(&certificate, &key) {
        return Err(refused(
            "next_key",
            format!("{key_file} does not belong to next_certificate {cert_file}"),
        ));
    }
    let sealer = Sealer::new(certificate, key)
        .map_err(|e| refused("next_key", format!("{key_file}: {e}")))?;
    check_signer(anchors, &sealer)
        .map_err(|e| refused("next_certificate", format!("{cert_file}: {e}")))?;
    Ok(sealer)
}

fn load_keys(config: &KeyringConfig) -> Result<Keys, Error> {
    let pki = PkiLayout::new(&config.pki_dir);
    let anchors = TrustAnchors::load(&pki.ca_cert())?;
    let sealer = load_sealer(config)?;
    check_signer(&anchors, &sealer)?;
    let next = match &config.next_signing {
        Some(next) => Some((
            Signer::new(load_next_signer(config, next, &anchors)?)?,
            next.rotation,
        )),
        None => None,
    };
    let mut recipients = BTreeMap::new();
    for procedure in &config.procedures {
        let mut certificates = Vec::new();
        for file in procedure
            .certificates
            .iter()
            .chain(procedure.certificate_next.iter().map(|(file, _)| file))
        {
            let path = config.pki_dir.join(file);
            certificates.push((path.clone(), load_certificate(&path)?));
        }
        let mut receipt_certificates = Vec::new();
        for file in procedure
            .receipt_certificate
            .iter()
            .chain(procedure.receipt_certificate_next.iter())
        {
            receipt_certificates.push(load_certificate(&config.pki_dir.join(file))?);
        }
        recipients.insert(
            procedure.id.to_string(),
            Recipient {
                envelope: procedure.envelope,
                certificates,
                next: procedure.certificate_next.as_ref().map(|(_, r)| *r),
                receipt_certificates,
                leser: procedure.reader.clone(),
                can_fetch: procedure.can_fetch,
                fitconnect_subscriber: procedure.fitconnect_subscriber,
                chosen: Mutex::new(None),
            },
        );
    }
    Ok(Keys {
        current: Signer::new(sealer)?,
        next,
        anchors,
        recipients,
    })
}

impl Keys {
    /// The signing identity in force at the clock's now: the next one of a staged
    /// rotation once its time has come.
    pub(crate) fn signer(&self, clock: &dyn Clock) -> &Signer {
        match &self.next {
            Some((next, rotation)) if rotation.next_in_force(clock.now()) => next,
            _ => &self.current,
        }
    }

    /// The certificate to seal for. During a staged rotation the next certificate
    /// once it is in force, until then the current ones; among those, of the ones
    /// valid now (chain, validity, key usage and algorithm for the profile) the one
    /// issued last. Otherwise every reason.
    /// The choice is kept for [`RECIPIENT_RECHECK`], but never past the chosen
    /// certificate's expiry.
    pub(crate) fn recipient_certificate<'a>(
        &'a self,
        recipient: &'a Recipient,
        clock: &dyn Clock,
    ) -> Result<&'a X509, String> {
        let use_next = recipient
            .next
            .is_some_and(|rotation| rotation.next_in_force(clock.now()));
        let mut chosen = recipient
            .chosen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((at, next, choice)) = chosen.as_ref()
            && at.elapsed() < RECIPIENT_RECHECK
            && *next == use_next
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
        let choice = self.choose_certificate(recipient, use_next);
        *chosen = Some((Instant::now(), use_next, choice.clone()));
        choice.and_then(|index| {
            recipient
                .certificates
                .get(index)
                .map(|(_, certificate)| certificate)
                .ok_or_else(|| "no certificate".to_owned())
        })
    }

    /// Verifies the certificates of a recipient in force (the next one of a rotation,
    /// or the others); the index of the one to use.
    pub(crate) fn choose_certificate(
        &self,
        recipient: &Recipient,
        use_next: bool,
    ) -> Result<usize, String> {
        let mut usable: Vec<(usize, &X509)> = Vec::new();
        let mut problems = Vec::new();
        let next = recipient.next_index();
        let in_force = recipient
            .certificates
            .iter()
            .enumerate()
            .filter(|(index, _)| (Some(*index) == next) == use_next);
        for (index, (path, certificate)) in in_force {
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

/// SHA-256 of the DER, upper-case hex pairs joined by `:`.
pub(crate) fn fingerprint(certificate: &X509) -> String {
    certificate
        .digest(openssl::hash::MessageDigest::sha256())
        .map(|d| {
            d.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
}

/// Which certificates are in force at a moment, to notice when a rotation switches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InForce {
    /// Fingerprint of the hub's signing certificate in force.
    pub(crate) signer: String,
    /// The procedures whose next certificate is the one sealed for, with its
    /// fingerprint.
    pub(crate) sealed_for_next: BTreeMap<String, String>,
}

impl InForce {
    pub(crate) fn now(keys: &Keys, clock: &dyn Clock) -> Self {
        let now = clock.now();
        let sealed_for_next = keys
            .recipients
            .iter()
            .filter(|(_, r)| r.next.is_some_and(|rotation| rotation.next_in_force(now)))
            .filter_map(|(id, r)| {
                let (_, next) = r.certificate_files().last()?;
                Some((id.clone(), fingerprint(next)))
            })
            .collect();
        Self {
            signer: fingerprint(keys.signer(clock).sealer.certificate()),
            sealed_for_next,
        }
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
        let keys = load_keys(config)?;
        let reported = Mutex::new(InForce::now(&keys, clock.as_ref()));
        Ok(Self {
            keys: RwLock::new(Arc::new(keys)),
            clock,
            reported,
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
        self.put(keys);
        Ok(())
    }

    /// Like [`Keyring::reload`], for a reloaded routing table: procedures may come, go
    /// or change their profile, as the sinks and routes are replaced with the keys.
    pub fn reload_procedures(&self, config: &KeyringConfig) -> Result<(), Error> {
        self.put(Arc::new(load_keys(config)?));
        Ok(())
    }

    fn put(&self, keys: Arc<Keys>) {
        match self.keys.write() {
            Ok(mut guard) => *guard = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// A detached CMS signature over `content` by the hub's signing identity in force
    /// (as a Laufzettel export is signed): for the audit trail's checkpoints.
    pub fn sign_detached(&self, content: &[u8]) -> Result<Vec<u8>, kopplung_transformers::Error> {
        let keys = self.keys();
        kopplung_transformers::laufzettel::sign_detached(&keys.signer(self.clock()).sealer, content)
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
            days_left(keys.current.sealer.certificate()),
        )];
        if let Some((next, _)) = &keys.next {
            out.push((
                "hub".to_owned(),
                "next".to_owned(),
                days_left(next.sealer.certificate()),
            ));
        }
        for (id, recipient) in &keys.recipients {
            for (path, certificate) in &recipient.certificates {
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((id.clone(), file, days_left(certificate)));
            }
            for (n, certificate) in recipient.receipt_certificates.iter().enumerate() {
                let file = if n == 0 { "receipt" } else { "receipt-next" };
                out.push((id.clone(), file.to_owned(), days_left(certificate)));
            }
        }
        out
    }

    /// The certificate messages for `procedure` are sealed for now, or why none is.
    pub fn sealing_certificate(&self, procedure: &str) -> Result<X509, String> {
        let keys = self.keys();
        let recipient = keys
            .recipients
            .get(procedure)
            .ok_or_else(|| format!("no procedure {procedure}"))?;
        keys.recipient_certificate(recipient, self.clock()).cloned()
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
        self.keys()
            .signer(self.clock())
            .sealer
            .certificate()
            .clone()
    }
}
