//! A reference specialist procedure (Fachverfahren) for demos and for vendors to read:
//! it receives its messages the way its transport says — consumes its RabbitMQ queue,
//! answers the hub's HTTP POSTs, polls the pull API, or imports files from a folder —, opens each message exactly as
//! `docs/vendors.md` describes (decrypt, verify the hub's signature, validate the XML
//! against its schema), and answers with a signed receipt — accept, or reject with a
//! problem — and, later, a decision with a generated document. The decision is stored in
//! the procedure's own outbox before the message is acknowledged and sent, to the first
//! of the hub's instances that takes it, until one does (`outbox.rs`).
//!
//! It knows only what a vendor knows: its procedure id, transport (queue, URL or pull
//! token), envelope profile, its keys, the hub's CA and certificate, and the hub's URLs.
//! It reads those from the routing table, the PKI folder and the data directory for
//! convenience, not from the hub's internals; the transports are the hub's own list
//! (`kopplung_adapters::registry`), one module here for each it plays.
#![forbid(unsafe_code)]

mod amqp;
mod answer;
pub mod bescheid;
mod file;
mod http;
mod open;
mod outbox;
mod pull;
mod refused;
mod setup;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kopplung_adapters::registry::DeliveryConfig;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {message}", file.display())]
    Config { file: PathBuf, message: String },
    #[error(transparent)]
    Transform(#[from] kopplung_transformers::Error),
    #[error("outbox {}: {source}", path.display())]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the simulator needs to know.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The hub's routing table (procedures with queue, envelope, certificates).
    pub routing: PathBuf,
    /// The PKI folder with the procedures' keys and `ca.crt`.
    pub pki_dir: PathBuf,
    /// The hub's signing certificates the procedures trust, PEM (several during a
    /// rotation of the hub's key): `hub.crt` of the PKI folder unless told otherwise.
    /// Read again on SIGHUP, with the procedures' own keys.
    pub hub_certificates: PathBuf,
    /// The hub's data directory: pull procedures' `token_file`s are relative to it.
    pub data_dir: PathBuf,
    /// The mapping folders, to find each message type's schema.
    pub mappings: PathBuf,
    pub amqp_url: String,
    /// The base URLs of the hub's instances, e.g. `http://127.0.0.1:8080`, in the order
    /// they are tried: an answer goes to the first that takes it.
    pub hub_urls: Vec<String>,
    /// The procedure's own data directory: its outbox of answers not yet taken.
    pub state_dir: PathBuf,
    /// Only these procedures; all that have an interface (amqp, http, pull, file) if empty.
    pub only: Vec<String>,
    /// How long after the receipt the decision (Bescheid) follows; none if `None`.
    pub decision_delay: Option<Duration>,
    /// These procedures ask the citizen a question (Rückfrage) first, after the delay,
    /// and decide only once the citizen's answer has arrived.
    pub ask_first: Vec<String>,
}

/// Runs all simulated procedures until `shutdown` turns true.
pub async fn run(config: SimConfig, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
    let (procedures, shared) = setup::load(&config)?;
    let shared = Arc::new(shared);
    tracing::info!(
        procedures = procedures.len(),
        "reference procedures started"
    );
    let pending = shared.outbox.load()?;
    let procedures: Vec<Arc<setup::Procedure>> = procedures.into_iter().map(Arc::new).collect();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(reload_on_hangup(
        config.clone(),
        procedures.clone(),
        shared.clone(),
        shutdown.clone(),
    ));
    for procedure in procedures {
        // What an earlier run could not send goes first (over HTTP: no channel yet).
        for left in pending.iter().filter(|p| p.event.procedure == procedure.id) {
            tracing::info!(procedure = %procedure.id, receipt_id = %left.event.receipt_id, event = ?left.event.event, "pending answer from an earlier run");
            answer::deliver(procedure.clone(), shared.clone(), None, left.clone());
        }
        // Messages refused by an earlier run: perhaps they open now.
        tasks.spawn(refused::take_up(procedure.clone(), shared.clone()));
        let (shared, shutdown) = (shared.clone(), shutdown.clone());
        // `setup::load` kept only the procedures played here (see there).
        match &procedure.delivery {
            DeliveryConfig::Amqp(amqp) => {
                let (queue, url) = (amqp.queue.clone(), config.amqp_url.clone());
                tasks.spawn(amqp::consume(procedure, queue, shared, url, shutdown));
            }
            DeliveryConfig::Http(http) => {
                if let Some(listen) = setup::listen_address(&http.url) {
                    tasks.spawn(http::serve(procedure, listen, shared, shutdown));
                }
            }
            DeliveryConfig::Pull(_) => {
                if let Some(token) = procedure.api_token.clone() {
                    tasks.spawn(pull::poll(procedure, token, shared, shutdown));
                }
            }
            DeliveryConfig::File(_) => {
                tasks.spawn(file::import(procedure, shared, shutdown));
            }
            DeliveryConfig::Manual(_) | DeliveryConfig::FitConnect(_) => {}
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Reads the trust and the keys again on SIGHUP (a vendor's step in a rotation): the
/// hub's next certificate trusted beside the current one, the procedure's next key
/// beside the old. A broken file keeps what was in force. Then the messages kept in
/// `refused/messages/` are opened again (`refused.rs`).
async fn reload_on_hangup(
    config: SimConfig,
    procedures: Vec<Arc<setup::Procedure>>,
    shared: Arc<setup::Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP: trust and keys will not be reloaded");
        return;
    };
    loop {
        tokio::select! {
            _ = hangups.recv() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        match setup::reload(&config, &procedures, &shared) {
            Ok(()) => {
                tracing::info!(
                    hub_certificates = shared.trust().hub_certs.len(),
                    "trust and keys reloaded"
                );
                // What was refused for want of a certificate or key may open now.
                for procedure in &procedures {
                    tokio::spawn(refused::take_up(procedure.clone(), shared.clone()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reload refused; the previous trust and keys stay in force")
            }
        }
    }
}
