//! The authorisation matrix (issue #10): every endpoint of the hub tried with no
//! credentials, a wrong token, the owning client's, another client's, a procedure's own
//! and another procedure's token, and the operator's and the auditor's; prints the table
//! (endpoint, caller, expected, actual) and fails on any mismatch.
//!
//! Portal pages (citizen A vs. citizen B) are not in the router: `portal_rows` is where
//! they join the table once the portal serves them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kopplung_tests::browser::{Browser, csrf_of};
use kopplung_tests::faults::summary;
use kopplung_tests::{
    ADMIN_TOKEN, AUDITOR_TOKEN, HubSetup, OTHER_TOKEN, TestHub, deliver_over, sign_cms_receipt,
    token_sha256,
};
use serde_json::{Value, json};

const DRESDEN_PULL_TOKEN: &str = "pull-token-dresden-0123456789abcdef";
const LEIPZIG_PULL_TOKEN: &str = "pull-token-leipzig-0123456789abcdef";
const WRONG_TOKEN: &str = "wrong-token-0123456789abcdef0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Nobody,
    Wrong,
    Owner,
    OtherClient,
    OwnProcedure,
    OtherProcedure,
    Operator,
    Auditor,
}

const CALLERS: [Caller; 8] = [
    Caller::Nobody,
    Caller::Wrong,
    Caller::Owner,
    Caller::OtherClient,
    Caller::OwnProcedure,
    Caller::OtherProcedure,
    Caller::Operator,
    Caller::Auditor,
];

impl Caller {
    fn token(self, hub: &TestHub) -> Option<String> {
        match self {
            Caller::Nobody => None,
            Caller::Wrong => Some(WRONG_TOKEN.into()),
            Caller::Owner => Some(hub.token.clone()),
            Caller::OtherClient => Some(OTHER_TOKEN.into()),
            Caller::OwnProcedure => Some(DRESDEN_PULL_TOKEN.into()),
            Caller::OtherProcedure => Some(LEIPZIG_PULL_TOKEN.into()),
            Caller::Operator => Some(ADMIN_TOKEN.into()),
            Caller::Auditor => Some(AUDITOR_TOKEN.into()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Caller::Nobody => "no credentials",
            Caller::Wrong => "wrong token",
            Caller::Owner => "owning client",
            Caller::OtherClient => "another client",
            Caller::OwnProcedure => "own procedure",
            Caller::OtherProcedure => "another procedure",
            Caller::Operator => "operator",
            Caller::Auditor => "auditor",
        }
    }
}

/// One endpoint: method, path, body, and the expected status per caller: `default`
/// unless `overrides` names the caller.
struct Endpoint {
    method: &'static str,
    path: String,
    body: Option<(Vec<u8>, &'static str)>,
    default: u16,
    overrides: &'static [(Caller, u16)],
}

impl Endpoint {
    fn expected(&self, caller: Caller) -> u16 {
        self.overrides
            .iter()
            .find(|(c, _)| *c == caller)
            .map_or(self.default, |(_, status)| *status)
    }
}

fn get(path: impl Into<String>, default: u16, overrides: &'static [(Caller, u16)]) -> Endpoint {
    Endpoint {
        method: "GET",
        path: path.into(),
        body: None,
        default,
        overrides,
    }
}

fn post(
    path: impl Into<String>,
    body: Option<(Vec<u8>, &'static str)>,
    default: u16,
    overrides: &'static [(Caller, u16)],
) -> Endpoint {
    Endpoint {
        method: "POST",
        path: path.into(),
        body,
        default,
        overrides,
    }
}

struct Row {
    endpoint: String,
    caller: String,
    expected: u16,
    actual: u16,
}

async fn call(hub: &TestHub, endpoint: &Endpoint, token: Option<&str>) -> u16 {
    let client = kopplung_tests::browser::no_redirects();
    let url = hub.url(&endpoint.path);
    let mut request = match endpoint.method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some((body, content_type)) = &endpoint.body {
        request = request
            .header("content-type", *content_type)
            .body(body.clone());
    }
    request
        .send()
        .await
        .expect("the hub answers")
        .status()
        .as_u16()
}

fn report() -> Value {
    json!({"service": "99999001000000", "region": "146120000000",
           "data": {"kategorie": "muell", "beschreibung": "Sperrmüll am Gehweg", "ort": {"strasse": "Prager Straße"}}})
}

/// Rows for the citizens' portal (citizen A's pages and documents tried as citizen B,
/// without a session, with a forged session): the portal is a separate service built
/// on the router's public API, so its rows join here when it serves pages.
fn portal_rows() -> Vec<Row> {
    Vec::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_denies_whoever_must_be_denied() {
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(Arc::new(|routing| {
            let routing = deliver_over(
                &routing,
                "dresden-maengel",
                &format!(
                    "transport = \"pull\"\ntoken_sha256 = \"{}\"",
                    token_sha256(DRESDEN_PULL_TOKEN)
                ),
            );
            deliver_over(
                &routing,
                "leipzig-maengel",
                &format!(
                    "transport = \"pull\"\ntoken_sha256 = \"{}\"",
                    token_sha256(LEIPZIG_PULL_TOKEN)
                ),
            )
        })),
        ..HubSetup::default()
    })
    .await;
    // The owner's application with a photo, waiting for its procedure to collect it.
    let mut owned = report();
    owned["attachments"] = json!([{
        "filename": "sperrmuell.png",
        "media_type": "image/png",
        "content_base64": "iVBORw0KGgoAAAANSUhEUg==",
    }]);
    let id = hub.submit_accepted(&owned, None).await;
    let status = hub
        .wait_for_status(&id, "prepared", Duration::from_secs(30))
        .await;
    let message = status["delivery"]["message_id"]
        .as_str()
        .expect("message id")
        .to_owned();
    let document = uuid::Uuid::new_v4();
    // A receipt signed by another procedure (Leipzig's key) for Dresden's message.
    let foreign_receipt = sign_cms_receipt(
        &hub.pki_dir(),
        "leipzig-maengel",
        &json!({"receipt_id": "fremd-1", "message_id": message, "type": "accept"}),
    );

    use Caller::*;
    const ADMINS_READ: &[(Caller, u16)] = &[(Operator, 200), (Auditor, 200)];
    const THE_PROCEDURE: &[(Caller, u16)] = &[(OwnProcedure, 200), (OtherProcedure, 403)];
    let endpoints = vec![
        post(
            "/api/v1/attachments?filename=foto.png",
            Some((b"\x89PNG\r\n\x1a\nfoto".to_vec(), "image/png")),
            401,
            &[(Owner, 201), (OtherClient, 201)],
        ),
        // The claim check: only the procedure the message is for.
        get(
            format!("/api/v1/procedures/dresden-maengel/messages/{message}/attachments/1/1"),
            401,
            THE_PROCEDURE,
        ),
        post(
            "/api/v1/applications",
            Some((report().to_string().into_bytes(), "application/json")),
            401,
            &[(Owner, 202), (OtherClient, 202)],
        ),
        get(
            format!("/api/v1/applications/{id}"),
            401,
            &[(Owner, 200), (OtherClient, 404)],
        ),
        // A follow-up message: the owner is told it is too early (the procedure has not
        // collected the application yet), another client learns nothing.
        post(
            format!("/api/v1/applications/{id}/messages"),
            Some((
                json!({"kind": "nachreichung", "attachments": [{"filename": "nachtrag.png",
                    "media_type": "image/png", "content_base64": "iVBORw0KGgoAAAANSUhEUg=="}]})
                .to_string()
                .into_bytes(),
                "application/json",
            )),
            401,
            &[(Owner, 409), (OtherClient, 404)],
        ),
        // The change feed: every client its own (another's changes are not in it,
        // tests/tests/openapi.rs).
        get("/api/v1/changes", 401, &[(Owner, 200), (OtherClient, 200)]),
        // No such document: the owner learns that, nobody else learns anything.
        get(
            format!("/api/v1/applications/{id}/documents/{document}"),
            401,
            &[(Owner, 404), (OtherClient, 404)],
        ),
        get(
            "/api/v1/procedures/dresden-maengel/messages",
            401,
            THE_PROCEDURE,
        ),
        get(
            format!("/api/v1/procedures/dresden-maengel/messages/{message}"),
            401,
            THE_PROCEDURE,
        ),
        // Even the procedure itself cannot acknowledge with a receipt it did not sign.
        post(
            format!("/api/v1/procedures/dresden-maengel/messages/{message}/ack"),
            Some((foreign_receipt.clone(), "application/pkcs7-mime")),
            401,
            &[(OwnProcedure, 403), (OtherProcedure, 403)],
        ),
        // Authenticated by the signature: without a token, or with the procedure's
        // own (which only raises the size limit), a foreign signature is refused;
        // any other token is refused before the body is read.
        post(
            "/api/v1/procedures/dresden-maengel/events",
            Some((foreign_receipt.clone(), "application/pkcs7-mime")),
            401,
            &[(Nobody, 403), (OwnProcedure, 403)],
        ),
        post(
            "/api/v1/procedures/dresden-maengel/receipts",
            Some((foreign_receipt.clone(), "application/pkcs7-mime")),
            401,
            &[(Nobody, 403), (OwnProcedure, 403)],
        ),
        post(
            "/api/v1/procedures/dresden-maengel/events/check",
            Some((foreign_receipt, "application/pkcs7-mime")),
            401,
            &[(Nobody, 403), (OwnProcedure, 403)],
        ),
        get("/api/v1/admin/applications", 401, ADMINS_READ),
        get(format!("/api/v1/admin/applications/{id}"), 401, ADMINS_READ),
        get(
            format!("/api/v1/admin/applications/{id}/message"),
            401,
            ADMINS_READ,
        ),
        // Nothing waits in the outbox (the message waits for pickup): 409 for the
        // operator; the auditor may not even ask.
        post(
            format!("/api/v1/admin/applications/{id}/retry"),
            None,
            401,
            &[(Operator, 409), (Auditor, 403)],
        ),
        get("/api/v1/admin/status", 401, ADMINS_READ),
        get("/api/v1/admin/deadletters", 401, ADMINS_READ),
        get(
            format!("/api/v1/admin/deadletters/{id}"),
            401,
            &[(Operator, 404), (Auditor, 404)],
        ),
        post(
            format!("/api/v1/admin/deadletters/{id}/replay"),
            None,
            401,
            &[(Operator, 404), (Auditor, 403)],
        ),
        // Every dead letter of a procedure (none here): operators only.
        post(
            "/api/v1/admin/procedures/dresden-maengel/deadletters/replay",
            None,
            401,
            &[(Operator, 200), (Auditor, 403)],
        ),
        // Delivered without a receipt past the deadline: read by both admin roles; a
        // resend by operators only (this message waits for pickup: nothing to resend).
        get("/api/v1/admin/awaiting-receipt", 401, ADMINS_READ),
        post(
            format!("/api/v1/admin/applications/{id}/resend"),
            None,
            401,
            &[(Operator, 409), (Auditor, 403)],
        ),
        post(
            "/api/v1/admin/procedures/dresden-maengel/resend-overdue",
            None,
            401,
            &[(Operator, 200), (Auditor, 403)],
        ),
        get("/console", 303, &[]),
        get(format!("/console/applications/{id}"), 303, &[]),
        // An action without a session is refused outright.
        post(
            format!("/console/applications/{id}/retry"),
            Some((b"csrf=x".to_vec(), "application/x-www-form-urlencoded")),
            403,
            &[],
        ),
        get("/console/awaiting-receipt", 303, &[]),
        post(
            format!("/console/applications/{id}/resend"),
            Some((b"csrf=x".to_vec(), "application/x-www-form-urlencoded")),
            403,
            &[],
        ),
        post(
            "/console/procedures/dresden-maengel/resend-overdue",
            Some((b"csrf=x".to_vec(), "application/x-www-form-urlencoded")),
            403,
            &[],
        ),
        get("/inbox", 303, &[]),
        get(format!("/inbox/dresden-maengel/{message}"), 303, &[]),
    ];

    let mut rows = Vec::new();
    for endpoint in &endpoints {
        for caller in CALLERS {
            let token = caller.token(&hub);
            let actual = call(&hub, endpoint, token.as_deref()).await;
            rows.push(Row {
                endpoint: format!("{} {}", endpoint.method, endpoint.path),
                caller: caller.name().into(),
                expected: endpoint.expected(caller),
                actual,
            });
        }
    }
    rows.extend(session_rows(&hub, &id).await);
    rows.extend(portal_rows());

    // Public by design: no personal data, no actions.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/services",
        "/api/v1/openapi.json",
    ] {
        let endpoint = get(path, 200, &[]);
        rows.push(Row {
            endpoint: format!("GET {path} (public)"),
            caller: Nobody.name().into(),
            expected: 200,
            actual: call(&hub, &endpoint, None).await,
        });
    }

    let mismatches: Vec<&Row> = rows.iter().filter(|r| r.expected != r.actual).collect();
    let mut table = format!(
        "{:<100} {:<28} {:>8} {:>6}\n",
        "endpoint", "caller", "expected", "actual"
    );
    for row in &rows {
        table.push_str(&format!(
            "{:<100} {:<28} {:>8} {:>6}{}\n",
            row.endpoint,
            row.caller,
            row.expected,
            row.actual,
            if row.expected == row.actual {
                ""
            } else {
                "  MISMATCH"
            }
        ));
    }
    println!("{table}");
    let denied = rows
        .iter()
        .filter(|r| matches!(r.expected, 303 | 401 | 403 | 404))
        .count();
    let by_status: BTreeMap<u16, usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.actual).or_default() += 1;
        m
    });
    summary(
        "authz-matrix",
        &[
            ("endpoints", (endpoints.len() + 5).to_string()),
            ("rows", rows.len().to_string()),
            ("must_deny", denied.to_string()),
            ("mismatches", mismatches.len().to_string()),
            ("actual", kopplung_tests::faults::counts(&by_status)),
        ],
    );
    assert!(
        mismatches.is_empty(),
        "authorisation mismatches:\n{}",
        mismatches
            .iter()
            .map(|r| format!(
                "{} as {}: expected {}, got {}",
                r.endpoint, r.caller, r.expected, r.actual
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The web pages with sessions: whose token opens the console, a forged session cookie,
/// an auditor's session trying an operator's action, a clerk login with a token.
async fn session_rows(hub: &TestHub, id: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut row = |endpoint: String, caller: &str, expected: u16, actual: u16| {
        rows.push(Row {
            endpoint,
            caller: caller.into(),
            expected,
            actual,
        })
    };
    // Console login with each kind of token: only the operator's and the auditor's open it.
    for (caller, token, expected) in [
        ("wrong token", WRONG_TOKEN.to_owned(), 401),
        ("owning client", hub.token.clone(), 401),
        ("own procedure", DRESDEN_PULL_TOKEN.to_owned(), 401),
        ("operator", ADMIN_TOKEN.to_owned(), 303),
        ("auditor", AUDITOR_TOKEN.to_owned(), 303),
    ] {
        let page = Browser::new(hub)
            .log_in("/console/login", &[("token", &token)])
            .await;
        row(
            "POST /console/login".into(),
            caller,
            expected,
            page.status.as_u16(),
        );
    }
    let application = format!("/console/applications/{id}");
    // A forged session cookie.
    let mut forger = Browser::new(hub);
    forger.cookies.insert(
        "kopplung_console".into(),
        "forged-session-0123456789".into(),
    );
    let forged = forger.get(&application).await.status.as_u16();
    row(
        format!("GET {application}"),
        "forged session cookie",
        303,
        forged,
    );
    // An auditor's real session and CSRF token, asking for an operator's action.
    let mut auditor = Browser::new(hub);
    auditor
        .log_in("/console/login", &[("token", AUDITOR_TOKEN)])
        .await;
    let csrf = csrf_of(&auditor.get(&application).await.text()).unwrap_or_default();
    let retry = auditor
        .post(&format!("{application}/retry"), &[("csrf", &csrf)])
        .await;
    row(
        format!("POST {application}/retry"),
        "auditor session (with CSRF)",
        403,
        retry.status.as_u16(),
    );
    for action in [
        format!("{application}/resend"),
        "/console/procedures/dresden-maengel/resend-overdue".to_owned(),
    ] {
        let refused = auditor.post(&action, &[("csrf", &csrf)]).await;
        row(
            format!("POST {action}"),
            "auditor session (with CSRF)",
            403,
            refused.status.as_u16(),
        );
    }
    // Clerk inbox: a bearer token is no clerk password.
    let mut clerk = Browser::new(hub);
    let login = clerk.inbox_login("demo-sachbearbeitung", ADMIN_TOKEN).await;
    // A session cookie is a way in, whatever the status says.
    let session = clerk.cookies.contains_key("kopplung_inbox");
    row(
        "POST /inbox/login".into(),
        "operator token as clerk password",
        401,
        if session { 303 } else { login.status.as_u16() },
    );
    rows
}

/// The expected status per caller (401 for a caller not named).
type Expect = &'static [(FitCaller, u16)];
/// Method, path, body with its content type, and what each caller gets.
type FitEndpoint = (&'static str, String, Option<(String, &'static str)>, Expect);

/// Who calls the FIT-Connect edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FitCaller {
    Nobody,
    /// A JWT of the right shape, signed with another key.
    Forged,
    /// The bearer token of a client of the hub's own API: no FIT-Connect token.
    ApiClient,
    Sender,
    /// A sender whose scope reaches no destination.
    ForeignSender,
    /// The subscriber of the destination the application went to.
    OwnSubscriber,
    /// The subscriber of another destination.
    OtherSubscriber,
}

const FIT_CALLERS: [FitCaller; 7] = [
    FitCaller::Nobody,
    FitCaller::Forged,
    FitCaller::ApiClient,
    FitCaller::Sender,
    FitCaller::ForeignSender,
    FitCaller::OwnSubscriber,
    FitCaller::OtherSubscriber,
];

/// A compact JWS `header.payload.signature` with `claims`, its signature made with
/// HMAC-SHA256 and `key` (the hub's tokens, or a forged one).
fn hs256(claims: &Value, key: &[u8]) -> String {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let key = openssl::pkey::PKey::hmac(key).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    signer.update(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&signer.sign_to_vec().unwrap()))
}

/// The FIT-Connect edge (docs/fit-connect.md): every endpoint tried with no token, a
/// forged one, the hub API's own client token, a sender's, a sender without the
/// destination in its scope, the destination's subscriber and another destination's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fitconnect_endpoint_denies_whoever_must_be_denied() {
    use kopplung_tests::fitconnect::{
        FOREIGN_ID, FOREIGN_SECRET, SENDER_ID, SENDER_SECRET, destination_of, subscriber_id,
        subscriber_secret,
    };
    let hub = TestHub::start(HubSetup {
        fitconnect: vec!["dresden-maengel", "leipzig-maengel"],
        fitconnect_subscribers: vec!["dresden-maengel", "leipzig-maengel"],
        ..HubSetup::default()
    })
    .await;
    let routing = std::fs::read_to_string(hub.routing_path()).unwrap();
    let dresden = destination_of(&routing, "dresden-maengel");
    // An application with a photo for Dresden's subscriber, waiting to be collected.
    let mut owned = report();
    owned["attachments"] = json!([{
        "filename": "sperrmuell.png",
        "media_type": "image/png",
        "content_base64": "iVBORw0KGgoAAAANSUhEUg==",
    }]);
    let id = hub.submit_accepted(&owned, None).await;
    hub.wait_for_status(&id, "prepared", Duration::from_secs(30))
        .await;
    let submission = uuid::Uuid::parse_str(&id).unwrap();
    let case = kopplung_core::fitconnect::case_of(submission);
    let attachment = kopplung_core::fitconnect::attachment_id(submission, 0);

    let mut tokens = BTreeMap::new();
    tokens.insert(
        "sender",
        kopplung_tests::fitconnect::access_token(&hub, SENDER_ID, SENDER_SECRET).await,
    );
    tokens.insert(
        "foreign",
        kopplung_tests::fitconnect::access_token(&hub, FOREIGN_ID, FOREIGN_SECRET).await,
    );
    for procedure in ["dresden-maengel", "leipzig-maengel"] {
        let token = kopplung_tests::fitconnect::access_token(
            &hub,
            &subscriber_id(procedure),
            &subscriber_secret(procedure),
        )
        .await;
        tokens.insert(procedure, token);
    }
    let forged = hs256(
        &json!({"iss": "kopplung-fitconnect", "sub": SENDER_ID, "scope": "send:region:DE",
                "exp": kopplung_tests::now_unix() + 600}),
        b"not-the-hub-s-token-key-0123456789abcdef",
    );
    let token_of = |caller: FitCaller| -> Option<String> {
        match caller {
            FitCaller::Nobody => None,
            FitCaller::Forged => Some(forged.clone()),
            FitCaller::ApiClient => Some(hub.token.clone()),
            FitCaller::Sender => Some(tokens["sender"].clone()),
            FitCaller::ForeignSender => Some(tokens["foreign"].clone()),
            FitCaller::OwnSubscriber => Some(tokens["dresden-maengel"].clone()),
            FitCaller::OtherSubscriber => Some(tokens["leipzig-maengel"].clone()),
        }
    };
    // The sender's own announcement (without attachments), for the PUTs.
    let announced: Value = reqwest::Client::new()
        .post(hub.url("/fitconnect/v1/submissions"))
        .bearer_auth(&tokens["sender"])
        .json(&json!({"destinationId": dresden, "announcedAttachments": [],
                      "serviceType": {"name": "Mängelanzeige", "identifier": "urn:de:fim:leika:leistung:99999001000000"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let announced = announced["submissionId"].as_str().unwrap().to_owned();
    let kid = reqwest::Client::new()
        .get(hub.url(&format!("/fitconnect/v1/destinations/{dresden}")))
        .bearer_auth(&tokens["sender"])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["encryptionKid"]
        .as_str()
        .unwrap()
        .to_owned();
    // An event of the right shape whose signature is not the subscriber's.
    let event = {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let claims = json!({"jti": uuid::Uuid::new_v4().to_string(), "iss": dresden,
            "iat": kopplung_tests::now_unix(), "sub": format!("submission:{id}"),
            "txn": format!("case:{case}"),
            "events": {"https://schema.fitko.de/fit-connect/events/accept-submission": {}}});
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"PS512","typ":"secevent+jwt"}"#),
            b64(claims.to_string().as_bytes()),
            b64(b"not a signature")
        )
    };
    let announce_body = json!({"destinationId": dresden, "announcedAttachments": [],
        "serviceType": {"name": "", "identifier": "urn:de:fim:leika:leistung:99999001000000"}})
    .to_string();

    use FitCaller::*;
    const ANY_FIT_TOKEN: Expect = &[
        (Sender, 200),
        (ForeignSender, 200),
        (OwnSubscriber, 200),
        (OtherSubscriber, 200),
    ];
    const THE_SUBSCRIBER: Expect = &[
        (Sender, 403),
        (ForeignSender, 403),
        (OwnSubscriber, 200),
        (OtherSubscriber, 404),
    ];
    let endpoints: Vec<FitEndpoint> = vec![
        (
            "GET",
            format!("/fitconnect/v1/destinations/{dresden}"),
            None,
            ANY_FIT_TOKEN,
        ),
        (
            "GET",
            format!("/fitconnect/v1/destinations/{dresden}/keys/{kid}"),
            None,
            ANY_FIT_TOKEN,
        ),
        (
            "POST",
            "/fitconnect/v1/submissions".into(),
            Some((announce_body, "application/json")),
            &[
                (Sender, 201),
                (ForeignSender, 403),
                (OwnSubscriber, 403),
                (OtherSubscriber, 403),
            ],
        ),
        // Another sender's announcement does not exist for the foreign sender.
        (
            "PUT",
            format!("/fitconnect/v1/submissions/{announced}"),
            Some(("{}".into(), "application/json")),
            &[
                (Sender, 400),
                (ForeignSender, 404),
                (OwnSubscriber, 403),
                (OtherSubscriber, 403),
            ],
        ),
        (
            "PUT",
            format!("/fitconnect/v1/submissions/{announced}/attachments/{attachment}"),
            Some(("a.b.c.d.e".into(), "application/jose")),
            &[
                (Sender, 422),
                (ForeignSender, 404),
                (OwnSubscriber, 403),
                (OtherSubscriber, 403),
            ],
        ),
        (
            "GET",
            "/fitconnect/v1/submissions".into(),
            None,
            &[
                (Sender, 403),
                (ForeignSender, 403),
                (OwnSubscriber, 200),
                (OtherSubscriber, 200),
            ],
        ),
        (
            "GET",
            format!("/fitconnect/v1/submissions/{id}"),
            None,
            THE_SUBSCRIBER,
        ),
        (
            "GET",
            format!("/fitconnect/v1/submissions/{id}/attachments/{attachment}"),
            None,
            THE_SUBSCRIBER,
        ),
        // The signature decides, not the token: even the subscriber's own is refused.
        (
            "POST",
            format!("/fitconnect/v1/cases/{case}/events"),
            Some((event, "application/jose")),
            &[
                (Sender, 403),
                (ForeignSender, 403),
                (OwnSubscriber, 403),
                (OtherSubscriber, 404),
            ],
        ),
        // The case's subscriber; a sender only for its own submissions.
        (
            "GET",
            format!("/fitconnect/v1/cases/{case}/events"),
            None,
            &[
                (Sender, 404),
                (ForeignSender, 404),
                (OwnSubscriber, 200),
                (OtherSubscriber, 404),
            ],
        ),
    ];
    let client = reqwest::Client::new();
    let mut rows = Vec::new();
    for (method, path, body, expect) in &endpoints {
        for caller in FIT_CALLERS {
            let expected = expect
                .iter()
                .find(|(c, _)| *c == caller)
                .map_or(401, |(_, status)| *status);
            let url = hub.url(path);
            let mut request = match *method {
                "GET" => client.get(url),
                "PUT" => client.put(url),
                _ => client.post(url),
            };
            if let Some(token) = token_of(caller) {
                request = request.bearer_auth(token);
            }
            if let Some((body, content_type)) = body {
                request = request
                    .header("content-type", *content_type)
                    .body(body.clone());
            }
            let actual = request.send().await.unwrap().status().as_u16();
            rows.push(Row {
                endpoint: format!("{method} {path}"),
                caller: format!("{caller:?}"),
                expected,
                actual,
            });
        }
    }
    // The token endpoint: a wrong secret, another client's secret.
    for (caller, client_id, secret, expected) in [
        ("wrong secret", SENDER_ID, "wrong-secret-0123456789", 401),
        ("another client's secret", SENDER_ID, FOREIGN_SECRET, 401),
        ("its own secret", SENDER_ID, SENDER_SECRET, 200),
    ] {
        let actual = client
            .post(hub.url("/fitconnect/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        rows.push(Row {
            endpoint: "POST /fitconnect/token".into(),
            caller: caller.into(),
            expected,
            actual,
        });
    }
    // Public by design, as FIT-Connect's: the route lookup and the data's schemas.
    for path in [
        "/fitconnect/v1/routes?leikaKey=99999001000000&ars=146120000000".to_owned(),
        "/fitconnect/v1/schemas/99999001000000.schema.json".to_owned(),
    ] {
        let actual = client
            .get(hub.url(&path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        rows.push(Row {
            endpoint: format!("GET {path} (public)"),
            caller: "no credentials".into(),
            expected: 200,
            actual,
        });
    }
    let mismatches: Vec<String> = rows
        .iter()
        .filter(|r| r.expected != r.actual)
        .map(|r| {
            format!(
                "{} as {}: expected {}, got {}",
                r.endpoint, r.caller, r.expected, r.actual
            )
        })
        .collect();
    for row in &rows {
        println!(
            "{:<100} {:<24} {:>8} {:>6}",
            row.endpoint, row.caller, row.expected, row.actual
        );
    }
    summary(
        "authz-matrix-fitconnect",
        &[
            ("rows", rows.len().to_string()),
            ("mismatches", mismatches.len().to_string()),
        ],
    );
    assert!(
        mismatches.is_empty(),
        "FIT-Connect authorisation mismatches:\n{}",
        mismatches.join("\n")
    );
}
