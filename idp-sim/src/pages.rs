//! The provider's German pages: templates in its layout, the error page that is shown
//! instead of redirecting anywhere unregistered, its stylesheet, and the security
//! headers of every answer.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopplung_web::shell::{SecurityHeaders, TemplateSet, Templates, asset};
use serde::Serialize;
use serde_json::json;

use crate::config::IdpConfig;
use crate::{Error, Shared};

const SOURCES: &[(&str, &str)] = kopplung_web::templates!(in "../templates";
    "layout",
    "error_summary",
    "login",
    "error",
    "logout",
    "message",
);

/// The provider's compiled templates and its Content-Security-Policy.
pub struct Pages {
    templates: Templates,
    csp: HeaderValue,
}

impl Pages {
    pub fn new(config: &IdpConfig) -> Result<Self, Error> {
        let templates = Templates::compile(TemplateSet {
            ui: "demo Servicekonto",
            folder: "idp-sim/templates",
            sources: SOURCES,
            partials: &["error_summary"],
            strict: false,
            internal_error: "Beim Servicekonto ist ein Fehler aufgetreten. Bitte versuchen Sie es später noch einmal.",
        })?;
        let csp = HeaderValue::try_from(csp(config)).map_err(|_| Error::Config {
            file: config.source.clone(),
            problems: vec!["[[client]]: a registered URI cannot be put in a header".into()],
        })?;
        Ok(Self { templates, csp })
    }

    /// `template` with `data` in the layout, titled `title`.
    pub fn page(
        &self,
        status: StatusCode,
        template: &str,
        title: &str,
        data: &impl Serialize,
    ) -> Response {
        self.templates.page(
            status,
            template,
            data,
            |body| json!({ "title": title, "body": body }),
        )
    }

    /// The German error page: what went wrong and what to do.
    pub fn error(&self, status: StatusCode, title: &str, message: &str) -> Response {
        self.page(
            status,
            "error",
            title,
            &json!({ "title": title, "message": message }),
        )
    }

    /// A plain page with a heading and a message (logged out, stayed signed in).
    pub fn message(&self, title: &str, message: &str) -> Response {
        self.page(
            StatusCode::OK,
            "message",
            title,
            &json!({ "title": title, "message": message }),
        )
    }
}

/// Only the provider's own files; forms may go to itself and — because a login's answer
/// is a redirect there, which browsers check against `form-action` — to the origins of
/// the registered redirect URIs.
fn csp(config: &IdpConfig) -> String {
    let mut origins: Vec<String> = config
        .clients
        .iter()
        .flat_map(|c| c.redirect_uris.iter().chain(&c.post_logout_redirect_uris))
        .filter_map(|uri| url::Url::parse(uri).ok())
        .map(|url| url.origin().ascii_serialization())
        .collect();
    origins.sort();
    origins.dedup();
    let mut form_action = String::from("'self'");
    for origin in origins {
        form_action.push(' ');
        form_action.push_str(&origin);
    }
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

const HEADERS: SecurityHeaders = SecurityHeaders {
    csp: "default-src 'none'",
    // Codes travel in redirect URLs: no page of the provider names its address anywhere.
    referrer_policy: "no-referrer",
    permissions_policy: Some("camera=(), microphone=(), geolocation=()"),
    hsts: false,
};

/// `routes` with the security headers on every answer.
pub fn secure(routes: Router<Shared>, state: &Shared) -> Router<Shared> {
    let csp = state.pages.csp.clone();
    let headers = SecurityHeaders {
        hsts: state.cookies.secure,
        ..HEADERS
    };
    routes.layer(axum::middleware::map_response(
        move |mut response: Response| {
            let csp = csp.clone();
            async move {
                let map = response.headers_mut();
                if !map.contains_key(header::CONTENT_SECURITY_POLICY) {
                    map.insert(header::CONTENT_SECURITY_POLICY, csp);
                }
                headers.apply(map);
                response
            }
        },
    ))
}

pub async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../assets/servicekonto.css"),
    )
}

/// `GET /`: what this is; signing in starts at a portal.
pub async fn start(axum::extract::State(state): axum::extract::State<Shared>) -> Response {
    state.pages.message(
        "Servicekonto (Demo)",
        "Dies ist ein simuliertes Servicekonto für Vorführungen von kopplung. Sie melden sich hier nicht direkt an: Wählen Sie im Portal „Mit dem Servicekonto anmelden“, dann werden Sie hierher weitergeleitet.",
    )
}

pub async fn not_found(axum::extract::State(state): axum::extract::State<Shared>) -> Response {
    state.pages.error(
        StatusCode::NOT_FOUND,
        "Seite nicht gefunden",
        "Diese Seite gibt es beim Servicekonto nicht. Bitte starten Sie die Anmeldung im Portal neu.",
    )
}

/// A form whose body came too late (the server layer's deadline).
pub fn body_timeout(state: &Shared, limit: Duration) -> Response {
    let mut page = state.pages.error(
        StatusCode::REQUEST_TIMEOUT,
        "Zeit überschritten",
        &format!(
            "Die Übertragung hat zu lange gedauert: Ein Formular muss innerhalb von {} Sekunden vollständig ankommen. Bitte prüfen Sie Ihre Internetverbindung und senden Sie das Formular noch einmal.",
            limit.as_secs()
        ),
    );
    HEADERS.apply(page.headers_mut());
    page
}

/// The provider's pages are never cached (`no-store` by the security headers); its
/// public documents may be, briefly, and read from any origin.
pub fn public_json(body: &serde_json::Value) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Client, Limits};

    #[test]
    fn forms_may_go_to_the_registered_origins_only() {
        let client = |uris: &[&str]| Client {
            id: "c".into(),
            name: "c".into(),
            secret: "s".into(),
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            post_logout_redirect_uris: vec!["http://127.0.0.1:8081/".into()],
        };
        let config = IdpConfig {
            source: "idp.toml".into(),
            issuer: "http://127.0.0.1:8082".into(),
            listen: "127.0.0.1:8082".parse().unwrap(),
            limits: Limits::default(),
            clients: vec![
                client(&["http://127.0.0.1:8081/konto/oidc/rueckkehr"]),
                client(&["https://portal.example/cb?x=1"]),
            ],
        };
        assert!(
            csp(&config)
                .contains("form-action 'self' http://127.0.0.1:8081 https://portal.example;")
        );
    }
}
