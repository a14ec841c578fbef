//! What the hub's server-rendered web UIs share — the clerk inbox (`/inbox`) and the
//! admin console (`/console`): security headers, cookies, redirects, HTML answers,
//! constant-time token comparison, the stylesheet, German times, the templates'
//! set-up, sessions and the login limit.
//!
//! Both UIs are German, work without JavaScript and run under a CSP without inline
//! styles or scripts; Handlebars escapes every value.

pub mod session;

use std::path::PathBuf;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde::{Deserialize, Serialize};
use time::macros::{offset, time};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::Error;

pub use session::{SESSION_TTL, Session, Sessions, random_hex};

/// The pages' Content-Security-Policy: only the hub's own stylesheet, no scripts.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet of both UIs (served as `/inbox/inbox.css` and `/console/console.css`).
pub const STYLESHEET: &str = include_str!("style.css");

/// The security headers of every answer of a web UI (a `map_response` middleware).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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

/// When even the error page cannot be rendered.
pub fn plain_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "Interner Fehler. Bitte wenden Sie sich an den Betrieb der Plattform.",
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

/// Whether cookies must be `Secure`: the hub is reached over https.
pub fn secure_cookies(public_url: &str) -> bool {
    public_url.to_ascii_lowercase().starts_with("https://")
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, limited to `path`, and Secure when
/// the hub is reached over https.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::try_from(format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
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

/// The first checks of every login form: the form is complete, and its CSRF token is the
/// one the login page set in the cookie `login_cookie`. Otherwise the status and German
/// message for the login page.
pub fn checked_login_form<F>(
    headers: &HeaderMap,
    login_cookie: &str,
    form: Result<axum::Form<F>, axum::extract::rejection::FormRejection>,
    csrf: impl Fn(&F) -> &str,
) -> Result<F, (StatusCode, &'static str)> {
    let Ok(axum::Form(form)) = form else {
        return Err((
            StatusCode::BAD_REQUEST,
            "Das Formular war unvollständig. Bitte melden Sie sich erneut an.",
        ));
    };
    let form_token = cookie(headers, login_cookie).unwrap_or_default();
    if !same_token(&form_token, csrf(&form)) {
        return Err((
            StatusCode::FORBIDDEN,
            "Das Anmeldeformular ist abgelaufen. Bitte melden Sie sich erneut an.",
        ));
    }
    Ok(form)
}

/// Constant-time comparison of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

/// A form that carries only the CSRF token (logout, actions).
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `GET …/<name>.css`
pub async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        STYLESHEET,
    )
        .into_response()
}

/// Adds `Retry-After` (whole seconds, at least 1) to a refused login.
pub fn retry_after(response: &mut Response, wait: Duration) {
    if let Ok(value) = HeaderValue::try_from(wait.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// Compiles a UI's templates (strict mode: a missing value is an error, not empty
/// text). `folder` names the source folder in errors.
pub fn templates(
    folder: &str,
    sources: &[(&str, &str)],
    partials: &[&str],
) -> Result<Handlebars<'static>, Error> {
    let mut templates = Handlebars::new();
    templates.set_strict_mode(true);
    for (name, source) in sources {
        let registered = if partials.contains(name) {
            templates.register_partial(name, source)
        } else {
            templates.register_template_string(name, source)
        };
        registered.map_err(|e| Error::Config {
            file: PathBuf::from(format!("{folder}/{name}.hbs")),
            message: e.to_string(),
        })?;
    }
    Ok(templates)
}

/// Renders `template` with `data`, then the template `layout` around it: `layout`
/// makes the layout's data from the rendered content.
pub fn render_in_layout<L: Serialize>(
    templates: &Handlebars<'_>,
    template: &str,
    data: &impl Serialize,
    layout: impl FnOnce(String) -> L,
) -> Result<String, handlebars::RenderError> {
    let content = templates.render(template, data)?;
    templates.render("layout", &layout(content))
}

/// RFC 3339, for `<time datetime>`.
pub fn iso(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// German civil time (CET/CEST, the EU rule: summer time from the last Sunday of March
/// to the last Sunday of October, switching at 01:00 UTC).
pub fn berlin(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(UtcOffset::UTC);
    let switch = |month: Month| {
        last_sunday(utc.year(), month)
            .map(|day| PrimitiveDateTime::new(day, time!(01:00)).assume_utc())
    };
    let summer = match (switch(Month::March), switch(Month::October)) {
        (Some(start), Some(end)) => utc >= start && utc < end,
        _ => false,
    };
    utc.to_offset(if summer { offset!(+2) } else { offset!(+1) })
}

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    // March and October have 31 days.
    let last = Date::from_calendar_date(year, month, 31).ok()?;
    let back = last.weekday().number_days_from_sunday();
    last.checked_sub(time::Duration::days(i64::from(back)))
}

/// The start of a German calendar day (midnight German time).
pub fn berlin_midnight(day: Date) -> OffsetDateTime {
    // Summer time switches at 01:00 UTC, after midnight in Germany: the offset at
    // 00:00 UTC of the day is the one at its German midnight.
    let offset = berlin(day.midnight().assume_utc()).offset();
    day.midnight().assume_offset(offset)
}

/// `14.03.2025, 11:22 Uhr` (German time).
pub fn german_time(t: OffsetDateTime) -> String {
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

/// `14.03.2025, 11:22:05 Uhr` (German time, with seconds: for histories).
pub fn german_time_seconds(t: OffsetDateTime) -> String {
    let local = berlin(t);
    format!(
        "{:02}.{:02}.{}, {:02}:{:02}:{:02} Uhr",
        local.day(),
        u8::from(local.month()),
        local.year(),
        local.hour(),
        local.minute(),
        local.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; kopplung_inbox_login=x"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("kopplung_inbox=abc"),
        );
        assert_eq!(cookie(&headers, "kopplung_inbox").as_deref(), Some("abc"));
        assert_eq!(
            cookie(&headers, "kopplung_inbox_login").as_deref(),
            Some("x")
        );
        assert_eq!(cookie(&headers, "b"), None);
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("", ""));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        assert_eq!(
            set_cookie("kopplung_console", "abc", "/console", 28800, true),
            "kopplung_console=abc; Path=/console; HttpOnly; SameSite=Strict; Max-Age=28800; Secure"
        );
        assert_eq!(
            set_cookie("kopplung_console", "", "/console", 0, false),
            "kopplung_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
        );
        assert!(secure_cookies("HTTPS://hub.example"));
        assert!(!secure_cookies("http://127.0.0.1:8080"));
    }

    #[test]
    fn times_are_german_civil_time() {
        assert_eq!(
            german_time(datetime!(2025-01-15 10:22 UTC)),
            "15.01.2025, 11:22 Uhr"
        );
        assert_eq!(
            german_time(datetime!(2025-07-01 10:22 UTC)),
            "01.07.2025, 12:22 Uhr"
        );
        // 2025: summer time from 30 March 01:00 UTC to 26 October 01:00 UTC.
        assert_eq!(
            german_time(datetime!(2025-03-30 00:59 UTC)),
            "30.03.2025, 01:59 Uhr"
        );
        assert_eq!(
            german_time(datetime!(2025-03-30 01:00 UTC)),
            "30.03.2025, 03:00 Uhr"
        );
        assert_eq!(
            german_time(datetime!(2025-10-26 00:59 UTC)),
            "26.10.2025, 02:59 Uhr"
        );
        assert_eq!(
            german_time(datetime!(2025-10-26 01:00 UTC)),
            "26.10.2025, 02:00 Uhr"
        );
        assert_eq!(
            german_time_seconds(datetime!(2025-07-01 10:22:05.9 UTC)),
            "01.07.2025, 12:22:05 Uhr"
        );
    }

    #[test]
    fn german_days_start_at_german_midnight() {
        assert_eq!(
            berlin_midnight(date!(2025 - 01 - 15)),
            datetime!(2025-01-14 23:00 UTC)
        );
        assert_eq!(
            berlin_midnight(date!(2025 - 07 - 01)),
            datetime!(2025-06-30 22:00 UTC)
        );
        // The days of the switches still begin in the old offset.
        assert_eq!(
            berlin_midnight(date!(2025 - 03 - 30)),
            datetime!(2025-03-29 23:00 UTC)
        );
        assert_eq!(
            berlin_midnight(date!(2025 - 10 - 26)),
            datetime!(2025-10-25 22:00 UTC)
        );
    }
}
