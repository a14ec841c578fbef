//! `kopplung deadletters list|show|replay`: the dead letters of a running hub, through
//! its admin API.
//!
//! Standard output carries only the data, counts and confirmations go to standard error
//! (see `admin_api`).

use clap::Subcommand;

use crate::admin_api::{self, ListArgs, SendAgainArgs, text};

#[derive(Subcommand)]
pub enum DeadlettersCommand {
    /// List the dead letters, oldest first: application, receipt, procedure, attempts,
    /// reason (the count on standard error). `--json`: `{"dead_letters": [...]}`.
    List(ListArgs),
    /// One dead letter in full (JSON).
    Show { application_id: String },
    /// Put a dead letter back into the outbox; it goes out with the same message id.
    /// With `--procedure ID --all`: every dead letter of that procedure.
    Replay(SendAgainArgs),
}

pub async fn run(access: &admin_api::Access, command: DeadlettersCommand) -> anyhow::Result<()> {
    let body = admin_api::call(access, |client, hub| {
        let base = format!("{hub}/api/v1/admin/deadletters");
        match &command {
            DeadlettersCommand::List(_) => client.get(&base),
            DeadlettersCommand::Show { application_id } => {
                client.get(format!("{base}/{application_id}"))
            }
            DeadlettersCommand::Replay(SendAgainArgs {
                procedure: Some(procedure),
                ..
            }) => client.post(format!(
                "{hub}/api/v1/admin/procedures/{procedure}/deadletters/replay"
            )),
            DeadlettersCommand::Replay(SendAgainArgs { application_id, .. }) => {
                client.post(format!(
                    "{base}/{}/replay",
                    application_id.as_deref().unwrap_or_default()
                ))
            }
        }
    })
    .await?;
    match command {
        DeadlettersCommand::List(ListArgs {
            procedure,
            json,
            ids,
        }) => {
            let letters: Vec<_> = admin_api::entries(&body, "dead_letters")
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
            admin_api::print_listing(&letters, ids, |id, letter| {
                format!(
                    "{id}  {}  {}  attempts {}  {}",
                    text(letter, "receipt"),
                    text(letter, "procedure"),
                    letter["attempts"],
                    text(letter, "reason")
                )
            });
            eprintln!("{} dead letter(s)", letters.len());
        }
        DeadlettersCommand::Show { .. } => println!("{body:#}"),
        DeadlettersCommand::Replay(args) => {
            admin_api::print_sent(&body, &args, ("replayed", "dead letter(s)"))
        }
    }
    Ok(())
}
