//! A browser without JavaScript for the server-rendered pages (admin console, clerk
//! inbox): keeps the cookies it is given, follows no redirects, fills forms with their
//! CSRF token; and the checks every such page must pass.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};

use crate::TestHub;

/// One answer, read whole.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Page {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, empty if there is none.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii cookie").to_owned())
            .collect()
    }

    /// The value of the first hidden `csrf` field of the page.
    pub fn csrf(&self) -> String {
        let text = self.text();
        csrf_of(&text).unwrap_or_else(|| panic!("no csrf field in:\n{text}"))
    }
}

/// The value of the first `name="csrf"` field of an HTML text.
pub fn csrf_of(text: &str) -> Option<String> {
    let at = text.find("name=\"csrf\" value=\"")?;
    let rest = &text[at + "name=\"csrf\" value=\"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// An HTTP client that follows no redirects: the tests look at each answer.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `Cookie` header of a cookie jar.
pub fn cookie_header(cookies: &BTreeMap<String, String>) -> String {
    cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Keeps the cookies an answer sets in the jar, and forgets the ones it expires.
pub fn keep_cookies(cookies: &mut BTreeMap<String, String>, headers: &HeaderMap) {
    for value in headers.get_all(SET_COOKIE) {
        let value = value.to_str().expect("ascii cookie");
        let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
        let (name, cookie) = pair.split_once('=').expect("name=value");
        if attributes.contains("Max-Age=0") || cookie.is_empty() {
            cookies.remove(name);
        } else {
            cookies.insert(name.to_owned(), cookie.to_owned());
        }
    }
}

/// A browser without JavaScript: keeps the cookies the hub sets, follows no redirects.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(hub: &TestHub) -> Self {
        Self::at(&hub.url(""))
    }

    /// A browser for the site at `base` (`http://127.0.0.1:<port>`).
    pub fn at(base: &str) -> Self {
        Self {
            client: no_redirects(),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    /// The `Cookie` header this browser sends.
    pub fn cookie_header(&self) -> String {
        cookie_header(&self.cookies)
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("Cookie", self.cookie_header())
        };
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        keep_cookies(&mut self.cookies, &headers);
        let body = response.bytes().await.expect("body").to_vec();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Posts a `multipart/form-data` form (as a browser sends a form with a file input):
    /// `fields`, and `file` as the part `name` with its filename, type and bytes.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &str, Vec<u8>)>,
    ) -> Page {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        if let Some((name, filename, media_type, bytes)) = file {
            let part = reqwest::multipart::Part::bytes(bytes)
                .file_name(filename.to_owned())
                .mime_str(media_type)
                .expect("media type");
            form = form.part(name.to_owned(), part);
        }
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .multipart(form);
        self.send(request).await
    }

    /// Opens the login form at `path` and submits `fields` with the form's CSRF token.
    pub async fn log_in(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let form = self.get(path).await;
        assert_eq!(form.status, 200, "{}", form.text());
        assert!(form.text().contains("type=\"password\""), "{}", form.text());
        let csrf = form.csrf();
        let mut fields = fields.to_vec();
        fields.push(("csrf", &csrf));
        self.post(path, &fields).await
    }

    /// Signs in to the clerk inbox as `clerk` with `password`.
    pub async fn inbox_login(&mut self, clerk: &str, password: &str) -> Page {
        self.log_in("/inbox/login", &[("clerk", clerk), ("password", password)])
            .await
    }
}

/// The CSP of the hub's web pages (console and inbox).
pub const HUB_PAGES_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The security headers of every page of the hub's web UIs.
pub fn assert_security_headers(page: &Page) {
    assert_eq!(page.header("content-security-policy"), HUB_PAGES_CSP);
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("cache-control"), "no-store");
}

/// A page served (200) with the security headers: its text.
pub fn served_text(page: &Page) -> String {
    assert_eq!(page.status, 200, "{}", page.text());
    assert_security_headers(page);
    page.text()
}

/// An accessible German page: language, one main heading, no inline style or script,
/// and the security headers.
pub fn assert_page(page: &Page) {
    let text = page.text();
    assert!(
        page.header("content-type").starts_with("text/html"),
        "{}",
        page.header("content-type")
    );
    assert!(text.contains("<html lang=\"de\">"), "{text}");
    assert_eq!(text.matches("<h1>").count(), 1, "{text}");
    for inline in ["<script", "style=", "<style", "javascript:"] {
        assert!(!text.contains(inline), "{inline} in {text}");
    }
    // No event handler attributes (` onclick=` and the like).
    for (at, _) in text.match_indices(" on") {
        let name: String = text[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        assert!(
            !text[at + 1 + name.len()..].starts_with('='),
            "{name}= in {text}"
        );
    }
    assert_security_headers(page);
}
