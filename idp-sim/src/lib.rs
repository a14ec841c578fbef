//! The demo Servicekonto: a simulated OpenID Connect identity provider, as real as the
//! protocol requires and no more (`docs/identity.md`).
//!
//! - Discovery (`/.well-known/openid-configuration`) and the JWKS (`/jwks`) with the RS256
//!   key created in the data directory at first start.
//! - The authorization endpoint (`/authorize`): code flow only, PKCE with S256 required,
//!   `state`, `nonce`, `acr_values`, `prompt`, `max_age`; the redirect URI is compared
//!   whole against the client's registered ones and never followed otherwise.
//! - German login pages (`/anmeldung`) where the citizen picks a fictitious test identity
//!   and the means of identification, each reaching its trust level (`acr`, `amr`).
//! - The token endpoint (`/token`: `client_secret_basic` or `client_secret_post`; codes
//!   single-use and short-lived), userinfo (`/userinfo`) and RP-initiated logout
//!   (`/abmeldung`), with a session cookie for single sign-on.
//!
//! Everything it remembers is in memory; it serves behind the project's server layer.
#![forbid(unsafe_code)]

mod authorize;
pub mod config;
mod discovery;
mod keys;
mod login;
mod logout;
mod pages;
mod params;
pub mod people;
mod store;
mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use kopplung_core::clock::Clock;
use kopplung_web::Server;
use kopplung_web::shell::Cookies;
use tokio::net::TcpListener;

pub use config::IdpConfig;

/// The errors of the identity provider.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {}", file.display(), problems.join("\n  "))]
    Config {
        file: PathBuf,
        problems: Vec<String>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the signing key: {0}")]
    Key(String),
    #[error("{0}")]
    Web(#[from] kopplung_web::Error),
    #[error("listening on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// What the handlers share.
pub(crate) struct State {
    pub config: IdpConfig,
    pub keys: keys::Keys,
    pub store: store::Store,
    pub pages: pages::Pages,
    pub cookies: Cookies,
}

pub(crate) type Shared = Arc<State>;

impl State {
    /// An endpoint's absolute URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.issuer)
    }
}

/// A loaded identity provider, ready to serve.
pub struct Idp {
    state: Shared,
}

impl Idp {
    /// Reads and checks the configuration, reads the clients' secrets from `data_dir`
    /// and the keys (creating them at first start).
    pub fn load(config: &Path, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let config = IdpConfig::load(config, data_dir)?;
        let keys = keys::Keys::load_or_create(data_dir)?;
        let pages = pages::Pages::new(&config)?;
        let cookies = Cookies {
            path: "/",
            same_site: kopplung_web::shell::SameSite::Lax,
            secure: kopplung_web::shell::secure_url(&config.issuer),
        };
        Ok(Self {
            state: Arc::new(State {
                store: store::Store::new(clock),
                config,
                keys,
                pages,
                cookies,
            }),
        })
    }

    pub fn config(&self) -> &IdpConfig {
        &self.state.config
    }

    /// Serves on the configured address until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let address = self.state.config.listen;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| Error::Listen { address, source })?;
        self.serve(listener, shutdown).await
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let limits = &self.state.config.limits;
        let server =
            Server::new("idp", limits.server.clone(), limits.clients()?).on_body_timeout({
                let state = self.state.clone();
                move |limit| pages::body_timeout(&state, limit)
            });
        let address = listener.local_addr().ok();
        tracing::info!(issuer = %self.state.config.issuer, ?address, "demo Servicekonto listening");
        let app = app(self.state);
        server
            .serve(listener, app, shutdown)
            .await
            .map_err(|source| Error::Io {
                path: PathBuf::from("listener"),
                source,
            })
    }
}

fn app(state: Shared) -> Router {
    let max_form = state.config.limits.max_form_bytes;
    let routes = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/jwks", get(discovery::jwks))
        .route(
            "/authorize",
            get(authorize::endpoint).post(authorize::endpoint),
        )
        .route("/anmeldung", get(login::page).post(login::submit))
        .route("/token", post(token::exchange))
        .route("/userinfo", get(token::userinfo).post(token::userinfo))
        .route("/abmeldung", get(logout::endpoint).post(logout::endpoint))
        .route("/abmeldung/bestaetigen", post(logout::confirm))
        .route("/assets/servicekonto.css", get(pages::stylesheet))
        .route("/", get(pages::start))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(pages::not_found);
    pages::secure(routes, &state)
        .layer(DefaultBodyLimit::max(max_form))
        .with_state(state)
}
