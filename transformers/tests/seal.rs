//! The seal round trip through the crate; the `openssl cms` command line is exercised
//! by the end-to-end tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use kopplung_transformers::pki::{PkiLayout, init_demo_pki};
use kopplung_transformers::seal::{Sealer, TrustAnchors, load_certificate, unseal};
use openssl::pkey::PKey;

#[test]
fn sealed_content_opens_only_for_its_recipient_and_only_from_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    let written = init_demo_pki(&pki, &["a".into(), "b".into()]).unwrap();
    assert_eq!(written.len(), 8);
    // A second run keeps what exists.
    assert!(init_demo_pki(&pki, &["a".into()]).unwrap().is_empty());

    let sealer = Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
    let anchors = TrustAnchors::load(&pki.ca_cert()).unwrap();
    let hub = load_certificate(&pki.hub_cert()).unwrap();
    let a_cert = load_certificate(&pki.procedure_cert("a")).unwrap();
    anchors.check(&a_cert).unwrap();
    let a_key =
        PKey::private_key_from_pem(&std::fs::read(pki.procedure_key("a")).unwrap()).unwrap();
    let b_cert = load_certificate(&pki.procedure_cert("b")).unwrap();
    let b_key =
        PKey::private_key_from_pem(&std::fs::read(pki.procedure_key("b")).unwrap()).unwrap();

    let content = "<x>Grüße &amp; mehr</x>".as_bytes();
    let sealed = sealer.seal(content, &a_cert).unwrap();
    assert!(
        !sealed.windows(content.len()).any(|w| w == content),
        "content is encrypted"
    );
    assert_eq!(
        unseal(&sealed, &a_cert, &a_key, &hub, &anchors).unwrap(),
        content
    );
    assert!(unseal(&sealed, &b_cert, &b_key, &hub, &anchors).is_err());
    // Signed by someone else than the expected hub: refused.
    assert!(unseal(&sealed, &a_cert, &a_key, &b_cert, &anchors).is_err());
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    init_demo_pki(&PkiLayout::new(ours.path()), &[]).unwrap();
    init_demo_pki(&PkiLayout::new(theirs.path()), &["x".into()]).unwrap();
    let anchors = TrustAnchors::load(&PkiLayout::new(ours.path()).ca_cert()).unwrap();
    let foreign = load_certificate(&PkiLayout::new(theirs.path()).procedure_cert("x")).unwrap();
    let err = anchors.check(&foreign).unwrap_err().to_string();
    assert!(err.contains("Fachverfahren x"), "{err}");
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &[]).unwrap();
    chmod(&pki.hub_key(), 0o644);
    let err = Sealer::load(&pki.hub_cert(), &pki.hub_key())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("chmod 600") && err.contains("hub.key"),
        "{err}"
    );
    chmod(&pki.hub_key(), 0o600);
    Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
}

#[test]
fn pkcs12_with_a_passphrase_and_no_secret_in_errors() {
    use openssl::pkcs12::Pkcs12;
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &[]).unwrap();
    let key = PKey::private_key_from_pem(&std::fs::read(pki.hub_key()).unwrap()).unwrap();
    let cert = load_certificate(&pki.hub_cert()).unwrap();
    let p12 = Pkcs12::builder()
        .name("hub")
        .pkey(&key)
        .cert(&cert)
        .build2("geheim-123")
        .unwrap();
    let path = dir.path().join("hub.p12");
    std::fs::write(&path, p12.to_der().unwrap()).unwrap();
    chmod(&path, 0o600);
    let sealer = Sealer::from_pkcs12(&path, "geheim-123").unwrap();
    assert_eq!(
        sealer.certificate().to_der().unwrap(),
        cert.to_der().unwrap()
    );
    let err = Sealer::from_pkcs12(&path, "falsch-456")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("passphrase") && !err.contains("falsch-456"),
        "{err}"
    );
}

#[test]
fn rsa_signing_keys_are_refused_and_brainpool_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &["p".into()]).unwrap();
    let d = dir.path();
    for (name, algorithm) in [("rsa", "RSA"), ("pss", "RSA-PSS")] {
        let key = format!("{name}.key");
        let cert = format!("{name}.crt");
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                algorithm,
                "-pkeyopt",
                "rsa_keygen_bits:3072",
                "-out",
                &key,
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                &key,
                "-subj",
                "/CN=hub-rsa",
                "-days",
                "3",
                "-out",
                &cert,
            ],
        );
        chmod(&d.join(&key), 0o600);
        let err = Sealer::load(&d.join(&cert), &d.join(&key))
            .unwrap_err()
            .to_string();
        assert!(err.contains("EC P-256 or brainpoolP256r1"), "{err}");
    }
    // brainpoolP256r1: sealed, and stock openssl verifies it.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:brainpoolP256r1",
            "-out",
            "bp.key",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "bp.key",
            "-subj",
            "/CN=hub-brainpool",
            "-out",
            "bp.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509", "-req", "-in", "bp.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-days", "30",
            "-out", "bp.crt",
        ],
    );
    chmod(&d.join("bp.key"), 0o600);
    let sealer = Sealer::load(&d.join("bp.crt"), &d.join("bp.key")).unwrap();
    let recipient = load_certificate(&pki.procedure_cert("p")).unwrap();
    std::fs::write(
        d.join("m.p7m"),
        sealer.seal(b"<x>brainpool</x>", &recipient).unwrap(),
    )
    .unwrap();
    let key = pki.procedure_key("p");
    let cert = pki.procedure_cert("p");
    openssl(
        d,
        &[
            "cms",
            "-decrypt",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "m.p7m",
            "-recip",
            cert.to_str().unwrap(),
            "-inkey",
            key.to_str().unwrap(),
            "-out",
            "s.der",
        ],
    );
    openssl(
        d,
        &[
            "cms", "-verify", "-binary", "-inform", "DER", "-in", "s.der", "-CAfile", "ca.crt",
            "-out", "m.xml",
        ],
    );
    assert_eq!(std::fs::read(d.join("m.xml")).unwrap(), b"<x>brainpool</x>");
}

#[test]
fn cms_recipients_must_be_ec_with_key_agreement() {
    use kopplung_transformers::seal::check_cms_recipient;
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &["p".into()]).unwrap();
    check_cms_recipient(&load_certificate(&pki.procedure_cert("p")).unwrap()).unwrap();
    // The hub's certificate allows signatures only, not key agreement.
    let err = check_cms_recipient(&load_certificate(&pki.hub_cert()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("keyAgreement"), "{err}");
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
            "-out",
            "r.key",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "r.key",
            "-subj",
            "/CN=rsa-recipient",
            "-days",
            "3",
            "-out",
            "r.crt",
        ],
    );
    let err = check_cms_recipient(&load_certificate(&d.join("r.crt")).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("jose profile"), "{err}");
}

#[test]
fn a_cms_recipient_whose_key_is_not_a_valid_point_is_refused() {
    // Sealing skips OpenSSL's check of the recipient's key per message (a point of the
    // group's order): reading and checking the certificate must refuse a degenerate key,
    // the point at infinity (on P-256 and brainpoolP256r1, cofactor 1, every other point
    // on the curve has the group's order, and reading a key refuses points off it).
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::nid::Nid;
    use openssl::x509::{X509, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let infinity = EcPoint::new(&group).unwrap();
    let public = PKey::from_ec_key(EcKey::from_public_key(&group, &infinity).unwrap()).unwrap();
    let signer = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "degenerate").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&public).unwrap();
    cert.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&openssl::asn1::Asn1Time::days_from_now(3).unwrap())
        .unwrap();
    cert.sign(&signer, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let der = cert.build().to_der().unwrap();
    // Refused when read, or when checked as a recipient: never sealed for.
    if let Ok(decoded) = X509::from_der(&der) {
        let refused = kopplung_transformers::seal::check_cms_recipient(&decoded);
        assert!(refused.is_err(), "{refused:?}");
    }
}

#[test]
fn a_flipped_byte_in_ciphertext_or_signature_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &["p".into()]).unwrap();
    let sealer = Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
    let anchors = TrustAnchors::load(&pki.ca_cert()).unwrap();
    let hub = load_certificate(&pki.hub_cert()).unwrap();
    let cert = load_certificate(&pki.procedure_cert("p")).unwrap();
    let key = PKey::private_key_from_pem(&std::fs::read(pki.procedure_key("p")).unwrap()).unwrap();
    let sealed = sealer.seal(b"<x>unverfaelscht</x>", &cert).unwrap();
    // The encrypted content sits near the end, before the GCM tag.
    for at in [sealed.len() - 40, sealed.len() - 3] {
        let mut flipped = sealed.clone();
        flipped[at] ^= 0x01;
        assert!(
            unseal(&flipped, &cert, &key, &hub, &anchors).is_err(),
            "byte {at}"
        );
    }
    // A signature changed before encryption (a forger with the recipient's certificate).
    use openssl::cms::{CMSOptions, CmsContentInfo};
    let enveloped = CmsContentInfo::from_der(&sealed).unwrap();
    let mut signed = enveloped.decrypt(&key, &cert).unwrap();
    let last = signed.len() - 2;
    signed[last] ^= 0x01;
    let mut stack = openssl::stack::Stack::new().unwrap();
    stack.push(cert.clone()).unwrap();
    let forged = CmsContentInfo::encrypt(
        &stack,
        &signed,
        openssl::symm::Cipher::aes_256_gcm(),
        CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap();
    assert!(unseal(&forged, &cert, &key, &hub, &anchors).is_err());
}

#[test]
fn the_envelope_opens_with_openssl_refuses_a_changed_byte_and_rsa_recipients() {
    use kopplung_transformers::pki::issue_rsa_recipient;
    use kopplung_transformers::seal::{decrypt, encrypt};
    let (_dir, pki, cert, key) = procedure_p();

    // An attachment fragment: a MiB of bytes, opened by OpenSSL's CMS decrypt.
    let content: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let sealed = encrypt(&content, &cert).unwrap();
    assert_eq!(decrypt(&sealed, &cert, &key).unwrap(), content);
    // Two seals of the same content differ (ephemeral key, content key, nonce).
    assert_ne!(encrypt(&content, &cert).unwrap(), sealed);

    // A changed ciphertext byte fails the GCM tag.
    let mut tampered = sealed.clone();
    let at = tampered.len() - 100;
    tampered[at] ^= 1;
    assert!(decrypt(&tampered, &cert, &key).is_err());

    // No RSA key transport in this profile.
    issue_rsa_recipient(&pki, "rsa", 3072).unwrap();
    let rsa = load_certificate(&pki.procedure_cert("rsa")).unwrap();
    let err = encrypt(b"x", &rsa).unwrap_err().to_string();
    assert!(err.contains("EC keys only"), "{err}");
}

/// The SignedData the hub assembles is what OpenSSL's `CMS_sign` made with `BINARY |
/// NOSMIMECAP` (compared field by field, but for the signature and the signing time,
/// which is the one given), and stock `openssl cms -verify` accepts it.
#[test]
fn the_signed_data_is_what_openssl_cms_sign_made_and_verifies_with_openssl() {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    use der::{Decode, Encode};
    use kopplung_transformers::seal::decrypt;
    use openssl::cms::{CMSOptions, CmsContentInfo};

    let (dir, pki, cert, key) = procedure_p();
    let hub = load_certificate(&pki.hub_cert()).unwrap();
    let hub_key = private_key(&pki.hub_key());
    let sealer = Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();

    let content = "<nachricht>Grüße aus Dresden\r\n</nachricht>\n".as_bytes();
    let at = time::macros::datetime!(2026-12-08 01:02:03 UTC);
    let ours = decrypt(&sealer.seal_at(content, &cert, at).unwrap(), &cert, &key).unwrap();
    let hub_der = hub.to_der().unwrap();
    assert!(
        ours.windows(hub_der.len()).any(|w| w == hub_der),
        "the certificate's own bytes"
    );
    let theirs = CmsContentInfo::sign(
        Some(&hub),
        Some(&hub_key),
        None,
        Some(content),
        CMSOptions::BINARY | CMSOptions::NOSMIMECAP,
    )
    .unwrap()
    .to_der()
    .unwrap();

    let signed_data = |der: &[u8]| {
        let info = ContentInfo::from_der(der).unwrap();
        assert_eq!(info.content_type.to_string(), "1.2.840.113549.1.7.2");
        info.content.decode_as::<SignedData>().unwrap()
    };
    let (mut ours_sd, mut theirs_sd) = (signed_data(&ours), signed_data(&theirs));
    let signing_time = |sd: &SignedData| {
        let info = sd.signer_infos.0.as_slice()[0].clone();
        let attributes = info.signed_attrs.unwrap();
        let time = attributes
            .iter()
            .find(|a| a.oid.to_string() == "1.2.840.113549.1.9.5")
            .unwrap()
            .values
            .as_slice()[0]
            .decode_as::<x509_cert::time::Time>()
            .unwrap();
        let others: Vec<_> = attributes
            .iter()
            .filter(|a| a.oid.to_string() != "1.2.840.113549.1.9.5")
            .map(|a| a.to_der().unwrap())
            .collect();
        (time, others)
    };
    let (our_time, our_attributes) = signing_time(&ours_sd);
    let (_, their_attributes) = signing_time(&theirs_sd);
    assert_eq!(
        our_time.to_unix_duration().as_secs(),
        at.unix_timestamp() as u64
    );
    assert!(matches!(our_time, x509_cert::time::Time::UtcTime(_)));
    assert_eq!(
        our_attributes, their_attributes,
        "contentType, messageDigest"
    );
    // Everything else, with the signer infos' attributes and signatures left out.
    let strip = |sd: &mut SignedData| {
        let mut info = sd.signer_infos.0.as_slice()[0].clone();
        info.signed_attrs = None;
        info.signature = der::asn1::OctetString::new(Vec::new()).unwrap();
        sd.signer_infos = cms::signed_data::SignerInfos(vec![info].try_into().unwrap());
        sd.to_der().unwrap()
    };
    assert_eq!(strip(&mut ours_sd), strip(&mut theirs_sd));

    // Stock openssl checks the signature against the CA.
    let signed_path = dir.path().join("signed.der");
    let openssl_verify = |der: &[u8]| {
        std::fs::write(&signed_path, der).unwrap();
        std::process::Command::new("openssl")
            .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
            .arg(&signed_path)
            .arg("-CAfile")
            .arg(pki.ca_cert())
            .output()
            .unwrap()
    };
    let verified = openssl_verify(&ours);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(verified.stdout, content);
    // A changed content byte fails it.
    let mut tampered = ours.clone();
    let at = tampered
        .windows(b"Dresden".len())
        .position(|w| w == b"Dresden")
        .unwrap();
    tampered[at] ^= 1;
    assert!(!openssl_verify(&tampered).status.success());
}

/// A hub certificate that is valid but not in the strictest DER (its expiry a
/// GeneralizedTime before 2050) travels as its own bytes: parsed and encoded again, it
/// would change, and its signature by the CA would no longer verify.
#[test]
fn a_hub_certificate_in_lenient_der_travels_as_its_own_bytes() {
    use der::{Decode, Encode};
    use kopplung_transformers::seal::decrypt;
    use openssl::asn1::{Asn1Integer, Asn1Time};
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::x509::{X509Builder, X509NameBuilder};

    let (_dir, pki, cert, cert_key) = procedure_p();
    let ca = load_certificate(&pki.ca_cert()).unwrap();
    let ca_key = private_key(&pki.ca_key());
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "kopplung Hub (GeneralizedTime)")
        .unwrap();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    let serial = Asn1Integer::from_bn(&BigNum::from_u32(4711).unwrap()).unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(&name.build()).unwrap();
    builder.set_issuer_name(ca.subject_name()).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_str("20401231235959Z").unwrap())
        .unwrap();
    builder.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let hub = builder.build();
    let der = hub.to_der().unwrap();
    // Parsed and encoded again by the ASN.1 types, it comes out different.
    let rewritten = x509_cert::Certificate::from_der(&der)
        .unwrap()
        .to_der()
        .unwrap();
    assert_ne!(rewritten, der);

    let sealer = Sealer::new(hub.clone(), key).unwrap();
    let content = b"<x>Bescheid</x>";
    let sealed = sealer.seal(content, &cert).unwrap();
    let signed = decrypt(&sealed, &cert, &cert_key).unwrap();
    assert!(
        signed.windows(der.len()).any(|w| w == der),
        "the certificate's own bytes"
    );
    // Verified against the CA: the certificate's signature holds.
    let anchors = TrustAnchors::load(&pki.ca_cert()).unwrap();
    assert_eq!(
        unseal(&sealed, &cert, &cert_key, &hub, &anchors).unwrap(),
        content
    );
}

/// A demo PKI with one procedure, `p`: its folder, layout, certificate and key.
fn procedure_p() -> (
    tempfile::TempDir,
    PkiLayout,
    openssl::x509::X509,
    PKey<openssl::pkey::Private>,
) {
    let dir = tempfile::tempdir().unwrap();
    let pki = PkiLayout::new(dir.path());
    init_demo_pki(&pki, &["p".into()]).unwrap();
    let cert = load_certificate(&pki.procedure_cert("p")).unwrap();
    let key = private_key(&pki.procedure_key("p"));
    (dir, pki, cert, key)
}

fn private_key(path: &std::path::Path) -> PKey<openssl::pkey::Private> {
    PKey::private_key_from_pem(&std::fs::read(path).unwrap()).unwrap()
}
