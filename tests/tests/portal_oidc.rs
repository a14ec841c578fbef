//! Sign-in with OpenID Connect against panva's `oidc-provider` from npm (OpenID
//! Certified, not ours), as a citizen's browser would go through it (cookies, redirects
//! by hand): the sign-in with the level from `acr` and the means from `amr`, the prefill
//! from the ID (read-only where the level requires it, posted values ignored), step-up
//! from basis to hoch before a Wohnsitzanmeldung (and a return with too low a level),
//! the ID token as the applicant's assertion, RP-initiated logout, a hardened return
//! (state bound to the session, used once; the provider's errors as German pages), a
//! sign-in that became too old before submission, idle sessions, and a password account
//! that identifies itself. Real hub, portal and provider processes.

mod portal_support;

use kopplung_tests::oidc::{Choice, ERIKA, HIGH, IdpBrowser, LOW, MAX, SUBSTANTIAL, encode};
use portal_support::{Citizen, Cycle, DRESDEN, MAENGEL, MELDE, Options, Page, draft_of};

const WOHNSITZ: &str = "99115005000000";

fn oidc(keys: &str, sections: &str) -> Options {
    Options {
        oidc: Some(keys.to_owned()),
        sections: sections.to_owned(),
        ..Options::default()
    }
}

/// The tag on `page` that holds `attribute` (e.g. `name="x"`), from `<` to `>`.
fn tag_with<'p>(page: &'p Page, attribute: &str) -> Option<&'p str> {
    let body = &page.body;
    let at = body.find(attribute)?;
    let start = body[..at].rfind('<')?;
    Some(&body[start..at + body[at..].find('>')?])
}

/// The value of the attribute `name` of `tag`, as written.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let value = tag.split(&format!("{name}=\"")).nth(1)?;
    Some(value[..value.find('"')?].to_owned())
}

/// The `value` of the input `name` on `page`, if it has one.
fn input_value(page: &Page, name: &str) -> Option<String> {
    attribute(tag_with(page, &format!("name=\"{name}\""))?, "value")
}

/// The `<input …>` tag of `name` on `page`.
fn input_tag(page: &Page, name: &str) -> String {
    tag_with(page, &format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no input {name}:\n{}", page.body))
        .to_owned()
}

/// The `href` of the link with id `id`, unescaped.
fn link(page: &Page, id: &str) -> String {
    let tag = tag_with(page, &format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}:\n{}", page.body));
    attribute(tag, "href")
        .unwrap_or_else(|| panic!("#{id} has no href: {tag}"))
        .replace("&amp;", "&")
        .replace("&#x3D;", "=")
        .replace("&#x2F;", "/")
}

#[tokio::test]
async fn sign_in_prefill_step_up_to_hoch_submission_and_logout() {
    let cycle = Cycle::with(oidc("", "")).await;
    let mut erika = Citizen::new(&cycle);
    let mut idp = IdpBrowser::new(cycle.idp.as_ref().unwrap());

    // A service that needs an account sends the visitor to sign in, asking the
    // providers for the service's level.
    let to_login = erika.try_start(MELDE, DRESDEN).await;
    assert_eq!(to_login.status, 303);
    assert!(
        to_login.location().starts_with("/konto/anmelden?weiter=")
            && to_login.location().ends_with("&niveau=substanziell"),
        "{}",
        to_login.location()
    );
    let login = erika.get(&to_login.location()).await;
    kopplung_tests::assert_has(&login.body, "Anmelden mit Test-Servicekonto");
    assert_eq!(
        input_value(&login, "niveau").as_deref(),
        Some("substanziell")
    );

    // Signed in at basis (user name and password at the provider), agreeing to the
    // prefill: the interaction page was asked for basis or more.
    let start = "/konto/oidc/anmelden?anbieter=test&niveau=basis&uebernahme=ja&weiter=/konto";
    let (back, shown) = erika
        .at_provider(&mut idp, start, Choice::sign_in(ERIKA, LOW))
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location(), "/konto");
    let shown = shown.expect("the provider's interaction page");
    kopplung_tests::assert_has(&shown, format!("Verlangt: {LOW} {SUBSTANTIAL} {HIGH}"));
    let account = erika.get("/konto").await;
    kopplung_tests::assert_has(&account.body, "id=\"vertrauensniveau\">basis<");
    assert!(account.body.contains("Benutzername und Passwort"));
    assert!(account.body.contains("Test-Servicekonto"));
    assert_eq!(
        cycle.sql("SELECT subject FROM account_identities"),
        ERIKA,
        "the identity is linked to the new account"
    );

    // The Wohnsitzanmeldung needs hoch: its first step explains and offers the step-up.
    let step = erika.start(WOHNSITZ, DRESDEN).await;
    let draft = draft_of(&step);
    let step_up = erika.get(&step).await;
    assert_eq!(step_up.status, 200);
    kopplung_tests::assert_has(&step_up.body, "Höheres Vertrauensniveau nötig");
    assert!(step_up.body.contains("Online-Ausweisfunktion"));
    assert_eq!(input_value(&step_up, "niveau").as_deref(), Some("hoch"));
    assert_eq!(input_value(&step_up, "erneut").as_deref(), Some("1"));
    assert_eq!(
        input_value(&step_up, "weiter").as_deref(),
        Some(step.as_str())
    );
    let step_up_start = format!(
        "/konto/oidc/anmelden?anbieter=test&niveau=hoch&erneut=1&uebernahme=ja&weiter={}",
        encode(&step)
    );
    // At the provider the citizen picks substanziell only: the portal says so, and the
    // session stays as it was.
    let (too_low, shown) = erika
        .at_provider(
            &mut idp,
            &step_up_start,
            Choice::sign_in(ERIKA, SUBSTANTIAL),
        )
        .await;
    let shown = shown.expect("prompt=login shows the interaction page again");
    assert!(shown.contains(&format!("Verlangt: {HIGH}")), "{shown}");
    assert!(shown.contains("prompt: login"), "{shown}");
    assert_eq!(too_low.status, 403, "{}", too_low.body);
    assert!(too_low.body.contains("Vertrauensniveau nicht erreicht"));
    assert!(
        too_low
            .body
            .contains("mit dem Vertrauensniveau „substanziell“ angemeldet. Nötig ist „hoch“"),
        "{}",
        too_low.body
    );
    let unchanged = erika.get("/konto").await;
    assert!(unchanged.body.contains("id=\"vertrauensniveau\">basis<"));
    // Again, with the Online-Ausweis: back at the form, which the ID prefills.
    let retry = link(&too_low, "erneut");
    let (back, _) = erika
        .at_provider(&mut idp, &retry, Choice::sign_in(ERIKA, HIGH))
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location(), step);
    let form = erika.get(&step).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(
        input_value(&form, "person.familienname").as_deref(),
        Some("Mustermann")
    );
    assert_eq!(
        input_value(&form, "person.geburtsdatum").as_deref(),
        Some("12.08.1964")
    );
    assert!(input_tag(&form, "person.familienname").contains(" readonly"));
    assert!(
        form.body
            .contains("Aus Ihrem Servicekonto: Diese Angabe stammt aus Ihrer Identifizierung")
    );
    // The new address is the citizen's to give: not from the ID, not locked.
    assert_eq!(
        input_value(&form, "neue_anschrift.strasse").as_deref(),
        Some("")
    );
    assert!(!input_tag(&form, "neue_anschrift.strasse").contains("readonly"));
    // The fixture's other person is posted for the locked fields: the ID's values stay.
    portal_support::fill_from_fixture(&mut erika, "wohnsitzanmeldung", step.clone()).await;
    let review = erika.get(&format!("/entwurf/{draft}/pruefen")).await;
    assert_eq!(review.status, 200);
    assert!(review.body.contains("Mustermann"), "{}", review.body);
    assert_eq!(
        cycle.sql(&format!(
            "SELECT json_extract(data, '$.person.familienname') || ' ' || json_extract(data, '$.person.geburtsort') FROM drafts WHERE id = '{draft}'"
        )),
        "Mustermann Zwickau",
        "the ID's name stays, what the ID does not say is the citizen's"
    );
    kopplung_tests::assert_has(&review.body, "Anmeldung verbindlich absenden");
    // The master data stays the account's own.
    let master = erika.get("/konto/stammdaten").await;
    assert!(!master.body.contains("Mustermann"));
    erika.submit_reviewed(&draft, &review).await;
    let account = erika.get("/konto").await;
    assert!(account.body.contains("id=\"vertrauensniveau\">hoch<"));
    assert!(account.body.contains("Online-Ausweisfunktion"));
    // One account for the identity, the ID token kept server-side for the hub.
    assert_eq!(cycle.sql("SELECT COUNT(*) FROM accounts"), "1");
    assert_eq!(cycle.sql("SELECT acr FROM session_identities"), HIGH);
    assert!(
        cycle
            .sql("SELECT id_token FROM session_identities")
            .starts_with("eyJ")
    );

    // Logout: at the portal, then at the provider (id_token_hint, post_logout_redirect_uri,
    // state), and back to the start page, which confirms it.
    let home = erika.get("/konto").await;
    let logout = erika
        .post("/konto/abmelden", &[("csrf", &home.csrf())])
        .await;
    assert_eq!(logout.status, 303);
    let end_session = url::Url::parse(&logout.location()).expect("the provider's logout URL");
    let issuer = &cycle.idp.as_ref().unwrap().issuer;
    assert!(
        logout.location().starts_with(issuer.as_str()),
        "{}",
        logout.location()
    );
    let params: std::collections::HashMap<String, String> =
        end_session.query_pairs().into_owned().collect();
    assert!(params["id_token_hint"].starts_with("eyJ"));
    assert_eq!(
        params["post_logout_redirect_uri"],
        format!("{}/", cycle.portal_url)
    );
    assert!(!params["state"].is_empty());
    assert_eq!(
        cycle.sql("SELECT COUNT(*) FROM sessions WHERE account_id IS NOT NULL"),
        "0"
    );
    let back = idp.logout(&logout.location()).await;
    assert!(
        back.starts_with(&format!("{}/?", cycle.portal_url)),
        "{back}"
    );
    let start_page = erika.get(&back).await;
    assert!(
        start_page
            .body
            .contains("im Portal und bei Ihrem Identitätsanbieter abgemeldet"),
        "{}",
        start_page.body
    );
    // The state works once.
    let again = erika.get(&back).await;
    assert!(
        !again
            .body
            .contains("im Portal und bei Ihrem Identitätsanbieter abgemeldet")
    );
    let account = erika.get("/konto").await;
    assert_eq!(account.status, 303);
    // Signed out at the provider too: a new sign-in shows its page again.
    let (_, shown) = erika
        .at_provider(
            &mut idp,
            "/konto/oidc/anmelden?anbieter=test&weiter=/konto",
            Choice::sign_in(ERIKA, LOW),
        )
        .await;
    assert!(shown.is_some(), "the provider's session ended");

    // Nothing personal in the portal's log: no names, addresses, subjects or tokens.
    let log = cycle.log();
    assert!(log.contains("signed in at an identity provider"), "{log}");
    for personal in ["Mustermann", "Erika", "Königsbrücker", ERIKA, "eyJ", "1964"] {
        assert!(
            !log.contains(personal),
            "{personal} in the portal's log:\n{log}"
        );
    }
}

/// Starts a sign-in and signs in at the provider as Max at basis; the URL it sends the
/// browser back with, not opened yet.
async fn signed_in_at_provider(citizen: &mut Citizen, idp: &mut IdpBrowser) -> String {
    let to_provider = citizen
        .get("/konto/oidc/anmelden?anbieter=test&weiter=/konto")
        .await;
    let sign_in = Choice::sign_in(MAX, LOW);
    idp.authorize(&to_provider.location(), sign_in).await.0
}

#[tokio::test]
async fn the_return_is_bound_to_the_session_used_once_and_errors_are_german_pages() {
    let cycle = Cycle::with(oidc("", "")).await;
    let mut anna = Citizen::new(&cycle);
    let mut idp = IdpBrowser::new(cycle.idp.as_ref().unwrap());
    let return_path = "/konto/oidc/rueckkehr";

    // Without a state, with an unknown one, or an error without one: a German page.
    for query in [
        "",
        "?code=abc",
        "?code=abc&state=unbekannt",
        "?error=access_denied",
        "?error=server_error&state=unbekannt",
    ] {
        let page = anna.get(&format!("{return_path}{query}")).await;
        assert_eq!(page.status, 400, "{query}: {}", page.body);
        assert!(
            page.body.contains(
                "Die Anmeldung ist abgelaufen oder wurde in einem anderen Browser begonnen"
            ),
            "{query}: {}",
            page.body
        );
    }
    // An unknown provider or level at the start: a German page, no redirect.
    for query in ["anbieter=fremd", "anbieter=test&niveau=mittel"] {
        let page = anna.get(&format!("/konto/oidc/anmelden?{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        assert!(page.body.contains("lang=\"de\""));
    }

    // Cancelled at the provider: access_denied, said in German, not signed in.
    let (cancelled, _) = anna
        .at_provider(
            &mut idp,
            "/konto/oidc/anmelden?anbieter=test&weiter=/konto",
            Choice::Cancel,
        )
        .await;
    assert_eq!(cancelled.status, 403, "{}", cancelled.body);
    assert!(cancelled.body.contains("abgebrochen"), "{}", cancelled.body);
    assert_eq!(anna.get("/konto").await.status, 303);

    // The provider's other errors, with a valid state: German pages, never a 500.
    for (error, status, words) in [
        ("temporarily_unavailable", 503, "nicht erreichbar"),
        ("login_required", 403, "verlangt eine neue Anmeldung"),
        ("invalid_scope", 400, "fehlgeschlagen"),
    ] {
        let to_provider = anna
            .get("/konto/oidc/anmelden?anbieter=test&weiter=/konto")
            .await;
        let url = url::Url::parse(&to_provider.location()).unwrap();
        let state = url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let page = anna
            .get(&format!("{return_path}?error={error}&state={state}"))
            .await;
        assert_eq!(page.status, status, "{error}: {}", page.body);
        assert!(page.body.contains(words), "{error}: {}", page.body);
        // Used: the same state again is refused.
        let again = anna
            .get(&format!("{return_path}?error={error}&state={state}"))
            .await;
        assert_eq!(again.status, 400, "{error}");
    }
    // An answer naming another issuer (RFC 9207) is refused.
    let callback = signed_in_at_provider(&mut anna, &mut idp).await;
    let forged = callback.replace(
        &encode(&cycle.idp.as_ref().unwrap().issuer),
        &encode("http://evil.example"),
    );
    assert_ne!(forged, callback, "the provider sends iss");
    let page = anna.get(&forged).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("nicht vom gewählten Identitätsanbieter"));

    // A return in another browser (another session) does not sign anyone in.
    let callback = signed_in_at_provider(&mut anna, &mut idp).await;
    let mut mallory = Citizen::new(&cycle);
    let csrf = mallory.csrf().await;
    let _ = mallory
        .post(
            &format!("/antrag/{MAENGEL}/neu"),
            &[("csrf", &csrf), ("region", DRESDEN)],
        )
        .await;
    let stolen = mallory.get(&callback).await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert_eq!(mallory.get("/konto").await.status, 303);
    // The right browser signs in with it once; a replay is refused.
    let signed_in = anna.get(&callback).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location(), "/konto");
    assert_eq!(anna.get("/konto").await.status, 200);
    let replay = anna.get(&callback).await;
    assert_eq!(replay.status, 400);
    // Sign-ins under way are kept hashed, bound to a session.
    assert_eq!(
        cycle.sql("SELECT COUNT(*) FROM oidc_logins WHERE length(state_hash) = 64"),
        cycle.sql("SELECT COUNT(*) FROM oidc_logins")
    );
}

#[tokio::test]
async fn a_sign_in_too_old_is_repeated_before_submission_and_idle_sessions_end() {
    let cycle = Cycle::with(oidc(
        "max_age_secs = 4",
        "[accounts]\nidle_timeout_secs = 8\n",
    ))
    .await;
    let mut erika = Citizen::new(&cycle);
    let mut idp = IdpBrowser::new(cycle.idp.as_ref().unwrap());
    erika
        .sign_in_at(&mut idp, ERIKA, SUBSTANTIAL, "/konto", true)
        .await;
    // A Mängelanzeige (a basis service: the ID's values are offered, not locked).
    let (draft, _) = portal_support::start_pothole_report(&mut erika).await;
    let review_path = format!("/entwurf/{draft}/pruefen");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    // Older than max_age_secs: signed in again (prompt=login), back at the review.
    let review = erika.get(&review_path).await;
    let again = erika.submit(&draft, &review.csrf()).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert!(
        again
            .location()
            .starts_with("/konto/oidc/anmelden?anbieter=test&weiter=")
            && again.location().contains("niveau=substanziell")
            && again.location().contains("erneut=1"),
        "{}",
        again.location()
    );
    let (back, shown) = erika
        .at_provider(
            &mut idp,
            &again.location(),
            Choice::sign_in(ERIKA, SUBSTANTIAL),
        )
        .await;
    assert!(shown.is_some(), "prompt=login: the provider asked again");
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location(), review_path);
    let review = erika.get(&review_path).await;
    erika.submit_reviewed(&draft, &review).await;

    // Idle longer than idle_timeout_secs: signed out, sent to sign in (and back).
    tokio::time::sleep(std::time::Duration::from_secs(9)).await;
    let gone = erika.get("/konto/antraege").await;
    assert_eq!(gone.status, 303);
    assert_eq!(
        gone.location(),
        "/konto/anmelden?weiter=%2Fkonto%2Fantraege"
    );
}

#[tokio::test]
async fn a_password_account_is_basis_and_identifies_itself_at_the_provider() {
    let cycle = Cycle::with(oidc("", "")).await;
    let mut anna = Citizen::new(&cycle);
    anna.register("anna@example.org").await;
    let account = anna.get("/konto").await;
    assert!(account.body.contains("id=\"vertrauensniveau\">basis<"));
    assert!(account.body.contains("anna@example.org"));
    // The Meldebescheinigung needs substanziell: step-up before the first step.
    let step = anna.start(MELDE, DRESDEN).await;
    let page = anna.get(&step).await;
    assert!(page.body.contains("Höheres Vertrauensniveau nötig"));
    let identify = anna
        .get(&format!(
            "/konto/identifizierung?niveau=substanziell&weiter={}",
            encode(&step)
        ))
        .await;
    assert_eq!(identify.status, 200);
    assert!(
        identify
            .body
            .contains("Verlangt ist das Vertrauensniveau „substanziell“")
    );
    for level in ["basis", "substanziell", "hoch"] {
        assert!(identify.body.contains(&format!(">{level}</dt>")), "{level}");
    }
    // Identified with ELSTER: the same account, now substanziell in this session.
    anna.sign_in_at(
        &mut IdpBrowser::new(cycle.idp.as_ref().unwrap()),
        MAX,
        SUBSTANTIAL,
        &step,
        false,
    )
    .await;
    let form = anna.get(&step).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(!form.body.contains("Höheres Vertrauensniveau"));
    let account = anna.get("/konto").await;
    assert!(account.body.contains("anna@example.org"));
    assert!(
        account
            .body
            .contains("id=\"vertrauensniveau\">substanziell<")
    );
    assert!(account.body.contains("ELSTER-Zertifikat"));
    assert_eq!(cycle.sql("SELECT COUNT(*) FROM accounts"), "1");
    // Signed in with the password again: basis, whatever the account reached before.
    let signed_in = anna.sign_in_next("anna@example.org", "/konto").await;
    assert_eq!(signed_in.status, 303);
    let account = anna.get("/konto").await;
    assert!(account.body.contains("id=\"vertrauensniveau\">basis<"));
}
