//! The `cms` envelope: CMS SignedData by the hub, inside CMS AuthEnvelopedData
//! (AES-256-GCM, ECDH with the SHA-256 KDF) for the procedure's certificate. A vendor
//! opens it with stock `openssl cms` (see `docs/vendors.md`).

use std::path::Path;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder, X509StoreRef};
use openssl::x509::{X509, X509KeyUsage, X509Ref, X509StoreContext};

use crate::Error;

mod envelope;
mod signed;

/// The key agreement of the `cms` envelope, for the benchmark's crypto floor.
pub use envelope::key_agreement;

/// The hub's signing identity.
pub struct Sealer {
    cert: X509,
    key: PKey<Private>,
    /// The certificate as the SignedData carries it, read once.
    template: signed::SignerTemplate,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("subject", &subject_of(&self.cert))
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// The hub's signing certificate and key from PEM files. The key file must be
    /// readable by its owner only.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, Error> {
        let cert = load_certificate(cert)?;
        let key = load_private_key(key)?;
        Self::new(cert, key)
    }

    /// The hub's signing identity from a PKCS#12 file and its passphrase.
    pub fn from_pkcs12(path: &Path, passphrase: &str) -> Result<Self, Error> {
        let (key, cert) = load_pkcs12(path, passphrase)?;
        Self::new(cert, key)
    }

    /// The signing identity from a certificate and its key, both checked.
    pub fn new(cert: X509, key: PKey<Private>) -> Result<Self, Error> {
        check_signing_key(&key)?;
        if !key_belongs(&cert, &key) {
            return Err(Error::Certificate(
                "the hub's key does not belong to its certificate".into(),
            ));
        }
        let template = signed::SignerTemplate::of(&cert)?;
        Ok(Self {
            cert,
            key,
            template,
        })
    }

    /// The signing certificate (for status pages, receipts and rotation checks).
    pub fn certificate(&self) -> &X509 {
        &self.cert
    }

    /// The signing key (for detached signatures such as audit exports).
    pub fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// Signs `content` now and encrypts the signed structure for `recipient`. Returns
    /// DER.
    pub fn seal(&self, content: &[u8], recipient: &X509) -> Result<Vec<u8>, Error> {
        self.seal_at(content, recipient, time::OffsetDateTime::now_utc())
    }

    /// Signs `content` with the signing time `at` and encrypts the signed structure for
    /// `recipient`. Returns DER.
    pub fn seal_at(
        &self,
        content: &[u8],
        recipient: &X509,
        at: time::OffsetDateTime,
    ) -> Result<Vec<u8>, Error> {
        let signed = self.template.sign(&self.key, content, at)?;
        encrypt(&signed, recipient)
    }
}

/// Encrypts `content` for `recipient` without signing it: AuthEnvelopedData
/// (AES-256-GCM; ECDH with the SHA-256 KDF, AES-256 key wrap), DER. For attachment
/// fragments, whose integrity is the SHA-512 in the signed message, and for the signed
/// message; `openssl cms -decrypt -inform DER` opens it. The recipient's key must be EC
/// (see [`check_cms_recipient`]): there is no RSA key transport in this profile.
pub fn encrypt(content: &[u8], recipient: &X509) -> Result<Vec<u8>, Error> {
    let key = recipient.public_key().map_err(|source| Error::Crypto {
        context: "reading the recipient's key".into(),
        source,
    })?;
    if key.id() != Id::EC {
        return Err(Error::Certificate(format!(
            "{}: the cms profile encrypts for EC keys only",
            subject_of(recipient)
        )));
    }
    let ec = key.ec_key().map_err(|source| Error::Crypto {
        context: "reading the recipient's EC key".into(),
        source,
    })?;
    envelope::auth_enveloped(content, recipient, &ec)
}

/// Opens what [`encrypt`] made (the receiving side; vendors use `openssl cms`).
pub fn decrypt(
    enveloped: &[u8],
    recipient_cert: &X509,
    recipient_key: &PKey<Private>,
) -> Result<Vec<u8>, Error> {
    let crypto = |context: &str| {
        let context = context.to_owned();
        move |source| Error::Crypto { context, source }
    };
    CmsContentInfo::from_der(enveloped)
        .map_err(crypto("parsing envelope"))?
        .decrypt(recipient_key, recipient_cert)
        .map_err(crypto("decrypting"))
}

/// Trust anchors against which certificates are checked.
pub struct TrustAnchors {
    store: X509Store,
}

impl TrustAnchors {
    pub fn load(ca: &Path) -> Result<Self, Error> {
        let pem = read(ca)?;
        let certs = X509::stack_from_pem(&pem).map_err(|e| Error::Crypto {
            context: format!("reading trust anchors {}", ca.display()),
            source: e,
        })?;
        let crypto = |source| Error::Crypto {
            context: "building the trust store".into(),
            source,
        };
        let mut builder = X509StoreBuilder::new().map_err(crypto)?;
        for cert in certs {
            builder.add_cert(cert).map_err(crypto)?;
        }
        Ok(Self {
            store: builder.build(),
        })
    }

    /// The underlying store, for verifying CMS signatures.
    pub fn store(&self) -> &X509StoreRef {
        &self.store
    }

    /// Checks the chain to a trust anchor and the validity period at the current time.
    pub fn check(&self, cert: &X509) -> Result<(), Error> {
        let crypto = |source| Error::Crypto {
            context: "checking a certificate".into(),
            source,
        };
        let chain = Stack::new().map_err(crypto)?;
        let mut context = X509StoreContext::new().map_err(crypto)?;
        let outcome = context
            .init(&self.store, cert, &chain, |c| {
                Ok(c.verify_cert()?.then_some(()).ok_or_else(|| c.error()))
            })
            .map_err(crypto)?;
        outcome.map_err(|reason| {
            Error::Certificate(format!("{}: {}", subject_of(cert), reason.error_string()))
        })
    }
}

/// Refuses a signing key other than EC on P-256 or brainpoolP256r1 (ECDSA, BSI
/// TR-02102-1). RSA is refused: CMS would sign a plain RSA key with PKCS#1 v1.5, and
/// RSASSA-PSS signatures made with an RSA-PSS key do not verify with OpenSSL 3.0's
/// `openssl cms -verify` ("illegal or unsupported padding mode"), which vendors use.
pub fn check_signing_key(key: &PKey<Private>) -> Result<(), Error> {
    match key.id() {
        Id::EC => {
            let curve = key.ec_key().ok().and_then(|ec| ec.group().curve_name());
            match curve {
                Some(Nid::X9_62_PRIME256V1) | Some(Nid::BRAINPOOL_P256R1) => Ok(()),
                _ => Err(Error::Certificate(
                    "the signing key's curve is not P-256 or brainpoolP256r1".into(),
                )),
            }
        }
        Id::RSA | Id::RSA_PSS => Err(Error::Certificate(
            "the hub's signing key must be EC P-256 or brainpoolP256r1 (ECDSA): RSA signatures in CMS would be PKCS#1 v1.5, and RSA-PSS ones do not verify with OpenSSL 3.0's cms command".into(),
        )),
        _ => Err(Error::Certificate("unsupported signing key type".into())),
    }
}

/// Checks that a certificate can receive `cms` messages: an EC key on P-256 or
/// brainpoolP256r1 (ECDH key agreement) with key usage `keyAgreement` where the
/// certificate restricts usage. RSA recipients are served by the `jose` profile
/// (RSA-OAEP-256): the `cms` profile has no RSA key transport.
pub fn check_cms_recipient(cert: &X509) -> Result<(), Error> {
    let subject = subject_of(cert);
    let key = cert.public_key().map_err(|e| Error::Crypto {
        context: format!("reading the key of {subject}"),
        source: e,
    })?;
    let curve = key.ec_key().ok().and_then(|ec| ec.group().curve_name());
    match (key.id(), curve) {
        (Id::EC, Some(Nid::X9_62_PRIME256V1) | Some(Nid::BRAINPOOL_P256R1)) => {}
        (Id::RSA | Id::RSA_PSS, _) => {
            return Err(Error::Certificate(format!(
                "{subject}: an RSA certificate cannot receive the cms profile (key transport would not be RSA-OAEP); use the jose profile or an EC P-256 certificate"
            )));
        }
        _ => {
            return Err(Error::Certificate(format!(
                "{subject}: the key is not EC P-256 or brainpoolP256r1"
            )));
        }
    }
    allows_usage(cert, &subject, X509KeyUsage::KEY_AGREEMENT, "keyAgreement")
}

/// Refuses `cert` (named `subject`) when it restricts its key's usage and `usage`
/// (`name` in the message) is not among what it allows.
pub(crate) fn allows_usage(
    cert: &X509Ref,
    subject: &str,
    usage: X509KeyUsage,
    name: &str,
) -> Result<(), Error> {
    if let Some(allowed) = cert.key_usage()
        && !allowed.contains(usage)
    {
        return Err(Error::Certificate(format!(
            "{subject}: key usage does not allow {name}"
        )));
    }
    Ok(())
}

/// Reads a PEM private key, refusing a file that others than its owner can read.
pub fn load_private_key(path: &Path) -> Result<PKey<Private>, Error> {
    check_key_file(path)?;
    let pem = read(path)?;
    // The key's content is never part of an error message.
    PKey::private_key_from_pem(&pem).map_err(|_| Error::KeyFile {
        path: path.to_owned(),
        reason: "not a PEM private key (PKCS#8 or traditional)".into(),
    })
}

/// Reads key and certificate from a PKCS#12 file.
pub fn load_pkcs12(path: &Path, passphrase: &str) -> Result<(PKey<Private>, X509), Error> {
    check_key_file(path)?;
    let der = read(path)?;
    let parsed = Pkcs12::from_der(&der)
        .and_then(|p12| p12.parse2(passphrase))
        .map_err(|_| Error::KeyFile {
            path: path.to_owned(),
            reason: "not a PKCS#12 file, or the passphrase is wrong".into(),
        })?;
    match (parsed.pkey, parsed.cert) {
        (Some(key), Some(cert)) => Ok((key, cert)),
        _ => Err(Error::KeyFile {
            path: path.to_owned(),
            reason: "the PKCS#12 file lacks the key or the certificate".into(),
        }),
    }
}

fn check_key_file(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::KeyFile {
            path: path.to_owned(),
            reason: format!(
                "readable by group or others (mode {:o}); run: chmod 600 {}",
                mode & 0o777,
                path.display()
            ),
        });
    }
    Ok(())
}

/// Loads one PEM certificate.
pub fn load_certificate(path: &Path) -> Result<X509, Error> {
    let pem = read(path)?;
    X509::from_pem(&pem).map_err(|e| Error::Crypto {
        context: format!("reading certificate {}", path.display()),
        source: e,
    })
}

/// The receiving side: decrypts with the procedure's key and verifies that `signer`
/// (the hub's certificate, chained to `anchors`) signed it. Returns the content.
/// The reference procedure and tests use it; vendors use `openssl cms`.
pub fn unseal(
    sealed: &[u8],
    recipient_cert: &X509,
    recipient_key: &PKey<Private>,
    signer: &X509,
    anchors: &TrustAnchors,
) -> Result<Vec<u8>, Error> {
    let crypto = |context: &str| {
        let context = context.to_owned();
        move |source| Error::Crypto { context, source }
    };
    let enveloped = CmsContentInfo::from_der(sealed).map_err(crypto("parsing envelope"))?;
    let signed_der = enveloped
        .decrypt(recipient_key, recipient_cert)
        .map_err(crypto("decrypting"))?;
    let mut signed = CmsContentInfo::from_der(&signed_der).map_err(crypto("parsing SignedData"))?;
    let mut signers = Stack::new().map_err(crypto("signer list"))?;
    signers
        .push(signer.clone())
        .map_err(crypto("signer list"))?;
    let mut content = Vec::new();
    // NOINTERN: only the expected signer counts, not whatever certificate the message carries.
    signed
        .verify(
            Some(&signers),
            Some(&anchors.store),
            None,
            Some(&mut content),
            CMSOptions::BINARY | CMSOptions::NOINTERN,
        )
        .map_err(crypto("verifying the signature"))?;
    Ok(content)
}

/// Whether `key` is the private key of `cert`.
pub fn key_belongs(cert: &X509Ref, key: &PKeyRef<Private>) -> bool {
    cert.public_key()
        .map(|public| public.public_eq(key))
        .unwrap_or(false)
}

/// A certificate's subject as `CN=…, O=…`, for messages and log lines.
pub fn subject_of(cert: &openssl::x509::X509Ref) -> String {
    cert.subject_name()
        .entries()
        .filter_map(|entry| {
            let key = entry.object().nid().short_name().ok()?;
            let value = entry.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}
