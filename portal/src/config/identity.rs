//! `[[identity_provider]]` of `config/portal.toml`: the OpenID Connect providers citizens
//! may sign in with, each with its client registration and the mappings of `acr` to a
//! Vertrauensniveau and of `amr` to a means of identification (docs/portal.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use kopplung_core::identity::Means;
use kopplung_forms::TrustLevel;
use serde::Deserialize;

/// One identity provider, checked.
#[derive(Debug, Clone)]
pub struct IdentityProvider {
    /// Short name in URLs (`anbieter=`) and the database.
    pub id: String,
    /// Shown to citizens, e.g. "Servicekonto (Demo)".
    pub name: String,
    /// The issuer; discovery at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// The client secret (relative paths: to the configuration file).
    pub client_secret_file: PathBuf,
    /// Scopes asked for with the citizen's consent to prefill forms (`openid` always).
    pub scopes: Vec<String>,
    /// `acr` value -> level.
    pub levels: BTreeMap<String, TrustLevel>,
    /// `amr` value -> means of identification; an unmapped one is `sonstiges`.
    pub means: BTreeMap<String, Means>,
    /// A sign-in older than this is repeated before an application is submitted.
    pub max_age_secs: u64,
    /// Where the provider sends the citizen after logout; default the portal's start page.
    pub post_logout_redirect_uri: Option<String>,
}

impl IdentityProvider {
    /// The level an `acr` value stands for.
    pub fn level_of(&self, acr: &str) -> Option<TrustLevel> {
        self.levels.get(acr).copied()
    }

    /// The first `amr` value with a mapping, else `sonstiges`.
    pub fn means_of<'a>(&self, amr: impl IntoIterator<Item = &'a str>) -> Means {
        amr.into_iter()
            .find_map(|value| self.means.get(value).copied())
            .unwrap_or(Means::Sonstiges)
    }

    /// The `acr_values` that ask for at least `level`: the exact level first.
    pub fn acr_values_for(&self, level: TrustLevel) -> Vec<String> {
        let mut values: Vec<(TrustLevel, &String)> = self
            .levels
            .iter()
            .filter(|(_, l)| **l >= level)
            .map(|(acr, l)| (*l, acr))
            .collect();
        values.sort();
        values.into_iter().map(|(_, acr)| acr.clone()).collect()
    }

    /// The highest level this provider can confirm.
    pub fn highest_level(&self) -> TrustLevel {
        self.levels.values().copied().max().unwrap_or_default()
    }
}

/// The keys of an entry as written; checked one by one so that each problem is named.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: Option<String>,
    name: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    scopes: Option<Vec<String>>,
    levels: Option<BTreeMap<String, TrustLevel>>,
    means: Option<BTreeMap<String, Means>>,
    max_age_secs: Option<u64>,
    post_logout_redirect_uri: Option<String>,
}

/// Five minutes below the hub's default maximum age (3600 s), so that an application
/// checked here still reaches the hub in time.
pub const DEFAULT_MAX_AGE_SECS: u64 = 3300;

/// The providers of `value` (the array `identity_provider`), every problem named.
pub fn parse(value: &toml::Value, problems: &mut Vec<String>) -> Vec<IdentityProvider> {
    let Some(entries) = value.as_array() else {
        problems.push(
            "identity_provider: must be an array of tables, written [[identity_provider]]".into(),
        );
        return Vec::new();
    };
    let mut providers = Vec::new();
    let mut ids = BTreeSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let Some(table) = entry.as_table() else {
            problems.push(format!(
                "[[identity_provider]] #{}: must be a table",
                index + 1
            ));
            continue;
        };
        let label = match table.get("id").and_then(toml::Value::as_str) {
            Some(id) => format!("[[identity_provider]] \"{id}\""),
            None => format!("[[identity_provider]] #{}", index + 1),
        };
        let before = problems.len();
        // Each key alone first: every unknown or mistyped key is reported by name.
        for (key, value) in table {
            let mut single = toml::Table::new();
            single.insert(key.clone(), value.clone());
            if let Err(e) = toml::Value::Table(single).try_into::<Entry>() {
                problems.push(format!("{label} {key}: {}", e.message().trim()));
            }
        }
        if problems.len() > before {
            continue;
        }
        let entry = match toml::Value::Table(table.clone()).try_into::<Entry>() {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(format!("{label}: {}", e.message().trim()));
                continue;
            }
        };
        if let Some(provider) = check(entry, &label, problems)
            && ids.insert(provider.id.clone())
        {
            providers.push(provider);
        } else if problems.len() == before {
            problems.push(format!(
                "{label} id: given twice; each provider needs its own id"
            ));
        }
    }
    providers
}

fn required(value: Option<String>, label: &str, key: &str, problems: &mut Vec<String>) -> String {
    match value.map(|v| v.trim().to_owned()) {
        Some(value) if !value.is_empty() => value,
        _ => {
            problems.push(format!("{label} {key}: required"));
            String::new()
        }
    }
}

/// Whether `text` is a URL a provider may live at: https, or http on this machine.
fn provider_url(text: &str) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(text).map_err(|_| "not an absolute URL")?;
    let loopback = matches!(
        url.host_str(),
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
    );
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("must be https (http only on this machine: 127.0.0.1, localhost)"),
        _ => return Err("must be an https URL"),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query and no fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must carry no credentials");
    }
    Ok(url)
}

fn check(entry: Entry, label: &str, problems: &mut Vec<String>) -> Option<IdentityProvider> {
    let before = problems.len();
    let id = required(entry.id, label, "id", problems);
    if !id.is_empty()
        && (id.len() > 40
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    {
        problems.push(format!(
            "{label} id: use 1 to 40 lowercase letters, digits and `-` (it appears in URLs)"
        ));
    }
    let name = required(entry.name, label, "name", problems);
    let issuer = required(entry.issuer, label, "issuer", problems);
    if !issuer.is_empty()
        && let Err(why) = provider_url(&issuer)
    {
        problems.push(format!("{label} issuer: `{issuer}` {why}"));
    }
    let client_id = required(entry.client_id, label, "client_id", problems);
    let client_secret_file = entry.client_secret_file.unwrap_or_else(|| {
        problems.push(format!(
            "{label} client_secret_file: required, the file with the client secret the provider issued"
        ));
        PathBuf::new()
    });
    let mut scopes = entry
        .scopes
        .unwrap_or_else(|| ["openid", "profile", "address"].map(str::to_owned).to_vec());
    if let Some(bad) = scopes.iter().find(|s| {
        s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        problems.push(format!(
            "{label} scopes: `{bad}` is no scope (visible characters without spaces)"
        ));
    }
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let levels = entry.levels.unwrap_or_default();
    if levels.is_empty() {
        problems.push(format!(
            "{label} levels: required, a table acr -> level, e.g. \"http://eidas.europa.eu/LoA/high\" = \"hoch\""
        ));
    }
    if levels.keys().any(|acr| acr.trim().is_empty()) {
        problems.push(format!("{label} levels: an acr value is empty"));
    }
    let means = entry.means.unwrap_or_default();
    if means.keys().any(|amr| amr.trim().is_empty()) {
        problems.push(format!("{label} means: an amr value is empty"));
    }
    let max_age_secs = entry.max_age_secs.unwrap_or(DEFAULT_MAX_AGE_SECS);
    if max_age_secs < 1 {
        problems.push(format!("{label} max_age_secs: must be at least 1"));
    }
    if let Some(uri) = &entry.post_logout_redirect_uri
        && url::Url::parse(uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .is_none()
    {
        problems.push(format!(
            "{label} post_logout_redirect_uri: `{uri}` is not an absolute http(s) URL"
        ));
    }
    (problems.len() == before).then_some(IdentityProvider {
        id,
        name,
        issuer,
        client_id,
        client_secret_file,
        scopes,
        levels,
        means,
        max_age_secs,
        post_logout_redirect_uri: entry.post_logout_redirect_uri,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> (Vec<IdentityProvider>, Vec<String>) {
        let table: toml::Table = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let providers = parse(&table["identity_provider"], &mut problems);
        (providers, problems)
    }

    const GOOD: &str = r#"
        [[identity_provider]]
        id = "servicekonto"
        name = "Servicekonto (Demo)"
        issuer = "http://127.0.0.1:8082"
        client_id = "portal"
        client_secret_file = "secret"
        [identity_provider.levels]
        "http://eidas.europa.eu/LoA/low" = "basis"
        "http://eidas.europa.eu/LoA/substantial" = "substanziell"
        "http://eidas.europa.eu/LoA/high" = "hoch"
        [identity_provider.means]
        pwd = "benutzername-passwort"
        hwk = "online-ausweis"
    "#;

    #[test]
    fn a_provider_maps_acr_and_amr() {
        let (providers, problems) = parse_text(GOOD);
        assert!(problems.is_empty(), "{problems:?}");
        let provider = &providers[0];
        assert_eq!(provider.scopes, ["openid", "profile", "address"]);
        assert_eq!(provider.max_age_secs, DEFAULT_MAX_AGE_SECS);
        assert_eq!(
            provider.level_of("http://eidas.europa.eu/LoA/high"),
            Some(TrustLevel::Hoch)
        );
        assert_eq!(provider.level_of("urn:unknown"), None);
        assert_eq!(provider.means_of(["mfa", "hwk"]), Means::OnlineAusweis);
        assert_eq!(provider.means_of(["otp"]), Means::Sonstiges);
        assert_eq!(
            provider.acr_values_for(TrustLevel::Substanziell),
            [
                "http://eidas.europa.eu/LoA/substantial",
                "http://eidas.europa.eu/LoA/high"
            ]
        );
        assert_eq!(provider.highest_level(), TrustLevel::Hoch);
    }

    #[test]
    fn every_problem_is_named_with_its_provider_and_key() {
        let (providers, problems) = parse_text(
            r#"
            [[identity_provider]]
            id = "Servicekonto Sachsen"
            issuer = "http://idp.example"
            client_id = "portal"
            scopes = ["openid", "pro file"]
            colour = "blue"
            [[identity_provider]]
            name = "Zweiter"
            issuer = "ftp://idp.example"
            max_age_secs = "lang"
            [identity_provider.levels]
            "urn:x" = "mittel"
            [identity_provider.means]
            pwd = "passwort"
            [[identity_provider]]
            name = "Dritter"
            issuer = "https://idp.example/?x=1"
            max_age_secs = 0
            post_logout_redirect_uri = "/"
            [identity_provider.levels]
            "" = "basis"
            "#,
        );
        assert!(providers.is_empty());
        let text = problems.join("\n");
        for expected in [
            "[[identity_provider]] \"Servicekonto Sachsen\" colour: unknown field",
            "[[identity_provider]] #2 max_age_secs: invalid type",
            "[[identity_provider]] #2 levels: unknown variant `mittel`",
            "[[identity_provider]] #2 means: unknown variant `passwort`",
            "[[identity_provider]] #3 id: required",
            "[[identity_provider]] #3 issuer: `https://idp.example/?x=1` must have no query",
            "[[identity_provider]] #3 client_id: required",
            "[[identity_provider]] #3 client_secret_file: required",
            "[[identity_provider]] #3 levels: an acr value is empty",
            "[[identity_provider]] #3 max_age_secs: must be at least 1",
            "[[identity_provider]] #3 post_logout_redirect_uri: `/` is not an absolute",
        ] {
            assert!(text.contains(expected), "{expected}:\n{text}");
        }
        // The first entry's values are checked once its keys are right.
        let (_, problems) = parse_text(
            r#"
            [[identity_provider]]
            id = "Servicekonto Sachsen"
            name = "S"
            issuer = "http://idp.example"
            client_id = "portal"
            client_secret_file = "s"
            scopes = ["pro file"]
            "#,
        );
        let text = problems.join("\n");
        for expected in [
            "id: use 1 to 40 lowercase letters",
            "issuer: `http://idp.example` must be https",
            "scopes: `pro file` is no scope",
            "levels: required",
        ] {
            assert!(text.contains(expected), "{expected}:\n{text}");
        }
    }

    #[test]
    fn ids_are_unique() {
        let (providers, problems) = parse_text(&format!("{GOOD}\n{GOOD}"));
        assert_eq!(providers.len(), 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("given twice"), "{problems:?}");
    }
}
