//! Notifications by e-mail, end to end: the hub's change feed, the portal following it,
//! the mails at a real SMTP server (Debian's `python3-aiosmtpd`), and the reference
//! procedure's receipt and decision as the changes. An account that opted in gets its
//! mails (receipt number, what happened, a link; none of the form's values), one that
//! did not gets none; an anonymous reporter's address is confirmed by link first and
//! then gets status mails with a secret status page and a stop link; a relay that is
//! down delays the mail, never the hub's state change.

mod portal_support;

use std::time::{Duration, Instant};

use portal_support::{Citizen, Cycle, Mail, Options, Page};

/// The portal asks the feed every second; the feed holds changes back ~5 s.
const SECTIONS: &str = "[notifications]\npoll_secs = 1\n";

/// What the citizen typed into the Mängelanzeige, and what names it: none of it may be
/// in a mail.
const FORM_VALUES: &[&str] = &[
    "Schlagloch",
    "Grundschule",
    "Königsbrücker",
    "strassenschaden",
    "schlagloch.png",
    "Mängel",
    "Dresden",
];

fn assert_no_form_data(mail: &Mail) {
    for value in FORM_VALUES {
        assert!(
            !mail.raw.contains(value) && !mail.body.contains(value),
            "{value:?} in a mail:\n{}",
            mail.raw
        );
    }
}

async fn cycle() -> Cycle {
    Cycle::with(Options {
        sections: SECTIONS.into(),
        ..Options::default()
    })
    .await
}

/// The hub's id and receipt number of the portal's application `draft`.
fn application_of(cycle: &Cycle, draft: &str) -> (String, String) {
    let row = cycle.sql(&format!(
        "SELECT application_id || ' ' || receipt FROM drafts WHERE id = '{draft}'"
    ));
    let (id, receipt) = row.trim().split_once(' ').expect("submitted");
    (id.to_owned(), receipt.to_owned())
}

/// The seq of the hub's feed entry that made `application` `status` (the portal's
/// client token), once the feed hands it out.
async fn feed_seq(cycle: &Cycle, application: &str, status: &str) -> i64 {
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let mut after = 0;
        loop {
            let page: serde_json::Value = http
                .get(
                    cycle
                        .hub
                        .url(&format!("/api/v1/changes?after={after}&limit=500")),
                )
                .bearer_auth(&cycle.hub.token)
                .send()
                .await
                .expect("feed")
                .json()
                .await
                .expect("feed JSON");
            let found = page["changes"]
                .as_array()
                .expect("changes")
                .iter()
                .find(|c| c["application"] == application && c["status"] == status);
            if let Some(change) = found {
                return change["seq"].as_i64().expect("seq");
            }
            after = page["cursor"].as_i64().expect("cursor");
            if page["more"] != true {
                break;
            }
        }
        assert!(
            Instant::now() < until,
            "{application} never {status} in the feed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the portal has followed the feed past `seq`.
async fn portal_followed(cycle: &Cycle, seq: i64) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let cursor: i64 = cycle
            .sql("SELECT COALESCE((SELECT cursor FROM change_feed), 0)")
            .trim()
            .parse()
            .unwrap_or(0);
        if cursor >= seq {
            return;
        }
        assert!(
            Instant::now() < until,
            "the portal did not follow the feed to {seq}:\n{}",
            cycle.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn notification_page(citizen: &mut Citizen) -> Page {
    let page = citizen.get("/konto/benachrichtigungen").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

#[tokio::test]
async fn an_account_that_opted_in_is_mailed_without_form_data_and_one_that_did_not_is_not() {
    let cycle = cycle().await;
    let (a, b) = ("anna@example.org", "bernd@example.org");
    let mut anna = Citizen::new(&cycle);
    anna.register(a).await;
    let mut bernd = Citizen::new(&cycle);
    bernd.register(b).await;

    // Off until chosen: nothing is checked at first.
    let page = notification_page(&mut anna).await;
    assert!(
        page.body.contains(a),
        "the address mails go to:\n{}",
        page.body
    );
    assert!(!page.body.contains(" checked"), "{}", page.body);
    let saved = anna
        .post(
            "/konto/benachrichtigungen",
            &[("csrf", &page.csrf()), ("postfach", "ja"), ("stand", "ja")],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("Ihre Auswahl ist gespeichert."));
    assert_eq!(saved.body.matches(" checked").count(), 2, "{}", saved.body);
    // Bernd looks, and saves with everything off (a choice, stored, that is no consent).
    let page = notification_page(&mut bernd).await;
    let saved = bernd
        .post("/konto/benachrichtigungen", &[("csrf", &page.csrf())])
        .await;
    kopplung_tests::assert_has(&saved.body, "Ihre Auswahl ist gespeichert.");
    assert_eq!(
        cycle.sql("SELECT COUNT(*) FROM notification_settings WHERE mailbox_since IS NULL AND status_since IS NULL").trim(),
        "1"
    );

    let bernds = portal_support::report_a_pothole(&mut bernd).await;
    let annas = portal_support::report_a_pothole(&mut anna).await;
    let (annas_id, annas_receipt) = application_of(&cycle, &annas);
    let (bernds_id, _) = application_of(&cycle, &bernds);
    let _sim = cycle.hub.procedure_sim(&["dresden-maengel"]);

    // Anna: the receipt (a status change), then the decision (a message and a status).
    let mailbox = cycle.mailbox();
    let received = mailbox.wait_for_nth(a, 2, Duration::from_secs(90)).await;
    let decided = mailbox.wait_for_nth(a, 3, Duration::from_secs(90)).await;
    for mail in [&received, &decided] {
        assert_eq!(
            mail.subject,
            format!("Neuigkeiten zu Ihrer Meldung {annas_receipt}")
        );
        assert_no_form_data(mail);
    }
    assert!(
        received.body.contains(&format!(
            "der Stand Ihrer Meldung {annas_receipt} hat sich geändert. Neuer Stand: „Bei der Behörde eingegangen“."
        )),
        "{}",
        received.body
    );
    kopplung_tests::assert_lacks(&received.body, "neue Nachricht");
    assert!(
        decided.body.contains(&format!(
            "es gibt eine neue Nachricht zu Ihrer Meldung mit der Vorgangsnummer {annas_receipt}."
        )) && decided.body.contains(&format!(
            "Der Stand Ihrer Meldung {annas_receipt} hat sich geändert. Neuer Stand: „Erledigt“."
        )),
        "{}",
        decided.body
    );
    // The link leads to the application's page (after signing in).
    let link = decided.link(&cycle.url(&format!("/antraege/{annas}")));
    let shown = anna.get(&link).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains(&annas_receipt) && shown.body.contains("Erledigt"));
    let mut stranger = Citizen::new(&cycle);
    let refused = stranger.get(&link).await;
    assert_ne!(refused.status, 200, "the link alone opens nothing");
    assert!(!refused.body.contains(&annas_receipt));
    let _ = annas_id;

    // Bernd: his application was decided and the portal has read past it; no mail but
    // the registration's.
    let bernd_decided = feed_seq(&cycle, &bernds_id, "decided").await;
    portal_followed(&cycle, bernd_decided).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mailbox.to(b).len(), 1, "{:#?}", mailbox.to(b));
    assert_eq!(cycle.sql("SELECT COUNT(*) FROM mail_outbox").trim(), "0");
    assert!(
        !cycle.log().contains(a) && !cycle.log().contains(b),
        "an address in the log"
    );
}

#[tokio::test]
async fn an_anonymous_reporter_confirms_first_then_gets_status_mails_with_a_secret_link() {
    let cycle = cycle().await;
    let mailbox = cycle.mailbox();
    let (reporter, silent) = ("rita@example.org", "sven@example.org");

    let mut rita = Citizen::new(&cycle);
    let draft = portal_support::report_a_pothole(&mut rita).await;
    let (application, receipt) = application_of(&cycle, &draft);
    let confirmation = rita.get(&format!("/antraege/{draft}")).await;
    kopplung_tests::assert_has(&confirmation.body, "Per E-Mail vom Stand erfahren");
    let csrf = confirmation.csrf();
    let path = format!("/antraege/{draft}/benachrichtigung");
    // A mistake is named, with how to fix it.
    let wrong = rita
        .post(&path, &[("csrf", &csrf), ("email", "rita@")])
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(
        wrong
            .body
            .contains("Bitte geben Sie eine gültige E-Mail-Adresse an")
    );
    let asked = rita
        .post(&path, &[("csrf", &csrf), ("email", reporter)])
        .await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    let sent = rita.follow(asked).await;
    assert!(
        sent.body
            .contains("Bitte bestätigen Sie Ihre E-Mail-Adresse"),
        "{}",
        sent.body
    );
    // Another visitor's browser cannot ask for mails about Rita's application.
    let mut other = Citizen::new(&cycle);
    let other_csrf = other.get("/").await;
    let _ = other_csrf;
    let foreign = other
        .post(&path, &[("csrf", "0"), ("email", "x@example.org")])
        .await;
    assert_ne!(foreign.status, 303);

    // Sven asks too, and never confirms.
    let mut sven = Citizen::new(&cycle);
    let svens = portal_support::report_a_pothole(&mut sven).await;
    let (svens_id, _) = application_of(&cycle, &svens);
    let page = sven.get(&format!("/antraege/{svens}")).await;
    let asked = sven
        .post(
            &format!("/antraege/{svens}/benachrichtigung"),
            &[("csrf", &page.csrf()), ("email", silent)],
        )
        .await;
    assert_eq!(asked.status, 303, "{}", asked.body);

    // The confirmation mail: receipt number and a link, nothing of the form.
    let mail = mailbox.wait_for(reporter).await;
    assert_eq!(
        mail.subject,
        format!(
            "Bitte bestätigen Sie Ihre E-Mail-Adresse für Nachrichten zu Ihrer Meldung {receipt}"
        )
    );
    assert_no_form_data(&mail);
    let confirm = mail.link(&cycle.url("/status/"));
    assert!(confirm.ends_with("/bestaetigen"), "{confirm}");
    let status_link = confirm.trim_end_matches("/bestaetigen").to_owned();
    // Opened elsewhere (no cookies): the page confirms nothing by itself.
    let mut mail_client = Citizen::new(&cycle);
    let opened = mail_client.get(&confirm).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert!(opened.body.contains("E-Mail-Benachrichtigung bestätigen"));
    let unconfirmed = "SELECT COUNT(*) FROM status_subscriptions WHERE confirmed_at IS NULL";
    assert_eq!(cycle.sql(unconfirmed).trim(), "2");
    let confirmed = mail_client
        .post(&confirm, &[("csrf", &opened.csrf())])
        .await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    let confirmed = mail_client.follow(confirmed).await;
    kopplung_tests::assert_has(&confirmed.body, "Ihre E-Mail-Adresse ist bestätigt");
    assert_eq!(
        cycle.sql(unconfirmed).trim(),
        "1",
        "Sven's stays unconfirmed"
    );

    // The procedure receives and decides: Rita hears of both.
    let _sim = cycle.hub.procedure_sim(&["dresden-maengel"]);
    let received = mailbox
        .wait_for_nth(reporter, 2, Duration::from_secs(90))
        .await;
    let decided = mailbox
        .wait_for_nth(reporter, 3, Duration::from_secs(90))
        .await;
    assert!(
        received.body.contains(&format!(
            "der Stand Ihrer Meldung {receipt} hat sich geändert. Neuer Stand: „Bei der Behörde eingegangen“."
        )),
        "{}",
        received.body
    );
    assert!(
        decided.body.contains(&format!(
            "Der Stand Ihrer Meldung {receipt} hat sich geändert. Neuer Stand: „Erledigt“."
        )),
        "{}",
        decided.body
    );
    for mail in [&received, &decided] {
        assert_eq!(
            mail.subject,
            format!("Neuigkeiten zu Ihrer Meldung {receipt}")
        );
        // When the address goes: on stopping, after the grace period, on a named day.
        assert!(
            mail.body
                .contains("Wir löschen Ihre E-Mail-Adresse, sobald Sie die E-Mails abbestellen")
                && mail.body.contains(" und spätestens am "),
            "{}",
            mail.body
        );
        assert_no_form_data(mail);
        assert_eq!(mail.link(&status_link), status_link);
        assert_eq!(
            mail.link(&format!("{status_link}/abbestellen")),
            format!("{status_link}/abbestellen")
        );
    }
    // The status page opens without an account: status and the authority's message.
    let mut anyone = Citizen::new(&cycle);
    let status = anyone.get(&status_link).await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(
        status.body.contains(&receipt) && status.body.contains("Erledigt"),
        "{}",
        status.body
    );
    assert!(
        status.body.contains("Abschlussmitteilung"),
        "the decision's message:\n{}",
        status.body
    );
    for value in ["Schlagloch", "Königsbrücker", "schlagloch.png"] {
        assert!(!status.body.contains(value), "{value} on the status page");
    }
    // A guessed token opens nothing.
    let guessed = anyone.get(&format!("/status/{}", "ab".repeat(32))).await;
    assert_eq!(guessed.status, 404);
    // Final: the address goes after the grace period (the mail about it was queued in
    // the same transaction, so it is marked by now).
    let marked = "SELECT COUNT(*) FROM status_subscriptions
                  WHERE final_at IS NOT NULL AND expires_at <= final_at + 14 * 86400";
    assert_eq!(
        cycle
            .sql(&format!("{marked} AND email = '{reporter}'"))
            .trim(),
        "1"
    );

    // Sven never confirmed: his application was decided, he got the confirmation only.
    let svens_decision = feed_seq(&cycle, &svens_id, "decided").await;
    portal_followed(&cycle, svens_decision).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mailbox.to(silent).len(), 1, "{:#?}", mailbox.to(silent));
    assert_eq!(cycle.sql(marked).trim(), "2", "the unconfirmed one too");
    let _ = application;

    // The stop link: a page whose button stops the mails and deletes the address.
    let stop = format!("{status_link}/abbestellen");
    let page = anyone.get(&stop).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let stopped = anyone.post(&stop, &[("csrf", &page.csrf())]).await;
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    assert!(
        stopped
            .body
            .contains("Wir haben Ihre E-Mail-Adresse gelöscht")
    );
    assert_eq!(anyone.get(&status_link).await.status, 404);
    assert_eq!(
        cycle
            .sql(&format!(
                "SELECT COUNT(*) FROM status_subscriptions WHERE email = '{reporter}'"
            ))
            .trim(),
        "0"
    );
}

#[tokio::test]
async fn a_relay_that_is_down_delays_the_mail_but_not_the_state_change() {
    let mut cycle = cycle().await;
    let address = "dora@example.org";
    let mut dora = Citizen::new(&cycle);
    dora.register(address).await;
    let page = notification_page(&mut dora).await;
    let saved = dora
        .post(
            "/konto/benachrichtigungen",
            &[("csrf", &page.csrf()), ("stand", "ja")],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);

    cycle.smtp.stop();
    let draft = portal_support::report_a_pothole(&mut dora).await;
    let (application, receipt) = application_of(&cycle, &draft);
    let _sim = cycle.hub.procedure_sim(&["dresden-maengel"]);
    // The hub records the decision regardless of the relay.
    cycle
        .hub
        .wait_for_status(&application, "decided", Duration::from_secs(90))
        .await;
    let decided = feed_seq(&cycle, &application, "decided").await;
    portal_followed(&cycle, decided).await;
    // Both mails wait in the portal's outbox, tried and kept.
    let until = Instant::now() + Duration::from_secs(30);
    while !cycle
        .log()
        .contains("mail not sent; it waits in the outbox")
    {
        assert!(
            Instant::now() < until,
            "no failed attempt:\n{}",
            cycle.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(cycle.sql("SELECT COUNT(*) FROM mail_outbox").trim(), "2");
    assert_eq!(
        cycle.mailbox().to(address).len(),
        1,
        "only the registration's"
    );

    // The relay is back on the same port: the mails go out.
    cycle.smtp.start();
    let mailbox = cycle.mailbox();
    let last = mailbox
        .wait_for_nth(address, 3, Duration::from_secs(30))
        .await;
    let statuses: Vec<String> = mailbox.to(address)[1..]
        .iter()
        .map(|m| m.body.clone())
        .collect();
    assert!(
        statuses
            .iter()
            .any(|b| b.contains("Bei der Behörde eingegangen")),
        "{statuses:#?}"
    );
    assert!(
        statuses.iter().any(|b| b.contains(&format!(
            "der Stand Ihrer Meldung {receipt} hat sich geändert. Neuer Stand: „Erledigt“."
        ))),
        "{statuses:#?}"
    );
    assert!(
        !last.body.contains("neue Nachricht"),
        "mailbox news were not chosen"
    );
    assert_no_form_data(&last);
}

#[tokio::test]
async fn an_account_made_at_an_identity_provider_confirms_an_address_before_it_is_mailed() {
    use kopplung_tests::oidc::{ERIKA, IdpBrowser, LOW};
    let cycle = Cycle::with(Options {
        sections: SECTIONS.into(),
        oidc: Some(String::new()),
        ..Options::default()
    })
    .await;
    let mut idp = IdpBrowser::new(cycle.idp.as_ref().expect("the identity provider"));
    let mut erika = Citizen::new(&cycle);
    erika
        .sign_in_at(&mut idp, ERIKA, LOW, "/konto/benachrichtigungen", false)
        .await;
    let page = notification_page(&mut erika).await;
    assert!(
        page.body
            .contains("Ihr Servicekonto hat noch keine bestätigte E-Mail-Adresse"),
        "{}",
        page.body
    );
    let saved = erika
        .post(
            "/konto/benachrichtigungen",
            &[("csrf", &page.csrf()), ("stand", "ja")],
        )
        .await;
    assert!(
        saved
            .body
            .contains("sobald Sie unten eine E-Mail-Adresse bestätigt haben"),
        "{}",
        saved.body
    );

    // A mistake is named; then the address, and its link by mail.
    let csrf = saved.csrf();
    let wrong = erika
        .post(
            "/konto/benachrichtigungen/adresse",
            &[("csrf", &csrf), ("email", "erika.example.org")],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(
        wrong
            .body
            .contains("Bitte geben Sie eine gültige E-Mail-Adresse an")
    );
    let address = "erika@example.org";
    let named = erika
        .post(
            "/konto/benachrichtigungen/adresse",
            &[("csrf", &csrf), ("email", address)],
        )
        .await;
    assert_eq!(named.status, 303, "{}", named.body);
    let named = erika.follow(named).await;
    assert!(
        named
            .body
            .contains("Wir haben Ihnen eine E-Mail mit einem Link geschickt")
    );
    assert!(named.body.contains(address), "waiting for its confirmation");
    let mail = cycle.mailbox().wait_for(address).await;
    let link = mail.link(&cycle.url("/konto/benachrichtigungen/bestaetigen?code="));
    // Someone else signed in (or nobody) cannot confirm it.
    let mut stranger = Citizen::new(&cycle);
    let asked = stranger.get(&link).await;
    assert_eq!(asked.status, 303, "to the sign-in first");
    assert!(asked.location().starts_with("/konto/anmelden?weiter="));
    let opened = erika.get(&link).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(
        cycle
            .sql("SELECT COUNT(*) FROM notification_settings WHERE email IS NOT NULL")
            .trim(),
        "0",
        "the link's page confirms nothing by itself"
    );
    let code = link.rsplit('=').next().expect("code").to_owned();
    let confirmed = erika
        .post(
            "/konto/benachrichtigungen/bestaetigen",
            &[("csrf", &opened.csrf()), ("code", &code)],
        )
        .await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    let confirmed = erika.follow(confirmed).await;
    assert!(confirmed.body.contains("Ihre E-Mail-Adresse ist bestätigt"));
    assert!(
        confirmed
            .body
            .contains(&format!("Wir schreiben an: <strong>{address}</strong>"))
    );

    // Her report's status changes reach that address.
    let draft = portal_support::report_a_pothole(&mut erika).await;
    let (_, receipt) = application_of(&cycle, &draft);
    let _sim = cycle.hub.procedure_sim(&["dresden-maengel"]);
    let decided = cycle
        .mailbox()
        .wait_for_nth(address, 3, Duration::from_secs(90))
        .await;
    assert!(
        decided.body.contains(&format!(
            "der Stand Ihrer Meldung {receipt} hat sich geändert. Neuer Stand: „Erledigt“."
        )),
        "{}",
        decided.body
    );
    assert_no_form_data(&decided);
}
