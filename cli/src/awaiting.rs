//! `kopplung awaiting-receipt list|resend`: the messages of a running hub delivered
//! without a receipt past their procedure's receipt deadline, and sending them again
//! with their message ids unchanged, through its admin API.
//!
//! Standard output carries only the data (a line per message, ids, or JSON); counts and
//! confirmations go to standard error, as with `kopplung deadletters`.

use clap::Subcommand;

use crate::admin_api::{self, ListArgs, SendAgainArgs, text};

#[derive(Subcommand)]
pub enum AwaitingCommand {
    /// List the overdue messages, oldest first: application, receipt, procedure,
    /// message id, delivered at (the count on standard error). `--json`: the admin API's
    /// `{"awaiting_receipt": [...]}`.
    List(ListArgs),
    /// Send a delivered message without a receipt again, the stored message with the
    /// same message id. With `--procedure ID --all`: every overdue message of that
    /// procedure.
    Resend(SendAgainArgs),
}

pub async fn run(access: &admin_api::Access, command: AwaitingCommand) -> anyhow::Result<()> {
    let body = admin_api::call(access, |client, hub| match &command {
        AwaitingCommand::List(ListArgs { procedure, .. }) => {
            let request = client.get(format!("{hub}/api/v1/admin/awaiting-receipt"));
            match procedure {
                Some(procedure) => request.query(&[("procedure", procedure)]),
                None => request,
            }
        }
        AwaitingCommand::Resend(SendAgainArgs {
            procedure: Some(procedure),
            ..
        }) => client.post(format!(
            "{hub}/api/v1/admin/procedures/{procedure}/resend-overdue"
        )),
        AwaitingCommand::Resend(SendAgainArgs { application_id, .. }) => client.post(format!(
            "{hub}/api/v1/admin/applications/{}/resend",
            application_id.as_deref().unwrap_or_default()
        )),
    })
    .await?;
    match command {
        AwaitingCommand::List(ListArgs { json: true, .. }) => println!("{body:#}"),
        AwaitingCommand::List(ListArgs { ids, .. }) => {
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
        AwaitingCommand::Resend(args) => {
            admin_api::print_sent(&body, &args, ("resent", "overdue message(s)"))
        }
    }
    Ok(())
}
