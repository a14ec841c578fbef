//! Which algorithms a sealed message uses, read with tools independent of the hub's
//! code (`openssl asn1parse`, the JOSE headers as JSON), checked against an explicit
//! allow-list with its basis in BSI TR-02102-1 ("Kryptographische Verfahren:
//! Empfehlungen und Schlüssellängen"). Anything not listed fails, SHA-1 by name first.
//!
//! The end-to-end helpers that open messages as a vendor would (`vendor::open_cms`,
//! `vendor::open_jose_with_python`) run these checks on every message they open.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::{run_ok, stdout_of};

/// An algorithm a message may use: the name `openssl asn1parse` prints, its OID, and
/// why it is within BSI TR-02102-1.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub name: &'static str,
    pub oid: &'static str,
    pub basis: &'static str,
}

const fn allowed(name: &'static str, oid: &'static str, basis: &'static str) -> Allowed {
    Allowed { name, oid, basis }
}

/// Every algorithm identifier a `cms` message (outer envelope, inner SignedData, the
/// hub's certificate in it) may contain.
pub const ALGORITHMS: &[Allowed] = &[
    allowed(
        "sha256",
        "2.16.840.1.101.3.4.2.1",
        "hash function SHA-256 (TR-02102-1, hash functions, Table 4.1)",
    ),
    allowed(
        "sha384",
        "2.16.840.1.101.3.4.2.2",
        "hash function SHA-384 (TR-02102-1, Table 4.1)",
    ),
    allowed(
        "sha512",
        "2.16.840.1.101.3.4.2.3",
        "hash function SHA-512 (TR-02102-1, Table 4.1)",
    ),
    allowed(
        "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.2",
        "ECDSA with SHA-256 (TR-02102-1, signature schemes based on elliptic curves)",
    ),
    allowed(
        "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.3",
        "ECDSA with SHA-384 (TR-02102-1, signature schemes based on elliptic curves)",
    ),
    allowed(
        "ecdsa-with-SHA512",
        "1.2.840.10045.4.3.4",
        "ECDSA with SHA-512 (TR-02102-1, signature schemes based on elliptic curves)",
    ),
    allowed(
        "id-ecPublicKey",
        "1.2.840.10045.2.1",
        "EC public key, for ECDSA and ECDH (TR-02102-1, elliptic curves)",
    ),
    allowed(
        "prime256v1",
        "1.2.840.10045.3.1.7",
        "curve P-256, 256 bits (TR-02102-1, recommended EC parameters)",
    ),
    allowed(
        "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.7",
        "curve brainpoolP256r1, 256 bits (TR-02102-1, recommended EC parameters)",
    ),
    allowed(
        "rsaEncryption",
        "1.2.840.113549.1.1.1",
        "RSA public key, at least 3000 bits (TR-02102-1, Table 3.1); as a key type only",
    ),
    allowed(
        "dhSinglePass-stdDH-sha256kdf-scheme",
        "1.3.132.1.11.1",
        "ECDH key agreement (TR-02102-1, key agreement) with the ANSI X9.63 KDF over SHA-256 (Table 4.1)",
    ),
    allowed(
        "id-aes256-wrap",
        "2.16.840.1.101.3.4.1.45",
        "AES-256 (TR-02102-1, block ciphers, Table 2.1) as key wrap, RFC 3394",
    ),
    allowed(
        "aes-256-gcm",
        "2.16.840.1.101.3.4.1.46",
        "AES-256 in GCM (TR-02102-1, block ciphers and modes of operation)",
    ),
];

/// Identifiers in a `cms` message that name no algorithm: content types, signed
/// attributes, name attributes and certificate extensions.
pub const STRUCTURE: &[&str] = &[
    "id-smime-ct-authEnvelopedData",
    "pkcs7-data",
    "pkcs7-signedData",
    "contentType",
    "signingTime",
    "messageDigest",
    "commonName",
    "organizationName",
    "organizationalUnitName",
    "countryName",
    "localityName",
    "stateOrProvinceName",
    "X509v3 Subject Key Identifier",
    "X509v3 Authority Key Identifier",
    "X509v3 Basic Constraints",
    "X509v3 Key Usage",
    "X509v3 Extended Key Usage",
    "X509v3 Subject Alternative Name",
];

/// SHA-1 and what is built on it, by name and OID: refused with this reason first.
const SHA1: &[&str] = &[
    "sha1",
    "1.3.14.3.2.26",
    "1.3.133.16.840.63.0.2",
    "1.3.133.16.840.63.0.3",
    "1.2.840.10045.4.1",
    "1.2.840.113549.1.1.5",
];

/// The JWE `alg` and `enc` of the `jose` profile, and the JWS `alg`.
pub const JWE_ALG: &[Allowed] = &[allowed(
    "RSA-OAEP-256",
    "RFC 7518",
    "RSAES-OAEP with SHA-256 and MGF1-SHA-256 (TR-02102-1, asymmetric encryption, RSA), keys of at least 3000 bits (Table 3.1)",
)];
pub const JWE_ENC: &[Allowed] = &[allowed(
    "A256GCM",
    "RFC 7518",
    "AES-256 in GCM (TR-02102-1, block ciphers and modes of operation)",
)];
pub const JWS_ALG: &[Allowed] = &[
    allowed(
        "ES256",
        "RFC 7518",
        "ECDSA on P-256 with SHA-256 (TR-02102-1, EC signature schemes, Table 4.1)",
    ),
    allowed(
        "PS512",
        "RFC 7518",
        "RSASSA-PSS with SHA-512 (TR-02102-1, RSA signatures 5.4.1), keys of at least 3000 bits",
    ),
];

/// The object identifiers of a DER structure as `openssl asn1parse` names them (the
/// dotted OID where it knows no name), in order.
pub fn object_identifiers(der: &[u8]) -> Vec<String> {
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("m.der");
    std::fs::write(&file, der).expect("write DER");
    let listing = stdout_of(&run_ok(
        Command::new("openssl")
            .args(["asn1parse", "-inform", "DER", "-in"])
            .arg(&file),
        "openssl asn1parse (on PATH)",
    ));
    listing
        .lines()
        .filter(|line| line.contains("prim: OBJECT"))
        .filter_map(|line| {
            line.rsplit_once(':')
                .map(|(_, name)| name.trim().to_owned())
        })
        .collect()
}

/// Checks the identifiers of one DER structure: each must be an allowed algorithm or a
/// structural identifier; SHA-1 in any form is named as such. Returns the algorithms.
pub fn check_identifiers(identifiers: &[String]) -> Result<Vec<&'static Allowed>, String> {
    let mut used = Vec::new();
    let mut refused = Vec::new();
    for id in identifiers {
        let lower = id.to_ascii_lowercase();
        if lower.contains("sha1") || lower.contains("sha-1") || SHA1.contains(&id.as_str()) {
            refused.push(format!("{id} (SHA-1)"));
        } else if let Some(algorithm) = ALGORITHMS.iter().find(|a| a.name == id || a.oid == id) {
            if !used.iter().any(|u: &&Allowed| u.name == algorithm.name) {
                used.push(algorithm);
            }
        } else if !STRUCTURE.contains(&id.as_str()) {
            refused.push(format!("{id} (not in the BSI TR-02102-1 allow-list)"));
        }
    }
    if refused.is_empty() {
        Ok(used)
    } else {
        Err(refused.join(", "))
    }
}

/// Asserts that a `cms` message uses only allowed algorithms, in its envelope
/// (`sealed`) and, once decrypted, in its SignedData (`signed`), and that the key
/// agreement, key wrap, content encryption, digest and signature are the profile's.
pub fn assert_cms_algorithms(sealed: &[u8], signed: &[u8]) {
    let outer = object_identifiers(sealed);
    let inner = object_identifiers(signed);
    for (layer, ids) in [("envelope", &outer), ("SignedData", &inner)] {
        if let Err(refused) = check_identifiers(ids) {
            panic!("the {layer} of a cms message uses {refused}; all: {ids:?}");
        }
    }
    for expected in [
        "id-smime-ct-authEnvelopedData",
        "dhSinglePass-stdDH-sha256kdf-scheme",
        "id-aes256-wrap",
        "aes-256-gcm",
    ] {
        assert!(
            outer.iter().any(|id| id == expected),
            "the envelope lacks {expected}: {outer:?}"
        );
    }
    for expected in ["pkcs7-signedData", "sha256", "ecdsa-with-SHA256"] {
        assert!(
            inner.iter().any(|id| id == expected),
            "the SignedData lacks {expected}: {inner:?}"
        );
    }
}

fn header_of(compact: &str) -> Value {
    let encoded = compact.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(encoded.trim())
        .expect("the protected header is base64url");
    serde_json::from_slice(&json).expect("the protected header is JSON")
}

fn check_member(header: &Value, member: &str, list: &[Allowed]) -> Result<(), String> {
    let value = header.get(member).and_then(Value::as_str).unwrap_or("");
    if value.to_ascii_lowercase().contains("sha1") || value.ends_with("RSA-OAEP") {
        return Err(format!("{member} {value} (SHA-1)"));
    }
    if list.iter().any(|a| a.name == value) {
        Ok(())
    } else {
        Err(format!(
            "{member} {value:?} (not in the BSI TR-02102-1 allow-list)"
        ))
    }
}

/// Checks a compact JWE's protected header (`alg`, `enc`, no compression) and, if
/// given, the compact JWS inside it (`alg`, and the identifiers of its `x5c`
/// certificates with `openssl asn1parse`).
pub fn check_jose(jwe: &str, jws: Option<&str>) -> Result<(), String> {
    let header = header_of(jwe);
    check_member(&header, "alg", JWE_ALG)?;
    check_member(&header, "enc", JWE_ENC)?;
    if header.get("zip").is_some() {
        return Err("the JWE compresses (zip)".into());
    }
    let Some(jws) = jws else { return Ok(()) };
    let header = header_of(jws);
    check_member(&header, "alg", JWS_ALG)?;
    for cert in header
        .get("x5c")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let der = STANDARD
            .decode(cert.as_str().unwrap_or_default())
            .map_err(|e| format!("an x5c entry is not base64: {e}"))?;
        check_identifiers(&object_identifiers(&der))
            .map_err(|refused| format!("the JWS's x5c certificate uses {refused}"))?;
    }
    Ok(())
}

/// Asserts [`check_jose`] for a `jose` message, opening the JWE with the procedure's
/// key from `pki` to reach the JWS.
pub fn assert_jose_algorithms(jwe: &[u8], pki: &Path, procedure: &str) {
    use kopplung_transformers::jose::unseal_attachment;
    use kopplung_transformers::seal::{load_certificate, load_private_key};
    let jwe = std::str::from_utf8(jwe).expect("a compact JWE is ASCII");
    let cert = load_certificate(&pki.join(format!("procedures/{procedure}.crt")))
        .expect("procedure certificate");
    let key =
        load_private_key(&pki.join(format!("procedures/{procedure}.key"))).expect("procedure key");
    // Decrypts without verifying: the signature is the vendor path's business.
    let jws = unseal_attachment(jwe, &cert, &key).expect("the JWE opens");
    let jws = std::str::from_utf8(&jws).expect("a compact JWS is ASCII");
    if let Err(refused) = check_jose(jwe, Some(jws)) {
        panic!("a jose message uses {refused}");
    }
}
