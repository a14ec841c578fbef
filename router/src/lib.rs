//! kopplung's router: intake, durable store, routing by LeiKa key and ARS, and the
//! outbox that drives each application through the transformers to an adapter.
#![forbid(unsafe_code)]

mod answer_channels;
pub mod answer_folders;
pub mod api;
pub mod auth;
pub mod auto_resend;
pub mod catalog;
pub mod config;
pub mod console;
pub mod context;
pub mod destinations;
pub mod fitconnect;
pub mod hub;
pub mod inbox;
pub mod instance;
pub mod metrics;
pub mod regions;
pub mod reload;
pub mod reply_queues;
pub mod retention;
pub mod routing;
pub mod setup;
pub mod topology;
pub mod workbench;

/// The audit trail's rules live in the domain core.
pub use kopplung_core::audit;

/// The store's contract (core), its backends and the clock they stamp times by.
pub mod store {
    pub use kopplung_core::store::*;
    pub use kopplung_core::{Clock, SystemClock};
    pub use kopplung_store::{PostgresStore, SqliteStore};
}

use std::path::PathBuf;

/// Errors of starting and running the router. Delivery problems are not errors here:
/// they are outcomes recorded on the application.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration {}: {message}", file.display())]
    Config { file: PathBuf, message: String },
    /// Every problem `Config::load` found, each naming its file and key.
    #[error("configuration {0}")]
    Invalid(config::Problems),
    /// Mappings that fail what `mapping lint` and `mapping test` check, every problem
    /// listed; none of the loaded mappings is put in force.
    #[error("{} problem(s) in the mappings, none put in force:\n  {}", .0.len(), .0.join("\n  "))]
    Mappings(Vec<String>),
    #[error(transparent)]
    Transform(#[from] kopplung_transformers::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Pipeline(#[from] kopplung_pipeline::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}
