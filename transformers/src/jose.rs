//! The `jose` envelope, compatible with FIT-Connect: the XML message signed by the hub
//! as a compact JWS (PS512 with an RSA key of at least 3072 bits, or ES256 with an EC
//! P-256 key; the hub's certificate chain in `x5c`), and that JWS encrypted as a compact
//! JWE for the procedure's RSA certificate (RSA-OAEP-256, A256GCM). Attachments travel
//! as separate JWEs of their raw bytes; their integrity is the SHA-512 in the signed
//! message. A vendor opens it with any JOSE library (see `docs/vendors.md`,
//! "The `jose` profile").

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jwe::{self, JweHeader};
use josekit::jws::{self, JwsAlgorithm, JwsHeader, JwsSigner, JwsVerifier};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private};
use openssl::x509::{X509, X509KeyUsage, X509Ref};
use serde_json::{Map, Value};

use crate::Error;
use crate::authentifizierung::{REPORT_TYPE, authentication_information};
use crate::seal::{TrustAnchors, allows_usage, key_belongs, load_certificate, subject_of};

/// `alg` of the JWE: the content key wrapped with RSAES-OAEP (SHA-256, MGF1 with SHA-256).
pub const KEY_ENCRYPTION: &str = "RSA-OAEP-256";
/// `enc` of the JWE: the content encrypted with AES-256-GCM.
pub const CONTENT_ENCRYPTION: &str = "A256GCM";
/// `cty` of the JWE that carries a message: its plaintext is a compact JWS.
pub const NESTED_CONTENT_TYPE: &str = "JOSE";
/// `cty` of the JWS: its payload is the XML message.
pub const MESSAGE_CONTENT_TYPE: &str = "application/xml";
/// The smallest RSA key the profile accepts, to sign and to encrypt (BSI TR-02102-1).
pub const MIN_RSA_BITS: u32 = 3072;
/// The JWS protected header parameter with the applicant's identification, shaped as
/// FIT-Connect's metadata field of that name: the header is the profile's metadata,
/// signed with the message and encrypted with it.
pub const AUTHENTICATION_INFORMATION: &str = "authenticationInformation";
/// `typ` of the signed Identification Report inside it.
pub const REPORT_TOKEN_TYPE: &str = "JWT";

/// The JWS algorithms of the profile, chosen by the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signature {
    /// RSASSA-PSS with SHA-512, for RSA keys of at least [`MIN_RSA_BITS`].
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

/// `$make` with `$alg` bound to the josekit algorithm of `$signature`: the algorithms
/// are types of their own, so each gets its copy of the same expression.
macro_rules! with_algorithm {
    ($signature:expr, |$alg:ident| $make:expr) => {
        match $signature {
            Signature::Ps512 => {
                let $alg = jws::PS512;
                $make
            }
            Signature::Es256 => {
                let $alg = jws::ES256;
                $make
            }
        }
    };
}

/// The hub's signing identity for the `jose` profile.
pub struct JoseSealer {
    /// DER of the hub's certificate followed by its chain: the JWS `x5c`.
    x5c: Vec<Vec<u8>>,
    signer: Box<dyn JwsSigner>,
    subject: String,
}

impl std::fmt::Debug for JoseSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoseSealer")
            .field("subject", &self.subject)
            .field("alg", &self.signer.algorithm().name())
            .finish_non_exhaustive()
    }
}

impl JoseSealer {
    /// The hub's certificate and private key from PEM files and, optionally, a PEM file
    /// with the intermediate certificates (the issuer of the hub's certificate first),
    /// which follow the hub's certificate in `x5c`.
    pub fn load(cert: &Path, key: &Path, chain: Option<&Path>) -> Result<Self, Error> {
        let cert = load_certificate(cert)?;
        // Refuses a key file that others than its owner can read.
        let key_pem = crate::seal::load_private_key(key)?;
        let chain = match chain {
            Some(path) => {
                let pem = read(path)?;
                X509::stack_from_pem(&pem).map_err(|e| Error::Crypto {
                    context: format!("reading certificate chain {}", path.display()),
                    source: e,
                })?
            }
            None => Vec::new(),
        };
        Self::new(cert, key_pem, chain)
    }

    /// The hub's signing identity from its certificate, its key and the intermediate
    /// certificates for `x5c`. Refuses RSA keys below [`MIN_RSA_BITS`] and EC keys on
    /// other curves than P-256.
    pub fn new(cert: X509, key: PKey<Private>, chain: Vec<X509>) -> Result<Self, Error> {
        let subject = subject_of(&cert);
        if !key_belongs(&cert, &key) {
            return Err(Error::Certificate(format!(
                "the hub's key does not belong to its certificate {subject}"
            )));
        }
        let pkcs8 = key
            .private_key_to_pkcs8()
            .map_err(crypto("encoding the hub's key"))?;
        let signer: Box<dyn JwsSigner> = with_algorithm!(signature_for(&key, &subject)?, |alg| {
            let loading = format!("loading the hub's key for {}", alg.name());
            Box::new(alg.signer_from_der(&pkcs8).map_err(jose(&loading))?)
        });
        let mut x5c = vec![cert.to_der().map_err(crypto("encoding certificate"))?];
        for cert in &chain {
            x5c.push(cert.to_der().map_err(crypto("encoding certificate"))?);
        }
        Ok(Self {
            x5c,
            signer,
            subject,
        })
    }

    /// The JWS algorithm of the hub's key: `PS512` or `ES256`.
    pub fn algorithm(&self) -> &str {
        self.signer.algorithm().name()
    }

    /// Signs `content` (the XML message) as a compact JWS and encrypts that as a compact
    /// JWE for `recipient`, which must hold an RSA key of at least [`MIN_RSA_BITS`].
    ///
    /// JWS protected header: `alg` (`PS512`/`ES256`), `x5c` (hub certificate, chain),
    /// `cty` = `application/xml`. JWE protected header: `alg` = `RSA-OAEP-256`,
    /// `enc` = `A256GCM`, `kid` = `x5t#S256` = [`thumbprint`] of `recipient`,
    /// `cty` = `JOSE`.
    pub fn seal(&self, content: &[u8], recipient: &X509) -> Result<String, Error> {
        self.seal_with(content, recipient, None)
    }

    /// As [`JoseSealer::seal`]; with the applicant's Identification Report
    /// ([`crate::authentifizierung::Authentifizierung::identification_report`]) the JWS
    /// protected header also carries [`AUTHENTICATION_INFORMATION`]: one entry
    /// `{"type": "identificationReport", "version": "2.0.0", "content": <JWT>}`, the JWT
    /// being the report signed by the hub like the message (`alg`, `x5c`; `typ` = `JWT`).
    pub fn seal_with(
        &self,
        content: &[u8],
        recipient: &X509,
        report: Option<&Value>,
    ) -> Result<String, Error> {
        // Refuse the recipient before signing anything.
        check_recipient(recipient)?;
        let mut header = JwsHeader::new();
        header.set_x509_certificate_chain(&self.x5c);
        header.set_content_type(MESSAGE_CONTENT_TYPE);
        if let Some(report) = report {
            let jwt = self.sign_report(report)?;
            header
                .set_claim(
                    AUTHENTICATION_INFORMATION,
                    Some(Value::Array(vec![authentication_information(&jwt)])),
                )
                .map_err(jose("adding the authentication information"))?;
        }
        let signed = jws::serialize_compact(content, &header, &*self.signer)
            .map_err(jose("signing the message"))?;
        encrypt(signed.as_bytes(), Some(NESTED_CONTENT_TYPE), recipient)
    }

    /// The Identification Report as a compact JWS (a JWT) signed with the hub's key.
    fn sign_report(&self, report: &Value) -> Result<String, Error> {
        let mut header = JwsHeader::new();
        header.set_token_type(REPORT_TOKEN_TYPE);
        header.set_x509_certificate_chain(&self.x5c);
        let payload = serde_json::to_vec(report)
            .map_err(|e| Error::JoseRefused(format!("the identification report: {e}")))?;
        jws::serialize_compact(&payload, &header, &*self.signer)
            .map_err(jose("signing the identification report"))
    }

    /// Encrypts an attachment's raw bytes as a compact JWE for `recipient` (same `alg`,
    /// `enc`, `kid` and `x5t#S256` as [`JoseSealer::seal`], no `cty`). It is not signed
    /// itself: the signed message carries its SHA-512.
    pub fn seal_attachment(&self, content: &[u8], recipient: &X509) -> Result<String, Error> {
        encrypt(content, None, recipient)
    }
}

/// The SHA-256 thumbprint of a certificate's DER, base64url without padding: the `kid`
/// and `x5t#S256` of the JWEs for that certificate.
pub fn thumbprint(cert: &X509Ref) -> Result<String, Error> {
    let digest = cert
        .digest(MessageDigest::sha256())
        .map_err(crypto("hashing a certificate"))?;
    Ok(URL_SAFE_NO_PAD.encode(digest))
}

/// Checks that `cert` can receive the `jose` profile: an RSA key of at least
/// [`MIN_RSA_BITS`] bits and, where the certificate restricts usage, `keyEncipherment`.
pub fn check_recipient(cert: &X509Ref) -> Result<(), Error> {
    let subject = subject_of(cert);
    let key = cert
        .public_key()
        .map_err(crypto(&format!("reading the key of {subject}")))?;
    match key.id() {
        Id::RSA => {}
        Id::EC => {
            return Err(Error::Certificate(format!(
                "{subject}: an EC certificate cannot receive the jose profile, which encrypts with {KEY_ENCRYPTION} only (as FIT-Connect); use an RSA certificate of at least {MIN_RSA_BITS} bits, or the cms profile"
            )));
        }
        _ => {
            return Err(Error::Certificate(format!(
                "{subject}: the jose profile needs an RSA key of at least {MIN_RSA_BITS} bits ({KEY_ENCRYPTION})"
            )));
        }
    }
    let bits = key.bits();
    if bits < MIN_RSA_BITS {
        return Err(Error::Certificate(format!(
            "{subject}: the RSA key has {bits} bits; the jose profile needs at least {MIN_RSA_BITS}"
        )));
    }
    allows_usage(
        cert,
        &subject,
        X509KeyUsage::KEY_ENCIPHERMENT,
        "keyEncipherment",
    )
}

/// The receiving side: decrypts `jwe` with the procedure's key, checks that it was
/// encrypted for `recipient_cert` (`kid`), verifies the inner JWS with the leaf of its
/// `x5c`, which must be `expected_signer` (the hub, chained to `anchors`), and returns
/// the payload (the XML message). The reference procedure and tests use it; vendors use
/// a JOSE library (`docs/vendors.md`).
pub fn unseal(
    jwe: &str,
    recipient_cert: &X509,
    recipient_key: &PKey<Private>,
    expected_signer: &X509,
    anchors: &TrustAnchors,
) -> Result<Vec<u8>, Error> {
    unseal_message(jwe, recipient_cert, recipient_key, expected_signer, anchors)
        .map(|opened| opened.payload)
}

/// A message opened by [`unseal_message`].
#[derive(Debug, Clone)]
pub struct Opened {
    /// The XML message.
    pub payload: Vec<u8>,
    /// The Identification Reports of `authenticationInformation`, each verified as signed
    /// by the same hub; empty for an anonymous submission.
    pub identification_reports: Vec<Value>,
}

/// As [`unseal`], and verifies and decodes the `authenticationInformation` of the
/// message's JWS header.
pub fn unseal_message(
    jwe: &str,
    recipient_cert: &X509,
    recipient_key: &PKey<Private>,
    expected_signer: &X509,
    anchors: &TrustAnchors,
) -> Result<Opened, Error> {
    let (plaintext, header) = decrypt(jwe, recipient_cert, recipient_key)?;
    if header.content_type() != Some(NESTED_CONTENT_TYPE) {
        return Err(Error::JoseRefused(format!(
            "the JWE does not carry a signed message (cty is not {NESTED_CONTENT_TYPE})"
        )));
    }
    let signed = std::str::from_utf8(&plaintext)
        .map_err(|_| Error::JoseRefused("the decrypted content is not a compact JWS".into()))?;
    let (payload, header) = verify(signed, expected_signer, anchors, Some(MESSAGE_CONTENT_TYPE))?;
    let entries = match header.claim(AUTHENTICATION_INFORMATION) {
        None => Vec::new(),
        Some(Value::Array(entries)) => entries.clone(),
        Some(_) => {
            return Err(Error::JoseRefused(format!(
                "{AUTHENTICATION_INFORMATION} is not a list"
            )));
        }
    };
    let mut identification_reports = Vec::new();
    for entry in entries {
        if entry.get("type").and_then(Value::as_str) != Some(REPORT_TYPE) {
            return Err(Error::JoseRefused(format!(
                "{AUTHENTICATION_INFORMATION} holds an entry that is no {REPORT_TYPE}"
            )));
        }
        let jwt = entry
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::JoseRefused(format!("an {REPORT_TYPE} without content")))?;
        let (report, _) = verify(jwt, expected_signer, anchors, None)?;
        identification_reports.push(
            serde_json::from_slice(&report)
                .map_err(|_| Error::JoseRefused(format!("the {REPORT_TYPE} is not JSON")))?,
        );
    }
    Ok(Opened {
        payload,
        identification_reports,
    })
}

/// Decrypts an attachment's JWE made by [`JoseSealer::seal_attachment`]. Its integrity
/// is checked against the SHA-512 in the signed message.
pub fn unseal_attachment(
    jwe: &str,
    recipient_cert: &X509,
    recipient_key: &PKey<Private>,
) -> Result<Vec<u8>, Error> {
    decrypt(jwe, recipient_cert, recipient_key).map(|(plaintext, _)| plaintext)
}

fn encrypt(
    content: &[u8],
    content_type: Option<&str>,
    recipient: &X509Ref,
) -> Result<String, Error> {
    check_recipient(recipient)?;
    let spki = recipient
        .public_key()
        .and_then(|key| key.public_key_to_der())
        .map_err(crypto("reading the recipient's key"))?;
    let encrypter = jwe::RSA_OAEP_256
        .encrypter_from_der(&spki)
        .map_err(jose("loading the recipient's key"))?;
    let digest = recipient
        .digest(MessageDigest::sha256())
        .map_err(crypto("hashing a certificate"))?;
    let mut header = JweHeader::new();
    header.set_content_encryption(CONTENT_ENCRYPTION);
    header.set_key_id(URL_SAFE_NO_PAD.encode(digest));
    header.set_x509_certificate_sha256_thumbprint(digest);
    if let Some(content_type) = content_type {
        header.set_content_type(content_type);
    }
    jwe::serialize_compact(content, &header, &encrypter).map_err(jose("encrypting"))
}

fn decrypt(
    jwe: &str,
    recipient_cert: &X509,
    recipient_key: &PKey<Private>,
) -> Result<(Vec<u8>, JweHeader), Error> {
    let header = protected_header(jwe, 5, "JWE")?;
    expect(&header, "alg", KEY_ENCRYPTION, "JWE")?;
    expect(&header, "enc", CONTENT_ENCRYPTION, "JWE")?;
    if header.contains_key("zip") {
        return Err(Error::JoseRefused(
            "compressed JWEs (zip) are not part of the profile".into(),
        ));
    }
    let subject = subject_of(recipient_cert);
    let kid = thumbprint(recipient_cert)?;
    match header.get("kid") {
        Some(Value::String(actual)) if *actual == kid => {}
        Some(Value::String(actual)) => {
            return Err(Error::JoseRefused(format!(
                "the JWE is for the certificate with thumbprint {actual}, not for {subject} ({kid})"
            )));
        }
        _ => return Err(Error::JoseRefused("the JWE has no kid".into())),
    }
    if let Some(x5t) = header.get("x5t#S256")
        && x5t.as_str() != Some(kid.as_str())
    {
        return Err(Error::JoseRefused(
            "the JWE's x5t#S256 differs from its kid".into(),
        ));
    }
    if !key_belongs(recipient_cert, recipient_key) {
        return Err(Error::Certificate(format!(
            "the private key does not belong to {subject}"
        )));
    }
    let der = recipient_key
        .private_key_to_pkcs8()
        .map_err(crypto("encoding the recipient's key"))?;
    let decrypter = jwe::RSA_OAEP_256
        .decrypter_from_der(&der)
        .map_err(jose("loading the recipient's key"))?;
    jwe::deserialize_compact(jwe, &decrypter).map_err(jose("decrypting the JWE"))
}

/// Verifies a compact JWS of the profile signed by `expected_signer` (the leaf of its
/// `x5c`, chained to `anchors`); `cty` as given, or (`None`) an Identification Report
/// (`typ` = `JWT`, no `cty`).
fn verify(
    signed: &str,
    expected_signer: &X509,
    anchors: &TrustAnchors,
    content_type: Option<&str>,
) -> Result<(Vec<u8>, JwsHeader), Error> {
    let header = protected_header(signed, 3, "JWS")?;
    let leaf = match header.get("x5c") {
        Some(Value::Array(chain)) => match chain.first() {
            Some(Value::String(leaf)) => STANDARD.decode(leaf).map_err(|_| {
                Error::JoseRefused("x5c[0] is not base64 (standard alphabet, RFC 7515)".into())
            })?,
            _ => return Err(Error::JoseRefused("the JWS's x5c is empty".into())),
        },
        _ => return Err(Error::JoseRefused("the JWS has no x5c".into())),
    };
    let expected = expected_signer
        .to_der()
        .map_err(crypto("encoding certificate"))?;
    if leaf != expected {
        let actual = X509::from_der(&leaf)
            .map(|cert| subject_of(&cert))
            .unwrap_or_else(|_| "an unreadable certificate".into());
        return Err(Error::Certificate(format!(
            "the message is signed by {actual}, not by the expected signer {}",
            subject_of(expected_signer)
        )));
    }
    anchors.check(expected_signer)?;
    match content_type {
        Some(content_type) => expect(&header, "cty", content_type, "JWS")?,
        None => expect(&header, "typ", REPORT_TOKEN_TYPE, "identification report")?,
    }
    let subject = subject_of(expected_signer);
    let key = expected_signer
        .public_key()
        .map_err(crypto("reading the signer's key"))?;
    let spki = key
        .public_key_to_der()
        .map_err(crypto("reading the signer's key"))?;
    // The algorithm follows from the expected signer's key, never from the header alone:
    // josekit refuses a header `alg` other than the verifier's.
    let verifier: Box<dyn JwsVerifier> = with_algorithm!(signature_for(&key, &subject)?, |alg| {
        Box::new(
            alg.verifier_from_der(&spki)
                .map_err(jose("loading the signer's key"))?,
        )
    });
    jws::deserialize_compact(signed, &*verifier).map_err(jose("verifying the signature"))
}

/// The profile's signature algorithm for `key`, or why the key is refused.
fn signature_for<T: HasPublic>(key: &PKeyRef<T>, subject: &str) -> Result<Signature, Error> {
    match key.id() {
        Id::RSA => {
            let bits = key.bits();
            if bits < MIN_RSA_BITS {
                Err(Error::Certificate(format!(
                    "{subject}: the RSA key has {bits} bits; the jose profile signs with RSA keys of at least {MIN_RSA_BITS} bits (PS512)"
                )))
            } else {
                Ok(Signature::Ps512)
            }
        }
        Id::EC => {
            let curve = key.ec_key().ok().and_then(|ec| ec.group().curve_name());
            if curve == Some(Nid::X9_62_PRIME256V1) {
                Ok(Signature::Es256)
            } else {
                Err(Error::Certificate(format!(
                    "{subject}: the EC key is not on P-256; the jose profile signs with ES256"
                )))
            }
        }
        _ => Err(Error::Certificate(format!(
            "{subject}: the jose profile signs with RSA (PS512) or EC P-256 (ES256) keys only"
        ))),
    }
}

/// The decoded protected header of a compact serialization with `parts` parts.
fn protected_header(compact: &str, parts: usize, what: &str) -> Result<Map<String, Value>, Error> {
    let refuse = || Error::JoseRefused(format!("not a compact {what}"));
    if compact.split('.').count() != parts {
        return Err(refuse());
    }
    let encoded = compact.split('.').next().ok_or_else(refuse)?;
    let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| refuse())?;
    match serde_json::from_slice(&json) {
        Ok(Value::Object(header)) => Ok(header),
        _ => Err(refuse()),
    }
}

fn expect(header: &Map<String, Value>, name: &str, value: &str, what: &str) -> Result<(), Error> {
    match header.get(name).and_then(Value::as_str) {
        Some(actual) if actual == value => Ok(()),
        Some(actual) => Err(Error::JoseRefused(format!(
            "the {what}'s {name} is {actual}, the profile requires {value}"
        ))),
        None => Err(Error::JoseRefused(format!(
            "the {what} has no {name} (the profile requires {value})"
        ))),
    }
}

pub(crate) fn crypto(context: &str) -> impl FnOnce(openssl::error::ErrorStack) -> Error + use<> {
    let context = context.to_owned();
    move |source| Error::Crypto { context, source }
}

pub(crate) fn jose(context: &str) -> impl FnOnce(josekit::JoseError) -> Error + use<> {
    let context = context.to_owned();
    move |source| Error::Jose { context, source }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}
