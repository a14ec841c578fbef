//! The `jose` profile: round trips through the crate, tampering, wrong recipients and
//! signers, key policy, and the same messages opened by another ecosystem (Python
//! jwcrypto, `tests/jose_verify.py`), as a vendor would.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jwe;
use kopplung_transformers::Error;
use kopplung_transformers::jose::{
    JoseSealer, check_recipient, thumbprint, unseal, unseal_attachment,
};
use kopplung_transformers::pki::{
    PkiLayout, Role, Validity, init_demo_pki, issue_from_demo_ca, issue_rsa_recipient,
};
use kopplung_transformers::seal::{TrustAnchors, load_certificate};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509KeyUsage};
use serde_json::{Value, json};

const XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<x:nachricht xmlns:x=\"urn:test\"><text>Grüße aus Dresden &amp; mehr</text></x:nachricht>\n";

/// A demo PKI with the EC hub, two RSA-3072 recipients (`a`, `b`) and one EC recipient.
struct Pki {
    _dir: tempfile::TempDir,
    layout: PkiLayout,
    anchors: TrustAnchors,
    hub: X509,
    sealer: JoseSealer,
}

struct Party {
    cert: X509,
    key: PKey<Private>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let layout = PkiLayout::new(dir.path());
        init_demo_pki(&layout, &["ec".into()]).unwrap();
        let written = issue_rsa_recipient(&layout, "a", 3072).unwrap();
        assert_eq!(written.len(), 2);
        issue_rsa_recipient(&layout, "b", 3072).unwrap();
        let anchors = TrustAnchors::load(&layout.ca_cert()).unwrap();
        let hub = load_certificate(&layout.hub_cert()).unwrap();
        let sealer = JoseSealer::load(&layout.hub_cert(), &layout.hub_key(), None).unwrap();
        Self {
            _dir: dir,
            layout,
            anchors,
            hub,
            sealer,
        }
    }

    fn party(&self, id: &str) -> Party {
        Party {
            cert: load_certificate(&self.layout.procedure_cert(id)).unwrap(),
            key: PKey::private_key_from_pem(&std::fs::read(self.layout.procedure_key(id)).unwrap())
                .unwrap(),
        }
    }

    /// A signing certificate from this PKI's CA, for a key made by the test.
    fn issue_signer(&self, name: &str, key: &PKey<Private>) -> X509 {
        issue_from_demo_ca(
            &self.layout,
            name,
            key,
            Role::Signer,
            Validity::relative(0, 30),
        )
        .unwrap()
    }

    /// A hub with an RSA key of `bits` bits (PS512).
    fn rsa_hub(&self, bits: u32) -> (X509, PKey<Private>) {
        let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
        (self.issue_signer("kopplung Hub RSA", &key), key)
    }
}

/// The XML sealed for `recipient` by each kind of hub the profile allows, the EC hub
/// (ES256) and an RSA hub (PS512): each message with its hub's certificate and algorithm.
fn sealed_by_each_hub(pki: &Pki, recipient: &Party) -> Vec<(String, X509, String)> {
    let (rsa_sealer, cert) = rsa_hub_sealer(pki);
    [(&pki.sealer, &pki.hub), (&rsa_sealer, &cert)]
        .into_iter()
        .map(|(sealer, hub)| {
            let sealed = sealer.seal(XML.as_bytes(), &recipient.cert).unwrap();
            (sealed, hub.clone(), sealer.algorithm().to_owned())
        })
        .collect()
}

/// An RSA hub (PS512) and its certificate.
fn rsa_hub_sealer(pki: &Pki) -> (JoseSealer, X509) {
    let (cert, key) = pki.rsa_hub(3072);
    (
        JoseSealer::new(cert.clone(), key, Vec::new()).unwrap(),
        cert,
    )
}

fn header(compact: &str) -> serde_json::Map<String, Value> {
    let encoded = compact.split('.').next().unwrap();
    match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap() {
        Value::Object(map) => map,
        other => panic!("header is not an object: {other}"),
    }
}

/// Flips the lowest bit of byte `index` of part `part` (0-based) of a compact
/// serialization.
fn flip(compact: &str, part: usize, index: usize) -> String {
    let mut parts: Vec<String> = compact.split('.').map(str::to_owned).collect();
    let mut bytes = URL_SAFE_NO_PAD.decode(&parts[part]).unwrap();
    bytes[index] ^= 1;
    parts[part] = URL_SAFE_NO_PAD.encode(bytes);
    parts.join(".")
}

/// Decrypts with josekit directly (no profile checks): the inner JWS and the header.
fn raw_decrypt(jwe_compact: &str, key: &PKey<Private>) -> (Vec<u8>, jwe::JweHeader) {
    let decrypter = jwe::RSA_OAEP_256
        .decrypter_from_der(key.private_key_to_pkcs8().unwrap())
        .unwrap();
    jwe::deserialize_compact(jwe_compact, &decrypter).unwrap()
}

/// Encrypts with josekit directly, with the given header, for `recipient`.
fn raw_encrypt(plaintext: &[u8], header: &jwe::JweHeader, recipient: &X509) -> String {
    let spki = recipient.public_key().unwrap().public_key_to_der().unwrap();
    let encrypter = jwe::RSA_OAEP_256.encrypter_from_der(spki).unwrap();
    jwe::serialize_compact(plaintext, header, &encrypter).unwrap()
}

fn assert_message_headers(jwe_compact: &str, recipient: &Party, alg: &str, x5c: &[&X509]) {
    let kid = URL_SAFE_NO_PAD.encode(recipient.cert.digest(MessageDigest::sha256()).unwrap());
    assert_eq!(thumbprint(&recipient.cert).unwrap(), kid);
    assert_eq!(
        Value::Object(header(jwe_compact)),
        json!({
            "alg": "RSA-OAEP-256",
            "enc": "A256GCM",
            "kid": kid,
            "x5t#S256": kid,
            "cty": "JOSE",
        })
    );
    let (signed, _) = raw_decrypt(jwe_compact, &recipient.key);
    let signed = String::from_utf8(signed).unwrap();
    let x5c: Vec<String> = x5c
        .iter()
        .map(|cert| STANDARD.encode(cert.to_der().unwrap()))
        .collect();
    assert_eq!(
        Value::Object(header(&signed)),
        json!({ "alg": alg, "cty": "application/xml", "x5c": x5c }),
        "no typ, no kid; x5c in standard base64"
    );
    let payload = signed.split('.').nth(1).unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(payload).unwrap(), XML.as_bytes());
}

#[test]
fn a_message_round_trips_with_the_profile_headers_es256() {
    let pki = Pki::new();
    let a = pki.party("a");
    assert_eq!(pki.sealer.algorithm(), "ES256");
    let sealed = pki.sealer.seal(XML.as_bytes(), &a.cert).unwrap();
    let encoded = URL_SAFE_NO_PAD.encode(XML);
    assert!(!sealed.contains(&encoded[..32]), "content is encrypted");
    assert_eq!(sealed.split('.').count(), 5, "compact JWE");
    assert_message_headers(&sealed, &a, "ES256", &[&pki.hub]);
    let opened = unseal(&sealed, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap();
    assert_eq!(opened, XML.as_bytes());
}

#[test]
fn a_message_round_trips_with_an_rsa_hub_ps512_and_its_chain() {
    let pki = Pki::new();
    let a = pki.party("a");
    let (cert, key) = pki.rsa_hub(3072);
    // The chain certificate follows the hub's certificate in x5c.
    let ca = load_certificate(&pki.layout.ca_cert()).unwrap();
    let sealer = JoseSealer::new(cert.clone(), key, vec![ca.clone()]).unwrap();
    assert_eq!(sealer.algorithm(), "PS512");
    let sealed = sealer.seal(XML.as_bytes(), &a.cert).unwrap();
    assert_message_headers(&sealed, &a, "PS512", &[&cert, &ca]);
    let opened = unseal(&sealed, &a.cert, &a.key, &cert, &pki.anchors).unwrap();
    assert_eq!(opened, XML.as_bytes());
}

#[test]
fn a_hub_loaded_from_files_with_a_chain_file_puts_the_chain_into_x5c() {
    let pki = Pki::new();
    let a = pki.party("a");
    let sealer = JoseSealer::load(
        &pki.layout.hub_cert(),
        &pki.layout.hub_key(),
        Some(&pki.layout.ca_cert()),
    )
    .unwrap();
    let ca = load_certificate(&pki.layout.ca_cert()).unwrap();
    let sealed = sealer.seal(XML.as_bytes(), &a.cert).unwrap();
    assert_message_headers(&sealed, &a, "ES256", &[&pki.hub, &ca]);
}

#[test]
fn tampering_with_ciphertext_tag_or_inner_signature_is_detected() {
    let pki = Pki::new();
    let a = pki.party("a");
    for (sealed, signer, _) in &sealed_by_each_hub(&pki, &a) {
        unseal(sealed, &a.cert, &a.key, signer, &pki.anchors).unwrap();

        // JWE parts: 0 header, 1 encrypted key, 2 IV, 3 ciphertext, 4 tag.
        for (part, index) in [(3, 0), (3, 40), (4, 0), (4, 15), (2, 5), (1, 7)] {
            let tampered = flip(sealed, part, index);
            let err = unseal(&tampered, &a.cert, &a.key, signer, &pki.anchors).unwrap_err();
            assert!(
                matches!(err, Error::Jose { .. }),
                "part {part}, byte {index}: {err}"
            );
        }
        // The protected header is authenticated too (GCM additional data).
        let mut parts: Vec<&str> = sealed.split('.').collect();
        let mut changed = header(sealed);
        changed.insert("cty".into(), json!("JOSE "));
        let changed = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&changed).unwrap());
        parts[0] = &changed;
        assert!(unseal(&parts.join("."), &a.cert, &a.key, signer, &pki.anchors).is_err());

        // Inside: a valid JWE around a JWS whose signature (or payload) was changed.
        let (signed, jwe_header) = raw_decrypt(sealed, &a.key);
        let signed = String::from_utf8(signed).unwrap();
        let signature_len = URL_SAFE_NO_PAD
            .decode(signed.split('.').nth(2).unwrap())
            .unwrap()
            .len();
        for (part, index) in [(2, 0), (2, signature_len - 1), (1, 10)] {
            let forged = flip(&signed, part, index);
            let resealed = raw_encrypt(forged.as_bytes(), &jwe_header, &a.cert);
            let err = unseal(&resealed, &a.cert, &a.key, signer, &pki.anchors).unwrap_err();
            assert!(
                err.to_string().contains("verifying the signature"),
                "JWS part {part}, byte {index}: {err}"
            );
        }
        // Re-encrypting the untouched JWS the same way opens: the check above is the
        // signature's, not the re-encryption's.
        let resealed = raw_encrypt(signed.as_bytes(), &jwe_header, &a.cert);
        assert_eq!(
            unseal(&resealed, &a.cert, &a.key, signer, &pki.anchors).unwrap(),
            XML.as_bytes()
        );
    }
}

#[test]
fn a_jwe_for_another_recipient_cannot_be_opened() {
    let pki = Pki::new();
    let (a, b) = (pki.party("a"), pki.party("b"));
    let sealed = pki.sealer.seal(XML.as_bytes(), &a.cert).unwrap();
    // b's certificate and key: the kid names a.
    let err = unseal(&sealed, &b.cert, &b.key, &pki.hub, &pki.anchors).unwrap_err();
    assert!(err.to_string().contains("Fachverfahren b"), "{err}");
    // b's key under a's certificate: refused before decrypting.
    assert!(unseal(&sealed, &a.cert, &b.key, &pki.hub, &pki.anchors).is_err());
    // And b's key cannot decrypt it at all, whatever the header says.
    let decrypter = jwe::RSA_OAEP_256
        .decrypter_from_der(b.key.private_key_to_pkcs8().unwrap())
        .unwrap();
    assert!(jwe::deserialize_compact(&sealed, &decrypter).is_err());
    // Encrypted to a's key but labelled for b: the kid is checked, not only the key.
    let (signed, mut jwe_header) = raw_decrypt(&sealed, &a.key);
    jwe_header.set_key_id(thumbprint(&b.cert).unwrap());
    let mislabelled = raw_encrypt(&signed, &jwe_header, &a.cert);
    let err = unseal(&mislabelled, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap_err();
    assert!(err.to_string().contains("not for"), "{err}");
    let attachment = pki.sealer.seal_attachment(b"photo", &a.cert).unwrap();
    assert!(unseal_attachment(&attachment, &b.cert, &b.key).is_err());
    assert!(jwe::deserialize_compact(&attachment, &decrypter).is_err());
}

#[test]
fn a_signer_other_than_the_expected_hub_is_refused() {
    let pki = Pki::new();
    let a = pki.party("a");
    let ec = pki.party("ec");
    let sealed = pki.sealer.seal(XML.as_bytes(), &a.cert).unwrap();

    // Expecting someone else than the hub that signed.
    let err = unseal(&sealed, &a.cert, &a.key, &ec.cert, &pki.anchors).unwrap_err();
    assert!(
        matches!(&err, Error::Certificate(m) if m.contains("kopplung Hub") && m.contains("Fachverfahren ec")),
        "{err}"
    );

    // An impostor with a certificate from the same CA signs: refused when the hub is expected.
    let impostor = JoseSealer::new(ec.cert.clone(), ec.key.clone(), Vec::new()).unwrap();
    let forged = impostor.seal(XML.as_bytes(), &a.cert).unwrap();
    let err = unseal(&forged, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap_err();
    assert!(matches!(err, Error::Certificate(_)), "{err}");
    // ... even if it puts the hub's certificate into x5c: the signature does not verify.
    let (signed, jwe_header) = raw_decrypt(&forged, &a.key);
    let signed = String::from_utf8(signed).unwrap();
    let mut jws_header = header(&signed);
    jws_header.insert(
        "x5c".into(),
        json!([STANDARD.encode(pki.hub.to_der().unwrap())]),
    );
    let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&jws_header).unwrap());
    let swapped = raw_encrypt(parts.join(".").as_bytes(), &jwe_header, &a.cert);
    let err = unseal(&swapped, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap_err();
    assert!(err.to_string().contains("verifying the signature"), "{err}");

    // A hub from another CA, even when expected, does not chain to our anchors.
    let foreign = Pki::new();
    let sealed = foreign.sealer.seal(XML.as_bytes(), &a.cert).unwrap();
    let err = unseal(&sealed, &a.cert, &a.key, &foreign.hub, &pki.anchors).unwrap_err();
    assert!(
        matches!(&err, Error::Certificate(m) if m.contains("kopplung Hub")),
        "{err}"
    );
    assert_eq!(
        unseal(&sealed, &a.cert, &a.key, &foreign.hub, &foreign.anchors).unwrap(),
        XML.as_bytes()
    );
}

#[test]
fn recipients_without_an_rsa_key_of_3072_bits_are_refused() {
    let pki = Pki::new();
    let ec = pki.party("ec");
    for err in [
        pki.sealer.seal(XML.as_bytes(), &ec.cert).unwrap_err(),
        pki.sealer.seal_attachment(b"photo", &ec.cert).unwrap_err(),
        check_recipient(&ec.cert).unwrap_err(),
    ] {
        let message = err.to_string();
        assert!(matches!(err, Error::Certificate(_)), "{message}");
        assert!(message.contains("Fachverfahren ec"), "{message}");
        assert!(message.contains("EC certificate"), "{message}");
        assert!(message.contains("RSA-OAEP-256"), "{message}");
    }

    issue_rsa_recipient(&pki.layout, "small", 2048).unwrap();
    let small = pki.party("small");
    let err = pki.sealer.seal(XML.as_bytes(), &small.cert).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("Fachverfahren small") && message.contains("2048 bits"),
        "{message}"
    );
    assert!(pki.sealer.seal_attachment(b"x", &small.cert).is_err());
}

#[test]
fn hub_keys_outside_the_profile_are_refused() {
    let pki = Pki::new();
    let (cert, key) = pki.rsa_hub(2048);
    let err = JoseSealer::new(cert, key, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("2048 bits"), "{err}");

    let p384 = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&p384).unwrap()).unwrap();
    let cert = pki.issue_signer("kopplung Hub P-384", &key);
    let err = JoseSealer::new(cert, key, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("P-256"), "{err}");

    // A key that does not belong to the certificate.
    let other = pki.party("ec");
    let err = JoseSealer::new(pki.hub.clone(), other.key, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[test]
fn attachments_round_trip_as_separate_jwes() {
    let pki = Pki::new();
    let a = pki.party("a");
    let photo: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let sealed = pki.sealer.seal_attachment(&photo, &a.cert).unwrap();
    let kid = thumbprint(&a.cert).unwrap();
    assert_eq!(
        Value::Object(header(&sealed)),
        json!({ "alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": kid, "x5t#S256": kid })
    );
    assert_eq!(unseal_attachment(&sealed, &a.cert, &a.key).unwrap(), photo);
    assert!(unseal_attachment(&flip(&sealed, 3, 1000), &a.cert, &a.key).is_err());
    assert!(unseal_attachment(&flip(&sealed, 4, 3), &a.cert, &a.key).is_err());
    // An attachment is no signed message.
    let err = unseal(&sealed, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap_err();
    assert!(err.to_string().contains("cty"), "{err}");
}

#[test]
fn rsa_recipient_certificates_come_from_the_demo_ca_and_are_kept() {
    let pki = Pki::new();
    let a = pki.party("a");
    pki.anchors.check(&a.cert).unwrap();
    assert_eq!(a.key.bits(), 3072);
    assert!(a.key.rsa().is_ok());
    assert_eq!(a.cert.key_usage(), Some(X509KeyUsage::KEY_ENCIPHERMENT));
    let before = std::fs::read(pki.layout.procedure_cert("a")).unwrap();
    assert!(
        issue_rsa_recipient(&pki.layout, "a", 4096)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        std::fs::read(pki.layout.procedure_cert("a")).unwrap(),
        before
    );
    // The EC procedures of init_demo_pki are unchanged: EC, keyAgreement.
    let ec = pki.party("ec");
    assert!(ec.key.ec_key().is_ok());
    assert_eq!(ec.cert.key_usage(), Some(X509KeyUsage::KEY_AGREEMENT));
    // No CA, no certificate.
    let empty = tempfile::tempdir().unwrap();
    assert!(issue_rsa_recipient(&PkiLayout::new(empty.path()), "x", 3072).is_err());
}

// ---- Another ecosystem: Python jwcrypto opens what the hub sealed. ----

const JWCRYPTO: &str = "jwcrypto==1.5.6";

/// The Python of a virtualenv with jwcrypto, created once under the target directory
/// and reused. Fails loudly when it cannot be created.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(target).unwrap();
        let venv = target.join("jose-venv");
        let ready = venv.join(format!("kopplung-ready-{JWCRYPTO}"));
        // Other test processes on the same target directory wait for the one creating it.
        let lock = File::create(target.join("jose-venv.lock")).unwrap();
        lock.lock().unwrap();
        if !ready.is_file() {
            if venv.exists() {
                std::fs::remove_dir_all(&venv).unwrap();
            }
            run_checked(Command::new("python3").arg("-m").arg("venv").arg(&venv));
            run_checked(
                Command::new(venv.join("bin/pip"))
                    .args(["install", "--quiet", "--disable-pip-version-check"])
                    .arg(JWCRYPTO),
            );
            std::fs::write(&ready, b"").unwrap();
        }
        lock.unlock().unwrap();
        venv.join("bin/python")
    })
}

fn run_checked(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `tests/jose_verify.py` on a message for `recipient`, with the CA of `pki`.
fn python_open(pki: &Pki, recipient: &str, jwe_compact: &str, pin: Option<&str>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nachricht.jwe");
    std::fs::write(&file, jwe_compact).unwrap();
    let mut command = Command::new(python());
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jose_verify.py"))
        .arg(&file)
        .arg(pki.layout.procedure_cert(recipient))
        .arg(pki.layout.procedure_key(recipient))
        .arg(pki.layout.ca_cert());
    if let Some(pin) = pin {
        command.arg(pin);
    }
    command.output().unwrap()
}

fn python_open_attachment(pki: &Pki, recipient: &str, jwe_compact: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("anlage.jwe");
    std::fs::write(&file, jwe_compact).unwrap();
    Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jose_verify.py"))
        .arg("--attachment")
        .arg(&file)
        .arg(pki.layout.procedure_cert(recipient))
        .arg(pki.layout.procedure_key(recipient))
        .output()
        .unwrap()
}

/// As `openssl x509 -noout -fingerprint -sha256` prints it.
fn fingerprint(cert: &X509) -> String {
    cert.digest(MessageDigest::sha256())
        .unwrap()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn assert_opens(output: &Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "jose_verify.py refused ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout.clone()
}

fn assert_refused(output: &Output, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "{what}: jose_verify.py should refuse; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty(), "{what}: no payload when refused");
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with("refused:"),
        "{what}"
    );
}

#[test]
fn python_jwcrypto_opens_and_verifies_es256_and_ps512_messages() {
    let pki = Pki::new();
    let a = pki.party("a");
    for (sealed, hub, algorithm) in &sealed_by_each_hub(&pki, &a) {
        let pin = fingerprint(hub);
        assert_eq!(
            assert_opens(&python_open(&pki, "a", sealed, Some(&pin))),
            XML.as_bytes(),
            "{algorithm}"
        );
        assert_eq!(
            assert_opens(&python_open(&pki, "a", sealed, None)),
            XML.as_bytes()
        );
    }
    let photo: Vec<u8> = (0..=255u8).rev().cycle().take(5_000).collect();
    let sealed = pki.sealer.seal_attachment(&photo, &a.cert).unwrap();
    assert_eq!(
        assert_opens(&python_open_attachment(&pki, "a", &sealed)),
        photo
    );
}

#[test]
fn python_jwcrypto_refuses_tampered_or_foreign_messages() {
    let pki = Pki::new();
    let a = pki.party("a");
    let sealed = pki.sealer.seal(XML.as_bytes(), &a.cert).unwrap();
    let pin = fingerprint(&pki.hub);
    assert_opens(&python_open(&pki, "a", &sealed, Some(&pin)));

    assert_refused(
        &python_open(&pki, "a", &flip(&sealed, 3, 7), Some(&pin)),
        "flipped ciphertext byte",
    );
    assert_refused(
        &python_open(&pki, "a", &flip(&sealed, 4, 0), Some(&pin)),
        "flipped tag byte",
    );
    // A valid JWE around a JWS with a flipped signature byte.
    let (signed, jwe_header) = raw_decrypt(&sealed, &a.key);
    let forged = flip(std::str::from_utf8(&signed).unwrap(), 2, 3);
    let resealed = raw_encrypt(forged.as_bytes(), &jwe_header, &a.cert);
    assert_refused(
        &python_open(&pki, "a", &resealed, Some(&pin)),
        "flipped signature byte",
    );
    // For another recipient.
    assert_refused(&python_open(&pki, "b", &sealed, None), "other recipient");
    // Encrypted to a's key but labelled for b (kid): refused.
    let (signed, mut jwe_header) = raw_decrypt(&sealed, &a.key);
    jwe_header.set_key_id(thumbprint(&pki.party("b").cert).unwrap());
    let mislabelled = raw_encrypt(&signed, &jwe_header, &a.cert);
    assert_refused(
        &python_open(&pki, "a", &mislabelled, None),
        "kid of another certificate",
    );
    // Signed by another certificate of the same CA: the pin refuses it.
    let ec = pki.party("ec");
    let impostor = JoseSealer::new(ec.cert, ec.key, Vec::new()).unwrap();
    let forged = impostor.seal(XML.as_bytes(), &a.cert).unwrap();
    assert_opens(&python_open(&pki, "a", &forged, None));
    assert_refused(
        &python_open(&pki, "a", &forged, Some(&pin)),
        "signer is not the pinned hub",
    );
    // Signed by a hub of another CA: the chain check refuses it.
    let foreign = Pki::new();
    let forged = foreign.sealer.seal(XML.as_bytes(), &a.cert).unwrap();
    assert_refused(
        &python_open(&pki, "a", &forged, None),
        "signer from another CA",
    );
    // An attachment is no message, and a flipped byte in an attachment is detected.
    let attachment = pki.sealer.seal_attachment(b"photo", &a.cert).unwrap();
    assert_refused(
        &python_open(&pki, "a", &attachment, None),
        "attachment as message",
    );
    assert_refused(
        &python_open_attachment(&pki, "a", &flip(&attachment, 3, 2)),
        "flipped attachment byte",
    );
}

#[test]
fn the_python_snippet_in_the_vendor_docs_is_the_tested_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("tests/jose_verify.py")).unwrap();
    let start = script.find("# >>> docs/vendors.md\n").unwrap();
    let end = script.find("# <<< docs/vendors.md\n").unwrap();
    let tested = &script[start + "# >>> docs/vendors.md\n".len()..end];

    let docs = std::fs::read_to_string(root.join("../docs/vendors.md")).unwrap();
    let section = &docs[docs.find("## The `jose` profile").unwrap()..];
    let block = &section[section.find("```python\n").unwrap() + "```python\n".len()..];
    let block = &block[..block.find("```\n").unwrap()];
    assert_eq!(
        block, tested,
        "docs/vendors.md must show the code of tests/jose_verify.py"
    );
}

// ---- The applicant's identification: FIT-Connect's authenticationInformation. ----

fn report() -> Value {
    use kopplung_transformers::authentifizierung::{Authentifizierung, BY_IDENTITY_PROVIDER};
    Authentifizierung {
        vertrauensniveau: "substanziell".into(),
        identifizierungsmittel: "elster-zertifikat".into(),
        aussteller: "http://127.0.0.1:8082".into(),
        pseudonym: "pseudonym-7f3a".into(),
        zeitpunkt: "2026-11-30T09:58:00Z".into(),
        bestaetigt_durch: BY_IDENTITY_PROVIDER.into(),
        nachweis_sha256: Some("5e".repeat(32)),
        nachweis: None,
    }
    .identification_report("m-1", "a-1", "2026-11-30T10:00:00Z")
}

/// A message signed by the hub whose header carries `entries` as its
/// `authenticationInformation`, encrypted for `recipient` like a genuine one.
fn hub_message_with(pki: &Pki, recipient: &Party, entries: Value) -> String {
    let genuine = pki.sealer.seal(XML.as_bytes(), &recipient.cert).unwrap();
    let (_, jwe_header) = raw_decrypt(&genuine, &recipient.key);
    let hub_key =
        PKey::private_key_from_pem(&std::fs::read(pki.layout.hub_key()).unwrap()).unwrap();
    let signer = josekit::jws::ES256
        .signer_from_der(hub_key.private_key_to_pkcs8().unwrap())
        .unwrap();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_x509_certificate_chain(&vec![pki.hub.to_der().unwrap()]);
    header.set_content_type("application/xml");
    header
        .set_claim("authenticationInformation", Some(entries))
        .unwrap();
    let signed = josekit::jws::serialize_compact(XML.as_bytes(), &header, &signer).unwrap();
    raw_encrypt(signed.as_bytes(), &jwe_header, &recipient.cert)
}

/// The `authenticationInformation` of a sealed message's inner JWS header.
fn authentication_information(pki_party: &Party, sealed: &str) -> Value {
    let (signed, _) = raw_decrypt(sealed, &pki_party.key);
    header(&String::from_utf8(signed).unwrap())
        .remove("authenticationInformation")
        .unwrap_or(Value::Null)
}

#[test]
fn the_identification_travels_signed_in_the_encrypted_header() {
    use kopplung_transformers::jose::unseal_message;
    let pki = Pki::new();
    let a = pki.party("a");
    let sealed = pki
        .sealer
        .seal_with(XML.as_bytes(), &a.cert, Some(&report()))
        .unwrap();
    // Nothing of it in the clear: the JWE header is as for any message.
    assert_message_headers_outer(&sealed, &a);
    assert!(!sealed.contains("pseudonym"));

    let entries = authentication_information(&a, &sealed);
    assert_eq!(entries[0]["type"], "identificationReport");
    assert_eq!(entries[0]["version"], "2.0.0");
    let jwt = entries[0]["content"].as_str().unwrap();
    let jwt_header = header(jwt);
    assert_eq!(jwt_header["typ"], "JWT");
    assert_eq!(jwt_header["alg"], "ES256");
    assert_eq!(
        jwt_header["x5c"],
        json!([STANDARD.encode(pki.hub.to_der().unwrap())])
    );

    let opened = unseal_message(&sealed, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap();
    assert_eq!(opened.payload, XML.as_bytes());
    assert_eq!(opened.identification_reports, vec![report()]);
    // The plain unseal still opens it; a message without it has no reports.
    assert_eq!(
        unseal(&sealed, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap(),
        XML.as_bytes()
    );
    let anonymous = pki.sealer.seal(XML.as_bytes(), &a.cert).unwrap();
    assert_eq!(authentication_information(&a, &anonymous), Value::Null);
    let opened = unseal_message(&anonymous, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap();
    assert!(opened.identification_reports.is_empty());

    // PS512 with an RSA hub, the same way.
    let (rsa_sealer, rsa_hub) = rsa_hub_sealer(&pki);
    let sealed = rsa_sealer
        .seal_with(XML.as_bytes(), &a.cert, Some(&report()))
        .unwrap();
    let opened = unseal_message(&sealed, &a.cert, &a.key, &rsa_hub, &pki.anchors).unwrap();
    assert_eq!(opened.identification_reports, vec![report()]);
    assert_eq!(
        header(
            authentication_information(&a, &sealed)[0]["content"]
                .as_str()
                .unwrap()
        )["alg"],
        "PS512"
    );
}

fn assert_message_headers_outer(jwe_compact: &str, recipient: &Party) {
    let kid = URL_SAFE_NO_PAD.encode(recipient.cert.digest(MessageDigest::sha256()).unwrap());
    assert_eq!(
        Value::Object(header(jwe_compact)),
        json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": kid, "x5t#S256": kid, "cty": "JOSE"})
    );
}

#[test]
fn a_report_not_signed_by_the_hub_is_refused_here_and_by_jwcrypto() {
    use kopplung_transformers::jose::unseal_message;
    let pki = Pki::new();
    let a = pki.party("a");
    let ec = pki.party("ec");
    // An impostor from the same CA signs a report; the hub's message carries it.
    let impostor = JoseSealer::new(ec.cert.clone(), ec.key.clone(), Vec::new()).unwrap();
    let forged_report = impostor
        .seal_with(XML.as_bytes(), &a.cert, Some(&report()))
        .unwrap();
    let impostors_entries = authentication_information(&a, &forged_report);
    let foreign = hub_message_with(&pki, &a, impostors_entries.clone());
    let err = unseal_message(&foreign, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap_err();
    assert!(matches!(err, Error::Certificate(_)), "{err}");
    assert_refused(
        &python_open(&pki, "a", &foreign, None),
        "a report signed by another",
    );

    // ... with the hub's certificate put into its x5c: the signature does not verify.
    let jwt = impostors_entries[0]["content"].as_str().unwrap();
    let mut jwt_header = header(jwt);
    jwt_header.insert(
        "x5c".into(),
        json!([STANDARD.encode(pki.hub.to_der().unwrap())]),
    );
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&jwt_header).unwrap());
    let swapped = hub_message_with(
        &pki,
        &a,
        json!([{"type": "identificationReport", "version": "2.0.0", "content": parts.join(".")}]),
    );
    let err = unseal_message(&swapped, &a.cert, &a.key, &pki.hub, &pki.anchors).unwrap_err();
    assert!(err.to_string().contains("verifying the signature"), "{err}");
    assert_refused(&python_open(&pki, "a", &swapped, None), "a swapped x5c");

    // An entry of another type is not silently ignored.
    let other = hub_message_with(
        &pki,
        &a,
        json!([{"type": "somethingElse", "version": "1.0.0", "content": "a.b.c"}]),
    );
    assert!(unseal_message(&other, &a.cert, &a.key, &pki.hub, &pki.anchors).is_err());
    assert_refused(&python_open(&pki, "a", &other, None), "another type");
}

#[test]
fn python_jwcrypto_reads_the_identification_reports() {
    let pki = Pki::new();
    let sealed = pki
        .sealer
        .seal_with(XML.as_bytes(), &pki.party("a").cert, Some(&report()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (file, reports) = (dir.path().join("m.jwe"), dir.path().join("reports.json"));
    std::fs::write(&file, &sealed).unwrap();
    let output = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jose_verify.py"))
        .arg("--reports")
        .arg(&reports)
        .arg(&file)
        .arg(pki.layout.procedure_cert("a"))
        .arg(pki.layout.procedure_key("a"))
        .arg(pki.layout.ca_cert())
        .arg(fingerprint(&pki.hub))
        .output()
        .unwrap();
    assert_eq!(assert_opens(&output), XML.as_bytes());
    let read: Value = serde_json::from_slice(&std::fs::read(&reports).unwrap()).unwrap();
    assert_eq!(read, json!([report()]));
}
