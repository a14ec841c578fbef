//! The procedure sees who applied and how (issue 18): a hub that trusts an identity
//! provider on loopback (forwarding its ID tokens) takes Meldebescheinigungen signed in at
//! `substanziell` for a `cms` procedure (Dresden) and a `jose` procedure (Leipzig), and
//! Mängelanzeigen vouched for by the client and anonymous, over RabbitMQ. The vendor's own
//! tools read level and issuer (`openssl cms`, `xmllint`; jwcrypto for the `jose` profile)
//! and check the forwarded ID token against the provider's keys.

use kopplung_tests::keys::{DRESDEN, LEIPZIG, MELDEBESCHEINIGUNG};
use std::process::Command;
use std::time::Duration;

use kopplung_tests::issuer::{ACR_SUBSTANTIAL, TestIssuer, assertion};
use kopplung_tests::shared::{fixture_request, vouched_applicant};
use kopplung_tests::{
    HubSetup, TestHub, amqp, delete_queue, drain, drain_one, open_with_openssl_cli,
    python_with_jwcrypto, run_ok, stdout_of, workspace, xpath,
};
use serde_json::{Value, json};

const MAENGELANZEIGE: &str = "99999001000000";

fn meldebescheinigung(region: &str, token: &str) -> Value {
    let mut body = fixture_request(
        "meldebescheinigung/fixtures/minimal",
        MELDEBESCHEINIGUNG,
        region,
    );
    body["applicant"] = assertion(token);
    body
}

fn maengelanzeige(applicant: Option<Value>) -> Value {
    let mut body = json!({"service": MAENGELANZEIGE, "region": DRESDEN,
        "data": {"kategorie": "muell", "beschreibung": "Sperrmüll am Gehweg", "ort": {"strasse": "Prager Straße"}}});
    if let Some(applicant) = applicant {
        body["applicant"] = applicant;
    }
    body
}

/// Runs the vendor's check of docs/vendors.md ("Who applied") on a decrypted message,
/// off the runtime: the identity provider on loopback must answer meanwhile.
async fn vendor_check(xml: &str) -> Value {
    let xml = xml.to_owned();
    tokio::task::spawn_blocking(move || vendor_check_blocking(&xml))
        .await
        .unwrap()
}

fn vendor_check_blocking(xml: &str) -> Value {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("nachricht.xml");
    std::fs::write(&file, xml).unwrap();
    let output = stdout_of(&run_ok(
        Command::new(python_with_jwcrypto())
            .arg(workspace().join("tests/vendor/nachweis_check.py"))
            .arg(&file),
        "nachweis_check.py (it refused the identification)",
    ));
    serde_json::from_str(&output).unwrap()
}

/// Opens a `jose` message with jwcrypto as docs/vendors.md shows; the XML and the
/// Identification Reports of its `authenticationInformation`.
fn open_jose_with_reports(jwe: &[u8], hub: &TestHub, procedure: &str) -> (String, Value) {
    let work = tempfile::tempdir().unwrap();
    let (file, reports) = (
        work.path().join("nachricht.jwe"),
        work.path().join("reports.json"),
    );
    std::fs::write(&file, jwe).unwrap();
    let pki = hub.pki_dir();
    let xml = stdout_of(&run_ok(
        Command::new(python_with_jwcrypto())
            .arg(workspace().join("transformers/tests/jose_verify.py"))
            .arg("--reports")
            .arg(&reports)
            .arg(&file)
            .arg(pki.join(format!("procedures/{procedure}.crt")))
            .arg(pki.join(format!("procedures/{procedure}.key")))
            .arg(pki.join("ca.crt")),
        "jose_verify.py (jwcrypto refused the message)",
    ));
    let reports = serde_json::from_slice(&std::fs::read(&reports).unwrap()).unwrap();
    (xml, reports)
}

#[tokio::test]
async fn an_identified_applicants_level_and_issuer_reach_the_procedure() {
    let broker = amqp().await;
    let issuer = TestIssuer::start().await;
    let hub = TestHub::start(HubSetup {
        extra_config: format!(
            "{}forward_assertion = true\n",
            issuer.hub_config("test-idp", "portal", 3600)
        ),
        ..HubSetup::default()
    })
    .await;
    let claims = issuer.claims(ACR_SUBSTANTIAL, "swk", "portal");
    let token = issuer.token(&claims);
    let subject = claims["sub"].as_str().unwrap();
    let dresden = hub
        .submit_accepted(&meldebescheinigung(DRESDEN, &token), None)
        .await;
    let leipzig = hub
        .submit_accepted(&meldebescheinigung(LEIPZIG, &token), None)
        .await;

    // Dresden, `cms`: decrypted and verified with stock openssl, read with xmllint.
    let xml = hub
        .delivered_xml(&broker, &dresden, "dresden-buergerbuero")
        .await;
    let at = "//antrag/authentifizierung";
    let text = |path: &str| xpath(&xml, &format!("string({at}/{path})"));
    assert_eq!(text("vertrauensniveau/code"), "substanziell");
    assert_eq!(text("aussteller"), issuer.url);
    assert_eq!(text("identifizierungsmittel/code"), "elster-zertifikat");
    assert_eq!(text("bestaetigtDurch"), "identitaetsanbieter");
    assert_eq!(text("pseudonym"), subject);
    assert_eq!(text("nachweis"), token);
    assert_eq!(
        text("nachweisSHA256"),
        hex::encode(openssl::sha::sha256(token.as_bytes()))
    );
    // The vendor's check: hash, the issuer's signature (its JWKS), iss, sub, auth_time.
    let checked = vendor_check(&xml).await;
    assert_eq!(checked["claims"]["iss"], issuer.url.as_str());
    assert_eq!(checked["claims"]["sub"], subject);
    assert_eq!(checked["claims"]["acr"], ACR_SUBSTANTIAL);
    assert_eq!(
        checked["authentifizierung"]["vertrauensniveau"],
        "substanziell"
    );
    // An assertion altered in the message does not pass it.
    let forged = xml.replace(&token, &format!("{token}x"));
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("m.xml"), &forged).unwrap();
    let refused = Command::new(python_with_jwcrypto())
        .arg(workspace().join("tests/vendor/nachweis_check.py"))
        .arg(work.path().join("m.xml"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nachweisSHA256"));
    delete_queue(&broker, &hub.queue("dresden-buergerbuero")).await;

    // Leipzig, `jose`: the same block, and FIT-Connect's authenticationInformation.
    let status = hub
        .wait_delivered_to(&leipzig, "leipzig-buergerbuero", Duration::from_secs(60))
        .await;
    let queue = hub.queue("leipzig-buergerbuero");
    let message = drain_one(&broker, &queue).await;
    let (xml, reports) = open_jose_with_reports(&message.body, &hub, "leipzig-buergerbuero");
    assert_eq!(
        xpath(&xml, &format!("string({at}/vertrauensniveau/code)")),
        "substanziell"
    );
    assert_eq!(xpath(&xml, &format!("string({at}/aussteller)")), issuer.url);
    let report = &reports[0];
    assert_eq!(report["levelOfAssurance"], ACR_SUBSTANTIAL);
    assert_eq!(report["serverIdentity"], issuer.url.as_str());
    assert_eq!(report["idStatus"], "success");
    assert_eq!(
        report["contextInformation"][0],
        format!(
            "nachrichtenUUID:{}",
            status["delivery"]["message_id"].as_str().unwrap()
        )
    );
    assert_eq!(
        report["documentReferences"][0]["digest"],
        hex::encode(openssl::sha::sha256(token.as_bytes()))
    );
    delete_queue(&broker, &queue).await;

    // Mängelanzeigen: vouched for by the client (no proof), and anonymous (no block).
    let vouched = hub
        .submit_accepted(&maengelanzeige(Some(vouched_applicant("basis"))), None)
        .await;
    hub.wait_delivered_to(&vouched, "dresden-maengel", Duration::from_secs(60))
        .await;
    let anonymous = hub.submit_accepted(&maengelanzeige(None), None).await;
    hub.wait_delivered_to(&anonymous, "dresden-maengel", Duration::from_secs(60))
        .await;
    let queue = hub.queue("dresden-maengel");
    let messages = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(messages.len(), 2, "two Mängelanzeigen");
    let mut seen = Vec::new();
    for message in messages {
        let xml = open_with_openssl_cli(&message.body, &hub.pki_dir(), "dresden-maengel");
        let id = xpath(&xml, "string(//antrag/antragsID)");
        let checked = vendor_check(&xml).await;
        if id == vouched {
            let block = &checked["authentifizierung"];
            assert_eq!(block["bestaetigtDurch"], "client", "{xml}");
            assert_eq!(block["aussteller"], "test");
            assert_eq!(block["vertrauensniveau"], "basis");
            assert_eq!(xpath(&xml, &format!("count({at}/nachweisSHA256)")), "0");
            assert_eq!(checked["claims"], Value::Null);
        } else {
            assert_eq!(id, anonymous);
            assert_eq!(xpath(&xml, "count(//authentifizierung)"), "0");
            assert_eq!(checked["authentifizierung"], Value::Null);
        }
        seen.push(id);
    }
    seen.sort();
    let mut expected = vec![vouched, anonymous];
    expected.sort();
    assert_eq!(seen, expected);
    delete_queue(&broker, &queue).await;
}

#[test]
fn the_python_snippet_in_the_vendor_docs_is_the_tested_script() {
    let script =
        std::fs::read_to_string(workspace().join("tests/vendor/nachweis_check.py")).unwrap();
    let start = script.find("# >>> docs/vendors.md\n").unwrap() + "# >>> docs/vendors.md\n".len();
    let end = script.find("# <<< docs/vendors.md\n").unwrap();
    let docs = std::fs::read_to_string(workspace().join("docs/vendors.md")).unwrap();
    let section = &docs[docs.find("## Who applied").unwrap()..];
    let block = &section[section.find("```python\n").unwrap() + "```python\n".len()..];
    let block = &block[..block.find("```\n").unwrap()];
    assert_eq!(
        block,
        &script[start..end],
        "docs/vendors.md must show the code of tests/vendor/nachweis_check.py"
    );
}
