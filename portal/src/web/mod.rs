//! What of the web is the portal's own: its layout's data, its security headers, its
//! failures and their German error pages, its assets (`assets`: KERN UX from npm, the
//! portal's own stylesheet, script and icon, under hashed names), and its sessions
//! (`session`). Cookies, tokens, CSRF checks, templates, German time and the HTML
//! answers are the web shell's (`kopplung_web::shell`).

pub mod assets;
mod favicon;
pub mod session;

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use kopplung_web::shell::{
    SecurityHeaders, TemplateSet, csrf_matches, extract, retry_after, see_other,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub use session::Visitor;

use crate::{Error, Shared};

/// Only the portal's own origin; scripts only from files (progressive enhancement).
pub const CSP: &str = "default-src 'none'; style-src 'self'; font-src 'self'; img-src 'self' data:; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// [`CSP`], where forms may also lead to the identity providers' origins: browsers hold
/// the redirects after a form (sign-in, logout) to `form-action` too. Made once at start.
pub fn csp(providers: &[crate::config::identity::IdentityProvider]) -> &'static str {
    let mut origins: Vec<String> = providers
        .iter()
        .filter_map(|p| url::Url::parse(&p.issuer).ok())
        .map(|url| url.origin().ascii_serialization())
        .collect();
    origins.sort();
    origins.dedup();
    if origins.is_empty() {
        return CSP;
    }
    let policy = CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", origins.join(" ")),
    );
    Box::leak(policy.into_boxed_str())
}

/// The security headers of every answer; HSTS when the portal is reached over TLS.
fn security_headers(secure: bool, csp: &'static str) -> SecurityHeaders {
    SecurityHeaders {
        csp,
        referrer_policy: "same-origin",
        // The portal's own pages may ask for the position ("Meinen Standort verwenden").
        permissions_policy: Some("camera=(), microphone=(), geolocation=(self)"),
        hsts: secure,
    }
}

/// `app` with the portal's security headers on every answer.
pub fn secure(app: Router<Shared>, secure: bool, csp: &'static str) -> Router<Shared> {
    security_headers(secure, csp).on(app)
}

/// The templates in `portal/templates/`, compiled into the binary.
const SOURCES: &[(&str, &str)] = kopplung_web::templates!(in "../../templates";
    "layout",
    "field",
    "field_error",
    "error_summary",
    "appeal",
    "error",
    "start",
    "services",
    "service",
    "authorities",
    "authority",
    "finder",
    "form_step",
    "attachments",
    "review",
    "application",
    "applications",
    "mailbox",
    "drafts",
    "login",
    "register",
    "account",
    "master_data",
    "identify",
    "providers",
    "step_up",
    "sign_in_failed",
    "pay",
    "register_sent",
    "confirm",
    "mail_viewer",
    "mail_message",
    "notifications",
    "notify_confirm",
    "notify_signup",
    "notify_form",
    "notice",
    "discard",
    "password_forgot",
    "password_reset",
    "account_delete",
    "impressum",
    "datenschutz",
    "barrierefreiheit",
    "kontakt",
    "legal_missing",
    "status",
    "follow_up",
);
const PARTIALS: &[&str] = &[
    "field",
    "field_error",
    "legal_missing",
    "error_summary",
    "providers",
    "notify_form",
    "appeal",
];

/// The portal's templates; pages in its layout.
pub struct Templates(kopplung_web::shell::Templates, assets::Links);

impl Templates {
    /// The templates; the layout links `assets`.
    pub fn load(assets: assets::Links) -> Result<Self, Error> {
        kopplung_web::shell::Templates::compile(TemplateSet {
            ui: "portal",
            folder: "portal/templates",
            sources: SOURCES,
            partials: PARTIALS,
            // Optional values are left out of the pages' data.
            strict: false,
            internal_error: "Interner Fehler. Bitte versuchen Sie es später noch einmal.",
        })
        .map(|templates| Self(templates, assets))
        .map_err(|e| Error::Template(e.to_string()))
    }

    /// `page` with `200 OK`, as a handler's answer.
    pub fn ok(&self, visitor: &Visitor, template: &str, title: &str, data: &Value) -> Page {
        Ok(self.page(visitor, StatusCode::OK, template, title, data))
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
        self.0.page(status, template, data, |body| {
            json!({
                "title": title,
                "body": body,
                "csrf": visitor.csrf,
                "signed_in": visitor.account.is_some(),
                "error_title": status.is_client_error() || status.is_server_error(),
                "assets": &self.1,
            })
        })
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
    /// The page is not here for this visitor now but at this location (a submitted
    /// draft's application, the sign-in page): a `303 See Other`, no error page.
    pub elsewhere: Option<String>,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            without_account: false,
            elsewhere: None,
        }
    }

    /// Not an error: the visitor is sent on to `location`.
    pub fn see_other(location: impl Into<String>) -> Self {
        Self {
            elsewhere: Some(location.into()),
            ..Self::new(StatusCode::SEE_OTHER, "")
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
                "Die Verbindung zu den Behörden ist gerade gestört. Bitte versuchen Sie es in einigen Minuten noch einmal. Was Sie zuvor gespeichert haben, bleibt erhalten."
            }
            Error::Payment(_) => {
                "Der Zahlungsdienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten noch einmal."
            }
            Error::IdentityProviderUnavailable(_) => {
                "Die Anmeldung beim Identitätsanbieter ist gerade nicht möglich, weil er nicht erreichbar ist. Bitte versuchen Sie es in einigen Minuten noch einmal. Ihre Eingaben im Portal sind gespeichert."
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
        if let Some(location) = &self.elsewhere {
            return see_other(location);
        }
        let mut response = self.status.into_response();
        if let Some(wait) = self.retry_after {
            retry_after(&mut response, wait);
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
        StatusCode::FORBIDDEN => "Zugriff nicht möglich",
        StatusCode::TOO_MANY_REQUESTS => "Zu viele Versuche",
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "Anfrage nicht verarbeitet",
        StatusCode::PAYLOAD_TOO_LARGE => "Datei oder Angaben zu groß",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Format nicht unterstützt",
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
    security_headers(state.secure, state.csp).apply(page.headers_mut());
    page
}

/// Checks the CSRF token of a form against the session's.
/// The portal's state and the visitor a request comes from: what page handlers start with.
pub struct Visit {
    pub state: Shared,
    pub visitor: Visitor,
}

impl FromRequestParts<Shared> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let Extension(visitor) = extract::<Extension<Visitor>, _>(parts, state).await?;
        Ok(Self {
            state: state.clone(),
            visitor,
        })
    }
}

/// The fields of a form the visitor POSTed, taken only when the form carries the CSRF
/// token of the visitor's session (`Failure::csrf` otherwise, before the handler runs).
/// `Posted(_)` takes a form that carries nothing but the token (logout, delete).
pub struct Posted(pub Vec<(String, String)>);

impl FromRequest<Shared> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, Response> {
        let visitor = request.extensions().get::<Visitor>().cloned();
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match visitor {
            Some(visitor) => check_csrf(&visitor, &pairs).map_err(IntoResponse::into_response)?,
            // Outside the session layer there is no token to match.
            None => return Err(Failure::csrf().into_response()),
        }
        Ok(Self(pairs))
    }
}

pub fn check_csrf(visitor: &Visitor, pairs: &[(String, String)]) -> Result<(), Failure> {
    if csrf_matches(pairs, &visitor.csrf) {
        Ok(())
    } else {
        Err(Failure::csrf())
    }
}

/// The query of the sign-in and identification pages: where to go afterwards
/// (`weiter`, see [`local_next`]), and the level the page the visitor came from needs
/// (`niveau`: `basis`, …).
#[derive(Deserialize)]
pub struct NextQuery {
    pub weiter: Option<String>,
    pub niveau: Option<String>,
}

/// Where to go after signing in or identifying: `input` if it is a path of the portal
/// (WHATWG parsing, as the browser will follow it), otherwise `/konto`.
pub fn local_next(state: &Shared, input: Option<&str>) -> String {
    input
        .and_then(|input| kopplung_web::redirect::local_target(&state.base_url, input))
        .unwrap_or_else(|| "/konto".to_owned())
}

/// The ids of the fields that `errors` (`{"id", "message"}`) name, each `true`: the
/// template marks them invalid (`{{#if invalid.email}} aria-invalid="true"{{/if}}`).
pub fn invalid_fields(errors: &[Value]) -> Value {
    Value::Object(
        errors
            .iter()
            .filter_map(|error| error["id"].as_str())
            .map(|id| (id.to_owned(), Value::Bool(true)))
            .collect(),
    )
}

/// `30,70 €`
pub fn euro(amount: &str) -> String {
    format!("{} €", amount.replace('.', ","))
}
