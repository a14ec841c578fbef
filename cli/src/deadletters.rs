//! `kopplung deadletters list|show|replay`: the dead letters of a running hub, through
//! its admin API.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DeadlettersCommand {
    /// List the dead letters: application, procedure, attempts, reason.
    List,
    /// One dead letter in full (JSON).
    Show { application_id: String },
    /// Put a dead letter back into the outbox; it goes out with the same message id.
    Replay { application_id: String },
}

pub async fn run(hub: &str, token_file: &Path, command: DeadlettersCommand) -> anyhow::Result<()> {
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
