//! The admin console (`/console`): operators and auditors sign in with their admin
//! token, search applications, read one's delivery, history and audit trail, view its
//! transformed XML — recorded before it is shown, and shown escaped —, and (operators
//! only) ask for the next attempt now or replay a dead letter. Real hub process, real
//! HTTP, cookies by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use kopplung_tests::browser::{Browser, Page, assert_page, assert_security_headers};
use kopplung_tests::pki::{Role, issue};
use kopplung_tests::shared::{assert_contains_all, assert_contains_none};
use kopplung_tests::{
    ADMIN_TOKEN, AUDITOR_TOKEN, HubSetup, TestHub, amqp, delete_queue, deliver_over, plain_http,
};
use serde_json::{Value, json};

const SCRIPT: &str = "<script>alert(1)</script>";
/// Form data that may appear on the XML page only.
const MARKER: &str = "Laterne flackert seit Dienstag 7731";

fn report(region: &str, text: &str) -> Value {
    json!({"service": "99999001000000", "region": region,
           "data": {"kategorie": "muell", "beschreibung": text, "ort": {"strasse": "Markt"}}})
}

/// The console's login form, filled in.
trait ConsoleLogin: Sized {
    async fn login(&mut self, token: &str) -> Page;
    async fn sign_in(hub: &TestHub, token: &str) -> Self;
}

impl ConsoleLogin for Browser {
    /// Opens the login form and submits `token`.
    async fn login(&mut self, token: &str) -> Page {
        self.log_in("/console/login", &[("token", token)]).await
    }

    /// Signs in and expects the way to the search page.
    async fn sign_in(hub: &TestHub, token: &str) -> Self {
        let mut browser = Self::new(hub);
        let page = browser.login(token).await;
        assert_eq!(page.status, 303, "{}", page.text());
        assert_eq!(page.header("location"), "/console");
        assert!(browser.cookies.contains_key("kopplung_console"));
        browser
    }
}

/// Opens `path`: an accessible page (200) that shows each of `shown`.
async fn page_showing(browser: &mut Browser, path: &str, shown: &[&str]) -> Page {
    let page = browser.get(path).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_page(&page);
    assert_contains_all(&page.text(), shown);
    page
}

/// Presses an operator's button (`action` on the application page `path`) with the
/// form's token: it must lead back to the page with the note `note`. The answer.
async fn press(operator: &mut Browser, path: &str, action: &str, csrf: &str, note: &str) -> Page {
    let page = operator
        .post(&format!("{path}/{action}"), &[("csrf", csrf)])
        .await;
    assert_eq!(page.status, 303, "{}", page.text());
    assert_eq!(page.header("location"), format!("{path}?hinweis={note}"));
    page
}

/// The application's history as the submitting client sees it.
async fn history(hub: &TestHub, id: &str) -> Vec<String> {
    let status = hub.status(id).await;
    kopplung_tests::shared::history(&status, "detail")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn auditors_search_and_read_and_every_xml_view_is_recorded_first() {
    let broker = amqp().await;
    let hub = TestHub::start(HubSetup::default()).await;
    let description = format!("{MARKER} {SCRIPT} & mehr");
    let id = hub
        .submit_accepted(&report("146120000000", &description), None)
        .await;
    let delivered = hub
        .wait_for_status(&id, "delivered", Duration::from_secs(30))
        .await;
    let receipt = delivered["receipt"].as_str().expect("receipt").to_owned();
    let detail_path = format!("/console/applications/{id}");

    // Without a session: to the login; POSTs are refused; the stylesheet is served.
    let mut nobody = Browser::new(&hub);
    for path in [
        "/console",
        detail_path.as_str(),
        "/console/status",
        "/console/deadletters",
        "/console/unbekannt",
    ] {
        let page = nobody.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.header("location"), "/console/login", "{path}");
        assert_security_headers(&page);
    }
    let refused = nobody
        .post(&format!("{detail_path}/xml"), &[("csrf", "x")])
        .await;
    assert_eq!(refused.status, 403);
    let css = nobody.get("/console/console.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    let form = nobody.get("/console/login").await;
    assert_page(&form);
    kopplung_tests::assert_has(form.text(), "<label for=\"token\">");

    // A wrong token: an error page and no session.
    let mut wrong = Browser::new(&hub);
    let page = wrong.login("not-the-admin-token-0123456789").await;
    assert_eq!(page.status, 401);
    assert_page(&page);
    kopplung_tests::assert_has(page.text(), "Das Zugangstoken ist nicht gültig.");
    assert!(
        !page
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("kopplung_console=")),
        "{:?}",
        page.set_cookies()
    );
    assert!(!wrong.cookies.contains_key("kopplung_console"));
    assert_eq!(wrong.get("/console").await.status, 303);
    // A login without the form's own token is refused, even with the right token.
    let mut forged = Browser::new(&hub);
    let page = forged
        .post(
            "/console/login",
            &[("token", AUDITOR_TOKEN), ("csrf", "forged")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(!forged.cookies.contains_key("kopplung_console"));

    // The auditor signs in: an HttpOnly, SameSite=Strict session cookie for /console.
    let mut auditor = Browser::new(&hub);
    let page = auditor.login(AUDITOR_TOKEN).await;
    assert_eq!(page.status, 303, "{}", page.text());
    assert_eq!(page.header("location"), "/console");
    let session_cookie = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("kopplung_console="))
        .expect("session cookie");
    assert_contains_all(
        &session_cookie,
        &[
            "HttpOnly",
            "SameSite=Strict",
            "Path=/console",
            "Max-Age=28800",
        ],
    );
    assert!(!session_cookie.contains("Secure"), "http: {session_cookie}");
    assert!(!hub.log().contains(AUDITOR_TOKEN), "no token in the log");

    // The search finds the application (the receipt typed loosely).
    let loose = receipt.to_lowercase().replace('-', " ");
    let page = auditor
        .get(&format!("/console?receipt={}", loose.replace(' ', "+")))
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_page(&page);
    let text = page.text();
    kopplung_tests::assert_has(&text, format!("<a href=\"{detail_path}\">{receipt}</a>"));
    assert_contains_all(
        &text,
        &[
            "dresden-maengel",
            "zugestellt",
            "Dresden",
            "Prüfung (auditor, nur lesen)",
        ],
    );
    kopplung_tests::assert_has(&text, "<th scope=\"col\">Vorgangsnummer</th>");
    kopplung_tests::assert_has(&text, "<label for=\"service\">Leistung</label>");
    // Filters: by service, procedure, state and days.
    let page = auditor
        .get("/console?service=99999001000000&procedure=dresden-maengel&status=delivered&from=2020-01-01&until=31.12.2099")
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains(&receipt), "{}", page.text());
    kopplung_tests::assert_has(page.text(), "value=\"2099-12-31\"");
    let page = auditor.get("/console?status=dead_lettered").await;
    assert!(!page.text().contains(&receipt));
    assert!(page.text().contains("Keine Anträge gefunden."));
    let page = auditor.get("/console?until=2020-01-01").await;
    assert!(!page.text().contains(&receipt));
    let page = auditor.get("/console?from=gestern").await;
    assert_eq!(page.status, 400);
    assert!(page.text().contains("ist kein Datum"), "{}", page.text());

    // The application: state, delivery, history, audit trail; no operator buttons.
    let page = page_showing(
        &mut auditor,
        &detail_path,
        &[
            "<h2 id=\"historie\">Historie</h2>",
            "Laufzettel",
            "<th scope=\"col\">Nr.</th>",
            "amqp",
            &hub.queue("dresden-maengel"),
            "angenommen",
            "vorbereitet",
            "zugestellt",
            "XML anzeigen (wird protokolliert)",
        ],
    )
    .await;
    let text = page.text();
    let audit = reqwest::Client::new()
        .get(hub.url(&format!("/api/v1/admin/applications/{id}")))
        .bearer_auth(AUDITOR_TOKEN)
        .send()
        .await
        .expect("admin api")
        .json::<Value>()
        .await
        .expect("json")["audit"]
        .clone();
    let entries = audit.as_array().expect("audit entries");
    assert!(entries.len() >= 3, "{audit:#}");
    for entry in entries {
        let hash = entry["hash"].as_str().expect("hash");
        assert!(
            text.contains(&format!("<code>{}…</code>", &hash[..12])),
            "{hash} in {text}"
        );
        assert!(!text.contains(hash), "only shortened: {hash}");
        assert!(text.contains(&format!("<th scope=\"row\">{}</th>", entry["seq"])));
    }
    // Only operators are offered these.
    assert_contains_none(
        &text,
        &[
            "Jetzt erneut versuchen",
            "Erneut einliefern",
            "/retry\"",
            "/replay\"",
        ],
    );

    // Auditors change nothing: a retry is refused, with or without the form's token.
    let csrf = page.csrf();
    let before = history(&hub, &id).await;
    for form in [vec![("csrf", csrf.as_str())], vec![]] {
        let refused = auditor.post(&format!("{detail_path}/retry"), &form).await;
        assert_eq!(refused.status, 403, "{}", refused.text());
        assert_security_headers(&refused);
    }
    let refused = auditor
        .post(&format!("{detail_path}/replay"), &[("csrf", &csrf)])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(history(&hub, &id).await, before);

    // The XML without (or with a wrong) form token: refused, and nothing recorded.
    for form in [vec![], vec![("csrf", "0".repeat(64))]] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = auditor.post(&format!("{detail_path}/xml"), &form).await;
        assert_eq!(refused.status, 403, "{}", refused.text());
        assert!(!refused.text().contains(MARKER));
    }
    assert_eq!(history(&hub, &id).await, before);

    // With it: recorded first, then shown — escaped, never as markup.
    let page = auditor
        .post(&format!("{detail_path}/xml"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_page(&page);
    let text = page.text();
    assert!(text.contains(MARKER), "{text}");
    assert!(
        text.contains("&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt; &amp;amp; mehr"),
        "the XML's escaped text, escaped again: {text}"
    );
    assert!(!text.contains(SCRIPT), "{text}");
    assert!(text.contains("&lt;beschreibung&gt;"), "{text}");
    assert!(!text.contains("<beschreibung>"), "{text}");
    assert!(text.contains("<pre class=\"xml\""), "{text}");
    assert!(text.contains("protokolliert"), "{text}");
    assert!(
        text.contains("so, wie sie an das Fachverfahren gesendet wurde"),
        "labelled as sent: {text}"
    );
    let after = history(&hub, &id).await;
    assert_eq!(after.len(), before.len() + 1, "{after:#?}");
    let message_id = delivered["delivery"]["message_id"]
        .as_str()
        .expect("message id");
    assert_eq!(
        after.last().expect("entry"),
        &format!(
            "transformed XML of message {message_id} viewed by auditor (admin console, as sent)"
        )
    );
    assert!(!hub.log().contains(MARKER), "no XML in the log");
    // A GET of the action's address leads back to the application.
    let page = auditor.get(&format!("{detail_path}/xml")).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), detail_path);

    // The status: procedures, certificates, mappings.
    page_showing(
        &mut auditor,
        "/console/status",
        &[
            "dresden-maengel",
            "hub.crt",
            "gültig",
            "Abbildungen",
            "99999001000000",
            "<th scope=\"row\">hub</th>",
        ],
    )
    .await;
    let page = auditor.get("/console/deadletters").await;
    assert_eq!(page.status, 200);
    assert_page(&page);
    assert!(page.text().contains("Keine unzustellbaren Nachrichten."));

    // No page but the XML page holds form data; the history shows the view.
    for path in [
        format!("/console?receipt={receipt}"),
        detail_path.clone(),
        "/console/status".to_owned(),
        "/console/deadletters".to_owned(),
    ] {
        let page = auditor.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        let text = page.text();
        assert!(
            !text.contains(MARKER) && !text.contains("flackert"),
            "{path}: {text}"
        );
        assert!(!text.contains("alert(1)"), "{path}: {text}");
    }
    // The console words the history in German (stored as the hub wrote it, above).
    let text = auditor.get(&detail_path).await.text();
    assert!(
        text.contains(&format!(
            "Transformiertes XML der Nachricht {message_id} angesehen von auditor (Betriebskonsole, wie gesendet)"
        )),
        "{text}"
    );
    assert!(text.contains("Angenommen von Client"), "{text}");
    assert!(!text.contains("accepted from client"), "{text}");
    // The history and the audit trail scroll with the keyboard: focusable, named regions.
    for heading in ["historie", "laufzettel"] {
        assert!(
            text.contains(&format!(
                "<div class=\"scroll\" tabindex=\"0\" role=\"region\" aria-labelledby=\"{heading} {heading}-tabelle\">"
            )),
            "{text}"
        );
    }

    // Unknown applications: a German 404 within the console.
    let page = auditor
        .get(&format!("/console/applications/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(page.status, 404);
    assert_page(&page);
    assert_eq!(
        auditor
            .get("/console/applications/kein-antrag")
            .await
            .status,
        404
    );

    // Signing out ends the session.
    let csrf = auditor.get("/console").await.csrf();
    let page = auditor.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), "/console/login");
    assert!(!auditor.cookies.contains_key("kopplung_console"));
    assert_eq!(auditor.get("/console").await.status, 303);

    // Guessing: after five failures from one address (the auditor's sign-in forgave
    // the wrong token above), even the right token waits — a minute at first, each
    // further failure doubles it.
    let mut guesser = Browser::new(&hub);
    for n in 0..5 {
        let page = guesser.login(&format!("guess-{n}-0123456789abcdef")).await;
        assert_eq!(page.status, 401, "guess {n}");
    }
    let page = guesser.login(ADMIN_TOKEN).await;
    assert_eq!(page.status, 429, "{}", page.text());
    assert_page(&page);
    kopplung_tests::assert_has(page.text(), "vorübergehend gesperrt");
    let wait: u64 = page.header("retry-after").parse().expect("Retry-After");
    assert!((50..=60).contains(&wait), "{wait}");
    assert!(!guesser.cookies.contains_key("kopplung_console"));
    let log = hub.log();
    kopplung_tests::assert_has(&log, "admin console: logins wait after repeated failures");
    for secret in [ADMIN_TOKEN, AUDITOR_TOKEN, "guess-0", MARKER] {
        assert!(!log.contains(secret), "{secret} in the log");
    }

    delete_queue(&broker, &hub.queue("dresden-maengel")).await;
}

/// A procedure's HTTP endpoint that answers with the status in `answer` (503 with
/// `Retry-After: 3600`: the next attempt would be an hour away).
async fn receiver(answer: Arc<AtomicU16>) -> String {
    let app = axum::Router::new().route(
        "/eingang",
        axum::routing::post(move || {
            let answer = answer.clone();
            async move {
                let status = AxumStatus::from_u16(answer.load(Ordering::SeqCst))
                    .unwrap_or(AxumStatus::INTERNAL_SERVER_ERROR);
                ([("retry-after", "3600")], status).into_response()
            }
        }),
    );
    kopplung_tests::shared::serve(app, "/eingang").await
}

async fn wait_for_history(hub: &TestHub, id: &str, detail: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let entries = history(hub, id).await;
        if entries.iter().any(|e| e.contains(detail)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `{detail}` in {entries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn operators_retry_now_and_replay_dead_letters() {
    // Dresden answers 503 (an hour until the next attempt); Chemnitz refuses (400);
    // Leipzig's certificate expired yesterday, Meißen's expires in ten days.
    let dresden_answer = Arc::new(AtomicU16::new(503));
    let chemnitz_answer = Arc::new(AtomicU16::new(400));
    let dresden_url = receiver(dresden_answer.clone()).await;
    let chemnitz_url = receiver(chemnitz_answer.clone()).await;
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(Arc::new(move |routing| {
            let over_http = |url: &str| plain_http(url, "timeout_ms = 5000");
            let routing = deliver_over(&routing, "dresden-maengel", &over_http(&dresden_url));
            deliver_over(&routing, "chemnitz-maengel", &over_http(&chemnitz_url))
        })),
        before_start: |pki| {
            for (procedure, to_days) in [("leipzig-maengel", -1), ("meissen-maengel", 10)] {
                issue(
                    pki,
                    &format!("procedures/{procedure}"),
                    &format!("Fachverfahren {procedure}"),
                    Role::Recipient,
                    -30,
                    to_days,
                );
            }
        },
        ..HubSetup::default()
    })
    .await;
    let waiting = hub
        .submit_accepted(&report("146120000000", MARKER), None)
        .await;
    let refused = hub
        .submit_accepted(&report("145110000000", MARKER), None)
        .await;
    hub.wait_for_status(&refused, "dead_lettered", Duration::from_secs(30))
        .await;
    hub.wait_until(&waiting, "fail once", Duration::from_secs(30), |status| {
        status["delivery"]["attempts"] == 1
    })
    .await;

    // The operator sees the buttons where they apply.
    let mut operator = Browser::sign_in(&hub, ADMIN_TOKEN).await;
    let waiting_path = format!("/console/applications/{waiting}");
    let page = operator.get(&waiting_path).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_page(&page);
    let text = page.text();
    assert!(text.contains("Betrieb (operator)"), "{text}");
    assert!(text.contains("Jetzt erneut versuchen"), "{text}");
    assert!(!text.contains("Erneut einliefern"), "{text}");
    assert!(text.contains("503"), "the last error: {text}");
    assert!(!text.contains(MARKER), "{text}");
    let csrf = page.csrf();

    // A retry without the form's token changes nothing; with it the attempt is made now.
    let page = operator.post(&format!("{waiting_path}/retry"), &[]).await;
    assert_eq!(page.status, 403);
    dresden_answer.store(202, Ordering::SeqCst);
    let page = press(&mut operator, &waiting_path, "retry", &csrf, "versuch").await;
    let page = operator.get(&page.header("location")).await;
    assert!(
        page.text()
            .contains("Der nächste Zustellversuch wurde angestoßen."),
        "{}",
        page.text()
    );
    hub.wait_for_status(&waiting, "delivered", Duration::from_secs(30))
        .await;
    assert!(
        history(&hub, &waiting)
            .await
            .contains(&"next attempt requested now by operator".to_owned())
    );
    // Nothing waits any more: said so, nothing changes.
    let page = operator
        .post(&format!("{waiting_path}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 409, "{}", page.text());

    // The dead letter: listed, with its page's replay button.
    let receipt = hub.status(&refused).await["receipt"]
        .as_str()
        .expect("receipt")
        .to_owned();
    let refused_path = format!("/console/applications/{refused}");
    let page = operator.get("/console/deadletters").await;
    assert_eq!(page.status, 200);
    assert_page(&page);
    let text = page.text();
    kopplung_tests::assert_has(&text, format!("<a href=\"{refused_path}\">{receipt}</a>"));
    assert!(
        text.contains("chemnitz-maengel") && text.contains("400"),
        "{text}"
    );
    assert!(!text.contains(MARKER), "{text}");

    // An auditor sees no replay button and may not replay.
    let mut auditor = Browser::sign_in(&hub, AUDITOR_TOKEN).await;
    let page = auditor.get(&refused_path).await;
    kopplung_tests::assert_lacks(page.text(), "Erneut einliefern");
    let auditor_csrf = page.csrf();
    // Not the auditor; nor the operator with the auditor's token (each session has its
    // own form token).
    for browser in [&mut auditor, &mut operator] {
        let page = browser
            .post(
                &format!("{refused_path}/replay"),
                &[("csrf", &auditor_csrf)],
            )
            .await;
        assert_eq!(page.status, 403);
        assert_eq!(hub.status(&refused).await["status"], "dead_lettered");
    }

    // The operator fixes the cause and replays: the message goes out again.
    let page = operator.get(&refused_path).await;
    let text = page.text();
    assert!(text.contains("Erneut einliefern"), "{text}");
    assert!(!text.contains("Jetzt erneut versuchen"), "{text}");
    assert!(text.contains("unzustellbar"), "{text}");
    chemnitz_answer.store(202, Ordering::SeqCst);
    press(
        &mut operator,
        &refused_path,
        "replay",
        &csrf,
        "eingeliefert",
    )
    .await;
    hub.wait_for_status(&refused, "delivered", Duration::from_secs(30))
        .await;
    wait_for_history(&hub, &refused, "dead letter replayed by operator").await;
    let page = operator.get("/console/deadletters").await;
    assert!(!page.text().contains(&receipt), "{}", page.text());

    // The operator's XML view is recorded as the operator's.
    let page = operator
        .post(&format!("{refused_path}/xml"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains(MARKER));
    wait_for_history(
        &hub,
        &refused,
        "viewed by operator (admin console, as sent)",
    )
    .await;

    // The status highlights the expired and the expiring certificate and the blocked
    // procedure.
    let page = operator.get("/console/status").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    let row = |start: &str| {
        let at = text
            .find(start)
            .unwrap_or_else(|| panic!("no {start} in {text}"));
        let begin = text[..at].rfind("<tr").expect("row start");
        let end = at + text[at..].find("</tr>").expect("row end");
        text[begin..end].to_owned()
    };
    // The row of a certificate (expired, expiring, valid) or a procedure, how it starts
    // (its class) and what it says.
    for (start, opening, says) in [
        (
            "<td>leipzig-maengel.crt</td>",
            "<tr class=\"expired\">",
            &["abgelaufen"][..],
        ),
        (
            "<td>meissen-maengel.crt</td>",
            "<tr class=\"warn\">",
            &["läuft bald ab"],
        ),
        ("<td>hub.crt</td>", "<tr>", &["gültig"]),
        (
            "<th scope=\"row\">leipzig-maengel</th>",
            "<tr",
            &["no usable certificate", "expired"],
        ),
        (
            "<th scope=\"row\">dresden-maengel</th>",
            "<tr",
            &["http", "nein"],
        ),
    ] {
        let row = row(start);
        assert!(row.starts_with(opening), "{row}");
        for said in says {
            assert!(row.contains(said), "{said} in {row}");
        }
    }
    assert!(text.contains("weniger als 21 Tagen"), "{text}");
}
