//! `kopplung`: the integration hub's command line.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use kopplung_router::config::Config;
use kopplung_router::hub;
use kopplung_transformers::pki::{
    PkiLayout, init_demo_pki, issue_procedure_signer, issue_rsa_recipient,
};

// Not `mod audit`: `src/audit/` is the library's module.
#[path = "cli/audit.rs"]
mod audit_cli;

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
    Demo {
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
        #[arg(long)]
        listen: Option<SocketAddr>,
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
        /// Do not start the reference procedures alongside the hub.
        #[arg(long)]
        no_procedures: bool,
        /// Where the citizens' portal listens.
        #[arg(long, default_value = "127.0.0.1:8081")]
        portal_listen: SocketAddr,
        /// Do not start the citizens' portal.
        #[arg(long)]
        no_portal: bool,
        /// The portal's configuration (limits, quotas, accounts, mail, payment).
        #[arg(long, default_value = "config/portal.toml")]
        portal_config: PathBuf,
    },
    /// Run reference specialist procedures: consume their queues, verify each message
    /// as docs/vendors.md describes, and answer with signed receipts.
    ProcedureSim {
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
        /// The data directory whose PKI folder holds the procedures' keys.
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
        /// The hub's base URL for receipts.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        hub: String,
        /// Only these procedures (all AMQP procedures if none are given).
        #[arg(long)]
        only: Vec<String>,
        /// Seconds after the receipt until the decision (Bescheid) is sent.
        #[arg(long, default_value_t = 5)]
        decision_delay_secs: u64,
        /// Send receipts only, no decisions.
        #[arg(long)]
        no_decisions: bool,
    },
    /// Run the citizens' portal (a client of a running hub's public API).
    Portal {
        /// The portal's configuration (limits, quotas, accounts, mail, payment).
        #[arg(long, default_value = "config/portal.toml")]
        config: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// The hub's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        hub: String,
        /// The file with the portal's intake-client token.
        #[arg(long, default_value = "demo-data/portal-token")]
        token_file: PathBuf,
        /// The portal's own data (accounts, sessions, drafts): `portal.sqlite` there.
        #[arg(long, default_value = "demo-data/portal")]
        data_dir: PathBuf,
        /// The `dist` folder of the npm package @kern-ux/native (`npm ci --prefix portal`).
        #[arg(long, default_value = kopplung_portal::DEFAULT_KERN_DIR)]
        kern_dir: PathBuf,
        /// The address citizens use (default: http://<listen>); https makes cookies
        /// Secure and turns on HSTS.
        #[arg(long)]
        public_url: Option<String>,
        /// Base URL of the payment provider (default: the portal's simulated one).
        #[arg(long)]
        payment_url: Option<String>,
    },
    /// Check a configuration completely and exit.
    Check {
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Work on mappings: lint, test against fixtures, render an input.
    Mapping {
        #[arg(long, default_value = "config/kopplung.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        command: MappingCommand,
    },
    /// Dead letters of a running hub, through its admin API.
    Deadletters {
        /// The hub's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
        hub: String,
        /// The file with the admin token.
        #[arg(long, default_value = "demo-data/admin-token", global = true)]
        token_file: PathBuf,
        #[command(subcommand)]
        command: DeadlettersCommand,
    },
    /// Manage the demo PKI.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit trail (Laufzettel): verify it, list its checkpoints, export one
    /// application's entries.
    Audit {
        #[command(subcommand)]
        command: audit_cli::AuditCommand,
    },
    /// Clerks of the clerk inbox (`/inbox`, procedures with `transport = "manual"`).
    Clerk {
        #[command(subcommand)]
        command: ClerkCommand,
    },
}

#[derive(Subcommand)]
enum ClerkCommand {
    /// Read a password (one line) from standard input and print its argon2id PHC
    /// string, for `password_argon2` of a `[[clerk]]` in kopplung.toml.
    HashPassword,
}

#[derive(Subcommand)]
enum MappingCommand {
    /// Find template references to fields the form does not define, and form fields
    /// the template never uses.
    Lint {
        /// A service: its folder name or LeiKa key; all services if left out.
        service: Option<String>,
    },
    /// Render every fixture, compare it with the expected XML (canonically) and
    /// validate it against the schema.
    Test { service: Option<String> },
    /// Render one input file (a fixture input) and print the message.
    Render {
        service: String,
        #[arg(long)]
        input: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeadlettersCommand {
    /// List the dead letters: application, procedure, attempts, reason.
    List,
    /// One dead letter in full (JSON).
    Show { application_id: String },
    /// Put a dead letter back into the outbox; it goes out with the same message id.
    Replay { application_id: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a demo CA, the hub's signing certificate and one certificate per
    /// configured procedure (keeps files that exist).
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                config,
                data_dir,
                listen,
            } => serve(&config, &data_dir, listen).await,
            Command::Demo {
                data_dir,
                listen,
                config,
                no_procedures,
                portal_listen,
                no_portal,
                portal_config,
            } => {
                demo(
                    &config,
                    &data_dir,
                    listen,
                    !no_procedures,
                    (!no_portal).then_some((portal_listen, portal_config)),
                )
                .await
            }
            Command::Portal {
                config,
                listen,
                hub,
                token_file,
                data_dir,
                kern_dir,
                public_url,
                payment_url,
            } => {
                let settings = kopplung_portal::Settings::load(&config)?;
                let token = std::fs::read_to_string(&token_file)
                    .with_context(|| format!("reading {}", token_file.display()))?;
                let mut portal = kopplung_portal::PortalConfig::demo(
                    listen,
                    hub,
                    token.trim().to_owned(),
                    data_dir,
                    settings,
                );
                portal.kern_dir = kern_dir;
                if let Some(url) = public_url {
                    portal.public_url = url;
                }
                portal.payment_url = payment_url;
                kopplung_portal::run(portal, shutdown_signal()).await?;
                Ok(())
            }
            Command::ProcedureSim {
                config,
                data_dir,
                hub,
                only,
                decision_delay_secs,
                no_decisions,
            } => {
                let config = load_config(&config, &data_dir)?;
                let (_stop, stopped) = tokio::sync::watch::channel(false);
                let mut sim = simulator_config(&config, hub, only)?;
                sim.decision_delay =
                    (!no_decisions).then(|| std::time::Duration::from_secs(decision_delay_secs));
                tokio::select! {
                    outcome = kopplung_procedure_sim::run(sim, stopped) => outcome?,
                    _ = shutdown_signal() => {}
                }
                Ok(())
            }
            Command::Check { config, data_dir } => {
                let loaded = hub::load(load_config(&config, &data_dir)?)?;
                let problems = loaded.preparer.problems();
                let exposed = hub::exposed_files(&data_dir)?;
                for problem in &problems {
                    eprintln!("error: {problem}");
                }
                for file in &exposed {
                    eprintln!("error: {file}");
                }
                if !problems.is_empty() {
                    bail!("{} procedure(s) cannot receive messages", problems.len());
                }
                if !exposed.is_empty() {
                    bail!(
                        "{} file(s) or folder(s) of the data directory {} are open to other users",
                        exposed.len(),
                        data_dir.display()
                    );
                }
                println!(
                    "{}: valid ({} services, {} procedures, {} routes, {} municipalities)",
                    config.display(),
                    loaded.catalog.current().len(),
                    loaded.config.routing.procedures.len(),
                    loaded.config.routing.routes.len(),
                    loaded.regions.len()
                );
                Ok(())
            }
            Command::Mapping { config, command } => mapping_command(&config, command),
            Command::Deadletters {
                hub,
                token_file,
                command,
            } => deadletters_command(&hub, &token_file, command).await,
            Command::Audit { command } => audit_cli::run(command).await,
            Command::Clerk {
                command: ClerkCommand::HashPassword,
            } => {
                use kopplung_router::inbox::{MIN_PASSWORD_CHARS, hash_password};
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                let password = line.trim_end_matches(['\r', '\n']);
                if password.chars().count() < MIN_PASSWORD_CHARS {
                    bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
                }
                println!("{}", hash_password(password).map_err(anyhow::Error::msg)?);
                Ok(())
            }
            Command::Keys {
                command: KeysCommand::Init { dir, config },
            } => {
                let config = load_config(&config, Path::new("."))?;
                let written = init_pki(&dir, &config)?;
                println!(
                    "demo PKI in {}: {} files written, {} procedures",
                    dir.display(),
                    written,
                    config.routing.procedures.len()
                );
                Ok(())
            }
        }
    })
}

/// Loads the mappings `service` selects (all if `None`). Mappings that fail to load are
/// reported and counted, so one broken service does not hide the others.
fn select_mappings(
    config: &Path,
    service: Option<&str>,
) -> anyhow::Result<(Vec<kopplung_transformers::Mapping>, usize)> {
    use kopplung_transformers::mapping::{Mapping, MappingEnv};
    let config = load_config(config, Path::new("."))?;
    let regions = kopplung_router::regions::Regions::load(&config.regions_file)?;
    let env = MappingEnv::load(&config.mappings_dir, regions.names())?;
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&config.mappings_dir)
        .with_context(|| format!("reading {}", config.mappings_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("service.toml").is_file())
        .collect();
    folders.sort();
    let mut mappings = Vec::new();
    let mut failures = 0;
    for folder in folders {
        let name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        match Mapping::load(&folder, &env) {
            Ok(mapping) => {
                if service.is_none_or(|s| s == name || s == mapping.info.key) {
                    mappings.push(mapping);
                }
            }
            Err(e) => {
                if service.is_none_or(|s| s == name) {
                    eprintln!("error: {e}");
                    failures += 1;
                }
            }
        }
    }
    if let Some(service) = service
        && mappings.is_empty()
        && failures == 0
    {
        bail!(
            "no service `{service}` in {}",
            config.mappings_dir.display()
        );
    }
    Ok((mappings, failures))
}

fn mapping_command(config: &Path, command: MappingCommand) -> anyhow::Result<()> {
    use kopplung_transformers::fixtures;
    match command {
        MappingCommand::Lint { service } => {
            let (mappings, mut failures) = select_mappings(config, service.as_deref())?;
            for mapping in &mappings {
                let findings = mapping.lint();
                for finding in &findings {
                    eprintln!("error: {finding}");
                }
                failures += findings.len();
                if findings.is_empty() {
                    println!("ok   {} ({})", mapping.info.name, mapping.folder.display());
                }
            }
            if failures > 0 {
                bail!("{failures} problem(s)");
            }
            Ok(())
        }
        MappingCommand::Test { service } => {
            let (mappings, mut failures) = select_mappings(config, service.as_deref())?;
            let mut passed = 0;
            for mapping in &mappings {
                let list = fixtures::fixtures_of(mapping)?;
                if list.is_empty() {
                    eprintln!(
                        "error: {}: no fixtures",
                        mapping.folder.join("fixtures").display()
                    );
                    failures += 1;
                }
                for fixture in list {
                    match fixtures::run(mapping, &fixture) {
                        Ok(()) => {
                            passed += 1;
                            println!("ok   {} / {}", mapping.info.name, fixture.name);
                        }
                        Err(failure) => {
                            failures += 1;
                            eprintln!("FAIL {} / {}\n{failure}", mapping.info.name, fixture.name);
                        }
                    }
                }
            }
            println!("{passed} passed, {failures} failed");
            if failures > 0 {
                bail!("{failures} fixture(s) failed");
            }
            Ok(())
        }
        MappingCommand::Render { service, input } => {
            let (mappings, failures) = select_mappings(config, Some(&service))?;
            let Some(mapping) = mappings.first().filter(|_| failures == 0) else {
                bail!("service `{service}` could not be loaded");
            };
            match fixtures::render_input(mapping, &input) {
                Ok(xml) => {
                    print!("{xml}");
                    Ok(())
                }
                Err(failure) => bail!("{failure}"),
            }
        }
    }
}

async fn deadletters_command(
    hub: &str,
    token_file: &Path,
    command: DeadlettersCommand,
) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading the admin token {}", token_file.display()))?;
    let base = format!("{}/api/v1/admin/deadletters", hub.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let request = match &command {
        DeadlettersCommand::List => client.get(&base),
        DeadlettersCommand::Show { application_id } => {
            client.get(format!("{base}/{application_id}"))
        }
        DeadlettersCommand::Replay { application_id } => {
            client.post(format!("{base}/{application_id}/replay"))
        }
    };
    let response = request
        .bearer_auth(token.trim())
        .send()
        .await
        .with_context(|| format!("reaching the hub at {hub}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        bail!(
            "the hub answered {status}: {}",
            body["detail"]
                .as_str()
                .or(body["title"].as_str())
                .unwrap_or("")
        );
    }
    match command {
        DeadlettersCommand::List => {
            let letters = body["dead_letters"].as_array().cloned().unwrap_or_default();
            for letter in &letters {
                println!(
                    "{}  {}  {}  attempts {}  {}",
                    letter["application_id"].as_str().unwrap_or_default(),
                    letter["receipt"].as_str().unwrap_or_default(),
                    letter["procedure"].as_str().unwrap_or_default(),
                    letter["attempts"],
                    letter["reason"].as_str().unwrap_or_default()
                );
            }
            println!("{} dead letter(s)", letters.len());
        }
        DeadlettersCommand::Show { .. } => println!("{body:#}"),
        DeadlettersCommand::Replay { application_id } => {
            println!("replayed {application_id}: it goes out again with its message id")
        }
    }
    Ok(())
}

/// Levels no `RUST_LOG` can lift, because the crate logs message contents there:
/// handlebars dumps the render context (the form data) at debug and trace; lapin logs a
/// returned message with its whole (sealed) body at warn.
const CONTENT_LOGGING_CRATES: [&str; 2] = ["handlebars=warn", "lapin=error"];

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for directive in CONTENT_LOGGING_CRATES {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_config(path: &Path, data_dir: &Path) -> anyhow::Result<Config> {
    if !path.is_file() {
        bail!(
            "configuration {} not found (run from the workspace root, or pass --config)",
            path.display()
        );
    }
    Ok(Config::load(path, data_dir)?)
}

/// Creates what is missing of the demo PKI: EC P-256 certificates for `cms` procedures,
/// RSA-3072 ones for `jose` procedures (RSA-OAEP-256). Returns the number of files written.
fn init_pki(dir: &Path, config: &Config) -> anyhow::Result<usize> {
    use kopplung_router::config::Envelope;
    let layout = PkiLayout::new(dir);
    let (jose, cms): (Vec<_>, Vec<_>) = config
        .routing
        .procedures
        .iter()
        .filter(|p| p.envelope.is_some())
        .partition(|p| p.envelope == Some(Envelope::Jose));
    let cms: Vec<String> = cms.iter().map(|p| p.id.clone()).collect();
    let mut written = init_demo_pki(&layout, &cms)?.len();
    for procedure in jose {
        written += issue_rsa_recipient(&layout, &procedure.id, 3072)?.len();
    }
    // The procedures' own signing keys, for their receipts (the reference procedure
    // and tests sign with them; a real procedure brings its own certificate).
    for procedure in config
        .routing
        .procedures
        .iter()
        .filter(|p| p.envelope.is_some())
    {
        written += issue_procedure_signer(&layout, &procedure.id)?.len();
    }
    Ok(written)
}

async fn serve(config: &Path, data_dir: &Path, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let config = load_config(config, data_dir)?;
    let listen = listen.unwrap_or(config.file.server.listen);
    let loaded = hub::load(config)?;
    hub::run(loaded, listen, shutdown_signal()).await?;
    Ok(())
}

/// The simulator's view of a hub configuration.
fn simulator_config(
    config: &Config,
    hub_url: String,
    only: Vec<String>,
) -> anyhow::Result<kopplung_procedure_sim::SimConfig> {
    let amqp = config
        .file
        .amqp
        .as_ref()
        .map(|a| a.url.clone())
        .context("the configuration has no [amqp] section")?;
    let base = config.source.parent().unwrap_or(Path::new("."));
    Ok(kopplung_procedure_sim::SimConfig {
        routing: base.join(&config.file.routing),
        pki_dir: config.pki_dir.clone(),
        data_dir: config.data_dir.clone(),
        mappings: config.mappings_dir.clone(),
        amqp_url: amqp,
        hub_url,
        only,
        decision_delay: Some(std::time::Duration::from_secs(5)),
    })
}

async fn demo(
    config: &Path,
    data_dir: &Path,
    listen: Option<SocketAddr>,
    with_procedures: bool,
    portal: Option<(SocketAddr, PathBuf)>,
) -> anyhow::Result<()> {
    let config = load_config(config, data_dir)?;
    kopplung_web::files::create_private_dir(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let written = init_pki(&config.pki_dir, &config)?;
    if written > 0 {
        println!("Demo PKI created in {}", config.pki_dir.display());
    }
    let mut token_paths = Vec::new();
    for client in &config.file.clients {
        if let Some(file) = &client.token_file {
            let path = data_dir.join(file);
            if !path.is_file() {
                write_token(&path)?;
            }
            token_paths.push(path);
        }
    }
    if let Some(admin) = &config.file.admin {
        for file in std::iter::once(&admin.token_file).chain(&admin.auditor_token_file) {
            let path = data_dir.join(file);
            if !path.is_file() {
                write_token(&path)?;
            }
        }
    }
    // The procedures' tokens for the hub's API (claim-check downloads): the reference
    // procedures read them from here.
    for procedure in &config.routing.procedures {
        if let Some(file) = &procedure.token_file {
            let path = data_dir.join(file);
            if !path.is_file() {
                write_token(&path)?;
            }
        }
    }
    // The clerk inbox's demo clerks: a random password, like the tokens.
    let mut clerks = Vec::new();
    for clerk in &config.file.clerks {
        if let Some(file) = &clerk.password_file {
            let path = data_dir.join(file);
            if !path.is_file() {
                write_token(&path)?;
            }
            clerks.push(format!(
                "  Inbox:   http://{}/inbox (clerk `{}`, password in {})\n",
                listen.unwrap_or(config.file.server.listen),
                clerk.id,
                path.display()
            ));
        }
    }
    let listen = listen.unwrap_or(config.file.server.listen);
    let amqp = config
        .file
        .amqp
        .as_ref()
        .map(|a| a.redacted_url())
        .unwrap_or_else(|| "none".into());
    let loaded = hub::load(config)?;
    let token = token_paths
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<token file>".into());
    println!(
        "\nkopplung demo\n  API:     http://{listen}/api/v1/services\n  Token:   {token}\n  Broker:  {amqp} (applications wait in the outbox until it is reachable)\n\nSubmit a Mängelanzeige for Dresden:\n  curl -sS -X POST http://{listen}/api/v1/applications \\\n    -H \"Authorization: Bearer $(cat {token})\" -H 'Content-Type: application/json' \\\n    -d '{{\"service\":\"99999001000000\",\"region\":\"146120000000\",\"data\":{{\"kategorie\":\"strassenschaden\",\"beschreibung\":\"Tiefes Schlagloch vor der Schule\",\"ort\":{{\"strasse\":\"Königsbrücker Straße\",\"hausnummer\":\"12\"}}}}}}'\n"
    );
    if !clerks.is_empty() {
        println!(
            "Clerk inbox for procedures without an interface:\n{}",
            clerks.concat()
        );
    }
    // The citizens' portal: a client of the hub's API with its own token.
    let portal = match portal {
        Some((portal_listen, portal_config)) => {
            let settings = kopplung_portal::Settings::load(&portal_config)?;
            let client = loaded
                .config
                .file
                .clients
                .iter()
                .find(|c| c.id == "portal")
                .context("the demo configuration has no [[client]] with id \"portal\"")?;
            let token_file = client
                .token_file
                .as_ref()
                .map(|f| data_dir.join(f))
                .context("the portal client has no token_file")?;
            let token = std::fs::read_to_string(&token_file)
                .with_context(|| format!("reading {}", token_file.display()))?;
            let portal = kopplung_portal::PortalConfig::demo(
                portal_listen,
                format!("http://{listen}"),
                token.trim().to_owned(),
                data_dir.join("portal"),
                settings,
            );
            portal.check_assets()?;
            let mail = if portal.settings.mail.viewer {
                format!(
                    "\n  Its mails are not sent: read them at http://{portal_listen}/entwicklung/post (development mail viewer)"
                )
            } else {
                String::new()
            };
            println!(
                "Citizens' portal: http://{portal_listen}/ (register an account, find a service, apply, pay, see the decision in the mailbox){mail}\n"
            );
            Some(portal)
        }
        None => None,
    };
    let (stop_procedures, procedures_stopped) = tokio::sync::watch::channel(false);
    let portal_stopped = procedures_stopped.clone();
    let procedures = if with_procedures {
        let sim = simulator_config(&loaded.config, format!("http://{listen}"), Vec::new())?;
        println!("Reference procedures: verify every message and answer with signed receipts.\n");
        Some(tokio::spawn(kopplung_procedure_sim::run(
            sim,
            procedures_stopped,
        )))
    } else {
        None
    };
    let portal = portal.map(|portal| {
        let mut stopped = portal_stopped.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(e) = kopplung_portal::run(portal, stop).await {
                eprintln!("error: the citizens' portal stopped: {e}");
            }
        })
    });
    hub::run(loaded, listen, shutdown_signal()).await?;
    let _ = stop_procedures.send(true);
    if let Some(portal) = portal {
        let _ = portal.await;
    }
    if let Some(procedures) = procedures {
        let _ = procedures.await;
    }
    Ok(())
}

fn write_token(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        kopplung_web::files::create_private_dir(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).context("drawing a token")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{}", hex::encode(bytes))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: intake stops, work in flight finishes");
}
