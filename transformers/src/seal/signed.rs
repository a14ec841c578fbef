//! CMS SignedData (RFC 5652) by the hub's one EC key, assembled here. OpenSSL's
//! `CMS_sign` spent more CPU per message on its own bookkeeping than on the signature:
//! it looked the key's default digest up in the providers, compared the key with the
//! certificate again, and copied the content through a BIO chain (docs/performance.md).
//! The certificate and the signer's identifier are taken once, when the hub's identity
//! is loaded, as the bytes of the certificate: parsed and encoded again, a certificate
//! that is valid but not in the strictest DER (a GeneralizedTime before 2050, a default
//! written out) would change and its own signature would no longer verify.
//!
//! What it makes is what `CMS_sign` made with `BINARY | NOSMIMECAP`: the content
//! embedded as id-data; the signer's certificate; one SignerInfo identified by issuer
//! and serial number, SHA-256, the signed attributes contentType, signingTime and
//! messageDigest, and an ECDSA signature (ecdsa-with-SHA256) over their DER. Stock
//! `openssl cms -verify` and BouncyCastle check it (tests/seal.rs, the vendor suites).

use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignedAttributes};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, DateTime, Decode, Encode, Sequence, ValueOrd};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sha::sha256;
use openssl::sign::Signer;
use openssl::x509::X509;
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::time::Time;

use super::envelope::{DATA, asn1, crypto, issuer_and_serial_number};
use crate::Error;

/// id-signedData.
const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-sha256 (parameters absent, RFC 5754).
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// ecdsa-with-SHA256 (parameters absent, RFC 5758).
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// The signed attributes (RFC 5652, section 11).
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");

/// SignedData (RFC 5652, section 5.1) as the `cms` crate has it, but with the
/// certificate as its own bytes.
#[derive(Sequence)]
struct SignedData {
    version: CmsVersion,
    digest_algorithms: DigestAlgorithmIdentifiers,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<SetOfVec<Any>>,
    signer_infos: SetOfVec<SignerInfo>,
}

/// SignerInfo (RFC 5652, section 5.3), its `sid` the IssuerAndSerialNumber as it stands
/// in the certificate.
#[derive(Clone, Debug, Eq, PartialEq, Sequence, ValueOrd)]
struct SignerInfo {
    version: CmsVersion,
    sid: Any,
    digest_alg: AlgorithmIdentifierOwned,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    signed_attrs: Option<SignedAttributes>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: OctetString,
}

/// The parts of a SignedData that depend on the certificate alone, as its bytes.
pub(crate) struct SignerTemplate {
    certificate: Any,
    sid: Any,
}

impl SignerTemplate {
    /// Takes the hub's certificate once.
    pub(crate) fn of(cert: &X509) -> Result<Self, Error> {
        let der = cert
            .to_der()
            .map_err(crypto("encoding the hub's certificate"))?;
        Ok(Self {
            sid: issuer_and_serial_number(&der).map_err(asn1("the hub's certificate"))?,
            certificate: Any::from_der(&der).map_err(asn1("the hub's certificate"))?,
        })
    }

    /// `content` signed by `key` (the certificate's) at `at`, as a DER ContentInfo.
    pub(crate) fn sign(
        &self,
        key: &PKey<Private>,
        content: &[u8],
        at: OffsetDateTime,
    ) -> Result<Vec<u8>, Error> {
        let attributes = signed_attributes(content, at)?;
        // The signature covers the attributes' DER as a SET OF (tag 0x31), not as the
        // [0] IMPLICIT they are written with (RFC 5652, section 5.4).
        let to_sign = attributes.to_der().map_err(asn1("signed attributes"))?;
        let mut signer =
            Signer::new(MessageDigest::sha256(), key).map_err(crypto("starting the signature"))?;
        signer
            .update(&to_sign)
            .map_err(crypto("signing the attributes"))?;
        let signature = signer
            .sign_to_vec()
            .map_err(crypto("signing the attributes"))?;
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: self.sid.clone(),
            digest_alg: algorithm(SHA256),
            signed_attrs: Some(attributes),
            signature_algorithm: algorithm(ECDSA_SHA256),
            signature: OctetString::new(signature).map_err(asn1("signature"))?,
        };
        let signed = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![algorithm(SHA256)])
                .map_err(asn1("digest algorithms"))?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: DATA,
                econtent: Some(
                    Any::encode_from(&OctetString::new(content).map_err(asn1("content"))?)
                        .map_err(asn1("content"))?,
                ),
            },
            certificates: Some(
                SetOfVec::try_from(vec![self.certificate.clone()]).map_err(asn1("certificates"))?,
            ),
            signer_infos: SetOfVec::try_from(vec![signer_info]).map_err(asn1("signer infos"))?,
        };
        ContentInfo {
            content_type: SIGNED_DATA,
            content: Any::encode_from(&signed).map_err(asn1("SignedData"))?,
        }
        .to_der()
        .map_err(asn1("ContentInfo"))
    }
}

fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

/// contentType, signingTime (UTCTime until 2049, as RFC 5652 requires) and
/// messageDigest, in DER's order.
fn signed_attributes(content: &[u8], at: OffsetDateTime) -> Result<SignedAttributes, Error> {
    let seconds = u64::try_from(at.unix_timestamp())
        .map_err(|_| Error::Envelope("the signing time is before 1970".into()))?;
    let time = Time::from(
        DateTime::from_unix_duration(std::time::Duration::from_secs(seconds))
            .map_err(asn1("signing time"))?,
    );
    let attribute = |oid, value: Any| -> Result<Attribute, Error> {
        Ok(Attribute {
            oid,
            values: SetOfVec::try_from(vec![value]).map_err(asn1("attribute value"))?,
        })
    };
    let digest = OctetString::new(sha256(content).to_vec()).map_err(asn1("message digest"))?;
    SetOfVec::try_from(vec![
        attribute(
            CONTENT_TYPE,
            Any::encode_from(&DATA).map_err(asn1("content type"))?,
        )?,
        attribute(
            SIGNING_TIME,
            Any::encode_from(&time).map_err(asn1("signing time"))?,
        )?,
        attribute(
            MESSAGE_DIGEST,
            Any::encode_from(&digest).map_err(asn1("digest"))?,
        )?,
    ])
    .map_err(asn1("signed attributes"))
}
