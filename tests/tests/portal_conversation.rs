//! The citizen writes back in the portal (issue 23): once the reference procedure has
//! decided, the application page offers an objection; the form explains in German what
//! is missing, sends it to the authority through the hub, and the page shows the
//! objection and its delivery; a second one is refused with the hub's reason. Another
//! citizen cannot write on this application. Real hub, reference procedure, portal.

mod portal_support;

use std::time::{Duration, Instant};

use portal_support::{Citizen, Cycle, Page};

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
