//! The FIT-Connect edge's OpenAPI document (`router/fitconnect-openapi.json`, served at
//! `/fitconnect/v1/openapi.json`) is kept true here: it is a valid OpenAPI 3.1 document
//! (openapi-spec-validator, Python), it lists exactly the routes of
//! `router/src/fitconnect/mod.rs`, and every answer of a real hub to every operation —
//! success and each documented refusal — matches it (`kopplung_tests::contract`).

use kopplung_tests::keys::{DRESDEN, LEIPZIG, MAENGEL, MELDEBESCHEINIGUNG};
use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kopplung_tests::contract::{Answer, Contract};
use kopplung_tests::fitconnect::{
    FOREIGN_ID, FOREIGN_SECRET, SENDER_ID, SENDER_SECRET, destination_of, subscriber_id,
    subscriber_secret,
};
use kopplung_tests::{HubSetup, TestHub, python_with_jwcrypto, workspace};
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use uuid::Uuid;

const DOCUMENT_URI: &str = "urn:kopplung:fitconnect-openapi";
const NOT_PROVOKED: &[(&str, u16, &str)] = &[
    (
        "PUT /fitconnect/v1/submissions/{submissionId}",
        413,
        "a body over one and a half times [limits] max_upload_bytes",
    ),
    (
        "PUT /fitconnect/v1/submissions/{submissionId}/attachments/{attachmentId}",
        413,
        "a body over four thirds of [limits] max_upload_bytes",
    ),
];
/// The sender side: Dresden's Mängelanzeige (AMQP) and citizens' office; the
/// subscriber: Leipzig's Mängelanzeige.
const SENDER_SIDE: &str = "dresden-maengel";
const OFFICE: &str = "dresden-buergerbuero";
const SUBSCRIBER: &str = "leipzig-maengel";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The routes of `router/src/fitconnect/mod.rs`: (method, path).
fn registered_routes() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(workspace().join("router/src/fitconnect/mod.rs")).unwrap();
    let mut routes = BTreeSet::new();
    for call in source.split(".route(").skip(1) {
        let start = call.find('"').unwrap() + 1;
        let end = start + call[start..].find('"').unwrap();
        let path = &call[start..end];
        let rest = &call[end..call.find(")\n").unwrap_or(call.len()).max(end)];
        for method in ["get", "post", "put"] {
            if rest
                .match_indices(&format!("{method}("))
                .any(|(i, _)| i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric())
            {
                routes.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    routes
}

/// A Security Event Token signed PS512 (RSASSA-PSS, SHA-512) with `key`, as a
/// FIT-Connect subscriber signs it.
fn ps512(claims: &Value, key: &openssl::pkey::PKey<openssl::pkey::Private>) -> String {
    use openssl::hash::MessageDigest;
    use openssl::rsa::Padding;
    use openssl::sign::{RsaPssSaltlen, Signer};
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"PS512","typ":"secevent+jwt"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mut signer = Signer::new(MessageDigest::sha512(), key).unwrap();
    signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    signer
        .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
        .unwrap();
    signer.set_rsa_mgf1_md(MessageDigest::sha512()).unwrap();
    signer.update(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&signer.sign_to_vec().unwrap()))
}

fn sha512(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha512(bytes))
}

struct Edge<'a> {
    hub: &'a TestHub,
    contract: Contract,
    sender: String,
    subscriber: String,
    /// Dresden's Mängelanzeige destination and its key.
    destination: String,
    jwk: Value,
    office: String,
    office_jwk: Value,
}

impl Edge<'_> {
    fn url(&self, path: &str) -> String {
        self.hub.url(path)
    }

    async fn send(&self, request: RequestBuilder) -> Answer {
        self.contract.send(request).await
    }

    fn client(&self) -> &reqwest::Client {
        &self.contract.client
    }

    /// `GET path` with `token`, expecting `status`.
    async fn get(&self, path: &str, token: Option<&str>, status: u16) -> Answer {
        let mut request = self.client().get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        expect(self.send(request).await, status)
    }

    /// Announces a submission of `service` to `destination` with `attachments`.
    async fn announce(&self, destination: &str, service: &str, attachments: usize) -> Value {
        let ids: Vec<String> = (0..attachments)
            .map(|_| Uuid::new_v4().to_string())
            .collect();
        let answer = self
            .send(
                self.client()
                    .post(self.url("/fitconnect/v1/submissions"))
                    .bearer_auth(&self.sender)
                    .json(&json!({"destinationId": destination, "announcedAttachments": ids,
                        "serviceType": {"name": "", "identifier": format!("urn:de:fim:leika:leistung:{service}")}})),
            )
            .await;
        expect(answer, 201).json
    }

    async fn attach(&self, announced: &Value, jwk: &Value, content: &[u8]) -> Answer {
        let (id, attachment) = (
            announced["submissionId"].as_str().unwrap(),
            announced["announcedAttachments"][0].as_str().unwrap(),
        );
        let jwe =
            kopplung_transformers::fitconnect::encrypt_for_jwk(content, jwk, "application/json")
                .unwrap();
        self.send(
            self.client()
                .put(self.url(&format!(
                    "/fitconnect/v1/submissions/{id}/attachments/{attachment}"
                )))
                .bearer_auth(&self.sender)
                .header("content-type", "application/jose")
                .body(jwe),
        )
        .await
    }

    /// Submits `metadata` and `data` for `announced`, encrypted for `jwk`.
    async fn submit(
        &self,
        announced: &Value,
        jwk: &Value,
        metadata: &Value,
        data: &[u8],
    ) -> Answer {
        let encrypt = |bytes: &[u8]| {
            kopplung_transformers::fitconnect::encrypt_for_jwk(bytes, jwk, "application/json")
                .unwrap()
        };
        let id = announced["submissionId"].as_str().unwrap();
        self.send(
            self.client()
                .put(self.url(&format!("/fitconnect/v1/submissions/{id}")))
                .bearer_auth(&self.sender)
                .json(&json!({
                    "encryptedMetadata": encrypt(metadata.to_string().as_bytes()),
                    "encryptedData": encrypt(data),
                })),
        )
        .await
    }
}

fn expect(answer: Answer, status: u16) -> Answer {
    assert_eq!(
        answer.status,
        status,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer
}

fn problem(answer: Answer, status: u16, kind: &str) -> Answer {
    let answer = expect(answer, status);
    assert_eq!(answer.json["type"], kind, "{}", answer.json);
    answer
}

/// Metadata as FIT-Connect's schema 1.0.0 wants it, for `data` and `attachments`
/// (id, content).
fn metadata(data: &[u8], attachments: &[(&str, &[u8])]) -> Value {
    json!({
        "$schema": "https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json",
        "contentStructure": {
            "data": {
                "hash": {"type": "sha512", "content": sha512(data)},
                "submissionSchema": {"schemaUri": "https://kopplung.example/schema.json", "mimeType": "application/json"},
            },
            "attachments": attachments.iter().map(|(id, content)| json!({
                "attachmentId": id,
                "hash": {"type": "sha512", "content": sha512(content)},
                "mimeType": "application/pdf",
                "purpose": "attachment",
            })).collect::<Vec<_>>(),
        },
    })
}

fn report(region: &str) -> Vec<u8> {
    json!({"$schema": "https://kopplung.example/schema.json", "region": region, "data": {
        "kategorie": "strassenschaden", "beschreibung": "Tiefes Schlagloch vor der Hausnummer 12.",
        "ort": {"strasse": "Prager Straße", "hausnummer": "12"}}})
    .to_string()
    .into_bytes()
}

const PDF: &[u8] = b"%PDF-1.7\n% Fotodokumentation\n%%EOF\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_fitconnect_document_is_valid_and_every_answer_of_the_edge_matches_it() {
    // The Nutzerkonto whose identification reports the sender passes on.
    let issuer = kopplung_tests::issuer::TestIssuer::start().await;
    let hub = TestHub::start(HubSetup {
        fitconnect: vec![SENDER_SIDE, OFFICE, SUBSCRIBER],
        fitconnect_subscribers: vec![SUBSCRIBER],
        extra_config: issuer.hub_config("nutzerkonto-test", SENDER_ID, 3600),
        ..HubSetup::default()
    })
    .await;
    let client = reqwest::Client::new();
    let doc: Value = client
        .get(hub.url("/fitconnect/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("router/fitconnect-openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(doc, stored, "the hub serves the document of the repository");
    // A valid OpenAPI 3.1 document, by another ecosystem's validator.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("fitconnect-openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    kopplung_tests::run_ok(
        std::process::Command::new(python_with_jwcrypto())
            .args(["-m", "openapi_spec_validator"])
            .arg(&file),
        "openapi_spec_validator",
    );
    // Exactly the routes of the edge.
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.replace("{destinationId}", "{id}")))
        })
        .map(|(method, path)| (method, normalise(&path)))
        .collect();
    let registered: BTreeSet<(String, String)> = registered_routes()
        .into_iter()
        .map(|(method, path)| (method, normalise(&path)))
        .collect();
    assert_eq!(documented, registered, "documented vs. registered routes");

    let routing = std::fs::read_to_string(hub.routing_path()).unwrap();
    use kopplung_tests::fitconnect::access_token as token;
    let contract = Contract::new(doc, DOCUMENT_URI, NOT_PROVOKED);
    let mut edge = Edge {
        hub: &hub,
        contract,
        sender: token(&hub, SENDER_ID, SENDER_SECRET).await,
        subscriber: token(
            &hub,
            &subscriber_id(SUBSCRIBER),
            &subscriber_secret(SUBSCRIBER),
        )
        .await,
        destination: destination_of(&routing, SENDER_SIDE),
        jwk: Value::Null,
        office: destination_of(&routing, OFFICE),
        office_jwk: Value::Null,
    };
    let foreign = token(&hub, FOREIGN_ID, FOREIGN_SECRET).await;
    let (sender, subscriber) = (edge.sender.clone(), edge.subscriber.clone());
    let nobody = None;

    // The token endpoint.
    let form = |grant: &str, secret: &str| {
        edge.client().post(edge.url("/fitconnect/token")).form(&[
            ("grant_type", grant.to_owned()),
            ("client_id", SENDER_ID.to_owned()),
            ("client_secret", secret.to_owned()),
        ])
    };
    expect(
        edge.send(form("client_credentials", SENDER_SECRET)).await,
        200,
    );
    expect(edge.send(form("password", SENDER_SECRET)).await, 400);
    expect(edge.send(form("client_credentials", "wrong")).await, 401);
    problem(
        edge.send(form("client_credentials", &"x".repeat(9 * 1024)))
            .await,
        413,
        "urn:kopplung:problem:body-too-large",
    );
    edge.get("/fitconnect/v1/openapi.json", nobody, 200).await;

    // The route lookup, the destination, its key, the data's schema.
    let routes = edge
        .get(
            &format!("/fitconnect/v1/routes?leikaKey={MAENGEL}&ars={DRESDEN}"),
            nobody,
            200,
        )
        .await;
    assert_eq!(routes.json["routes"][0]["destinationId"], edge.destination);
    problem(
        edge.get("/fitconnect/v1/routes?ars=146120000000", nobody, 400)
            .await,
        400,
        "urn:kopplung:problem:malformed",
    );
    let destination = format!("/fitconnect/v1/destinations/{}", edge.destination);
    let described = edge.get(&destination, Some(&sender), 200).await;
    let kid = described.json["encryptionKid"].as_str().unwrap().to_owned();
    edge.get(&destination, nobody, 401).await;
    let unknown = Uuid::new_v4();
    edge.get(
        &format!("/fitconnect/v1/destinations/{unknown}"),
        Some(&sender),
        404,
    )
    .await;
    edge.jwk = edge
        .get(&format!("{destination}/keys/{kid}"), Some(&sender), 200)
        .await
        .json;
    edge.get(&format!("{destination}/keys/{kid}"), nobody, 401)
        .await;
    problem(
        edge.get(&format!("{destination}/keys/other"), Some(&sender), 404)
            .await,
        404,
        "urn:kopplung:problem:not-found",
    );
    problem(
        edge.get(
            &format!("/fitconnect/v1/destinations/{unknown}/keys/{kid}"),
            Some(&sender),
            404,
        )
        .await,
        404,
        "https://schema.fitko.de/fit-connect/submission-api/problems/destination-not-found",
    );
    let office = format!("/fitconnect/v1/destinations/{}", edge.office);
    let office_kid = edge.get(&office, Some(&sender), 200).await.json["encryptionKid"]
        .as_str()
        .unwrap()
        .to_owned();
    edge.office_jwk = edge
        .get(&format!("{office}/keys/{office_kid}"), Some(&sender), 200)
        .await
        .json;
    edge.get(
        &format!("/fitconnect/v1/schemas/{MAENGEL}.schema.json"),
        nobody,
        200,
    )
    .await;
    edge.get(
        "/fitconnect/v1/schemas/00000000000000.schema.json",
        nobody,
        404,
    )
    .await;

    // Announcing.
    let announce = |token: Option<&str>, body: Vec<u8>| {
        let mut request = edge
            .client()
            .post(edge.url("/fitconnect/v1/submissions"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };
    let request = |destination: &str, service: &str| {
        json!({"destinationId": destination, "announcedAttachments": [],
               "serviceType": {"identifier": format!("urn:de:fim:leika:leistung:{service}")}})
        .to_string()
        .into_bytes()
    };
    problem(
        edge.send(announce(Some(&sender), b"{}".to_vec())).await,
        400,
        "urn:kopplung:problem:malformed",
    );
    expect(
        edge.send(announce(None, request(&edge.destination, MAENGEL)))
            .await,
        401,
    );
    problem(
        edge.send(announce(
            Some(&foreign),
            request(&edge.destination, MAENGEL),
        ))
        .await,
        403,
        "urn:kopplung:problem:forbidden",
    );
    edge.send(announce(
        Some(&sender),
        request(&unknown.to_string(), MAENGEL),
    ))
    .await;
    problem(
        edge.send(announce(
            Some(&sender),
            request(&edge.destination, MELDEBESCHEINIGUNG),
        ))
        .await,
        422,
        "urn:kopplung:problem:service-not-accepted",
    );
    let four = json!({"destinationId": edge.destination, "serviceType": {"identifier": MAENGEL},
        "announcedAttachments": (0..4).map(|_| Uuid::new_v4()).collect::<Vec<_>>()});
    problem(
        edge.send(announce(Some(&sender), four.to_string().into_bytes()))
            .await,
        422,
        "urn:kopplung:problem:too-many-attachments",
    );
    problem(
        edge.send(announce(Some(&sender), vec![b' '; 70 * 1024]))
            .await,
        413,
        "urn:kopplung:problem:body-too-large",
    );
    let destination = edge.destination.clone();

    // Attachments.
    let announced = edge.announce(&destination, MAENGEL, 1).await;
    let jwk = edge.jwk.clone();
    expect(edge.attach(&announced, &jwk, PDF).await, 204);
    let id = announced["submissionId"].as_str().unwrap().to_owned();
    let attachment = announced["announcedAttachments"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let put = |path: String, token: Option<&str>, body: &str| {
        let mut request = edge
            .client()
            .put(edge.url(&path))
            .header("content-type", "application/jose")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };
    let at = |submission: &str, attachment: &str| {
        format!("/fitconnect/v1/submissions/{submission}/attachments/{attachment}")
    };
    problem(
        edge.send(put(at("nope", &attachment), Some(&sender), "a.b.c.d.e"))
            .await,
        400,
        "urn:kopplung:problem:malformed",
    );
    expect(
        edge.send(put(at(&id, &attachment), None, "a.b.c.d.e"))
            .await,
        401,
    );
    problem(
        edge.send(put(at(&id, &attachment), Some(&subscriber), "a.b.c.d.e"))
            .await,
        403,
        "urn:kopplung:problem:forbidden",
    );
    edge.send(put(
        at(&unknown.to_string(), &attachment),
        Some(&sender),
        "a.b.c.d.e",
    ))
    .await;
    problem(
        edge.send(put(
            at(&id, &Uuid::new_v4().to_string()),
            Some(&sender),
            "a.b.c.d.e",
        ))
        .await,
        422,
        "urn:kopplung:problem:attachment-not-announced",
    );
    problem(
        edge.send(put(at(&id, &attachment), Some(&sender), "a.b.c.d.e"))
            .await,
        422,
        "urn:kopplung:problem:encryption-issue",
    );
    // Still there: the failed upload did not replace the good one before it decrypted.
    expect(edge.attach(&announced, &jwk, PDF).await, 204);

    // Submitting: each refusal, then the submission.
    let data = report(DRESDEN);
    let good = metadata(&data, &[(&attachment, PDF)]);
    let submission = format!("/fitconnect/v1/submissions/{id}");
    let mut wrong = good.clone();
    wrong["contentStructure"]["data"]["hash"]["content"] = json!(sha512(b"other"));
    problem(
        edge.submit(&announced, &jwk, &wrong, &data).await,
        422,
        "urn:kopplung:problem:hash-mismatch",
    );
    let mut invalid = good.clone();
    invalid["contentStructure"]["data"]["hash"]["type"] = json!("md5");
    problem(
        edge.submit(&announced, &jwk, &invalid, &data).await,
        422,
        "urn:kopplung:problem:metadata-invalid",
    );
    let mismatch = metadata(&data, &[(&Uuid::new_v4().to_string(), PDF)]);
    problem(
        edge.submit(&announced, &jwk, &mismatch, &data).await,
        422,
        "urn:kopplung:problem:attachments-mismatch",
    );
    // The one announced attachment listed twice.
    let twice = metadata(&data, &[(&attachment, PDF), (&attachment, PDF)]);
    problem(
        edge.submit(&announced, &jwk, &twice, &data).await,
        422,
        "urn:kopplung:problem:attachments-mismatch",
    );
    let no_data = b"[1, 2]".to_vec();
    problem(
        edge.submit(
            &announced,
            &jwk,
            &metadata(&no_data, &[(&attachment, PDF)]),
            &no_data,
        )
        .await,
        422,
        "urn:kopplung:problem:data-invalid",
    );
    let leipzig = report(LEIPZIG);
    problem(
        edge.submit(
            &announced,
            &jwk,
            &metadata(&leipzig, &[(&attachment, PDF)]),
            &leipzig,
        )
        .await,
        422,
        "urn:kopplung:problem:not-responsible",
    );
    let empty = json!({"$schema": "x", "region": DRESDEN, "data": {}})
        .to_string()
        .into_bytes();
    problem(
        edge.submit(
            &announced,
            &jwk,
            &metadata(&empty, &[(&attachment, PDF)]),
            &empty,
        )
        .await,
        422,
        "urn:kopplung:problem:validation",
    );
    let body = |text: &str| json!({"encryptedMetadata": text, "encryptedData": text});
    problem(
        edge.send(
            edge.client()
                .put(edge.url(&submission))
                .bearer_auth(&sender)
                .json(&body("a.b.c.d.e")),
        )
        .await,
        422,
        "urn:kopplung:problem:encryption-issue",
    );
    let missing = edge.announce(&destination, MAENGEL, 1).await;
    let missing_id = missing["announcedAttachments"][0].as_str().unwrap();
    problem(
        edge.submit(
            &missing,
            &jwk,
            &metadata(&data, &[(missing_id, PDF)]),
            &data,
        )
        .await,
        422,
        "urn:kopplung:problem:missing-attachment",
    );
    problem(
        edge.send(
            edge.client()
                .put(edge.url("/fitconnect/v1/submissions/nope"))
                .bearer_auth(&sender)
                .json(&body("x")),
        )
        .await,
        400,
        "urn:kopplung:problem:malformed",
    );
    expect(
        edge.send(edge.client().put(edge.url(&submission)).json(&body("x")))
            .await,
        401,
    );
    problem(
        edge.send(
            edge.client()
                .put(edge.url(&submission))
                .bearer_auth(&subscriber)
                .json(&body("x")),
        )
        .await,
        403,
        "urn:kopplung:problem:forbidden",
    );
    edge.send(
        edge.client()
            .put(edge.url(&format!("/fitconnect/v1/submissions/{unknown}")))
            .bearer_auth(&sender)
            .json(&body("x")),
    )
    .await;
    let submitted = expect(edge.submit(&announced, &jwk, &good, &data).await, 200);
    assert_eq!(submitted.json["submissionId"], id.as_str());
    // The citizens' office needs an identified applicant: refused without a report.
    let office_announced = edge
        .announce(&edge.office.clone(), MELDEBESCHEINIGUNG, 0)
        .await;
    let certificate = kopplung_tests::shared::fixture_request(
        "meldebescheinigung/fixtures/minimal",
        MELDEBESCHEINIGUNG,
        DRESDEN,
    );
    let office_data = json!({"$schema": "x", "region": DRESDEN, "data": certificate["data"]})
        .to_string()
        .into_bytes();
    let office_jwk = edge.office_jwk.clone();
    problem(
        edge.submit(
            &office_announced,
            &office_jwk,
            &metadata(&office_data, &[]),
            &office_data,
        )
        .await,
        403,
        "urn:kopplung:problem:authentication-required",
    );
    // With a report at level basis, for a service that needs substanziell.
    let mut basis = metadata(&office_data, &[]);
    basis["authenticationInformation"] = json!([{"type": "identificationReport",
        "version": "1.0.0",
        "content": issuer.token(&issuer.claims(kopplung_tests::issuer::ACR_LOW, "pwd", SENDER_ID))}]);
    let office_again = edge
        .announce(&edge.office.clone(), MELDEBESCHEINIGUNG, 0)
        .await;
    problem(
        edge.submit(&office_again, &office_jwk, &basis, &office_data)
            .await,
        403,
        "urn:kopplung:problem:trust-level-too-low",
    );

    // The subscriber: an application for Leipzig, with a photo, waits for collection.
    let application = hub
        .submit_accepted(
            &json!({"service": MAENGEL, "region": LEIPZIG, "data": {"kategorie": "muell",
                "beschreibung": "Sperrmüll am Gehweg seit Tagen", "ort": {"strasse": "Karl-Liebknecht-Straße"}},
                "attachments": [{"filename": "foto.png", "media_type": "image/png",
                                 "content_base64": "iVBORw0KGgoAAAANSUhEUg=="}]}),
            None,
        )
        .await;
    hub.wait_for_status(&application, "prepared", std::time::Duration::from_secs(30))
        .await;
    let listed = edge
        .get("/fitconnect/v1/submissions", Some(&subscriber), 200)
        .await;
    assert_eq!(listed.json["totalCount"], 1, "{}", listed.json);
    edge.get(
        "/fitconnect/v1/submissions?destinationId=nope",
        Some(&subscriber),
        400,
    )
    .await;
    edge.get("/fitconnect/v1/submissions", nobody, 401).await;
    edge.get("/fitconnect/v1/submissions", Some(&sender), 403)
        .await;
    let fetched_path = format!("/fitconnect/v1/submissions/{application}");
    let fetched = edge.get(&fetched_path, Some(&subscriber), 200).await;
    edge.get("/fitconnect/v1/submissions/nope", Some(&subscriber), 400)
        .await;
    edge.get(&fetched_path, nobody, 401).await;
    edge.get(&fetched_path, Some(&sender), 403).await;
    edge.get(
        &format!("/fitconnect/v1/submissions/{unknown}"),
        Some(&subscriber),
        404,
    )
    .await;
    let photo = fetched.json["attachments"][0].as_str().unwrap().to_owned();
    edge.get(&at(&application, &photo), Some(&subscriber), 200)
        .await;
    edge.get(&at("nope", &photo), Some(&subscriber), 400).await;
    edge.get(&at(&application, &photo), nobody, 401).await;
    edge.get(&at(&application, &photo), Some(&sender), 403)
        .await;
    problem(
        edge.get(&at(&unknown.to_string(), &photo), Some(&subscriber), 404)
            .await,
        404,
        "https://schema.fitko.de/fit-connect/submission-api/problems/submission-not-found",
    );
    problem(
        edge.get(
            &at(&application, &Uuid::new_v4().to_string()),
            Some(&subscriber),
            404,
        )
        .await,
        404,
        "urn:kopplung:problem:not-found",
    );

    // Events of the case.
    let case = fetched.json["caseId"].as_str().unwrap().to_owned();
    let events = format!("/fitconnect/v1/cases/{case}/events");
    let key = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(
            hub.pki_dir()
                .join(format!("procedures/{SUBSCRIBER}-signatur.key")),
        )
        .unwrap(),
    )
    .unwrap();
    let subscriber_destination = destination_of(&routing, SUBSCRIBER);
    let claims = |event: &str, body: Value| {
        json!({"jti": Uuid::new_v4().to_string(), "iss": subscriber_destination,
               "iat": kopplung_tests::now_unix(), "sub": format!("submission:{application}"),
               "txn": format!("case:{case}"),
               "events": {format!("https://schema.fitko.de/fit-connect/events/{event}"): body}})
    };
    let post = |path: &str, token: Option<&str>, body: String| {
        let mut request = edge.client().post(edge.url(path)).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };
    let accept = ps512(&claims("accept-submission", json!({})), &key);
    expect(
        edge.send(post(&events, Some(&subscriber), accept)).await,
        204,
    );
    let again = ps512(&claims("accept-submission", json!({})), &key);
    expect(
        edge.send(post(&events, Some(&subscriber), again.clone()))
            .await,
        409,
    );
    let reject = ps512(&claims("reject-submission", json!({})), &key);
    expect(
        edge.send(post(&events, Some(&subscriber), reject)).await,
        422,
    );
    let forged = {
        let mut parts: Vec<&str> = again.split('.').collect();
        parts[2] = "bm90IGEgc2lnbmF0dXJl";
        parts.join(".")
    };
    problem(
        edge.send(post(&events, Some(&subscriber), forged)).await,
        403,
        "urn:kopplung:problem:receipt-unverifiable",
    );
    problem(
        edge.send(post(&events, Some(&sender), again.clone())).await,
        403,
        "urn:kopplung:problem:forbidden",
    );
    expect(edge.send(post(&events, None, again.clone())).await, 401);
    expect(
        edge.send(post(
            "/fitconnect/v1/cases/nope/events",
            Some(&subscriber),
            again.clone(),
        ))
        .await,
        400,
    );
    expect(
        edge.send(post(
            &format!("/fitconnect/v1/cases/{unknown}/events"),
            Some(&subscriber),
            again.clone(),
        ))
        .await,
        404,
    );
    expect(
        edge.send(post(&events, Some(&subscriber), " ".repeat(70 * 1024)))
            .await,
        413,
    );
    let log = edge.get(&events, Some(&subscriber), 200).await;
    assert_eq!(log.json["count"], 1);
    edge.get("/fitconnect/v1/cases/nope/events", Some(&subscriber), 400)
        .await;
    edge.get(&events, nobody, 401).await;
    edge.get(&events, Some(&sender), 404).await;

    // A sender's reply channel reaches the subscriber in the metadata it collects.
    let leipzig = destination_of(&routing, SUBSCRIBER);
    let leipzig_kid = edge
        .get(
            &format!("/fitconnect/v1/destinations/{leipzig}"),
            Some(&sender),
            200,
        )
        .await
        .json["encryptionKid"]
        .as_str()
        .unwrap()
        .to_owned();
    let leipzig_jwk = edge
        .get(
            &format!("/fitconnect/v1/destinations/{leipzig}/keys/{leipzig_kid}"),
            Some(&sender),
            200,
        )
        .await
        .json;
    let replying = edge.announce(&leipzig, MAENGEL, 0).await;
    let data = report(LEIPZIG);
    let mut with_channel = metadata(&data, &[]);
    with_channel["replyChannel"] = json!({"eMail": {"address": "melder@example.org"}});
    expect(
        edge.submit(&replying, &leipzig_jwk, &with_channel, &data)
            .await,
        200,
    );
    let replying_id = replying["submissionId"].as_str().unwrap().to_owned();
    for _ in 0..300 {
        if hub.admin_view(&replying_id).await["delivery"]["transport"] == "fitconnect" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let collected = edge
        .get(
            &format!("/fitconnect/v1/submissions/{replying_id}"),
            Some(&subscriber),
            200,
        )
        .await;
    let pki = hub.pki_dir().join("procedures");
    let own_key = kopplung_transformers::fitconnect::DestinationKey::load(
        &pki.join(format!("{SUBSCRIBER}-abonnent.crt")),
        &pki.join(format!("{SUBSCRIBER}-abonnent.key")),
        &[],
    )
    .unwrap();
    let opened: Value = serde_json::from_slice(
        &own_key
            .decrypt(
                collected.json["encryptedMetadata"].as_str().unwrap(),
                1 << 20,
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        opened["replyChannel"],
        json!({"eMail": {"address": "melder@example.org"}})
    );

    edge.contract.assert_all_seen();
}

/// A path with its parameters' names left out (`{…}`), to compare routes.
fn normalise(path: &str) -> String {
    path.split('/')
        .map(|part| if part.starts_with('{') { "{}" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}
