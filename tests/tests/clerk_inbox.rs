//! The clerk inbox (`transport = "manual"`): a clerk signs in at the hub's web UI, reads
//! the application as a document, downloads its attachments and the XÖV message, and
//! takes it over — which is the delivery. Real hub process, real HTTP, cookies by hand.

use std::sync::Arc;

use base64::Engine;
use kopplung_tests::browser::{Browser, assert_security_headers, served_text};
use kopplung_tests::clerks::{hash, inbox_link, manual, token_of};
use kopplung_tests::shared::assert_contains_all;
use kopplung_tests::{HubSetup, TestHub, copy_dir, workspace};
use reqwest::header::SET_COOKIE;
use serde_json::json;

const ANNA_PASSWORD: &str = "anna-hat-ein-langes-passwort";
const BERT_PASSWORD: &str = "bert-hat-auch-eins-0815";
const SCRIPT: &str = "<script>alert(1)</script>";

fn clerks_config() -> String {
    format!(
        r#"
[[clerk]]
id = "anna"
name = "Anna Beispiel"
password_argon2 = "{}"

[[clerk]]
id = "bert"
name = "Bert Muster"
password_argon2 = "{}"
"#,
        hash(ANNA_PASSWORD),
        hash(BERT_PASSWORD)
    )
}

/// A copy of the mappings in which the Mängelanzeige also takes SVG files, so that a
/// file of an active type can be submitted.
fn mappings_with_svg() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&workspace().join("mappings"), dir.path());
    let form = dir.path().join("maengelanzeige/form.toml");
    let text = std::fs::read_to_string(&form).expect("form");
    let edited = text.replace(
        "media_types = [\"image/jpeg\", \"image/png\", \"application/pdf\"]",
        "media_types = [\"image/jpeg\", \"image/png\", \"application/pdf\", \"image/svg+xml\"]",
    );
    assert_ne!(text, edited, "the Mängelanzeige's media types changed");
    std::fs::write(&form, edited).expect("write form");
    dir
}

/// A hub whose Mängelanzeigen of Dresden go to the clerk Anna, of Leipzig to Bert.
fn two_clerks() -> HubSetup {
    HubSetup {
        rewrite_routing: Some(Arc::new(|routing| {
            let routing = manual(&routing, "dresden-maengel", &["anna"]);
            manual(&routing, "leipzig-maengel", &["bert"])
        })),
        extra_config: clerks_config(),
        ..HubSetup::default()
    }
}

#[tokio::test]
async fn a_clerk_reads_downloads_and_takes_over_an_application() {
    let mappings = mappings_with_svg();
    let hub = TestHub::start(HubSetup {
        mappings: Some(mappings.path().to_owned()),
        ..two_clerks()
    })
    .await;

    let png = b"\x89PNG\r\n\x1a\nnot really a picture".to_vec();
    let svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\">{SCRIPT}</svg>").into_bytes();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let id = hub
        .submit_accepted(
            &json!({
                "service": "99999001000000",
                "region": "146120000000",
                "data": {
                    "kategorie": "strassenschaden",
                    "beschreibung": format!("Schlagloch vor der Schule {SCRIPT} & tief"),
                    "ort": {"strasse": "Königsbrücker Straße", "hausnummer": "12", "lat": 51.0716},
                    "kontakt": {"name": "Jürgen Weiß"}
                },
                "attachments": [
                    {"filename": "schlagloch.png", "media_type": "image/png", "content_base64": b64(&png)},
                    {"filename": "skizze \"1\".svg", "media_type": "image/svg+xml", "content_base64": b64(&svg)}
                ]
            }),
            None,
        )
        .await;
    let status = hub.status(&id).await;
    let receipt = status["receipt"].as_str().expect("receipt").to_owned();

    // Without a session: pages send to the login, forms are refused.
    let mut nobody = Browser::new(&hub);
    let page = nobody.get("/inbox").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), "/inbox/login");
    assert_eq!(
        nobody
            .get(&format!("/inbox/dresden-maengel/{id}"))
            .await
            .status,
        303
    );
    assert_eq!(nobody.post("/inbox/logout", &[]).await.status, 403);
    assert_eq!(nobody.post("/inbox/irgendwo", &[]).await.status, 403);
    let text = served_text(&nobody.get("/inbox/login").await);
    assert_contains_all(
        &text,
        &[
            "<html lang=\"de\">",
            "<label for=\"clerk\">Kennung</label>",
            "<label for=\"password\">Passwort</label>",
        ],
    );
    assert!(!text.contains("style=\""), "no inline styles: {text}");
    let css = nobody.get("/inbox/inbox.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.text().contains(":focus-visible"));

    // A wrong password is an error; the right one opens a session.
    let mut anna = Browser::new(&hub);
    let refused = anna.inbox_login("anna", "falsch-falsch-falsch").await;
    assert_eq!(refused.status, 401);
    kopplung_tests::assert_has(refused.text(), "Kennung oder Passwort ist falsch.");
    assert!(!anna.cookies.contains_key("kopplung_inbox"));
    let signed_in = anna.inbox_login("anna", ANNA_PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    assert_eq!(signed_in.header("location"), "/inbox");
    let session_cookie = signed_in
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("kopplung_inbox="))
        .expect("session cookie")
        .to_owned();
    assert_contains_all(
        &session_cookie,
        &[
            "HttpOnly",
            "SameSite=Strict",
            "Path=/inbox",
            "Max-Age=28800",
        ],
    );
    let token = session_cookie
        .trim_start_matches("kopplung_inbox=")
        .split(';')
        .next()
        .unwrap_or_default();
    assert_eq!(token.len(), 64, "256-bit token as hex");

    // The application appears in the inbox (the outbox prepares it first).
    let document_path = inbox_link(&mut anna, &receipt).await;
    let text = served_text(&anna.get("/inbox").await);
    assert_contains_all(
        &text,
        &[
            "Mängelanzeige",
            "Dresden",
            "<th scope=\"col\">Vorgangsnummer</th>",
        ],
    );
    assert!(
        !text.contains("leipzig-maengel"),
        "only anna's procedures: {text}"
    );
    assert!(
        document_path.starts_with("/inbox/dresden-maengel/"),
        "{document_path}"
    );
    let message_id = document_path.rsplit('/').next().expect("id").to_owned();
    assert_eq!(status["delivery"]["message_id"], message_id.as_str());

    // The document: German labels, enum labels, groups, escaped values.
    let document = anna.get(&document_path).await;
    let text = served_text(&document);
    assert_contains_all(
        &text,
        &[
            "Mängelanzeige",
            &receipt,
            "Vorgangsnummer",
            "Gemeinde",
            "Eingegangen am",
            "<dt>Art des Mangels</dt><dd>Straßenschaden</dd>",
            "<dt>Beschreibung</dt>",
            "Schlagloch vor der Schule &lt;script&gt;alert(1)&lt;",
            "&amp; tief",
            "<h3>Ort des Mangels</h3>",
            "<dt>Straße</dt><dd>Königsbrücker Straße</dd>",
            "<dd>51,0716</dd>",
            "<h3>Kontakt für Rückfragen (freiwillig)</h3>",
            "Jürgen Weiß",
            "schlagloch.png",
            "skizze &quot;1&quot;.svg",
            "Antrag übernehmen",
        ],
    );
    assert!(
        !text.contains("<script>"),
        "raw script in the page:\n{text}"
    );
    assert!(
        !text.contains("E-Mail-Adresse"),
        "absent fields are left out"
    );
    assert!(!text.contains("Hausnummer</dt><dd></dd>"));

    // Attachments and the message are downloads, never active content.
    let picture = anna.get(&format!("{document_path}/attachments/1")).await;
    assert_eq!(picture.status, 200);
    assert_eq!(picture.header("content-type"), "image/png");
    assert!(
        picture
            .header("content-disposition")
            .starts_with("attachment;")
    );
    assert_eq!(picture.body, png);
    let sketch = anna.get(&format!("{document_path}/attachments/2")).await;
    assert_eq!(sketch.status, 200);
    assert_eq!(sketch.header("content-type"), "application/octet-stream");
    let disposition = sketch.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    kopplung_tests::assert_has(&disposition, "filename=\"skizze _1_.svg\"");
    assert_eq!(sketch.header("x-content-type-options"), "nosniff");
    assert_eq!(sketch.header("cache-control"), "no-store");
    assert_eq!(sketch.body, svg);
    assert_eq!(
        anna.get(&format!("{document_path}/attachments/3"))
            .await
            .status,
        404
    );
    let xml = anna.get(&format!("{document_path}/xml")).await;
    assert_eq!(xml.status, 200);
    assert_eq!(xml.header("content-type"), "application/octet-stream");
    assert!(xml.header("content-disposition").starts_with("attachment;"));
    assert!(xml.text().contains(&message_id), "the XÖV message");

    // Another clerk sees nothing of it: every URL answers like one that does not exist.
    let mut bert = Browser::new(&hub);
    assert_eq!(bert.inbox_login("bert", BERT_PASSWORD).await.status, 303);
    let bert_list = bert.get("/inbox").await.text();
    assert!(!bert_list.contains(&receipt), "{bert_list}");
    assert!(bert_list.contains("leipzig-maengel"), "{bert_list}");
    let unknown = bert
        .get(&format!("/inbox/dresden-maengel/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(unknown.status, 404);
    for path in [
        document_path.clone(),
        format!("{document_path}/attachments/1"),
        format!("{document_path}/xml"),
        format!("/inbox/leipzig-maengel/{message_id}"),
    ] {
        let page = bert.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert_eq!(
            page.text(),
            unknown.text(),
            "{path} looks like a missing page"
        );
    }
    let bert_csrf = bert.get("/inbox").await.csrf();
    let page = bert
        .post(&format!("{document_path}/take"), &[("csrf", &bert_csrf)])
        .await;
    assert_eq!(page.status, 404);
    assert_eq!(hub.status(&id).await["status"], "prepared");

    // Taking over needs the session's CSRF token; without it nothing changes.
    let take = format!("{document_path}/take");
    assert_eq!(nobody.post(&take, &[]).await.status, 403);
    assert_eq!(anna.post(&take, &[]).await.status, 403);
    assert_eq!(anna.post(&take, &[("csrf", &bert_csrf)]).await.status, 403);
    assert_eq!(hub.status(&id).await["status"], "prepared");
    let csrf = document.csrf();
    let taken = anna.post(&take, &[("csrf", &csrf)]).await;
    assert_eq!(taken.status, 303, "{}", taken.text());
    assert_eq!(taken.header("location"), document_path);

    let status = hub.status(&id).await;
    assert_eq!(status["status"], "delivered", "{status:#}");
    let history = status["history"].to_string();
    assert!(
        history.contains(&format!(
            "message {message_id} taken over by clerk anna (manual)"
        )),
        "{history}"
    );
    let after = anna.get(&document_path).await.text();
    assert!(after.contains("übernommen"), "{after}");
    assert!(after.contains("Anna Beispiel"), "{after}");
    assert!(!after.contains("Antrag übernehmen</button>"), "{after}");
    assert!(!anna.get("/inbox").await.text().contains(&receipt));
    // Taking over twice changes nothing.
    let again = anna.post(&take, &[("csrf", &csrf)]).await;
    assert_eq!(again.status, 303);
    assert_eq!(
        hub.status(&id).await["history"].as_array().map(Vec::len),
        status["history"].as_array().map(Vec::len)
    );

    // Unknown inbox paths answer in German; after logout the session is gone.
    let missing = anna.get("/inbox/gibt/es/nicht/wirklich").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("Nicht gefunden"));
    let csrf = anna.get("/inbox").await.csrf();
    let out = anna.post("/inbox/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), "/inbox/login");
    let mut stale = Browser::new(&hub);
    stale
        .cookies
        .insert("kopplung_inbox".into(), token.to_owned());
    assert_eq!(stale.get("/inbox").await.status, 303, "the session ended");

    // Nothing personal in the log.
    let log = hub.log();
    assert!(!log.contains("Schlagloch"), "form content in the log");
    assert!(
        !log.contains(ANNA_PASSWORD) && !log.contains("falsch-falsch"),
        "a password in the log"
    );
}

#[tokio::test]
async fn repeated_failed_logins_wait_longer_each_time() {
    let hub = TestHub::start(HubSetup {
        rewrite_routing: Some(Arc::new(|routing| {
            manual(&routing, "dresden-maengel", &["anna"])
        })),
        extra_config: clerks_config(),
        ..HubSetup::default()
    })
    .await;
    let mut browser = Browser::new(&hub);

    // A login without the form's own token (a forged form) is refused and not counted.
    let forged = browser
        .post(
            "/inbox/login",
            &[
                ("clerk", "anna"),
                ("password", ANNA_PASSWORD),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(!browser.cookies.contains_key("kopplung_inbox"));

    for attempt in 1..=5 {
        let page = browser
            .inbox_login("anna", &format!("falsch-{attempt}-falsch"))
            .await;
        assert_eq!(page.status, 401, "attempt {attempt}");
        assert!(page.text().contains("Kennung oder Passwort ist falsch."));
    }
    // The sixth is refused, even with the right password.
    let locked = browser.inbox_login("anna", ANNA_PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.text());
    assert_security_headers(&locked);
    let text = locked.text();
    kopplung_tests::assert_has(&text, "Zu viele fehlgeschlagene Anmeldeversuche");
    assert!(text.contains("für diese Kennung"), "{text}");
    // The first wait is a minute; each further failure doubles it.
    assert!(text.contains("1 Minute"), "{text}");
    let retry: u64 = locked.header("retry-after").parse().expect("Retry-After");
    assert!((50..=60).contains(&retry), "{retry}");
    assert!(!browser.cookies.contains_key("kopplung_inbox"));
    // Another clerk at the same address (one office behind one proxy) is not locked
    // out by anna's failures: only a coarse cap counts per address.
    let other = Browser::new(&hub).inbox_login("bert", BERT_PASSWORD).await;
    assert_eq!(other.status, 303, "{}", other.text());
    kopplung_tests::assert_has(hub.log(), "logins wait after repeated failures");
    assert!(!hub.log().contains("falsch-"), "passwords never logged");
}

/// Keeps the helper honest: a manual procedure keeps no envelope or certificate lines.
#[test]
fn manual_procedures_lose_their_envelope() {
    let routing =
        std::fs::read_to_string(workspace().join("config/routing.toml")).expect("routing table");
    let edited = manual(&routing, "dresden-maengel", &["anna"]);
    let block = &edited[edited.find("id = \"dresden-maengel\"").expect("procedure")..];
    let block = &block[..block.find("[[route]]").expect("route")];
    assert!(!block.contains("envelope"), "{block}");
    assert!(!block.contains("certificate"), "{block}");
    kopplung_tests::assert_has(block, "transport = \"manual\"\nclerks = [\"anna\"]");
    assert_eq!(
        edited.matches("envelope = ").count() + 1,
        routing.matches("envelope = ").count(),
        "only this procedure changed"
    );
}

#[tokio::test]
async fn a_clerk_confirms_asks_and_decides_and_the_citizen_reads_it() {
    let hub = TestHub::start(two_clerks()).await;
    let question = "Bitte nennen Sie die Hausnummer <b>genau</b>.";
    let id = hub
        .submit_accepted(
            &json!({
                "service": "99999001000000",
                "region": "146120000000",
                "data": {
                    "kategorie": "strassenschaden",
                    "beschreibung": "Tiefes Loch vor dem Rathaus Dresden",
                    "ort": {"strasse": "Dr.-Külz-Ring", "hausnummer": "19"}
                }
            }),
            None,
        )
        .await;
    let receipt = hub.status(&id).await["receipt"]
        .as_str()
        .expect("receipt")
        .to_owned();
    let mut anna = Browser::new(&hub);
    assert_eq!(anna.inbox_login("anna", ANNA_PASSWORD).await.status, 303);
    let path = inbox_link(&mut anna, &receipt).await;
    let before = served_text(&anna.get(&path).await);
    assert!(
        !before.contains("Eingang bestätigen"),
        "work before take-over: {before}"
    );
    let csrf = kopplung_tests::browser::csrf_of(&before).expect("csrf");
    // Before the take-over nothing can be recorded, even by a crafted form.
    let early = anna
        .post_multipart(
            &format!("{path}/bearbeitung"),
            &[
                ("csrf", &csrf),
                ("token", &uuid::Uuid::new_v4().to_string()),
                ("action", "accept"),
            ],
            None,
        )
        .await;
    assert_eq!(early.status, 409);
    kopplung_tests::assert_has(early.text(), "übernehmen Sie den Antrag zuerst");
    assert_eq!(hub.status(&id).await["status"], "prepared");
    assert_eq!(
        anna.post(&format!("{path}/take"), &[("csrf", &csrf)])
            .await
            .status,
        303
    );
    let act = format!("{path}/bearbeitung");

    // Taken over: only the receipt can be confirmed.
    let page = served_text(&anna.get(&path).await);
    assert_contains_all(
        &page,
        &[
            "Bearbeitung",
            "Stand: <strong>Übernommen</strong>",
            "Eingang bestätigen",
        ],
    );
    assert!(!page.contains("Rückfrage senden"), "{page}");
    let accept = token_of(&page, "accept");
    // Without the session's CSRF token nothing happens.
    let forged = anna
        .post_multipart(&act, &[("token", &accept), ("action", "accept")], None)
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(hub.status(&id).await["status"], "delivered");
    let fields = |token: &str, action: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("csrf", csrf.clone()),
            ("token", token.to_owned()),
            ("action", action.to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>, text: Option<&str>| {
        let mut fields = fields;
        if let Some(text) = text {
            fields.push(("text", text.to_owned()));
        }
        fields
    };
    let send = async |anna: &mut Browser, fields: Vec<(&'static str, String)>, file| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        anna.post_multipart(&act, &fields, file).await
    };
    let done = send(&mut anna, fields(&accept, "accept"), None).await;
    assert_eq!(done.status, 303, "{}", done.text());
    assert_eq!(
        done.header("location"),
        format!("{path}?erledigt=accept#erledigt")
    );
    assert_eq!(hub.status(&id).await["status"], "received");
    // The same form sent twice is one event.
    let entries = hub.status(&id).await["history"].as_array().map(Vec::len);
    assert_eq!(
        send(&mut anna, fields(&accept, "accept"), None)
            .await
            .status,
        303
    );
    assert_eq!(
        hub.status(&id).await["history"].as_array().map(Vec::len),
        entries
    );
    let page = served_text(&anna.get(&format!("{path}?erledigt=accept")).await);
    assert_contains_all(
        &page,
        &[
            "Der Eingang wurde bestätigt",
            "Rückfrage senden",
            "Bescheid senden",
            "Als „In Bearbeitung“ vermerken",
        ],
    );

    // An empty question is refused in German and nothing changes.
    let query = token_of(&page, "query");
    let refused = send(
        &mut anna,
        post(fields(&query, "query"), Some(" \r\n ")),
        None,
    )
    .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .text()
            .contains("Bitte geben Sie die Rückfrage ein."),
        "{}",
        refused.text()
    );
    assert_eq!(hub.status(&id).await["status"], "received");
    let asked = send(
        &mut anna,
        post(fields(&query, "query"), Some(question)),
        None,
    )
    .await;
    assert_eq!(asked.status, 303, "{}", asked.text());
    let status = hub.status(&id).await;
    assert_eq!(status["status"], "query", "{status:#}");
    let mailbox = status["mailbox"].as_array().expect("mailbox");
    assert_eq!(mailbox.len(), 1, "{status:#}");
    assert_eq!(mailbox[0]["kind"], "query");
    assert_eq!(mailbox[0]["text"], question);
    assert!(
        status["history"]
            .to_string()
            .contains("recorded by clerk anna in the clerk inbox"),
        "{status:#}"
    );
    // The citizen answers: the answer waits in the inbox as a message of its own, shows
    // what the citizen wrote and leads to the application, where the work goes on.
    let answered = reqwest::Client::new()
        .post(hub.url(&format!("/api/v1/applications/{id}/messages")))
        .bearer_auth(&hub.token)
        .json(
            &json!({"kind": "antwort", "refers_to": mailbox[0]["event_id"],
                      "text": "Hausnummer 19, direkt vor dem Eingang <b>links</b>."}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 202);
    let answer_receipt = format!("{receipt}/");
    let answer_path = inbox_link(&mut anna, &answer_receipt).await;
    let answer_page = served_text(&anna.get(&answer_path).await);
    assert_contains_all(
        &answer_page,
        &[
            "<strong>Antwort auf die Rückfrage</strong>",
            &format!("<a href=\"{path}\">Antrag {receipt}</a>"),
            "Hausnummer 19, direkt vor dem Eingang &lt;b&gt;links&lt;/b&gt;.",
            // Named as the citizen's message, not as an anonymous application.
            &format!(
                "Antwort auf die Rückfrage <span class=\"receipt\">zum Antrag {receipt}</span>"
            ),
            "Nachricht übernehmen",
        ],
    );
    assert!(
        !answer_page.contains("Identifizierung") && !answer_page.contains("bezieht sich auf"),
        "{answer_page}"
    );
    // Until it is taken over, the decision form warns of the unread answer.
    let case = served_text(&anna.get(&path).await);
    kopplung_tests::assert_has(
        &case,
        "noch nicht übernommene Nachricht der antragstellenden Person",
    );
    assert_eq!(
        anna.post(&format!("{answer_path}/take"), &[("csrf", &csrf)])
            .await
            .status,
        303
    );
    let answer_page = served_text(&anna.get(&answer_path).await);
    assert!(!answer_page.contains("Rückfrage senden"), "{answer_page}");
    let case = served_text(&anna.get(&path).await);
    assert_contains_all(
        &case,
        &[
            "Nachrichten der Antragstellerin oder des Antragstellers",
            &format!("<a href=\"{answer_path}\">Antwort auf die Rückfrage</a>"),
            "gelesen (übernommen)",
        ],
    );
    assert!(!case.contains("noch nicht übernommene Nachricht"), "{case}");
    let status = hub.status(&id).await;
    assert_eq!(
        status["status"], "query",
        "the answer does not move the case"
    );
    assert_eq!(status["messages"][0]["status"], "delivered", "{status:#}");
    // A form of an earlier state is refused with the state it is in now.
    let stale = send(
        &mut anna,
        fields(&uuid::Uuid::new_v4().to_string(), "accept"),
        None,
    )
    .await;
    assert_eq!(stale.status, 409);
    assert!(
        stale
            .text()
            .contains("steht inzwischen auf „Rückfrage gestellt“"),
        "{}",
        stale.text()
    );

    // In progress, then the decision: a PDF, nothing else.
    let page = served_text(&anna.get(&path).await);
    assert!(
        page.contains("&lt;b&gt;genau&lt;/b&gt;"),
        "the question, escaped: {page}"
    );
    let progress = token_of(&page, "in_progress");
    assert_eq!(
        send(&mut anna, fields(&progress, "in_progress"), None)
            .await
            .status,
        303
    );
    assert_eq!(hub.status(&id).await["status"], "in_progress");
    let page = served_text(&anna.get(&path).await);
    let decision = token_of(&page, "decision");
    let note = "Wir beheben den Schaden bis Freitag.";
    let zip = Some((
        "document",
        "bescheid.pdf",
        "application/pdf",
        b"PK\x03\x04zip".to_vec(),
    ));
    let refused = send(
        &mut anna,
        post(fields(&decision, "decision"), Some(note)),
        zip,
    )
    .await;
    assert_eq!(refused.status, 422);
    kopplung_tests::assert_has(refused.text(), "kein PDF-Dokument");
    assert!(
        refused.text().contains(note),
        "the note is kept: {}",
        refused.text()
    );
    let pdf = b"%PDF-1.7\n% Bescheid der Landeshauptstadt Dresden\n%%EOF\n".to_vec();
    let file = Some((
        "document",
        "Bescheid 2026.pdf",
        "application/pdf",
        pdf.clone(),
    ));
    // The form proposes a Rechtsbehelfsbelehrung naming the authority and a deadline.
    assert!(
        page.contains(
            "bei der Behörde einzulegen, die diesen Bescheid erlassen hat: Landeshauptstadt Dresden"
        ),
        "{page}"
    );
    let deadline = (time::OffsetDateTime::now_utc().date() + time::Duration::days(35)).to_string();
    let belehrung = "Widerspruch binnen eines Monats beim Bürgerbüro.";
    let mut with_appeal = post(fields(&decision, "decision"), Some(note));
    with_appeal.push(("appeal_text", belehrung.to_owned()));
    with_appeal.push(("appeal_deadline", "1.1.2020".to_owned()));
    let refused = send(&mut anna, with_appeal.clone(), file.clone()).await;
    assert_eq!(refused.status, 422);
    kopplung_tests::assert_has(refused.text(), "Vergangenheit");
    // The deadline is marked, nothing else: the error names and links the field.
    let text = refused.text();
    assert_eq!(text.matches("aria-invalid=\"true\"").count(), 1, "{text}");
    assert!(
        refused
            .text()
            .contains("<a href=\"#frist\">Zum Feld „Widerspruchsfrist: letzter Tag“</a>"),
        "{}",
        refused.text()
    );
    assert!(
        refused.text().contains(belehrung),
        "kept: {}",
        refused.text()
    );
    with_appeal.pop();
    with_appeal.push(("appeal_deadline", deadline.clone()));
    with_appeal.push(("fee_amount", "25,50".to_owned()));
    with_appeal.push(("fee_purpose", "Gebühr Sondernutzung".to_owned()));
    let decided = send(&mut anna, with_appeal, file).await;
    assert_eq!(decided.status, 303, "{}", decided.text());
    let status = hub.status(&id).await;
    assert_eq!(status["status"], "decided", "{status:#}");
    let mailbox = status["mailbox"].as_array().expect("mailbox");
    assert_eq!(mailbox.len(), 2, "{status:#}");
    assert_eq!(mailbox[1]["kind"], "decided");
    assert_eq!(mailbox[1]["text"], note);
    assert_eq!(mailbox[1]["appeal"]["text"], belehrung, "{status:#}");
    assert_eq!(mailbox[1]["appeal"]["deadline"], deadline.as_str());
    assert_eq!(
        mailbox[1]["fee"],
        json!({"amount": "25.50", "purpose": "Gebühr Sondernutzung"})
    );
    let document = &status["documents"][0];
    assert_eq!(document["filename"], "Bescheid 2026.pdf");
    let href = document["href"].as_str().expect("href");
    let downloaded = hub.fetch(href, Some(&hub.token)).await;
    assert_eq!(downloaded.status(), 200);
    assert_eq!(downloaded.bytes().await.expect("bytes").to_vec(), pdf);

    // Decided: the page says so, offers nothing, and refuses a late form.
    let page = served_text(&anna.get(&path).await);
    assert_contains_all(
        &page,
        &[
            "Stand: <strong>Entschieden</strong>",
            "kann nicht mehr bearbeitet werden",
            "Bescheid 2026.pdf",
        ],
    );
    assert!(!page.contains("Rückfrage senden"), "{page}");
    let doc_link = page.find("/dokumente/").expect("document link");
    let start = page[..doc_link].rfind('"').expect("href") + 1;
    let end = doc_link + page[doc_link..].find('"').expect("end");
    let document_path = page[start..end].to_owned();
    let own = anna.get(&document_path).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.body, pdf);
    let late = send(
        &mut anna,
        post(
            fields(&uuid::Uuid::new_v4().to_string(), "query"),
            Some("Noch etwas?"),
        ),
        None,
    )
    .await;
    assert_eq!(late.status, 409);
    kopplung_tests::assert_has(late.text(), "bereits entschieden");

    // Meine Fälle: open cases by default, the decided one under "erledigt", found by its number.
    let open = served_text(&anna.get("/inbox/faelle").await);
    assert!(!open.contains(&receipt), "{open}");
    let closed = served_text(&anna.get("/inbox/faelle?stand=erledigt").await);
    assert_contains_all(&closed, &[&receipt, "Entschieden", "Mängelanzeige"]);
    let typed = receipt.replace('-', " ").to_lowercase();
    let found = served_text(
        &anna
            .get(&format!(
                "/inbox/faelle?stand=alle&nummer={}",
                typed.replace(' ', "+")
            ))
            .await,
    );
    assert!(found.contains(&receipt), "{found}");
    let mut bert = Browser::new(&hub);
    assert_eq!(bert.inbox_login("bert", BERT_PASSWORD).await.status, 303);
    let theirs = served_text(&bert.get("/inbox/faelle?stand=alle").await);
    assert!(!theirs.contains(&receipt), "{theirs}");
    assert_eq!(bert.get(&document_path).await.status, 404);

    let log = hub.log();
    assert!(
        !log.contains("Hausnummer <b>") && !log.contains(note),
        "clerk text in the log"
    );
}
