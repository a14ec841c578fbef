//! How the portal is run: the command line's part (`PortalConfig`) and the portal's own
//! configuration file (`Settings`, `config/portal.toml`): `[limits]`, `[quotas]`,
//! `[accounts]`, `[mail]`, `[notifications]`, `[payment]` and `[[identity_provider]]`
//! (`identity`).
//! Every key is documented in `docs/operations.md` (the identity providers' in
//! `docs/portal.md`); unknown keys are refused, and every problem of a file is reported
//! at once, each naming the file and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kopplung_web::{ClientAddresses, ProxyConfig, ServerLimits};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Error;

pub mod identity;
pub mod operator;
use identity::IdentityProvider;

/// How the portal is run.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// Where the portal listens, e.g. `127.0.0.1:8081`.
    pub listen: SocketAddr,
    /// Base URL of the router's public API, e.g. `http://127.0.0.1:8080`.
    pub router_url: String,
    /// The portal's bearer token as an intake client of the router.
    pub router_token: String,
    /// Folder of the portal's own data: `portal.sqlite`, and `mail/` with the
    /// development mail drop.
    pub data_dir: PathBuf,
    /// The `dist` folder of the npm package `@kern-ux/native` (KERN UX stylesheets and
    /// fonts), installed by `npm ci --prefix portal`.
    pub kern_dir: PathBuf,
    /// The address citizens use, e.g. `http://127.0.0.1:8081`; with `https://`, cookies
    /// are `Secure` and HSTS is sent.
    pub public_url: String,
    /// Base URL of the payment provider (XBezahldienste). `None`: the portal's own
    /// simulated provider under `{public_url}/xbezahldienste`, still called over HTTP.
    pub payment_url: Option<String>,
    /// The configuration file's settings.
    pub settings: Settings,
}

/// Where `npm ci --prefix portal` puts the KERN UX assets, relative to the workspace.
pub const DEFAULT_KERN_DIR: &str = "portal/node_modules/@kern-ux/native/dist";

impl PortalConfig {
    /// The defaults of the demo: listen on `listen`, the router at `router_url`, the KERN
    /// assets in `portal/node_modules` below the working directory.
    pub fn demo(
        listen: SocketAddr,
        router_url: String,
        router_token: String,
        data_dir: PathBuf,
        settings: Settings,
    ) -> Self {
        Self {
            listen,
            router_url,
            router_token,
            data_dir,
            kern_dir: PathBuf::from(DEFAULT_KERN_DIR),
            public_url: format!("http://{listen}"),
            payment_url: None,
            settings,
        }
    }

    /// Fails clearly when the KERN UX assets are not installed.
    pub fn check_assets(&self) -> Result<(), Error> {
        if self.kern_dir.join("kern.min.css").is_file() {
            Ok(())
        } else {
            Err(Error::KernMissing(self.kern_dir.clone()))
        }
    }
}

/// The configuration file.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub limits: Limits,
    pub quotas: Quotas,
    pub accounts: Accounts,
    pub mail: Mail,
    pub notifications: Notifications,
    pub payment: Payment,
    /// `[[identity_provider]]`: where citizens may sign in with OpenID Connect.
    pub identity_providers: Vec<IdentityProvider>,
    /// `[operator]`: who runs the portal, for its legal pages.
    pub operator: operator::Operator,
}

/// `[limits]`: the server layer's limits of the portal's listener (the keys of
/// `kopplung_web::ServerLimits`), clients behind proxies, and request body sizes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    #[serde(flatten)]
    pub server: ServerLimits,
    #[serde(flatten)]
    pub proxies: ProxyConfig,
    /// The body of an ordinary form post (every route but the upload).
    pub max_form_bytes: usize,
    /// What an upload's body may carry beyond the service's attachment limit (the
    /// multipart framing and the CSRF field).
    pub upload_overhead_bytes: usize,
    /// A photo (JPEG, PNG) may arrive up to this size where the service takes photos;
    /// it is scaled down to the service's own limit before it is stored.
    pub photo_upload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            server: ServerLimits::default(),
            proxies: ProxyConfig::default(),
            max_form_bytes: 64 * 1024,
            upload_overhead_bytes: 64 * 1024,
            photo_upload_bytes: 25 * 1024 * 1024,
        }
    }
}

impl Limits {
    pub fn server(&self) -> ServerLimits {
        self.server.clone()
    }

    pub fn clients(&self) -> Result<ClientAddresses, kopplung_web::Error> {
        self.proxies.build()
    }
}

/// `[quotas]`: what a visitor without an account may store, and how long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    /// Open anonymous drafts of one session.
    pub anonymous_drafts_per_session: u64,
    /// Anonymous drafts started from one address within `address_window_secs`.
    pub anonymous_drafts_per_address: u64,
    /// Files stored in the anonymous drafts of one session.
    pub anonymous_uploads_per_session: u64,
    /// Bytes stored in the anonymous drafts of one session.
    pub anonymous_upload_bytes_per_session: u64,
    /// Anonymous uploads from one address within `address_window_secs`.
    pub anonymous_uploads_per_address: u64,
    /// Bytes of anonymous uploads from one address within `address_window_secs`.
    pub anonymous_upload_bytes_per_address: u64,
    /// New anonymous sessions stored for one address within `address_window_secs`.
    pub sessions_per_address: u64,
    /// The window of the per-address quotas.
    pub address_window_secs: u64,
    /// Anonymous drafts (and the portal's copy of anonymous applications) are deleted
    /// this long after their last change.
    pub anonymous_expire_secs: u64,
    /// How often the retention sweep runs.
    pub sweep_interval_secs: u64,
    /// Anonymous uploads are refused while the disk holding `portal.sqlite` has less
    /// free space than this; 0: no check.
    pub min_free_disk_mib: u64,
    /// Open drafts of one account.
    pub drafts_per_account: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            anonymous_drafts_per_session: 3,
            anonymous_drafts_per_address: 20,
            anonymous_uploads_per_session: 10,
            anonymous_upload_bytes_per_session: 25 * 1024 * 1024,
            anonymous_uploads_per_address: 60,
            anonymous_upload_bytes_per_address: 200 * 1024 * 1024,
            sessions_per_address: 60,
            address_window_secs: 3600,
            anonymous_expire_secs: 24 * 3600,
            sweep_interval_secs: 300,
            min_free_disk_mib: 1024,
            drafts_per_account: 50,
        }
    }
}

impl Quotas {
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.address_window_secs)
    }
}

/// `[accounts]`: sessions, the confirmation link, registrations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Accounts {
    /// A session (signed in or anonymous) ends this long after it began.
    pub session_hours: u64,
    /// A signed-in session ends after this many seconds without a request.
    pub idle_timeout_secs: u64,
    /// The confirmation link of a registration works this long.
    pub confirm_link_hours: u64,
    /// The link of a password reset works this long (once).
    pub reset_link_minutes: u64,
    /// Registrations (and password reset requests) from one address per hour.
    pub registrations_per_address: u32,
    /// Registrations for one e-mail address per hour (each sends a mail).
    pub registrations_per_email: u32,
}

impl Default for Accounts {
    fn default() -> Self {
        Self {
            session_hours: 8,
            idle_timeout_secs: 1800,
            confirm_link_hours: 24,
            reset_link_minutes: 60,
            registrations_per_address: 20,
            registrations_per_email: 3,
        }
    }
}

impl Accounts {
    pub fn session_seconds(&self) -> i64 {
        i64::try_from(self.session_hours.saturating_mul(3600)).unwrap_or(i64::MAX)
    }

    pub fn idle_seconds(&self) -> i64 {
        i64::try_from(self.idle_timeout_secs).unwrap_or(i64::MAX)
    }

    pub fn confirm_seconds(&self) -> i64 {
        i64::try_from(self.confirm_link_hours.saturating_mul(3600)).unwrap_or(i64::MAX)
    }
}

/// How mail goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// To an SMTP relay.
    Smtp,
    /// Into files below `<data-dir>/mail/` (development and demo only).
    Drop,
}

/// STARTTLS with the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// When the relay offers it.
    Opportunistic,
    /// Always; a relay without it is an error (the mail waits).
    Required,
    /// Never (a relay on the same machine).
    Never,
}

/// `[mail]`: the relay and the outbox.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    pub transport: MailTransport,
    /// The sender, e.g. `Serviceportal <noreply@portal.example>`.
    pub from: String,
    pub host: String,
    pub port: u16,
    pub starttls: StartTls,
    /// User name at the relay; with `password_file`.
    pub username: Option<String>,
    /// A file with the relay password (relative to the configuration file).
    pub password_file: Option<PathBuf>,
    /// One delivery attempt takes at most this long.
    pub timeout_secs: u64,
    /// The first retry waits this long; each further one twice as long.
    pub retry_first_secs: u64,
    /// The longest wait between retries.
    pub retry_max_secs: u64,
    /// A mail not delivered within this many hours is given up.
    pub expire_hours: u64,
    /// With `transport = "drop"`: the development mail viewer at `/entwicklung/post`.
    pub viewer: bool,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            transport: MailTransport::Smtp,
            from: String::new(),
            host: "127.0.0.1".into(),
            port: 25,
            starttls: StartTls::Opportunistic,
            username: None,
            password_file: None,
            timeout_secs: 20,
            retry_first_secs: 30,
            retry_max_secs: 1800,
            expire_hours: 24,
            viewer: false,
        }
    }
}

/// `[notifications]`: mails about citizens' applications (docs/portal.md,
/// "Notifications").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// How often the portal asks the hub's change feed for news when it has none.
    pub poll_secs: u64,
    /// An anonymous reporter's confirmed address is deleted this many days after it
    /// was confirmed, at the latest.
    pub anonymous_keep_days: u64,
    /// … and this many days after the application became final (decided, rejected).
    pub final_grace_days: u64,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            poll_secs: 30,
            anonymous_keep_days: 180,
            final_grace_days: 14,
        }
    }
}

impl Notifications {
    pub fn keep_seconds(&self) -> i64 {
        i64::try_from(self.anonymous_keep_days.saturating_mul(86_400)).unwrap_or(i64::MAX)
    }

    pub fn grace_seconds(&self) -> i64 {
        i64::try_from(self.final_grace_days.saturating_mul(86_400)).unwrap_or(i64::MAX)
    }
}

/// `[payment]`: the secret the portal and its payment provider share, and the payment
/// methods the simulated provider offers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Payment {
    /// A file with the bearer secret for the provider's API (relative to the
    /// configuration file). Needed with an external provider (`--payment-url`);
    /// without it the simulated provider draws a random one per process.
    pub secret_file: Option<PathBuf>,
    /// The payment methods the simulated provider offers, in this order (the first
    /// preselected): only methods that exist (giropay ended in 2024).
    pub methods: Vec<PaymentMethod>,
}

/// A payment method: its code in the provider's form and the name citizens read.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    pub code: String,
    pub label: String,
}

impl Default for Payment {
    fn default() -> Self {
        let method = |code: &str, label: &str| PaymentMethod {
            code: code.into(),
            label: label.into(),
        };
        Self {
            secret_file: None,
            methods: vec![
                method("kreditkarte", "Kreditkarte"),
                method("paypal", "PayPal"),
                method("sepa-lastschrift", "SEPA-Lastschrift"),
            ],
        }
    }
}

const SECTIONS: &[&str] = &[
    "limits",
    "quotas",
    "accounts",
    "mail",
    "notifications",
    "payment",
    "operator",
    "identity_provider",
];

impl Settings {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            file: path.to_owned(),
            problems: vec![format!("cannot be read: {e}")],
        })?;
        let mut settings = Self::parse(&text).map_err(|problems| Error::Config {
            file: path.to_owned(),
            problems,
        })?;
        // Files named in the configuration are relative to it.
        let base = path.parent().unwrap_or(Path::new("."));
        let secrets = settings
            .identity_providers
            .iter_mut()
            .map(|p| &mut p.client_secret_file);
        for file in [
            &mut settings.mail.password_file,
            &mut settings.payment.secret_file,
        ]
        .into_iter()
        .flatten()
        .chain(secrets)
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(settings)
    }

    /// The settings of `text`, or every problem in it.
    pub fn parse(text: &str) -> Result<Self, Vec<String>> {
        let table: toml::Table = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        for (name, value) in &table {
            if !SECTIONS.contains(&name.as_str()) {
                problems.push(format!(
                    "[{name}]: unknown section (known: {})",
                    SECTIONS.join(", ")
                ));
            } else if !value.is_table() && name != "identity_provider" {
                problems.push(format!("{name}: must be a section [{name}]"));
            }
        }
        let settings = Self {
            limits: section(&table, "limits", &mut problems),
            quotas: section(&table, "quotas", &mut problems),
            accounts: section(&table, "accounts", &mut problems),
            mail: section(&table, "mail", &mut problems),
            notifications: section(&table, "notifications", &mut problems),
            payment: section(&table, "payment", &mut problems),
            operator: section(&table, "operator", &mut problems),
            identity_providers: table
                .get("identity_provider")
                .map(|value| identity::parse(value, &mut problems))
                .unwrap_or_default(),
        };
        if problems.is_empty() {
            settings.check(&mut problems);
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }

    fn check(&self, problems: &mut Vec<String>) {
        problems.extend(self.operator.problems());
        if let Err(errors) = self.limits.server().validate() {
            problems.extend(errors.iter().map(|e| e.to_string()));
        }
        if let Err(e) = self.limits.clients() {
            problems.push(e.to_string());
        }
        let mut at_least = |key: &str, value: u64, min: u64| {
            if value < min {
                problems.push(format!("{key}: must be at least {min}"));
            }
        };
        at_least(
            "[limits] max_form_bytes",
            self.limits.max_form_bytes as u64,
            1024,
        );
        at_least(
            "[limits] upload_overhead_bytes",
            self.limits.upload_overhead_bytes as u64,
            1024,
        );
        let q = &self.quotas;
        at_least(
            "[quotas] anonymous_drafts_per_session",
            q.anonymous_drafts_per_session,
            1,
        );
        at_least("[quotas] address_window_secs", q.address_window_secs, 1);
        at_least("[quotas] anonymous_expire_secs", q.anonymous_expire_secs, 1);
        at_least("[quotas] sweep_interval_secs", q.sweep_interval_secs, 1);
        at_least("[quotas] drafts_per_account", q.drafts_per_account, 1);
        at_least("[accounts] session_hours", self.accounts.session_hours, 1);
        let n = &self.notifications;
        at_least("[notifications] poll_secs", n.poll_secs, 1);
        at_least(
            "[notifications] anonymous_keep_days",
            n.anonymous_keep_days,
            1,
        );
        at_least(
            "[accounts] idle_timeout_secs",
            self.accounts.idle_timeout_secs,
            1,
        );
        at_least(
            "[accounts] confirm_link_hours",
            self.accounts.confirm_link_hours,
            1,
        );
        at_least(
            "[accounts] registrations_per_address",
            u64::from(self.accounts.registrations_per_address),
            1,
        );
        at_least(
            "[accounts] registrations_per_email",
            u64::from(self.accounts.registrations_per_email),
            1,
        );
        let mail = &self.mail;
        at_least("[mail] timeout_secs", mail.timeout_secs, 1);
        at_least("[mail] retry_first_secs", mail.retry_first_secs, 1);
        at_least("[mail] retry_max_secs", mail.retry_max_secs, 1);
        at_least("[mail] expire_hours", mail.expire_hours, 1);
        if mail.from.trim().is_empty() {
            problems.push(
                "[mail] from: required, the sender's address (e.g. \"Serviceportal <noreply@portal.example>\")"
                    .into(),
            );
        } else if mail.from.parse::<lettre::message::Mailbox>().is_err() {
            problems.push(format!(
                "[mail] from: `{}` is no e-mail address (e.g. \"Serviceportal <noreply@portal.example>\")",
                mail.from
            ));
        }
        if mail.transport == MailTransport::Smtp && mail.host.trim().is_empty() {
            problems.push("[mail] host: required with transport = \"smtp\"".into());
        }
        if mail.username.is_some() != mail.password_file.is_some() {
            problems.push("[mail] username: give username and password_file together".into());
        }
        if mail.viewer && mail.transport != MailTransport::Drop {
            problems.push(
                "[mail] viewer: the development mail viewer needs transport = \"drop\"".into(),
            );
        }
    }
}

/// Section `name` of `table` (defaults if it is missing). Each key is read on its own,
/// so that every unknown or mistyped key is reported, each by name.
fn section<T: DeserializeOwned + Default>(
    table: &toml::Table,
    name: &str,
    problems: &mut Vec<String>,
) -> T {
    let Some(toml::Value::Table(entries)) = table.get(name) else {
        return T::default();
    };
    let mut ok = true;
    for (key, value) in entries {
        let mut single = toml::Table::new();
        single.insert(key.clone(), value.clone());
        if let Err(e) = toml::Value::Table(single).try_into::<T>() {
            ok = false;
            problems.push(format!("[{name}] {key}: {}", e.message().trim()));
        }
    }
    if !ok {
        return T::default();
    }
    match toml::Value::Table(entries.clone()).try_into::<T>() {
        Ok(value) => value,
        Err(e) => {
            problems.push(format!("[{name}]: {}", e.message().trim()));
            T::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems `Settings::parse` finds in `toml`, each of `expected` among them.
    fn problems_naming(toml: &str, expected: &[&str]) -> Vec<String> {
        let problems = Settings::parse(toml).unwrap_err();
        let text = problems.join("\n");
        for expected in expected {
            assert!(text.contains(expected), "{expected}:\n{text}");
        }
        problems
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let problems = problems_naming(
            r#"
            [limits]
            header_timeout_secs = 0
            max_form_bytes = "a lot"
            colour = "blue"
            [quotas]
            anonymous_drafts_per_sesion = 3
            [mail]
            transport = "pigeon"
            [extra]
            x = 1
            "#,
            &[
                "[extra]: unknown section",
                "[limits] max_form_bytes: invalid type",
                "[limits] colour: unknown field",
                "[quotas] anonymous_drafts_per_sesion: unknown field",
                "[mail] transport: unknown variant",
            ],
        );
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn values_are_checked_after_the_keys() {
        problems_naming(
            r#"
            [limits]
            header_timeout_secs = 0
            trusted_proxies = ["not an address"]
            [mail]
            from = "nobody"
            viewer = true
            "#,
            &[
                "header_timeout_secs: must be at least 1",
                "trusted_proxies",
                "[mail] from: `nobody` is no e-mail address",
                "[mail] viewer",
            ],
        );
    }

    #[test]
    fn the_shipped_demo_configuration_is_valid() {
        let text = include_str!("../../config/portal.toml");
        let settings = Settings::parse(text).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(settings.mail.transport, MailTransport::Drop);
        assert!(settings.mail.viewer);
        assert_eq!(settings.quotas.anonymous_expire_secs, 24 * 3600);
        let provider = &settings.identity_providers[0];
        assert_eq!(provider.issuer, "http://127.0.0.1:8082");
        assert_eq!(provider.levels.len(), 3);
    }
}
