//! The intake API requires proof (issue 18): a hub that trusts an identity provider
//! played by the test on loopback (discovery, JWKS, RSA key; tokens signed by OpenSSL)
//! takes a Meldebescheinigung (trust level substanziell) only with a valid assertion of
//! that level. Every other case is refused with its status and problem type, and nothing
//! is stored; an anonymous Mängelanzeige is still accepted, and a client vouches on its
//! own only as configured.

use kopplung_tests::browser::Browser;
use kopplung_tests::issuer::{ACR_SUBSTANTIAL, LEGACY_TOKEN, RefusedCase, TestIssuer, assertion};
use kopplung_tests::keys::MELDEBESCHEINIGUNG;
use kopplung_tests::shared::{assert_contains_all, fixture_request, sqlite3, vouched_applicant};
use kopplung_tests::{ADMIN_TOKEN, HubSetup, TestHub};
use serde_json::{Value, json};

/// Leipzig's citizens' office takes it online.
const LEIPZIG: &str = "147130000000";
const PARKAUSWEIS: &str = "99108001000000";
/// Chemnitz: its citizens' office reads the Bewohnerparkausweis in the clerk inbox.
const CHEMNITZ: &str = "145110000000";
const PARKAUSWEIS_PROCEDURE: &str = "chemnitz-buergerbuero-manuell";
/// The password of the test hubs' clerk `demo-sachbearbeitung` (tests/src/hub.rs).
const CLERK_PASSWORD: &str = "kopplung-test-clerk-password";

/// A Meldebescheinigung with `applicant` (none: the key is left out).
fn meldebescheinigung(applicant: Option<Value>) -> Value {
    let mut body = fixture_request(
        "meldebescheinigung/fixtures/minimal",
        MELDEBESCHEINIGUNG,
        LEIPZIG,
    );
    match applicant {
        Some(applicant) => body["applicant"] = applicant,
        None => {
            body.as_object_mut().unwrap().remove("applicant");
        }
    }
    body
}

async fn post(hub: &TestHub, token: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(hub.url("/api/v1/applications"))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status != 202 {
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{status}"
        );
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The JSON the hub answers to a GET of `path` with `token`.
async fn get(hub: &TestHub, token: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(hub.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// The applications the admin API finds for the Meldebescheinigung.
async fn meldebescheinigungen(hub: &TestHub) -> usize {
    let path = format!("/api/v1/admin/applications?service={MELDEBESCHEINIGUNG}");
    let found = get(hub, ADMIN_TOKEN, &path).await;
    found["applications"].as_array().expect("a list").len()
}

/// The `authentication` column of application `accepted` (the 202's body), as stored.
fn stored_authentication(hub: &TestHub, accepted: &Value) -> String {
    sqlite3(
        &hub.data_dir().join("kopplung.db"),
        &format!(
            "SELECT coalesce(authentication, 'NULL') FROM applications WHERE id = '{}'",
            accepted["id"].as_str().unwrap()
        ),
        true,
    )
}

#[tokio::test]
async fn the_intake_api_requires_proof_and_stores_nothing_without_it() {
    let issuer = TestIssuer::start().await;
    let hub = TestHub::start(HubSetup {
        extra_config: issuer.hub_config_for_refusals(),
        ..HubSetup::default()
    })
    .await;
    let claims = issuer.claims(ACR_SUBSTANTIAL, "swk", "portal");
    let test = hub.token.clone();
    let stored_before = hub.store_counts();
    let cases = issuer.refused_cases();
    for RefusedCase {
        what,
        sender,
        applicant,
        status,
        kind,
    } in &cases
    {
        // Each with an idempotency key: a refusal keeps none of it either.
        let key = format!("key-{kind}-{status}");
        let body = meldebescheinigung(applicant.clone());
        let (got, problem) = post(&hub, &sender.token(&hub), &body, Some(&key)).await;
        assert_eq!(got, *status, "{what}: {problem:#}");
        assert_eq!(
            problem["type"],
            format!("urn:kopplung:problem:{kind}"),
            "{what}: {problem:#}"
        );
        assert_eq!(problem["status"], *status, "{what}");
    }
    assert_eq!(hub.store_counts(), stored_before, "nothing stored");
    assert_eq!(meldebescheinigungen(&hub).await, 0);
    let log = hub.log();
    assert!(log.contains("applicant's identification refused"), "{log}");
    for case in &cases {
        if let Some(token) = case
            .applicant
            .as_ref()
            .and_then(|a| a["authentication"]["assertion"].as_str())
        {
            assert!(!log.contains(token), "no token in the log");
        }
    }

    // A valid assertion of level substanziell is accepted, under a key a refusal used
    // before; the same request again is answered as before.
    let token = issuer.token(&claims);
    let valid = meldebescheinigung(Some(assertion(&token)));
    let reused_key = "key-authentication-required-403";
    let (status, accepted) = post(&hub, &test, &valid, Some(reused_key)).await;
    assert_eq!(status, 202, "{accepted:#}\n{}", hub.log());
    let (again, replayed) = post(&hub, &test, &valid, Some(reused_key)).await;
    assert_eq!((again, &replayed["id"]), (202, &accepted["id"]));
    assert_eq!(meldebescheinigungen(&hub).await, 1);

    // Stored as verified: level, means, issuer, who vouched, the token's hash (the token
    // itself only where `forward_assertion` says so).
    let stored: Value = serde_json::from_str(&stored_authentication(&hub, &accepted)).unwrap();
    assert_eq!(stored["level"], "substanziell");
    assert_eq!(stored["means"], "elster-zertifikat");
    assert_eq!(stored["issuer"], issuer.url.as_str());
    assert_eq!(stored["subject"], "pairwise-subject-4711");
    assert_eq!(stored["voucher"], json!({"kind": "identity-provider"}));
    assert_eq!(
        stored["assertion_sha256"],
        hex::encode(openssl::sha::sha256(token.as_bytes()))
    );
    assert_eq!(stored["assertion"], Value::Null);

    // Two Bewohnerparkausweise (basis) for Chemnitz, whose citizens' office reads them
    // in the clerk inbox: one proven by the identity provider, one vouched for by a
    // client within its cap. The clerk sees level, means, issuer and who vouched.
    let parkausweis = |applicant: Value| {
        let mut body = fixture_request(
            "bewohnerparkausweis/fixtures/minimal",
            PARKAUSWEIS,
            CHEMNITZ,
        );
        body["applicant"] = applicant;
        body
    };
    let (status, proven) = post(&hub, &test, &parkausweis(assertion(&token)), None).await;
    assert_eq!(status, 202, "{proven:#}");
    let (status, vouched) = post(
        &hub,
        LEGACY_TOKEN,
        &parkausweis(vouched_applicant("basis")),
        None,
    )
    .await;
    assert_eq!(status, 202, "{vouched:#}");
    let stored = stored_authentication(&hub, &vouched);
    kopplung_tests::assert_has(&stored, r#""voucher":{"kind":"client","client":"legacy"}"#);
    let mut clerk = Browser::new(&hub);
    let signed_in = clerk
        .inbox_login("demo-sachbearbeitung", CLERK_PASSWORD)
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    let page = document_in_inbox(&hub, &mut clerk, &proven, &test).await;
    assert_contains_all(
        &page,
        &[
            "<h2 id=\"identifizierung\">Identifizierung</h2>",
            "<dt>Vertrauensniveau</dt><dd>substanziell</dd>",
            "<dt>Identifizierungsmittel</dt><dd>ELSTER-Zertifikat</dd>",
            &format!("<dt>Aussteller</dt><dd>{}</dd>", issuer.url),
            "Identitätsanbieter (signierter Nachweis vom Hub geprüft)",
        ],
    );
    assert!(
        !page.contains("pairwise-subject-4711"),
        "no pseudonym shown"
    );
    let page = document_in_inbox(&hub, &mut clerk, &vouched, LEGACY_TOKEN).await;
    assert_contains_all(
        &page,
        &[
            "<dt>Vertrauensniveau</dt><dd>basis</dd>",
            "<dt>Identifizierungsmittel</dt><dd>Benutzername und Passwort</dd>",
            "Einreichendes System „legacy“ (ohne Nachweis eines Identitätsanbieters)",
            "ein signierter Nachweis eines Identitätsanbieters liegt nicht vor",
        ],
    );

    // The Mängelanzeige is still taken anonymously, and stored as anonymous.
    let (status, anonymous) = post(
        &hub,
        &test,
        &fixture_request(
            "maengelanzeige/fixtures/minimal",
            "99999001000000",
            "146120000000",
        ),
        None,
    )
    .await;
    assert_eq!(status, 202, "{anonymous:#}");
    assert_eq!(stored_authentication(&hub, &anonymous), "NULL");
    kopplung_tests::shared::assert_audit_intact(&hub);
}

/// The clerk inbox's page of the application `accepted` (the 202's body to the client
/// with `token`), once the outbox has prepared it.
async fn document_in_inbox(
    hub: &TestHub,
    clerk: &mut Browser,
    accepted: &Value,
    token: &str,
) -> String {
    let id = accepted["id"].as_str().unwrap();
    let status = get(hub, token, &format!("/api/v1/applications/{id}")).await;
    let path = format!(
        "/inbox/{PARKAUSWEIS_PROCEDURE}/{}",
        status["delivery"]["message_id"].as_str().unwrap()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = clerk.get(&path).await;
        if page.status == 200 {
            return page.text();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path}: {}\n{}",
            page.status,
            hub.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
