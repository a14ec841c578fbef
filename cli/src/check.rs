//! `kopplung check`: the whole configuration and the data directory, without starting;
//! with `--connect` also whether the database, the broker and the procedures' HTTP
//! endpoints answer from this machine.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use kopplung_adapters::amqp::AmqpBroker;
use kopplung_router::config::{Config, DeliveryConfig};
use kopplung_router::hub;
use kopplung_router::store::{PostgresStore, SqliteStore, SystemClock};

use crate::common::load_config;

pub async fn run(config: &Path, data_dir: &Path, connect: bool) -> anyhow::Result<()> {
    let parsed = load_config(config, data_dir)?;
    let missing = missing_setup(&parsed, config);
    if !missing.is_empty() {
        for line in missing.lines() {
            eprintln!("{line}");
        }
        bail!(
            "{} file(s) the configuration needs are not in the data directory {}",
            missing.files.len(),
            data_dir.display()
        );
    }
    for warning in receipt_warnings(&parsed) {
        eprintln!("warning: {warning}");
    }
    let loaded = hub::load(parsed)?;
    let problems = loaded.keyring.problems();
    let exposed = hub::exposed_files(&loaded.config)?;
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    for file in &exposed {
        eprintln!("error: {file}");
    }
    // A staged rotation waiting for a vendor's confirmation or an activation time.
    for warning in loaded.keyring.rotation_warnings() {
        eprintln!("warning: {warning}");
    }
    // Reply queues a transport change left behind: not a mistake, but worth knowing.
    for entry in kopplung_router::reply_queues::left_behind(&loaded.config)? {
        eprintln!("warning: {entry}");
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
    let summary = format!(
        "{}: valid ({} services, {} procedures, {} routes, {} municipalities)",
        config.display(),
        loaded.catalog.current().len(),
        loaded.config.routing.procedures.len(),
        loaded.config.routing.routes.len(),
        loaded.regions.len()
    );
    let takeover = takeover(&loaded.config);
    if !connect {
        // A valid file says nothing about the network: say so, lest it be read as "ready".
        println!("{summary}; connections not tried (add --connect)");
        println!("{takeover}");
        return Ok(());
    }
    println!("{summary}");
    println!("{takeover}");
    let outcomes = probe_all(&loaded.config).await;
    let failed = outcomes
        .iter()
        .filter(|(_, result)| result.is_err())
        .count();
    for (what, result) in &outcomes {
        match result {
            Ok(()) => println!("ok      {what}"),
            Err(reason) => println!("failed  {what}: {reason}"),
        }
    }
    if failed > 0 {
        bail!("{failed} of {} connection(s) failed", outcomes.len());
    }
    println!("all {} connection(s) ok", outcomes.len());
    Ok(())
}

/// What a fresh data directory lacks (the secret files the configuration names, the
/// hub's certificate), and the commands that create it. Without this, an operator reads
/// "No such file or directory" and has to guess which command writes the file.
pub struct MissingSetup {
    pub files: Vec<String>,
    pub hints: Vec<String>,
}

impl MissingSetup {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// One line per missing file, then one per command.
    pub fn lines(&self) -> Vec<String> {
        let files = self.files.iter().map(|f| format!("error: {f}"));
        let hints = self.hints.iter().map(|h| format!("hint: {h}"));
        files.chain(hints).collect()
    }
}

pub fn missing_setup(config: &Config, config_path: &Path) -> MissingSetup {
    let data_dir = &config.data_dir;
    let mut files: Vec<String> = config
        .secret_files()
        .into_iter()
        .filter(|secret| !data_dir.join(&secret.file).exists())
        .map(|secret| {
            format!(
                "{} ({}) does not exist",
                data_dir.join(&secret.file).display(),
                secret.key
            )
        })
        .collect();
    let mut hints = Vec::new();
    if !files.is_empty() {
        hints.push(format!(
            "`kopplung tokens init --config {} --data-dir {}` creates the {} missing secret file(s)",
            config_path.display(),
            data_dir.display(),
            files.len()
        ));
    }
    let pkcs12 = config
        .file
        .signing
        .as_ref()
        .is_some_and(|signing| signing.pkcs12.is_some());
    let hub_certificate = config.pki_dir.join("hub.crt");
    if !pkcs12 && !hub_certificate.exists() {
        files.push(format!("{} does not exist", hub_certificate.display()));
        hints.push(format!(
            "`kopplung keys init --dir {} --config {}` creates a demo PKI (CA, the hub's and each procedure's certificates); in production put the hub's certificate and key there (docs/operations.md)",
            config.pki_dir.display(),
            config_path.display()
        ));
    }
    MissingSetup { files, hints }
}

/// Procedures that are sent sealed messages but whose receipts and events the hub could
/// not verify: every receipt of theirs would be refused.
fn receipt_warnings(config: &Config) -> Vec<String> {
    config
        .routing
        .procedures
        .iter()
        .filter(|p| p.envelope.is_some() && p.receipt_certificate.is_none())
        .map(|p| {
            format!(
                "procedure {}: no receipt_certificate in {}: its receipts and events will be refused (give the procedure's signing certificate, relative to {})",
                p.id,
                config.source.with_file_name(&config.file.routing).display(),
                config.pki_dir.display()
            )
        })
        .collect()
}

/// How long a claimed delivery stays an instance's, the floor of that lease, and how soon
/// a dead instance's claims are taken back: what an operator tuning the lease needs.
fn takeover(config: &Config) -> String {
    let delivery = &config.file.delivery;
    let floor = match config.lease_floor() {
        Some(floor) => format!(
            "at least {} s = 4/3 x the longest delivery attempt, {} s ({})",
            floor.minimum.as_secs(),
            floor.attempt.as_secs_f64(),
            floor.set_by
        ),
        None => "at least 5 s (no transport with a timeout)".into(),
    };
    let takeover = match config.file.store {
        Some(_) => format!(
            "a restarted instance takes its claims back at once; another instance takes over those of one silent for more than {} s ([delivery] heartbeat_timeout_secs)",
            delivery.heartbeat_timeout_secs
        ),
        None => "SQLite: the claims of a killed hub return when it restarts".into(),
    };
    format!(
        "lease: {} s ([delivery] lease_secs), {floor}; takeover: {takeover}",
        delivery.lease_secs
    )
}

/// Each destination the hub will need, and whether it answered: the store, the broker,
/// every HTTP endpoint of the routing table. One after the other: each has its own
/// timeout, and the list is short.
async fn probe_all(config: &Config) -> Vec<(String, Result<(), String>)> {
    let mut outcomes = Vec::new();
    let store = match config.file.store.as_ref() {
        Some(shared) => {
            let url = &shared.postgres_url;
            let what = match PostgresStore::target(url) {
                Ok(target) => format!("database PostgreSQL {target}"),
                Err(_) => "database PostgreSQL".to_string(),
            };
            let result = PostgresStore::probe(url).await;
            (what, result.map_err(|e| e.to_string()))
        }
        None => sqlite(&config.data_dir).await,
    };
    outcomes.push(store);
    if let Some(broker) = &config.file.amqp {
        let result = AmqpBroker::probe(broker).await.map_err(|e| e.to_string());
        outcomes.push((format!("broker {}", broker.redacted_url()), result));
    }
    for procedure in &config.routing.procedures {
        let id = &procedure.id;
        match &procedure.delivery {
            DeliveryConfig::Http(http) => {
                let timeout = Duration::from_millis(http.connect_timeout_ms);
                let what = format!("procedure {id}: http {}", http.url);
                outcomes.push((what, tcp(&http.url, timeout).await));
            }
            DeliveryConfig::File(file) => {
                let root = file.root(&config.data_dir);
                let what = format!("procedure {id}: exchange folder {}", root.display());
                let result = if root.is_dir() {
                    Ok(())
                } else {
                    Err("not there: create it, or mount the share".to_owned())
                };
                outcomes.push((what, result));
            }
            DeliveryConfig::Pull(pull) => {
                if let Some(url) = &pull.callback_url {
                    let what = format!("procedure {id}: callback {url}");
                    outcomes.push((what, tcp(url, Duration::from_secs(5)).await));
                }
            }
            _ => {}
        }
    }
    outcomes
}

/// SQLite: an existing `kopplung.db` must open; without one, `serve` creates it in the
/// data directory, which must then be there.
async fn sqlite(data_dir: &Path) -> (String, Result<(), String>) {
    let file = data_dir.join("kopplung.db");
    let what = format!("database SQLite {}", file.display());
    let result = if file.exists() {
        SqliteStore::open_read_only(data_dir, Arc::new(SystemClock))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else if data_dir.is_dir() {
        return (format!("{what} (created at the first start)"), Ok(()));
    } else {
        Err(format!(
            "the data directory {} does not exist",
            data_dir.display()
        ))
    };
    (what, result)
}

/// A TCP connection to the host and port of `url`: the procedure's server answers.
/// Nothing is sent; TLS and the HTTP exchange are the delivery's to try.
async fn tcp(url: &str, timeout: Duration) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed.host_str().ok_or("the URL has no host")?.to_string();
    let port = parsed
        .port_or_known_default()
        .ok_or("the URL has no port")?;
    match tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{host}:{port}: {e}")),
        Err(_) => Err(format!(
            "{host}:{port}: no answer within {} ms",
            timeout.as_millis()
        )),
    }
}
