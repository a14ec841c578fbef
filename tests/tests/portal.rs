//! The citizens' portal over HTTP, as two citizens and an anonymous visitor would use it
//! (cookies, CSRF tokens, redirects by hand): authorisation between citizens, CSRF,
//! the sign-in limit, the anonymous Mängelanzeige, the trust level, no submission
//! before payment and the payment reference in the delivered message, upload limits
//! and security headers. Real hub, reference procedure and portal processes.

mod portal_support;

use std::time::{Duration, Instant};

use kopplung_tests::ADMIN_TOKEN;
use kopplung_tests::oidc::{ERIKA, HIGH, IdpBrowser, SUBSTANTIAL};
use kopplung_tests::shared::assert_fails_naming;
use portal_support::{Citizen, Cycle, DRESDEN, MAENGEL, MELDE, PASSWORD, Page, draft_of};

async fn wait_for_decision(citizen: &mut Citizen, draft: &str) -> Page {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let page = citizen.get(&format!("/antraege/{draft}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        if page.body.contains("Dokument herunterladen") {
            return page;
        }
        assert!(
            Instant::now() < until,
            "no decision within 90 s:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn document_link(page: &Page) -> String {
    let start = page.body.find("/dokumente/").expect("document link");
    let begin = page.body[..start].rfind('"').expect("href start") + 1;
    let end = start + page.body[start..].find('"').expect("href end");
    page.body[begin..end].to_owned()
}

#[tokio::test]
async fn citizen_b_cannot_reach_citizen_a_s_draft_application_or_document() {
    let cycle = Cycle::start(true).await;
    let mut anna = Citizen::new(&cycle);
    anna.register("anna@example.org").await;
    let draft = portal_support::report_a_pothole(&mut anna).await;
    // A second draft, not submitted.
    let open_step = anna.start(MAENGEL, DRESDEN).await;
    let open_draft = draft_of(&open_step);
    let decided = wait_for_decision(&mut anna, &draft).await;
    // A report is answered and dealt with, not decided: a closing letter, no appeal.
    assert!(
        decided.body.contains("Abschlussmitteilung")
            && decided.body.contains(">Erledigt</dd>")
            && !decided.body.contains("Bescheid")
            && !decided.body.contains("Widerspruch"),
        "{}",
        decided.body
    );
    // Dresden's Mängelanzeige goes to the procedure over AMQP: the status page says so
    // in the citizen's words.
    assert!(
        decided.body.contains("Übermittlungsweg")
            && decided
                .body
                .contains("Elektronisch direkt an das Fachverfahren der Behörde"),
        "{}",
        decided.body
    );
    let document = document_link(&decided);
    let own = anna.get(&document).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.headers["content-type"], "application/pdf");
    // The decision's own file name, whole (RFC 6266: a plain `filename` and the exact
    // one as `filename*`), never parameters run together.
    let disposition = own.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    let plain = disposition
        .split("filename=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default();
    let exact = disposition
        .split("filename*=UTF-8''")
        .nth(1)
        .unwrap_or_default();
    assert!(
        plain.starts_with("abschlussmitteilung-") && plain.ends_with(".pdf") && plain == exact,
        "{disposition}"
    );
    assert_eq!(own.headers["x-content-type-options"], "nosniff");
    // The document's own policy survives the portal's security headers.
    assert_eq!(own.headers["content-security-policy"], "sandbox");
    assert_eq!(
        anna.get(&format!("/antraege/{draft}/bestaetigung.pdf"))
            .await
            .status,
        200
    );

    let mut bernd = Citizen::new(&cycle);
    bernd.register("bernd@example.org").await;
    let mut stranger = Citizen::new(&cycle);
    for visitor in [&mut bernd, &mut stranger] {
        for path in [
            format!("/antraege/{draft}"),
            format!("/antraege/{draft}/bestaetigung.pdf"),
            document.clone(),
            format!("/entwurf/{open_draft}/schritt/1"),
            format!("/entwurf/{open_draft}/anlagen"),
            format!("/entwurf/{open_draft}/pruefen"),
            format!("/entwurf/{draft}/pruefen"),
        ] {
            let page = visitor.get(&path).await;
            assert_eq!(page.status, 404, "{path} reached by another visitor");
            assert!(!page.body.contains("Königsbrücker"), "{path}");
            assert!(!page.body.contains("%PDF"), "{path}");
        }
        let csrf = visitor.csrf().await;
        for path in [
            format!("/entwurf/{open_draft}/schritt/1"),
            format!("/entwurf/{open_draft}/absenden"),
            format!("/entwurf/{open_draft}/loeschen"),
            format!("/entwurf/{open_draft}/bezahlen"),
        ] {
            let page = visitor
                .post(
                    &path,
                    &[("csrf", csrf.as_str()), ("beschreibung", "übernommen")],
                )
                .await;
            assert_eq!(page.status, 404, "POST {path} by another visitor");
        }
    }
    let lists = [
        bernd.get("/konto/antraege").await.body,
        bernd.get("/konto/postfach").await.body,
        bernd.get("/konto/entwuerfe").await.body,
    ];
    for list in lists {
        assert!(!list.contains(&draft) && !list.contains(&open_draft));
    }
    // Anna's are still hers, untouched.
    let mine = anna.get(&format!("/entwurf/{open_draft}/schritt/1")).await;
    assert_eq!(mine.status, 200);
    assert!(!mine.body.contains("übernommen"));
    let mailbox = anna.get("/konto/postfach").await;
    assert!(
        mailbox.body.contains("Abschlussmitteilung: Mängelanzeige")
            && mailbox.body.contains(">Meldung "),
        "{}",
        mailbox.body
    );
    let log = cycle.log();
    for personal in ["anna@example.org", "Königsbrücker", "Schlagloch"] {
        assert!(!log.contains(personal), "{personal} in the portal's log");
    }
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused_and_sign_in_is_limited() {
    let cycle = Cycle::start(false).await;
    let mut visitor = Citizen::new(&cycle);
    let csrf = visitor.csrf().await;
    for token in [
        "",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let refused = visitor
            .post(
                "/konto/registrieren",
                &[
                    ("csrf", token),
                    ("email", "mallory@example.org"),
                    ("password", PASSWORD),
                    ("password2", PASSWORD),
                ],
            )
            .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(refused.body.contains("Formular ist abgelaufen"));
    }
    // Another visitor's valid token is no good either.
    let mut other = Citizen::new(&cycle);
    let foreign = other.csrf().await;
    assert_ne!(foreign, csrf);
    let refused = visitor.post_start(MAENGEL, DRESDEN, &foreign).await;
    assert_eq!(refused.status, 403);
    // Nothing was registered: signing in as mallory fails.
    let failed = visitor
        .sign_in(&csrf, "mallory@example.org", PASSWORD)
        .await;
    assert_eq!(failed.status, 401);

    // The sign-in limit: 5 failures for one address, then even the right password waits.
    let mut carla = Citizen::new(&cycle);
    carla.register("carla@example.org").await;
    let mut guesser = Citizen::new(&cycle);
    let csrf = guesser.csrf().await;
    for attempt in 1..=4 {
        let wrong = guesser
            .sign_in(
                &csrf,
                "carla@example.org",
                &format!("falsch-{attempt}-xxxxxxxx"),
            )
            .await;
        assert_eq!(wrong.status, 401, "attempt {attempt}");
        assert!(wrong.body.contains("nicht richtig"));
    }
    let fifth = guesser
        .sign_in(&csrf, "CARLA@example.org", "falsch-5-xxxxxxxx")
        .await;
    assert_eq!(fifth.status, 401);
    let locked = guesser.sign_in(&csrf, "carla@example.org", PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(locked.headers.contains_key("retry-after"));
    assert!(
        locked
            .body
            .contains("Zu viele fehlgeschlagene Anmeldeversuche")
    );
    // Other addresses still sign in.
    let mut dora = Citizen::new(&cycle);
    dora.register("dora@example.org").await;
    let mut again = Citizen::new(&cycle);
    let signed_in = again
        .sign_in_next("dora@example.org", "//evil.example/")
        .await;
    assert_eq!(signed_in.status, 303);
    // No open redirect.
    assert_eq!(signed_in.location(), "/konto");
}

#[tokio::test]
async fn the_maengelanzeige_goes_anonymously_and_upload_limits_and_headers_hold() {
    let cycle = Cycle::start(false).await;
    let mut visitor = Citizen::new(&cycle);
    let start = visitor.get("/").await;
    let headers = &start.headers;
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert!(!headers.contains_key("strict-transport-security"));
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(start.body.contains("lang=\"de\"") && start.body.contains("href=\"#inhalt\""));

    // Services that need an account send anonymous visitors to sign in.
    let csrf = visitor.csrf().await;
    let to_login = visitor.post_start(MELDE, DRESDEN, &csrf).await;
    assert_eq!(to_login.status, 303);
    assert!(to_login.location().starts_with("/konto/anmelden?weiter="));

    // The Mängelanzeige: validation errors with a summary linked to the fields.
    let step = visitor.start(MAENGEL, DRESDEN).await;
    let draft = draft_of(&step);
    let page = visitor.get(&step).await;
    let csrf = page.csrf();
    let errors = visitor
        .post(
            &step,
            &[
                ("csrf", &csrf),
                ("kategorie", "ufo"),
                ("beschreibung", "kurz"),
            ],
        )
        .await;
    assert_eq!(errors.status, 422);
    for expected in [
        "href=\"#f-kategorie\"",
        "href=\"#f-beschreibung\"",
        "href=\"#f-ort\"",
        "aria-describedby=\"f-beschreibung-hint f-beschreibung-error\"",
        "aria-invalid=\"true\"",
    ] {
        assert!(
            errors.body.contains(expected),
            "{expected}:\n{}",
            errors.body
        );
    }
    let next = visitor
        .fill(
            &step,
            &[
                ("kategorie", "beleuchtung"),
                ("beschreibung", "Laterne vor Haus 3 ist seit Tagen dunkel"),
                ("ort.strasse", "Hauptstraße"),
            ],
        )
        .await;
    assert_eq!(next, format!("/entwurf/{draft}/anlagen"));
    let csrf = visitor.get(&next).await.csrf();
    // A GIF is none of the types it takes (photos and PDFs); an HTML file claiming to be
    // a PNG is refused by its bytes; a photo that is none cannot be read; a PDF of more
    // than 5 MiB is too large (a photo that large would be scaled down).
    for (name, media_type, content, message) in [
        (
            "animation.gif",
            "image/gif",
            b"GIF89a\x01\x00\x01\x00".to_vec(),
            "Dateityp ist nicht erlaubt",
        ),
        (
            "bild.png",
            "image/png",
            b"<html><script>alert(1)</script></html>".to_vec(),
            "Dateityp ist nicht erlaubt",
        ),
        (
            "kaputt.jpg",
            "image/jpeg",
            [&[0xFF, 0xD8, 0xFF][..], &vec![0u8; 5 * 1024 * 1024][..]].concat(),
            "Das Foto konnte nicht gelesen werden. Bitte wählen Sie ein anderes Foto",
        ),
        (
            "gross.pdf",
            "application/pdf",
            [&b"%PDF-1.4\n"[..], &vec![b' '; 5 * 1024 * 1024][..]].concat(),
            "Die Datei ist zu groß",
        ),
    ] {
        let refused = visitor
            .upload(&draft, &csrf, name, media_type, content)
            .await;
        assert_eq!(refused.status, 422, "{name}");
        assert!(refused.body.contains(message), "{name}: {}", refused.body);
    }
    let no_csrf = visitor
        .upload(
            &draft,
            "",
            "foto.jpg",
            "image/jpeg",
            vec![0xFF, 0xD8, 0xFF, 0xE0],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    let accepted = visitor
        .upload(
            &draft,
            &csrf,
            "foto.jpg",
            "image/jpeg",
            portal_support::photo_jpeg(),
        )
        .await;
    assert_eq!(accepted.status, 303);
    let review = visitor.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert!(review.body.contains("foto.jpg") && !review.body.contains("brief.pdf"));
    // A report is sent, not bindingly applied for (`wording = "meldung"`).
    kopplung_tests::assert_has(&review.body, ">Meldung absenden<");
    assert!(!review.body.contains("Antrag verbindlich absenden"));
    let submitted = visitor.submit(&draft, &review.csrf()).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let confirmation = visitor.follow(submitted).await;
    assert_eq!(confirmation.status, 200);
    assert!(confirmation.body.contains("id=\"vorgangsnummer\""));
    assert!(confirmation.body.contains("Meldung eingegangen"));
    // Submitting twice changes nothing: the draft is an application now.
    let again = visitor.submit(&draft, &review.csrf()).await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location(), format!("/antraege/{draft}"));
    // The router has exactly one application of the portal for it.
    let hub = &cycle.hub;
    let found: serde_json::Value = hub
        .get_json(
            &format!("/api/v1/admin/applications?service={MAENGEL}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        found["applications"].as_array().unwrap().len(),
        1,
        "{found}"
    );

    // A draft started anonymously becomes the account's when the visitor registers.
    let mut newcomer = Citizen::new(&cycle);
    let step = newcomer.start(MAENGEL, DRESDEN).await;
    let draft = draft_of(&step);
    newcomer.register("fiona@example.org").await;
    let drafts = newcomer.get("/konto/entwuerfe").await;
    assert!(drafts.body.contains(&draft), "{}", drafts.body);
    assert_eq!(newcomer.get(&step).await.status, 200);
}

#[tokio::test]
async fn a_fee_is_paid_before_submission_and_the_trust_level_is_checked() {
    let cycle = Cycle::with_oidc_provider().await;
    let mut erik = Citizen::new(&cycle);
    erik.register("erik@example.org").await;
    // Master data prefill the form.
    let csrf = erik.csrf().await;
    let saved = erik
        .post(
            "/konto/stammdaten",
            &[
                ("csrf", &csrf),
                ("person.familienname", "Weber"),
                ("person.vornamen", "Erik"),
                ("person.geburtsdatum", "02.03.1985"),
                ("anschrift.strasse", "Prager Straße"),
                ("anschrift.hausnummer", "8"),
                ("anschrift.postleitzahl", "01069"),
                ("anschrift.ort", "Dresden"),
            ],
        )
        .await;
    assert_eq!(saved.status, 200);
    let step = erik.start(MELDE, DRESDEN).await;
    let draft = draft_of(&step);
    // A password account is basis < substanziell: the form, the review and the
    // submission are refused, with the way out (step-up at the identity provider).
    let step_up = erik.get(&step).await;
    kopplung_tests::assert_has(&step_up.body, "Höheres Vertrauensniveau nötig");
    assert!(!step_up.body.contains("value=\"Weber\""));
    let review = erik.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert!(review.body.contains("Höheres Vertrauensniveau nötig"));
    assert!(!review.body.contains("Antrag verbindlich absenden"));
    let refused = erik.submit(&draft, &step_up.csrf()).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    // The simulated identification is gone.
    let old = erik
        .post(
            "/konto/identifizierung",
            &[("csrf", &step_up.csrf()), ("verfahren", "elster")],
        )
        .await;
    assert_eq!(old.status, 405);
    let mut idp = IdpBrowser::new(cycle.idp.as_ref().unwrap());
    erik.sign_in_at(&mut idp, ERIKA, SUBSTANTIAL, &step, false)
        .await;
    // Identified (the same account): the master data prefill the form.
    let form = erik.get(&step).await;
    assert!(form.body.contains("value=\"Weber\""), "prefilled");
    // The applicant's own inputs say their purpose (WCAG 1.3.5).
    assert!(form.body.contains("autocomplete=\"family-name\""));
    assert!(form.body.contains("autocomplete=\"postal-code\""));
    // The payment reference is the portal's to fill: no input for it.
    assert!(!form.body.contains("zahlung.referenz"));
    let next = erik
        .fill(
            &step,
            &[
                ("art", "einfach"),
                ("person.familienname", "Weber"),
                ("person.vornamen", "Erik"),
                ("person.geburtsdatum", "02.03.1985"),
                ("anschrift.strasse", "Prager Straße"),
                ("anschrift.postleitzahl", "01069"),
                ("anschrift.ort", "Dresden"),
                ("zustellung", "abholung"),
                // A value the citizen must not set: ignored.
                ("zahlung.referenz", "GESCHENKT"),
            ],
        )
        .await;
    assert_eq!(next, format!("/entwurf/{draft}/pruefen"));
    let review = erik.get(&next).await;
    assert!(review.body.contains("Weber"), "{}", review.body);
    // Not paid: no submission.
    let unpaid = erik.submit(&draft, &review.csrf()).await;
    assert_eq!(unpaid.status, 422, "{}", unpaid.body);
    assert!(unpaid.body.contains("Bitte bezahlen Sie zuerst die Gebühr"));
    // Cancelled at the provider: still not paid.
    for (action, paid) in [("abbrechen", false), ("bezahlen", true)] {
        let (provider_page, back) = erik.pay(&draft, &review.csrf(), "paypal", action).await;
        assert!(provider_page.body.contains("5,00 €"));
        // Only methods that exist, from the portal's configuration (giropay ended).
        assert!(!provider_page.body.to_lowercase().contains("giropay"));
        for method in ["Kreditkarte", "PayPal", "SEPA-Lastschrift"] {
            assert!(provider_page.body.contains(method), "{method}");
        }
        assert_eq!(back.status, 200);
        assert_eq!(
            back.body.contains("Zahlungsreferenz"),
            paid,
            "{}",
            back.body
        );
        // Either way the review says what happened.
        let said = if paid {
            "Zahlung erfolgreich – jetzt absenden"
        } else {
            "Sie haben die Zahlung abgebrochen."
        };
        assert!(back.body.contains(said), "{}", back.body);
    }
    let submitted = erik.submit(&draft, &review.csrf()).await;
    assert_eq!(submitted.status, 303, "{}", submitted.body);
    let confirmation = erik.follow(submitted).await;
    let reference_at = confirmation.body.find("XBZ-").expect("payment reference");
    let reference: String = confirmation.body[reference_at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    // The reference travelled in the XÖV message.
    let hub = &cycle.hub;
    let found = hub
        .get_json(
            &format!("/api/v1/admin/applications?service={MELDE}"),
            ADMIN_TOKEN,
        )
        .await;
    let id = found["applications"][0]["id"]
        .as_str()
        .expect("application");
    let message = hub
        .fetch(
            &format!("/api/v1/admin/applications/{id}/message"),
            Some(ADMIN_TOKEN),
        )
        .await
        .text()
        .await
        .unwrap();
    kopplung_tests::assert_has(
        &message,
        format!("<zahlungsreferenz>{reference}</zahlungsreferenz>"),
    );
    assert!(!message.contains("GESCHENKT"));
    // And the payment record of the fee went to the city's accounting (HKR) procedure.
    let reported = hub
        .wait_until(
            id,
            "report the fee paid at submission",
            Duration::from_secs(60),
            |status| {
                status["messages"].as_array().is_some_and(|all| {
                    all.iter()
                        .any(|m| m["kind"] == "zahlung" && m["procedure"] == "dresden-kasse")
                })
            },
        )
        .await;
    let record = &reported["messages"][0];
    assert!(
        record.get("refers_to").is_none(),
        "the fee at submission: {reported:#}"
    );
    let record_message = hub
        .fetch(
            &format!(
                "/api/v1/admin/applications/{}/message",
                record["id"].as_str().unwrap()
            ),
            Some(ADMIN_TOKEN),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        record_message.contains("<fol:zahlung.0204 ")
            && record_message.contains(&format!("<referenz>{reference}</referenz>"))
            && record_message.contains("<betrag waehrung=\"EUR\">"),
        "{record_message}"
    );
}

#[tokio::test]
async fn behind_tls_cookies_are_secure_and_hsts_is_sent_and_bad_requests_get_german_pages() {
    let cycle = Cycle::start_with(false, &["--public-url", "https://portal.example"]).await;
    let page = reqwest::get(cycle.url("/")).await.unwrap();
    let headers = page.headers();
    assert_eq!(
        headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // A form post that is no form: a German page, not the framework's English text.
    let refused = reqwest::Client::new()
        .post(cycle.url("/konto/anmelden"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error());
    kopplung_tests::shared::assert_content_type(refused.headers(), "text/html");
    let body = refused.text().await.unwrap();
    kopplung_tests::assert_has(&body, "Die Anfrage konnte nicht verarbeitet werden");
    // Without the KERN UX assets the portal does not start, and says why.
    let output = std::process::Command::new(kopplung_tests::kopplung_bin())
        .arg("portal")
        .arg("--config")
        .arg(cycle.portal_dir.path().join("portal.toml"))
        .args(["--listen", "127.0.0.1:0", "--hub", "http://127.0.0.1:9"])
        .arg("--token-file")
        .arg(cycle.hub.data_dir().join("intake-token"))
        .arg("--data-dir")
        .arg(cycle.portal_dir.path().join("other"))
        .args(["--kern-dir", "/nonexistent/kern"])
        .output()
        .unwrap();
    assert_fails_naming(
        &output,
        &["KERN UX assets are missing", "npm ci --prefix portal"],
    );
}

/// Every service's form, filled in through the pages from its mapping's complete
/// fixture (with its attachments), paid where it has a fee, and submitted.
#[tokio::test]
async fn every_service_can_be_applied_for_through_its_form() {
    let cycle = Cycle::with_oidc_provider().await;
    let services: serde_json::Value = reqwest::get(cycle.hub.url("/api/v1/services"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<&str> = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "Bewohnerparkausweis",
            "Gewerbeanmeldung",
            "Hundesteuer-Anmeldung",
            "Meldebescheinigung",
            "Mängelanzeige",
            "Urkundenbestellung",
            "Wohnsitzanmeldung"
        ]
    );
    // Signed in at the identity provider with the Online-Ausweis (hoch), without the
    // prefill: every form takes the fixture as it is.
    let mut citizen = Citizen::new(&cycle);
    let mut idp = IdpBrowser::new(cycle.idp.as_ref().unwrap());
    citizen
        .sign_in_at(&mut idp, ERIKA, HIGH, "/konto", false)
        .await;
    for folder in [
        "bewohnerparkausweis",
        "gewerbeanmeldung",
        "hundesteuer",
        "maengelanzeige",
        "meldebescheinigung",
        "urkundenbestellung",
        "wohnsitzanmeldung",
    ] {
        let service = std::fs::read_to_string(
            kopplung_tests::workspace().join(format!("mappings/{folder}/service.toml")),
        )
        .unwrap();
        let key = service
            .lines()
            .find_map(|l| l.strip_prefix("key = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap()
            .to_owned();
        let region = portal_support::fixture(folder)["region"]
            .as_str()
            .unwrap()
            .to_owned();
        let location = citizen.start(&key, &region).await;
        let draft = portal_support::fill_from_fixture(&mut citizen, folder, location).await;
        let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
        assert_eq!(review.status, 200);
        assert!(
            !review.body.contains("fehlerliste"),
            "{folder}:\n{}",
            review.body
        );
        if review.body.contains("Weiter zur Bezahlung") {
            let (_, back) = citizen
                .pay(&draft, &review.csrf(), "kreditkarte", "bezahlen")
                .await;
            assert!(back.body.contains("Zahlungsreferenz"), "{folder}");
        }
        let submitted = citizen.submit(&draft, &review.csrf()).await;
        assert_eq!(submitted.status, 303, "{folder}:\n{}", submitted.body);
        assert_eq!(
            submitted.location(),
            format!("/antraege/{draft}?eingereicht"),
            "{folder}"
        );
    }
    let list = citizen.get("/konto/antraege").await;
    assert_eq!(list.body.matches("/antraege/").count(), 7, "{}", list.body);
}

/// The reference procedure's decision on a Hundesteuer sets the tax (108 € a dog); the
/// citizen pays it on the application's page at the payment provider; a cancelled
/// payment says so and can be tried again; the amount is the decision's, not the form's.
#[tokio::test]
async fn a_fee_the_decision_sets_is_paid_on_the_application_page() {
    let cycle = Cycle::start(true).await;
    let mut citizen = Citizen::new(&cycle);
    citizen.register("hundehalterin@example.org").await;
    let region = portal_support::fixture("hundesteuer")["region"]
        .as_str()
        .unwrap()
        .to_owned();
    let location = citizen.start("99999003000000", &region).await;
    let draft = portal_support::fill_from_fixture(&mut citizen, "hundesteuer", location).await;
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert!(
        !review.body.contains("Weiter zur Bezahlung"),
        "nothing to pay at submission"
    );
    citizen.submit_reviewed(&draft, &review).await;
    let decided = wait_for_decision(&mut citizen, &draft).await;
    let dogs = portal_support::fixture("hundesteuer")["data"]["hunde"]
        .as_array()
        .map_or(1, Vec::len);
    let amount = format!("{},00 €", 108 * dogs);
    // The decision says how and until when to object (the reference procedure's appeal
    // information), the deadline as a German day.
    let deadline = decided
        .body
        .split("Widerspruch ist bis einschließlich <strong class=\"portal-nowrap\">")
        .nth(1)
        .and_then(|rest| rest.split("</strong>").next())
        .unwrap_or_default();
    let parts: Vec<&str> = deadline.split(' ').collect();
    assert!(
        decided.body.contains(">Entschieden</dd>")
            && decided.body.contains("Rechtsbehelfsbelehrung")
            && parts.len() == 3
            && parts[0].ends_with('.')
            && parts[1].chars().all(char::is_alphabetic)
            && parts[2].len() == 4,
        "deadline „{deadline}“:\n{}",
        decided.body
    );
    assert!(
        decided
            .body
            .contains(&format!("eine Steuer von <strong>{amount}</strong>"))
            && decided.body.contains("Steuer jetzt online bezahlen"),
        "{}",
        decided.body
    );
    let csrf = decided.csrf();

    // Cancelled at the provider: nothing paid, the page says so and offers it again.
    let cancelled = pay_decision_fee(&mut citizen, &draft, &csrf, &amount, "abbrechen").await;
    kopplung_tests::assert_has(&cancelled.body, "es wurde nichts abgebucht");
    assert!(cancelled.body.contains("Steuer jetzt online bezahlen"));
    // Started in two tabs: both pay the one transaction, which can be paid once.
    let path = format!("/antraege/{draft}/gebuehr/bezahlen");
    let first_tab = citizen.post(&path, &[("csrf", &csrf)]).await.location();
    let second_tab = citizen.post(&path, &[("csrf", &csrf)]).await.location();
    assert_eq!(first_tab, second_tab, "one transaction for both tabs");
    let paid = pay_decision_fee(&mut citizen, &draft, &csrf, &amount, "bezahlen").await;
    let provider = citizen.get(&second_tab).await;
    assert_eq!(
        provider.status, 303,
        "the transaction is paid: nothing to pay twice"
    );
    kopplung_tests::assert_has(&paid.body, "Die Steuer ist bezahlt.");
    assert!(paid.body.contains("Zahlungsreferenz"), "{}", paid.body);
    // The payment record reaches the city's accounting (HKR) procedure, which receipts
    // it: the amount, the decision it pays and the provider's reference.
    let reported = cycle
        .wait_for_messages(&draft, &[("zahlung", "dresden-kasse", "received")])
        .await;
    let record = &reported["messages"][0];
    assert_eq!(
        record["message_type"], "hundesteuer.zahlung.0204",
        "{reported:#}"
    );
    assert_eq!(
        record["refers_to"], reported["mailbox"][0]["event_id"],
        "{reported:#}"
    );
    let sim_log = std::fs::read_to_string(cycle.hub.dir.path().join("sim.log")).unwrap();
    assert!(sim_log.contains("hundesteuer.zahlung.0204"), "{sim_log}");
    kopplung_tests::assert_lacks(&paid.body, "Steuer jetzt online bezahlen");
    // Paying again is not offered, and a forged attempt sends back to the page.
    let again = citizen
        .post(
            &format!("/antraege/{draft}/gebuehr/bezahlen"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location(), format!("/antraege/{draft}#gebuehr"));
    // Another visitor cannot pay or see it.
    let mut other = Citizen::new(&cycle);
    let csrf = other.csrf().await;
    let foreign = other
        .post(
            &format!("/antraege/{draft}/gebuehr/bezahlen"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);
}

/// Pays (or cancels, `action`) the fee a decision set on `draft`'s page at the provider;
/// the page the citizen comes back to.
async fn pay_decision_fee(
    citizen: &mut Citizen,
    draft: &str,
    csrf: &str,
    amount: &str,
    action: &str,
) -> Page {
    let to_provider = citizen
        .post(
            &format!("/antraege/{draft}/gebuehr/bezahlen"),
            &[("csrf", csrf)],
        )
        .await;
    assert_eq!(to_provider.status, 303, "{}", to_provider.body);
    let provider = citizen.get(&to_provider.location()).await;
    assert_eq!(provider.status, 200, "{}", provider.body);
    assert!(
        provider.body.contains(amount),
        "the provider asks for the decision's amount {amount}: {}",
        provider.body
    );
    let answered = citizen
        .post(
            &to_provider.location(),
            &[
                ("csrf", &provider.csrf()),
                ("zahlart", "kreditkarte"),
                ("aktion", action),
            ],
        )
        .await;
    assert_eq!(answered.status, 303, "{}", answered.body);
    citizen.follow(answered).await
}

/// The legal pages (issue 25): Impressum, Datenschutzerklärung, Erklärung zur
/// Barrierefreiheit and Kontakt come from the operator's `[operator]` data, every page
/// links them in its footer, the privacy notice lists the periods the configuration
/// really sets, the privacy checkbox of a form links it, and missing data is named.
#[tokio::test]
async fn the_legal_pages_come_from_the_operators_data_and_every_page_links_them() {
    let cycle = Cycle::with_sections(
        "[quotas]\nanonymous_expire_secs = 7200\n\n[operator]\nname = \"Landesdirektion Musterland\"\naddress = [\"Musterweg 5\", \"01099 Dresden\"]\nrepresented_by = \"die Präsidentin\"\nemail = \"portal@musterland.invalid\"\n\n[operator.privacy]\nofficer = [\"Datenschutz Musterland\", \"dsb@musterland.invalid\"]\n\n[operator.accessibility]\nstatus = \"teilweise\"\nlimitations = [\"Die PDF-Bestätigung ist nicht getaggt.\"]\nfeedback_email = \"barrieren@musterland.invalid\"\nenforcement = [\"Schlichtungsstelle Musterland\"]\n",
    )
    .await;
    let mut visitor = Citizen::new(&cycle);
    let step = visitor.start(MAENGEL, DRESDEN).await;
    for path in [
        "/",
        "/leistungen",
        "/behoerden",
        "/zustaendigkeit",
        "/konto/anmelden",
        "/konto/registrieren",
        step.as_str(),
        "/impressum",
        "/antraege/00000000-0000-0000-0000-000000000000",
    ] {
        let page = visitor.get(path).await;
        for link in [
            "/impressum",
            "/datenschutz",
            "/barrierefreiheit",
            "/kontakt",
        ] {
            assert!(
                page.body.contains(&format!("href=\"{link}\"")),
                "{path} does not link {link}"
            );
        }
    }
    let impressum = visitor.get("/impressum").await;
    assert_eq!(impressum.status, 200);
    for text in [
        "Landesdirektion Musterland",
        "Musterweg 5",
        "Vertreten durch: die Präsidentin",
        "portal@musterland.invalid",
    ] {
        assert!(impressum.body.contains(text), "{text}");
    }
    assert!(!impressum.body.contains("angaben-fehlen"));
    let privacy = visitor.get("/datenschutz").await;
    for text in [
        "Datenschutz Musterland",
        // The periods are the configuration's: 7200 s for anonymous drafts, the
        // defaults elsewhere.
        "spätestens gelöscht nach 2 Stunden ohne Änderung",
        "spätestens nach 8 Stunden",
        "nach einem Tag, wenn die Adresse nicht bestätigt wird",
        "Art. 17",
    ] {
        assert!(privacy.body.contains(text), "{text}:\n{}", privacy.body);
    }
    let accessibility = visitor.get("/barrierefreiheit").await;
    for text in [
        "teilweise vereinbar",
        "Die PDF-Bestätigung ist nicht getaggt.",
        "barrieren@musterland.invalid",
        "Schlichtungsstelle Musterland",
    ] {
        assert!(accessibility.body.contains(text), "{text}");
    }
    assert_eq!(visitor.get("/kontakt").await.status, 200);

    // The consent to the privacy notice links it, opening beside the form.
    let mut citizen = Citizen::new(&cycle);
    citizen.register("legal@example.org").await;
    let first = citizen.start("99108001000000", DRESDEN).await;
    let third = first.replace("/schritt/1", "/schritt/3");
    let form = citizen.get(&third).await;
    assert!(
        form.body
            .contains("<a class=\"kern-link\" href=\"/datenschutz\" target=\"_blank\""),
        "{}",
        form.body
    );

    // Without [operator] the pages name what is missing, and the portal warns.
    let bare = Cycle::start(false).await;
    let page = Citizen::new(&bare).get("/impressum").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("angaben-fehlen"));
    assert!(page.body.contains("der Name des Betreibers"));
    assert!(
        !page.body.contains("operator.name"),
        "no configuration keys for citizens"
    );
    assert!(
        bare.log()
            .contains("the legal pages lack the operator's data")
    );
}
