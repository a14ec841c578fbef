//! `kopplung awaiting-receipt list|resend`: the messages of a running hub delivered
//! without a receipt past their procedure's receipt deadline, and sending them again
//! with their message ids unchanged, through its admin API.
//!
//! Standard output carries only the data (a line per message, ids, or JSON); counts and
//! confirmations go to standard error, as with `kopplung deadletters`.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum AwaitingCommand {
    /// List the overdue messages, oldest first: application, receipt, procedure,
    /// message id, delivered at (the count on standard error).
    List {
        /// Only the messages of this procedure.
        #[arg(long)]
        procedure: Option<String>,
        /// The admin API's JSON (`{"awaiting_receipt": [...]}`) and nothing else.
        #[arg(long, conflicts_with = "ids")]
        json: bool,
        /// Only the application ids, one a line (for a shell loop).
        #[arg(long)]
        ids: bool,
    },
    /// Send a delivered message without a receipt again, the stored message with the
    /// same message id. With `--procedure ID --all`: every overdue message of that
    /// procedure.
    Resend {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        application_id: Option<String>,
        /// The procedure whose overdue messages `--all` resends.
        #[arg(long, requires = "all")]
        procedure: Option<String>,
        /// Resend every overdue message of `--procedure`; prints the resent ids.
        #[arg(long, requires = "procedure")]
        all: bool,
        /// The admin API's JSON answer and nothing else.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(hub: &str, token_file: &Path, command: AwaitingCommand) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading the admin token {}", token_file.display()))?;
    let hub = hub.trim_end_matches('/');
    let client = reqwest::Client::new();
    let request = match &command {
        AwaitingCommand::List { procedure, .. } => {
            let request = client.get(format!("{hub}/api/v1/admin/awaiting-receipt"));
            match procedure {
                Some(procedure) => request.query(&[("procedure", procedure)]),
                None => request,
            }
        }
        AwaitingCommand::Resend {
            procedure: Some(procedure),
            ..
        } => client.post(format!(
            "{hub}/api/v1/admin/procedures/{procedure}/resend-overdue"
        )),
        AwaitingCommand::Resend { application_id, .. } => client.post(format!(
            "{hub}/api/v1/admin/applications/{}/resend",
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
        AwaitingCommand::List { json: true, .. } => println!("{body:#}"),
        AwaitingCommand::List { ids, .. } => {
            let overdue = body["awaiting_receipt"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for message in &overdue {
                let id = message["application_id"].as_str().unwrap_or_default();
                if ids {
                    println!("{id}");
                    continue;
                }
                println!(
                    "{id}  {}  {}  message {}  delivered {}",
                    message["receipt"].as_str().unwrap_or_default(),
                    message["procedure"].as_str().unwrap_or_default(),
                    message["message_id"].as_str().unwrap_or_default(),
                    message["since"].as_str().unwrap_or_default(),
                );
            }
            eprintln!(
                "{} message(s) delivered without a receipt past the deadline",
                overdue.len()
            );
            // The hub cannot tell a message the procedure never consumed (it is down,
            // the message waits in its queue) from one it dropped; a resend of the
            // former adds a copy to the queue.
            if !overdue.is_empty() {
                eprintln!(
                    "before resending, check the procedure consumes its queue (`rabbitmqctl list_queues -p <vhost> name messages consumers`): a message still queued is not lost, and a resend adds a copy (harmless: same message id)"
                );
            }
        }
        AwaitingCommand::Resend { json: true, .. } => println!("{body:#}"),
        AwaitingCommand::Resend {
            procedure: Some(procedure),
            ..
        } => {
            let resent = body["resent"].as_array().cloned().unwrap_or_default();
            for id in &resent {
                println!("{}", id.as_str().unwrap_or_default());
            }
            eprintln!(
                "resent {} overdue message(s) of {procedure}: they go out again with their message ids",
                resent.len()
            );
        }
        AwaitingCommand::Resend { application_id, .. } => {
            println!("{}", application_id.unwrap_or_default());
            eprintln!("resent: it goes out again with its message id");
        }
    }
    Ok(())
}
