//! CMS AuthEnvelopedData (RFC 5083) for one EC recipient, assembled here because the
//! `openssl` crate's CMS encrypt cannot choose the KDF of ECDH key agreement, and
//! OpenSSL's default, `dhSinglePass-stdDH-sha1kdf-scheme`, is outside BSI TR-02102-1.
//!
//! What it makes, all within BSI TR-02102-1:
//! - key agreement: ephemeral-static ECDH on the recipient's curve (RFC 5753),
//!   `dhSinglePass-stdDH-sha256kdf-scheme` (ANSI X9.63 KDF with SHA-256),
//! - key wrap: AES-256 key wrap (RFC 3394, `id-aes256-wrap`),
//! - content: AES-256-GCM, 12-byte random nonce, 16-byte tag (RFC 5084).
//!
//! OpenSSL does the cryptography; the `cms`/`der` crates only provide the ASN.1 types.
//! Stock `openssl cms -decrypt` and BouncyCastle open it.

use cms::authenveloped_data::AuthEnvelopedData;
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo,
    OriginatorIdentifierOrKey, OriginatorPublicKey, RecipientEncryptedKey, RecipientInfo,
    RecipientInfos,
};
use der::asn1::{BitString, ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, AnyRef, Decode, Encode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use openssl::aes::{AesKey, wrap_key};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcKey, EcKeyRef, EcPoint, PointConversionForm};
use openssl::pkey::Public;
use openssl::rand::rand_bytes;
use openssl::sha::Sha256;
use openssl::symm::{Cipher, encrypt_aead};
use openssl::x509::X509;
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::Error;

/// id-ct-authEnvelopedData (RFC 5083).
const AUTH_ENVELOPED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.23");
/// id-data: the content is opaque bytes (the SignedData's DER, or an attachment).
pub(super) const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-ecPublicKey, for the ephemeral key (parameters absent: the recipient's curve).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// dhSinglePass-stdDH-sha256kdf-scheme (SEC 1, RFC 5753).
pub(crate) const DH_SHA256_KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.1.11.1");
/// id-aes256-wrap (RFC 3565).
const AES256_WRAP: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.45");
/// id-aes256-GCM (RFC 5084).
const AES256_GCM: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.46");

/// Bits of the key-encryption key: AES-256, one SHA-256 block of the KDF.
const KEK_BITS: u32 = 256;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Ephemeral-static ECDH (SEC 1, section 3.3.1): a fresh key pair on the recipient's
/// curve; the shared secret is the x-coordinate of the recipient's point times the
/// fresh private key. Returns the fresh public point (uncompressed) and the secret.
///
/// OpenSSL's EC primitives, called as its `ECDH_compute_key` calls them (the private
/// key is flagged constant-time by `EC_KEY_generate_key`). The EVP key agreement would
/// first copy the fresh key into a provider, rebuilding its curve, and check the
/// recipient's point again: more CPU than the multiplication itself (docs/performance.md).
/// The recipient's key was read and checked when its certificate was chosen (on these
/// curves, cofactor 1, no point but the point at infinity lacks the group's order:
/// tests/seal.rs), so it is not checked again per message.
pub fn key_agreement(recipient: &EcKeyRef<Public>) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), Error> {
    let group = recipient.group();
    let ephemeral = EcKey::generate(group).map_err(crypto("generating the ephemeral key"))?;
    let mut bn = BigNumContext::new().map_err(crypto("ephemeral key"))?;
    let point = ephemeral
        .public_key()
        .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut bn)
        .map_err(crypto("encoding the ephemeral key"))?;
    let mut product = EcPoint::new(group).map_err(crypto("key agreement"))?;
    product
        .mul2(
            group,
            recipient.public_key(),
            ephemeral.private_key(),
            &mut bn,
        )
        .map_err(crypto("key agreement"))?;
    let (mut x, mut y) = (
        BigNum::new().map_err(crypto("key agreement"))?,
        BigNum::new().map_err(crypto("key agreement"))?,
    );
    // Fails for the point at infinity, as `ECDH_compute_key` does.
    product
        .affine_coordinates(group, &mut x, &mut y, &mut bn)
        .map_err(crypto("key agreement"))?;
    let size = i32::try_from(group.degree().div_ceil(8))
        .map_err(|_| Error::Envelope("key agreement: curve too large".into()))?;
    let shared = Zeroizing::new(x.to_vec_padded(size).map_err(crypto("key agreement"))?);
    // Either coordinate gives the secret away.
    x.clear();
    y.clear();
    Ok((point, shared))
}

/// ECC-CMS-SharedInfo (RFC 5753, section 7.2): the KDF's input besides the secret.
#[derive(Sequence)]
struct EccCmsSharedInfo {
    key_info: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    entity_u_info: Option<OctetString>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    supp_pub_info: OctetString,
}

/// GCMParameters (RFC 5084, section 3.2).
#[derive(Sequence)]
struct GcmParameters {
    nonce: OctetString,
    icv_len: u8,
}

pub(super) fn crypto(context: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> Error {
    move |source| Error::Crypto {
        context: context.into(),
        source,
    }
}

pub(super) fn asn1(context: &'static str) -> impl FnOnce(der::Error) -> Error {
    move |e| Error::Envelope(format!("{context}: {e}"))
}

/// Encrypts `content` for `recipient`, whose EC key (which the caller has checked) is
/// `recipient_key`, as a DER ContentInfo with AuthEnvelopedData.
pub(crate) fn auth_enveloped(
    content: &[u8],
    recipient: &X509,
    recipient_key: &EcKeyRef<Public>,
) -> Result<Vec<u8>, Error> {
    let rid = recipient_id(recipient)?;
    let (ephemeral_point, shared) = key_agreement(recipient_key)?;

    let wrap_algorithm = AlgorithmIdentifierOwned {
        oid: AES256_WRAP,
        parameters: None,
    };
    let kek = kdf_sha256(&shared, &wrap_algorithm)?;

    let mut cek = Zeroizing::new([0u8; 32]);
    rand_bytes(cek.as_mut_slice()).map_err(crypto("content key"))?;
    let mut nonce = [0u8; NONCE_LEN];
    rand_bytes(&mut nonce).map_err(crypto("nonce"))?;
    let mut tag = [0u8; TAG_LEN];
    // No authenticated attributes, hence no additional authenticated data.
    let ciphertext = encrypt_aead(
        Cipher::aes_256_gcm(),
        cek.as_slice(),
        Some(&nonce),
        &[],
        content,
        &mut tag,
    )
    .map_err(crypto("encrypting"))?;

    // RFC 3394: the wrapped key is 8 bytes longer than the key.
    let mut wrapped = [0u8; 40];
    let kek = AesKey::new_encrypt(kek.as_slice())
        .map_err(|_| Error::Envelope("the key-encryption key is not an AES key".into()))?;
    wrap_key(&kek, None, &mut wrapped, cek.as_slice())
        .map_err(|_| Error::Envelope("wrapping the content key failed".into()))?;

    let kari = KeyAgreeRecipientInfo {
        version: CmsVersion::V3,
        originator: OriginatorIdentifierOrKey::OriginatorKey(OriginatorPublicKey {
            algorithm: AlgorithmIdentifierOwned {
                oid: EC_PUBLIC_KEY,
                parameters: None,
            },
            public_key: BitString::from_bytes(&ephemeral_point).map_err(asn1("ephemeral key"))?,
        }),
        ukm: None,
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: DH_SHA256_KDF,
            parameters: Some(Any::encode_from(&wrap_algorithm).map_err(asn1("key wrap"))?),
        },
        recipient_enc_keys: vec![RecipientEncryptedKey {
            rid: KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(rid),
            enc_key: OctetString::new(wrapped.to_vec()).map_err(asn1("wrapped key"))?,
        }],
    };
    let gcm = GcmParameters {
        nonce: OctetString::new(nonce.to_vec()).map_err(asn1("nonce"))?,
        icv_len: TAG_LEN as u8,
    };
    let recipients =
        SetOfVec::try_from(vec![RecipientInfo::Kari(kari)]).map_err(asn1("recipient infos"))?;
    let enveloped = AuthEnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos(recipients),
        auth_encrypted_content_info: EncryptedContentInfo {
            content_type: DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: AES256_GCM,
                parameters: Some(Any::encode_from(&gcm).map_err(asn1("GCM parameters"))?),
            },
            encrypted_content: Some(OctetString::new(ciphertext).map_err(asn1("ciphertext"))?),
        },
        auth_attrs: None,
        mac: OctetString::new(tag.to_vec()).map_err(asn1("tag"))?,
        unauth_attrs: None,
    };
    ContentInfo {
        content_type: AUTH_ENVELOPED_DATA,
        content: Any::encode_from(&enveloped).map_err(asn1("AuthEnvelopedData"))?,
    }
    .to_der()
    .map_err(asn1("ContentInfo"))
}

/// The recipient as issuer and serial number of its certificate.
fn recipient_id(recipient: &X509) -> Result<IssuerAndSerialNumber, Error> {
    let der = recipient
        .to_der()
        .map_err(crypto("encoding the recipient's certificate"))?;
    issuer_and_serial_number(&der)
        .and_then(|raw| raw.decode_as())
        .map_err(asn1("the recipient's certificate"))
}

/// IssuerAndSerialNumber (RFC 5652, section 10.2.4) of a certificate, from its own
/// bytes: `tbsCertificate` is `[0] version` (optional), `serialNumber`, `signature`,
/// `issuer`, …
pub(super) fn issuer_and_serial_number(certificate: &[u8]) -> der::Result<Any> {
    let outer = AnyRef::from_der(certificate)?;
    let tbs: AnyRef<'_> = SliceReader::new(outer.value())?.decode()?;
    let mut fields = SliceReader::new(tbs.value())?;
    let mut serial: AnyRef<'_> = fields.decode()?;
    if serial.tag()
        == (Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(0),
        })
    {
        serial = fields.decode()?;
    }
    let _signature: AnyRef<'_> = fields.decode()?;
    let issuer: AnyRef<'_> = fields.decode()?;
    let mut sequence = Vec::new();
    issuer.encode_to_vec(&mut sequence)?;
    serial.encode_to_vec(&mut sequence)?;
    Any::new(Tag::Sequence, sequence)
}

/// ANSI X9.63 KDF with SHA-256 (RFC 5753, section 7.2): one block,
/// SHA-256(Z || counter 1 || DER of ECC-CMS-SharedInfo), is the 256-bit KEK.
fn kdf_sha256(
    shared: &[u8],
    wrap_algorithm: &AlgorithmIdentifierOwned,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let shared_info = EccCmsSharedInfo {
        key_info: wrap_algorithm.clone(),
        entity_u_info: None,
        supp_pub_info: OctetString::new(KEK_BITS.to_be_bytes()).map_err(asn1("KDF input"))?,
    }
    .to_der()
    .map_err(asn1("KDF input"))?;
    let mut hash = Sha256::new();
    hash.update(shared);
    hash.update(&1u32.to_be_bytes());
    hash.update(&shared_info);
    Ok(Zeroizing::new(hash.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The KDF against an independent computation: OpenSSL's own X9.63 KDF
    /// (`openssl kdf X963KDF`), so a mistake in the shared info shows here.
    #[test]
    fn the_kdf_is_x963_with_sha256_over_the_shared_info() {
        let shared = [7u8; 32];
        let wrap = AlgorithmIdentifierOwned {
            oid: AES256_WRAP,
            parameters: None,
        };
        let ours = kdf_sha256(&shared, &wrap).unwrap();
        // SEQUENCE { SEQUENCE { id-aes256-wrap }, [2] { OCTET STRING 00000100 } }
        let info = "3015300b060960864801650304012da206040400000100";
        let output = std::process::Command::new("openssl")
            .args([
                "kdf",
                "-keylen",
                "32",
                "-kdfopt",
                "digest:SHA256",
                "-kdfopt",
                &format!("hexsecret:{}", hex::encode(shared)),
                "-kdfopt",
                &format!("hexinfo:{info}"),
                "X963KDF",
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let theirs = String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .replace(':', "")
            .to_lowercase();
        assert_eq!(hex::encode(ours.as_slice()), theirs);
    }
}
