//! The identity provider's configuration file (`config/idp.toml`): its issuer, where it
//! listens, the server layer's `[limits]`, and its clients (relying parties) with their
//! secrets and registered URIs. Unknown keys are refused; every problem of the file is
//! reported at once, each naming the file and the key.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kopplung_web::{ClientAddresses, ProxyConfig, ServerLimits};
use serde::Deserialize;

use crate::Error;

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpFile {
    /// The issuer (`iss`) and base URL of every endpoint, e.g. `http://127.0.0.1:8082`.
    pub issuer: String,
    pub listen: SocketAddr,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientFile>,
}

/// `[limits]`: the server layer's limits (the keys of `kopplung_web::ServerLimits`),
/// clients behind proxies, and the size of a form post.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    #[serde(flatten)]
    pub server: ServerLimits,
    #[serde(flatten)]
    pub proxies: ProxyConfig,
    /// The body of a form post (login, token request, logout).
    pub max_form_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            server: ServerLimits::default(),
            proxies: ProxyConfig::default(),
            max_form_bytes: 16 * 1024,
        }
    }
}

impl Limits {
    pub fn clients(&self) -> Result<ClientAddresses, kopplung_web::Error> {
        self.proxies.build()
    }
}

/// One `[[client]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub client_id: String,
    /// Shown on the login page ("… möchte, dass Sie sich anmelden"); the id if none.
    #[serde(default)]
    pub name: Option<String>,
    /// The client secret, relative to the data directory (`--data-dir`).
    pub secret_file: PathBuf,
    /// Where the authorization response may go: compared as whole strings.
    pub redirect_uris: Vec<String>,
    /// Where a logout may return to: compared as whole strings.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
}

/// A checked configuration, with the clients' secrets read.
#[derive(Debug, Clone)]
pub struct IdpConfig {
    pub source: PathBuf,
    /// Without a trailing slash: the endpoints are appended to it.
    pub issuer: String,
    pub listen: SocketAddr,
    pub limits: Limits,
    pub clients: Vec<Client>,
}

/// A relying party.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
}

/// Fewer characters than this make no secret.
const MIN_SECRET_CHARS: usize = 16;

impl IdpConfig {
    /// Reads `path`, checks it and reads the clients' secrets from `data_dir`.
    pub fn load(path: &Path, data_dir: &Path) -> Result<Self, Error> {
        let fail = |problems: Vec<String>| Error::Config {
            file: path.to_owned(),
            problems,
        };
        let file = IdpFile::read(path)?;
        file.validate(data_dir).map_err(fail)?;
        let clients = file
            .clients
            .iter()
            .map(|client| {
                let path = data_dir.join(&client.secret_file);
                read_secret(&path).map(|secret| Client {
                    id: client.client_id.clone(),
                    name: client
                        .name
                        .clone()
                        .unwrap_or_else(|| client.client_id.clone()),
                    secret,
                    redirect_uris: client.redirect_uris.clone(),
                    post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(vec![e]))?;
        Ok(Self {
            source: path.to_owned(),
            issuer: file.issuer.trim_end_matches('/').to_owned(),
            listen: file.listen,
            limits: file.limits,
            clients,
        })
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|client| client.id == id)
    }
}

impl IdpFile {
    /// The file as written, unchecked (the demo looks for secrets to create in it).
    pub fn read(path: &Path) -> Result<Self, Error> {
        let fail = |problem: String| Error::Config {
            file: path.to_owned(),
            problems: vec![problem],
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
        toml::from_str(&text).map_err(|e| fail(e.to_string()))
    }

    /// Every problem at once, each naming its key; secrets are looked for in `data_dir`.
    pub fn validate(&self, data_dir: &Path) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        match url::Url::parse(&self.issuer) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none() => {}
            _ => problems.push(format!(
                "issuer: `{}` must be an absolute http(s) URL without query or fragment, e.g. \"http://127.0.0.1:8082\"",
                self.issuer
            )),
        }
        if let Err(errors) = self.limits.server.validate() {
            problems.extend(errors.iter().map(|e| format!("{e}")));
        }
        if let Err(e) = self.limits.clients() {
            problems.push(e.to_string());
        }
        if self.limits.max_form_bytes < 1024 {
            problems.push("[limits] max_form_bytes: must be at least 1024".into());
        }
        if self.clients.is_empty() {
            problems.push("[[client]]: at least one client is needed".into());
        }
        let mut seen = HashSet::new();
        for client in &self.clients {
            let id = &client.client_id;
            let at = |key: &str| format!("[[client]] {id}: {key}");
            let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            if id.is_empty() || !id.chars().all(plain) {
                problems.push(format!(
                    "[[client]] `{id}`: client_id must be letters, digits, `-`, `_` or `.`"
                ));
            } else if !seen.insert(id.as_str()) {
                problems.push(format!("[[client]] {id}: client_id is given twice"));
            }
            let secret = data_dir.join(&client.secret_file);
            if let Err(e) = read_secret(&secret) {
                problems.push(format!("{}: {e}", at("secret_file")));
            }
            if client.redirect_uris.is_empty() {
                problems.push(format!(
                    "{}: at least one is needed, e.g. [\"http://127.0.0.1:8081/konto/oidc/rueckkehr\"]",
                    at("redirect_uris")
                ));
            }
            for (key, uris) in [
                ("redirect_uris", &client.redirect_uris),
                (
                    "post_logout_redirect_uris",
                    &client.post_logout_redirect_uris,
                ),
            ] {
                for uri in uris {
                    if let Err(why) = check_uri(uri) {
                        problems.push(format!("{}: `{uri}` {why}", at(key)));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// A registered URI: absolute http(s), no fragment (OAuth 2.0, 3.1.2).
fn check_uri(uri: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(uri).map_err(|_| "is no absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http(s) URL");
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment (#…)");
    }
    Ok(())
}

fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{} cannot be read ({e}); write a random secret of at least {MIN_SECRET_CHARS} characters into it (`kopplung demo` does)",
            path.display()
        )
    })?;
    let secret = text.trim();
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(format!(
            "{}: the secret must have at least {MIN_SECRET_CHARS} characters",
            path.display()
        ));
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
issuer = "http://127.0.0.1:8082"
listen = "127.0.0.1:8082"

[[client]]
client_id = "portal"
secret_file = "portal-secret"
redirect_uris = ["http://127.0.0.1:8081/konto/oidc/rueckkehr"]
post_logout_redirect_uris = ["http://127.0.0.1:8081/"]
"#;

    fn write(dir: &Path, toml: &str) -> PathBuf {
        let path = dir.join("idp.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    #[test]
    fn a_good_file_loads_with_its_secret() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("portal-secret"), "0123456789abcdef0123\n").unwrap();
        let config = IdpConfig::load(&write(dir.path(), GOOD), dir.path()).unwrap();
        assert_eq!(config.issuer, "http://127.0.0.1:8082");
        let portal = config.client("portal").unwrap();
        assert_eq!(portal.secret, "0123456789abcdef0123");
        assert_eq!(portal.name, "portal");
        assert!(config.client("other").is_none());
    }

    #[test]
    fn every_problem_is_named_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("short"), "abc").unwrap();
        let toml = r#"
issuer = "ftp://idp.example/?x=1"
listen = "127.0.0.1:8082"
[limits]
header_timeout_secs = 0
max_form_bytes = 10
trusted_proxies = ["not-a-network"]

[[client]]
client_id = "portal"
secret_file = "missing"
redirect_uris = ["/relative", "http://rp.example/cb#frag"]
post_logout_redirect_uris = ["mailto:x@y"]

[[client]]
client_id = "portal"
secret_file = "short"
redirect_uris = []

[[client]]
client_id = "bad id"
secret_file = "short"
redirect_uris = ["https://rp.example/cb"]
"#;
        let Err(Error::Config { file, problems }) =
            IdpConfig::load(&write(dir.path(), toml), dir.path())
        else {
            panic!("a bad configuration must be refused");
        };
        assert!(file.ends_with("idp.toml"));
        let all = problems.join("\n");
        for expected in [
            "issuer: `ftp://idp.example/?x=1`",
            "header_timeout_secs",
            "[limits] max_form_bytes",
            "trusted_proxies",
            "[[client]] portal: secret_file:",
            "missing cannot be read",
            "[[client]] portal: redirect_uris: `/relative` is no absolute URL",
            "`http://rp.example/cb#frag` must not have a fragment",
            "post_logout_redirect_uris: `mailto:x@y` must be an http(s) URL",
            "[[client]] portal: client_id is given twice",
            "at least 16 characters",
            "[[client]] portal: redirect_uris: at least one is needed",
            "[[client]] `bad id`: client_id must be",
        ] {
            assert!(all.contains(expected), "{expected} missing in:\n{all}");
        }
        assert_eq!(problems.len(), 13, "{all}");
    }

    #[test]
    fn the_proxy_settings_stand_in_limits_beside_the_server_limits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("portal-secret"), "0123456789abcdef0123\n").unwrap();
        let file = format!(
            "{GOOD}\n[limits]\nheader_timeout_secs = 7\ntrusted_proxies = [\"10.0.0.0/8\"]\nclient_address_header = \"X-Real-IP\"\nmax_form_bytes = 2048\n"
        );
        let config = IdpConfig::load(&write(dir.path(), &file), dir.path()).unwrap();
        let limits = &config.limits;
        assert_eq!(limits.server.header_timeout_secs, 7);
        assert_eq!(limits.proxies.trusted_proxies, ["10.0.0.0/8"]);
        assert_eq!(
            limits.proxies.client_address_header.as_deref(),
            Some("X-Real-IP")
        );
        assert_eq!(limits.max_form_bytes, 2048);
        assert!(limits.clients().is_ok());
    }

    #[test]
    fn unknown_keys_and_syntax_errors_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let unknown = format!("{GOOD}\n[limits]\nmax_body = 3\n");
        let Err(Error::Config { problems, .. }) =
            IdpConfig::load(&write(dir.path(), &unknown), dir.path())
        else {
            panic!("unknown key accepted");
        };
        assert!(problems[0].contains("max_body"), "{problems:?}");
        let Err(Error::Config { problems, .. }) =
            IdpConfig::load(&dir.path().join("none.toml"), dir.path())
        else {
            panic!("missing file accepted");
        };
        assert!(problems[0].contains("cannot be read"), "{problems:?}");
    }
}
