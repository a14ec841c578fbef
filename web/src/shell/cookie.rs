//! Cookies: reading one from a request, and setting them the one way every front end
//! does — HttpOnly always, `Secure` when the front end is reached over https.

use axum::http::{HeaderMap, HeaderValue, header};

/// The `SameSite` attribute: `Strict` for the hub's UIs (nobody links into them),
/// `Lax` for the portal (links from mails and search engines keep the session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
}

/// How a front end sets its cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    /// Where they apply.
    pub path: &'static str,
    pub same_site: SameSite,
    /// Reached over https: `Secure`, and `__Host-` names are possible.
    pub secure: bool,
}

impl Cookies {
    /// A `Set-Cookie` value: `name=value; Path=…; HttpOnly; SameSite=…`, then
    /// `Max-Age` if given (without: the cookie ends with the browser) and `Secure`.
    pub fn set(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let same_site = match self.same_site {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
        };
        let max_age = max_age.map_or_else(String::new, |age| format!("; Max-Age={age}"));
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::try_from(format!(
            "{name}={value}; Path={}; HttpOnly; SameSite={same_site}{max_age}{secure}",
            self.path
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Ends the browser's cookie `name`.
    pub fn clear(&self, name: &str) -> HeaderValue {
        self.set(name, "", Some(0))
    }

    /// `__Host-<name>` when secure (and set for `/`): no other host of the domain can
    /// plant or overwrite it. Plain `name` over http, where browsers refuse the prefix.
    pub fn host_only(&self, name: &str) -> String {
        if self.secure && self.path == "/" {
            format!("__Host-{name}")
        } else {
            name.to_owned()
        }
    }
}

/// Whether a front end reached at `public_url` must set `Secure` cookies: https.
pub fn secure_url(public_url: &str) -> bool {
    public_url.to_ascii_lowercase().starts_with("https://")
}

/// The value of cookie `name` in the request (any of its `Cookie` headers); an empty
/// value counts as none.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; kopplung_inbox_login=x"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("kopplung_inbox=abc; e="),
        );
        assert_eq!(cookie(&headers, "kopplung_inbox").as_deref(), Some("abc"));
        assert_eq!(
            cookie(&headers, "kopplung_inbox_login").as_deref(),
            Some("x")
        );
        assert_eq!(cookie(&headers, "b"), None);
        assert_eq!(cookie(&headers, "e"), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let console = |secure| Cookies {
            path: "/console",
            same_site: SameSite::Strict,
            secure,
        };
        assert_eq!(
            console(true).set("kopplung_console", "abc", Some(28800)),
            "kopplung_console=abc; Path=/console; HttpOnly; SameSite=Strict; Max-Age=28800; Secure"
        );
        assert_eq!(
            console(false).clear("kopplung_console"),
            "kopplung_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
        );
        assert!(secure_url("HTTPS://hub.example"));
        assert!(!secure_url("http://127.0.0.1:8080"));
    }

    #[test]
    fn host_only_names_need_tls_and_the_root_path() {
        let portal = |secure| Cookies {
            path: "/",
            same_site: SameSite::Lax,
            secure,
        };
        assert_eq!(portal(true).host_only("portal_csrf"), "__Host-portal_csrf");
        assert_eq!(portal(false).host_only("portal_csrf"), "portal_csrf");
        assert_eq!(
            portal(true).set("portal_csrf", "t", None),
            "portal_csrf=t; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
