//! `kopplung procedure-sim`: the reference specialist procedures.

use std::path::PathBuf;

use clap::Args;

use crate::common::{load_config, shutdown_signal};
use crate::demo::simulator_config;

#[derive(Args)]
pub struct SimArgs {
    #[arg(long, default_value = "config/kopplung.toml")]
    config: PathBuf,
    /// The data directory whose PKI folder holds the procedures' keys.
    #[arg(long, default_value = "demo-data")]
    data_dir: PathBuf,
    /// The base URL of a hub instance for answers; repeat it for several instances
    /// (each answer goes to the first that takes it).
    #[arg(long = "hub", default_value = "http://127.0.0.1:8080")]
    hubs: Vec<String>,
    /// The procedures' own data directory: answers no hub has taken yet wait there
    /// (`<data-dir>/procedure-sim` by default).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Only these procedures (all AMQP procedures if none are given).
    #[arg(long)]
    only: Vec<String>,
    /// Seconds after the receipt until the decision (Bescheid) is sent.
    #[arg(long, default_value_t = 5)]
    decision_delay_secs: u64,
    /// The hub's signing certificates the procedures trust, PEM (the PKI folder's
    /// `hub.crt` by default). During a rotation of the hub's key the vendor adds the
    /// next one here and sends SIGHUP; the procedures' own next keys are read again then.
    #[arg(long)]
    hub_certificates: Option<PathBuf>,
    /// Send receipts only, no decisions.
    #[arg(long)]
    no_decisions: bool,
    /// This procedure asks the citizen a question first and decides once the answer
    /// arrived (repeatable).
    #[arg(long)]
    ask_first: Vec<String>,
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config, &args.data_dir)?;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let mut sim = simulator_config(&config, args.hubs, args.only)?;
    if let Some(dir) = args.state_dir {
        sim.state_dir = dir;
    }
    if let Some(file) = args.hub_certificates {
        sim.hub_certificates = file;
    }
    sim.ask_first = args.ask_first;
    sim.decision_delay =
        (!args.no_decisions).then(|| std::time::Duration::from_secs(args.decision_delay_secs));
    tokio::select! {
        outcome = kopplung_procedure_sim::run(sim, stopped) => outcome?,
        _ = shutdown_signal() => {}
    }
    Ok(())
}
