//! `kopplung demo`: the hub with the demo configuration on SQLite, the reference
//! procedures, the citizens' portal and the demo Servicekonto (identity provider),
//! creating the demo PKI and secrets if missing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kopplung_router::config::Config;
use kopplung_router::hub;

use crate::common::{ensure_secret, init_pki, load_config, shutdown_signal};

/// The simulator's view of a hub configuration.
pub fn simulator_config(
    config: &Config,
    hub_urls: Vec<String>,
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
        // The procedures trust the hub's certificate in force; `procedure-sim
        // --hub-certificates` gives them a bundle of their own (rotation).
        hub_certificates: config.pki_dir.join("hub.crt"),
        data_dir: config.data_dir.clone(),
        mappings: config.mappings_dir.clone(),
        amqp_url: amqp,
        hub_urls,
        // The procedures' own outbox; `procedure-sim --state-dir` puts it elsewhere.
        state_dir: config.data_dir.join("procedure-sim"),
        only,
        decision_delay: Some(std::time::Duration::from_secs(5)),
        ask_first: Vec::new(),
    })
}

/// The configuration with FIT-Connect's metadata schema in place (copied from `given`
/// if missing), or without FIT-Connect if there is none: the schema is FIT-Connect's
/// file, which kopplung does not ship.
fn with_metadata_schema(mut config: Config, given: Option<&Path>) -> anyhow::Result<Config> {
    let Some(fitconnect) = &config.file.fitconnect else {
        return Ok(config);
    };
    let target = config.data_dir.join(&fitconnect.metadata_schema);
    if target.is_file() {
        return Ok(config);
    }
    if let Some(source) = given {
        if let Some(parent) = target.parent() {
            kopplung_web::files::create_private_dir(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let schema = std::fs::read(source).with_context(|| {
            format!(
                "reading the FIT-Connect metadata schema {}",
                source.display()
            )
        })?;
        // Private like everything of the data directory but certificates.
        kopplung_web::files::write_private_file(&target, &schema)
            .with_context(|| format!("writing {}", target.display()))?;
        return Ok(config);
    }
    println!(
        "FIT-Connect is off in this demo: its metadata schema {} is missing (scripts/demo installs FIT-Connect's Python SDK, which carries it; or pass --fitconnect-metadata-schema).",
        target.display()
    );
    config.file.fitconnect = None;
    for procedure in &mut config.routing.procedures {
        procedure.fitconnect = None;
    }
    Ok(config)
}

/// The procedure that asks a question before it decides, in the demo.
const DEMO_ASKS_FIRST: &str = "leipzig-maengel";

/// `kopplung demo`'s options.
#[derive(clap::Args)]
pub struct DemoArgs {
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
    /// The demo Servicekonto's configuration (its data: <data-dir>/idp).
    #[arg(long, default_value = "config/idp.toml")]
    idp_config: PathBuf,
    /// Do not start the demo Servicekonto (identity provider).
    #[arg(long)]
    no_idp: bool,
    /// FIT-Connect's metadata schema 1.0.0, copied into the data directory where
    /// `[fitconnect] metadata_schema` expects it (scripts/demo passes the copy that
    /// FIT-Connect's Python SDK carries). Without it and without the file there, the
    /// demo runs without FIT-Connect.
    #[arg(long)]
    fitconnect_metadata_schema: Option<PathBuf>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let data_dir: &Path = &args.data_dir;
    let listen = args.listen;
    let with_procedures = !args.no_procedures;
    let portal = (!args.no_portal).then_some((args.portal_listen, args.portal_config));
    let config = load_config(&args.config, data_dir)?;
    kopplung_web::files::create_private_dir(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let written = init_pki(&config.pki_dir, &config)?;
    if written > 0 {
        println!("Demo PKI created in {}", config.pki_dir.display());
    }
    // Every secret file the configuration names (tokens of clients, operators and
    // procedures, clerk passwords), as `kopplung tokens init` writes them: the reference
    // procedures read their tokens from here.
    for secret in config.secret_files() {
        ensure_secret(&data_dir.join(&secret.file))?;
    }
    // After the secrets: `kopplung check` of the configuration finds them all even if
    // this run goes without FIT-Connect.
    let config = with_metadata_schema(config, args.fitconnect_metadata_schema.as_deref())?;
    let token_paths: Vec<PathBuf> = config
        .file
        .clients
        .iter()
        .filter_map(|client| client.token.file.as_ref())
        .map(|file| data_dir.join(file))
        .collect();
    let mut clerks = Vec::new();
    for clerk in &config.file.clerks {
        if let Some(file) = &clerk.password_file {
            clerks.push(format!(
                "  Inbox:   http://{}/inbox (clerk `{}`, password in {})\n",
                listen.unwrap_or(config.file.server.listen),
                clerk.id,
                data_dir.join(file).display()
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
    let loaded = crate::common::with_form_preview(hub::load(config)?)?;
    let token = token_paths
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<token file>".into());
    println!(
        "\nkopplung demo\n  API:     http://{listen}/api/v1/services\n  Token:   {token}\n  Broker:  {amqp} (applications wait in the outbox until it is reachable)\n\nSubmit a Mängelanzeige for Dresden:\n  curl -sS -X POST http://{listen}/api/v1/applications \\\n    -H \"Authorization: Bearer $(cat {token})\" -H 'Content-Type: application/json' \\\n    -d '{{\"service\":\"99999001000000\",\"region\":\"146120000000\",\"data\":{{\"kategorie\":\"strassenschaden\",\"beschreibung\":\"Tiefes Schlagloch vor der Schule\",\"ort\":{{\"strasse\":\"Königsbrücker Straße\",\"hausnummer\":\"12\"}}}}}}'\n"
    );
    println!("{}", transports_overview(&loaded.config));
    if !clerks.is_empty() {
        println!(
            "Clerk inbox for procedures without an interface:\n{}",
            clerks.concat()
        );
    }
    if let Some(file) = loaded
        .config
        .file
        .admin
        .as_ref()
        .and_then(|a| a.engineer_token_file.as_ref())
    {
        println!(
            "Workbench for integration engineers (edit and apply mappings):\n  http://{listen}/workbench (token in {})\n",
            data_dir.join(file).display()
        );
    }
    if let Some(fitconnect) = &loaded.config.file.fitconnect {
        let destinations = loaded
            .config
            .routing
            .procedures
            .iter()
            .filter(|p| p.fitconnect.is_some())
            .count();
        let senders = fitconnect.clients.iter().filter_map(|client| {
            let file = client.secret.file.as_ref()?;
            Some(format!(
                "  Sender:  {} (secret in {})
  Try:     target/fitconnect-venv/bin/python examples/fitconnect/send.py --hub http://{listen} --client {} --secret-file {}
",
                client.id,
                data_dir.join(file).display(),
                client.id,
                data_dir.join(file).display()
            ))
        });
        println!(
            "FIT-Connect (docs/fit-connect.md): {destinations} procedures are destinations.
  API:     http://{listen}/fitconnect/v1 (tokens: http://{listen}/fitconnect/token)
{}",
            senders.collect::<String>()
        );
    }
    // The citizens' portal: a client of the hub's API with its own token.
    let portal = match portal {
        Some((portal_listen, portal_config)) => {
            let mut settings = kopplung_portal::Settings::load(&portal_config)?;
            if !args.no_idp {
                demo_idp_secrets(&mut settings, &args.idp_config, data_dir)?;
            }
            let client = loaded
                .config
                .file
                .clients
                .iter()
                .find(|c| c.id == "portal")
                .context("the demo configuration has no [[client]] with id \"portal\"")?;
            let token_file = client
                .token
                .file
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
    // The demo Servicekonto beside the portal: the identity provider it signs in at.
    let idp = if args.no_idp {
        None
    } else {
        let idp = crate::idp_sim::for_demo(&args.idp_config, data_dir)?;
        println!(
            "Servicekonto (Demo): {} (sign in as a fictitious person with a means of identification)\n",
            idp.config().issuer
        );
        Some(idp)
    };
    let (stop_procedures, procedures_stopped) = tokio::sync::watch::channel(false);
    let portal_stopped = procedures_stopped.clone();
    let idp = idp.map(|idp| {
        let mut stopped = procedures_stopped.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(e) = idp.run(stop).await {
                eprintln!("error: the demo Servicekonto stopped: {e}");
            }
        })
    });
    let procedures = if with_procedures {
        let mut sim =
            simulator_config(&loaded.config, vec![format!("http://{listen}")], Vec::new())?;
        // One procedure shows the conversation: Leipzig's Mängelanzeige asks first.
        sim.ask_first = vec![DEMO_ASKS_FIRST.to_owned()];
        println!("Reference procedures: verify every message and answer with signed receipts.");
        println!(
            "Leipzig's Mängelanzeige asks the citizen a question first and decides after the answer.\n"
        );
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
    if let Some(idp) = idp {
        let _ = idp.await;
    }
    if let Some(procedures) = procedures {
        let _ = procedures.await;
    }
    Ok(())
}

/// The portal signs in at the demo Servicekonto with the secret the demo wrote into
/// `<data-dir>/idp`, whatever data directory the demo runs with.
fn demo_idp_secrets(
    settings: &mut kopplung_portal::Settings,
    idp_config: &Path,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let idp = kopplung_idp_sim::config::IdpFile::read(idp_config)?;
    for provider in &mut settings.identity_providers {
        let client = idp
            .clients
            .iter()
            .find(|c| provider.issuer == idp.issuer && c.client_id == provider.client_id);
        if let Some(client) = client {
            provider.client_secret_file = data_dir.join("idp").join(&client.secret_file);
        }
    }
    Ok(())
}

/// The demo's procedures by transport and profile, in the order of the maturity levels
/// (`DeliveryConfig::NAMES`): what a visitor can try beside AMQP.
fn transports_overview(config: &Config) -> String {
    use kopplung_router::config::{DeliveryConfig, Envelope};
    let mut out = String::from("Procedures by transport (E-Government-Reife, see README.md):\n");
    for transport in DeliveryConfig::NAMES {
        for envelope in [Some(Envelope::Cms), Some(Envelope::Jose), None] {
            let ids: Vec<&str> = config
                .routing
                .procedures
                .iter()
                .filter(|p| p.delivery.transport() == *transport && p.envelope == envelope)
                .map(|p| p.id.as_str())
                .collect();
            let Some(first) = ids.first() else {
                continue;
            };
            let profile = match envelope {
                Some(Envelope::Cms) => " (cms)",
                Some(Envelope::Jose) => " (jose)",
                None => "",
            };
            let more = match ids.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            out.push_str(&format!(
                "  {:<14}{first}{more}\n",
                format!("{transport}{profile}")
            ));
        }
    }
    out
}
