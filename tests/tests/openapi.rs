//! The OpenAPI document (`router/openapi.json`, served at `/api/v1/openapi.json`) is kept
//! true here: the document a running hub serves is checked against the official
//! OpenAPI 3.1 meta-schema, every `$ref` in it must resolve, every route of
//! `router/src/api/mod.rs` must be in it and every operation in it must be a route; then
//! every operation is called for real, for its success and its error answers, and each
//! answer is checked against the document: status documented, content type documented,
//! documented headers present, JSON body valid against the documented schema (with the
//! `jsonschema` crate, formats checked). At the end every documented status, content
//! type and problem type must have been seen, except the few listed in `NOT_PROVOKED`.

use kopplung_tests::keys::{CHEMNITZ, DRESDEN, LEIPZIG, MAENGEL, MELDEBESCHEINIGUNG};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use kopplung_tests::contract::{Answer, Contract, media_matches, problem_types, resolve};
use kopplung_tests::issuer::{ACR_SUBSTANTIAL, TestIssuer, assertion};
use kopplung_tests::shared::refuse_publishes;
use kopplung_tests::{
    ADMIN_TOKEN, AUDITOR_TOKEN, HubSetup, OTHER_TOKEN, TestHub, UNREACHABLE_AMQP_URL, amqp,
    delete_queue, deliver_over, python_with_jwcrypto, sign_cms_receipt, token_sha256, workspace,
};
use reqwest::Method;
use serde_json::{Value, json};

/// The base URI under which the document is registered for resolving `$ref`s.
const DOCUMENT_URI: &str = "urn:kopplung:openapi";

/// Documented answers that this test does not provoke, with the reason.
const NOT_PROVOKED: &[(&str, u16, &str)] = &[
    (
        "POST /api/v1/attachments",
        400,
        "a client that goes away mid-upload reads no answer (tests/tests/attachments.rs checks that nothing is kept)",
    ),
    (
        "GET /api/v1/admin/applications/{id}/message",
        410,
        "personal data deleted by retention (tests/tests/retention.rs)",
    ),
    (
        "GET /api/v1/admin/applications/{id}/message",
        422,
        "a stored application the mapping in force can no longer render",
    ),
    (
        "*",
        500,
        "an internal error (no free receipt number, an unserialisable record)",
    ),
    (
        "*",
        503,
        "the store is not reachable (an embedded SQLite store always is)",
    ),
    (
        "POST /api/v1/procedures/{id}/events",
        413,
        "a body over 16 MiB",
    ),
    (
        "POST /api/v1/procedures/{id}/receipts",
        413,
        "a body over 16 MiB",
    ),
    (
        "POST /api/v1/procedures/{id}/events/check",
        413,
        "a body over 16 MiB",
    ),
    (
        "POST /api/v1/procedures/{id}/messages/{message}/ack",
        413,
        "a body over 16 MiB",
    ),
];

/// Borna: no citizens' office takes the Meldebescheinigung online there.
const BORNA: &str = "147290050050";

/// Pull tokens of Dresden's Mängelanzeige procedure (cms) and Leipzig's citizens' office
/// (jose).
const DRESDEN_PULL_TOKEN: &str = "pull-token-of-dresden-maengel-for-openapi";
const LEIPZIG_PULL_TOKEN: &str = "pull-token-of-leipzig-buergerbuero-openapi";

/// Every `$ref` in the document, with where it is.
fn references(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                if key == "$ref"
                    && let Some(reference) = item.as_str()
                {
                    out.push((at.to_owned(), reference.to_owned()));
                }
                references(item, &format!("{at}/{}", pointer_escape(key)), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                references(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every Schema Object of the document: component schemas and the schemas of
/// parameters, headers and media types.
fn schema_objects(doc: &Value) -> Vec<(String, &Value)> {
    fn walk<'a>(value: &'a Value, at: &str, out: &mut Vec<(String, &'a Value)>) {
        if let Value::Object(map) = value {
            for (key, item) in map {
                let here = format!("{at}/{}", pointer_escape(key));
                if key == "schema" && item.is_object() {
                    out.push((here, item));
                } else {
                    walk(item, &here, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&doc["paths"], "/paths", &mut out);
    for kind in ["responses", "parameters", "headers", "requestBodies"] {
        walk(
            &doc["components"][kind],
            &format!("/components/{kind}"),
            &mut out,
        );
    }
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        out.push((format!("/components/schemas/{name}"), schema));
    }
    out
}

/// `(method, path)` of every `.route("…", get(…).post(…))` in `router/src/api/mod.rs`.
fn registered_routes() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(workspace().join("router/src/api/mod.rs"))
        .expect("router/src/api/mod.rs");
    let mut routes = BTreeSet::new();
    let calls: Vec<&str> = source.split(".route(").skip(1).collect();
    assert!(!calls.is_empty(), "no .route( in router/src/api/mod.rs");
    for call in calls {
        let call = call.split(".fallback(").next().unwrap_or(call);
        let start = call.find('"').expect("a path literal") + 1;
        let end = start
            + call[start..]
                .find('"')
                .expect("the end of the path literal");
        let path = &call[start..end];
        let rest = &call[end..];
        let mut methods = 0;
        for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
            let called = rest
                .match_indices(&format!("{method}("))
                .any(|(i, _)| i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric());
            if called {
                routes.insert((method.to_owned(), path.to_owned()));
                methods += 1;
            }
        }
        assert!(methods > 0, "no method for the route {path}");
    }
    routes
}

/// The document is a valid OpenAPI 3.1 document (official meta-schema, references,
/// Schema Objects, operation ids, path parameters, security schemes) and lists exactly
/// the routes of the router.
fn check_document(doc: &Value) {
    // Against the official OpenAPI 3.1 meta-schema, with the OpenAPI Initiative's schema
    // as another ecosystem's validator ships it (openapi-spec-validator, Python).
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
    kopplung_tests::run_ok(
        std::process::Command::new(python_with_jwcrypto())
            .args(["-m", "openapi_spec_validator"])
            .arg(&file),
        "openapi_spec_validator (is it a valid OpenAPI 3.1 document?)",
    );
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    for key in ["info", "paths", "components"] {
        assert!(doc[key].is_object(), "no {key}");
    }
    assert_eq!(
        doc["servers"],
        json!([{"url": "/", "description": "The hub itself."}])
    );

    // Every `$ref` is local and resolves.
    let mut refs = Vec::new();
    references(doc, "", &mut refs);
    assert!(!refs.is_empty());
    for (at, reference) in &refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: {reference} is not a local reference"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{at}: {reference} does not resolve"
        );
    }

    // Every Schema Object is a valid JSON Schema 2020-12 schema and compiles.
    let contract = Contract::new(doc.clone(), DOCUMENT_URI, NOT_PROVOKED);
    for (at, schema) in schema_objects(doc) {
        if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
            panic!("{at} is not a valid JSON Schema: {e}");
        }
        contract.validator(schema);
    }

    // Operation ids are unique; path parameters are declared; security schemes exist;
    // every operation says who may call it.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut operation_ids = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{} {template}", method.to_ascii_uppercase());
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(operation_ids.insert(id.to_owned()), "{id} twice");
            let declared: BTreeSet<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| resolve(doc, p))
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            let in_template: BTreeSet<String> = template
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_owned)
                .collect();
            assert_eq!(declared, in_template, "{name}: path parameters");
            let security = operation["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no security"));
            for requirement in security {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(scheme), "{name}: no scheme {scheme}");
                }
            }
            assert!(
                !operation["responses"].as_object().unwrap().is_empty(),
                "{name}: no responses"
            );
        }
    }

    // The document and the router agree on the routes.
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(template, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(|method| (method.clone(), template.clone()))
        })
        .collect();
    let registered = registered_routes();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes of router/src/api/mod.rs not in the document: {undocumented:?}; \
         operations of the document that are no route: {unrouted:?}"
    );
}

/// Requests to one hub, each answer checked by the contract.
struct Api<'a> {
    hub: &'a TestHub,
    contract: &'a Contract,
}

impl Api<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        let mut request = self.contract.client.request(method, self.hub.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        self.contract.send(request).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    /// GETs `path` and expects 200.
    async fn get_ok(&self, path: &str, token: Option<&str>) -> Answer {
        ok(self.get(path, token).await, 200)
    }

    /// GETs each path with its token: each answer must be the problem of its status and
    /// kind (checked against the contract like every answer).
    async fn get_problems(&self, cases: &[(&str, Option<&str>, u16, &str)]) {
        for (path, token, status, kind) in cases {
            problem(self.get(path, *token).await, *status, kind);
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Option<(&str, Vec<u8>)>) -> Answer {
        self.call(Method::POST, path, token, body).await
    }

    /// POSTs to `path` and expects 200.
    async fn post_ok(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        ok(self.post(path, token, body).await, 200)
    }

    /// POSTs each request: each answer must be the problem of its status and kind
    /// (checked against the contract like every answer).
    async fn post_problems(&self, cases: &[Refused<'_>]) {
        for (path, token, body, status, kind) in cases {
            problem(self.post(path, *token, body.clone()).await, *status, kind);
        }
    }

    /// An operator's action on every application of `procedure` (`action`: the rest of
    /// the path), which finds none to act on: its answer lists none as `listed`; it is
    /// refused without a token, to an auditor and for an unknown procedure.
    async fn procedure_action_finds_none(&self, procedure: &str, action: &str, listed: &str) {
        let path = format!("/api/v1/admin/procedures/{procedure}/{action}");
        let all = self.post_ok(&path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(all.json, json!({"procedure": procedure, listed: []}));
        self.post_problems(&[
            (&path, None, None, 401, "unauthorized"),
            (&path, Some(AUDITOR_TOKEN), None, 403, "forbidden"),
            (
                &format!("/api/v1/admin/procedures/no-such-procedure/{action}"),
                Some(ADMIN_TOKEN),
                None,
                404,
                "not-found",
            ),
        ])
        .await;
    }

    /// Acknowledges `message` of the procedure whose API path is `procedure`, without a
    /// receipt.
    async fn ack(&self, procedure: &str, message: &str, token: &str) {
        self.post_ok(
            &format!("{procedure}/messages/{message}/ack"),
            Some(token),
            None,
        )
        .await;
    }

    /// Uploads `content` as the client of the hub; the created upload.
    async fn upload(&self, filename: &str, media_type: &str, content: Vec<u8>) -> Answer {
        let path = format!("/api/v1/attachments?filename={filename}");
        let answer = self
            .post(&path, Some(&self.hub.token), Some((media_type, content)))
            .await;
        ok(answer, 201)
    }

    async fn submit(&self, body: &Value, key: Option<&str>) -> Answer {
        let mut request = self
            .contract
            .client
            .post(self.hub.url("/api/v1/applications"))
            .bearer_auth(&self.hub.token)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        self.contract.send(request).await
    }

    /// Submits `body` (no idempotency key) and expects it accepted; the application's id.
    async fn submit_accepted(&self, body: &Value) -> String {
        ok(self.submit(body, None).await, 202).id()
    }

    /// Declares a body over the hub's limit and sends none: the hub answers from the
    /// declared length. (Sending such a body races with that early answer: the hub closes
    /// the connection while the client still writes, and the client sees a broken pipe.)
    async fn declared_too_large(&self, path: &str) -> Answer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.hub.port))
            .await
            .expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.hub.token,
            1024 * 1024
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let head = String::from_utf8(raw[..split].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let mut headers = reqwest::header::HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').expect("a header line");
            headers.append(
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_str(value.trim()).unwrap(),
            );
        }
        let body = raw[split + 4..].to_vec();
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .expect("a Content-Length");
        assert_eq!(body.len(), length, "the whole body");
        self.contract.check("post", path, status, headers, body)
    }

    /// Posts a signed event to `/api/v1/procedures/{procedure}/{channel}`.
    async fn event(&self, procedure: &str, channel: &str, signed: &[u8]) -> Answer {
        self.post(
            &format!("/api/v1/procedures/{procedure}/{channel}"),
            None,
            Some(("application/pkcs7-mime", signed.to_vec())),
        )
        .await
    }

    /// Posts a signed event and expects 200.
    async fn event_ok(&self, procedure: &str, channel: &str, signed: &[u8]) -> Answer {
        ok(self.event(procedure, channel, signed).await, 200)
    }

    /// The message id of `application`'s pickup, once `procedure` lists it.
    async fn message_for(&self, procedure: &str, token: &str, application: &str) -> String {
        let listed = self.pickups(procedure, token, &[application]).await;
        message_id(&pickup_of(&listed, application))
    }

    /// Lists the pickups of `procedure` until one for each of `applications` is there.
    async fn pickups(&self, procedure: &str, token: &str, applications: &[&str]) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let list = self
                .get_ok(
                    &format!("/api/v1/procedures/{procedure}/messages"),
                    Some(token),
                )
                .await;
            let messages = list.list("messages").to_vec();
            let all_there = applications
                .iter()
                .all(|id| messages.iter().any(|m| m["application_id"] == *id));
            if all_there {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{procedure} never listed {applications:?}:\n{}",
                self.hub.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A request the hub must refuse: path, token, body, and the status and kind of the
/// problem it answers with.
type Refused<'a> = (
    &'a str,
    Option<&'a str>,
    Option<(&'a str, Vec<u8>)>,
    u16,
    &'a str,
);

/// The entry of `application` among listed pickups.
fn pickup_of(listed: &[Value], application: &str) -> Value {
    listed
        .iter()
        .find(|m| m["application_id"] == application)
        .unwrap_or_else(|| panic!("no pickup of {application}"))
        .clone()
}

fn message_id(pickup: &Value) -> String {
    pickup["message_id"].as_str().unwrap().to_owned()
}

/// The answer, after checking its status.
fn ok(answer: Answer, status: u16) -> Answer {
    assert_eq!(
        answer.status,
        status,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer
}

/// The answer, after checking that it is the problem `kind` with `status`.
fn problem(answer: Answer, status: u16, kind: &str) -> Answer {
    let answer = ok(answer, status);
    assert_eq!(
        answer.json["type"],
        format!("urn:kopplung:problem:{kind}"),
        "{}",
        answer.json
    );
    answer
}

fn pull(token: &str) -> String {
    format!(
        "transport = \"pull\"\ntoken_sha256 = \"{}\"",
        token_sha256(token)
    )
}

fn maengel(region: &str, what: &str) -> Value {
    json!({"service": MAENGEL, "region": region, "data": {
        "kategorie": "muell", "beschreibung": what, "ort": {"strasse": "Terrassenufer"}}})
}

fn meldebescheinigung(region: &str) -> Value {
    kopplung_tests::shared::fixture_request(
        "meldebescheinigung/fixtures/minimal",
        MELDEBESCHEINIGUNG,
        region,
    )
}

/// An event of Dresden's procedure about a message, as its JSON before signing.
fn event(receipt_id: &str, message_id: &str, application_id: &str, kind: &str) -> Value {
    json!({
        "receipt_id": receipt_id,
        "procedure": "dresden-maengel",
        "message_id": message_id,
        "application_id": application_id,
        "event": kind,
        "issued_at": kopplung_tests::now_rfc3339()
    })
}

fn with_document(mut event: Value, filename: &str, media_type: &str, content: &[u8]) -> Value {
    event["document"] = json!({
        "filename": filename,
        "media_type": media_type,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(content),
    });
    event
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn hex_sha256(bytes: &[u8]) -> String {
    to_hex(&openssl::sha::sha256(bytes))
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_every_answer_of_the_hub_matches_it() {
    let broker = amqp().await;
    // An identity provider on loopback, for the refusals of an applicant's identification.
    let issuer = TestIssuer::start().await;
    let hub = TestHub::start(HubSetup {
        extra_config: issuer.hub_config_for_refusals(),
        max_body_bytes: 64 * 1024,
        max_upload_bytes: 512 * 1024,
        edit_routing: |routing| {
            routing
                // Chemnitz: dead letters after three attempts.
                .replacen(
                    ".chemnitz-maengel\"\n",
                    ".chemnitz-maengel\"\n\n[procedure.retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 50\n",
                    1,
                )
                // Bautzen: no receipt certificate, so it cannot send events.
                .replace(
                    "receipt_certificate = \"procedures/bautzen-maengel-signatur.crt\"\n",
                    "",
                )
        },
        rewrite_routing: Some(Arc::new(|routing| {
            let routing = deliver_over(&routing, "dresden-maengel", &pull(DRESDEN_PULL_TOKEN));
            deliver_over(&routing, "leipzig-buergerbuero", &pull(LEIPZIG_PULL_TOKEN))
        })),
        ..HubSetup::default()
    })
    .await;
    let pki = hub.pki_dir();

    // Chemnitz's queue refuses every message: its application becomes a dead letter.
    let chemnitz_queue = hub.queue("chemnitz-maengel");
    refuse_publishes(&broker, &chemnitz_queue).await;

    // The document the hub serves is the repository's, and a valid one.
    let served: Value = reqwest::get(hub.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .expect("the OpenAPI document is JSON");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("router/openapi.json")).unwrap(),
    )
    .expect("router/openapi.json is JSON");
    assert_eq!(
        served, file,
        "the hub serves another document than router/openapi.json: rebuild it"
    );
    check_document(&served);
    let contract = Contract::new(served, DOCUMENT_URI, NOT_PROVOKED);
    let api = Api {
        hub: &hub,
        contract: &contract,
    };

    // Operations.
    api.get_ok("/api/v1/openapi.json", None).await;
    api.get_ok("/healthz", None).await;
    let metrics = api.get_ok("/metrics", None).await;
    assert!(String::from_utf8_lossy(&metrics.body).contains("kopplung_"));
    let ready = api.get_ok("/readyz", None).await;
    assert_eq!(ready.json["store"], "ok");
    let services = api.get_ok("/api/v1/services", None).await;
    assert!(
        services
            .list("services")
            .iter()
            .any(|s| s["key"] == MAENGEL && s["online"] == true)
    );

    // The hub's signing certificates, public for vendors (staged rotation).
    let trust = api.get_ok("/api/v1/trust", None).await;
    assert_eq!(trust.list("signing")[0]["stage"], "active");

    // The schema bundles, fetched as a vendor would: every file under its path, then
    // every example message of the service validated with xmllint against them.
    let bundles = api.get_ok("/api/v1/schemas", None).await;
    let bundles = bundles.list("schemas").to_vec();
    // Each service's own message type, and its four follow-up types (one shared schema).
    let follow_ups = |b: &&Value| b["schema"] == "xoev/kopplung-folgenachricht.xsd";
    assert_eq!(bundles.iter().filter(|b| !follow_ups(b)).count(), 7);
    assert_eq!(bundles.iter().filter(follow_ups).count(), 28);
    assert!(
        bundles
            .iter()
            .any(|b| b["message_type"] == "maengelanzeige.widerspruch.0203")
    );
    let downloads = tempfile::tempdir().unwrap();
    let mut validated = 0;
    for bundle in &bundles {
        for file in bundle["files"].as_array().unwrap() {
            let fetched = api.get_ok(file["url"].as_str().unwrap(), None).await;
            assert_eq!(
                hex::encode(openssl::sha::sha256(&fetched.body)),
                file["sha256"].as_str().unwrap()
            );
            let target = downloads.path().join(file["path"].as_str().unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, &fetched.body).unwrap();
        }
        let schema = bundle["schema"].as_str().unwrap();
        let folder = schema.split('/').next().unwrap();
        // Follow-ups have no fixtures of their own (tests/tests/conversation.rs).
        if follow_ups(&bundle) {
            continue;
        }
        for fixture in
            std::fs::read_dir(workspace().join("mappings").join(folder).join("fixtures")).unwrap()
        {
            let fixture = fixture.unwrap().path();
            if !fixture.to_string_lossy().ends_with(".expected.xml") {
                continue;
            }
            let checked = std::process::Command::new("xmllint")
                .arg("--noout")
                .arg("--schema")
                .arg(downloads.path().join(schema))
                .arg(&fixture)
                .output()
                .expect("xmllint (apt-get install libxml2-utils)");
            assert!(
                checked.status.success(),
                "{}: {}",
                fixture.display(),
                String::from_utf8_lossy(&checked.stderr)
            );
            validated += 1;
        }
    }
    assert!(validated >= 6, "{validated} example messages validated");
    api.get_problems(&[
        ("/api/v1/schemas/xoev/nicht-da.xsd", None, 404, "not-found"),
        (
            "/api/v1/schemas/maengelanzeige/form.toml",
            None,
            404,
            "not-found",
        ),
    ])
    .await;

    // The directory for portals: municipalities, authorities, responsibility.
    let all = api.get_ok("/api/v1/regions", None).await;
    assert_eq!(all.list("regions").len(), 418);
    let dresden = api.get_ok("/api/v1/regions?q=dresden", None).await;
    assert!(
        dresden
            .list("regions")
            .iter()
            .any(|r| r["ars"] == "146120000000")
    );
    let authorities = api.get_ok("/api/v1/authorities", None).await;
    assert!(authorities.list("authorities").len() > 10);
    let office = api
        .get_ok("/api/v1/authorities/dresden-buergerbuero", None)
        .await;
    assert!(
        office
            .list("services")
            .iter()
            .any(|s| s == "99108001000000")
    );
    let responsible = api
        .get_ok(
            "/api/v1/responsibility?service=99108001000000&region=146120000000",
            None,
        )
        .await;
    assert_eq!(responsible.json["authority"]["id"], "dresden-buergerbuero");
    assert_eq!(responsible.json["online"], true);
    // Amtsberg: no Bewohnerparkausweis online, no authority known for it.
    let elsewhere = api
        .get_ok(
            "/api/v1/responsibility?service=99108001000000&region=145210010010",
            None,
        )
        .await;
    assert_eq!(elsewhere.json["online"], false);
    api.get_problems(&[
        ("/api/v1/authorities/nirgendwo", None, 404, "not-found"),
        (
            "/api/v1/responsibility?service=99108001000000&region=1461",
            None,
            400,
            "bad-query",
        ),
        (
            "/api/v1/responsibility?service=99999999999999&region=146120000000",
            None,
            404,
            "not-found",
        ),
    ])
    .await;

    // Intake: accepted, replayed, and every refusal.
    let pothole = maengel(DRESDEN, "Schlagloch vor der Schule");
    let first = ok(api.submit(&pothole, Some("openapi-1")).await, 202);
    let a1 = first.id();
    assert!(
        first
            .header("location")
            .ends_with(&format!("/api/v1/applications/{a1}"))
    );
    let again = ok(api.submit(&pothole, Some("openapi-1")).await, 202);
    assert_eq!(again.json["id"], a1.as_str());
    assert_eq!(again.header("idempotent-replayed"), "true");
    problem(
        api.submit(
            &maengel(DRESDEN, "Ein anderes Schlagloch"),
            Some("openapi-1"),
        )
        .await,
        409,
        "idempotency-key-reused",
    );
    problem(
        api.submit(&maengel(DRESDEN, "Leerer Schlüssel"), Some(""))
            .await,
        400,
        "bad-idempotency-key",
    );
    let a2 = api
        .submit_accepted(&maengel(DRESDEN, "Laterne dunkel"))
        .await;
    let a3 = api
        .submit_accepted(&maengel(CHEMNITZ, "Müll am Schloßteich"))
        .await;
    let a4 = api.submit_accepted(&meldebescheinigung(LEIPZIG)).await;
    let intake = "/api/v1/applications";
    let json_body = |body: &Value| Some(("application/json", body.to_string().into_bytes()));
    let unauthorized = problem(
        api.post(
            intake,
            Some("not-a-token-of-this-hub"),
            json_body(&maengel(DRESDEN, "falscher Token")),
        )
        .await,
        401,
        "unauthorized",
    );
    assert_eq!(unauthorized.header("www-authenticate"), "Bearer");
    let mut with_attachment = meldebescheinigung(LEIPZIG);
    with_attachment["attachments"] = json!([{
        "filename": "scan.pdf", "media_type": "application/pdf", "content_base64": "JVBERi0x"}]);
    api.post_problems(&[
        (
            intake,
            Some(&hub.token),
            Some(("application/json", b"{".to_vec())),
            400,
            "malformed",
        ),
        (
            intake,
            None,
            json_body(&maengel(DRESDEN, "ohne Token")),
            401,
            "unauthorized",
        ),
        (
            intake,
            Some(&hub.token),
            Some(("text/plain", b"Schlagloch".to_vec())),
            415,
            "unsupported-media-type",
        ),
        (
            intake,
            Some(&hub.token),
            json_body(&with_attachment),
            413,
            "attachment-too-large",
        ),
        (
            intake,
            Some(&hub.token),
            json_body(&meldebescheinigung(BORNA)),
            422,
            "no-route",
        ),
    ])
    .await;
    problem(api.declared_too_large(intake).await, 413, "body-too-large");
    let invalid = problem(
        api.post(
            intake,
            Some(&hub.token),
            json_body(&json!({"service": MAENGEL, "region": DRESDEN, "data": {}})),
        )
        .await,
        422,
        "validation",
    );
    assert!(!invalid.list("errors").is_empty());
    // Who applied: a valid assertion, and every refusal of an identification.
    // (Dresden's citizens' office: not one of the procedures this test lists pickups of.)
    let mut proven = meldebescheinigung(DRESDEN);
    proven["applicant"] =
        assertion(&issuer.token(&issuer.claims(ACR_SUBSTANTIAL, "swk", "portal")));
    api.submit_accepted(&proven).await;
    let refusals: Vec<(String, Value, u16, &str)> = issuer
        .refused_cases()
        .into_iter()
        .map(|case| {
            let mut body = meldebescheinigung(LEIPZIG);
            match case.applicant {
                Some(applicant) => body["applicant"] = applicant,
                None => drop(body.as_object_mut().unwrap().remove("applicant")),
            }
            (case.sender.token(&hub), body, case.status, case.kind)
        })
        .collect();
    let refused: Vec<Refused<'_>> = refusals
        .iter()
        .map(|(token, body, status, kind)| {
            (
                intake,
                Some(token.as_str()),
                json_body(body),
                *status,
                *kind,
            )
        })
        .collect();
    api.post_problems(&refused).await;

    // The pull API: Dresden (cms) collects its two messages.
    let dresden = "/api/v1/procedures/dresden-maengel";
    let listed = api
        .pickups("dresden-maengel", DRESDEN_PULL_TOKEN, &[&a1, &a2])
        .await;
    let (p1, p2) = (pickup_of(&listed, &a1), pickup_of(&listed, &a2));
    let (m1, m2) = (message_id(&p1), message_id(&p2));
    let limited = api
        .get_ok(
            &format!("{dresden}/messages?limit=1"),
            Some(DRESDEN_PULL_TOKEN),
        )
        .await;
    assert_eq!(limited.list("messages").len(), 1);
    api.get_problems(&[
        (
            &format!("{dresden}/messages?limit=many"),
            Some(DRESDEN_PULL_TOKEN),
            400,
            "bad-query",
        ),
        (&format!("{dresden}/messages"), None, 401, "unauthorized"),
        (
            &format!("{dresden}/messages"),
            Some(LEIPZIG_PULL_TOKEN),
            403,
            "forbidden",
        ),
    ])
    .await;

    let message = format!("{dresden}/messages/{m1}");
    let sealed = api.get_ok(&message, Some(DRESDEN_PULL_TOKEN)).await;
    assert_eq!(sealed.header("x-kopplung-message-id"), m1);
    assert_eq!(sealed.header("x-kopplung-application-id"), a1);
    assert_eq!(p1["sha256"], hex_sha256(&sealed.body));
    assert_eq!(p1["size"], sealed.body.len());
    assert_eq!(
        sealed.header("repr-digest"),
        format!(
            "sha-256=:{}:",
            base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha256(&sealed.body))
        )
    );
    api.get_problems(&[
        (&message, None, 401, "unauthorized"),
        (&message, Some(LEIPZIG_PULL_TOKEN), 403, "forbidden"),
        (
            &format!("{dresden}/messages/{}", new_id()),
            Some(DRESDEN_PULL_TOKEN),
            404,
            "not-found",
        ),
        (
            &format!("{dresden}/messages/not-a-message"),
            Some(DRESDEN_PULL_TOKEN),
            404,
            "not-found",
        ),
    ])
    .await;

    let ack = format!("{message}/ack");
    let cms = |event: &Value| {
        Some((
            "application/pkcs7-mime",
            sign_cms_receipt(&pki, "dresden-maengel", event),
        ))
    };
    api.post_problems(&[
        (&ack, None, None, 401, "unauthorized"),
        (&ack, Some(LEIPZIG_PULL_TOKEN), None, 403, "forbidden"),
        (
            &ack,
            Some(DRESDEN_PULL_TOKEN),
            Some(("application/pkcs7-mime", b"no receipt at all".to_vec())),
            403,
            "receipt-unverifiable",
        ),
        (
            &ack,
            Some(DRESDEN_PULL_TOKEN),
            cms(&event("r-other", &m2, &a2, "accept")),
            422,
            "receipt-mismatch",
        ),
        (
            &ack,
            Some(DRESDEN_PULL_TOKEN),
            cms(&event("r-no-problems", &m1, &a1, "reject")),
            422,
            "missing-field",
        ),
        (
            &ack,
            Some(DRESDEN_PULL_TOKEN),
            cms(&json!({"receipt_id": "r-kein-ereignis", "procedure": "dresden-maengel"})),
            422,
            "malformed-event",
        ),
        (
            &format!("{dresden}/messages/{}/ack", new_id()),
            Some(DRESDEN_PULL_TOKEN),
            None,
            404,
            "not-found",
        ),
    ])
    .await;
    let acked = api
        .post_ok(
            &ack,
            Some(DRESDEN_PULL_TOKEN),
            cms(&event("r-accept", &m1, &a1, "accept")),
        )
        .await;
    assert_eq!(acked.json["already_acknowledged"], false);
    assert_eq!(acked.json["receipt"]["status"], "received");
    let twice = api.post_ok(&ack, Some(DRESDEN_PULL_TOKEN), None).await;
    assert_eq!(twice.json["already_acknowledged"], true);
    // A receipt that verifies but does not follow: delivered all the same, and told why.
    let out_of_order = api
        .post_ok(
            &format!("{dresden}/messages/{m2}/ack"),
            Some(DRESDEN_PULL_TOKEN),
            cms(&event("r-early", &m2, &a2, "in_progress")),
        )
        .await;
    assert_eq!(
        out_of_order.json["receipt_problem"]["type"],
        "urn:kopplung:problem:event-out-of-order"
    );

    // Leipzig's citizens' office (jose) collects its message.
    let leipzig = "/api/v1/procedures/leipzig-buergerbuero";
    let m4 = api
        .message_for("leipzig-buergerbuero", LEIPZIG_PULL_TOKEN, &a4)
        .await;
    let jwe = api
        .get_ok(
            &format!("{leipzig}/messages/{m4}"),
            Some(LEIPZIG_PULL_TOKEN),
        )
        .await;
    assert_eq!(jwe.header("content-type"), "application/jose");
    assert_eq!(
        jwe.body.iter().filter(|b| **b == b'.').count(),
        4,
        "a compact JWE"
    );
    api.ack(leipzig, &m4, LEIPZIG_PULL_TOKEN).await;

    // A streamed upload, named in a Gewerbeanmeldung for Leipzig (jose: attachments
    // travel by claim check), its fragment fetched by the procedure.
    let mut plan = b"%PDF-1.7\n".to_vec();
    plan.resize(300 * 1024, b'x');
    let uploaded = api
        .upload("Gewerbeerlaubnis.pdf", "application/pdf", plan.clone())
        .await;
    assert_eq!(uploaded.json["size"], plan.len());
    let uploads = "/api/v1/attachments";
    api.post_problems(&[
        (
            &format!("{uploads}?filename=a.pdf"),
            None,
            Some(("application/pdf", plan.clone())),
            401,
            "unauthorized",
        ),
        (
            &format!("{uploads}?filename=a.exe"),
            Some(&hub.token),
            Some(("application/x-msdownload", b"MZ".to_vec())),
            415,
            "unsupported-media-type",
        ),
        (
            uploads,
            Some(&hub.token),
            Some(("application/pdf", plan.clone())),
            422,
            "validation",
        ),
    ])
    .await;
    problem(
        api.declared_too_large(&format!("{uploads}?filename=a.pdf"))
            .await,
        413,
        "attachment-too-large",
    );
    let mut gewerbe = kopplung_tests::shared::fixture_request(
        "gewerbeanmeldung/fixtures/minimal",
        "99050012104000",
        LEIPZIG,
    );
    gewerbe["attachments"] = json!([{ "upload": uploaded.json["id"] }]);
    let a5 = api.submit_accepted(&gewerbe).await;
    let m5 = api
        .message_for("leipzig-buergerbuero", LEIPZIG_PULL_TOKEN, &a5)
        .await;
    let fragment = format!("{leipzig}/messages/{m5}/attachments/1/1");
    let sealed = api.get_ok(&fragment, Some(LEIPZIG_PULL_TOKEN)).await;
    assert_eq!(sealed.header("content-type"), "application/jose");
    api.get_problems(&[
        (&fragment, None, 401, "unauthorized"),
        (&fragment, Some(DRESDEN_PULL_TOKEN), 403, "forbidden"),
        (
            &format!("{leipzig}/messages/{m5}/attachments/1/2"),
            Some(LEIPZIG_PULL_TOKEN),
            404,
            "not-found",
        ),
    ])
    .await;
    api.ack(leipzig, &m5, LEIPZIG_PULL_TOKEN).await;
    // An uploaded photo in a Mängelanzeige for Dresden (cms): a CMS fragment.
    let mut photo = b"\x89PNG\r\n\x1a\n".to_vec();
    photo.resize(2048, 7);
    let uploaded = api.upload("Schlagloch.png", "image/png", photo).await;
    let mut report = maengel(DRESDEN, "Schlagloch mit Foto");
    report["attachments"] = json!([{ "upload": uploaded.json["id"] }]);
    let a6 = api.submit_accepted(&report).await;
    let m6 = api
        .message_for("dresden-maengel", DRESDEN_PULL_TOKEN, &a6)
        .await;
    let sealed = api
        .get_ok(
            &format!("{dresden}/messages/{m6}/attachments/1/1"),
            Some(DRESDEN_PULL_TOKEN),
        )
        .await;
    assert!(
        sealed
            .header("content-type")
            .starts_with("application/pkcs7-mime")
    );
    api.ack(dresden, &m6, DRESDEN_PULL_TOKEN).await;

    // Events on both channels: progress, a question, the decision, with documents.
    let png = b"\x89PNG\r\n\x1a\nplan".to_vec();
    let jpeg = b"\xFF\xD8\xFF\xE0foto".to_vec();
    let html = b"<p>Hinweis</p>".to_vec();
    let pdf = b"%PDF-1.4 Bescheid".to_vec();
    let sign = |event: &Value| sign_cms_receipt(&pki, "dresden-maengel", event);
    let progress = sign(&with_document(
        event("e-1", &m1, &a1, "in_progress"),
        "Lageplan.png",
        "image/png",
        &png,
    ));
    let recorded = api.event_ok("dresden-maengel", "events", &progress).await;
    assert_eq!(recorded.json["status"], "in_progress");
    let mut question = with_document(
        event("e-2", &m1, &a1, "query"),
        "Foto von der Stelle.jpg",
        "image/jpeg",
        &jpeg,
    );
    question["message"] = json!("Bitte ein Foto der Stelle nachreichen.");
    api.event_ok("dresden-maengel", "receipts", &sign(&question))
        .await;

    // The citizen answers the question: its own message to the procedure, listed with
    // the application and picked up like it.
    let conversation = format!("/api/v1/applications/{a1}/messages");
    let answer = json!({"kind": "antwort", "refers_to": "e-2", "text": "Foto anbei.",
        "attachments": [{"filename": "Stelle.jpg", "media_type": "image/jpeg",
                         "content_base64": "/9j/4AAQ"}]});
    let sent = ok(
        api.post(&conversation, Some(&hub.token), json_body(&answer))
            .await,
        202,
    );
    let follow_up = sent.id();
    assert_eq!(
        sent.header("location"),
        hub.url(&format!("/api/v1/applications/{follow_up}"))
    );
    let listed = api
        .get_ok(&format!("/api/v1/applications/{a1}"), Some(&hub.token))
        .await;
    assert_eq!(listed.list("messages")[0]["refers_to"], "e-2");
    let m_answer = api
        .message_for("dresden-maengel", DRESDEN_PULL_TOKEN, &follow_up)
        .await;
    api.ack(dresden, &m_answer, DRESDEN_PULL_TOKEN).await;
    // Sent twice with one Idempotency-Key: one message, the second answer replayed.
    let keyed = |key: &str, body: &Value| {
        api.contract
            .client
            .post(hub.url(&conversation))
            .bearer_auth(&hub.token)
            .header("idempotency-key", key)
            .json(body)
    };
    let later = json!({"kind": "nachreichung", "attachments": [{"filename": "Plan.png",
        "media_type": "image/png", "content_base64": "iVBORw0KGgo="}]});
    let first = ok(contract.send(keyed("nachtrag-1", &later)).await, 202);
    let again = ok(contract.send(keyed("nachtrag-1", &later)).await, 202);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(again.header("idempotent-replayed"), "true");
    problem(
        contract.send(keyed("nachtrag-1", &answer)).await,
        409,
        "idempotency-key-reused",
    );
    problem(
        contract
            .send(keyed("zu lang mit Leerzeichen", &later))
            .await,
        400,
        "bad-idempotency-key",
    );
    let m_later = api
        .message_for("dresden-maengel", DRESDEN_PULL_TOKEN, &first.id())
        .await;
    api.ack(dresden, &m_later, DRESDEN_PULL_TOKEN).await;
    let mut too_large = json!({"kind": "nachreichung",
        "attachments": [{"filename": "scan.pdf", "media_type": "application/pdf",
                         "content_base64": "JVBERi0x"}]});
    api.post_problems(&[
        (
            &conversation,
            Some(&hub.token),
            Some(("application/json", b"{".to_vec())),
            400,
            "malformed",
        ),
        (&conversation, None, json_body(&answer), 401, "unauthorized"),
        (
            &format!("/api/v1/applications/{}/messages", new_id()),
            Some(&hub.token),
            json_body(&answer),
            404,
            "not-found",
        ),
        (
            &conversation,
            Some(&hub.token),
            json_body(&json!({"kind": "antwort", "refers_to": "e-1", "text": "?"})),
            409,
            "follow-up-refused",
        ),
        (
            &format!("/api/v1/applications/{a4}/messages"),
            Some(&hub.token),
            json_body(&too_large),
            413,
            "attachment-too-large",
        ),
        (
            &conversation,
            Some(&hub.token),
            Some(("text/plain", b"Foto anbei.".to_vec())),
            415,
            "unsupported-media-type",
        ),
        (
            &conversation,
            Some(&hub.token),
            json_body(&json!({"kind": "antwort", "refers_to": "e-2", "text": " "})),
            422,
            "validation",
        ),
    ])
    .await;
    problem(
        api.declared_too_large(&conversation).await,
        413,
        "body-too-large",
    );
    too_large["kind"] = json!("zahlung");
    problem(
        api.post(&conversation, Some(&hub.token), json_body(&too_large))
            .await,
        422,
        "validation",
    );
    let hint = event("e-3", &m1, &a1, "in_progress");
    let hint_signed = sign(&with_document(
        hint.clone(),
        "Hinweis.html",
        "text/html",
        &html,
    ));
    api.event_ok("dresden-maengel", "events", &hint_signed)
        .await;
    // The dry run answers as the real request would, recording nothing.
    for channel in ["events", "receipts", "events/check"] {
        let duplicate = api.event_ok("dresden-maengel", channel, &hint_signed).await;
        assert_eq!(duplicate.json["duplicate"], true);
        problem(
            api.event("dresden-maengel", channel, &sign(&hint)).await,
            409,
            "receipt-id-reused",
        );
    }
    let mut decision = with_document(
        event("e-4", &m1, &a1, "decision"),
        "Bescheid Müller.pdf",
        "application/pdf",
        &pdf,
    );
    decision["message"] = json!("Der Mangel ist behoben.");
    let checked = api
        .event_ok("dresden-maengel", "events/check", &sign(&decision))
        .await;
    assert_eq!(
        (
            checked.json["would_record"].clone(),
            checked.json["status"].clone()
        ),
        (json!(true), json!("decided"))
    );
    let still = api
        .get_ok(&format!("/api/v1/applications/{a1}"), Some(&hub.token))
        .await;
    assert_eq!(
        still.json["status"], "in_progress",
        "a dry run records nothing"
    );
    let decided = api
        .event_ok("dresden-maengel", "receipts", &sign(&decision))
        .await;
    assert_eq!(decided.json["status"], "decided");

    // Refused events, on both channels and in the dry run.
    for channel in ["events", "receipts", "events/check"] {
        let tag = channel.replace('/', "-");
        let late = sign(&event(&format!("late-{tag}"), &m1, &a1, "in_progress"));
        problem(
            api.event("dresden-maengel", channel, &late).await,
            409,
            "application-final",
        );
        let early = sign(&with_document(
            event(&format!("early-{tag}"), &m2, &a2, "decision"),
            "Bescheid.pdf",
            "application/pdf",
            &pdf,
        ));
        problem(
            api.event("dresden-maengel", channel, &early).await,
            409,
            "event-out-of-order",
        );
        let mut broken = event(&format!("broken-{tag}"), &m2, &a2, "decision");
        broken["document"] = json!({"filename": "Bescheid.pdf", "media_type": "application/pdf",
                                    "content_base64": "*** kein base64 ***"});
        problem(
            api.event("dresden-maengel", channel, &sign(&broken)).await,
            422,
            "bad-document",
        );
        // Signed correctly, but lacking what its kind needs, or no event at all.
        problem(
            api.event(
                "dresden-maengel",
                channel,
                &sign(&event(&format!("no-document-{tag}"), &m2, &a2, "decision")),
            )
            .await,
            422,
            "missing-field",
        );
        let no_event = json!({"receipt_id": format!("no-event-{tag}"), "issued_at": kopplung_tests::now_rfc3339()});
        problem(
            api.event("dresden-maengel", channel, &sign(&no_event))
                .await,
            422,
            "malformed-event",
        );
        let stranger = sign(&event(&format!("stranger-{tag}"), &new_id(), &a2, "accept"));
        problem(
            api.event("dresden-maengel", channel, &stranger).await,
            422,
            "unknown-message",
        );
        let bad_id = sign(&event("kein gültiger Schlüssel", &m2, &a2, "in_progress"));
        problem(
            api.event("dresden-maengel", channel, &bad_id).await,
            422,
            "bad-receipt-id",
        );
        // Outside the time window: issued in the future, too old, no time at all.
        let at = |offset: time::Duration| {
            (time::OffsetDateTime::now_utc() + offset)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        for (issued_at, kind) in [
            (at(time::Duration::hours(1)), "issued-in-the-future"),
            (at(-time::Duration::days(8)), "event-too-old"),
            ("gestern".to_owned(), "bad-issued-at"),
        ] {
            let mut stale = event(&format!("{kind}-{tag}"), &m2, &a2, "in_progress");
            stale["issued_at"] = json!(issued_at);
            problem(
                api.event("dresden-maengel", channel, &sign(&stale)).await,
                422,
                kind,
            );
        }
        // A token that is not the procedure's: refused before the body is read.
        problem(
            api.post(
                &format!("/api/v1/procedures/dresden-maengel/{channel}"),
                Some(&hub.token),
                Some(("application/pkcs7-mime", late.clone())),
            )
            .await,
            401,
            "unauthorized",
        );
        problem(
            api.event("dresden-maengel", channel, b"no signature").await,
            403,
            "receipt-unverifiable",
        );
        problem(
            api.event("bautzen-maengel", channel, &late).await,
            403,
            "receipt-refused",
        );
        problem(
            api.event("no-such-procedure", channel, &late).await,
            404,
            "not-found",
        );
    }

    // The application with its mailbox and documents, for its client only.
    let path = format!("/api/v1/applications/{a1}");
    let shown = api.get_ok(&path, Some(&hub.token)).await;
    assert_eq!(shown.json["status"], "decided");
    assert_eq!(shown.json["delivery"]["transport"], "pull");
    let kinds: Vec<&str> = shown
        .list("mailbox")
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["query", "decided"]);
    let documents = shown.list("documents");
    assert_eq!(documents.len(), 4, "{:#}", shown.json);
    for (content, served_as) in [
        (&png, "image/png"),
        (&jpeg, "image/jpeg"),
        (&html, "application/octet-stream"),
        (&pdf, "application/pdf"),
    ] {
        let document = documents
            .iter()
            .find(|d| d["sha512"] == to_hex(&openssl::sha::sha512(content)))
            .unwrap();
        let href = document["href"].as_str().unwrap();
        let download = api.get_ok(href, Some(&hub.token)).await;
        assert_eq!(&download.body, content);
        assert_eq!(download.header("content-type"), served_as);
        api.get_problems(&[
            (href, None, 401, "unauthorized"),
            (href, Some(OTHER_TOKEN), 404, "not-found"),
        ])
        .await;
    }
    api.get_ok(&format!("/api/v1/applications/{a2}"), Some(&hub.token))
        .await;
    api.get_problems(&[
        (
            &format!("{path}/documents/{}", new_id()),
            Some(&hub.token),
            404,
            "not-found",
        ),
        (&path, None, 401, "unauthorized"),
        (&path, Some(OTHER_TOKEN), 404, "not-found"),
        (
            &format!("/api/v1/applications/{}", new_id()),
            Some(&hub.token),
            404,
            "not-found",
        ),
        (
            "/api/v1/applications/not-an-id",
            Some(&hub.token),
            404,
            "not-found",
        ),
    ])
    .await;

    // The change feed: the decision of a1, with its mailbox entry, once it has settled
    // (a few seconds); nothing of it for another client; refused parameters.
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let decided_in_feed = loop {
        let feed = api
            .get_ok("/api/v1/changes?limit=500", Some(&hub.token))
            .await;
        let found = feed
            .list("changes")
            .iter()
            .find(|c| c["application"] == a1.as_str() && c["status"] == "decided");
        if let Some(change) = found {
            break change.clone();
        }
        assert!(
            std::time::Instant::now() < until,
            "no decision in the feed: {}",
            feed.json
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(decided_in_feed["mailbox"], true);
    let cursor = decided_in_feed["seq"].as_i64().unwrap();
    let after = api
        .get_ok(&format!("/api/v1/changes?after={cursor}"), Some(&hub.token))
        .await;
    assert!(
        after
            .list("changes")
            .iter()
            .all(|c| c["seq"].as_i64().unwrap() > cursor)
    );
    let other = api.get_ok("/api/v1/changes", Some(OTHER_TOKEN)).await;
    assert!(
        other
            .list("changes")
            .iter()
            .all(|c| c["application"] != a1.as_str()),
        "another client's feed shows a1: {}",
        other.json
    );
    api.get_problems(&[
        ("/api/v1/changes", None, 401, "unauthorized"),
        (
            "/api/v1/changes?after=-1",
            Some(&hub.token),
            400,
            "bad-query",
        ),
        (
            "/api/v1/changes?limit=0",
            Some(&hub.token),
            400,
            "bad-query",
        ),
        (
            "/api/v1/changes?limit=many",
            Some(&hub.token),
            400,
            "bad-query",
        ),
    ])
    .await;

    // The admin API: Chemnitz's application is a dead letter.
    hub.wait_for_status(&a3, "dead_lettered", Duration::from_secs(30))
        .await;
    let shown = api
        .get_ok(&format!("/api/v1/applications/{a3}"), Some(&hub.token))
        .await;
    assert_eq!(shown.json["delivery"]["attempts"], 3);
    let letters = api
        .get_ok("/api/v1/admin/deadletters", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(
        letters.json["dead_letters"][0]["application_id"],
        a3.as_str()
    );
    let letter = format!("/api/v1/admin/deadletters/{a3}");
    api.get_ok(&letter, Some(ADMIN_TOKEN)).await;
    api.get_problems(&[
        ("/api/v1/admin/deadletters", None, 401, "unauthorized"),
        (
            "/api/v1/admin/deadletters",
            Some(&hub.token),
            401,
            "unauthorized",
        ),
        (&letter, None, 401, "unauthorized"),
        (
            &format!("/api/v1/admin/deadletters/{}", new_id()),
            Some(ADMIN_TOKEN),
            404,
            "not-found",
        ),
        (
            "/api/v1/admin/deadletters/not-an-id",
            Some(ADMIN_TOKEN),
            404,
            "not-found",
        ),
    ])
    .await;
    let replay = format!("{letter}/replay");
    api.post_problems(&[
        (&replay, None, None, 401, "unauthorized"),
        (
            &format!("/api/v1/admin/deadletters/{a1}/replay"),
            Some(ADMIN_TOKEN),
            None,
            404,
            "not-found",
        ),
    ])
    .await;
    delete_queue(&broker, &chemnitz_queue).await;
    // An operator's action on Chemnitz's application (`path`, answering `done`) delivers
    // it again; the same action on every application of the procedure (`all`) then finds
    // none left.
    let redelivered = async |path: &str, done: &str, all: &str| {
        let answer = api.post_ok(path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(answer.json[done], true);
        hub.wait_for_status(&a3, "delivered", Duration::from_secs(30))
            .await;
        delete_queue(&broker, &chemnitz_queue).await;
        api.procedure_action_finds_none("chemnitz-maengel", all, done)
            .await;
    };
    redelivered(&replay, "replayed", "deadletters/replay").await;

    // Chemnitz's application is delivered and no one confirms it: not overdue yet (the
    // default deadline of amqp), but an operator may send it again all the same.
    let awaiting = api
        .get_ok(
            "/api/v1/admin/awaiting-receipt?procedure=chemnitz-maengel",
            Some(AUDITOR_TOKEN),
        )
        .await;
    assert_eq!(awaiting.json, json!({"awaiting_receipt": []}));
    problem(
        api.get("/api/v1/admin/awaiting-receipt", None).await,
        401,
        "unauthorized",
    );
    let resend = format!("/api/v1/admin/applications/{a3}/resend");
    api.post_problems(&[
        (&resend, None, None, 401, "unauthorized"),
        (&resend, Some(AUDITOR_TOKEN), None, 403, "forbidden"),
        (
            &format!("/api/v1/admin/applications/{a1}/resend"),
            Some(ADMIN_TOKEN),
            None,
            409,
            "nothing-to-resend",
        ),
        (
            "/api/v1/admin/applications/00000000-0000-4000-8000-000000000000/resend",
            Some(ADMIN_TOKEN),
            None,
            404,
            "not-found",
        ),
    ])
    .await;
    redelivered(&resend, "resent", "resend-overdue").await;

    // The admin console's API, by role.
    let found = api
        .get_ok(
            "/api/v1/admin/applications?service=99999001000000&limit=5",
            Some(ADMIN_TOKEN),
        )
        .await;
    assert!(!found.list("applications").is_empty());
    api.get_ok(
        "/api/v1/admin/applications?status=decided&procedure=dresden-maengel&receipt=K7QX-2M4P&from=2020-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
        Some(AUDITOR_TOKEN),
    )
    .await;
    let inspect = format!("/api/v1/admin/applications/{a1}");
    let inspected = api.get_ok(&inspect, Some(AUDITOR_TOKEN)).await;
    assert!(!inspected.list("audit").is_empty());
    api.get_ok(&format!("{inspect}/message"), Some(AUDITOR_TOKEN))
        .await;
    api.get_problems(&[
        (
            "/api/v1/admin/applications?from=gestern",
            Some(ADMIN_TOKEN),
            400,
            "bad-query",
        ),
        ("/api/v1/admin/applications", None, 401, "unauthorized"),
        (&inspect, None, 401, "unauthorized"),
        (
            &format!("/api/v1/admin/applications/{}", new_id()),
            Some(ADMIN_TOKEN),
            404,
            "not-found",
        ),
        (&format!("{inspect}/message"), None, 401, "unauthorized"),
        (
            &format!("/api/v1/admin/applications/{}/message", new_id()),
            Some(ADMIN_TOKEN),
            404,
            "not-found",
        ),
    ])
    .await;
    let retry = format!("{inspect}/retry");
    api.post_problems(&[
        (&retry, Some(AUDITOR_TOKEN), None, 403, "forbidden"),
        (&retry, None, None, 401, "unauthorized"),
        (&retry, Some(ADMIN_TOKEN), None, 409, "nothing-to-retry"),
        (
            "/api/v1/admin/applications/not-an-id/retry",
            Some(ADMIN_TOKEN),
            None,
            404,
            "not-found",
        ),
        (&replay, Some(AUDITOR_TOKEN), None, 403, "forbidden"),
    ])
    .await;
    let status = api
        .get_ok("/api/v1/admin/status", Some(AUDITOR_TOKEN))
        .await;
    assert!(!status.list("procedures").is_empty());
    problem(
        api.get("/api/v1/admin/status", None).await,
        401,
        "unauthorized",
    );

    // Reading the configuration again, as SIGHUP does: unchanged, then broken (a route
    // without its procedure), which is refused.
    let reloaded = api
        .post_ok("/api/v1/admin/reload", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(reloaded.json["routing"]["added"], json!([]));
    api.post_problems(&[
        ("/api/v1/admin/reload", None, None, 401, "unauthorized"),
        (
            "/api/v1/admin/reload",
            Some(AUDITOR_TOKEN),
            None,
            403,
            "forbidden",
        ),
    ])
    .await;
    let routing_file = hub.config_path().with_file_name("routing.toml");
    let routing = std::fs::read_to_string(&routing_file).unwrap();
    std::fs::write(
        &routing_file,
        format!("{routing}\n[[route]]\nservice = \"99999001000000\"\n"),
    )
    .unwrap();
    problem(
        api.post("/api/v1/admin/reload", Some(ADMIN_TOKEN), None)
            .await,
        422,
        "reload-refused",
    );
    std::fs::write(&routing_file, routing).unwrap();

    // A hub whose broker is unreachable is not ready.
    let unready = TestHub::start(HubSetup {
        amqp_url: UNREACHABLE_AMQP_URL.into(),
        ..HubSetup::default()
    })
    .await;
    let api = Api {
        hub: &unready,
        contract: &contract,
    };
    let not_ready = ok(api.get("/readyz", None).await, 503);
    assert_eq!(not_ready.json["ready"], false);
    // An application waiting for the broker: an operator asks for the next attempt now.
    let waiting = api
        .submit_accepted(&maengel(DRESDEN, "Ampel ausgefallen"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while unready.status(&waiting).await["delivery"]["last_error"].is_null() {
        assert!(Instant::now() < deadline, "no attempt yet");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (While an attempt holds the entry, the answer is 409: ask again.)
    let mut tries = 0;
    loop {
        let answer = api
            .post(
                &format!("/api/v1/admin/applications/{waiting}/retry"),
                Some(ADMIN_TOKEN),
                None,
            )
            .await;
        if answer.status == 200 {
            break;
        }
        problem(answer, 409, "nothing-to-retry");
        tries += 1;
        assert!(tries < 50, "the waiting entry was never free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A hub whose template fails its schema for one category (no fixture has it): the
    // application goes `invalid`, and an operator has it reprocessed.
    let mappings = kopplung_tests::mappings_copy();
    kopplung_tests::replace_in(
        &mappings.path().join("maengelanzeige/nachricht.xml.hbs"),
        "<beschreibung>",
        "{{#if (eq data.kategorie \"muell\")}}<hinweis/>{{/if}}<beschreibung>",
    );
    let failing = TestHub::start(HubSetup::with_mappings(mappings.path())).await;
    let api = Api {
        hub: &failing,
        contract: &contract,
    };
    let stuck = api
        .submit_accepted(&json!({"service": "99999001000000", "region": DRESDEN,
            "data": {"kategorie": "muell", "beschreibung": "Sperrmüll am Gehweg", "ort": {"strasse": "Terrassenufer"}}}))
        .await;
    failing
        .wait_for_status(&stuck, "invalid", Duration::from_secs(20))
        .await;
    let reprocess = format!("/api/v1/admin/applications/{stuck}/reprocess");
    api.post_problems(&[
        (&reprocess, Some(AUDITOR_TOKEN), None, 403, "forbidden"),
        (&reprocess, None, None, 401, "unauthorized"),
        (
            "/api/v1/admin/applications/not-an-id/reprocess",
            Some(ADMIN_TOKEN),
            None,
            404,
            "not-found",
        ),
    ])
    .await;
    let answer = api.post_ok(&reprocess, Some(ADMIN_TOKEN), None).await;
    assert_eq!(answer.json["reprocessing"], true);
    failing
        .wait_for_status(&stuck, "invalid", Duration::from_secs(20))
        .await;
    let waiting_one = format!("/api/v1/admin/applications/{waiting}/reprocess");
    let api = Api {
        hub: &unready,
        contract: &contract,
    };
    api.post_problems(&[(&waiting_one, Some(ADMIN_TOKEN), None, 409, "not-invalid")])
        .await;

    // A hub whose monitoring needs a token (`[monitoring] token_file`).
    let guarded = TestHub::start(HubSetup {
        extra_config: "[monitoring]\ntoken_file = \"admin-token\"\n".into(),
        ..HubSetup::default()
    })
    .await;
    let api = Api {
        hub: &guarded,
        contract: &contract,
    };
    for path in ["/metrics", "/readyz"] {
        problem(api.get(path, None).await, 401, "unauthorized");
        assert_ne!(api.get(path, Some(ADMIN_TOKEN)).await.status, 401);
    }

    contract.assert_all_seen();
}

/// The checks above can fail: the schemas are not vacuous once their `$ref`s resolve, and
/// paths and content types are matched as meant.
#[test]
fn the_contract_refuses_what_the_document_does_not_allow() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("router/openapi.json")).unwrap(),
    )
    .unwrap();
    let contract = Contract::new(doc, DOCUMENT_URI, NOT_PROVOKED);
    let accepted = json!({"$ref": "#/components/schemas/Accepted"});
    let valid = json!({"id": new_id(), "receipt": "K7QX-2M4P", "status": "accepted"});
    assert!(contract.validator(&accepted).is_valid(&valid));
    for (key, value) in [
        ("id", json!("not-a-uuid")),
        ("receipt", json!("K7QX2M4P")),
        ("status", json!("delivered")),
        ("extra", json!(1)),
    ] {
        let mut invalid = valid.clone();
        invalid[key] = value;
        assert!(
            !contract.validator(&accepted).is_valid(&invalid),
            "{invalid}"
        );
    }
    let not_found = &contract.doc["components"]["responses"]["NotFound"]["content"]["application/problem+json"]
        ["schema"];
    let problem = json!({"type": "urn:kopplung:problem:not-found", "title": "No such resource", "status": 404});
    assert!(contract.validator(not_found).is_valid(&problem));
    let mut wrong = problem.clone();
    wrong["status"] = json!(410);
    assert!(!contract.validator(not_found).is_valid(&wrong));
    // Nested: a field of a form field of a service.
    let services = json!({"$ref": "#/components/schemas/ServiceList"});
    let service = |field: Value| {
        json!({"services": [{"key": MAENGEL, "local_key": true, "name": "M", "description": "",
            "online": true, "attachments": {"max_count": 0, "max_bytes": 0, "media_types": []},
            "fields": [{"name": "ort", "label": "Ort", "type": "group", "required": true,
                        "fields": [field]}]}]})
    };
    let field = json!({"name": "strasse", "label": "Straße", "type": "text", "required": true});
    assert!(
        contract
            .validator(&services)
            .is_valid(&service(field.clone()))
    );
    let mut unknown_type = field;
    unknown_type["type"] = json!("textarea");
    assert!(
        !contract
            .validator(&services)
            .is_valid(&service(unknown_type))
    );

    assert_eq!(
        contract.template("/api/v1/procedures/p/messages/m/ack"),
        "/api/v1/procedures/{id}/messages/{message}/ack"
    );
    assert_eq!(
        contract.template("/api/v1/openapi.json"),
        "/api/v1/openapi.json"
    );
    assert_eq!(
        problem_types(&contract.doc, not_found),
        ["urn:kopplung:problem:not-found"]
    );
    assert!(media_matches("text/plain", "text/plain; charset=utf-8"));
    assert!(media_matches(
        "application/pkcs7-mime; smime-type=authEnveloped-data",
        "application/pkcs7-mime; smime-type=authenveloped-data"
    ));
    assert!(!media_matches(
        "application/pkcs7-mime; smime-type=authEnveloped-data",
        "application/pkcs7-mime"
    ));
    assert!(!media_matches(
        "application/json",
        "application/problem+json"
    ));
    assert!(registered_routes().contains(&("post".to_owned(), "/api/v1/applications".to_owned())));
}
