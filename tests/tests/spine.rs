//! The spine end to end: HTTP submission → durable store → routing → Handlebars → CMS
//! → RabbitMQ → `openssl cms` on the vendor's side. Against the real broker.

use kopplung_tests::keys::{DRESDEN, MAENGEL};
use std::time::Duration;

use base64::Engine;
use kopplung_tests::shared::history;
use kopplung_tests::{
    HubSetup, TestHub, UNREACHABLE_AMQP_URL, amqp, delete_queue, drain, open_with_openssl_cli,
    workspace, xpath,
};
use serde_json::{Value, json};

/// Borna, a town in the district (Landkreis) Leipzig.
const BORNA: &str = "147290050050";
const HOSTILE: &str =
    "</beschreibung><x>&amp; ]]> {{x}} \"quoted\" 'single' <![CDATA[ Grüße aus Löbtau";

/// The smallest valid PNG signature plus some bytes.
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(b"\0\0\0\rIHDR demo image bytes \xff\x00\x10");
    bytes
}

fn report(region: &str, beschreibung: &str) -> Value {
    json!({
        "service": MAENGEL,
        "region": region,
        "data": {
            "kategorie": "strassenschaden",
            "beschreibung": beschreibung,
            "ort": {"strasse": "Kesselsdorfer Straße", "hausnummer": "7a", "lat": 51.0369, "lon": 13.6941},
            "kontakt": {"name": "Jörg Müller-Lüdenscheidt", "email": "joerg@example.org"}
        }
    })
}

#[tokio::test]
async fn a_submitted_application_reaches_the_queue_and_opens_with_openssl() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;

    let mut body = report(DRESDEN, HOSTILE);
    let photo = png();
    body["attachments"] = json!([{
        "filename": "schlagloch.png",
        "media_type": "image/png",
        "content_base64": base64::engine::general_purpose::STANDARD.encode(&photo),
    }]);
    let response = hub.submit(&body, None).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = response.json().await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["status"], "accepted");
    assert!(location.ends_with(&format!("/api/v1/applications/{id}")));
    assert_eq!(accepted["receipt"].as_str().unwrap().len(), 9);

    let status = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    let queue = hub.queue("dresden-maengel");
    assert_eq!(status["delivery"]["procedure"], "dresden-maengel");
    assert_eq!(status["delivery"]["transport"], "amqp");
    assert_eq!(status["delivery"]["destination"], queue.as_str());
    assert_eq!(
        history(&status, "status"),
        ["accepted", "prepared", "delivered"]
    );
    let message_id = status["delivery"]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 1);
    let message = &received[0];
    let props = &message.properties;
    assert_eq!(message.message_id(), message_id);
    assert_eq!(props.correlation_id().as_ref().unwrap().as_str(), id);
    assert_eq!(
        props.kind().as_ref().unwrap().as_str(),
        "maengelanzeige.meldung.0101"
    );
    assert_eq!(*props.delivery_mode(), Some(2), "persistent");
    let headers = props.headers().as_ref().unwrap().inner();
    assert_eq!(
        format!("{:?}", headers.get("service").unwrap()),
        format!("{:?}", lapin::types::AMQPValue::LongString(MAENGEL.into()))
    );
    assert_eq!(
        format!("{:?}", headers.get("application_id").unwrap()),
        format!(
            "{:?}",
            lapin::types::AMQPValue::LongString(id.as_str().into())
        )
    );

    // The vendor's side: stock openssl, then an independent XML parser.
    let xml = open_with_openssl_cli(&message.body, &hub.pki_dir(), "dresden-maengel");
    assert_eq!(xpath(&xml, "string(//beschreibung)"), HOSTILE);
    assert_eq!(xpath(&xml, "string(//ort/strasse)"), "Kesselsdorfer Straße");
    assert_eq!(xpath(&xml, "string(//ort/hausnummer)"), "7a");
    assert_eq!(xpath(&xml, "string(//geokoordinate/breite)"), "51.0369");
    assert_eq!(
        xpath(&xml, "string(//kontakt/name)"),
        "Jörg Müller-Lüdenscheidt"
    );
    assert_eq!(xpath(&xml, "string(//kontakt/email)"), "joerg@example.org");
    assert_eq!(
        xpath(&xml, "string(//mangel/kategorie/code)"),
        "strassenschaden"
    );
    assert_eq!(xpath(&xml, "string(//nachrichtenUUID)"), message_id);
    assert_eq!(xpath(&xml, "string(//antrag/antragsID)"), id);
    assert_eq!(
        xpath(&xml, "string(//antrag/antragsnummer)"),
        accepted["receipt"].as_str().unwrap()
    );
    assert_eq!(
        xpath(&xml, "string(//leser/name)"),
        "Landeshauptstadt Dresden"
    );
    assert_eq!(xpath(&xml, "string(//autor/name)"), "kopplung Test");
    assert_eq!(xpath(&xml, "string(//gebiet/code)"), DRESDEN);
    assert_eq!(
        xpath(&xml, "string(//gebiet/@listURI)"),
        "urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:rs"
    );
    assert_eq!(
        xpath(&xml, "string(//nachrichtentyp/code)"),
        "maengelanzeige.meldung.0101"
    );
    assert_eq!(xpath(&xml, "count(//x)"), "0");
    let attachment = base64::engine::general_purpose::STANDARD
        .decode(xpath(&xml, "string(//anlage/inhalt)"))
        .unwrap();
    assert_eq!(attachment, photo);
    assert_eq!(
        xpath(&xml, "string(//anlage/hashwert)"),
        hex::encode(openssl::sha::sha512(&photo))
    );
    delete_queue(&broker, &queue).await;
}

#[tokio::test]
async fn a_district_municipality_goes_to_its_district() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let id = hub
        .submit_accepted(&report(BORNA, "Laterne am Markt defekt"), None)
        .await;
    let status = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    assert_eq!(status["delivery"]["procedure"], "landkreis-leipzig-maengel");
    assert_eq!(status["region_name"], "Borna, Stadt");
    let queue = hub.queue("landkreis-leipzig-maengel");
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 1);
    let xml = open_with_openssl_cli(
        &received[0].body,
        &hub.pki_dir(),
        "landkreis-leipzig-maengel",
    );
    assert_eq!(
        xpath(&xml, "string(//leser/name)"),
        "Landratsamt Landkreis Leipzig"
    );
    // Another procedure's key cannot open it.
    let other = std::panic::catch_unwind(|| {
        open_with_openssl_cli(&received[0].body, &hub.pki_dir(), "dresden-maengel")
    });
    assert!(other.is_err());
    delete_queue(&broker, &queue).await;
}

fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn expect_problem(response: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], format!("urn:kopplung:problem:{kind}"));
    assert_eq!(problem["status"], status);
    assert!(problem["title"].is_string());
    problem
}

#[tokio::test]
async fn bad_submissions_get_problems_and_nothing_is_stored() {
    // No route for Nordsachsen in this hub (so the Mängelanzeige no longer promises all
    // of Saxony: `kopplung check` would refuse the gap), and a small body limit.
    let mappings = tempfile::tempdir().unwrap();
    kopplung_tests::copy_dir(&workspace().join("mappings"), mappings.path());
    let service = mappings.path().join("maengelanzeige/service.toml");
    let text = std::fs::read_to_string(&service).unwrap();
    std::fs::write(&service, text.replace("available_in = [\"14\"]", "")).unwrap();
    let hub = TestHub::start(HubSetup {
        max_body_bytes: 64 * 1024,
        edit_routing: |routing| routing.replace("region = \"14730\"", "region = \"99730\""),
        mappings: Some(mappings.path().to_owned()),
        ..HubSetup::default()
    })
    .await;
    let before = hub.store_counts();

    // All field errors at once.
    let problem = expect_problem(
        hub.submit(
            &json!({
                "service": MAENGEL,
                "region": DRESDEN,
                "data": {
                    "kategorie": "ufo",
                    "beschreibung": "kurz",
                    "ort": {"hausnummer": "12345678901", "lat": 123},
                    "kontakt": {"email": "kein-at-zeichen"},
                    "farbe": "blau"
                }
            }),
            None,
        )
        .await,
        422,
        "validation",
    )
    .await;
    let mut fields = problem_fields(&problem);
    fields.sort();
    assert_eq!(
        fields,
        [
            "data.beschreibung",
            "data.farbe",
            "data.kategorie",
            "data.kontakt.email",
            "data.ort.hausnummer",
            "data.ort.lat",
            "data.ort.strasse"
        ]
    );
    assert!(problem["errors"][0]["message"].is_string());

    // Too long, a control character, wrong type.
    let mut long = report(DRESDEN, &"x".repeat(2001));
    long["data"]["ort"]["strasse"] = json!("Haupt\u{7}straße");
    long["data"]["kontakt"] = json!("nicht ein Objekt");
    let problem = expect_problem(hub.submit(&long, None).await, 422, "validation").await;
    let fields = problem_fields(&problem);
    assert!(fields.contains(&"data.beschreibung".to_owned()));
    assert!(fields.contains(&"data.ort.strasse".to_owned()));
    assert!(fields.contains(&"data.kontakt".to_owned()));
    assert!(problem.to_string().contains("U+0007"));

    // Unknown service, malformed region, unknown municipality, no route.
    let mut unknown = report(DRESDEN, "Schlagloch vor der Schule");
    unknown["service"] = json!("99008001000000"); // Personalausweis: not offered here
    let problem = expect_problem(hub.submit(&unknown, None).await, 422, "validation").await;
    assert_eq!(problem_fields(&problem), ["service"]);
    assert_eq!(problem["errors"][0]["message"], "unbekannte Leistung");
    // A malformed key is told apart from an unknown one (the API document states its form).
    for malformed in ["", "9999900100000", "99999001000000 "] {
        unknown["service"] = json!(malformed);
        let problem = expect_problem(hub.submit(&unknown, None).await, 422, "validation").await;
        assert_eq!(problem_fields(&problem), ["service"], "{malformed:?}");
        assert_eq!(
            problem["errors"][0]["message"],
            "muss ein 14-stelliger Leistungsschlüssel (LeiKa) sein",
            "{malformed:?}"
        );
    }
    for region in ["1461", "146129999999"] {
        let problem = expect_problem(
            hub.submit(&report(region, "Schlagloch vor der Schule"), None)
                .await,
            422,
            "validation",
        )
        .await;
        assert_eq!(problem_fields(&problem), ["region"], "{region}");
    }
    // Torgau, district Nordsachsen: this hub has no route there.
    expect_problem(
        hub.submit(&report("147305311310", "Schlagloch vor der Schule"), None)
            .await,
        422,
        "no-route",
    )
    .await;

    // Attachments: too many, wrong type, content not matching, too large.
    let png = base64::engine::general_purpose::STANDARD.encode(png());
    let attachment = |name: &str, media: &str, content: &str| json!({"filename": name, "media_type": media, "content_base64": content});
    let mut many = report(DRESDEN, "Schlagloch vor der Schule");
    many["attachments"] = json!([
        attachment("a.png", "image/png", &png),
        attachment("b.png", "image/png", &png),
        attachment("c.png", "image/png", &png),
        attachment("d.exe", "application/x-msdownload", "TVqQ"),
        attachment("e.png", "image/png", "bm90IGEgcG5n"),
        attachment("../f.png", "image/png", "%%%"),
    ]);
    let problem = expect_problem(hub.submit(&many, None).await, 422, "validation").await;
    let fields = problem_fields(&problem);
    for expected in [
        "attachments",
        "attachments[3].media_type",
        "attachments[4].content_base64",
        "attachments[5].filename",
        "attachments[5].content_base64",
    ] {
        assert!(
            fields.contains(&expected.to_owned()),
            "{expected} in {fields:?}"
        );
    }

    // Over the body limit: 413 before the body is parsed.
    let mut huge = report(DRESDEN, "Schlagloch vor der Schule");
    huge["attachments"] = json!([attachment(
        "gross.png",
        "image/png",
        &"A".repeat(100 * 1024)
    )]);
    expect_problem(hub.submit(&huge, None).await, 413, "body-too-large").await;

    // Not JSON, not an application, no token.
    let post = |token: &'static str, content_type: &'static str, body: String| {
        let request = reqwest::Client::new()
            .post(hub.url("/api/v1/applications"))
            .bearer_auth(if token.is_empty() {
                hub.token.as_str()
            } else {
                token
            })
            .header("content-type", content_type)
            .body(body);
        async move { request.send().await.unwrap() }
    };
    let valid = report(DRESDEN, "Schlagloch vor der Schule").to_string();
    expect_problem(
        post("", "application/json", "{\"service\": ".into()).await,
        400,
        "malformed",
    )
    .await;
    expect_problem(
        post("", "text/plain", "hallo".into()).await,
        415,
        "unsupported-media-type",
    )
    .await;
    expect_problem(
        post("wrong-token", "application/json", valid).await,
        401,
        "unauthorized",
    )
    .await;

    assert_eq!(hub.store_counts(), before, "the store is unchanged");
    assert!(before.iter().all(|(_, n)| *n == 0));
    // No personal data in the log.
    let log = hub.log();
    for secret in ["Jörg", "Kesselsdorfer", "joerg@example.org", "Schlagloch"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[tokio::test]
async fn idempotency_key_gives_the_same_answer_and_refuses_a_different_body() {
    let hub = TestHub::start(HubSetup {
        amqp_url: UNREACHABLE_AMQP_URL.into(),
        ..HubSetup::default()
    })
    .await;
    let body = report(DRESDEN, "Ampel zeigt dauerhaft Rot");
    let first = hub.submit(&body, Some("key-1")).await;
    assert_eq!(first.status(), 202);
    let first_location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    // History grows as the outbox works; the application itself must not repeat.
    let records = |hub: &TestHub| {
        hub.store_counts()
            .into_iter()
            .filter(|(table, _)| table != "history")
            .collect::<Vec<_>>()
    };
    let after_first = records(&hub);

    let again = hub.submit(&body, Some("key-1")).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(records(&hub), after_first, "no second application");

    let other = report(DRESDEN, "Ampel zeigt dauerhaft Grün");
    expect_problem(
        hub.submit(&other, Some("key-1")).await,
        409,
        "idempotency-key-reused",
    )
    .await;
    assert_eq!(records(&hub), after_first);

    // Without a key, the same body is a new application.
    assert_eq!(hub.submit(&body, None).await.status(), 202);
    let applications = |counts: Vec<(String, i64)>| {
        counts
            .into_iter()
            .find(|(t, _)| t == "applications")
            .unwrap()
            .1
    };
    assert_eq!(applications(hub.store_counts()), 2);
}

#[tokio::test]
async fn an_application_survives_sigkill_between_202_and_delivery() {
    let broker = amqp().await;
    // The broker is unreachable at first: the applications wait in the outbox.
    let mut hub = TestHub::start(HubSetup {
        amqp_url: UNREACHABLE_AMQP_URL.into(),
        ..HubSetup::default()
    })
    .await;
    let ids = hub
        .submit_all((0..3).map(|n| {
            (
                report(DRESDEN, &format!("Mangel Nummer {n} am Albertplatz")),
                Some(format!("crash-{n}")),
            )
        }))
        .await;
    // The status says why they wait.
    let status = hub.wait_for_failed_attempt(&ids[0]).await;
    // Waiting for an unreachable broker is not an attempt at the message.
    assert_eq!(status["status"], "prepared");
    assert_eq!(status["delivery"]["attempts"], 0);
    let state = status["delivery"]["state"].as_str().unwrap();
    assert!(state.contains("broker unreachable"), "{state}");
    let message_ids: Vec<String> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(
                hub.status(id).await["delivery"]["message_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        v
    };

    hub.kill();
    hub.write_config(&HubSetup::default());
    hub.spawn().await;

    for id in &ids {
        hub.wait_for_status(id, "delivered", Duration::from_secs(30))
            .await;
    }
    let queue = hub.queue("dresden-maengel");
    let received = drain(&broker, &queue, Duration::from_secs(2)).await;
    let mut got: Vec<String> = received.iter().map(|m| m.message_id()).collect();
    got.sort();
    let mut expected = message_ids.clone();
    expected.sort();
    assert_eq!(
        got, expected,
        "exactly one message per application, with its message_id"
    );

    // A client that lost its answer in the crash retries with its key: same application.
    let retried = hub
        .submit(
            &report(DRESDEN, "Mangel Nummer 0 am Albertplatz"),
            Some("crash-0"),
        )
        .await;
    assert_eq!(retried.status(), 202);
    assert_eq!(
        retried.json::<Value>().await.unwrap()["id"],
        ids[0].as_str()
    );
    delete_queue(&broker, &queue).await;
}

#[tokio::test]
async fn the_service_catalogue_lists_the_form() {
    let hub = TestHub::start(HubSetup::default()).await;
    let services = hub.public_json("/api/v1/services").await;
    let maengel = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == MAENGEL)
        .expect("Mängelanzeige listed");
    assert_eq!(maengel["name"], "Mängelanzeige");
    assert_eq!(maengel["local_key"], true);
    assert_eq!(maengel["online"], true);
    let names: Vec<&str> = maengel["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kategorie", "beschreibung", "ort", "kontakt"]);
    assert_eq!(maengel["fields"][0]["values"].as_array().unwrap().len(), 7);
    assert_eq!(maengel["attachments"]["max_count"], 3);
}

#[tokio::test]
async fn applications_wait_for_the_broker_and_go_out_when_it_is_reachable() {
    let broker = amqp().await;
    let mut gate = kopplung_tests::BrokerGate::closed();
    let hub = TestHub::start(HubSetup {
        amqp_url: gate.url(),
        ..HubSetup::default()
    })
    .await;
    let id = hub
        .submit_accepted(&report(DRESDEN, "Gehweg nach Rohrbruch abgesackt"), None)
        .await;
    let waiting = hub.wait_for_failed_attempt(&id).await;
    assert_eq!(waiting["status"], "prepared");
    // Readiness says the broker is down and shows the backlog; intake goes on.
    let ready = reqwest::get(hub.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["brokers"][0]["connected"], false);
    assert_eq!(ready["backlog"][0]["procedure"], "dresden-maengel");
    assert_eq!(ready["backlog"][0]["pending"], 1);
    assert!(waiting["delivery"]["next_attempt_at"].is_string());
    assert!(
        waiting["delivery"]["state"]
            .as_str()
            .unwrap()
            .contains("broker unreachable")
    );

    gate.open().await;
    let delivered = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    assert!(delivered["delivery"]["last_error"].is_null());
    let ready = reqwest::get(hub.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["backlog"], json!([]));
    let queue = hub.queue("dresden-maengel");
    let received = drain(&broker, &queue, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].message_id(),
        delivered["delivery"]["message_id"].as_str().unwrap()
    );
    delete_queue(&broker, &queue).await;
}
