//! The demo Servicekonto over real HTTP on loopback, as a relying party and a browser
//! without JavaScript use it: authorize → login page → post → redirect with the code →
//! token with PKCE → the ID token's signature checked against the published JWKS by an
//! independent verifier (python jwcrypto) → userinfo → single sign-on, step-up and
//! logout; and every refusal the protocol asks for.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kopplung_core::clock::ManualClock;
use kopplung_idp_sim::Idp;
use kopplung_tests::browser::{Browser, Page, no_redirects};
use serde_json::Value;

/// The relying party: a portal that is never called (nothing listens on port 9).
const PORTAL: &str = "http://127.0.0.1:9";
const REDIRECT: &str = "http://127.0.0.1:9/konto/oidc/rueckkehr";
const AFTER_LOGOUT: &str = "http://127.0.0.1:9/";
const SECRET: &str = "portal-secret-0123456789abcdef";
const SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
const HIGH: &str = "http://eidas.europa.eu/LoA/high";

struct TestIdp {
    base: String,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> TestIdp {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let data = dir.path().join("data");
    let config = dir.path().join("idp.toml");
    kopplung_tests::servicekonto::write_config(
        &config,
        &data,
        (&base, "127.0.0.1:0"),
        "Testportal",
        PORTAL,
        SECRET,
    );
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let idp = Idp::load(&config, &data, clock.clone()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(idp.serve(listener, async move {
        let _ = stopped.await;
    }));
    TestIdp {
        base,
        clock,
        dir,
        _stop: stop,
    }
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn new_pkce() -> Pkce {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// `/authorize?…` with the portal's usual parameters, `changes` replacing or adding
/// (an empty value removes one).
fn authorize(pkce: &Pkce, changes: &[(&str, &str)]) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", "portal"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid profile address"),
        ("state", "zustand-1"),
        ("nonce", "nonce-1"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ];
    for (key, value) in changes {
        params.retain(|(k, _)| k != key);
        if !value.is_empty() {
            params.push((key, value));
        }
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/authorize?{query}")
}

/// The query of a redirect's `Location`.
fn redirected(page: &Page) -> (String, HashMap<String, String>) {
    assert_eq!(page.status, 303, "{}", page.text());
    let location = url::Url::parse(&page.header("location")).unwrap();
    let params = location.query_pairs().into_owned().collect();
    let mut base = location.clone();
    base.set_query(None);
    (base.to_string(), params)
}

/// The login page's path from the authorize redirect.
fn login_path(page: &Page) -> String {
    assert_eq!(page.status, 303, "{}", page.text());
    let location = page.header("location");
    assert!(location.starts_with("/anmeldung?vorgang="), "{location}");
    location
}

fn hidden(page: &Page, name: &str) -> String {
    let text = page.text();
    let marker = format!("name=\"{name}\" value=\"");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        + marker.len();
    text[at..at + text[at..].find('"').unwrap()].to_owned()
}

/// Signs in on the login page at `path` as `identity` with `means`.
async fn choose(browser: &mut Browser, path: &str, identity: &str, means: &str) -> Page {
    let page = browser.get(path).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let (vorgang, csrf) = (hidden(&page, "vorgang"), page.csrf());
    browser
        .post(
            "/anmeldung",
            &[
                ("vorgang", &vorgang),
                ("csrf", &csrf),
                ("identitaet", identity),
                ("mittel", means),
                ("aktion", "anmelden"),
            ],
        )
        .await
}

/// Authorizes with `changes` and follows the redirect to the login page: its path, and
/// the page.
async fn login_page(
    browser: &mut Browser,
    pkce: &Pkce,
    changes: &[(&str, &str)],
) -> (String, Page) {
    let start = browser.get(&authorize(pkce, changes)).await;
    let path = login_path(&start);
    let page = browser.get(&path).await;
    (path, page)
}

/// The whole login (a new one, whatever the session): authorize, the page, the choice;
/// the code.
async fn code_for(browser: &mut Browser, pkce: &Pkce, identity: &str, means: &str) -> String {
    let start = browser.get(&authorize(pkce, &[("prompt", "login")])).await;
    let done = choose(browser, &login_path(&start), identity, means).await;
    let (target, params) = redirected(&done);
    assert_eq!(target, REDIRECT);
    params["code"].clone()
}

async fn token(idp: &TestIdp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
    let mut request = no_redirects()
        .post(format!("{}/token", idp.base))
        .form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.unwrap())
}

async fn redeem(idp: &TestIdp, code: &str, verifier: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    token(idp, &form, Some(("portal", SECRET))).await
}

/// Runs python jwcrypto on `id_token` with the JWKS the provider publishes.
async fn python_verify(idp: &TestIdp, id_token: &str) -> std::process::Output {
    let jwks = reqwest::get(format!("{}/jwks", idp.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let work = idp.dir.path();
    std::fs::write(work.join("jwks.json"), jwks).unwrap();
    std::fs::write(work.join("id_token.txt"), id_token).unwrap();
    Command::new(kopplung_tests::python_with_jwcrypto())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify_id_token.py"))
        .arg(work.join("jwks.json"))
        .arg(work.join("id_token.txt"))
        .output()
        .expect("python3 with jwcrypto")
}

/// The ID token checked by python jwcrypto against the JWKS the provider publishes: its
/// header and claims.
async fn verified_elsewhere(idp: &TestIdp, id_token: &str) -> Value {
    let output = python_verify(idp, id_token).await;
    assert!(
        output.status.success(),
        "jwcrypto refused the ID token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// What userinfo answers an access token.
async fn userinfo(idp: &TestIdp, access_token: &Value) -> (u16, Value) {
    let response = no_redirects()
        .get(format!("{}/userinfo", idp.base))
        .bearer_auth(access_token.as_str().unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A token endpoint's refusal: its status and `error`.
fn refused(answer: (u16, Value)) -> (u16, String) {
    (
        answer.0,
        answer.1["error"].as_str().unwrap_or_default().to_owned(),
    )
}

fn tamper(id_token: &str) -> String {
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    parts[1] = URL_SAFE_NO_PAD.encode(claims.replace("Jana", "Anja"));
    parts.join(".")
}

#[tokio::test]
async fn a_citizen_signs_in_and_the_relying_party_gets_a_verifiable_id_token() {
    let idp = start().await;
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", idp.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], idp.base);
    assert_eq!(discovery["token_endpoint"], format!("{}/token", idp.base));
    assert_eq!(
        discovery["end_session_endpoint"],
        format!("{}/abmeldung", idp.base)
    );
    assert_eq!(discovery["code_challenge_methods_supported"][0], "S256");
    assert_eq!(discovery["acr_values_supported"][1], SUBSTANTIAL);

    let mut browser = Browser::at(&idp.base);
    let pkce = new_pkce();
    let (path, page) = login_page(&mut browser, &pkce, &[("acr_values", SUBSTANTIAL)]).await;
    let text = page.text();
    assert!(text.contains("<html lang=\"de\">"), "{text}");
    assert!(text.contains("Testportal"), "{text}");
    assert!(
        text.contains("<label for=\"identitaet-erika-mustermann\">Erika Mustermann</label>"),
        "{text}"
    );
    assert!(
        text.contains("geboren am 12.08.1964, Heidestraße 17, 51147 Köln"),
        "{text}"
    );
    // Username and password reach only basis: shown, but it cannot be chosen.
    assert!(
        text.contains("value=\"benutzername-passwort\" disabled"),
        "{text}"
    );
    assert!(
        !text.contains("value=\"elster-zertifikat\" disabled"),
        "{text}"
    );
    assert!(
        text.contains("Reicht für diese Anmeldung nicht aus"),
        "{text}"
    );
    assert!(
        page.header("content-security-policy")
            .contains("form-action 'self' http://127.0.0.1:9")
    );

    let done = choose(&mut browser, &path, "jana-richter", "elster-zertifikat").await;
    let (target, params) = redirected(&done);
    assert_eq!(target, REDIRECT);
    assert_eq!(params["state"], "zustand-1");
    assert_eq!(params["iss"], idp.base);
    let (status, tokens) = redeem(&idp, &params["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);

    let id_token = tokens["id_token"].as_str().unwrap();
    let verified = verified_elsewhere(&idp, id_token).await;
    assert_eq!(verified["header"]["alg"], "RS256");
    let claims = &verified["claims"];
    assert_eq!(claims["iss"], idp.base);
    assert_eq!(claims["aud"], "portal");
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["acr"], SUBSTANTIAL);
    assert_eq!(claims["amr"], serde_json::json!(["swk"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert_eq!(claims["given_name"], "Jana");
    assert_eq!(claims["family_name"], "Richter");
    assert_eq!(claims["birthdate"], "1988-03-21");
    assert_eq!(claims["address"]["locality"], "Dresden");
    assert_eq!(claims["address"]["country"], "DE");
    let sub = claims["sub"].as_str().unwrap();
    assert!(
        sub.len() == 64 && sub.bytes().all(|b| b.is_ascii_hexdigit()),
        "{sub}"
    );
    // A changed claim breaks the signature for the independent verifier too.
    assert!(
        !python_verify(&idp, &tamper(id_token))
            .await
            .status
            .success()
    );

    // Userinfo: the same subject, the claims of the scopes.
    let (status, info) = userinfo(&idp, &tokens["access_token"]).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], sub);
    assert_eq!(info["address"]["street_address"], "Königsbrücker Straße 42");
    let anonymous = no_redirects()
        .get(format!("{}/userinfo", idp.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    // Single sign-on: the session answers without a page …
    idp.clock.advance(time::Duration::seconds(30));
    let again = new_pkce();
    let page = browser
        .get(&authorize(&again, &[("state", "zustand-2")]))
        .await;
    let (target, params) = redirected(&page);
    assert_eq!(
        (target.as_str(), params["state"].as_str()),
        (REDIRECT, "zustand-2")
    );
    let (_, tokens) = redeem(&idp, &params["code"], &again.verifier).await;
    let claims =
        verified_elsewhere(&idp, tokens["id_token"].as_str().unwrap()).await["claims"].clone();
    assert_eq!(claims["sub"], sub, "the same pseudonym for the same client");
    assert_eq!(
        claims["auth_time"], verified["claims"]["auth_time"],
        "no new login"
    );
    // … unless the client asks for a new login, a younger one, or a higher level.
    for changes in [
        vec![("prompt", "login")],
        vec![("max_age", "10")],
        vec![("max_age", "0")],
        vec![("acr_values", HIGH)],
    ] {
        let page = browser.get(&authorize(&again, &changes)).await;
        login_path(&page);
    }
    // The step-up keeps the person and offers only the online ID.
    let (path, page) = login_page(&mut browser, &again, &[("acr_values", HIGH)]).await;
    let text = page.text();
    assert!(text.contains("value=\"jana-richter\" checked"), "{text}");
    assert!(
        text.contains("value=\"elster-zertifikat\" disabled"),
        "{text}"
    );
    let done = choose(&mut browser, &path, "jana-richter", "online-ausweis").await;
    let (_, params) = redirected(&done);
    let (_, tokens) = redeem(&idp, &params["code"], &again.verifier).await;
    let high =
        verified_elsewhere(&idp, tokens["id_token"].as_str().unwrap()).await["claims"].clone();
    assert_eq!(
        (high["acr"].as_str(), high["amr"][0].as_str()),
        (Some(HIGH), Some("hwk"))
    );
    // scope openid alone releases no personal data.
    let bare = new_pkce();
    let page = browser.get(&authorize(&bare, &[("scope", "openid")])).await;
    let (_, params) = redirected(&page);
    let (_, tokens) = redeem(&idp, &params["code"], &bare.verifier).await;
    let claims =
        verified_elsewhere(&idp, tokens["id_token"].as_str().unwrap()).await["claims"].clone();
    assert!(
        claims.get("given_name").is_none() && claims.get("address").is_none(),
        "{claims}"
    );

    // RP-initiated logout with the ID token as hint: back to the client with state; the
    // next sign-in asks again.
    let logout = format!(
        "/abmeldung?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("id_token_hint", tokens["id_token"].as_str().unwrap()),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
                ("state", "abmelden-1"),
            ])
            .finish()
    );
    let page = browser.get(&logout).await;
    let (target, params) = redirected(&page);
    assert_eq!(
        (target.as_str(), params["state"].as_str()),
        (AFTER_LOGOUT, "abmelden-1")
    );
    assert!(!browser.cookies.contains_key("servicekonto_sitzung"));
    let page = browser.get(&authorize(&bare, &[])).await;
    login_path(&page);
}

#[tokio::test]
async fn the_token_endpoint_refuses_wrong_verifiers_reused_codes_and_wrong_secrets() {
    let idp = start().await;
    let mut browser = Browser::at(&idp.base);
    let pkce = new_pkce();
    let invalid_grant = (400, "invalid_grant".to_owned());

    // A wrong verifier: invalid_grant, and the code is gone.
    let code = code_for(
        &mut browser,
        &pkce,
        "erika-mustermann",
        "benutzername-passwort",
    )
    .await;
    assert_eq!(
        refused(redeem(&idp, &code, &new_pkce().verifier).await),
        invalid_grant
    );
    assert_eq!(
        refused(redeem(&idp, &code, &pkce.verifier).await),
        invalid_grant
    );

    // A reused code: refused, and the access token issued for it is revoked.
    let code = code_for(&mut browser, &pkce, "matthias-krause", "elster-zertifikat").await;
    let (status, tokens) = redeem(&idp, &code, &pkce.verifier).await;
    assert_eq!(status, 200);
    assert_eq!(userinfo(&idp, &tokens["access_token"]).await.0, 200);
    assert_eq!(
        refused(redeem(&idp, &code, &pkce.verifier).await),
        invalid_grant
    );
    assert_eq!(userinfo(&idp, &tokens["access_token"]).await.0, 401);

    // A wrong secret, no authentication, two methods at once.
    let code = code_for(&mut browser, &pkce, "sophie-lehmann", "online-ausweis").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let wrong = Some(("portal", "wrong-secret-0123456789"));
    let unauthenticated = (401, "invalid_client".to_owned());
    assert_eq!(refused(token(&idp, &form, wrong).await), unauthenticated);
    assert_eq!(refused(token(&idp, &form, None).await), unauthenticated);
    let mut both = form.to_vec();
    both.extend([("client_id", "portal"), ("client_secret", SECRET)]);
    let two = token(&idp, &both, Some(("portal", SECRET))).await;
    assert_eq!(refused(two), (400, "invalid_request".to_owned()));
    // client_secret_post redeems the code (no attempt above reached it).
    let (status, tokens) = token(&idp, &both, None).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = verified_elsewhere(&idp, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["claims"]["acr"], HIGH);

    // Another redirect_uri than the authorization request's.
    let code = code_for(&mut browser, &pkce, "sophie-lehmann", "online-ausweis").await;
    let mut other = form.to_vec();
    other[1] = ("code", code.as_str());
    other[2] = ("redirect_uri", "http://127.0.0.1:9/anders");
    let answer = token(&idp, &other, Some(("portal", SECRET))).await;
    assert_eq!(refused(answer), invalid_grant);

    // A code lives one minute.
    let code = code_for(&mut browser, &pkce, "sophie-lehmann", "online-ausweis").await;
    idp.clock.advance(time::Duration::seconds(61));
    assert_eq!(
        refused(redeem(&idp, &code, &pkce.verifier).await),
        invalid_grant
    );
}

#[tokio::test]
async fn bad_authorization_requests_never_go_to_unregistered_places() {
    let idp = start().await;
    let mut browser = Browser::at(&idp.base);
    let pkce = new_pkce();

    for (changes, heading) in [
        (
            vec![("redirect_uri", "http://evil.example/cb")],
            "Rücksprungadresse nicht zugelassen",
        ),
        (
            vec![("redirect_uri", "http://127.0.0.1:9/konto/oidc/rueckkehr/")],
            "Rücksprungadresse nicht zugelassen",
        ),
        (
            vec![("redirect_uri", "")],
            "Rücksprungadresse nicht zugelassen",
        ),
        (vec![("client_id", "unbekannt")], "Unbekannter Dienst"),
    ] {
        let page = browser.get(&authorize(&pkce, &changes)).await;
        assert_eq!(page.status, 400, "{changes:?}");
        assert!(page.headers.get("location").is_none(), "{changes:?}");
        assert!(page.text().contains(heading), "{}", page.text());
    }

    // Later problems go back to the client, with state.
    for (changes, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "profile")], "invalid_scope"),
        (vec![("prompt", "none")], "login_required"),
        (vec![("max_age", "bald")], "invalid_request"),
    ] {
        let page = browser.get(&authorize(&pkce, &changes)).await;
        let (target, params) = redirected(&page);
        assert_eq!(target, REDIRECT);
        assert_eq!(params["error"], error, "{changes:?}");
        assert_eq!(params["state"], "zustand-1");
    }

    // Online ID required: the other means cannot be chosen, and posting one anyway is
    // refused on the page.
    let (path, form) = login_page(&mut browser, &pkce, &[("acr_values", HIGH)]).await;
    let text = form.text();
    assert!(
        text.contains("value=\"benutzername-passwort\" disabled"),
        "{text}"
    );
    assert!(
        text.contains("value=\"elster-zertifikat\" disabled"),
        "{text}"
    );
    let refused = choose(&mut browser, &path, "matthias-krause", "elster-zertifikat").await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .text()
            .contains("diese Anmeldung verlangt mindestens „hoch“"),
        "{}",
        refused.text()
    );
    assert!(
        refused.text().contains("<title>Fehler: "),
        "{}",
        refused.text()
    );
    let nobody = choose(&mut browser, &path, "", "online-ausweis").await;
    assert!(
        nobody.text().contains("als welche Person"),
        "{}",
        nobody.text()
    );

    // Another browser, or a forged token, cannot answer the login.
    let mut stranger = Browser::at(&idp.base);
    assert_eq!(stranger.get(&path).await.status, 404);
    let vorgang = hidden(&form, "vorgang");
    let forged = browser
        .post(
            "/anmeldung",
            &[
                ("vorgang", vorgang.as_str()),
                ("csrf", "0".repeat(64).as_str()),
                ("identitaet", "matthias-krause"),
                ("mittel", "online-ausweis"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    // Cancelling returns access_denied.
    let (_, login) = login_page(&mut browser, &pkce, &[]).await;
    let cancelled = browser
        .post(
            "/anmeldung",
            &[
                ("vorgang", hidden(&login, "vorgang").as_str()),
                ("csrf", login.csrf().as_str()),
                ("aktion", "abbrechen"),
            ],
        )
        .await;
    let (_, params) = redirected(&cancelled);
    assert_eq!(params["error"], "access_denied");

    // A logout never returns to an unregistered address.
    let page = browser
        .get("/abmeldung?client_id=portal&post_logout_redirect_uri=http%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(page.status, 400);
    assert!(page.headers.get("location").is_none());
}

#[tokio::test]
async fn a_logout_without_hint_asks_the_citizen_first() {
    let idp = start().await;
    let mut browser = Browser::at(&idp.base);
    let pkce = new_pkce();
    code_for(&mut browser, &pkce, "zoe-simkova", "online-ausweis").await;
    let path = format!(
        "/abmeldung?client_id=portal&post_logout_redirect_uri={}&state=s1",
        url::form_urlencoded::byte_serialize(AFTER_LOGOUT.as_bytes()).collect::<String>()
    );
    let page = browser.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains("Testportal</strong> möchte Sie beim Servicekonto abmelden"),
        "{}",
        page.text()
    );
    // Without the page's token nothing happens.
    let forged = browser
        .post(
            "/abmeldung/bestaetigen",
            &[("csrf", "x"), ("client_id", "portal")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let done = browser
        .post(
            "/abmeldung/bestaetigen",
            &[
                ("csrf", page.csrf().as_str()),
                ("client_id", "portal"),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
                ("state", "s1"),
                ("aktion", "abmelden"),
            ],
        )
        .await;
    let (target, params) = redirected(&done);
    assert_eq!(
        (target.as_str(), params["state"].as_str()),
        (AFTER_LOGOUT, "s1")
    );
    let page = browser.get(&authorize(&pkce, &[])).await;
    login_path(&page);
}

/// The relying party the portal is built with (the `openidconnect` crate, which we did
/// not write) accepts everything the provider publishes and signs.
#[tokio::test]
async fn an_openidconnect_relying_party_signs_in_unchanged() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
        IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse,
    };
    let idp = start().await;
    let http = no_redirects();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(idp.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("portal".into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("address".into()))
        .add_auth_context_value(AuthenticationContextClass::new(SUBSTANTIAL.into()))
        .set_pkce_challenge(challenge)
        .url();

    let mut browser = Browser::at(&idp.base);
    let start_page = browser
        .get(&format!("{}?{}", url.path(), url.query().unwrap()))
        .await;
    let done = choose(
        &mut browser,
        &login_path(&start_page),
        "erika-mustermann",
        "online-ausweis",
    )
    .await;
    let (_, params) = redirected(&done);
    assert_eq!(&params["state"], csrf.secret());

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(
        claims.auth_context_ref().map(|acr| acr.as_str()),
        Some(HIGH)
    );
    assert_eq!(claims.auth_method_refs().unwrap()[0].as_str(), "hwk");
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.birthdate().unwrap().as_str(), "1964-08-12");
    let userinfo: openidconnect::core::CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let address = userinfo.address().unwrap();
    assert_eq!(address.locality.as_ref().unwrap().as_str(), "Köln");
    assert_eq!(
        userinfo.family_name().unwrap().get(None).unwrap().as_str(),
        "Mustermann"
    );
}
