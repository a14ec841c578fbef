//! `kopplung awaiting-receipt list|resend`: the messages of a running hub delivered
//! without a receipt past their procedure's receipt deadline, and sending them again
//! with their message ids unchanged, through its admin API.
//!
//! Standard output carries only the data (a line per message, ids, or JSON); counts and
//! confirmations go to standard error, as with `kopplung deadletters`.

use clap::Subcommand;

use crate::admin_api::{self, text};

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

pub async fn run(access: &admin_api::Access, command: AwaitingCommand) -> anyhow::Result<()> {
    let body = admin_api::call(access, |client, hub| match &command {
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
    })
    .await?;
    match command {
        AwaitingCommand::List { json: true, .. } => println!("{body:#}"),
        AwaitingCommand::List { ids, .. } => {
            let overdue = admin_api::entries(&body, "awaiting_receipt");
            admin_api::print_listing(&overdue, ids, |id, message| {
                format!(
                    "{id}  {}  {}  message {}  delivered {}",
                    text(message, "receipt"),
                    text(message, "procedure"),
                    text(message, "message_id"),
                    text(message, "since"),
                )
            });
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
        AwaitingCommand::Resend {
            application_id,
            procedure,
            json,
            ..
        } => admin_api::print_sent(
            &body,
            json,
            application_id,
            procedure.as_deref(),
            ("resent", "overdue message(s)"),
        ),
    }
    Ok(())
}
