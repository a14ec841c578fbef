//! The admin console: the admin API as German, server-rendered pages at `/console`, for
//! operators (role `operator`: read, retry, replay) and auditors (role `auditor`: read
//! only). Search applications, inspect one (state, delivery, history, audit trail),
//! view its transformed XML — each view recorded in the history and audit trail before
//! it is shown —, ask for the next attempt now, replay dead letters, and see the status
//! of mappings, certificates and procedures.
//!
//! One signs in with the role's admin token (`[admin] token_file`,
//! `auditor_token_file`). Sessions, cookies, CSRF tokens, the login limit and the
//! security headers are the web UIs' shared ones (`crate::web`), as in the clerk
//! inbox. No page shows form data, except the XML page.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use handlebars::Handlebars;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::Error;
use kopplung_core::oversight::{ReplayError, RetryError, ViewError};

use crate::api::auth::Clients;
use crate::context::Hub;
use crate::store::{ApplicationQuery, ApplicationRecord, AuditEntry, Status};
use kopplung_web::client::limit_address;
use kopplung_web::limiter::wait_in_minutes;
use kopplung_web::{ClientAddr, LoginLimiter};

use crate::web::{
    self, CsrfForm, Session, Sessions, cookie, german_time, german_time_seconds, iso, plain_error,
    same_token, see_other,
};

/// The session cookie (path `/console`).
const SESSION_COOKIE: &str = "kopplung_console";
/// The login form's own CSRF token, double-submitted.
const LOGIN_COOKIE: &str = "kopplung_console_login";
/// Where the console's cookies apply.
const COOKIE_PATH: &str = "/console";
/// The console's forms are small.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// Applications shown per search.
const SEARCH_LIMIT: u32 = 100;
/// Certificates expiring sooner (in days) are highlighted, as the example alert rule
/// in docs/operations.md warns.
const CERTIFICATE_WARN_DAYS: u32 = 21;
/// Hex digits shown of a hash.
const HASH_SHOWN: usize = 12;

/// What a signed-in user may do: the id of their admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Operator,
    Auditor,
}

impl Role {
    fn from_id(id: &str) -> Option<Self> {
        match id {
            "operator" => Some(Self::Operator),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Auditor => "auditor",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Operator => "Betrieb (operator)",
            Self::Auditor => "Prüfung (auditor, nur lesen)",
        }
    }
}

/// A signed-in user's session and role.
struct User {
    token: String,
    session: Session,
    role: Role,
}

/// The console's in-memory state: sessions, the login limit, the templates.
struct Console {
    secure_cookies: bool,
    sessions: Sessions,
    templates: Handlebars<'static>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

/// Where a page belongs in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Applications,
    Status,
    DeadLetters,
    None,
}

impl Console {
    /// `public_url`: the hub's base URL (cookies are `Secure` when it is https).
    fn new(public_url: &str) -> Result<Self, Error> {
        Ok(Self {
            secure_cookies: web::secure_cookies(public_url),
            sessions: Sessions::default(),
            templates: templates()?,
        })
    }

    /// The signed-in user of the request's cookie.
    fn user(&self, headers: &HeaderMap) -> Option<User> {
        let token = cookie(headers, SESSION_COOKIE)?;
        let session = self.sessions.get(&token)?;
        let role = Role::from_id(&session.user)?;
        Some(User {
            token,
            session,
            role,
        })
    }

    fn cookie(&self, name: &str, value: &str, max_age: u64) -> HeaderValue {
        web::set_cookie(name, value, COOKIE_PATH, max_age, self.secure_cookies)
    }

    /// A page in the layout.
    fn page(
        &self,
        status: StatusCode,
        title: &str,
        user: Option<&User>,
        area: Area,
        template: &str,
        data: &impl Serialize,
    ) -> Response {
        let nav = [
            ("/console", "Anträge", Area::Applications),
            ("/console/status", "Status", Area::Status),
            (
                "/console/deadletters",
                "Unzustellbare Nachrichten",
                Area::DeadLetters,
            ),
        ]
        .into_iter()
        .map(|(href, label, of)| NavItem {
            href,
            label,
            current: of == area,
        })
        .collect();
        let layout = |content| Layout {
            title,
            role: user.map(|u| u.role.label()),
            csrf: user.map(|u| u.session.csrf.as_str()),
            nav,
            content,
        };
        match web::render_in_layout(&self.templates, template, data, layout) {
            Ok(html) => web::html_response(status, html),
            Err(e) => {
                tracing::error!(template, error = %e, "admin console page could not be rendered");
                plain_error()
            }
        }
    }

    fn error_page(
        &self,
        status: StatusCode,
        user: Option<&User>,
        heading: &str,
        message: &str,
        link: Option<(&str, &str)>,
    ) -> Response {
        let (link_href, link_text) = match (link, user) {
            (Some(link), _) => link,
            (None, Some(_)) => ("/console", "Zur Suche"),
            (None, None) => ("/console/login", "Zur Anmeldung"),
        };
        self.page(
            status,
            heading,
            user,
            Area::None,
            "error",
            &ErrorPage {
                heading,
                message,
                link_href,
                link_text,
            },
        )
    }

    fn not_found(&self, user: Option<&User>) -> Response {
        self.error_page(
            StatusCode::NOT_FOUND,
            user,
            "Nicht gefunden",
            "Diese Seite oder diesen Antrag gibt es nicht.",
            None,
        )
    }

    fn unavailable(&self, user: Option<&User>) -> Response {
        self.error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            user,
            "Vorübergehend nicht verfügbar",
            "Der Speicher der Plattform antwortet gerade nicht. Bitte versuchen Sie es in einigen Minuten erneut.",
            None,
        )
    }

    fn forbidden(&self, user: Option<&User>) -> Response {
        let message = if user.is_some() {
            "Die Anfrage konnte nicht überprüft werden: Das Sicherheitsmerkmal des Formulars fehlt oder ist abgelaufen. Bitte laden Sie die Seite neu und versuchen Sie es erneut."
        } else {
            "Sie sind nicht angemeldet, oder Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an."
        };
        self.error_page(StatusCode::FORBIDDEN, user, "Nicht erlaubt", message, None)
    }

    fn read_only(&self, user: &User, back: &str) -> Response {
        self.error_page(
            StatusCode::FORBIDDEN,
            Some(user),
            "Nicht erlaubt",
            "Mit der Rolle „auditor“ können Sie lesen, aber nichts ändern. Zustellungen anstoßen kann nur der Betrieb (Rolle „operator“).",
            Some((back, "Zurück zum Antrag")),
        )
    }

    /// The login form with a fresh form token (also set as a cookie).
    fn login_page(&self, status: StatusCode, error: Option<&str>) -> Response {
        let Ok(token) = web::random_hex(32) else {
            return plain_error();
        };
        let mut response = self.page(
            status,
            "Anmeldung",
            None,
            Area::None,
            "login",
            &LoginPage {
                csrf: &token,
                error,
            },
        );
        response
            .headers_mut()
            .append(header::SET_COOKIE, self.cookie(LOGIN_COOKIE, &token, 3600));
        response
    }
}

fn templates() -> Result<Handlebars<'static>, Error> {
    web::templates(
        "router/src/console/templates",
        &[
            ("layout", include_str!("templates/layout.hbs")),
            ("error", include_str!("templates/error.hbs")),
            ("login", include_str!("templates/login.hbs")),
            ("search", include_str!("templates/search.hbs")),
            ("application", include_str!("templates/application.hbs")),
            ("xml", include_str!("templates/xml.hbs")),
            ("status", include_str!("templates/status.hbs")),
            ("deadletters", include_str!("templates/deadletters.hbs")),
        ],
        &[],
    )
}

#[derive(Serialize)]
struct Layout<'a> {
    title: &'a str,
    role: Option<&'static str>,
    csrf: Option<&'a str>,
    nav: Vec<NavItem>,
    content: String,
}

#[derive(Serialize)]
struct NavItem {
    href: &'static str,
    label: &'static str,
    current: bool,
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

/// A time as German text and as RFC 3339 for `<time datetime>`.
#[derive(Serialize)]
struct TimeView {
    text: String,
    iso: String,
}

impl TimeView {
    fn of(t: OffsetDateTime) -> Self {
        Self {
            text: german_time_seconds(t),
            iso: iso(t),
        }
    }

    /// A stored RFC 3339 text (audit entries); shown as it is if it does not parse.
    fn parse(text: &str) -> Self {
        match OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
            Ok(t) => Self::of(t),
            Err(_) => Self {
                text: text.to_owned(),
                iso: text.to_owned(),
            },
        }
    }
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct SearchPage {
    form: SearchForm,
    services: Vec<Choice>,
    procedures: Vec<Choice>,
    statuses: Vec<Choice>,
    error: Option<String>,
    results: Vec<ResultRow>,
    caption: String,
    truncated: bool,
    limit: u32,
}

#[derive(Serialize)]
struct ResultRow {
    href: String,
    receipt: String,
    service: String,
    municipality: String,
    procedure: String,
    status: &'static str,
    attempts: u32,
    last_error: String,
    accepted: String,
    accepted_iso: String,
}

#[derive(Serialize)]
struct ApplicationPage {
    id: String,
    receipt: String,
    service: String,
    service_key: String,
    municipality: String,
    region: String,
    client: String,
    status: &'static str,
    status_code: &'static str,
    created: TimeView,
    updated: TimeView,
    procedure: String,
    transport: String,
    destination: String,
    message_type: String,
    message_id: String,
    attempts: u32,
    last_error: Option<String>,
    next_attempt: Option<TimeView>,
    delivered: Option<TimeView>,
    notice: Option<&'static str>,
    csrf: String,
    xml_href: String,
    retry_href: String,
    replay_href: String,
    can_retry: bool,
    can_replay: bool,
    read_only: bool,
    history: Vec<HistoryRow>,
    history_caption: String,
    audit: Vec<AuditRow>,
    audit_caption: String,
}

#[derive(Serialize)]
struct HistoryRow {
    at: TimeView,
    status: String,
    detail: String,
}

#[derive(Serialize)]
struct AuditRow {
    seq: i64,
    at: TimeView,
    status: String,
    detail: String,
    message_hash: Option<String>,
    hash: String,
}

#[derive(Serialize)]
struct XmlPage {
    receipt: String,
    back_href: String,
    at: String,
    role: &'static str,
    message_type: String,
    message_id: String,
    xml: String,
}

#[derive(Serialize)]
struct StatusPage {
    procedures: Vec<ProcedureRow>,
    procedures_caption: String,
    certificates: Vec<CertificateRow>,
    certificates_caption: String,
    warn_days: u32,
    mappings: Vec<MappingRow>,
    mappings_caption: String,
}

#[derive(Serialize)]
struct ProcedureRow {
    procedure: String,
    transport: &'static str,
    destination: String,
    pending: u64,
    oldest: Option<TimeView>,
    blocked: Option<String>,
}

#[derive(Serialize)]
struct CertificateRow {
    owner: String,
    certificate: String,
    days: String,
    state: &'static str,
    class: Option<&'static str>,
}

#[derive(Serialize)]
struct MappingRow {
    name: String,
    service: String,
    message_type: String,
    online: &'static str,
}

#[derive(Serialize)]
struct DeadLettersPage {
    letters: Vec<DeadLetterRow>,
    caption: String,
}

#[derive(Serialize)]
struct DeadLetterRow {
    href: String,
    receipt: String,
    service: String,
    procedure: String,
    attempts: u32,
    reason: String,
    since: TimeView,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// The search form as submitted (and shown again).
#[derive(Debug, Default, Deserialize, Serialize)]
struct SearchForm {
    #[serde(default)]
    receipt: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    procedure: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
}

#[derive(Debug, Default, Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    hinweis: String,
}

#[derive(Clone)]
struct Shared {
    hub: Arc<Hub>,
    /// The admin API's tokens: the console's logins.
    admins: Clients,
    console: Arc<Console>,
    logins: LoginLimiter,
}

/// The console's routes under `/console`, with the web UIs' security headers. Merge it
/// into the API router; `logins` is the hub's one login limiter.
pub fn router(hub: Arc<Hub>, admins: Clients, logins: LoginLimiter) -> Result<Router, Error> {
    let console = Arc::new(Console::new(&hub.public_url)?);
    Ok(routes()
        .layer(axum::middleware::map_response(web::security_headers))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(Shared {
            hub,
            admins,
            console,
            logins,
        }))
}

fn routes() -> Router<Shared> {
    let console = Router::new()
        .route("/", get(search))
        .route("/console.css", get(web::stylesheet))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/applications/{id}", get(application))
        .route("/applications/{id}/xml", get(back_to_application).post(xml))
        .route(
            "/applications/{id}/retry",
            get(back_to_application).post(retry),
        )
        .route(
            "/applications/{id}/replay",
            get(back_to_application).post(replay),
        )
        .route("/status", get(status_page))
        .route("/deadletters", get(dead_letters))
        // Unknown console paths: a German 404 (or the login), not the API's problem JSON.
        .fallback(unknown_page);
    Router::new().nest("/console", console)
}

async fn unknown_page(State(s): State<Shared>, method: Method, headers: HeaderMap) -> Response {
    match s.console.user(&headers) {
        Some(user) => s.console.not_found(Some(&user)),
        None if method == Method::GET || method == Method::HEAD => see_other("/console/login"),
        None => s.console.forbidden(None),
    }
}

async fn login_form(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if s.console.user(&headers).is_some() {
        return see_other("/console");
    }
    s.console.login_page(StatusCode::OK, None)
}

async fn login(
    State(s): State<Shared>,
    client: Option<axum::Extension<ClientAddr>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let console = &s.console;
    let form = match web::checked_login_form(&headers, LOGIN_COOKIE, form, |f| &f.csrf) {
        Ok(form) => form,
        Err((status, message)) => return console.login_page(status, Some(message)),
    };
    // A token names no one: each address counts as an account of its own (attempts in
    // flight, growing waits), besides the coarse cap per address.
    let address = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0);
    let attempt = match s.logins.begin(
        Some(&format!("console@{}", limit_address(address))),
        address,
        tokio::time::Instant::now(),
    ) {
        Ok(attempt) => attempt,
        Err(refused) => {
            let message = format!(
                "Zu viele fehlgeschlagene Anmeldeversuche. Die Anmeldung von diesem Rechner aus ist vorübergehend gesperrt. Bitte versuchen Sie es in {} erneut.",
                wait_in_minutes(refused.wait)
            );
            let mut response = console.login_page(StatusCode::TOO_MANY_REQUESTS, Some(&message));
            web::retry_after(&mut response, refused.wait);
            return response;
        }
    };
    let token = form.token.trim();
    let role = if token.is_empty() {
        None
    } else {
        s.admins.authenticate_token(token).and_then(Role::from_id)
    };
    let Some(role) = role else {
        match attempt.failed() {
            Some(wait) => tracing::warn!(
                wait_secs = wait.as_secs(),
                "admin console: logins wait after repeated failures"
            ),
            None => tracing::info!("admin console: login failed"),
        }
        return console.login_page(
            StatusCode::UNAUTHORIZED,
            Some("Das Zugangstoken ist nicht gültig."),
        );
    };
    attempt.succeeded();
    let Ok((token, _)) = console.sessions.create(role.name()) else {
        return plain_error();
    };
    tracing::info!(role = role.name(), "admin console: signed in");
    let mut response = see_other("/console");
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        console.cookie(SESSION_COOKIE, &token, web::SESSION_TTL.as_secs()),
    );
    headers.append(header::SET_COOKIE, console.cookie(LOGIN_COOKIE, "", 0));
    response
}

/// The user and a checked CSRF token of a POST, or the 403 to answer.
fn posted_user(
    console: &Console,
    headers: &HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<User, Box<Response>> {
    let Some(user) = console.user(headers) else {
        return Err(Box::new(console.forbidden(None)));
    };
    match form {
        Ok(Form(form)) if same_token(&form.csrf, &user.session.csrf) => Ok(user),
        _ => {
            tracing::warn!(
                role = user.role.name(),
                "admin console: POST without a valid CSRF token refused"
            );
            Err(Box::new(console.forbidden(Some(&user))))
        }
    }
}

async fn logout(
    State(s): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let user = match posted_user(&s.console, &headers, form) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    s.console.sessions.remove(&user.token);
    tracing::info!(role = user.role.name(), "admin console: signed out");
    let mut response = see_other("/console/login");
    response
        .headers_mut()
        .append(header::SET_COOKIE, s.console.cookie(SESSION_COOKIE, "", 0));
    response
}

/// German names of the states, in the order an application goes through them.
const STATUSES: [(Status, &str); 10] = [
    (Status::Accepted, "angenommen"),
    (Status::Prepared, "vorbereitet"),
    (Status::Delivered, "zugestellt"),
    (Status::Received, "eingegangen (bestätigt)"),
    (Status::InProgress, "in Bearbeitung"),
    (Status::Query, "Rückfrage"),
    (Status::Decided, "entschieden"),
    (Status::Rejected, "abgelehnt"),
    (Status::Invalid, "nicht verarbeitbar"),
    (Status::DeadLettered, "unzustellbar"),
];

fn status_label(status: Status) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("unbekannt", |(_, label)| label)
}

/// A status as stored in the history (a state's name, shown in German if it is one).
fn status_text(status: &str) -> String {
    Status::parse(status).map_or_else(|| status.to_owned(), |s| status_label(s).to_owned())
}

/// `k7qx 2m4p`, `K7QX2M4P` → `K7QX-2M4P`.
fn normalize_receipt(text: &str) -> String {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    if compact.len() == 8 && compact.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("{}-{}", &compact[..4], &compact[4..])
    } else {
        compact
    }
}

/// A date from the form: `2025-03-14` (date field) or `14.03.2025` (typed).
fn parse_day(text: &str) -> Option<Date> {
    let text = text.trim();
    let (year, month, day) = if let Some((d, rest)) = text.split_once('.') {
        let (m, y) = rest.split_once('.')?;
        (y, m, d)
    } else {
        let mut parts = text.splitn(3, '-');
        (parts.next()?, parts.next()?, parts.next()?)
    };
    if year.len() != 4 {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
}

/// The store query of a submitted search form, or the message for the user. The form's
/// dates are shown again normalised.
fn query_of(form: &mut SearchForm, state: &Hub) -> Result<ApplicationQuery, String> {
    let given = |value: &str| {
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_owned())
    };
    let receipt = given(&form.receipt).map(|r| normalize_receipt(&r));
    let service = given(&form.service);
    if let Some(service) = &service
        && !state.catalog.current().contains_key(service)
    {
        return Err("Diese Leistung gibt es nicht.".into());
    }
    let procedure = given(&form.procedure);
    if let Some(procedure) = &procedure
        && !state.destinations.contains_key(procedure)
    {
        return Err("Dieses Verfahren gibt es nicht.".into());
    }
    let status = match given(&form.status) {
        None => None,
        Some(text) => Some(Status::parse(&text).ok_or("Diesen Status gibt es nicht.")?),
    };
    let day = |value: &mut String, name: &str| -> Result<Option<Date>, String> {
        match given(value) {
            None => Ok(None),
            Some(text) => match parse_day(&text) {
                Some(day) => {
                    *value = day.to_string();
                    Ok(Some(day))
                }
                None => Err(format!(
                    "„{name}“ ist kein Datum. Bitte geben Sie es als JJJJ-MM-TT oder TT.MM.JJJJ an."
                )),
            },
        }
    };
    let from = day(&mut form.from, "Eingegangen ab")?;
    let until = day(&mut form.until, "Eingegangen bis")?;
    // The store compares times as text: hand it UTC.
    let utc = |t: OffsetDateTime| t.to_offset(UtcOffset::UTC);
    Ok(ApplicationQuery {
        receipt,
        service,
        procedure,
        status,
        from: from.map(|d| utc(web::berlin_midnight(d))),
        until: until
            .and_then(|d| d.next_day())
            .map(|d| utc(web::berlin_midnight(d))),
        limit: SEARCH_LIMIT,
    })
}

async fn search(
    State(s): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<SearchForm>, QueryRejection>,
) -> Response {
    let console = &s.console;
    let Some(user) = console.user(&headers) else {
        return see_other("/console/login");
    };
    let (mut form, mut error) = match query {
        Ok(Query(form)) => (form, None),
        Err(_) => (
            SearchForm::default(),
            Some("Die Suchangaben waren unvollständig.".to_owned()),
        ),
    };
    let mappings = s.hub.catalog.current();
    let mut results = Vec::new();
    if error.is_none() {
        match query_of(&mut form, &s.hub) {
            Ok(query) => match s.hub.store.search(&query).await {
                Ok(found) => {
                    results = found
                        .into_iter()
                        .map(|a| ResultRow {
                            href: format!("/console/applications/{}", a.id),
                            service: mappings
                                .get(&a.service)
                                .map_or_else(|| a.service.clone(), |m| m.info.name.clone()),
                            municipality: s
                                .hub
                                .regions
                                .name(&a.region)
                                .unwrap_or(&a.region)
                                .to_owned(),
                            receipt: a.receipt,
                            procedure: a.procedure,
                            status: status_label(a.status),
                            attempts: a.attempts,
                            last_error: a.last_error.unwrap_or_else(|| "–".into()),
                            accepted: german_time(a.created_at),
                            accepted_iso: iso(a.created_at),
                        })
                        .collect();
                }
                Err(e) => {
                    tracing::error!(error = %e, "admin console: searching applications failed");
                    return console.unavailable(Some(&user));
                }
            },
            Err(message) => error = Some(message),
        }
    }
    let choice = |value: &str, label: String, chosen: &str| Choice {
        value: value.to_owned(),
        label,
        selected: value == chosen.trim(),
    };
    let mut services: Vec<Choice> = mappings
        .values()
        .map(|m| {
            choice(
                &m.info.key,
                format!("{} ({})", m.info.name, m.info.key),
                &form.service,
            )
        })
        .collect();
    services.sort_by(|a, b| a.label.cmp(&b.label));
    let procedures = s
        .hub
        .destinations
        .keys()
        .map(|id| choice(id, id.clone(), &form.procedure))
        .collect();
    let statuses = STATUSES
        .iter()
        .map(|(status, label)| choice(status.as_str(), (*label).to_owned(), &form.status))
        .collect();
    let caption = match results.len() {
        1 => "1 Antrag, die neuesten zuerst".to_owned(),
        n => format!("{n} Anträge, die neuesten zuerst"),
    };
    let page = SearchPage {
        truncated: results.len() >= SEARCH_LIMIT as usize,
        limit: SEARCH_LIMIT,
        caption,
        results,
        form,
        services,
        procedures,
        statuses,
        error,
    };
    let code = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    console.page(
        code,
        "Anträge",
        Some(&user),
        Area::Applications,
        "search",
        &page,
    )
}

/// The first hex digits of a hash, for tables.
fn short_hash(hash: &str) -> String {
    match hash.get(..HASH_SHOWN) {
        Some(start) if hash.len() > HASH_SHOWN => format!("{start}…"),
        _ => hash.to_owned(),
    }
}

/// The application of a path, or the answer for an unknown one.
async fn find(
    s: &Shared,
    user: &User,
    id: &str,
) -> Result<(Uuid, ApplicationRecord), Box<Response>> {
    let Ok(id) = Uuid::parse_str(id) else {
        return Err(Box::new(s.console.not_found(Some(user))));
    };
    match s.hub.store.application(id).await {
        Ok(Some(record)) => Ok((id, record)),
        Ok(None) => Err(Box::new(s.console.not_found(Some(user)))),
        Err(e) => {
            tracing::error!(error = %e, "admin console: reading an application failed");
            Err(Box::new(s.console.unavailable(Some(user))))
        }
    }
}

async fn application(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    notice: Result<Query<NoticeQuery>, QueryRejection>,
) -> Response {
    let console = &s.console;
    let Some(user) = console.user(&headers) else {
        return see_other("/console/login");
    };
    let (id, record) = match find(&s, &user, &id).await {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let audit: Vec<AuditEntry> = match s.hub.store.audit_entries(id).await {
        Ok(audit) => audit,
        Err(e) => {
            tracing::error!(error = %e, "admin console: reading the audit trail failed");
            return console.unavailable(Some(&user));
        }
    };
    let notice = match notice.map(|Query(q)| q.hinweis).as_deref() {
        Ok("versuch") => Some("Der nächste Zustellversuch wurde angestoßen."),
        Ok("eingeliefert") => Some(
            "Die Nachricht wurde erneut eingeliefert; sie geht mit derselben Nachrichten-ID noch einmal hinaus.",
        ),
        _ => None,
    };
    let mappings = s.hub.catalog.current();
    let destination = s.hub.destinations.get(&record.delivery.procedure);
    let operator = user.role == Role::Operator;
    let base = format!("/console/applications/{id}");
    let delivery = &record.delivery;
    let page = ApplicationPage {
        id: id.to_string(),
        receipt: record.receipt.clone(),
        service: mappings
            .get(&record.service)
            .map_or_else(|| record.service.clone(), |m| m.info.name.clone()),
        service_key: record.service.clone(),
        municipality: s
            .hub
            .regions
            .name(&record.region)
            .unwrap_or(&record.region)
            .to_owned(),
        region: record.region.clone(),
        client: record.client_id.clone(),
        status: status_label(record.status),
        status_code: record.status.as_str(),
        created: TimeView::of(record.created_at),
        updated: TimeView::of(record.updated_at),
        procedure: delivery.procedure.clone(),
        transport: destination.map_or_else(|| "–".to_owned(), |d| d.transport.to_owned()),
        destination: destination.map_or_else(|| "–".to_owned(), |d| d.destination.clone()),
        message_type: delivery.message_type.clone(),
        message_id: delivery.message_id.to_string(),
        attempts: delivery.attempts,
        last_error: delivery.last_error.clone(),
        next_attempt: delivery.next_attempt_at.map(TimeView::of),
        delivered: delivery.delivered_at.map(TimeView::of),
        notice,
        csrf: user.session.csrf.clone(),
        xml_href: format!("{base}/xml"),
        retry_href: format!("{base}/retry"),
        replay_href: format!("{base}/replay"),
        can_retry: operator && matches!(record.status, Status::Accepted | Status::Prepared),
        can_replay: operator && record.status == Status::DeadLettered,
        read_only: !operator,
        history_caption: match record.history.len() {
            1 => "1 Eintrag, der älteste zuerst".to_owned(),
            n => format!("{n} Einträge, der älteste zuerst"),
        },
        history: record
            .history
            .iter()
            .map(|h| HistoryRow {
                at: TimeView::of(h.at),
                status: status_text(&h.status),
                detail: h.detail.clone(),
            })
            .collect(),
        audit_caption: match audit.len() {
            1 => "1 Eintrag".to_owned(),
            n => format!("{n} Einträge"),
        },
        audit: audit
            .iter()
            .map(|a| AuditRow {
                seq: a.seq,
                at: TimeView::parse(&a.at),
                status: status_text(&a.status),
                detail: a.detail.clone(),
                message_hash: a.message_sha256.as_deref().map(short_hash),
                hash: short_hash(&a.hash),
            })
            .collect(),
    };
    let title = format!("Antrag {}", record.receipt);
    console.page(
        StatusCode::OK,
        &title,
        Some(&user),
        Area::Applications,
        "application",
        &page,
    )
}

/// A GET of an action's address (a bookmark, a reload): the application's page.
async fn back_to_application(Path(id): Path<String>) -> Response {
    match Uuid::parse_str(&id) {
        Ok(id) => see_other(&format!("/console/applications/{id}")),
        Err(_) => see_other("/console"),
    }
}

/// `POST …/xml`: records the view, then shows the transformed XML (escaped).
async fn xml(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let console = &s.console;
    let user = match posted_user(console, &headers, form) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let (id, _) = match find(&s, &user, &id).await {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let back = format!("/console/applications/{id}");
    let viewed = s
        .hub
        .oversight
        .view_message(id, user.role.name(), "admin console")
        .await;
    let (xml, message_id, message_type, receipt) = match viewed {
        Ok(viewed) => (
            viewed.xml,
            viewed.message_id,
            viewed.message_type,
            viewed.receipt,
        ),
        Err(ViewError::Purged) => {
            return console.error_page(
                    StatusCode::GONE,
                    Some(&user),
                    "Daten gelöscht",
                    "Die personenbezogenen Daten dieses Antrags wurden nach Ablauf der Aufbewahrungsfrist gelöscht; die Nachricht kann nicht mehr gezeigt werden. Historie und Laufzettel bleiben.",
                    Some((&back, "Zurück zum Antrag")),
                );
        }
        Err(ViewError::NotRenderable(e)) => {
            let message = format!(
                "Die geltende Abbildung kann diesen Antrag nicht in eine Nachricht umsetzen: {e}"
            );
            return console.error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&user),
                "Nachricht nicht darstellbar",
                &message,
                Some((&back, "Zurück zum Antrag")),
            );
        }
        Err(ViewError::NotFound) => return console.not_found(Some(&user)),
        Err(ViewError::Unavailable(_)) => return console.unavailable(Some(&user)),
        Err(ViewError::Internal) => return plain_error(),
    };
    let viewed_at = s.hub.clock.now();
    let page = XmlPage {
        receipt: receipt.clone(),
        back_href: back,
        at: german_time_seconds(viewed_at),
        role: user.role.name(),
        message_type,
        message_id: message_id.to_string(),
        xml,
    };
    let title = format!("XÖV-Nachricht von Antrag {receipt}");
    console.page(
        StatusCode::OK,
        &title,
        Some(&user),
        Area::Applications,
        "xml",
        &page,
    )
}

/// `POST …/retry`: the next attempt now (operators).
async fn retry(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let console = &s.console;
    let user = match posted_user(console, &headers, form) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return console.not_found(Some(&user));
    };
    let back = format!("/console/applications/{id}");
    if user.role != Role::Operator {
        return console.read_only(&user, &back);
    }
    match s.hub.oversight.retry_now(id, user.role.name()).await {
        Ok(()) => see_other(&format!("{back}?hinweis=versuch")),
        Err(RetryError::NothingToRetry) => console.error_page(
            StatusCode::CONFLICT,
            Some(&user),
            "Kein Versuch ausstehend",
            "Für diesen Antrag wartet kein Zustellversuch: Er ist zugestellt, wird gerade bearbeitet, ist unzustellbar (dann erneut einliefern) oder unbekannt.",
            Some((&back, "Zurück zum Antrag")),
        ),
        Err(RetryError::Unavailable(_)) => console.unavailable(Some(&user)),
    }
}

/// `POST …/replay`: a dead letter back into the outbox (operators).
async fn replay(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let console = &s.console;
    let user = match posted_user(console, &headers, form) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return console.not_found(Some(&user));
    };
    let back = format!("/console/applications/{id}");
    if user.role != Role::Operator {
        return console.read_only(&user, &back);
    }
    match s.hub.oversight.replay(id, user.role.name()).await {
        Ok(()) => see_other(&format!("{back}?hinweis=eingeliefert")),
        Err(ReplayError::NoDeadLetter) => console.error_page(
            StatusCode::CONFLICT,
            Some(&user),
            "Keine unzustellbare Nachricht",
            "Die Nachricht dieses Antrags ist nicht (mehr) unzustellbar.",
            Some((&back, "Zurück zum Antrag")),
        ),
        Err(ReplayError::Unavailable(_)) => console.unavailable(Some(&user)),
    }
}

async fn status_page(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let console = &s.console;
    let Some(user) = console.user(&headers) else {
        return see_other("/console/login");
    };
    let Ok(report) = s.hub.oversight.status().await else {
        return console.unavailable(Some(&user));
    };
    let count = |n: usize, one: &str, many: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    let page = StatusPage {
        procedures_caption: count(report.procedures.len(), "Verfahren", "Verfahren"),
        procedures: report
            .procedures
            .into_iter()
            .map(|p| ProcedureRow {
                procedure: p.procedure,
                transport: p.transport,
                destination: p.destination,
                pending: p.pending,
                oldest: p.oldest_since.map(TimeView::of),
                blocked: p.blocked,
            })
            .collect(),
        certificates_caption: count(report.certificates.len(), "Zertifikat", "Zertifikate"),
        certificates: report
            .certificates
            .into_iter()
            .map(|c| {
                let (state, class) = certificate_state(c.days_left);
                CertificateRow {
                    owner: c.owner,
                    certificate: c.certificate,
                    days: if c.days_left.is_finite() {
                        format!("{}", c.days_left)
                    } else {
                        "–".to_owned()
                    },
                    state,
                    class,
                }
            })
            .collect(),
        warn_days: CERTIFICATE_WARN_DAYS,
        mappings_caption: count(report.mappings.len(), "Abbildung", "Abbildungen"),
        mappings: report
            .mappings
            .into_iter()
            .map(|m| MappingRow {
                name: m.name,
                service: m.service,
                message_type: m.message_type,
                online: if m.online { "ja" } else { "nein (keine Route)" },
            })
            .collect(),
    };
    console.page(
        StatusCode::OK,
        "Status",
        Some(&user),
        Area::Status,
        "status",
        &page,
    )
}

/// How a certificate stands, and the row's highlight.
fn certificate_state(days_left: f64) -> (&'static str, Option<&'static str>) {
    if !days_left.is_finite() {
        ("nicht lesbar", Some("expired"))
    } else if days_left < 0.0 {
        ("abgelaufen", Some("expired"))
    } else if days_left < f64::from(CERTIFICATE_WARN_DAYS) {
        ("läuft bald ab", Some("warn"))
    } else {
        ("gültig", None)
    }
}

async fn dead_letters(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let console = &s.console;
    let Some(user) = console.user(&headers) else {
        return see_other("/console/login");
    };
    let letters = match s.hub.store.dead_letters().await {
        Ok(letters) => letters,
        Err(e) => {
            tracing::error!(error = %e, "admin console: reading dead letters failed");
            return console.unavailable(Some(&user));
        }
    };
    let mappings = s.hub.catalog.current();
    let page = DeadLettersPage {
        caption: match letters.len() {
            1 => "1 unzustellbare Nachricht, die älteste zuerst".to_owned(),
            n => format!("{n} unzustellbare Nachrichten, die älteste zuerst"),
        },
        letters: letters
            .into_iter()
            .map(|l| DeadLetterRow {
                href: format!("/console/applications/{}", l.application_id),
                receipt: l.receipt,
                service: mappings
                    .get(&l.service)
                    .map_or_else(|| l.service.clone(), |m| m.info.name.clone()),
                procedure: l.procedure,
                attempts: l.attempts,
                reason: l.reason,
                since: TimeView::of(l.since),
            })
            .collect(),
    };
    console.page(
        StatusCode::OK,
        "Unzustellbare Nachrichten",
        Some(&user),
        Area::DeadLetters,
        "deadletters",
        &page,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_routes_do_not_conflict_and_the_templates_compile() {
        let _ = routes();
        let templates = templates().expect("templates");
        let html = templates
            .render(
                "xml",
                &serde_json::json!({
                    "receipt": "K7QX-2M4P", "back_href": "/console/applications/x",
                    "at": "01.01.2026, 10:00 Uhr", "role": "auditor",
                    "message_type": "fim.S00000001", "message_id": "m",
                    "xml": "<?xml version=\"1.0\"?><a>&lt;script&gt;</a><script>alert(1)</script>"
                }),
            )
            .expect("render");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<a>"), "{html}");
        assert!(
            html.contains("&lt;a&gt;&amp;lt;script&amp;gt;&lt;/a&gt;"),
            "{html}"
        );
    }

    #[test]
    fn receipts_and_days_are_read_as_people_type_them() {
        assert_eq!(normalize_receipt(" k7qx 2m4p "), "K7QX-2M4P");
        assert_eq!(normalize_receipt("K7QX2M4P"), "K7QX-2M4P");
        assert_eq!(normalize_receipt("k7qx-2m4p"), "K7QX-2M4P");
        assert_eq!(parse_day("2025-03-14"), Some(date!(2025 - 03 - 14)));
        assert_eq!(parse_day("14.03.2025"), Some(date!(2025 - 03 - 14)));
        assert_eq!(parse_day("4.3.2025"), Some(date!(2025 - 03 - 04)));
        assert_eq!(parse_day("2025-02-30"), None);
        assert_eq!(parse_day("14.03.25"), None);
        assert_eq!(parse_day("gestern"), None);
    }

    #[test]
    fn certificates_are_highlighted_before_and_after_expiry() {
        assert_eq!(certificate_state(365.0), ("gültig", None));
        assert_eq!(certificate_state(21.0), ("gültig", None));
        assert_eq!(certificate_state(20.0), ("läuft bald ab", Some("warn")));
        assert_eq!(certificate_state(0.0), ("läuft bald ab", Some("warn")));
        assert_eq!(certificate_state(-1.0), ("abgelaufen", Some("expired")));
        assert_eq!(certificate_state(f64::NAN).1, Some("expired"));
    }

    #[test]
    fn hashes_are_shortened_and_states_read_in_german() {
        assert_eq!(short_hash(&"ab".repeat(32)), "abababababab…");
        assert_eq!(short_hash("abc"), "abc");
        assert_eq!(status_text("dead_lettered"), "unzustellbar");
        assert_eq!(status_text("something"), "something");
        for (status, _) in STATUSES {
            assert_ne!(status_label(status), "unbekannt");
        }
    }
}
