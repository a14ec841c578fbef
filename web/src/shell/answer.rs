//! Answers of the server-rendered front ends: HTML, redirects, the last-resort error,
//! assets compiled into the binary, `Retry-After`, and the security headers of every
//! answer with each front end's own Content-Security-Policy.

use std::time::Duration;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Runs axum's extractor `E` inside a front end's own extractor; its refusal becomes
/// the answer, as it would be for a handler taking `E` itself.
pub async fn extract<E, S>(parts: &mut Parts, state: &S) -> Result<E, Response>
where
    E: FromRequestParts<S>,
    S: Send + Sync,
{
    E::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)
}

/// An HTML page.
pub fn html(status: StatusCode, html: String) -> Response {
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

/// A 500 in plain German text: when even the error page cannot be rendered.
pub fn plain_error(text: &'static str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// `303 See Other` to `location` (after a POST, or to the login).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A stylesheet or script compiled into the binary.
pub fn asset(media_type: &'static str, body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
        body,
    )
        .into_response()
}

/// Adds `Retry-After` (whole seconds, at least 1): a refused login, a quota.
pub fn retry_after(response: &mut Response, wait: Duration) {
    if let Ok(value) = HeaderValue::try_from(wait.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// The security headers of a front end's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityHeaders {
    /// The Content-Security-Policy; a handler's own (a document's `sandbox`) stays.
    pub csp: &'static str,
    pub referrer_policy: &'static str,
    pub permissions_policy: Option<&'static str>,
    /// `Strict-Transport-Security` (a front end reached over TLS).
    pub hsts: bool,
}

impl SecurityHeaders {
    /// Sets the headers; `Cache-Control: no-store` unless the handler chose otherwise
    /// (assets).
    pub fn apply(&self, headers: &mut HeaderMap) {
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY)
            && let Ok(csp) = HeaderValue::try_from(self.csp)
        {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        if let Ok(policy) = HeaderValue::try_from(self.referrer_policy) {
            headers.insert(header::REFERRER_POLICY, policy);
        }
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if let Some(policy) = self.permissions_policy
            && let Ok(policy) = HeaderValue::try_from(policy)
        {
            headers.insert("permissions-policy", policy);
        }
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if self.hsts {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
        }
    }

    /// `router` with these headers on every answer.
    pub fn on<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        router.layer(axum::middleware::map_response(
            move |mut response: Response| async move {
                self.apply(response.headers_mut());
                response
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: SecurityHeaders = SecurityHeaders {
        csp: "default-src 'none'",
        referrer_policy: "no-referrer",
        permissions_policy: None,
        hsts: false,
    };

    #[test]
    fn security_headers_keep_a_handlers_own_policy_and_caching() {
        let mut headers = HeaderMap::new();
        HEADERS.apply(&mut headers);
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'"
        );
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(!headers.contains_key("permissions-policy"));
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));

        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
        SecurityHeaders {
            permissions_policy: Some("camera=()"),
            hsts: true,
            ..HEADERS
        }
        .apply(&mut headers);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], "sandbox");
        assert_eq!(headers[header::CACHE_CONTROL], "public");
        assert_eq!(headers["permissions-policy"], "camera=()");
        assert!(headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }

    #[test]
    fn refusals_say_when_to_come_back() {
        let mut response = see_other("/login");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[header::LOCATION], "/login");
        retry_after(&mut response, Duration::from_millis(10));
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        retry_after(&mut response, Duration::from_secs(900));
        assert_eq!(response.headers()[header::RETRY_AFTER], "900");
    }
}
