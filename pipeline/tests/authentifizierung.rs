//! The prepare step carries the applicant's identification to the procedure: in the XML
//! of every profile (validated against the service's schema) and, in the `jose`
//! profile, as FIT-Connect's `authenticationInformation` in the signed header.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::sync::Arc;

mod common;

use common::{DRESDEN, MELDEBESCHEINIGUNG, mappings_root, preparer};
use kopplung_core::identity::{Authentication, Means, TrustLevel, Voucher};
use kopplung_core::store::{PrepareInput, Step, WorkItem};
use kopplung_transformers::pki::PkiLayout;
use kopplung_transformers::{TrustAnchors, jose, schema, seal};
use openssl::pkey::PKey;
use time::macros::datetime;
use uuid::Uuid;

fn by_provider() -> Authentication {
    Authentication {
        level: TrustLevel::Substanziell,
        means: Means::ElsterZertifikat,
        issuer: "http://127.0.0.1:8082".into(),
        subject: kopplung_core::identity::Pseudonym::parse("c2VydmljZWtvbnRv-41").unwrap(),
        authenticated_at: datetime!(2026-11-30 09:58:00 UTC),
        voucher: Voucher::IdentityProvider,
        assertion_sha256: Some("5e".repeat(32)),
        assertion: Some("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln".into()),
    }
}

fn input(authentication: Option<Authentication>) -> PrepareInput {
    PrepareInput {
        id: Uuid::new_v4(),
        receipt: "K7QX-2M4P".into(),
        service_key: MELDEBESCHEINIGUNG.into(),
        region: DRESDEN.into(),
        payload: serde_json::json!({
            "art": "einfach",
            "person": {"familienname": "Schmidt", "vornamen": "Anna", "geburtsdatum": "12.03.1985"},
            "anschrift": {"strasse": "Prager Straße", "hausnummer": "12", "postleitzahl": "01069", "ort": "Dresden"},
            "zustellung": "abholung",
        }),
        attachments: vec![],
        created_at: datetime!(2026-11-30 10:00:00 UTC),
        authentication,
        follow_up: None,
        reply_channel: None,
    }
}

fn item(procedure: &str, input: &PrepareInput) -> WorkItem {
    WorkItem {
        application_id: input.id,
        service_key: input.service_key.clone(),
        procedure_id: procedure.into(),
        message_id: Uuid::new_v4(),
        message_type: "meldewesen.meldebescheinigung.0101".into(),
        step: Step::Prepare,
        attempts: 0,
        lease: "lease".into(),
        accepted_at: None,
        sealed: None,
    }
}

fn schema_of_meldebescheinigung() -> PathBuf {
    mappings_root().join("meldebescheinigung/nachricht.xsd")
}

#[test]
fn the_xml_carries_the_identification_and_validates() {
    let pki = tempfile::tempdir().unwrap();
    let preparer = preparer(pki.path());
    let input = input(Some(by_provider()));
    let xml = preparer
        .render_message("manual", Uuid::new_v4(), &input)
        .unwrap();
    schema::validate(&schema_of_meldebescheinigung(), &xml).unwrap();
    for expected in [
        "<code>substanziell</code>",
        "<code>elster-zertifikat</code>",
        "<aussteller>http://127.0.0.1:8082</aussteller>",
        "<pseudonym>c2VydmljZWtvbnRv-41</pseudonym>",
        "<zeitpunkt>2026-11-30T09:58:00Z</zeitpunkt>",
        "<bestaetigtDurch>identitaetsanbieter</bestaetigtDurch>",
        "<nachweis>eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln</nachweis>",
    ] {
        assert!(xml.contains(expected), "{expected} in\n{xml}");
    }
    assert!(xml.contains(&format!(
        "<nachweisSHA256>{}</nachweisSHA256>",
        "5e".repeat(32)
    )));
    // Inside the application, after the municipality.
    let antrag = &xml[xml.find("<antrag>").unwrap()..xml.find("</antrag>").unwrap()];
    assert!(antrag.find("</gebiet>").unwrap() < antrag.find("<authentifizierung>").unwrap());
}

#[test]
fn a_clients_own_assertion_says_so_and_an_anonymous_one_has_no_block() {
    let pki = tempfile::tempdir().unwrap();
    let preparer = preparer(pki.path());
    let own = Authentication {
        level: TrustLevel::Basis,
        means: Means::BenutzernamePasswort,
        issuer: "portal".into(),
        voucher: Voucher::Client {
            client: "portal".into(),
        },
        assertion_sha256: None,
        assertion: None,
        authenticated_at: datetime!(2026-11-30 09:58:00.25 +01:00),
        ..by_provider()
    };
    let xml = preparer
        .render_message("manual", Uuid::new_v4(), &input(Some(own)))
        .unwrap();
    schema::validate(&schema_of_meldebescheinigung(), &xml).unwrap();
    assert!(xml.contains("<code>basis</code>"));
    assert!(xml.contains("<code>benutzername-passwort</code>"));
    assert!(xml.contains("<zeitpunkt>2026-11-30T09:58:00.25+01:00</zeitpunkt>"));
    assert!(xml.contains("<bestaetigtDurch>client</bestaetigtDurch>"));
    assert!(xml.contains("<aussteller>portal</aussteller>"));
    assert!(!xml.contains("<nachweisSHA256>") && !xml.contains("<nachweis>"));

    let anonymous = preparer
        .render_message("manual", Uuid::new_v4(), &input(None))
        .unwrap();
    schema::validate(&schema_of_meldebescheinigung(), &anonymous).unwrap();
    assert!(!anonymous.contains("authentifizierung"));
}

#[test]
fn the_cms_message_carries_it_signed_and_encrypted() {
    let pki = tempfile::tempdir().unwrap();
    let preparer = preparer(pki.path());
    let input = input(Some(by_provider()));
    let prepared = preparer.prepare(&item("cms", &input), &input).unwrap();
    let layout = PkiLayout::new(pki.path());
    let xml = seal::unseal(
        &prepared.message,
        &seal::load_certificate(&layout.procedure_cert("cms")).unwrap(),
        &seal::load_private_key(&layout.procedure_key("cms")).unwrap(),
        &seal::load_certificate(&layout.hub_cert()).unwrap(),
        &TrustAnchors::load(&layout.ca_cert()).unwrap(),
    )
    .unwrap();
    let xml = String::from_utf8(xml).unwrap();
    assert!(xml.contains("<code>substanziell</code>"));
    assert!(xml.contains("<aussteller>http://127.0.0.1:8082</aussteller>"));
}

#[test]
fn the_jose_message_carries_it_as_fit_connect_authentication_information() {
    let pki = tempfile::tempdir().unwrap();
    let preparer = preparer(pki.path());
    let layout = PkiLayout::new(pki.path());
    let open = |message: &[u8]| {
        let key = std::fs::read(layout.procedure_key("jose")).unwrap();
        jose::unseal_message(
            std::str::from_utf8(message).unwrap(),
            &seal::load_certificate(&layout.procedure_cert("jose")).unwrap(),
            &PKey::private_key_from_pem(&key).unwrap(),
            &seal::load_certificate(&layout.hub_cert()).unwrap(),
            &TrustAnchors::load(&layout.ca_cert()).unwrap(),
        )
        .unwrap()
    };

    let input = input(Some(by_provider()));
    let work = item("jose", &input);
    let opened = open(&preparer.prepare(&work, &input).unwrap().message);
    let xml = String::from_utf8(opened.payload).unwrap();
    assert!(xml.contains("<code>substanziell</code>"));
    let [report] = opened.identification_reports.as_slice() else {
        panic!(
            "one identification report: {:?}",
            opened.identification_reports
        );
    };
    assert_eq!(
        report["levelOfAssurance"],
        "http://eidas.europa.eu/LoA/substantial"
    );
    assert_eq!(report["serverIdentity"], "http://127.0.0.1:8082");
    assert_eq!(report["identificationTime"], "2026-11-30T09:58:00Z");
    assert_eq!(report["trustFramework"], "elster-zertifikat");
    assert_eq!(report["subjectRef"]["restrictedId"], "c2VydmljZWtvbnRv-41");
    assert_eq!(report["idStatus"], "success");
    assert_eq!(report["reportId"], work.message_id.to_string());
    assert_eq!(
        report["contextInformation"][0],
        format!("nachrichtenUUID:{}", work.message_id)
    );
    assert_eq!(report["documentReferences"][0]["digest"], "5e".repeat(32));

    let anonymous = self::input(None);
    let opened = open(
        &preparer
            .prepare(&item("jose", &anonymous), &anonymous)
            .unwrap()
            .message,
    );
    assert!(opened.identification_reports.is_empty());
}

/// Counts what sealing at intake reports.
#[derive(Default)]
struct Counted(std::sync::Mutex<Vec<bool>>);

impl kopplung_pipeline::Observer for Counted {
    fn delivery(&self, _: &str, _: &str, _: &str) {}
    fn prepare_stage(&self, _: &str, _: f64) {}
    fn delivery_attempt(&self, _: &str, _: f64) {}
    fn submit_to_delivered(&self, _: &str, _: f64) {}
    fn taken_over(&self, _: u64) {}
    fn sealed_at_intake(&self, sealed: bool) {
        self.0.lock().unwrap().push(sealed);
    }
    fn answer_receipt(&self, _: &str, _: &str) {}
}

#[tokio::test]
async fn intake_seals_what_the_outbox_would_and_defers_when_every_slot_is_busy() {
    use kopplung_core::intake::SealAhead;
    use kopplung_core::store::NewApplication;
    let pki = tempfile::tempdir().unwrap();
    let input = input(Some(by_provider()));
    let new = NewApplication {
        id: input.id,
        receipt: input.receipt.clone(),
        client_id: "portal".into(),
        service_key: input.service_key.clone(),
        region: input.region.clone(),
        procedure_id: "cms".into(),
        payload: input.payload.clone(),
        attachments: vec![],
        message_id: Uuid::new_v4(),
        message_type: "meldewesen.meldebescheinigung.0101".into(),
        idempotency: None,
        received_at: input.created_at,
        authentication: input.authentication.clone(),
        sealed: None,
        follow_up: None,
        reply_channel: None,
    };
    let observer = Arc::new(Counted::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(1));
    let ahead = kopplung_pipeline::Ahead {
        preparer: Arc::new(preparer(pki.path())),
        slots: slots.clone(),
        observer: observer.clone(),
    };
    let sealed = ahead.seal(&new).await.unwrap();
    assert!(sealed.detail.contains(&new.message_id.to_string()));
    // The procedure opens it as any message of the outbox, with this message id.
    let layout = PkiLayout::new(pki.path());
    let key = seal::load_private_key(&layout.procedure_key("cms")).unwrap();
    let cert = seal::load_certificate(&layout.procedure_cert("cms")).unwrap();
    let hub = seal::load_certificate(&layout.hub_cert()).unwrap();
    let anchors = TrustAnchors::load(&layout.ca_cert()).unwrap();
    let xml = seal::unseal(&sealed.message, &cert, &key, &hub, &anchors).unwrap();
    let xml = String::from_utf8(xml).unwrap();
    assert!(xml.contains(&new.message_id.to_string()), "{xml}");
    assert!(
        xml.contains("<antragsnummer>K7QX-2M4P</antragsnummer>"),
        "{xml}"
    );

    // Every slot busy: left to the outbox, never waited for.
    let busy = slots.clone().acquire_owned().await.unwrap();
    assert!(ahead.seal(&new).await.is_none());
    drop(busy);
    assert_eq!(*observer.0.lock().unwrap(), [true, false]);
}
