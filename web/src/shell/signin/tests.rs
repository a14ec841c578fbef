//! The sign-in shell with a UI of its own: login, session, CSRF, logout, waits.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;

use super::*;
use crate::LoginPolicy;

static SPEC: ShellSpec = ShellSpec {
    name: "test ui",
    base: "/t",
    stylesheet: "/t.css",
    session_cookie: "t_session",
    login_cookie: "t_login",
    home_link: "Nach Hause",
    not_found: "Gibt es nicht.",
    unavailable: "Geht gerade nicht.",
    wrong_credentials: "Falsches Passwort.",
    folder: "tests",
    templates: &[
        ("layout", "{{title}}|{{csrf}}|{{{content}}}"),
        ("login", "login:{{csrf}}:{{#if error}}{{error}}{{/if}}"),
        ("home", "home of {{user}}"),
    ],
    partials: &[],
};

#[derive(Clone)]
struct Ui {
    shell: Arc<Shell>,
}

#[derive(Deserialize)]
struct Login {
    password: String,
    csrf: String,
}

impl SignInForm for Login {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn account(&self, base: &str, address: IpAddr) -> String {
        format!("{base}@{address}")
    }

    fn refused(refused: &Refused) -> String {
        format!("Warten Sie {} Sekunden.", refused.wait.as_secs())
    }
}

impl SignInUi for Ui {
    type LoginForm = Login;

    fn admits(&self, user: &str) -> bool {
        user == "anna"
    }

    fn shell(&self) -> &Shell {
        &self.shell
    }

    fn layout<'a>(&'a self, frame: Frame<'a>) -> impl Serialize + 'a {
        let csrf = frame.session.map(|s| s.csrf.as_str());
        json!({ "title": frame.title, "csrf": csrf, "content": frame.content })
    }

    async fn authenticate(&self, form: Login) -> Verdict {
        if form.password == "richtig" {
            Verdict::User("anna".into())
        } else {
            Verdict::Wrong { known: None }
        }
    }
}

async fn home(State(ui): State<Ui>, headers: HeaderMap) -> Response {
    match ui.signed_in(&headers) {
        Some(signed) => {
            let user = json!({ "user": signed.session.user });
            ui.page(
                StatusCode::OK,
                "Start",
                Some(&signed.session),
                "home",
                &user,
            )
        }
        None => see_other("/t/login"),
    }
}

fn app() -> Router {
    let ui = Ui {
        shell: Arc::new(
            Shell::new(
                &SPEC,
                true,
                LoginLimiter::new(LoginPolicy {
                    account_failures: 2,
                    first_lockout: Duration::from_secs(60),
                    ..LoginPolicy::default()
                }),
            )
            .expect("templates"),
        ),
    };
    serve(routes(&SPEC, Router::new().route("/", get(home))), ui)
}

/// What the browser keeps: the answer's status, cookies set and its body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
    }
}

async fn send(app: &Router, method: Method, path: &str, cookies: &str, form: &str) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, cookies)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("answer");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get_page(app: &Router, path: &str, cookies: &str) -> Answer {
    send(app, Method::GET, path, cookies, "").await
}

async fn post_form(app: &Router, path: &str, cookies: &str, form: &str) -> Answer {
    send(app, Method::POST, path, cookies, form).await
}

/// The login form's token and its cookie.
async fn login_form(app: &Router) -> (String, String) {
    let form = get_page(app, "/t/login", "").await;
    assert_eq!(form.status, StatusCode::OK);
    let token = form.cookie("t_login").expect("login cookie");
    assert!(
        form.body.contains(&format!("login:{token}:")),
        "{}",
        form.body
    );
    let cookie = format!("t_login={token}");
    (token, cookie)
}

#[tokio::test]
async fn a_user_signs_in_posts_with_the_token_and_signs_out() {
    let app = app();
    let form = get_page(&app, "/t/login", "").await;
    assert_eq!(form.headers[header::CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(form.headers[header::CACHE_CONTROL], "no-store");
    let (token, login_cookie) = login_form(&app).await;
    let right = format!("password=richtig&csrf={token}");

    // The login form's token must be the cookie's.
    let forged = post_form(&app, "/t/login", "", &right).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let wrong_password = format!("password=falsch&csrf={token}");
    let wrong = post_form(&app, "/t/login", &login_cookie, &wrong_password).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Falsches Passwort."), "{}", wrong.body);

    let signed_in = post_form(&app, "/t/login", &login_cookie, &right).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers[header::LOCATION], "/t");
    let set: Vec<_> = signed_in
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .collect();
    let attributes = "; Path=/t; HttpOnly; SameSite=Strict; Max-Age=28800; Secure";
    assert!(set[0].to_str().expect("ascii").ends_with(attributes));
    let cleared = "t_login=; Path=/t; HttpOnly; SameSite=Strict; Max-Age=0; Secure";
    assert_eq!(set[1], cleared);
    let session = signed_in.cookie("t_session").expect("session");
    let session = format!("t_session={session}");

    let home = get_page(&app, "/t", &session).await;
    assert_eq!(home.status, StatusCode::OK);
    let csrf = home.body.split('|').nth(1).expect("csrf").to_owned();
    assert!(home.body.ends_with("|home of anna"), "{}", home.body);
    let again = get_page(&app, "/t/login", &session).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let unknown = get_page(&app, "/t/nichts", &session).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("Gibt es nicht.") && unknown.body.contains("href=\"/t\""));

    // A POST without the session's token is refused; with it, the session ends.
    let refused = post_form(&app, "/t/logout", &session, "csrf=falsch").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = post_form(&app, "/t/logout", &session, &format!("csrf={csrf}")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.headers[header::LOCATION], "/t/login");
    assert_eq!(out.cookie("t_session").as_deref(), Some(""));
    let gone = get_page(&app, "/t/nichts", &session).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.headers[header::LOCATION], "/t/login");
    let anonymous_post = post_form(&app, "/t/nichts", "", "").await;
    assert_eq!(anonymous_post.status, StatusCode::FORBIDDEN);
    assert!(anonymous_post.body.contains("href=\"/t/login\""));
    let css = get_page(&app, "/t/t.css", "").await;
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
}

#[tokio::test(start_paused = true)]
async fn repeated_failures_make_the_login_wait() {
    let app = app();
    let (token, cookie) = login_form(&app).await;
    let guess = format!("password=falsch&csrf={token}");
    for _ in 0..2 {
        let wrong = post_form(&app, "/t/login", &cookie, &guess).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let right = format!("password=richtig&csrf={token}");
    let waiting = post_form(&app, "/t/login", &cookie, &right).await;
    assert_eq!(waiting.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        waiting.body.contains("Warten Sie 60 Sekunden."),
        "{}",
        waiting.body
    );
    assert_eq!(waiting.headers[header::RETRY_AFTER], "60");
}
