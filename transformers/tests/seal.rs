//! The seal round trip through the crate; the `openssl cms` command line is exercised
//! by the end-to-end tests.

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
