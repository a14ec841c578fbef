//! FIT-Connect's end-to-end encryption as its senders and subscribers use it: a
//! destination's RSA key published as a JWK (RSA-OAEP-256, `key_ops: ["wrapKey"]`, its
//! certificate chain in `x5c`, its `kid` the RFC 7638 thumbprint), and compact JWEs
//! (`RSA-OAEP-256` / `A256GCM`, optionally `zip: DEF`) encrypted for it.
//!
//! The hub holds a destination's private key on behalf of the procedure behind it: it
//! decrypts what senders submit, and maps it to the procedure's own message.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jwe::{self, JweCompression, JweContext, JweHeader};
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sha::sha256;
use openssl::x509::X509;
use serde_json::{Value, json};

use crate::Error;
use crate::jose::{CONTENT_ENCRYPTION, KEY_ENCRYPTION, crypto, jose};
use crate::seal::{key_belongs, load_certificate, load_private_key, subject_of};

/// The smallest RSA key FIT-Connect accepts for a destination's encryption key.
pub const MIN_DESTINATION_RSA_BITS: u32 = 4096;

/// A destination's encryption key: the private key and its certificate chain.
pub struct DestinationKey {
    key: PKey<Private>,
    /// The certificate, then the certificates that issued it (DER).
    chain: Vec<Vec<u8>>,
    kid: String,
    /// The public JWK members `n` and `e` (base64url).
    modulus: String,
    exponent: String,
}

impl std::fmt::Debug for DestinationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DestinationKey {
    /// Loads the key and its certificate (and the issuing chain, e.g. the hub's CA).
    pub fn load(cert: &Path, key: &Path, chain: &[&Path]) -> Result<Self, Error> {
        let certificate = load_certificate(cert)?;
        let key = load_private_key(key)?;
        let mut certificates = vec![certificate];
        for path in chain {
            certificates.push(load_certificate(path)?);
        }
        Self::new(key, &certificates)
    }

    /// The key with its certificate first in `chain`.
    pub fn new(key: PKey<Private>, chain: &[X509]) -> Result<Self, Error> {
        let Some(certificate) = chain.first() else {
            return Err(Error::Certificate(
                "a destination key needs its certificate".into(),
            ));
        };
        let subject = subject_of(certificate);
        if !key_belongs(certificate, &key) {
            return Err(Error::Certificate(format!(
                "the private key does not belong to {subject}"
            )));
        }
        if key.id() != Id::RSA || key.bits() < MIN_DESTINATION_RSA_BITS {
            return Err(Error::Certificate(format!(
                "{subject}: a FIT-Connect destination needs an RSA key of at least {MIN_DESTINATION_RSA_BITS} bits"
            )));
        }
        let rsa = key.rsa().map_err(crypto("reading the RSA key"))?;
        let modulus = URL_SAFE_NO_PAD.encode(rsa.n().to_vec());
        let exponent = URL_SAFE_NO_PAD.encode(rsa.e().to_vec());
        let der = chain
            .iter()
            .map(|cert| cert.to_der().map_err(crypto("encoding a certificate")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            kid: rfc7638_thumbprint(&modulus, &exponent),
            key,
            chain: der,
            modulus,
            exponent,
        })
    }

    /// The key's id: its RFC 7638 thumbprint, which senders write as the JWE's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as FIT-Connect publishes a destination's encryption key.
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "alg": KEY_ENCRYPTION,
            "use": "enc",
            "key_ops": ["wrapKey"],
            "n": self.modulus,
            "e": self.exponent,
            "x5c": self.chain.iter().map(|der| STANDARD.encode(der)).collect::<Vec<_>>(),
        })
    }

    /// Decrypts a compact JWE a sender encrypted for this key; a compressed payload
    /// (`zip: DEF`) inflates to at most `max_bytes`.
    pub fn decrypt(&self, compact: &str, max_bytes: usize) -> Result<Vec<u8>, Error> {
        let header = header_of(compact)?;
        for (name, expected) in [("alg", KEY_ENCRYPTION), ("enc", CONTENT_ENCRYPTION)] {
            if header.get(name).and_then(Value::as_str) != Some(expected) {
                return Err(Error::JoseRefused(format!(
                    "the JWE's {name} must be {expected}"
                )));
            }
        }
        if let Some(kid) = header.get("kid").and_then(Value::as_str)
            && kid != self.kid
        {
            return Err(Error::JoseRefused(format!(
                "the JWE is for the key {kid}, not for this destination's key {}",
                self.kid
            )));
        }
        if let Some(zip) = header.get("zip")
            && zip.as_str() != Some("DEF")
        {
            return Err(Error::JoseRefused("the only compression is DEF".into()));
        }
        if header.contains_key("crit") {
            // RFC 7516: a recipient that does not know every critical parameter refuses.
            return Err(Error::JoseRefused(
                "the JWE names critical header parameters the hub does not support".into(),
            ));
        }
        self.check_parts(compact)?;
        let der = self
            .key
            .private_key_to_pkcs8()
            .map_err(crypto("encoding the destination's key"))?;
        let decrypter = jwe::RSA_OAEP_256
            .decrypter_from_der(&der)
            .map_err(jose("loading the destination's key"))?;
        let mut context = JweContext::new();
        // josekit's own DEF inflates without bound: a small JWE must not fill the memory.
        context.remove_compression("DEF");
        context.add_compression(Box::new(BoundedDeflate { max_bytes }));
        let (payload, _) = context
            .deserialize_compact(compact, &decrypter)
            .map_err(jose("decrypting the JWE"))?;
        if payload.len() > max_bytes {
            return Err(Error::JoseRefused(format!(
                "the JWE's content is larger than {max_bytes} bytes"
            )));
        }
        Ok(payload)
    }
}

/// A subscriber's encryption certificate as the public JWK the hub encrypts for (RSA of
/// at least [`MIN_DESTINATION_RSA_BITS`] bits, chained to `anchors` like every
/// procedure's certificate; `kid` its RFC 7638 thumbprint).
pub fn subscriber_jwk(cert: &Path, anchors: &crate::TrustAnchors) -> Result<Value, Error> {
    let certificate = load_certificate(cert)?;
    anchors.check(&certificate)?;
    let subject = subject_of(&certificate);
    let key = certificate
        .public_key()
        .map_err(crypto("reading the subscriber's key"))?;
    if key.id() != Id::RSA || key.bits() < MIN_DESTINATION_RSA_BITS {
        return Err(Error::Certificate(format!(
            "{subject}: a FIT-Connect subscriber needs an RSA key of at least {MIN_DESTINATION_RSA_BITS} bits"
        )));
    }
    crate::seal::allows_usage(
        &certificate,
        &subject,
        openssl::x509::X509KeyUsage::KEY_ENCIPHERMENT,
        "keyEncipherment",
    )?;
    let rsa = key.rsa().map_err(crypto("reading the RSA key"))?;
    let modulus = URL_SAFE_NO_PAD.encode(rsa.n().to_vec());
    let exponent = URL_SAFE_NO_PAD.encode(rsa.e().to_vec());
    Ok(json!({
        "kty": "RSA",
        "kid": rfc7638_thumbprint(&modulus, &exponent),
        "alg": KEY_ENCRYPTION,
        "key_ops": ["wrapKey"],
        "n": modulus,
        "e": exponent,
    }))
}

impl DestinationKey {
    /// The sizes RSA-OAEP-256 with this key and A256GCM fix: the encrypted key as long
    /// as the modulus, a 96-bit IV and a 128-bit tag (RFC 7518, 5.3). Checked before
    /// decrypting, so that no part is cut short or left empty.
    fn check_parts(&self, compact: &str) -> Result<(), Error> {
        let parts: Vec<&str> = compact.trim().split('.').collect();
        let length = |index: usize| {
            URL_SAFE_NO_PAD
                .decode(parts.get(index).copied().unwrap_or_default())
                .map(|bytes| bytes.len())
                .map_err(|_| Error::JoseRefused("a part of the JWE is not base64url".into()))
        };
        let key_bytes = self.key.size();
        for (index, what, expected) in [
            (1, "encrypted key", key_bytes),
            (2, "initialization vector", 12),
            (4, "authentication tag", 16),
        ] {
            let actual = length(index)?;
            if actual != expected {
                return Err(Error::JoseRefused(format!(
                    "the JWE's {what} has {actual} bytes; {KEY_ENCRYPTION} with this key and {CONTENT_ENCRYPTION} need {expected}"
                )));
            }
        }
        Ok(())
    }
}

/// Encrypts `content` for a FIT-Connect encryption key given as JWK (the subscriber's
/// key of a destination): `RSA-OAEP-256` / `A256GCM`, `kid` from the JWK, `cty` as
/// given.
pub fn encrypt_for_jwk(content: &[u8], jwk: &Value, content_type: &str) -> Result<String, Error> {
    let public = public_key_of(jwk)?;
    let kid = jwk
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::JoseRefused("the key has no kid".into()))?;
    let spki = public
        .public_key_to_der()
        .map_err(crypto("encoding the public key"))?;
    let encrypter = jwe::RSA_OAEP_256
        .encrypter_from_der(&spki)
        .map_err(jose("loading the public key"))?;
    let mut header = JweHeader::new();
    header.set_content_encryption(CONTENT_ENCRYPTION);
    header.set_key_id(kid);
    header.set_content_type(content_type);
    jwe::serialize_compact(content, &header, &encrypter).map_err(jose("encrypting"))
}

/// The RSA public key of a JWK that may encrypt (`wrapKey`) with RSA-OAEP-256 and has
/// at least [`MIN_DESTINATION_RSA_BITS`] bits.
pub fn public_key_of(jwk: &Value) -> Result<PKey<Public>, Error> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
            .ok_or_else(|| Error::JoseRefused(format!("the key has no valid {name}")))
    };
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Err(Error::JoseRefused("the key must be an RSA key".into()));
    }
    let wraps = jwk
        .get("key_ops")
        .and_then(Value::as_array)
        .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("wrapKey")));
    if !wraps {
        return Err(Error::JoseRefused(
            "the key's key_ops must contain wrapKey".into(),
        ));
    }
    let n = openssl::bn::BigNum::from_slice(&member("n")?).map_err(crypto("reading n"))?;
    let e = openssl::bn::BigNum::from_slice(&member("e")?).map_err(crypto("reading e"))?;
    let rsa = openssl::rsa::Rsa::from_public_components(n, e).map_err(crypto("reading the key"))?;
    let key = PKey::from_rsa(rsa).map_err(crypto("wrapping the key"))?;
    if key.bits() < MIN_DESTINATION_RSA_BITS {
        return Err(Error::JoseRefused(format!(
            "the key has {} bits; FIT-Connect needs at least {MIN_DESTINATION_RSA_BITS}",
            key.bits()
        )));
    }
    Ok(key)
}

/// The RFC 7638 thumbprint of an RSA key (SHA-256 over its required members in
/// lexicographic order, no whitespace), base64url.
pub fn rfc7638_thumbprint(modulus: &str, exponent: &str) -> String {
    let canonical = format!(r#"{{"e":"{exponent}","kty":"RSA","n":"{modulus}"}}"#);
    URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes()))
}

/// The protected header of a compact JWE.
pub fn header_of(compact: &str) -> Result<serde_json::Map<String, Value>, Error> {
    let parts: Vec<&str> = compact.trim().split('.').collect();
    if parts.len() != 5 {
        return Err(Error::JoseRefused(
            "not a compact JWE (five parts separated by dots)".into(),
        ));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(parts[0])
        .map_err(|_| Error::JoseRefused("the JWE's header is not base64url".into()))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(header)) => Ok(header),
        _ => Err(Error::JoseRefused(
            "the JWE's header is not a JSON object".into(),
        )),
    }
}

/// `zip: DEF` (raw DEFLATE, RFC 1951) that refuses to inflate beyond a bound.
#[derive(Debug, Clone)]
struct BoundedDeflate {
    max_bytes: usize,
}

impl JweCompression for BoundedDeflate {
    fn name(&self) -> &str {
        "DEF"
    }

    fn compress(&self, message: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        use std::io::Write;
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(message)?;
        encoder.finish()
    }

    fn decompress(&self, message: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        let limit = u64::try_from(self.max_bytes).unwrap_or(u64::MAX);
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(message)
            .take(limit.saturating_add(1))
            .read_to_end(&mut inflated)?;
        if inflated.len() > self.max_bytes {
            return Err(std::io::Error::other(format!(
                "the compressed content inflates beyond {} bytes",
                self.max_bytes
            )));
        }
        Ok(inflated)
    }

    fn box_clone(&self) -> Box<dyn JweCompression> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DestinationKey {
        let dir = tempfile::tempdir().unwrap();
        let layout = crate::pki::PkiLayout::new(dir.path());
        crate::pki::init_demo_pki(&layout, &[]).unwrap();
        crate::pki::issue_destination_key(&layout, "dresden").unwrap();
        DestinationKey::load(
            &layout.destination_cert("dresden"),
            &layout.destination_key("dresden"),
            &[&layout.ca_cert()],
        )
        .unwrap()
    }

    #[test]
    fn a_jwe_for_the_published_key_decrypts_with_and_without_compression() {
        let key = key();
        let jwk = key.public_jwk();
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(jwk["x5c"].as_array().unwrap().len(), 2);
        let sealed = encrypt_for_jwk(b"{\"a\":1}", &jwk, "application/json").unwrap();
        assert_eq!(key.decrypt(&sealed, 100).unwrap(), b"{\"a\":1}");

        // As FIT-Connect's SDKs send it: zip DEF.
        let public = public_key_of(&jwk).unwrap().public_key_to_der().unwrap();
        let encrypter = jwe::RSA_OAEP_256.encrypter_from_der(&public).unwrap();
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        header.set_compression("DEF");
        header.set_key_id(key.kid());
        let zipped = jwe::serialize_compact(&[b'x'; 5000], &header, &encrypter).unwrap();
        assert_eq!(key.decrypt(&zipped, 5000).unwrap().len(), 5000);
        // A payload that inflates beyond the bound is refused.
        let error = key.decrypt(&zipped, 4999).unwrap_err().to_string();
        assert!(error.contains("decrypting"), "{error}");
    }

    #[test]
    fn a_jwe_for_another_key_or_algorithm_is_refused() {
        let key = key();
        let mut jwk = key.public_jwk();
        jwk["kid"] = json!("someone-else");
        let sealed = encrypt_for_jwk(b"x", &jwk, "application/json").unwrap();
        let error = key.decrypt(&sealed, 10).unwrap_err().to_string();
        assert!(error.contains("not for this destination's key"), "{error}");
        assert!(key.decrypt("a.b.c", 10).is_err());
    }

    #[test]
    fn a_cut_tag_an_empty_iv_and_critical_parameters_are_refused() {
        let key = key();
        let sealed = encrypt_for_jwk(b"{}", &key.public_jwk(), "application/json").unwrap();
        let parts: Vec<&str> = sealed.split('.').collect();
        let with = |index: usize, part: &str| {
            let mut changed = parts.clone();
            changed[index] = part;
            changed.join(".")
        };
        let tag = URL_SAFE_NO_PAD.encode([0u8; 4]);
        for broken in [with(2, ""), with(4, &tag)] {
            let error = key.decrypt(&broken, 100).unwrap_err().to_string();
            assert!(error.contains("need"), "{error}");
        }
        let header = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(
                &json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "crit": ["x"], "x": 1}),
            )
            .unwrap(),
        );
        let error = key.decrypt(&with(0, &header), 100).unwrap_err().to_string();
        assert!(error.contains("critical"), "{error}");
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638, section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            rfc7638_thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
