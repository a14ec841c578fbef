//! Staged rotation in the keyring, on the pausable clock: the hub's next signing
//! certificate is published, then signs from its `activate_at`; a procedure's next
//! encryption certificate is sealed for only once the vendor confirmed it and its time
//! has come; during a rotation of the procedure's signing key receipts signed with
//! either key are taken.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kopplung_core::{Clock, ManualClock, ProcedureId, Rotation, Stage};
use kopplung_pipeline::{Envelope, Keyring, KeyringConfig, NextSigning, ProcedureKeys};
use kopplung_transformers::mapping::Behoerde;
use kopplung_transformers::pki::{PkiLayout, Role, Validity, init_demo_pki, issue_from_demo_ca};
use kopplung_transformers::receipt::{Receipt, ReceiptEvent, sign_cms};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use time::{Duration, OffsetDateTime};

/// Writes `<pki>/<stem>.crt` and `.key` (0600), issued by the demo CA.
fn issue(pki: &Path, stem: &str, role: Role) -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let cert =
        issue_from_demo_ca(&PkiLayout::new(pki), stem, &key, role, Validity::days(30)).unwrap();
    std::fs::write(pki.join(format!("{stem}.crt")), cert.to_pem().unwrap()).unwrap();
    let key_path = pki.join(format!("{stem}.key"));
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (cert, key)
}

/// A demo PKI with the procedure `cms` and its receipt signer, in a fresh folder.
fn demo_pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let layout = PkiLayout::new(dir.path());
    init_demo_pki(&layout, &["cms".to_owned()]).unwrap();
    kopplung_transformers::pki::issue_procedure_signer(&layout, "cms").unwrap();
    dir
}

/// [`demo_pki`] with the next certificates issued: the hub's (a signer) and the
/// procedure `cms`'s as `cms_next` (a recipient, unless a test hands over the wrong one).
/// The folder, and the two certificates.
fn with_next_certificates(cms_next: Role) -> (tempfile::TempDir, X509, X509) {
    let dir = demo_pki();
    let (hub_next, _) = issue(dir.path(), "hub-next", Role::Signer);
    let (cms_next, _) = issue(dir.path(), "procedures/cms-next", cms_next);
    (dir, hub_next, cms_next)
}

/// The keyring on a manual clock at now, the hub's next certificate due in an hour and
/// the procedure's not confirmed: the clock, the due time and the keyring.
fn hub_next_due_in_an_hour(pki: &Path) -> (Arc<ManualClock>, OffsetDateTime, Keyring) {
    let start = OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(start));
    let at = start + Duration::hours(1);
    let keyring = Keyring::load(
        &config(
            pki,
            Some(at),
            Rotation::confirmed_by_vendor(false, None),
            false,
        ),
        clock.clone(),
    )
    .unwrap();
    (clock, at, keyring)
}

/// The vendor confirmed the procedure's next certificate; the hub's next one is due at
/// `at`; no next receipt certificate.
fn vendor_confirmed(pki: &Path, at: OffsetDateTime) -> KeyringConfig {
    config(
        pki,
        Some(at),
        Rotation::confirmed_by_vendor(true, None),
        false,
    )
}

fn config(
    pki: &Path,
    hub_at: Option<OffsetDateTime>,
    procedure: Rotation,
    receipt_next: bool,
) -> KeyringConfig {
    KeyringConfig {
        source: pki.join("kopplung.toml"),
        pki_dir: pki.to_owned(),
        pkcs12: None,
        next_signing: Some(NextSigning {
            certificate: "hub-next.crt".into(),
            key: "hub-next.key".into(),
            rotation: Rotation::scheduled(hub_at),
        }),
        procedures: vec![ProcedureKeys {
            id: ProcedureId::parse("cms").unwrap(),
            envelope: Some(Envelope::Cms),
            certificates: vec![PathBuf::from("procedures/cms.crt")],
            certificate_next: Some(("procedures/cms-next.crt".into(), procedure)),
            receipt_certificate: Some("procedures/cms-signatur.crt".into()),
            receipt_certificate_next: receipt_next
                .then(|| "procedures/cms-signatur-next.crt".into()),
            reader: Behoerde {
                verzeichnisdienst: "DVDV".into(),
                verzeichnisdienst_list_version: "2".into(),
                kennung: "dvdv:cms".into(),
                name: "Stadt".into(),
            },
            fitconnect_subscriber: false,
            can_fetch: false,
        }],
    }
}

fn der(cert: &X509) -> Vec<u8> {
    cert.to_der().unwrap()
}

fn receipt(issued_at: OffsetDateTime) -> Receipt {
    Receipt {
        receipt_id: uuid::Uuid::new_v4().to_string(),
        procedure: "cms".into(),
        message_id: uuid::Uuid::new_v4().to_string(),
        application_id: uuid::Uuid::new_v4().to_string(),
        event: ReceiptEvent::Accept,
        problems: Vec::new(),
        message: None,
        document: None,
        appeal: None,
        fee: None,
        issued_at: issued_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    }
}

#[test]
fn certificates_go_from_published_to_active_to_retired() {
    let (dir, hub_next, cms_next) = with_next_certificates(Role::Recipient);
    let pki = dir.path();
    let layout = PkiLayout::new(pki);
    let (_, signer_next_key) = issue(pki, "procedures/cms-signatur-next", Role::Signer);
    let hub = kopplung_transformers::seal::load_certificate(&layout.hub_cert()).unwrap();
    let cms = kopplung_transformers::seal::load_certificate(&layout.procedure_cert("cms")).unwrap();

    let (clock, at, keyring) = hub_next_due_in_an_hour(pki);

    // Published: the hub signs with the current key and shows both.
    assert_eq!(der(&keyring.signing_certificate()), der(&hub));
    let published = keyring.published();
    assert_eq!(
        published.iter().map(|c| c.stage).collect::<Vec<_>>(),
        [Stage::Active, Stage::Published]
    );
    assert_eq!(published[1].activate_at, Some(at));
    assert_eq!(published[1].fingerprint_sha256.len(), 32 * 3 - 1);
    // The procedure's next certificate is not confirmed: sealed for the current one.
    assert_eq!(der(&keyring.sealing_certificate("cms").unwrap()), der(&cms));
    let warnings = keyring.rotation_warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("procedure cms") && w.contains("not yet confirmed")),
        "{warnings:?}"
    );

    // The time comes: the next signs, the old is retired but still published.
    clock.advance(Duration::hours(1));
    assert_eq!(der(&keyring.signing_certificate()), der(&hub_next));
    assert_eq!(
        keyring
            .published()
            .iter()
            .map(|c| c.stage)
            .collect::<Vec<_>>(),
        [Stage::Retired, Stage::Active]
    );
    // Still not confirmed: the hub's switch does not move the procedure's.
    assert_eq!(der(&keyring.sealing_certificate("cms").unwrap()), der(&cms));

    // The vendor confirms, effective in ten minutes; the operator reloads.
    let later = clock.now() + Duration::minutes(10);
    keyring
        .reload(&config(
            pki,
            Some(at),
            Rotation::confirmed_by_vendor(true, Some(later)),
            true,
        ))
        .unwrap();
    assert!(keyring.rotation_warnings().is_empty());
    assert_eq!(der(&keyring.sealing_certificate("cms").unwrap()), der(&cms));
    clock.advance(Duration::minutes(10));
    assert_eq!(
        der(&keyring.sealing_certificate("cms").unwrap()),
        der(&cms_next)
    );

    // Receipts signed with the old and with the next signing key are both taken.
    let old_signer =
        kopplung_transformers::seal::load_certificate(&layout.procedure_signing_cert("cms"))
            .unwrap();
    let old_key =
        kopplung_transformers::seal::load_private_key(&layout.procedure_signing_key("cms"))
            .unwrap();
    let next_signer = kopplung_transformers::seal::load_certificate(
        &pki.join("procedures/cms-signatur-next.crt"),
    )
    .unwrap();
    for (cert, key) in [(&old_signer, &old_key), (&next_signer, &signer_next_key)] {
        let signed = sign_cms(&receipt(clock.now()), cert, key).unwrap();
        keyring.verify_receipt("cms", &signed).unwrap();
    }
    // Without the next one configured, its receipts are refused.
    keyring.reload(&vendor_confirmed(pki, at)).unwrap();
    let signed = sign_cms(&receipt(clock.now()), &next_signer, &signer_next_key).unwrap();
    assert!(keyring.verify_receipt("cms", &signed).is_err());
}

#[test]
fn a_next_certificate_that_cannot_be_used_is_named_before_it_would_block() {
    // A signing certificate handed over as the next encryption certificate.
    let (dir, _, _) = with_next_certificates(Role::Signer);
    let pki = dir.path();
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let keyring = Keyring::load(
        &config(pki, None, Rotation::confirmed_by_vendor(false, None), false),
        clock,
    )
    .unwrap();
    let warnings = keyring.rotation_warnings();
    assert!(
        warnings.iter().any(
            |w| w.contains("procedure cms: the next certificate cannot be used")
                && w.contains("keyAgreement")
        ),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("next signing certificate") && w.contains("no activate_at")),
        "{warnings:?}"
    );
    // The current one still serves.
    assert!(keyring.problems().is_empty());
}

#[test]
fn each_switch_is_reported_once() {
    let (dir, _, _) = with_next_certificates(Role::Recipient);
    let pki = dir.path();
    let (clock, at, keyring) = hub_next_due_in_an_hour(pki);
    let published = keyring.published();
    let (old, new) = (
        published[0].fingerprint_sha256.clone(),
        published[1].fingerprint_sha256.clone(),
    );
    // What was in force at the load is no switch.
    assert!(keyring.switches().is_empty());
    let stage = |owner: &str, file: &str| {
        keyring
            .certificate_stages()
            .get(&(owner.to_owned(), file.to_owned()))
            .copied()
    };
    assert_eq!(stage("hub", "hub.crt"), Some(Stage::Active));
    assert_eq!(stage("hub", "next"), Some(Stage::Published));
    assert_eq!(stage("cms", "cms.crt"), Some(Stage::Active));
    assert_eq!(stage("cms", "cms-next.crt"), Some(Stage::Published));
    clock.advance(Duration::hours(1) - Duration::seconds(1));
    assert!(keyring.switches().is_empty());
    clock.advance(Duration::seconds(1));
    let switches = keyring.switches();
    assert_eq!(switches.len(), 1, "{switches:?}");
    let line = &switches[0];
    assert!(
        line.contains("signing certificate switched")
            && line.contains(&format!("now signing SHA-256 {new}"))
            && line.contains(&format!("retired SHA-256 {old}"))
            && line.contains(
                &at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            ),
        "{line}"
    );
    assert!(keyring.switches().is_empty(), "reported once");
    assert_eq!(stage("hub", "hub.crt"), Some(Stage::Retired));
    assert_eq!(stage("hub", "next"), Some(Stage::Active));

    // The vendor confirmed: the reload that makes the next certificate the one
    // sealed for reports it, once.
    keyring.reload(&vendor_confirmed(pki, at)).unwrap();
    let switches = keyring.switches();
    assert_eq!(switches.len(), 1, "{switches:?}");
    assert!(
        switches[0].contains("procedure cms: messages are now sealed for its next certificate")
            && switches[0].contains("cms-next.crt")
            && switches[0].contains("on confirmation"),
        "{}",
        switches[0]
    );
    assert!(keyring.switches().is_empty(), "reported once");
}

#[test]
fn a_next_key_that_does_not_match_names_the_setting_and_files() {
    let (dir, _, _) = with_next_certificates(Role::Recipient);
    let pki = dir.path();
    issue(pki, "other", Role::Signer);
    let mut wrong = config(pki, None, Rotation::confirmed_by_vendor(false, None), false);
    if let Some(next) = wrong.next_signing.as_mut() {
        next.key = "other.key".into();
    }
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let error = Keyring::load(&wrong, clock).unwrap_err().to_string();
    assert!(
        error.contains("kopplung.toml: [signing] next_key: other.key does not belong to next_certificate hub-next.crt"),
        "{error}"
    );
}
