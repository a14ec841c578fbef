//! A UI behind a sign-in form with its sessions in memory — the hub's admin console and
//! clerk inbox: the login page with a CSRF token of its own (double-submitted in a
//! cookie), the login through the login limiter, sessions in an HttpOnly,
//! SameSite=Strict cookie for the UI's path, CSRF-checked POSTs, the logout, German
//! error pages, the shared stylesheet and the security headers. Each UI brings its
//! pages, its layout, its login form and how it checks credentials ([`SignInUi`]).
//!
//! Both UIs are German, work without JavaScript and run under a CSP without inline
//! styles or scripts.

mod token;
pub use token::TokenLoginForm;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Extension, Form, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::answer::{SecurityHeaders, asset, retry_after, see_other};
use super::cookie::{Cookies, SameSite, cookie};
use super::session::{CsrfForm, SESSION_TTL, Session, Sessions, checked_login_form};
use super::templates::{TemplateSet, Templates};
use super::token::{random_hex, same_token};
use crate::{ClientAddr, Error, LoginLimiter, Refused};

/// The pages' Content-Security-Policy: only the UI's own stylesheet, no scripts.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The security headers of every answer.
pub const HEADERS: SecurityHeaders = SecurityHeaders {
    csp: CSP,
    referrer_policy: "no-referrer",
    permissions_policy: None,
    hsts: false,
};

/// The stylesheet of the UIs.
pub const STYLESHEET: &str = include_str!("style.css");

/// The UIs' forms are small.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The plain 500 when even the error page cannot be rendered.
const INTERNAL_ERROR: &str = "Interner Fehler. Bitte wenden Sie sich an den Betrieb der Plattform.";

/// How long the login form's token lasts, in seconds.
const LOGIN_FORM_SECS: u64 = 3600;

/// What a UI is called and where it lives.
#[derive(Debug)]
pub struct ShellSpec {
    /// In logs: `admin console`.
    pub name: &'static str,
    /// Where the UI lives (`/console`): its start page and its cookies' path.
    pub base: &'static str,
    /// The stylesheet's path below `base` (`/console.css`).
    pub stylesheet: &'static str,
    pub session_cookie: &'static str,
    /// The login form's own CSRF token.
    pub login_cookie: &'static str,
    /// The error pages' link home for a signed-in user (`Zur Suche`).
    pub home_link: &'static str,
    /// The 404's message.
    pub not_found: &'static str,
    /// The 503's message.
    pub unavailable: &'static str,
    /// The login page's message after wrong credentials.
    pub wrong_credentials: &'static str,
    /// The folder of the UI's templates, named in errors.
    pub folder: &'static str,
    /// The UI's templates (`layout`, `login` and its pages; the error page is the
    /// shell's): [`crate::templates!`].
    pub templates: &'static [(&'static str, &'static str)],
    /// Which of them are partials.
    pub partials: &'static [&'static str],
}

/// A UI's sessions, cookies and templates.
#[derive(Debug)]
pub struct Shell {
    spec: &'static ShellSpec,
    cookies: Cookies,
    sessions: Sessions,
    templates: Templates,
    /// The hub's one login limiter, shared by every UI's shell.
    logins: LoginLimiter,
}

impl Shell {
    /// The shell of the UI `spec`; `secure_cookies` when it is reached over https;
    /// `logins` the limiter its logins count in (the hub's one, shared by its UIs).
    pub fn new(
        spec: &'static ShellSpec,
        secure_cookies: bool,
        logins: LoginLimiter,
    ) -> Result<Self, Error> {
        let mut sources = vec![("error", include_str!("error.hbs"))];
        sources.extend_from_slice(spec.templates);
        let templates = Templates::compile(TemplateSet {
            ui: spec.name,
            folder: spec.folder,
            sources: &sources,
            partials: spec.partials,
            strict: true,
            internal_error: INTERNAL_ERROR,
        })?;
        Ok(Self {
            spec,
            cookies: Cookies {
                path: spec.base,
                same_site: SameSite::Strict,
                secure: secure_cookies,
            },
            sessions: Sessions::default(),
            templates,
            logins,
        })
    }

    pub fn spec(&self) -> &'static ShellSpec {
        self.spec
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    pub fn logins(&self) -> &LoginLimiter {
        &self.logins
    }

    /// The plain 500.
    pub fn internal_error(&self) -> Response {
        self.templates.internal_error()
    }

    /// A `Set-Cookie` value for the UI's path.
    pub fn cookie(&self, name: &str, value: &str, max_age: u64) -> HeaderValue {
        self.cookies.set(name, value, Some(max_age))
    }

    /// The session the request's cookie names.
    fn session(&self, headers: &HeaderMap) -> Option<SignedIn> {
        let token = cookie(headers, self.spec.session_cookie)?;
        let session = self.sessions.get(&token)?;
        Some(SignedIn { token, session })
    }

    fn login_path(&self) -> String {
        format!("{}/login", self.spec.base)
    }
}

/// What a page gives its layout.
#[derive(Debug)]
pub struct Frame<'a> {
    pub title: &'a str,
    /// The signed-in user's, if any.
    pub session: Option<&'a Session>,
    /// The page, rendered.
    pub content: String,
}

/// The layout's data of every page of a UI: the page, who is signed in as the UI
/// names them, the session's CSRF token for the logout form, and the navigation.
#[derive(Debug, Serialize)]
pub struct Layout<'a> {
    pub title: &'a str,
    /// The signed-in user as the header names them; no navigation or logout without.
    pub user: Option<&'a str>,
    pub csrf: Option<&'a str>,
    pub nav: Vec<NavItem>,
    pub content: String,
}

/// One link of a UI's navigation.
#[derive(Debug, Serialize)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    /// The page shown belongs to it (`aria-current="page"`).
    pub current: bool,
}

impl<'a> Layout<'a> {
    /// The layout of `frame` for `user` (when signed in), with the navigation `nav`
    /// (href, label) and `current` the href of the area the page belongs to.
    pub fn new(
        frame: Frame<'a>,
        user: Option<&'a str>,
        nav: &[(&'static str, &'static str)],
        current: Option<&str>,
    ) -> Self {
        Self {
            title: frame.title,
            user,
            csrf: frame.session.map(|s| s.csrf.as_str()),
            nav: nav
                .iter()
                .map(|&(href, label)| NavItem {
                    href,
                    label,
                    current: current == Some(href),
                })
                .collect(),
            content: frame.content,
        }
    }
}

/// A signed-in user: the session and its token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub session: Session,
}

/// What a login form's credentials are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Right: the session's user.
    User(String),
    /// Wrong; `known` names the user they were for, if that may be logged.
    Wrong { known: Option<String> },
}

/// A UI on the shell: its state (cloned into every request) knows its shell, its
/// layout and its login.
/// A UI's login form, as the shell checks and counts it.
pub trait SignInForm: DeserializeOwned + Send + 'static {
    /// Its CSRF field.
    fn csrf(&self) -> &str;

    /// What the login limiter counts an attempt against, besides the address, in the
    /// UI at `base`.
    fn account(&self, base: &str, address: IpAddr) -> String;

    /// The login page's message when the limiter refuses an attempt.
    fn refused(refused: &Refused) -> String;
}

pub trait SignInUi: Clone + Send + Sync + 'static {
    /// The login form as posted.
    type LoginForm: SignInForm;

    fn shell(&self) -> &Shell;

    /// Whether a session's user may still use the UI (a clerk removed from the
    /// configuration may not).
    fn admits(&self, user: &str) -> bool;

    /// The layout's data of a page without a place in the UI's navigation (errors, the
    /// login).
    fn layout<'a>(&'a self, frame: Frame<'a>) -> impl Serialize + 'a;

    /// Checks the credentials of a login form.
    fn authenticate(&self, form: Self::LoginForm) -> impl Future<Output = Verdict> + Send;

    /// The signed-in user of the request's cookie.
    fn signed_in(&self, headers: &HeaderMap) -> Option<SignedIn> {
        self.shell()
            .session(headers)
            .filter(|signed| self.admits(&signed.session.user))
    }

    /// A page in the layout.
    fn page(
        &self,
        status: StatusCode,
        title: &str,
        session: Option<&Session>,
        template: &str,
        data: &impl Serialize,
    ) -> Response {
        self.shell()
            .templates
            .page(status, template, data, |content| {
                self.layout(Frame {
                    title,
                    session,
                    content,
                })
            })
    }

    /// An error page; its link leads to `link`, else home (or to the login).
    fn error_page(
        &self,
        status: StatusCode,
        session: Option<&Session>,
        heading: &str,
        message: &str,
        link: Option<(&str, &str)>,
    ) -> Response {
        let shell = self.shell();
        let login = shell.login_path();
        let (link_href, link_text) = match (link, session) {
            (Some(link), _) => link,
            (None, Some(_)) => (shell.spec.base, shell.spec.home_link),
            (None, None) => (login.as_str(), "Zur Anmeldung"),
        };
        let page = ErrorPage {
            heading,
            message,
            link_href,
            link_text,
        };
        self.page(status, heading, session, "error", &page)
    }

    fn not_found(&self, session: Option<&Session>) -> Response {
        let message = self.shell().spec.not_found;
        let status = StatusCode::NOT_FOUND;
        self.error_page(status, session, "Nicht gefunden", message, None)
    }

    fn unavailable(&self, session: Option<&Session>) -> Response {
        let message = self.shell().spec.unavailable;
        let status = StatusCode::SERVICE_UNAVAILABLE;
        self.error_page(
            status,
            session,
            "Vorübergehend nicht verfügbar",
            message,
            None,
        )
    }

    fn forbidden(&self, session: Option<&Session>) -> Response {
        let message = if session.is_some() {
            "Die Anfrage konnte nicht überprüft werden: Das Sicherheitsmerkmal des Formulars fehlt oder ist abgelaufen. Bitte laden Sie die Seite neu und versuchen Sie es erneut."
        } else {
            "Sie sind nicht angemeldet, oder Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an."
        };
        self.error_page(
            StatusCode::FORBIDDEN,
            session,
            "Nicht erlaubt",
            message,
            None,
        )
    }

    /// The login form with a fresh form token (also set as a cookie).
    fn login_page(&self, status: StatusCode, error: Option<&str>) -> Response {
        let shell = self.shell();
        let Ok(token) = random_hex(32) else {
            return shell.internal_error();
        };
        let page = LoginPage {
            csrf: &token,
            error,
        };
        let mut response = self.page(status, "Anmeldung", None, "login", &page);
        let cookie = shell.cookie(shell.spec.login_cookie, &token, LOGIN_FORM_SECS);
        response.headers_mut().append(header::SET_COOKIE, cookie);
        response
    }

    /// The user of a POST with the session's CSRF token, or the 403 to answer.
    fn posted(
        &self,
        headers: &HeaderMap,
        form: Result<Form<CsrfForm>, FormRejection>,
    ) -> Result<SignedIn, Box<Response>> {
        let Some(signed) = self.signed_in(headers) else {
            return Err(Box::new(self.forbidden(None)));
        };
        match form {
            Ok(Form(form)) if same_token(&form.csrf, &signed.session.csrf) => Ok(signed),
            _ => {
                tracing::warn!(
                    user = %signed.session.user,
                    "{}: POST without a valid CSRF token refused",
                    self.shell().spec.name
                );
                Err(Box::new(self.forbidden(Some(&signed.session))))
            }
        }
    }
}

#[derive(Serialize)]
struct ErrorPage<'a> {
    heading: &'a str,
    message: &'a str,
    link_href: &'a str,
    link_text: &'a str,
}

#[derive(Serialize)]
struct LoginPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

/// The UI's routes under its base: its `pages`, the shell's stylesheet, login, logout
/// and the German 404 (or the login) for unknown paths.
pub fn routes<U: SignInUi>(spec: &ShellSpec, pages: Router<U>) -> Router<U> {
    let ui = pages
        .route(spec.stylesheet, get(stylesheet))
        .route("/login", get(login_form::<U>).post(login::<U>))
        .route("/logout", post(logout::<U>))
        // Not the API's problem JSON.
        .fallback(unknown_page::<U>);
    Router::new().nest(spec.base, ui)
}

/// The UI ready to merge into the hub's router: its routes with the security headers
/// and the small body limit of its forms.
pub fn serve<U: SignInUi>(routes: Router<U>, ui: U) -> Router {
    HEADERS
        .on(routes)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(ui)
}

/// Like [`serve`], for a UI that needs more than the shell's defaults: its own security
/// headers (the workbench's CSP allows its own script and `fetch`) and a larger limit
/// for its forms (whole mapping files).
pub fn serve_with<U: SignInUi>(
    routes: Router<U>,
    ui: U,
    headers: SecurityHeaders,
    max_form_bytes: usize,
) -> Router {
    headers
        .on(routes)
        .layer(DefaultBodyLimit::max(max_form_bytes))
        .with_state(ui)
}

/// `GET …/<name>.css`
async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn unknown_page<U: SignInUi>(
    State(ui): State<U>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match ui.signed_in(&headers) {
        Some(signed) => ui.not_found(Some(&signed.session)),
        None if method == Method::GET || method == Method::HEAD => {
            see_other(&ui.shell().login_path())
        }
        None => ui.forbidden(None),
    }
}

async fn login_form<U: SignInUi>(State(ui): State<U>, headers: HeaderMap) -> Response {
    if ui.signed_in(&headers).is_some() {
        return see_other(ui.shell().spec.base);
    }
    ui.login_page(StatusCode::OK, None)
}

async fn login<U: SignInUi>(
    State(ui): State<U>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    form: Result<Form<U::LoginForm>, FormRejection>,
) -> Response {
    let shell = ui.shell();
    let spec = shell.spec;
    let form = match checked_login_form(&headers, spec.login_cookie, form, |f: &U::LoginForm| {
        f.csrf()
    }) {
        Ok(form) => form,
        Err((status, message)) => return ui.login_page(status, Some(message)),
    };
    let address = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0);
    let account = form.account(spec.base, address);
    let attempt = match shell
        .logins()
        .begin(Some(&account), address, tokio::time::Instant::now())
    {
        Ok(attempt) => attempt,
        Err(refused) => {
            let message = U::LoginForm::refused(&refused);
            let mut response = ui.login_page(StatusCode::TOO_MANY_REQUESTS, Some(&message));
            retry_after(&mut response, refused.wait);
            return response;
        }
    };
    let user = match ui.authenticate(form).await {
        Verdict::User(user) => user,
        Verdict::Wrong { known } => {
            match attempt.failed() {
                Some(wait) => tracing::warn!(
                    user = known.as_deref(),
                    wait_secs = wait.as_secs(),
                    "{}: logins wait after repeated failures",
                    spec.name
                ),
                None => tracing::info!(user = known.as_deref(), "{}: login failed", spec.name),
            }
            return ui.login_page(StatusCode::UNAUTHORIZED, Some(spec.wrong_credentials));
        }
    };
    attempt.succeeded();
    let Ok((token, _)) = shell.sessions.create(&user) else {
        return shell.internal_error();
    };
    tracing::info!(user = %user, "{}: signed in", spec.name);
    let mut response = see_other(spec.base);
    let headers = response.headers_mut();
    let session = shell.cookie(spec.session_cookie, &token, SESSION_TTL.as_secs());
    headers.append(header::SET_COOKIE, session);
    headers.append(header::SET_COOKIE, shell.cookies.clear(spec.login_cookie));
    response
}

async fn logout<U: SignInUi>(
    State(ui): State<U>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let signed = match ui.posted(&headers, form) {
        Ok(signed) => signed,
        Err(response) => return *response,
    };
    let shell = ui.shell();
    shell.sessions.remove(&signed.token);
    tracing::info!(user = %signed.session.user, "{}: signed out", shell.spec.name);
    let mut response = see_other(&shell.login_path());
    let cleared = shell.cookies.clear(shell.spec.session_cookie);
    response.headers_mut().append(header::SET_COOKIE, cleared);
    response
}

#[cfg(test)]
mod tests;
