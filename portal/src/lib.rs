//! The citizens' portal: Leistungskatalog, Behördenkatalog, Zuständigkeitsfinder, online
//! forms with drafts, fees and submission, and the Servicekonto with the citizen's
//! applications and mailbox — server-rendered in German, working without JavaScript.
//!
//! It is a client of the router's public HTTP API (`docs/api.md`) like any other portal
//! and keeps only what is the citizen's own: accounts, sessions, drafts, payments and
//! which router application belongs to whom (SQLite in the data directory).
//! See `docs/portal.md`.
#![forbid(unsafe_code)]

mod account;
mod applications;
mod catalog;
pub mod config;
mod db;
mod deletion;
mod forms;
pub mod legal;
mod level;
mod mail;
mod notify;
mod oidc;
mod payment;
mod peer;
mod quota;
pub mod router_client;
mod sweep;
mod web;

/// The portal's rendering of a form definition, for the hub's mapping workbench.
pub use forms::preview::FormPreviewer;

/// The German calendar day now: a form's limits relative to the day of submission are
/// checked against it while the citizen fills the form in (the hub checks them again at
/// intake with its clock).
fn today() -> time::Date {
    kopplung_forms::german::today(time::OffsetDateTime::now_utc())
}

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use kopplung_web::{LoginLimiter, LoginPolicy, Server};

pub use config::identity::IdentityProvider;
pub use config::{DEFAULT_KERN_DIR, PortalConfig, Settings};

/// The portal's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the KERN UX assets are missing: {0} has no kern.min.css; run `npm ci --prefix portal` (the portal would be unstyled)"
    )]
    KernMissing(PathBuf),
    #[error("{}: {}", file.display(), problems.join("\n  "))]
    Config {
        file: PathBuf,
        problems: Vec<String>,
    },
    #[error("{0}")]
    Settings(#[from] kopplung_web::Error),
    #[error("--public-url {0}: not an absolute http(s) URL")]
    PublicUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("templates: {0}")]
    Template(String),
    #[error("the router: {0}")]
    Router(String),
    #[error("the payment provider: {0}")]
    Payment(String),
    #[error("{0}")]
    Pdf(String),
    #[error("mail: {0}")]
    Mail(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("random numbers: {0}")]
    Random(#[from] openssl::error::ErrorStack),
    #[error("password hashing: {0}")]
    Password(String),
    #[error("{0}")]
    IdentityProviderConfig(String),
    #[error("the identity provider {0}")]
    IdentityProviderUnavailable(String),
    #[error("sign-in refused by the portal's checks: {0}")]
    SignInRejected(String),
}

/// What the handlers share.
pub(crate) struct AppState {
    pub config: PortalConfig,
    /// `public_url`, parsed: the origin redirect targets must stay on.
    pub base_url: url::Url,
    pub db: sqlx::SqlitePool,
    pub router: router_client::RouterClient,
    pub templates: web::Templates,
    /// KERN UX, the fonts, the portal's stylesheet, script and icon, by hashed name.
    pub assets: web::assets::Assets,
    /// Sign-in: attempts in flight count, growing waits per account, a cap per address.
    pub limiter: LoginLimiter,
    /// Registrations, counted per e-mail address and per client address.
    pub registrations: LoginLimiter,
    pub quotas: quota::Quotas,
    pub mailer: mail::Mailer,
    pub payments: payment::PaymentClient,
    pub provider: payment::provider::Provider,
    /// `[[identity_provider]]`: where citizens sign in with OpenID Connect.
    pub providers: oidc::client::Providers,
    /// The Content-Security-Policy of every page (forms may go to the providers).
    pub csp: &'static str,
    pub secure: bool,
    /// Rung when a fee was paid: the payment records go to the hub at once
    /// (`payment::record`), not only at its next retry.
    pub payment_records: tokio::sync::Notify,
    /// Writes the confirmations of receipt (tagged PDF/UA-1).
    pub pdf: applications::pdf::Writer,
}

pub(crate) type Shared = Arc<AppState>;

/// The secret the portal and its payment provider share: from `[payment] secret_file`,
/// else — for the simulated provider only — a random one for this process.
fn payment_secret(config: &PortalConfig) -> Result<String, Error> {
    match (&config.settings.payment.secret_file, &config.payment_url) {
        (Some(file), _) => {
            let secret = std::fs::read_to_string(file).map_err(|e| {
                Error::Payment(format!("[payment] secret_file {}: {e}", file.display()))
            })?;
            let secret = secret.trim().to_owned();
            if secret.len() < 16 {
                return Err(Error::Payment(format!(
                    "[payment] secret_file {}: the secret must have at least 16 characters",
                    file.display()
                )));
            }
            Ok(secret)
        }
        (None, Some(_)) => Err(Error::Payment(
            "an external payment provider (--payment-url) needs [payment] secret_file".into(),
        )),
        (None, None) => Ok(kopplung_web::shell::random_hex(32)?),
    }
}

/// Runs the portal until `shutdown` completes.
pub async fn run(
    config: PortalConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.check_assets()?;
    let settings = &config.settings;
    let clients = settings.limits.clients()?;
    let server_limits = settings.limits.server();
    let base_url = url::Url::parse(&config.public_url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .ok_or_else(|| Error::PublicUrl(config.public_url.clone()))?;
    // Private from the start: the directory 0700, the store 0600 (`db::open`).
    kopplung_web::files::create_private_dir(&config.data_dir)?;
    for wide in kopplung_web::files::wider_than_private(&config.data_dir, |_| false)? {
        tracing::warn!("{wide}");
    }
    let db = db::open(&config.data_dir.join("portal.sqlite")).await?;
    let assets = web::assets::Assets::load(&config.kern_dir)?;
    let templates = web::Templates::load(assets.links.clone())?;
    let secret = payment_secret(&config)?;
    let pdf = applications::pdf::Writer::load(std::path::Path::new(applications::pdf::FONT))
        .map_err(Error::Pdf)?;
    let payment_url = config
        .payment_url
        .clone()
        .unwrap_or_else(|| format!("{}/xbezahldienste", config.public_url));
    let accounts = &settings.accounts;
    let hour = std::time::Duration::from_secs(3600);
    let registrations = LoginLimiter::new(LoginPolicy {
        account_failures: accounts.registrations_per_email,
        first_lockout: hour,
        max_lockout: hour,
        window: hour,
        address_failures: accounts.registrations_per_address,
    });
    let providers = oidc::client::Providers::new(&settings.identity_providers, base_url.as_str())?;
    let csp = web::csp(&settings.identity_providers);
    let state = Arc::new(AppState {
        router: router_client::RouterClient::new(&config.router_url, &config.router_token)?,
        payments: payment::PaymentClient::new(&payment_url, &secret)?,
        provider: payment::provider::Provider::new(secret, settings.payment.methods.clone()),
        limiter: LoginLimiter::default(),
        registrations,
        quotas: quota::Quotas::new(settings.quotas.clone()),
        mailer: mail::Mailer::new(
            &settings.mail,
            &config.data_dir,
            base_url.host_str().unwrap_or("localhost"),
        )?,
        providers,
        csp,
        secure: base_url.scheme() == "https",
        base_url,
        templates,
        assets,
        db,
        config,
        payment_records: tokio::sync::Notify::new(),
        pdf,
    });
    let background = [
        tokio::spawn(mail::run(state.clone())),
        tokio::spawn(notify::run(state.clone())),
        tokio::spawn(sweep::run(state.clone())),
        tokio::spawn(payment::record::run(state.clone())),
    ];
    let listener = tokio::net::TcpListener::bind(state.config.listen).await?;
    tracing::info!(listen = %state.config.listen, "portal listening");
    let missing = state.config.settings.operator.missing();
    if !missing.is_empty() {
        let keys: Vec<&str> = missing.iter().map(|m| m.key).collect();
        tracing::warn!(missing = %keys.join(", "), "the legal pages lack the operator's data; set them in [operator] of the portal's configuration");
    }
    let server = Server::new("portal", server_limits, clients).on_body_timeout({
        let state = state.clone();
        move |limit| web::body_timeout_page(&state, limit)
    });
    let served = server.serve(listener, app(state.clone()), shutdown).await;
    for task in background {
        task.abort();
    }
    Ok(served?)
}

fn app(state: Shared) -> Router {
    let mut app = Router::new()
        // Catalogues and the finder.
        .route("/", get(catalog::start))
        .route("/leistungen", get(catalog::services))
        .route("/leistungen/{key}", get(catalog::service))
        .route("/behoerden", get(catalog::authorities))
        .route("/behoerden/{id}", get(catalog::authority))
        .route("/zustaendigkeit", get(catalog::finder))
        // Online forms: drafts, steps, attachments, review, payment, submission.
        .route("/antrag/{key}/neu", post(forms::start))
        .route(
            "/entwurf/{id}/schritt/{step}",
            get(forms::step_page).post(forms::step_save),
        )
        // Uploads are read through the service's own limit (see `forms::attachments`).
        .route(
            "/entwurf/{id}/anlagen",
            get(forms::attachments_page)
                .post(forms::attachments_upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/entwurf/{id}/anlagen/ort",
            post(forms::attachments_position),
        )
        .route(
            "/entwurf/{id}/anlagen/{attachment}/entfernen",
            post(forms::attachment_remove),
        )
        .route("/entwurf/{id}/pruefen", get(forms::review))
        .route("/entwurf/{id}/loeschen", post(payment::discard))
        .route("/entwurf/{id}/bezahlen", post(payment::pay))
        .route("/entwurf/{id}/zahlung", get(payment::returned))
        .route("/entwurf/{id}/absenden", post(forms::submit))
        // Applications, mailbox, documents.
        .route("/antraege/{id}", get(applications::show))
        .route(
            "/antraege/{id}/gebuehr/bezahlen",
            post(payment::decision::pay),
        )
        .route(
            "/antraege/{id}/gebuehr/zahlung",
            get(payment::decision::returned),
        )
        // Messages with a file are read through the service's own limit (see
        // `applications::conversation`).
        .route(
            "/antraege/{id}/nachricht",
            get(applications::conversation::page)
                .post(applications::conversation::send)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/antraege/{id}/bestaetigung.pdf",
            get(applications::confirmation_pdf),
        )
        .route(
            "/antraege/{id}/dokumente/{document}",
            get(applications::document),
        )
        // Notifications: an anonymous reporter's status mails, and their status page.
        .route(
            "/antraege/{id}/benachrichtigung",
            get(notify::anonymous::subscribed).post(notify::anonymous::subscribe),
        )
        .route("/status/{token}", get(notify::anonymous::show))
        .route(
            "/status/{token}/bestaetigen",
            get(notify::anonymous::confirm_page).post(notify::anonymous::confirm),
        )
        .route(
            "/status/{token}/abbestellen",
            get(notify::anonymous::stop_page).post(notify::anonymous::stop),
        )
        .route(
            "/status/{token}/nachricht",
            get(notify::anonymous::reply_page)
                .post(notify::anonymous::reply_send)
                .layer(DefaultBodyLimit::disable()),
        )
        // The Servicekonto.
        .route(
            "/konto/registrieren",
            get(account::registration::register_page).post(account::registration::register),
        )
        .route(
            "/konto/registrieren/gesendet",
            get(account::registration::sent),
        )
        .route(
            "/konto/bestaetigen",
            get(account::registration::confirm_page).post(account::registration::confirm),
        )
        .route(
            "/konto/anmelden",
            get(account::login_page).post(account::login),
        )
        .route("/konto/abmelden", post(account::logout))
        .route(
            "/konto/passwort-vergessen",
            get(account::forgot_page).post(account::forgot),
        )
        .route(
            "/konto/passwort-neu",
            get(account::reset_page).post(account::reset),
        )
        .route(
            "/konto/loeschen",
            get(deletion::delete_page).post(deletion::delete_account),
        )
        .route("/konto", get(account::overview))
        .route(
            "/konto/stammdaten",
            get(account::master_data_page).post(account::master_data_save),
        )
        .route("/konto/identifizierung", get(oidc::identify_page))
        .route("/konto/oidc/anmelden", get(oidc::start))
        .route(oidc::RETURN_PATH, get(oidc::callback))
        .route("/konto/entwuerfe", get(forms::drafts))
        .route("/konto/antraege", get(applications::list))
        .route("/konto/postfach", get(applications::mailbox))
        .route(
            "/konto/benachrichtigungen",
            get(notify::pages::show).post(notify::pages::save),
        )
        .route(
            "/konto/benachrichtigungen/adresse",
            post(notify::pages::address),
        )
        .route(
            "/konto/benachrichtigungen/bestaetigen",
            get(notify::pages::confirm_page).post(notify::pages::confirm),
        )
        // Assets under their hashed names (KERN UX from npm, the fonts, the portal's
        // own stylesheet, script and icon), and the icon at its usual addresses.
        .route("/assets/{name}", get(web::assets::asset))
        .route("/favicon.ico", get(web::assets::favicon_ico))
        .route("/favicon.svg", get(web::assets::favicon_svg))
        .route("/impressum", get(legal::impressum))
        .route("/datenschutz", get(legal::privacy))
        .route("/barrierefreiheit", get(legal::accessibility))
        .route("/kontakt", get(legal::contact))
        .route("/healthz", get(|| async { "ok" }));
    // The simulated payment provider (a separate party reached over HTTP), unless an
    // external one is configured.
    if state.config.payment_url.is_none() {
        app = app.nest("/xbezahldienste", payment::provider::routes());
    }
    // The development mail viewer, only with the mail drop.
    if state.mailer.viewer_dir().is_some() {
        app = app
            .route("/entwicklung/post", get(mail::viewer::list))
            .route("/entwicklung/post/{name}", get(mail::viewer::show));
    }
    let app = app
        .fallback(web::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::session::middleware,
        ));
    web::secure(app, state.secure, state.csp)
        // Form posts are small; only the upload route reads more (its own limit).
        .layer(DefaultBodyLimit::max(
            state.config.settings.limits.max_form_bytes,
        ))
        // Text compressed (gzip or brotli, as the browser asks); not fonts (WOFF2 is
        // compressed) nor pictures and PDF files.
        .layer(web::assets::compression())
        .with_state(state)
}
