//! The `cms` envelope: CMS SignedData by the hub, inside CMS AuthEnvelopedData
//! (AES-256-GCM) for the procedure's certificate. A vendor opens it with stock
//! `openssl cms` (see `docs/vendors.md`).

use std::path::Path;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509StoreContext};

use crate::Error;

/// The hub's signing identity.
pub struct Sealer {
    cert: X509,
    key: PKey<Private>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("subject", &subject_of(&self.cert))
            .finish_non_exhaustive()
    }
}

impl Sealer {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, Error> {
        let cert = load_certificate(cert)?;
        let key_pem = read(key)?;
        let key = PKey::private_key_from_pem(&key_pem).map_err(|e| Error::Crypto {
            context: format!("reading private key {}", key.display()),
            source: e,
        })?;
        let matches = cert
            .public_key()
            .map(|public| public.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err(Error::Certificate(
                "the hub's key does not belong to its certificate".into(),
            ));
        }
        Ok(Self { cert, key })
    }

    /// Signs `content` and encrypts the signed structure for `recipient`. Returns DER.
    pub fn seal(&self, content: &[u8], recipient: &X509) -> Result<Vec<u8>, Error> {
        let crypto = |context: &str| {
            let context = context.to_owned();
            move |source| Error::Crypto { context, source }
        };
        let signed = CmsContentInfo::sign(
            Some(&self.cert),
            Some(&self.key),
            None,
            Some(content),
            CMSOptions::BINARY,
        )
        .map_err(crypto("signing"))?;
        let signed_der = signed.to_der().map_err(crypto("encoding SignedData"))?;
        let mut recipients = Stack::new().map_err(crypto("recipient list"))?;
        recipients
            .push(recipient.clone())
            .map_err(crypto("recipient list"))?;
        let enveloped = CmsContentInfo::encrypt(
            &recipients,
            &signed_der,
            Cipher::aes_256_gcm(),
            CMSOptions::BINARY,
        )
        .map_err(crypto("encrypting"))?;
        enveloped
            .to_der()
            .map_err(crypto("encoding AuthEnvelopedData"))
    }
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

pub(crate) fn subject_of(cert: &openssl::x509::X509Ref) -> String {
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
