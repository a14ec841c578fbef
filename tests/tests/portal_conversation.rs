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
    let request = citizen
        .http
        .post(citizen.url(&format!("/antraege/{draft}/nachricht")))
        .multipart(form);
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

const CHROMIUM: &str = "/usr/bin/chromium";

/// `tests/browser/conversation.mjs` with the citizen's session; SCREENSHOTS=<folder>
/// keeps its screenshots.
async fn walk_in_chromium(cycle: &Cycle, citizen: &Citizen, draft: &str) {
    assert!(
        std::path::Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: `apt-get install chromium` (scripts/test does)"
    );
    let browser_dir = kopplung_tests::node_packages(
        "browser",
        &["playwright-core", "axe-core"],
        "the browser test",
    );
    let out = tempfile::tempdir().expect("output dir");
    let out_path = std::env::var_os("SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| out.path().to_owned());
    let args = [
        browser_dir.join("conversation.mjs").display().to_string(),
        cycle.portal_url.clone(),
        citizen.cookie_header().expect("a session"),
        draft.to_owned(),
        out_path.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(args)
            .env("CHROMIUM", CHROMIUM)
            .output()
            .expect("node")
    })
    .await
    .expect("browser run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let html = std::fs::read_to_string(out_path.join("failure.html")).unwrap_or_default();
    assert!(
        output.status.success() && stdout.contains("PASSED"),
        "the browser run failed:\n{stdout}\n{}\n--- page ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        html.chars().take(6000).collect::<String>()
    );
}

#[tokio::test]
async fn a_citizen_objects_to_the_decision_in_the_portal() {
    let cycle = Cycle::start(true).await;
    let mut citizen = Citizen::new(&cycle);
    citizen.register("widerspruch@example.org").await;
    let (draft, next) = portal_support::start_pothole_report(&mut citizen).await;
    let attachments = citizen.get(&next).await;
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert_eq!(attachments.status, 200);
    citizen.submit_reviewed(&draft, &review).await;

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
    assert!(
        form.body.contains("Widerspruch ist bis einschließlich"),
        "{}",
        form.body
    );
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
    assert!(
        missing.body.contains("Bitte schreiben Sie einen Text."),
        "{}",
        missing.body
    );
    // A file that is not what it says: refused in German.
    let reasons = fields("Das Schlagloch ist nicht beseitigt worden.");
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
    walk_in_chromium(&cycle, &citizen, &draft).await;
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
    assert!(
        again.body.contains("bereits Widerspruch eingelegt"),
        "{}",
        again.body
    );
    // The portal's log holds none of what the citizen wrote.
    assert!(
        !cycle.log().contains("Schlagloch ist nicht"),
        "{}",
        cycle.log()
    );
}

/// Polls the application page of `draft` until it shows `text`.
async fn page_showing(citizen: &mut Citizen, draft: &str, text: &str) -> Page {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let page = citizen.get(&format!("/antraege/{draft}")).await;
        if page.body.contains(text) {
            return page;
        }
        assert!(Instant::now() < until, "never „{text}“:\n{}", page.body);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The whole conversation through the portal, over the broker, as the citizen clicks
/// it: the dog tax is applied for; Dresden's Bürgerbüro asks first; the citizen answers
/// with a photo; the decision sets the tax and the Rechtsbehelfsbelehrung; the citizen
/// pays, and the payment record reaches the city's accounting (HKR), which receipts it;
/// the citizen objects once.
#[tokio::test]
async fn the_whole_conversation_through_the_portal_over_the_broker() {
    let cycle = Cycle::with(Options {
        procedures: true,
        sim_args: vec!["--ask-first".into(), "dresden-buergerbuero".into()],
        ..Options::default()
    })
    .await;
    let mut citizen = Citizen::new(&cycle);
    citizen.register("hundehalter@example.org").await;
    let region = portal_support::fixture("hundesteuer")["region"]
        .as_str()
        .unwrap()
        .to_owned();
    let location = citizen.start("99999003000000", &region).await;
    let draft = portal_support::fill_from_fixture(&mut citizen, "hundesteuer", location).await;
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    citizen.submit_reviewed(&draft, &review).await;

    // The Rückfrage, answered with a photo through the form under it.
    let asked = page_showing(&mut citizen, &draft, "Auf die Rückfrage antworten").await;
    assert!(
        asked.body.contains("Rückfrage zu Ihrem Antrag"),
        "{}",
        asked.body
    );
    let href = link_before(&asked, "Auf die Rückfrage antworten");
    let form = citizen.get(&href).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.csrf();
    let bezug = href.split("bezug=").nth(1).unwrap().to_owned();
    let png = [
        &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A][..],
        &[0u8; 32][..],
    ]
    .concat();
    let answered = post_message(
        &mut citizen,
        &draft,
        &[
            ("csrf", &csrf),
            ("art", "antwort"),
            ("bezug", &bezug),
            ("text", "Anbei ein Foto von Bello mit Marke."),
        ],
        Some(("Bello.png", "image/png", png)),
    )
    .await;
    assert_eq!(answered.status, 303, "{}", answered.body);

    // Only after the answer: the decision, with the tax and the appeal information.
    let decided = page_showing(&mut citizen, &draft, "Gebühr jetzt online bezahlen").await;
    assert!(
        decided
            .body
            .contains("Sie haben auf diese Rückfrage geantwortet."),
        "{}",
        decided.body
    );
    assert!(
        decided.body.contains("Widerspruch ist bis einschließlich"),
        "{}",
        decided.body
    );
    let to_provider = citizen
        .post(
            &format!("/antraege/{draft}/gebuehr/bezahlen"),
            &[("csrf", &decided.csrf())],
        )
        .await;
    assert_eq!(to_provider.status, 303, "{}", to_provider.body);
    let provider = citizen.get(&to_provider.location()).await;
    let paid = citizen
        .post(
            &to_provider.location(),
            &[
                ("csrf", &provider.csrf()),
                ("zahlart", "kreditkarte"),
                ("aktion", "bezahlen"),
            ],
        )
        .await;
    let paid = citizen.follow(paid).await;
    assert!(
        paid.body.contains("Die Gebühr ist bezahlt."),
        "{}",
        paid.body
    );

    // The answer and the payment record, each receipted by its procedure.
    let application = cycle.sql(&format!(
        "SELECT application_id FROM drafts WHERE id = '{draft}'"
    ));
    let status = cycle
        .hub
        .wait_until(
            application.trim(),
            "receipt answer and payment record",
            Duration::from_secs(60),
            |s| {
                let received = |kind: &str, procedure: &str| {
                    s["messages"].as_array().is_some_and(|all| {
                        all.iter().any(|m| {
                            m["kind"] == kind
                                && m["procedure"] == procedure
                                && m["status"] == "received"
                        })
                    })
                };
                received("antwort", "dresden-buergerbuero") && received("zahlung", "dresden-kasse")
            },
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

    // The objection, once.
    let href = link_before(&paid, "Widerspruch einlegen");
    let form = citizen.get(&href).await;
    let csrf = form.csrf();
    let bezug = href.split("bezug=").nth(1).unwrap().to_owned();
    let objection = [
        ("csrf", csrf.as_str()),
        ("art", "widerspruch"),
        ("bezug", bezug.as_str()),
        ("text", "Bello ist ein Blindenhund und steuerfrei."),
    ];
    let objected = post_message(&mut citizen, &draft, &objection, None).await;
    assert_eq!(objected.status, 303, "{}", objected.body);
    let again = post_message(&mut citizen, &draft, &objection, None).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let sim_log = std::fs::read_to_string(cycle.hub.dir.path().join("sim.log")).unwrap();
    assert!(
        sim_log.contains("answer to the question received"),
        "{sim_log}"
    );
    assert!(
        !cycle.log().contains("Blindenhund"),
        "the citizen's text stays out of the log"
    );
}
