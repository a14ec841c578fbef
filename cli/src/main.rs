//! `kopplung`: the integration hub's command line. One module per command; this file
//! only parses the arguments and dispatches.
#![forbid(unsafe_code)]

// jemalloc instead of glibc's malloc, also for OpenSSL, libxml2 and SQLite: about a fifth
// less CPU per application, a few MB more resident (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod admin_api;
mod audit;
mod awaiting;
mod catalogue;
mod check;
mod clerk;
mod common;
mod conformance;
mod deadletters;
mod demo;
mod idp_sim;
mod invalid;
mod keys;
mod logging;
mod mapping;
mod portal;
mod procedure_sim;
mod scaffold;
mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "kopplung",
    version,
    about = "Integration hub for German e-government"
)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub with a configuration.
    Serve {
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
        /// Overrides `server.listen` of the configuration.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run the demo: the hub with the demo configuration on SQLite, creating the
    /// demo PKI and an intake token in the data directory if they are missing.
    Demo(demo::DemoArgs),
    /// Run reference specialist procedures: consume their queues, verify each message
    /// as docs/vendors.md describes, and answer with signed receipts.
    ProcedureSim(procedure_sim::SimArgs),
    /// Run the citizens' portal (a client of a running hub's public API).
    Portal(portal::PortalArgs),
    /// Run the demo Servicekonto: a simulated OpenID Connect identity provider with
    /// fictitious test identities.
    IdpSim(idp_sim::IdpArgs),
    /// Send a procedure's receiver the conformance battery (genuine, redelivered,
    /// tampered, wrong or expired signer, schema-invalid, unknown type, oversized) over
    /// its own transport and grade each answer as docs/vendors.md demands; fails if any
    /// case failed.
    Conformance(conformance::ConformanceArgs),
    /// Check a configuration completely and exit. Offline unless `--connect`.
    Check {
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
        /// Also try the database, the broker and every HTTP endpoint of the routing
        /// table, report each as ok or failed, and fail if any failed.
        #[arg(long)]
        connect: bool,
    },
    /// The secret files the configuration names (tokens, clerk passwords, shared secrets).
    Tokens {
        #[command(subcommand)]
        command: tokens::TokensCommand,
    },
    /// Work on mappings: lint, test against fixtures, render an input.
    Mapping {
        #[arg(long, default_value = "config/kopplung.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        command: mapping::MappingCommand,
    },
    /// Dead letters of a running hub, through its admin API.
    Deadletters {
        #[command(flatten)]
        access: admin_api::Access,
        #[command(subcommand)]
        command: deadletters::DeadlettersCommand,
    },
    /// Applications of a running hub whose mapping could not render their message, and
    /// reprocessing them after the fix, through its admin API.
    Invalid {
        #[command(flatten)]
        access: admin_api::Access,
        #[command(subcommand)]
        command: invalid::InvalidCommand,
    },
    /// Messages of a running hub delivered without a receipt past their procedure's
    /// receipt deadline, and resending them, through its admin API.
    AwaitingReceipt {
        #[command(flatten)]
        access: admin_api::Access,
        #[command(subcommand)]
        command: awaiting::AwaitingCommand,
    },
    /// Manage the demo PKI.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// The audit trail (Laufzettel): verify it, list its checkpoints, export one
    /// application's entries.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Clerks of the clerk inbox (`/inbox`, procedures with `transport = "manual"`).
    Clerk {
        #[command(subcommand)]
        command: clerk::ClerkCommand,
    },
}

/// An operator's mistake (a missing file, an unreachable database) is said with its
/// causes, never with a stack trace, even where `RUST_BACKTRACE` is set.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error}");
            let mut causes = error.chain().skip(1).peekable();
            if causes.peek().is_some() {
                eprintln!("\nCaused by:");
                for cause in causes {
                    eprintln!("    {cause}");
                }
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init_logging(cli.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                config,
                data_dir,
                listen,
            } => serve(&config, &data_dir, listen).await,
            Command::Demo(args) => demo::run(args).await,
            Command::ProcedureSim(args) => procedure_sim::run(args).await,
            Command::Portal(args) => portal::run(args).await,
            Command::IdpSim(args) => idp_sim::run(args).await,
            Command::Conformance(args) => conformance::run(args).await,
            Command::Check {
                config,
                data_dir,
                connect,
            } => check::run(&config, &data_dir, connect).await,
            Command::Tokens { command } => tokens::run(command),
            Command::Mapping { config, command } => mapping::run(&config, command),
            Command::Deadletters { access, command } => deadletters::run(&access, command).await,
            Command::Invalid { access, command } => invalid::run(&access, command).await,
            Command::AwaitingReceipt { access, command } => awaiting::run(&access, command).await,
            Command::Audit { command } => audit::run(command).await,
            Command::Clerk { command } => clerk::run(command),
            Command::Keys { command } => keys::run(command),
        }
    })
}

/// `kopplung serve`: the hub until SIGINT or SIGTERM.
async fn serve(
    config: &std::path::Path,
    data_dir: &std::path::Path,
    listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let path = config;
    let config = common::load_config(path, data_dir)?;
    // A fresh data directory: say which command creates what is missing.
    let missing = check::missing_setup(&config, path);
    if !missing.is_empty() {
        anyhow::bail!("{}", missing.lines().join("\n"));
    }
    let listen = listen.unwrap_or(config.file.server.listen);
    let loaded = common::with_form_preview(kopplung_router::hub::load(config)?)?;
    kopplung_router::hub::run(loaded, listen, common::shutdown_signal()).await?;
    Ok(())
}
