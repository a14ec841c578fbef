//! The citizen writes back in the portal (issue 23): once the reference procedure has
//! decided, the application page offers an objection; the form explains in German what
//! is missing, sends it to the authority through the hub, and the page shows the
//! objection and its delivery; a second one is refused with the hub's reason. Another
//! citizen cannot write on this application. Real hub, reference procedure, portal.

mod portal_support;

use std::time::{Duration, Instant};

use portal_support::{Citizen, Cycle, Options, Page};

/// Posts the portal's follow-up form of `draft` as the browser does (multipart).
async fn post_message(
    citizen: &mut Citizen,
    draft: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &str, Vec<u8>)>,
) -> Page {
    post_form(
        citizen,
        &format!("/antraege/{draft}/nachricht"),
        fields,
        file,
    )
    .await
}

/// Posts a follow-up form at `path` (or a full URL) as the browser does (multipart).
async fn post_form(
    citizen: &mut Citizen,
    path: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &str, Vec<u8>)>,
) -> Page {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    if let Some((filename, media_type, content)) = file {
        form = form.part(
            "datei",
            reqwest::multipart::Part::bytes(content)
                .file_name(filename.to_owned())
                .mime_str(media_type)
                .expect("media type"),
        );
    }
    let request = citizen.http.post(citizen.url(path)).multipart(form);
    citizen.send(request).await
}

/// The href of the first link whose text follows `label`'s anchor on `page`.
fn link_before(page: &Page, label: &str) -> String {
    let at = page
        .body
        .find(label)
        .unwrap_or_else(|| panic!("no „{label}“ on the page:\n{}", page.body));
    let href = page.body[..at].rfind("href=\"").expect("a link") + 6;
    let end = href + page.body[href..].find('"').expect("href end");
    // As a browser reads the attribute (Handlebars escapes `=` and `&`).
    page.body[href..end]
        .replace("&#x3D;", "=")
        .replace("&amp;", "&")
}

/// `tests/browser/<script>` on `draft` with the citizen's session; SCREENSHOTS=<folder>
/// keeps its screenshots.
async fn walk_in_chromium(cycle: &Cycle, citizen: &Citizen, script: &str, draft: &str) {
    let walk = kopplung_tests::chromium::Walk::new(script);
    let out = walk.out().to_owned();
    walk.arg(&cycle.portal_url)
        .arg(citizen.cookie_header().expect("a session"))
        .arg(draft)
        .arg(out)
        .run()
        .await
        .assert_passed(&[]);
}

#[tokio::test]
async fn a_citizen_objects_to_the_decision_in_the_portal() {
    let cycle = Cycle::start(true).await;
    // The dog tax is decided with a Bescheid and its Rechtsbehelfsbelehrung (a report
    // is only answered: nothing to object to).
    let (mut citizen, draft) =
        portal_support::dog_tax_submitted(&cycle, "widerspruch@example.org").await;

    let until = Instant::now() + Duration::from_secs(90);
    let decided = loop {
        let page = citizen.get(&format!("/antraege/{draft}")).await;
        if page.body.contains("Widerspruch einlegen") {
            break page;
        }
        assert!(
            Instant::now() < until,
            "no objection offered:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let href = link_before(&decided, "Widerspruch einlegen");
    assert!(
        href.starts_with(&format!(
            "/antraege/{draft}/nachricht?art=widerspruch&bezug="
        )),
        "{href}"
    );
    let form = citizen.get(&href).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Bescheid vom"), "{}", form.body);
    kopplung_tests::assert_has(&form.body, "Widerspruch ist bis einschließlich");
    let csrf = form.csrf();
    let bezug = href.split("bezug=").nth(1).unwrap().to_owned();
    let fields = |text: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("art", "widerspruch".to_owned()),
            ("bezug", bezug.clone()),
            ("text", text.to_owned()),
        ]
    };
    let as_refs = |f: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { f.clone() };

    // Without reasons: the error summary says what to do, nothing is sent.
    let empty = as_refs(&fields(" "));
    let refs: Vec<(&str, &str)> = empty.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let missing = post_message(&mut citizen, &draft, &refs, None).await;
    assert_eq!(missing.status, 422, "{}", missing.body);
    kopplung_tests::assert_has(&missing.body, "Bitte schreiben Sie einen Text.");
    // A file that is not what it says: refused in German.
    let reasons = fields("Bello ist ein Blindenführhund und von der Steuer befreit.");
    let refs: Vec<(&str, &str)> = reasons.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let wrong_file = post_message(
        &mut citizen,
        &draft,
        &refs,
        Some(("foto.png", "image/png", b"MZ not a picture".to_vec())),
    )
    .await;
    assert_eq!(wrong_file.status, 422, "{}", wrong_file.body);
    assert!(
        wrong_file
            .body
            .contains("Dieser Dateityp ist nicht erlaubt"),
        "{}",
        wrong_file.body
    );
    // Another citizen cannot write on this application.
    let mut other = Citizen::new(&cycle);
    let other_csrf = other.csrf().await;
    let foreign: Vec<(&str, &str)> = vec![
        ("csrf", other_csrf.as_str()),
        ("art", "widerspruch"),
        ("text", "fremd"),
    ];
    assert_eq!(
        post_message(&mut other, &draft, &foreign, None)
            .await
            .status,
        404
    );

    // In a real browser: the objection is offered, explained, and sent.
    walk_in_chromium(&cycle, &citizen, "conversation.mjs", &draft).await;
    // The reference procedure receipts it.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let page = citizen.get(&format!("/antraege/{draft}")).await;
        if page.body.contains("Stand: bei der Behörde eingegangen") {
            break;
        }
        assert!(Instant::now() < until, "never received:\n{}", page.body);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Once only: the hub's reason, as it says it.
    let again = post_message(&mut citizen, &draft, &refs, None).await;
    assert_eq!(again.status, 409, "{}", again.body);
    kopplung_tests::assert_has(&again.body, "bereits Widerspruch eingelegt");
    // The portal's log holds none of what the citizen wrote.
    assert!(!cycle.log().contains("Blindenführhund"), "{}", cycle.log());
}

/// The routing table with a copy of everything for Dresden's Bürgerbüro on an exchange
/// (`<queue>.archiv`, bound to its queue), as a vendor's archive would take it: the test
/// opens the copies with stock `openssl` while the reference procedure consumes.
fn archived_buergerbuero(routing: String) -> String {
    let Some(at) = routing.find(".dresden-buergerbuero\"") else {
        return routing;
    };
    let start = routing[..at].rfind("queue = \"").expect("queue line") + "queue = \"".len();
    let queue = routing[start..at + ".dresden-buergerbuero".len()].to_owned();
    routing.replacen(
        &format!("queue = \"{queue}\""),
        &format!("queue = \"{queue}\"\nexchange = \"{queue}.archiv\""),
        1,
    )
}

/// A server-named queue bound to the archive exchange of `queue` (see
/// [`archived_buergerbuero`]): a copy of each message the procedure gets from now on.
async fn tap(broker: &lapin::Connection, queue: &str) -> String {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let channel = broker.create_channel().await.expect("channel");
    let exchange = format!("{queue}.archiv");
    channel
        .exchange_declare(
            exchange.as_str().into(),
            lapin::ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("archive exchange");
    let copies = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("copy queue");
    channel
        .queue_bind(
            copies.name().clone(),
            exchange.as_str().into(),
            queue.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bound to the archive");
    copies.name().to_string()
}

/// The whole conversation as the citizen clicks it in chromium, over the broker: the dog
/// tax is applied for; Dresden's Bürgerbüro asks first; the citizen answers with a photo,
/// and the procedure gets the answer as its own message, which opens with stock
/// `openssl` and names the query; the decision sets the tax and the
/// Rechtsbehelfsbelehrung; the citizen pays, and the payment record reaches the city's
/// accounting (HKR), which receipts it; the citizen objects once.
#[tokio::test]
async fn the_whole_conversation_in_a_browser_over_the_broker() {
    let cycle = Cycle::with(Options {
        procedures: true,
        sim_args: vec!["--ask-first".into(), "dresden-buergerbuero".into()],
        edit_routing: archived_buergerbuero,
        ..Options::default()
    })
    .await;
    let broker = kopplung_tests::amqp().await;
    let copies = tap(&broker, &cycle.hub.queue("dresden-buergerbuero")).await;
    let (mut citizen, draft) =
        portal_support::dog_tax_submitted(&cycle, "hundehalter@example.org").await;

    // The citizen's part, clicked in chromium: answer, pay, object.
    walk_in_chromium(&cycle, &citizen, "whole-conversation.mjs", &draft).await;

    // Each message receipted by its procedure: the answer and the objection by the
    // Bürgerbüro, the payment record by the city's accounting (HKR).
    let application = cycle.application_of(&draft);
    let status = cycle
        .wait_for_messages(
            &draft,
            &[
                ("antwort", "dresden-buergerbuero", "received"),
                ("zahlung", "dresden-kasse", "received"),
                ("widerspruch", "dresden-buergerbuero", "received"),
            ],
        )
        .await;
    assert_eq!(
        kopplung_tests::shared::history(&status, "status"),
        [
            "accepted",
            "prepared",
            "delivered",
            "received",
            "query",
            "decided"
        ]
    );

    // The Bürgerbüro's copy of the answer, opened as its vendor would: it names the
    // application, the application's own message and the query it answers.
    let query = status["mailbox"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "query")
        .expect("the query in the mailbox");
    let answer = status["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "antwort")
        .unwrap();
    let copied = kopplung_tests::drain(&broker, &copies, Duration::from_millis(500)).await;
    assert_eq!(
        copied.len(),
        3,
        "the application, the answer and the objection"
    );
    let answered = copied
        .iter()
        .find(|m| m.message_id() == answer["message_id"].as_str().unwrap())
        .expect("the answer's copy");
    let xml = kopplung_tests::open_with_openssl_cli(
        &answered.body,
        &cycle.hub.pki_dir(),
        "dresden-buergerbuero",
    );
    let at = |path: &str| {
        kopplung_tests::xpath(
            &xml,
            &format!("string(/*[local-name()='antwort.0201']/{path})"),
        )
    };
    assert_eq!(at("bezug/antragsID"), application.as_str());
    assert_eq!(at("bezug/nachrichtenUUID"), copied[0].message_id());
    assert_eq!(at("bezug/ereignisID"), query["event_id"].as_str().unwrap());
    assert_eq!(
        at("text"),
        "Anbei ein Foto von Bello mit seiner Steuermarke."
    );
    assert_eq!(
        kopplung_tests::xpath(&xml, "count(/*[local-name()='antwort.0201']/anlage)").trim(),
        "1",
        "the photo: {xml}"
    );

    // A second objection, as a crafted form would send it: the hub's reason, in German.
    let page = citizen.get(&format!("/antraege/{draft}")).await;
    let again = post_message(
        &mut citizen,
        &draft,
        &[
            ("csrf", &page.csrf()),
            ("art", "widerspruch"),
            ("text", "Noch einmal."),
        ],
        None,
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);
    kopplung_tests::assert_has(&again.body, "bereits Widerspruch eingelegt");
    let sim_log = std::fs::read_to_string(cycle.hub.dir.path().join("sim.log")).unwrap();
    kopplung_tests::assert_has(&sim_log, "answer to the question received");
    assert!(
        !cycle.log().contains("Blindenhund") && !cycle.hub.log().contains("Blindenhund"),
        "the citizen's text stays out of the logs"
    );
}

const ANNA_PASSWORD: &str = "anna-hat-ein-langes-passwort";

/// The clerk sends the case page's form `action` (with its one-time token) at `path`.
async fn act(
    clerk: &mut kopplung_tests::browser::Browser,
    path: &str,
    csrf: &str,
    action: &str,
    more: &[(&str, &str)],
    file: Option<(&str, &str, &str, Vec<u8>)>,
) {
    let page = kopplung_tests::browser::served_text(&clerk.get(path).await);
    let token = kopplung_tests::clerks::token_of(&page, action);
    let mut fields = vec![("csrf", csrf), ("token", &token), ("action", action)];
    fields.extend_from_slice(more);
    let done = clerk
        .post_multipart(&format!("{path}/bearbeitung"), &fields, file)
        .await;
    assert_eq!(done.status, 303, "{action}: {}", done.text());
}

/// Dresden's Bürgerbüro without an interface: its clerk anna works in the clerk inbox.
fn buergerbuero_in_the_inbox(routing: String) -> String {
    kopplung_tests::clerks::manual(&routing, "dresden-buergerbuero", &["anna"])
}

/// The same conversation with an authority whose procedure has no interface: the
/// citizen clicks it in chromium as above, while the Bürgerbüro's clerk works in the
/// clerk inbox — takes the application over, confirms it, asks, reads the answer and
/// its photo, decides with a PDF, the Rechtsbehelfsbelehrung and the tax, sees the tax
/// paid, and reads the objection. The payment record goes to the city's accounting
/// over the broker.
#[tokio::test]
async fn the_whole_conversation_with_a_clerk_in_the_inbox() {
    use kopplung_tests::browser::{Browser, csrf_of, served_text};
    use kopplung_tests::clerks::{hash, inbox_link};
    let cycle = Cycle::with(Options {
        procedures: true,
        edit_routing: buergerbuero_in_the_inbox,
        hub_config: format!(
            "[[clerk]]\nid = \"anna\"\nname = \"Anna Beispiel\"\npassword_argon2 = \"{}\"\n",
            hash(ANNA_PASSWORD)
        ),
        ..Options::default()
    })
    .await;
    let (citizen, draft) =
        portal_support::dog_tax_submitted(&cycle, "hundehalterin@example.org").await;
    let receipt = cycle
        .sql(&format!("SELECT receipt FROM drafts WHERE id = '{draft}'"))
        .trim()
        .to_owned();

    let clerk = async {
        let mut anna = Browser::new(&cycle.hub);
        assert_eq!(anna.inbox_login("anna", ANNA_PASSWORD).await.status, 303);
        let path = inbox_link(&mut anna, &receipt).await;
        let page = served_text(&anna.get(&path).await);
        let csrf = csrf_of(&page).expect("csrf");
        let taken = anna.post(&format!("{path}/take"), &[("csrf", &csrf)]).await;
        assert_eq!(taken.status, 303);
        act(&mut anna, &path, &csrf, "accept", &[], None).await;
        act(
            &mut anna,
            &path,
            &csrf,
            "query",
            &[("text", "Bitte senden Sie uns ein Foto der Steuermarke.")],
            None,
        )
        .await;

        // The answer waits in the inbox with the citizen's text and photo.
        let answer = inbox_link(&mut anna, &format!("{receipt}/")).await;
        let page = served_text(&anna.get(&answer).await);
        assert!(page.contains("Antwort auf die Rückfrage"), "{page}");
        assert!(page.contains("Steuermarke."), "{page}");
        assert!(page.contains("Bello.png"), "{page}");
        let taken = anna
            .post(&format!("{answer}/take"), &[("csrf", &csrf)])
            .await;
        assert_eq!(taken.status, 303);

        let deadline =
            (time::OffsetDateTime::now_utc().date() + time::Duration::days(35)).to_string();
        let pdf = b"%PDF-1.7\n% Steuerbescheid Hundesteuer\n%%EOF\n".to_vec();
        act(&mut anna, &path, &csrf, "in_progress", &[], None).await;
        act(
            &mut anna,
            &path,
            &csrf,
            "decision",
            &[
                ("text", "Die Hundesteuer für 2027 wird festgesetzt."),
                (
                    "appeal_text",
                    "Gegen diesen Bescheid kann innerhalb eines Monats Widerspruch erhoben werden.",
                ),
                ("appeal_deadline", &deadline),
                ("fee_amount", "108,00"),
                ("fee_purpose", "Hundesteuer 2027"),
            ],
            Some(("document", "Steuerbescheid.pdf", "application/pdf", pdf)),
        )
        .await;

        // The objection, and the tax shown as paid once the payment record went out.
        let objection = inbox_link(&mut anna, &format!("{receipt}/")).await;
        let page = served_text(&anna.get(&objection).await);
        assert!(page.contains("Widerspruch gegen den Bescheid"), "{page}");
        assert!(page.contains("Blindenhund"), "{page}");
        let taken = anna
            .post(&format!("{objection}/take"), &[("csrf", &csrf)])
            .await;
        assert_eq!(taken.status, 303);
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let case = served_text(&anna.get(&path).await);
            if case.contains("online bezahlt (Zahlungsmeldung an die Kasse am") {
                assert!(case.contains("Widerspruch gegen den Bescheid"), "{case}");
                break;
            }
            assert!(
                Instant::now() < until,
                "the tax is not shown as paid: {case}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let citizen_walk = walk_in_chromium(&cycle, &citizen, "whole-conversation.mjs", &draft);
    tokio::join!(clerk, citizen_walk);

    let status = cycle
        .wait_for_messages(&draft, &[("zahlung", "dresden-kasse", "received")])
        .await;
    let taken =
        |kind| portal_support::lists_message(&status, (kind, "dresden-buergerbuero", "delivered"));
    assert!(taken("antwort") && taken("widerspruch"), "{status:#}");
    let history = kopplung_tests::shared::history(&status, "status");
    assert_eq!(history.last(), Some(&"decided"), "{history:?}");
    assert!(history.contains(&"query"), "{history:?}");
    assert!(
        status["history"]
            .to_string()
            .contains("recorded by clerk anna in the clerk inbox"),
        "{status:#}"
    );
    assert!(
        !cycle.log().contains("Blindenhund") && !cycle.hub.log().contains("Blindenhund"),
        "the citizen's text stays out of the logs"
    );
}

/// The value of the hidden field `name` of the form on `page`.
fn hidden(page: &Page, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name}:\n{}", page.body))
        + marker.len();
    let end = start + page.body[start..].find('"').expect("value end");
    page.body[start..end].to_owned()
}

#[tokio::test]
async fn an_anonymous_reporter_answers_the_question_from_the_status_page_with_a_phone_photo() {
    let cycle = Cycle::with(Options {
        procedures: true,
        sim_args: vec!["--ask-first".into(), "dresden-maengel".into()],
        sections: "[notifications]\npoll_secs = 1\n".into(),
        ..Options::default()
    })
    .await;
    let mailbox = cycle.mailbox();
    let reporter = "rita@example.org";
    let mut rita = Citizen::new(&cycle);
    let draft = portal_support::report_a_pothole(&mut rita).await;
    let page = rita.get(&format!("/antraege/{draft}")).await;
    let asked = rita
        .post(
            &format!("/antraege/{draft}/benachrichtigung"),
            &[("csrf", &page.csrf()), ("email", reporter)],
        )
        .await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    let confirm = mailbox
        .wait_for(reporter)
        .await
        .link(&cycle.url("/status/"));
    let status_link = confirm.trim_end_matches("/bestaetigen").to_owned();

    // Days later, on the phone, without the session: the link from the mail.
    let mut phone = Citizen::new(&cycle);
    // Unconfirmed, the link offers no answer yet: the confirmation comes first.
    let early = phone
        .get(&format!("{status_link}/nachricht?art=antwort"))
        .await;
    assert_eq!(early.status, 303, "{}", early.body);
    let opened = phone.get(&confirm).await;
    let confirmed = phone.post(&confirm, &[("csrf", &opened.csrf())]).await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);

    // The authority asks; the status page offers the answer.
    let until = Instant::now() + Duration::from_secs(90);
    let status = loop {
        let status = phone.get(&status_link).await;
        if status.body.contains("Auf die Rückfrage antworten") {
            break status;
        }
        assert!(Instant::now() < until, "no question:\n{}", status.body);
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(status.body.contains("Rückfrage"), "{}", status.body);
    let reply = link_before(&status, "Auf die Rückfrage antworten");
    assert!(
        status_link.ends_with(reply.split("/nachricht?art=antwort&bezug=").next().unwrap()),
        "{reply}"
    );
    let form = phone.get(&reply).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Ihre Antwort"), "{}", form.body);
    assert!(
        form.body.contains("werden automatisch verkleinert"),
        "the photo limit is named: {}",
        form.body
    );
    kopplung_tests::assert_has(&form.body, "Zurück zu Ihrer Meldung");
    // Only answers: an objection or later documents need the reporter's own page.
    for other in ["widerspruch", "nachreichung"] {
        let refused = phone
            .get(&format!("{status_link}/nachricht?art={other}"))
            .await;
        assert_eq!(refused.status, 404, "{other}: {}", refused.body);
    }

    // A 9 MB phone photo as the answer: scaled down below the Mängelanzeige's 5 MB.
    let photo = portal_support::phone_photo(2500, 1600, (51.05089, 13.73832));
    assert!(photo.len() > 8 * 1024 * 1024, "{} bytes", photo.len());
    let (csrf, bezug, key) = (
        form.csrf(),
        hidden(&form, "bezug"),
        hidden(&form, "schluessel"),
    );
    let sent = post_form(
        &mut phone,
        &format!("{status_link}/nachricht"),
        &[
            ("csrf", &csrf),
            ("art", "antwort"),
            ("bezug", &bezug),
            ("schluessel", &key),
            ("text", "Hier ein Foto, das Loch ist größer geworden."),
        ],
        Some(("IMG_2031.JPG", "image/jpeg", photo)),
    )
    .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let shown = phone.follow(sent).await;
    kopplung_tests::assert_has(&shown.body, "Ihre Antwort ist gespeichert");
    kopplung_tests::assert_has(&shown.body, "Ihre Antwort auf die Rückfrage");
    kopplung_tests::assert_lacks(&shown.body, "Auf die Rückfrage antworten");

    // The procedure receives the answer and closes the report.
    let status = cycle
        .wait_for_messages(&draft, &[("antwort", "dresden-maengel", "received")])
        .await;
    let answer = status["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "antwort")
        .expect("the answer");
    let stored = cycle.hub.sql(&format!(
        "SELECT media_type || ' ' || size FROM attachments WHERE application_id = '{}'",
        answer["id"].as_str().unwrap()
    ));
    let (media_type, size) = stored.trim().split_once(' ').expect("one attachment");
    assert_eq!(media_type, "image/jpeg");
    assert!(
        size.parse::<u64>().unwrap() < 5 * 1024 * 1024,
        "{size} bytes"
    );
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let page = phone.get(&status_link).await;
        if page.body.contains("Erledigt") {
            assert!(
                page.body
                    .contains("Sie haben auf diese Rückfrage geantwortet."),
                "{}",
                page.body
            );
            break;
        }
        assert!(Instant::now() < until, "not closed:\n{}", page.body);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !cycle.log().contains("größer geworden") && !cycle.log().contains(reporter),
        "the reporter's words and address stay out of the logs"
    );
}
