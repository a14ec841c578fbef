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

/// One endpoint: method, path, body, and the expected status per caller.
struct Endpoint {
    method: &'static str,
    path: String,
    body: Option<(Vec<u8>, &'static str)>,
    expected: fn(Caller) -> u16,
}

struct Row {
    endpoint: String,
    caller: String,
    expected: u16,
    actual: u16,
}

async fn call(hub: &TestHub, endpoint: &Endpoint, token: Option<&str>) -> u16 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
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
    let endpoints = vec![
        Endpoint {
            method: "POST",
            path: "/api/v1/attachments?filename=foto.png".into(),
            body: Some((b"\x89PNG\r\n\x1a\nfoto".to_vec(), "image/png")),
            expected: |c| match c {
                Owner | OtherClient => 201,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: format!("/api/v1/procedures/dresden-maengel/messages/{message}/attachments/1/1"),
            body: None,
            // The claim check: only the procedure the message is for.
            expected: |c| match c {
                OwnProcedure => 200,
                OtherProcedure => 403,
                _ => 401,
            },
        },
        Endpoint {
            method: "POST",
            path: "/api/v1/applications".into(),
            body: Some((report().to_string().into_bytes(), "application/json")),
            expected: |c| match c {
                Owner | OtherClient => 202,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: format!("/api/v1/applications/{id}"),
            body: None,
            expected: |c| match c {
                Owner => 200,
                OtherClient => 404,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: format!("/api/v1/applications/{id}/documents/{document}"),
            body: None,
            // No such document: the owner learns that, nobody else learns anything.
            expected: |c| match c {
                Owner | OtherClient => 404,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: "/api/v1/procedures/dresden-maengel/messages".into(),
            body: None,
            expected: |c| match c {
                OwnProcedure => 200,
                OtherProcedure => 403,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: format!("/api/v1/procedures/dresden-maengel/messages/{message}"),
            body: None,
            expected: |c| match c {
                OwnProcedure => 200,
                OtherProcedure => 403,
                _ => 401,
            },
        },
        Endpoint {
            method: "POST",
            path: format!("/api/v1/procedures/dresden-maengel/messages/{message}/ack"),
            body: Some((foreign_receipt.clone(), "application/pkcs7-mime")),
            // Even the procedure itself cannot acknowledge with a receipt it did not sign.
            expected: |c| match c {
                OwnProcedure => 403,
                OtherProcedure => 403,
                _ => 401,
            },
        },
        Endpoint {
            method: "POST",
            path: "/api/v1/procedures/dresden-maengel/events".into(),
            body: Some((foreign_receipt.clone(), "application/pkcs7-mime")),
            // Authenticated by the signature: without a token, or with the procedure's
            // own (which only raises the size limit), a foreign signature is refused;
            // any other token is refused before the body is read.
            expected: |c| match c {
                Nobody | OwnProcedure => 403,
                _ => 401,
            },
        },
        Endpoint {
            method: "POST",
            path: "/api/v1/procedures/dresden-maengel/receipts".into(),
            body: Some((foreign_receipt, "application/pkcs7-mime")),
            expected: |c| match c {
                Nobody | OwnProcedure => 403,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: "/api/v1/admin/applications".into(),
            body: None,
            expected: |c| match c {
                Operator | Auditor => 200,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: format!("/api/v1/admin/applications/{id}"),
            body: None,
            expected: |c| match c {
                Operator | Auditor => 200,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: format!("/api/v1/admin/applications/{id}/message"),
            body: None,
            expected: |c| match c {
                Operator | Auditor => 200,
                _ => 401,
            },
        },
        Endpoint {
            method: "POST",
            path: format!("/api/v1/admin/applications/{id}/retry"),
            body: None,
            // Nothing waits in the outbox (the message waits for pickup): 409 for the
            // operator; the auditor may not even ask.
            expected: |c| match c {
                Operator => 409,
                Auditor => 403,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: "/api/v1/admin/status".into(),
            body: None,
            expected: |c| match c {
                Operator | Auditor => 200,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: "/api/v1/admin/deadletters".into(),
            body: None,
            expected: |c| match c {
                Operator | Auditor => 200,
                _ => 401,
            },
        },
        Endpoint {
            method: "GET",
            path: format!("/api/v1/admin/deadletters/{id}"),
            body: None,
            expected: |c| match c {
                Operator | Auditor => 404,
                _ => 401,
            },
        },
        Endpoint {
            method: "POST",
            path: format!("/api/v1/admin/deadletters/{id}/replay"),
            body: None,
            expected: |c| match c {
                Operator => 404,
                Auditor => 403,
                _ => 401,
            },
        },
        // Web pages: bearer tokens are no sessions; without one, the way to the login.
        Endpoint {
            method: "GET",
            path: "/console".into(),
            body: None,
            expected: |_| 303,
        },
        Endpoint {
            method: "GET",
            path: format!("/console/applications/{id}"),
            body: None,
            expected: |_| 303,
        },
        Endpoint {
            method: "POST",
            path: format!("/console/applications/{id}/retry"),
            body: Some((b"csrf=x".to_vec(), "application/x-www-form-urlencoded")),
            // An action without a session is refused outright.
            expected: |_| 403,
        },
        Endpoint {
            method: "GET",
            path: "/inbox".into(),
            body: None,
            expected: |_| 303,
        },
        Endpoint {
            method: "GET",
            path: format!("/inbox/dresden-maengel/{message}"),
            body: None,
            expected: |_| 303,
        },
    ];

    let mut rows = Vec::new();
    for endpoint in &endpoints {
        for caller in CALLERS {
            let token = caller.token(&hub);
            let actual = call(&hub, endpoint, token.as_deref()).await;
            rows.push(Row {
                endpoint: format!("{} {}", endpoint.method, endpoint.path),
                caller: caller.name().into(),
                expected: (endpoint.expected)(caller),
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
        let endpoint = Endpoint {
            method: "GET",
            path: path.into(),
            body: None,
            expected: |_| 200,
        };
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
            (
                "actual",
                by_status
                    .iter()
                    .map(|(s, n)| format!("{s}:{n}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
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
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut rows = Vec::new();
    // Console login with each kind of token: only the operator's and the auditor's open it.
    for (caller, token, expected) in [
        ("wrong token", WRONG_TOKEN.to_owned(), 401),
        ("owning client", hub.token.clone(), 401),
        ("own procedure", DRESDEN_PULL_TOKEN.to_owned(), 401),
        ("operator", ADMIN_TOKEN.to_owned(), 303),
        ("auditor", AUDITOR_TOKEN.to_owned(), 303),
    ] {
        let (status, _) = console_login(&client, hub, &token).await;
        rows.push(Row {
            endpoint: "POST /console/login".into(),
            caller: caller.into(),
            expected,
            actual: status,
        });
    }
    // A forged session cookie.
    let forged = client
        .get(hub.url(&format!("/console/applications/{id}")))
        .header("cookie", "kopplung_console=forged-session-0123456789")
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16();
    rows.push(Row {
        endpoint: format!("GET /console/applications/{id}"),
        caller: "forged session cookie".into(),
        expected: 303,
        actual: forged,
    });
    // An auditor's real session and CSRF token, asking for an operator's action.
    let (_, cookies) = console_login(&client, hub, AUDITOR_TOKEN).await;
    let page = client
        .get(hub.url(&format!("/console/applications/{id}")))
        .header("cookie", &cookies)
        .send()
        .await
        .expect("page");
    let text = page.text().await.unwrap_or_default();
    let csrf = csrf_of(&text).unwrap_or_default();
    let retry = client
        .post(hub.url(&format!("/console/applications/{id}/retry")))
        .header("cookie", &cookies)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16();
    rows.push(Row {
        endpoint: format!("POST /console/applications/{id}/retry"),
        caller: "auditor session (with CSRF)".into(),
        expected: 403,
        actual: retry,
    });
    // Clerk inbox: a bearer token is no clerk password.
    let form = client
        .get(hub.url("/inbox/login"))
        .send()
        .await
        .expect("login form");
    let cookies = cookie_header(form.headers());
    let text = form.text().await.unwrap_or_default();
    let csrf = csrf_of(&text).unwrap_or_default();
    let login = client
        .post(hub.url("/inbox/login"))
        .header("cookie", &cookies)
        .form(&[
            ("clerk", "demo-sachbearbeitung"),
            ("password", ADMIN_TOKEN),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("answer");
    let status = login.status().as_u16();
    let session = login.headers().get_all("set-cookie").iter().any(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("kopplung_inbox=")
    });
    rows.push(Row {
        endpoint: "POST /inbox/login".into(),
        caller: "operator token as clerk password".into(),
        expected: 401,
        // A session cookie is a way in, whatever the status says.
        actual: if session { 303 } else { status },
    });
    rows
}

fn csrf_of(text: &str) -> Option<String> {
    let at = text.find("name=\"csrf\" value=\"")?;
    let rest = &text[at + "name=\"csrf\" value=\"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn cookie_header(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Logs in to the console with `token`; the status and the cookies afterwards.
async fn console_login(client: &reqwest::Client, hub: &TestHub, token: &str) -> (u16, String) {
    let form = client
        .get(hub.url("/console/login"))
        .send()
        .await
        .expect("login form");
    let cookies = cookie_header(form.headers());
    let text = form.text().await.unwrap_or_default();
    let csrf = csrf_of(&text).unwrap_or_default();
    let answer = client
        .post(hub.url("/console/login"))
        .header("cookie", &cookies)
        .form(&[("token", token), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("answer");
    let status = answer.status().as_u16();
    let session = cookie_header(answer.headers());
    (status, session)
}
