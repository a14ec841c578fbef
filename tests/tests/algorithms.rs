//! A real sealed message of each profile uses only algorithms of BSI TR-02102-1, read
//! with `openssl asn1parse` and from the JOSE headers: no SHA-1 anywhere, the key
//! agreement's KDF included (issue 21). The allow-list is `kopplung_tests::algorithms`;
//! every message the end-to-end tests open as a vendor is checked the same way.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kopplung_tests::algorithms::{ALGORITHMS, check_identifiers, check_jose, object_identifiers};
use kopplung_tests::{open_jose_with_python, open_with_openssl_cli, workspace};
use kopplung_transformers::jose::{JoseSealer, unseal_attachment};
use kopplung_transformers::pki::{
    PkiLayout, Role, Validity, init_demo_pki, issue_from_demo_ca, issue_rsa_recipient,
};
use kopplung_transformers::seal::{Sealer, decrypt, load_certificate, load_private_key};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;

const XML: &[u8] = b"<nachricht>Gr\xc3\xbc\xc3\x9fe</nachricht>";

fn demo_pki(dir: &Path) -> PkiLayout {
    let pki = PkiLayout::new(dir);
    init_demo_pki(&pki, &["p256".into()]).unwrap();
    pki
}

/// A recipient on brainpoolP256r1 (`procedures/bp.crt`, `.key`) from the demo CA.
fn brainpool_recipient(pki: &PkiLayout, dir: &Path) {
    let group = EcGroup::from_curve_name(Nid::BRAINPOOL_P256R1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let cert = issue_from_demo_ca(
        pki,
        "Fachverfahren bp",
        &key,
        Role::Recipient,
        Validity::days(30),
    )
    .unwrap();
    std::fs::write(dir.join("procedures/bp.crt"), cert.to_pem().unwrap()).unwrap();
    let key_path = dir.join("procedures/bp.key");
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The dotted OIDs and names of the algorithms `ids` uses, for the log of the test.
fn listing(ids: &[String]) -> String {
    let used = check_identifiers(ids).unwrap();
    used.iter()
        .map(|a| format!("{} {}", a.oid, a.name))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn a_sealed_cms_message_uses_only_tr_02102_1_algorithms_for_p256_and_brainpool_recipients() {
    let dir = tempfile::tempdir().unwrap();
    let pki = demo_pki(dir.path());
    brainpool_recipient(&pki, dir.path());
    let sealer = Sealer::load(&pki.hub_cert(), &pki.hub_key()).unwrap();
    let vendors = std::fs::read_to_string(workspace().join("docs/vendors.md")).unwrap();
    for procedure in ["p256", "bp"] {
        let recipient = load_certificate(&pki.procedure_cert(procedure)).unwrap();
        let sealed = sealer.seal(XML, &recipient).unwrap();
        // Decrypts and verifies with stock openssl as a vendor would, and asserts the
        // algorithms of the envelope and of the SignedData.
        let xml = open_with_openssl_cli(&sealed, dir.path(), procedure);
        assert_eq!(xml.as_bytes(), XML);

        let outer = object_identifiers(&sealed);
        assert!(
            outer
                .iter()
                .any(|id| id == "dhSinglePass-stdDH-sha256kdf-scheme"),
            "{outer:?}"
        );
        assert!(!outer.iter().any(|id| id.contains("sha1")), "{outer:?}");
        let key = load_private_key(&pki.procedure_key(procedure)).unwrap();
        let inner = object_identifiers(&decrypt(&sealed, &recipient, &key).unwrap());
        eprintln!("{procedure} envelope: {}", listing(&outer));
        eprintln!("{procedure} SignedData: {}", listing(&inner));
        // What docs/vendors.md lists is what a message uses.
        let used = [
            check_identifiers(&outer).unwrap(),
            check_identifiers(&inner).unwrap(),
        ];
        for algorithm in used.into_iter().flatten() {
            assert!(
                vendors.contains(algorithm.oid) && vendors.contains(algorithm.name),
                "docs/vendors.md does not list {} {}",
                algorithm.oid,
                algorithm.name
            );
        }
    }
}

#[test]
fn a_sealed_jose_message_uses_only_tr_02102_1_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    let pki = demo_pki(dir.path());
    issue_rsa_recipient(&pki, "rsa", 3072).unwrap();
    let sealer = JoseSealer::load(&pki.hub_cert(), &pki.hub_key(), None).unwrap();
    let recipient = load_certificate(&pki.procedure_cert("rsa")).unwrap();
    let jwe = sealer.seal(XML, &recipient).unwrap();
    // Opens with jwcrypto as a vendor would, and asserts the headers' algorithms and
    // those of the hub's certificate in x5c.
    let xml = open_jose_with_python(jwe.as_bytes(), dir.path(), "rsa");
    assert_eq!(xml.as_bytes(), XML);
    let header = jwe.split('.').next().unwrap();
    let header = String::from_utf8(URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    eprintln!("JWE protected header: {header}");
    assert!(header.contains(r#""alg":"RSA-OAEP-256""#), "{header}");
    assert!(header.contains(r#""enc":"A256GCM""#), "{header}");
    let key = load_private_key(&pki.procedure_key("rsa")).unwrap();
    let jws = unseal_attachment(&jwe, &recipient, &key).unwrap();
    let jws = String::from_utf8(jws).unwrap();
    let header = URL_SAFE_NO_PAD
        .decode(jws.split('.').next().unwrap())
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header["alg"], "ES256", "{header}");
    eprintln!("JWS alg: {}, cty: {}", header["alg"], header["cty"]);
}

fn compact(header: &str) -> String {
    format!("{}.a.b.c.d", URL_SAFE_NO_PAD.encode(header))
}

/// The check fails where it must: OpenSSL's default envelope (SHA-1 KDF), SHA-1
/// signatures, algorithms off the list, and JOSE headers with SHA-1 or other
/// algorithms.
#[test]
fn the_check_refuses_sha1_and_anything_off_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let pki = demo_pki(dir.path());
    std::fs::write(dir.path().join("m.txt"), XML).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "cms",
            "-encrypt",
            "-binary",
            "-aes-256-gcm",
            "-outform",
            "DER",
        ])
        .args(["-in", "m.txt", "-out", "m.p7m", "-recip"])
        .arg(pki.procedure_cert("p256"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stock = object_identifiers(&std::fs::read(dir.path().join("m.p7m")).unwrap());
    let refused = check_identifiers(&stock).unwrap_err();
    kopplung_tests::assert_has(&refused, "dhSinglePass-stdDH-sha1kdf-scheme (SHA-1)");

    for (ids, reason) in [
        (vec!["sha1"], "sha1 (SHA-1)"),
        (vec!["ecdsa-with-SHA1"], "(SHA-1)"),
        (vec!["1.3.133.16.840.63.0.2"], "(SHA-1)"),
        (vec!["sha256", "aes-128-cbc"], "aes-128-cbc (not in"),
        (vec!["des-ede3-cbc"], "not in the BSI TR-02102-1 allow-list"),
        (vec!["sha256WithRSAEncryption"], "not in"),
        (vec!["1.2.3.4"], "1.2.3.4 (not in"),
    ] {
        let ids: Vec<String> = ids.into_iter().map(String::from).collect();
        let refused = check_identifiers(&ids).unwrap_err();
        assert!(refused.contains(reason), "{ids:?}: {refused}");
    }
    assert!(check_identifiers(&["sha256".into(), "pkcs7-data".into()]).is_ok());

    let good = compact(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#);
    assert!(check_jose(&good, None).is_ok());
    for (header, reason) in [
        (r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#, "(SHA-1)"),
        (r#"{"alg":"RSA1_5","enc":"A256GCM"}"#, "not in"),
        (r#"{"alg":"RSA-OAEP-256","enc":"A128CBC-HS256"}"#, "not in"),
        (
            r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","zip":"DEF"}"#,
            "zip",
        ),
    ] {
        let refused = check_jose(&compact(header), None).unwrap_err();
        assert!(refused.contains(reason), "{header}: {refused}");
    }
    let jws = compact(r#"{"alg":"RS256"}"#);
    let refused = check_jose(&good, Some(&jws)).unwrap_err();
    assert!(refused.contains("RS256"), "{refused}");
}

/// Each allowed algorithm states its basis in TR-02102-1, and none is SHA-1.
#[test]
fn the_allow_list_cites_tr_02102_1_and_has_no_sha1() {
    for algorithm in ALGORITHMS {
        assert!(algorithm.basis.contains("TR-02102-1"), "{algorithm:?}");
        assert!(
            !algorithm.name.to_ascii_lowercase().contains("sha1"),
            "{algorithm:?}"
        );
    }
}
