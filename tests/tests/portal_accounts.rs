//! The portal's accounts against visitors without any token (issue 16), on the real hub
//! and portal processes and a real SMTP server (aiosmtpd): redirect targets from the
//! request end on portal paths; the simulated payment provider answers only the portal
//! and sends back only to it; 40 parallel wrong passwords for one account reach the
//! password check at most 5 times; registration answers alike whether or not the
//! address has an account, and the mails arrive; a relay that is down delays the mail
//! but not the answer.

mod portal_support;

use std::time::{Duration, Instant};

use kopplung_tests::oidc::{Choice, ERIKA, IdpBrowser, SUBSTANTIAL};
use portal_support::{Citizen, Cycle, Options, PASSWORD, Page};
use url::Url;

/// The value of the page's hidden input `name`, unescaped.
fn hidden(page: &Page, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} on the page:\n{}", page.body))
        + marker.len();
    let end = start + page.body[start..].find('"').expect("end of the value");
    page.body[start..end]
        .replace("&#x3D;", "=")
        .replace("&#x27;", "'")
        .replace("&#x60;", "`")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Whether a browser that gets `Location: location` from the portal stays on it.
fn stays_on_portal(portal: &Url, location: &str) -> bool {
    location.starts_with('/')
        && !location.starts_with("//")
        && !location.starts_with("/\\")
        && !location.contains(['\t', '\r', '\n', '\\'])
        && portal
            .join(location)
            .is_ok_and(|followed| followed.origin() == portal.origin())
}

/// `location`, what the portal made of `target` (named `what`), stays on the portal.
fn assert_stays(portal: &Url, target: &str, what: &str, location: &str) {
    assert!(
        stays_on_portal(portal, location),
        "{target:?} → {what} {location:?}"
    );
}

/// A sign-in's `answer` for `target`: a redirect that stays on the portal.
fn assert_redirect_stays(portal: &Url, target: &str, answer: &Page) {
    assert_eq!(answer.status, 303, "{target:?}: {}", answer.body);
    assert_stays(portal, target, "Location", &answer.location());
}

fn hostile_targets(port: u16) -> Vec<String> {
    let mut targets: Vec<String> = [
        "/\t/evil.example/x",
        "/%09/evil.example/x",
        "/\t\t/evil.example",
        "\t//evil.example",
        "/\r\n/evil.example",
        "/%0d%0a/evil.example",
        "/\n/evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "\\/evil.example",
        "//evil.example/x",
        "///evil.example",
        " //evil.example",
        "/.//evil.example",
        "/./\\evil.example",
        "/%2F/evil.example",
        "/%5Cevil.example",
        "%2F%2Fevil.example",
        "@evil.example",
        "//user@evil.example",
        ".evil.example",
        "evil.example",
        "http://evil.example/",
        "https://evil.example/konto",
        "http:evil.example",
        "javascript:alert(1)",
        "data:text/html,x",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    targets.extend([
        format!("http://127.0.0.1:{port}@evil.example/"),
        format!("http://127.0.0.1:{port}.evil.example/"),
        format!("//127.0.0.1:{port}.evil.example/"),
        format!("http://127.0.0.1:{port}/konto"),
    ]);
    targets
}

/// Opens the portal's `path` with `?weiter=<target>`: the page, and the `next` it carries
/// in its form.
async fn with_weiter(citizen: &mut Citizen, path: &str, target: &str) -> (Page, String) {
    let request = citizen
        .http
        .get(citizen.url(path))
        .query(&[("weiter", target)]);
    let page = citizen.send(request).await;
    assert_eq!(page.status, 200, "{target:?}");
    let next = hidden(&page, "next");
    (page, next)
}

#[tokio::test]
async fn redirect_targets_from_the_request_end_on_portal_paths_and_the_provider_answers_only_the_portal()
 {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("payment-secret");
    let secret = "geteiltes-geheimnis-fuer-den-zahlungsdienst";
    std::fs::write(&secret_file, secret).unwrap();
    let cycle = Cycle::with(Options {
        sections: format!("[payment]\nsecret_file = \"{}\"\n", secret_file.display()),
        oidc: Some(String::new()),
        ..Options::default()
    })
    .await;
    let portal = Url::parse(&cycle.portal_url).unwrap();
    let port = portal.port().unwrap();
    let mut anna = Citizen::new(&cycle);
    anna.register("anna@example.org").await;
    let mut idp = IdpBrowser::new(cycle.idp.as_ref().unwrap());
    let mut checked = 0;
    for target in hostile_targets(port) {
        // Through the sign-in page's `weiter` and a real sign-in …
        let (_, next) = with_weiter(&mut anna, "/konto/anmelden", &target).await;
        assert_stays(&portal, &target, "next", &next);
        for next in [next.as_str(), target.as_str()] {
            // Each sign-in replaces the session and its CSRF token.
            let signed_in = anna.sign_in_next("anna@example.org", next).await;
            assert_redirect_stays(&portal, &target, &signed_in);
            checked += 1;
        }
        // … and through the identification page's `weiter` and a real sign-in at the
        // identity provider (which comes back with the state's `weiter`).
        let request = anna
            .http
            .get(anna.url("/konto/identifizierung"))
            .query(&[("weiter", &target)]);
        let page = anna.send(request).await;
        assert_eq!(page.status, 200, "{target:?}");
        let next = hidden(&page, "weiter");
        assert_stays(&portal, &target, "weiter", &next);
        for next in [next.as_str(), target.as_str()] {
            let start = format!(
                "/konto/oidc/anmelden?anbieter=test&weiter={}",
                kopplung_tests::oidc::encode(next)
            );
            let (identified, _) = anna
                .at_provider(&mut idp, &start, Choice::sign_in(ERIKA, SUBSTANTIAL))
                .await;
            assert_redirect_stays(&portal, &target, &identified);
            checked += 1;
        }
    }
    println!("{checked} redirects checked");
    // Local targets still work.
    let page = anna.get("/konto/anmelden?weiter=/konto/postfach").await;
    assert_eq!(hidden(&page, "next"), "/konto/postfach");

    // The simulated payment provider: its API answers only the portal …
    let http = reqwest::Client::new();
    let create = |redirect: String| {
        serde_json::json!({
            "requestId": "x", "currency": "EUR", "grossAmount": 500,
            "purpose": "Test", "redirectUrl": redirect,
        })
    };
    let api = cycle.url("/xbezahldienste/api/v1/paymenttransaction");
    let own = format!("{}/entwurf/abc/zahlung", cycle.portal_url);
    for auth in [None, Some("falsch"), Some("")] {
        let mut request = http.post(&api).json(&create(own.clone()));
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{auth:?}");
    }
    let status = http.get(format!("{api}/irgendwas")).send().await.unwrap();
    assert_eq!(status.status(), 401);
    // … and sends citizens back to the portal's own origin only.
    for foreign in [
        format!("http://127.0.0.1:{port}@evil.example/entwurf/abc/zahlung"),
        format!("http://127.0.0.1:{port}.evil.example/entwurf/abc/zahlung"),
        format!("http://127.0.0.1:{port}/konto"),
        "https://evil.example/entwurf/abc/zahlung".to_owned(),
        format!("http://127.0.0.1:{port}/entwurf\\..\\x"),
    ] {
        let refused = http
            .post(&api)
            .bearer_auth(secret)
            .json(&create(foreign.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 422, "{foreign}");
    }
    let created = http
        .post(&api)
        .bearer_auth(secret)
        .json(&create(own))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn forty_parallel_wrong_passwords_reach_the_password_check_at_most_five_times() {
    let cycle = Cycle::start(false).await;
    let mut carla = Citizen::new(&cycle);
    carla.register("carla@example.org").await;
    let mut guesser = Citizen::new(&cycle);
    let csrf = guesser.csrf().await;
    let cookie = guesser.cookie_header().expect("the CSRF cookie");
    let mut attempts = Vec::new();
    for n in 0..40 {
        let url = cycle.url("/konto/anmelden");
        let (csrf, cookie) = (csrf.clone(), cookie.clone());
        attempts.push(tokio::spawn(async move {
            // A client (and connection) of its own for each.
            let response = reqwest::Client::new()
                .post(url)
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", "carla@example.org"),
                    ("password", &format!("geraten-{n}-xxxxxxxx")),
                ])
                .send()
                .await
                .expect("an answer");
            response.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    println!("40 parallel wrong passwords: {checked} checked (401), {refused} refused (429)");
    assert!(
        (1..=5).contains(&checked),
        "{checked} reached the password check: {statuses:?}"
    );
    assert_eq!(checked + refused, 40, "{statuses:?}");
    // The account waits now, even for the right password.
    let locked = guesser.sign_in(&csrf, "carla@example.org", PASSWORD).await;
    assert_eq!(locked.status, 429);
    assert!(locked.headers.contains_key("retry-after"));
    assert!(
        locked
            .body
            .contains("Zu viele fehlgeschlagene Anmeldeversuche. Bitte warten Sie")
    );
}

#[tokio::test]
async fn registration_answers_alike_for_new_and_existing_addresses_and_the_mails_arrive() {
    let cycle = Cycle::start(false).await;
    let mailbox = cycle.mailbox();
    let mut owner = Citizen::new(&cycle);
    owner.register("bestand@example.org").await;
    let other_password = "ein-anderes-Passwort-456";

    let mut answers = Vec::new();
    let mut times = Vec::new();
    for (round, email) in ["neu1@example.org", "neu2@example.org"].iter().enumerate() {
        for address in [*email, "bestand@example.org"] {
            let mut visitor = Citizen::new(&cycle);
            let start = Instant::now();
            let answer = visitor.register_only(address, other_password).await;
            times.push((round, address == "bestand@example.org", start.elapsed()));
            let page = visitor.follow(answer).await;
            answers.push((address.to_owned(), page.status, page.body));
        }
    }
    println!("registration times (round, existing, time): {times:?}");
    let (_, first_status, first_body) = &answers[0];
    for (address, status, body) in &answers {
        assert_eq!(status, first_status, "{address}");
        assert_eq!(body, first_body, "{address}: not the same page");
    }
    assert_eq!(*first_status, 200);
    assert!(first_body.contains("Bitte bestätigen Sie Ihre E-Mail-Adresse"));
    assert!(!first_body.contains("bestand@") && !first_body.contains("neu1@"));
    let slowest = times.iter().map(|t| t.2).max().unwrap();
    let fastest = times.iter().map(|t| t.2).min().unwrap();
    assert!(
        slowest < fastest * 4 + Duration::from_millis(100),
        "registration times differ too much: {times:?}"
    );

    // The mails at the SMTP server: a link for the new address, a notice for the
    // existing one; no password in any.
    let new = mailbox.wait_for("neu1@example.org").await;
    assert!(new.recipients.contains("neu1@example.org"), "{}", new.raw);
    assert!(new.subject.contains("bestätigen"), "{}", new.subject);
    let link = new.link(&format!("{}/konto/bestaetigen?code=", cycle.portal_url));
    assert_eq!(
        link.len(),
        cycle.portal_url.len() + "/konto/bestaetigen?code=".len() + 64
    );
    // Its own confirmation, then a notice for each registration.
    mailbox
        .wait_for_nth("bestand@example.org", 3, Duration::from_secs(30))
        .await;
    let notices: Vec<_> = mailbox
        .to("bestand@example.org")
        .into_iter()
        .filter(|m| m.subject.contains("bereits ein Servicekonto"))
        .collect();
    assert_eq!(notices.len(), 2, "{notices:?}");
    let notice = &notices[0];
    assert!(
        notice
            .body
            .contains(&format!("{}/konto/anmelden", cycle.portal_url))
    );
    kopplung_tests::assert_lacks(&notice.body, "bestaetigen?code=");
    for mail in mailbox.all() {
        for password in [PASSWORD, other_password] {
            assert!(
                !mail.raw.contains(password),
                "a password in a mail:\n{}",
                mail.raw
            );
        }
    }

    // Before confirming: the right password says "confirm first", a wrong one does not.
    let mut newcomer = Citizen::new(&cycle);
    let csrf = newcomer.csrf().await;
    let confirm_first = |page: &Page| {
        assert_eq!(page.status, 403, "{}", page.body);
        assert!(
            page.body
                .contains("Bitte bestätigen Sie zuerst Ihre E-Mail-Adresse"),
            "{}",
            page.body
        );
    };
    let unconfirmed = newcomer
        .sign_in(&csrf, "neu1@example.org", other_password)
        .await;
    confirm_first(&unconfirmed);
    let wrong = newcomer
        .sign_in(&csrf, "neu1@example.org", "falsches-Passwort-1")
        .await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.body.contains("bestätigen Sie zuerst"));
    // The existing address answers the same to the second registration's password …
    let existing = newcomer
        .sign_in(&csrf, "bestand@example.org", other_password)
        .await;
    confirm_first(&existing);
    // … and lets its owner in with the real one.
    let mut owner_again = Citizen::new(&cycle);
    let csrf_owner = owner_again.csrf().await;
    let signed_in = owner_again
        .sign_in(&csrf_owner, "bestand@example.org", PASSWORD)
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);

    // Opening the link confirms nothing (mail scanners fetch links); its button does.
    let opened = newcomer.get(&link).await;
    assert_eq!(opened.status, 200);
    assert!(opened.body.contains("E-Mail-Adresse bestätigen"));
    let still = newcomer
        .sign_in(&csrf, "neu1@example.org", other_password)
        .await;
    assert_eq!(still.status, 403);
    let confirmed = newcomer.confirm(&new).await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    assert_eq!(confirmed.location(), "/konto?bestaetigt");
    let account = newcomer.follow(confirmed).await;
    assert!(account.body.contains("Ihre E-Mail-Adresse ist bestätigt"));
    assert!(account.body.contains("neu1@example.org"));
    // The link works once.
    let again = Citizen::new(&cycle).get(&link).await;
    assert_eq!(again.status, 404);
    assert!(
        again
            .body
            .contains("ungültig, schon benutzt oder abgelaufen")
    );
    assert_eq!(
        cycle.sql("SELECT COUNT(*) FROM registrations WHERE email = 'neu1@example.org'"),
        "0"
    );
    // Registrations of one address are limited (each sends a mail): the fourth within
    // the hour waits, whether or not the address has an account.
    let refused = Citizen::new(&cycle)
        .register_only("bestand@example.org", other_password)
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Zu viele Registrierungen in kurzer Zeit")
    );
    assert!(refused.headers.contains_key("retry-after"));
    let log = cycle.log();
    assert!(log.contains("mail sent"), "{log}");
    assert!(
        !log.contains("@example.org"),
        "an address in the portal's log:\n{log}"
    );
}

#[tokio::test]
async fn a_relay_that_is_down_delays_the_mail_but_not_the_answer() {
    let mut cycle = Cycle::with(Options {
        smtp: false,
        ..Options::default()
    })
    .await;
    let mut visitor = Citizen::new(&cycle);
    let start = Instant::now();
    let answer = visitor.register_only("geduld@example.org", PASSWORD).await;
    let took = start.elapsed();
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location(), "/konto/registrieren/gesendet");
    println!("registration answered in {took:?} with the relay down");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // The mail waits in the outbox and is tried again.
    let until = Instant::now() + Duration::from_secs(20);
    while cycle
        .sql("SELECT COALESCE(MAX(attempts), 0) FROM mail_outbox")
        .parse::<u32>()
        .unwrap()
        < 2
    {
        assert!(Instant::now() < until, "no retries:\n{}", cycle.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(cycle.mailbox().all().is_empty());
    // The relay comes up: the mail arrives, the link works.
    cycle.smtp.start();
    let mail = cycle
        .mailbox()
        .wait_for_nth("geduld@example.org", 1, Duration::from_secs(20))
        .await;
    // The relay has the mail before the portal hears its answer and clears the row.
    let until = Instant::now() + Duration::from_secs(10);
    while cycle.sql("SELECT COUNT(*) FROM mail_outbox") != "0" {
        assert!(Instant::now() < until, "the sent mail stays in the outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let confirmed = visitor.confirm(&mail).await;
    assert_eq!(confirmed.location(), "/konto?bestaetigt");
    let log = cycle.log();
    assert!(log.contains("it waits in the outbox"), "{log}");
    assert!(log.contains("mail sent"), "{log}");
    assert!(!log.contains("geduld@"), "{log}");
}

/// Accounts a citizen controls (issue 25): a password reset by e-mail that ends the old
/// sessions and answers alike for every address; the page a registration began on is
/// reached again after the confirmation; deleting the account removes its data, refunds
/// a paid draft first and says so.
#[tokio::test]
async fn a_password_is_reset_by_mail_registration_keeps_its_target_and_an_account_is_deleted() {
    let cycle = Cycle::start(false).await;
    let email = "vergesslich@example.org";
    let mut citizen = Citizen::new(&cycle);
    citizen.register(email).await;
    // Another device stays signed in with the old password.
    let mut other = Citizen::new(&cycle);
    let csrf = other.csrf().await;
    assert_eq!(other.sign_in(&csrf, email, PASSWORD).await.status, 303);
    assert_eq!(other.get("/konto").await.status, 200);

    // The request answers the same page for an address without an account, and only
    // the account's address gets a mail.
    let mut stranger = Citizen::new(&cycle);
    let mut asked = Vec::new();
    for address in [email, "niemand@example.org"] {
        let form = stranger.get("/konto/passwort-vergessen").await;
        assert_eq!(form.status, 200);
        let answer = stranger
            .post(
                "/konto/passwort-vergessen",
                &[("csrf", &form.csrf()), ("email", address)],
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        asked.push(answer.body.replace(address, "ADRESSE"));
    }
    assert_eq!(
        asked[0], asked[1],
        "the answer tells whether an account exists"
    );
    let mail = mail_about(&cycle, email, 2, "Neues Passwort").await;
    assert!(mail.subject.contains("Neues Passwort"), "{}", mail.subject);
    let link = mail.link(&format!("{}/konto/passwort-neu?code=", cycle.portal_url));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cycle.mailbox().to("niemand@example.org").is_empty());

    // The link's form: a short password is refused with a sentence, then it is set.
    let mut owner = Citizen::new(&cycle);
    let page = owner.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let code = link.rsplit('=').next().unwrap().to_owned();
    let short = owner
        .post(
            "/konto/passwort-neu",
            &[
                ("csrf", &page.csrf()),
                ("code", &code),
                ("password", "kurz"),
                ("password2", "kurz"),
            ],
        )
        .await;
    assert_eq!(short.status, 422);
    assert!(short.body.contains("Das Passwort ist zu kurz."));
    let new_password = "ein-ganz-neues-Passwort-77";
    let done = owner
        .post(
            "/konto/passwort-neu",
            &[
                ("csrf", &page.csrf()),
                ("code", &code),
                ("password", new_password),
                ("password2", new_password),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/konto?passwort-geaendert");
    assert!(
        owner
            .follow(done)
            .await
            .body
            .contains("Ihr neues Passwort ist gespeichert.")
    );
    // The old sessions ended; the link is used up; the old password no longer works.
    assert_eq!(other.get("/konto").await.status, 303);
    assert_eq!(owner.get(&link).await.status, 404);
    let mut again = Citizen::new(&cycle);
    let csrf = again.csrf().await;
    assert_eq!(again.sign_in(&csrf, email, PASSWORD).await.status, 401);
    let csrf = again.csrf().await;
    assert_eq!(again.sign_in(&csrf, email, new_password).await.status, 303);
    let changed = mail_about(&cycle, email, 3, "Passwort wurde geändert").await;
    assert!(changed.subject.contains("Passwort wurde geändert"));

    // Registration from a page that asked to sign in comes back to it.
    let mut newcomer = Citizen::new(&cycle);
    let login = newcomer
        .get("/konto/anmelden?weiter=%2Fkonto%2Fpostfach")
        .await;
    assert!(
        login
            .body
            .contains("href=\"/konto/registrieren?weiter=%2Fkonto%2Fpostfach\""),
        "{}",
        login.body
    );
    let form = newcomer
        .get("/konto/registrieren?weiter=%2Fkonto%2Fpostfach")
        .await;
    let registered = newcomer
        .post(
            "/konto/registrieren",
            &[
                ("csrf", &form.csrf()),
                ("email", "neu@example.org"),
                ("password", PASSWORD),
                ("password2", PASSWORD),
                ("next", "/konto/postfach"),
            ],
        )
        .await;
    assert_eq!(registered.status, 303);
    let mail = cycle.mailbox().wait_for("neu@example.org").await;
    let confirmed = newcomer.confirm(&mail).await;
    assert_eq!(
        confirmed.location(),
        "/konto?bestaetigt&weiter=%2Fkonto%2Fpostfach"
    );
    let account = newcomer.follow(confirmed).await;
    assert!(
        account
            .body
            .contains("href=\"/konto/postfach\" id=\"weiter\""),
        "{}",
        account.body
    );

    // Deleting: asks for the password and the confirmation, then everything goes.
    let page = owner.get("/konto/loeschen").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Servicekonto endgültig löschen"));
    let refused = owner
        .post(
            "/konto/loeschen",
            &[("csrf", &page.csrf()), ("password", "falsch")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Bitte bestätigen Sie"));
    assert!(refused.body.contains("Das Passwort stimmt nicht."));
    let account_id = cycle.sql(&format!("SELECT id FROM accounts WHERE email = '{email}'"));
    assert!(!account_id.is_empty());
    let deleted = confirm_deletion(&mut owner, &page, new_password).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(
        deleted
            .body
            .contains("Ihr Servicekonto wurde mit allen Daten gelöscht")
    );
    for table in ["accounts", "sessions", "drafts", "password_resets"] {
        let column = if table == "accounts" {
            "id"
        } else {
            "account_id"
        };
        assert_eq!(
            cycle.sql(&format!(
                "SELECT count(*) FROM {table} WHERE {column} = '{account_id}'"
            )),
            "0",
            "{table}"
        );
    }
    assert_eq!(owner.get("/konto").await.status, 303, "signed out");
    let mut gone = Citizen::new(&cycle);
    let csrf = gone.csrf().await;
    assert_eq!(gone.sign_in(&csrf, email, new_password).await.status, 401);
    let farewell = mail_about(&cycle, email, 4, "Ihr Servicekonto wurde gelöscht").await;
    assert!(farewell.subject.contains("Ihr Servicekonto wurde gelöscht"));
}

/// Deleting an account with a paid draft refunds the fee first and records it.
#[tokio::test]
async fn deleting_an_account_refunds_a_paid_draft() {
    let cycle = Cycle::start(false).await;
    let mut citizen = Citizen::new(&cycle);
    citizen.register("zahlerin@example.org").await;
    let region = portal_support::fixture("bewohnerparkausweis")["region"]
        .as_str()
        .unwrap()
        .to_owned();
    let location = citizen.start("99108001000000", &region).await;
    let draft =
        portal_support::fill_from_fixture(&mut citizen, "bewohnerparkausweis", location).await;
    let review = citizen.get(&format!("/entwurf/{draft}/pruefen")).await;
    citizen
        .pay(&draft, &review.csrf(), "kreditkarte", "bezahlen")
        .await;
    let page = citizen.get("/konto/loeschen").await;
    assert!(
        page.body
            .contains("Für einen Ihrer Entwürfe haben Sie bereits eine Gebühr bezahlt. Sie wird beim Löschen vollständig über die Zahlungsart erstattet")
    );
    let deleted = confirm_deletion(&mut citizen, &page, PASSWORD).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(
        deleted
            .body
            .contains("Die Gebühr von 30,70 € für „Bewohnerparkausweis“ wird erstattet")
    );
    assert_eq!(
        cycle.sql("SELECT reason || ' ' || amount_cents FROM refunds"),
        "account-deleted 3070"
    );
}

/// Deletes the account from its deletion `page`, confirmed, with `password`.
async fn confirm_deletion(citizen: &mut Citizen, page: &Page, password: &str) -> Page {
    citizen
        .post(
            "/konto/loeschen",
            &[
                ("csrf", &page.csrf()),
                ("password", password),
                ("bestaetigt", "ja"),
            ],
        )
        .await
}

/// The mail to `to` whose subject has `about`, once `n` mails reached `to` (mails that
/// arrive within one second are not in order by their Maildir names).
async fn mail_about(cycle: &Cycle, to: &str, n: usize, about: &str) -> portal_support::Mail {
    cycle
        .mailbox()
        .wait_for_nth(to, n, Duration::from_secs(20))
        .await;
    cycle
        .mailbox()
        .to(to)
        .into_iter()
        .find(|m| m.subject.contains(about))
        .unwrap_or_else(|| panic!("no mail about {about} to {to}"))
}
