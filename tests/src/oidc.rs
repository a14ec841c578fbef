//! panva's `oidc-provider` from npm (OpenID Certified, not ours) as the identity
//! provider of the portal's tests: a real process (`node tests/oidc/provider.mjs`), and
//! the citizen's way through its interaction page — its own cookies, redirects by hand —
//! where the test picks the person and the level.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::LOCATION;

use crate::Process;
use crate::browser::{cookie_header, keep_cookies, no_redirects};

/// The eIDAS levels as acr values, and the amr the provider gives with each.
pub const LOW: &str = "http://eidas.europa.eu/LoA/low";
pub const SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
pub const HIGH: &str = "http://eidas.europa.eu/LoA/high";

/// The test identities (pseudonymous subjects) of `tests/oidc/provider.mjs`.
pub const ERIKA: &str = "pseudonym-erika-7f3a";
pub const MAX: &str = "pseudonym-max-2b91";

/// The client the portal is at the provider.
pub const CLIENT_ID: &str = "portal";

/// `tests/oidc`, with `node_modules` installed if missing (scripts/test installs it).
fn ensure_packages() -> PathBuf {
    crate::node_packages(
        "oidc",
        &["oidc-provider"],
        "the OpenID Connect provider of the tests",
    )
}

/// A running identity provider of a test (oidc-provider or the demo Servicekonto): the
/// portal is its client [`CLIENT_ID`].
pub struct Provider {
    pub issuer: String,
    /// The client secret, in a file as the portal reads it.
    pub secret_file: PathBuf,
    pub log: PathBuf,
    pub(crate) _process: Process,
}

impl Provider {
    /// The portal's `[[identity_provider]]` for this provider (id `test`), with the
    /// eIDAS levels and the RFC 8176 means, and `extra` keys (e.g. `max_age_secs = 5`).
    pub fn portal_config(&self, extra: &str) -> String {
        portal_section(&self.issuer, &self.secret_file, extra)
    }

    /// The hub's `[[identity_provider]]` for this provider.
    pub fn hub_config(&self) -> String {
        hub_section(&self.issuer)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A running oidc-provider.
pub struct OidcProvider {
    pub port: u16,
    provider: Provider,
}

impl std::ops::Deref for OidcProvider {
    type Target = Provider;
    fn deref(&self) -> &Provider {
        &self.provider
    }
}

impl OidcProvider {
    /// Starts the provider for a portal at `portal_url`, its files below `dir`; an ID
    /// token lives `id_token_ttl_secs` (the provider's default: an hour).
    pub fn start(portal_url: &str, dir: &Path, id_token_ttl_secs: Option<u64>) -> Self {
        let folder = ensure_packages();
        let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let secret_file = dir.join("oidc-client-secret");
        std::fs::write(&secret_file, &secret).expect("client secret");
        let config = dir.join("oidc-provider.json");
        let mut settings = serde_json::json!({
            "port": 0,
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "redirect_uris": [format!("{portal_url}/konto/oidc/rueckkehr")],
            "post_logout_redirect_uris": [format!("{portal_url}/")],
        });
        if let Some(ttl) = id_token_ttl_secs {
            settings["id_token_ttl_secs"] = ttl.into();
        }
        std::fs::write(&config, settings.to_string()).expect("provider config");
        let log = dir.join("oidc-provider.log");
        let mut child = Command::new("node")
            .arg(folder.join("provider.mjs"))
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("provider log"))
            .spawn()
            .expect("node (Node.js) runs the OpenID Connect provider of the tests");
        let stdout = child.stdout.take().expect("provider stdout");
        let process = Process(child);
        // Waits for `READY <issuer>` (the provider picks its own port: one picked here may
        // be taken before node binds it); a provider that does not start or exits fails
        // the test at once, with its log.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let until = Instant::now() + Duration::from_secs(60);
        let issuer = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.starts_with("READY ") => break line[6..].to_owned(),
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "oidc-provider exited before it listened:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => assert!(
                    Instant::now() < until,
                    "oidc-provider did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            }
        };
        let port = url::Url::parse(&issuer)
            .ok()
            .and_then(|u| u.port())
            .expect("the issuer names its port");
        Self {
            port,
            provider: Provider {
                issuer,
                secret_file,
                log,
                _process: process,
            },
        }
    }
}

/// The eIDAS levels (acr) and RFC 8176 means (amr) as both sides map them.
fn tables() -> String {
    format!(
        r#"
[identity_provider.levels]
"{LOW}" = "basis"
"{SUBSTANTIAL}" = "substanziell"
"{HIGH}" = "hoch"

[identity_provider.means]
pwd = "benutzername-passwort"
swk = "elster-zertifikat"
hwk = "online-ausweis"
"#
    )
}

/// The portal's `[[identity_provider]]` `test` ("Test-Servicekonto") at `issuer`, as the
/// client `portal` with the secret in `secret_file`, and `extra` keys.
pub fn portal_section(issuer: &str, secret_file: &Path, extra: &str) -> String {
    format!(
        r#"
[[identity_provider]]
id = "test"
name = "Test-Servicekonto"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "{secret}"
scopes = ["openid", "profile", "address"]
{extra}
{tables}"#,
        secret = secret_file.display(),
        tables = tables(),
    )
}

/// The hub's `[[identity_provider]]` for `issuer`: it trusts the ID tokens the portal
/// (their audience) forwards, with the same tables as the portal.
pub fn hub_section(issuer: &str) -> String {
    format!(
        r#"
[[identity_provider]]
id = "test-identity-provider"
issuer = "{issuer}"
audiences = ["{CLIENT_ID}"]
max_age_secs = 3600
{tables}"#,
        tables = tables(),
    )
}

/// One answer of the provider, read whole.
pub struct IdpPage {
    pub status: u16,
    pub location: String,
    pub body: String,
}

/// The browser's side at the provider: its cookies (a real browser keeps them apart by
/// name; the portal's never collide with the provider's), redirects followed by hand
/// until they lead back to the portal.
pub struct IdpBrowser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    issuer: String,
}

/// What the citizen does on the interaction page.
pub enum Choice<'a> {
    /// Signs in as `person` at `acr`.
    SignIn { person: &'a str, acr: &'a str },
    /// Cancels (the provider answers `access_denied`).
    Cancel,
}

impl<'a> Choice<'a> {
    /// Signs in as `person` at `acr`.
    pub fn sign_in(person: &'a str, acr: &'a str) -> Self {
        Choice::SignIn { person, acr }
    }
}

impl IdpBrowser {
    pub fn new(provider: &OidcProvider) -> Self {
        Self {
            http: no_redirects(),
            cookies: BTreeMap::new(),
            issuer: provider.issuer.clone(),
        }
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http") {
            location.to_owned()
        } else {
            format!("{}{location}", self.issuer)
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> IdpPage {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("cookie", cookie_header(&self.cookies))
        };
        let response = request.send().await.expect("request to the provider");
        keep_cookies(&mut self.cookies, response.headers());
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.text().await.expect("provider body");
        IdpPage {
            status,
            location,
            body,
        }
    }

    pub async fn get(&mut self, url: &str) -> IdpPage {
        let request = self.http.get(self.absolute(url));
        self.send(request).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> IdpPage {
        let request = self.http.post(self.absolute(url)).form(form);
        self.send(request).await
    }

    /// From the authorization URL the portal sent the browser to, through the
    /// interaction page (if the provider shows one), to the URL it sends the browser
    /// back to; the interaction page's text, if there was one.
    pub async fn authorize(&mut self, url: &str, choice: Choice<'_>) -> (String, Option<String>) {
        let mut page = self.get(url).await;
        let mut shown = None;
        for _ in 0..10 {
            if (300..400).contains(&page.status) {
                if !self.absolute(&page.location).starts_with(&self.issuer) {
                    return (page.location, shown);
                }
                let next = page.location.clone();
                page = self.get(&next).await;
                continue;
            }
            assert_eq!(page.status, 200, "the provider answered:\n{}", page.body);
            let uid = after(
                &page.body,
                "action=\"/interaction/",
                '/',
                "interaction form",
            );
            shown = Some(page.body.clone());
            page = match choice {
                Choice::SignIn { person, acr } => {
                    self.post(
                        &format!("/interaction/{uid}/login"),
                        &[("account", person), ("acr", acr)],
                    )
                    .await
                }
                Choice::Cancel => self.post(&format!("/interaction/{uid}/abort"), &[]).await,
            };
        }
        panic!("too many redirects at the provider");
    }

    /// The provider's logout page at `url` (from the portal): confirms it and returns
    /// where the provider sends the browser back to.
    pub async fn logout(&mut self, url: &str) -> String {
        let page = self.get(url).await;
        assert_eq!(page.status, 200, "logout page:\n{}", page.body);
        let action = after(&page.body, "action=\"", '"', "logout form");
        let xsrf = after(&page.body, "name=\"xsrf\" value=\"", '"', "xsrf field");
        let mut answer = self
            .post(&action, &[("xsrf", &xsrf), ("logout", "yes")])
            .await;
        for _ in 0..5 {
            assert!(
                (300..400).contains(&answer.status),
                "logout answered {}:\n{}",
                answer.status,
                answer.body
            );
            if !self.absolute(&answer.location).starts_with(&self.issuer) {
                return answer.location;
            }
            let next = answer.location.clone();
            answer = self.get(&next).await;
        }
        panic!("too many redirects at logout");
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// What stands in a page after the first `marker`, up to `end` (the page must have it:
/// `what` names it in the failure).
fn after(body: &str, marker: &str, end: char, what: &str) -> String {
    body.split(marker)
        .nth(1)
        .and_then(|rest| rest.split(end).next())
        .unwrap_or_else(|| panic!("no {what}:\n{body}"))
        .to_owned()
}
