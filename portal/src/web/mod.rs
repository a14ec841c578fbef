//! Web plumbing of the portal: templates and the layout, security headers, error pages,
//! assets (KERN UX from npm, the portal's own stylesheet and script), cookies.

pub mod session;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::{Value, json};
use time::macros::{offset, time};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

pub use session::Visitor;

use crate::{Error, Shared};

/// Only the portal's own origin; scripts only from files (progressive enhancement).
pub const CSP: &str = "default-src 'none'; style-src 'self'; font-src 'self'; img-src 'self' data:; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The templates in `portal/templates/`, compiled into the binary.
const SOURCES: &[(&str, &str)] = &[
    ("layout", include_str!("../../templates/layout.hbs")),
    ("field", include_str!("../../templates/field.hbs")),
    (
        "error_summary",
        include_str!("../../templates/error_summary.hbs"),
    ),
    ("error", include_str!("../../templates/error.hbs")),
    ("start", include_str!("../../templates/start.hbs")),
    ("services", include_str!("../../templates/services.hbs")),
    ("service", include_str!("../../templates/service.hbs")),
    (
        "authorities",
        include_str!("../../templates/authorities.hbs"),
    ),
    ("authority", include_str!("../../templates/authority.hbs")),
    ("finder", include_str!("../../templates/finder.hbs")),
    ("form_step", include_str!("../../templates/form_step.hbs")),
    (
        "attachments",
        include_str!("../../templates/attachments.hbs"),
    ),
    ("review", include_str!("../../templates/review.hbs")),
    (
        "application",
        include_str!("../../templates/application.hbs"),
    ),
    (
        "applications",
        include_str!("../../templates/applications.hbs"),
    ),
    ("mailbox", include_str!("../../templates/mailbox.hbs")),
    ("drafts", include_str!("../../templates/drafts.hbs")),
    ("login", include_str!("../../templates/login.hbs")),
    ("register", include_str!("../../templates/register.hbs")),
    ("account", include_str!("../../templates/account.hbs")),
    (
        "master_data",
        include_str!("../../templates/master_data.hbs"),
    ),
    ("identify", include_str!("../../templates/identify.hbs")),
    ("pay", include_str!("../../templates/pay.hbs")),
    (
        "register_sent",
        include_str!("../../templates/register_sent.hbs"),
    ),
    ("confirm", include_str!("../../templates/confirm.hbs")),
    (
        "mail_viewer",
        include_str!("../../templates/mail_viewer.hbs"),
    ),
    (
        "mail_message",
        include_str!("../../templates/mail_message.hbs"),
    ),
];
const PARTIALS: &[&str] = &["field", "error_summary"];

pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    pub fn load() -> Result<Self, Error> {
        let mut registry = Handlebars::new();
        for (name, source) in SOURCES {
            let registered = if PARTIALS.contains(name) {
                registry.register_partial(name, *source)
            } else {
                registry.register_template_string(name, *source)
            };
            registered.map_err(|e| Error::Template(format!("{name}.hbs: {e}")))?;
        }
        Ok(Self { registry })
    }

    /// Renders `template` inside the layout with the page `title`.
    pub fn page(
        &self,
        visitor: &Visitor,
        status: StatusCode,
        template: &str,
        title: &str,
        data: &Value,
    ) -> Response {
        let body = match self.registry.render(template, data) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(template, error = %e, "rendering a page failed");
                return plain_error();
            }
        };
        let layout = json!({
            "title": title,
            "body": body,
            "csrf": visitor.csrf,
            "signed_in": visitor.account.is_some(),
            "error_title": status.is_client_error() || status.is_server_error(),
        });
        match self.registry.render("layout", &layout) {
            Ok(html) => html_response(status, html),
            Err(e) => {
                tracing::error!(error = %e, "rendering the layout failed");
                plain_error()
            }
        }
    }
}

/// Why a page could not be shown; turned into a German error page by `render_failures`.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
    /// Sent as `Retry-After`.
    pub retry_after: Option<Duration>,
    /// A limit of visitors without an account: the page offers to sign in.
    pub without_account: bool,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            without_account: false,
        }
    }

    /// A quota of visitors without an account.
    pub fn without_account(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            without_account: true,
            ..Self::new(status, message)
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Die Seite wurde nicht gefunden. Vielleicht ist der Link veraltet, oder die Seite gehört zu einem anderen Konto.",
        )
    }

    pub fn not_found_with(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 429: a limit or quota that frees up after `wait`.
    pub fn too_many(message: impl Into<String>, wait: Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }

    /// 413: more than a quota of bytes allows.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    pub fn csrf() -> Self {
        Self::forbidden(
            "Das Formular ist abgelaufen oder stammt nicht von dieser Seite. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.",
        )
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        tracing::error!(%error, "request failed");
        let message = match error {
            Error::Router(_) => {
                "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten noch einmal. Ihre Eingaben sind gespeichert."
            }
            Error::Payment(_) => {
                "Der Zahlungsdienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten noch einmal."
            }
            _ => "Ein interner Fehler ist aufgetreten. Bitte versuchen Sie es später noch einmal.",
        };
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Error::Database(error).into()
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(wait) = self.retry_after
            && let Ok(value) = HeaderValue::try_from(wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response.extensions_mut().insert(self);
        response
    }
}

pub type Page = Result<Response, Failure>;

/// Renders a `Failure` as the German error page inside the layout.
pub async fn render_failures(state: &Shared, visitor: &Visitor, response: Response) -> Response {
    // Axum's own refusals (a form that is no form, a body too large) are plain English
    // text: they get the German page too.
    let plain_refusal = response.status().is_client_error()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/plain"));
    let failure = match response.extensions().get::<Failure>().cloned() {
        Some(failure) => failure,
        None if plain_refusal && response.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Failure::too_large(
                "Die gesendeten Daten sind zu umfangreich. Bitte kürzen Sie Ihre Angaben und versuchen Sie es noch einmal.",
            )
        }
        None if plain_refusal => Failure::new(
            response.status(),
            "Die Anfrage konnte nicht verarbeitet werden. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.",
        ),
        None => return response,
    };
    let title = match failure.status {
        _ if failure.without_account => "Grenze für die Nutzung ohne Anmeldung erreicht",
        StatusCode::NOT_FOUND => "Seite nicht gefunden",
        StatusCode::FORBIDDEN => "Nicht möglich",
        StatusCode::TOO_MANY_REQUESTS => "Zu viele Versuche",
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "Ungültige Anfrage",
        StatusCode::PAYLOAD_TOO_LARGE => "Zu groß",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Ungültige Anfrage",
        StatusCode::REQUEST_TIMEOUT => "Zeit überschritten",
        _ => "Vorübergehende Störung",
    };
    let mut page = state.templates.page(
        visitor,
        failure.status,
        "error",
        title,
        &json!({ "title": title, "message": failure.message, "sign_in": failure.without_account && visitor.account.is_none() }),
    );
    if let Some(retry) = response.headers().get(header::RETRY_AFTER) {
        page.headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    page
}

pub async fn not_found() -> Failure {
    Failure::not_found()
}

/// The security headers of every answer; HSTS when the portal is reached over TLS.
pub async fn security_headers(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    add_security_headers(response.headers_mut(), state.secure);
    response
}

/// The security headers; a handler's own policy stays (documents: `sandbox`).
fn add_security_headers(headers: &mut HeaderMap, secure: bool) {
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

/// The answer of the server layer when a request's body did not arrive in time (it
/// replaces whatever the handler made of the broken body).
pub fn body_timeout_page(state: &Shared, limit: Duration) -> Response {
    let nobody = Visitor {
        session_id: None,
        csrf: String::new(),
        account: None,
        client: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    };
    let title = "Zeit überschritten";
    let message = format!(
        "Die Übertragung hat zu lange gedauert: Ein Formular muss innerhalb von {} Sekunden vollständig ankommen. Bitte prüfen Sie Ihre Internetverbindung und senden Sie das Formular noch einmal.",
        limit.as_secs()
    );
    let mut page = state.templates.page(
        &nobody,
        StatusCode::REQUEST_TIMEOUT,
        "error",
        title,
        &json!({ "title": title, "message": message }),
    );
    add_security_headers(page.headers_mut(), state.secure);
    page
}

pub fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        html,
    )
        .into_response()
}

pub fn plain_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "Interner Fehler. Bitte versuchen Sie es später noch einmal.",
    )
        .into_response()
}

pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.trim().to_owned())
        })
        .filter(|value| !value.is_empty())
}

/// Constant-time comparison of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

/// The value of `name` in an urlencoded form's pairs.
pub fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Checks the CSRF token of a form against the session's.
pub fn check_csrf(visitor: &Visitor, pairs: &[(String, String)]) -> Result<(), Failure> {
    match form_value(pairs, "csrf") {
        Some(token) if same_token(token, &visitor.csrf) => Ok(()),
        _ => Err(Failure::csrf()),
    }
}

/// `GET /assets/kern/{path}`: the KERN UX stylesheets and fonts from the npm package.
pub async fn kern_asset(State(state): State<Shared>, Path(path): Path<String>) -> Response {
    // Only plain relative paths below the folder, and only these kinds of files.
    let safe = !path.is_empty()
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != ".." && part != "." && !part.starts_with('.'));
    let media_type = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => return Failure::not_found().into_response(),
    };
    if !safe {
        return Failure::not_found().into_response();
    }
    match tokio::fs::read(state.config.kern_dir.join(&path)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=86400"),
                ),
            ],
            Body::from(bytes),
        )
            .into_response(),
        Err(_) => Failure::not_found().into_response(),
    }
}

pub async fn portal_css() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        include_str!("../../assets/portal.css"),
    )
        .into_response()
}

pub async fn portal_js() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        include_str!("../../assets/portal.js"),
    )
        .into_response()
}

/// German civil time (CET/CEST by the EU rule).
pub fn berlin(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(UtcOffset::UTC);
    let switch = |month: Month| {
        let last = Date::from_calendar_date(utc.year(), month, 31).ok()?;
        let back = last.weekday().number_days_from_sunday();
        let day = last.checked_sub(time::Duration::days(i64::from(back)))?;
        Some(PrimitiveDateTime::new(day, time!(01:00)).assume_utc())
    };
    let summer = match (switch(Month::March), switch(Month::October)) {
        (Some(start), Some(end)) => utc >= start && utc < end,
        _ => false,
    };
    utc.to_offset(if summer { offset!(+2) } else { offset!(+1) })
}

/// `14.03.2025, 11:22 Uhr` from seconds since the epoch.
pub fn german_time(seconds: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(seconds) else {
        return String::new();
    };
    let local = berlin(t);
    format!(
        "{:02}.{:02}.{}, {:02}:{:02} Uhr",
        local.day(),
        u8::from(local.month()),
        local.year(),
        local.hour(),
        local.minute()
    )
}

/// The same from an RFC 3339 time as the router's API gives it.
pub fn german_time_rfc3339(text: &str) -> String {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| german_time(t.unix_timestamp()))
        .unwrap_or_else(|_| text.to_owned())
}

/// `30,70 €`
pub fn euro(amount: &str) -> String {
    format!("{} €", amount.replace('.', ","))
}
