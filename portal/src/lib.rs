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
mod db;
mod forms;
mod payment;
pub mod router_client;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

/// How the portal is run.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// Where the portal listens, e.g. `127.0.0.1:8081`.
    pub listen: SocketAddr,
    /// Base URL of the router's public API, e.g. `http://127.0.0.1:8080`.
    pub router_url: String,
    /// The portal's bearer token as an intake client of the router.
    pub router_token: String,
    /// Folder of the portal's SQLite database (`portal.sqlite`).
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
}

impl PortalConfig {
    /// The defaults of the demo: listen on `listen`, the router at `router_url`, the KERN
    /// assets in `portal/node_modules` below the working directory.
    pub fn demo(
        listen: SocketAddr,
        router_url: String,
        router_token: String,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            listen,
            router_url,
            router_token,
            data_dir,
            kern_dir: PathBuf::from(DEFAULT_KERN_DIR),
            public_url: format!("http://{listen}"),
            payment_url: None,
        }
    }
}

impl PortalConfig {
    /// Fails clearly when the KERN UX assets are not installed.
    pub fn check_assets(&self) -> Result<(), Error> {
        if self.kern_dir.join("kern.min.css").is_file() {
            Ok(())
        } else {
            Err(Error::KernMissing(self.kern_dir.clone()))
        }
    }
}

/// Where `npm ci --prefix portal` puts the KERN UX assets, relative to the workspace.
pub const DEFAULT_KERN_DIR: &str = "portal/node_modules/@kern-ux/native/dist";

/// The portal's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the KERN UX assets are missing: {0} has no kern.min.css; run `npm ci --prefix portal` (the portal would be unstyled)"
    )]
    KernMissing(PathBuf),
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
    Io(#[from] std::io::Error),
    #[error("random numbers: {0}")]
    Random(#[from] openssl::error::ErrorStack),
    #[error("password hashing: {0}")]
    Password(String),
}

/// What the handlers share.
pub(crate) struct AppState {
    pub config: PortalConfig,
    pub db: sqlx::SqlitePool,
    pub router: router_client::RouterClient,
    pub templates: web::Templates,
    pub limiter: account::LoginLimiter,
    pub payments: payment::PaymentClient,
    pub provider: payment::provider::Provider,
    pub secure: bool,
}

pub(crate) type Shared = Arc<AppState>;

/// Runs the portal until `shutdown` completes.
pub async fn run(
    config: PortalConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.check_assets()?;
    std::fs::create_dir_all(&config.data_dir)?;
    let db = db::open(&config.data_dir.join("portal.sqlite")).await?;
    let templates = web::Templates::load()?;
    let payment_url = config
        .payment_url
        .clone()
        .unwrap_or_else(|| format!("{}/xbezahldienste", config.public_url));
    let state = Arc::new(AppState {
        router: router_client::RouterClient::new(&config.router_url, &config.router_token)?,
        payments: payment::PaymentClient::new(&payment_url)?,
        provider: payment::provider::Provider::default(),
        limiter: account::LoginLimiter::default(),
        secure: config.public_url.starts_with("https://"),
        templates,
        db,
        config,
    });
    let listener = tokio::net::TcpListener::bind(state.config.listen).await?;
    tracing::info!(listen = %state.config.listen, "portal listening");
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

fn app(state: Shared) -> Router {
    Router::new()
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
        .route(
            "/entwurf/{id}/anlagen",
            get(forms::attachments_page).post(forms::attachments_upload),
        )
        .route(
            "/entwurf/{id}/anlagen/{attachment}/entfernen",
            post(forms::attachment_remove),
        )
        .route("/entwurf/{id}/pruefen", get(forms::review))
        .route("/entwurf/{id}/loeschen", post(forms::discard))
        .route("/entwurf/{id}/bezahlen", post(payment::pay))
        .route("/entwurf/{id}/zahlung", get(payment::returned))
        .route("/entwurf/{id}/absenden", post(forms::submit))
        // Applications, mailbox, documents.
        .route("/antraege/{id}", get(applications::show))
        .route(
            "/antraege/{id}/bestaetigung.pdf",
            get(applications::confirmation_pdf),
        )
        .route(
            "/antraege/{id}/dokumente/{document}",
            get(applications::document),
        )
        // The Servicekonto.
        .route(
            "/konto/registrieren",
            get(account::register_page).post(account::register),
        )
        .route(
            "/konto/anmelden",
            get(account::login_page).post(account::login),
        )
        .route("/konto/abmelden", post(account::logout))
        .route("/konto", get(account::overview))
        .route(
            "/konto/stammdaten",
            get(account::master_data_page).post(account::master_data_save),
        )
        .route(
            "/konto/identifizierung",
            get(account::identify_page).post(account::identify),
        )
        .route("/konto/entwuerfe", get(forms::drafts))
        .route("/konto/antraege", get(applications::list))
        .route("/konto/postfach", get(applications::mailbox))
        // The simulated payment provider (a separate party reached over HTTP).
        .nest("/xbezahldienste", payment::provider::routes())
        // Assets: KERN UX from npm, the portal's own stylesheet and script.
        .route("/assets/kern/{*path}", get(web::kern_asset))
        .route("/assets/portal.css", get(web::portal_css))
        .route("/assets/portal.js", get(web::portal_js))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(web::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::session::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::security_headers,
        ))
        // Uploads are checked per file against the service's limit; this is the cap.
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
        .with_state(state)
}
