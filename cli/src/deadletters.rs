//! `kopplung deadletters list|show|replay`: the dead letters of a running hub, through
//! its admin API.
//!
//! Standard output carries only the data (a line per dead letter, ids, or JSON); counts
//! and confirmations go to standard error, so that a shell loop over the output never
//! takes a summary for an id.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DeadlettersCommand {
    /// List the dead letters, oldest first: application, receipt, procedure, attempts,
    /// reason (the count on standard error).
    List {
        /// Only the dead letters of this procedure.
        #[arg(long)]
        procedure: Option<String>,
        /// The admin API's JSON (`{"dead_letters": [...]}`) and nothing else.
        #[arg(long, conflicts_with = "ids")]
        json: bool,
        /// Only the application ids, one a line (for a shell loop).
        #[arg(long)]
        ids: bool,
    },
    /// One dead letter in full (JSON).
    Show { application_id: String },
    /// Put a dead letter back into the outbox; it goes out with the same message id.
    /// With `--procedure ID --all`: every dead letter of that procedure.
    Replay {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        application_id: Option<String>,
        /// The procedure whose dead letters `--all` replays.
        #[arg(long, requires = "all")]
        procedure: Option<String>,
        /// Replay every dead letter of `--procedure`; prints the replayed ids.
        #[arg(long, requires = "procedure")]
        all: bool,
        /// The admin API's JSON answer and nothing else.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(hub: &str, token_file: &Path, command: DeadlettersCommand) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading the admin token {}", token_file.display()))?;
    let hub = hub.trim_end_matches('/');
    let base = format!("{hub}/api/v1/admin/deadletters");
    let client = reqwest::Client::new();
    let request = match &command {
        DeadlettersCommand::List { .. } => client.get(&base),
        DeadlettersCommand::Show { application_id } => {
            client.get(format!("{base}/{application_id}"))
        }
        DeadlettersCommand::Replay {
            procedure: Some(procedure),
            ..
        } => client.post(format!(
            "{hub}/api/v1/admin/procedures/{procedure}/deadletters/replay"
        )),
        DeadlettersCommand::Replay { application_id, .. } => client.post(format!(
            "{base}/{}/replay",
            application_id.as_deref().unwrap_or_default()
        )),
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
        DeadlettersCommand::List {
            procedure,
            json,
            ids,
        } => {
            let letters: Vec<_> = body["dead_letters"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|letter| {
                    procedure
                        .as_deref()
                        .is_none_or(|p| letter["procedure"].as_str() == Some(p))
                })
                .collect();
            if json {
                println!("{:#}", serde_json::json!({ "dead_letters": letters }));
                return Ok(());
            }
            for letter in &letters {
                let id = letter["application_id"].as_str().unwrap_or_default();
                if ids {
                    println!("{id}");
                    continue;
                }
                println!(
                    "{id}  {}  {}  attempts {}  {}",
                    letter["receipt"].as_str().unwrap_or_default(),
                    letter["procedure"].as_str().unwrap_or_default(),
                    letter["attempts"],
                    letter["reason"].as_str().unwrap_or_default()
                );
            }
            eprintln!("{} dead letter(s)", letters.len());
        }
        DeadlettersCommand::Show { .. } => println!("{body:#}"),
        DeadlettersCommand::Replay { json: true, .. } => println!("{body:#}"),
        DeadlettersCommand::Replay {
            procedure: Some(procedure),
            ..
        } => {
            let replayed = body["replayed"].as_array().cloned().unwrap_or_default();
            for id in &replayed {
                println!("{}", id.as_str().unwrap_or_default());
            }
            eprintln!(
                "replayed {} dead letter(s) of {procedure}: they go out again with their message ids",
                replayed.len()
            );
        }
        DeadlettersCommand::Replay { application_id, .. } => {
            println!("{}", application_id.unwrap_or_default());
            eprintln!("replayed: it goes out again with its message id");
        }
    }
    Ok(())
}
