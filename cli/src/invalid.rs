//! `kopplung invalid list|reprocess`: applications whose mapping could not render their
//! message, and taking them up again once the mapping is fixed, through a running hub's
//! admin API.

use clap::Subcommand;

use crate::admin_api;

#[derive(Subcommand)]
pub enum InvalidCommand {
    /// List the invalid applications, newest first: application, receipt, service,
    /// procedure and why (the count on standard error).
    List {
        /// Only the application ids, one a line (for a shell loop).
        #[arg(long)]
        ids: bool,
    },
    /// Render and seal an invalid application again with the mapping now in force (fix
    /// and reload the mapping first); it keeps its message id.
    Reprocess { application_id: String },
}

pub async fn run(access: &admin_api::Access, command: InvalidCommand) -> anyhow::Result<()> {
    let body = admin_api::call(access, |client, hub| match &command {
        InvalidCommand::List { .. } => {
            client.get(format!("{hub}/api/v1/admin/applications?status=invalid"))
        }
        InvalidCommand::Reprocess { application_id } => client.post(format!(
            "{hub}/api/v1/admin/applications/{application_id}/reprocess"
        )),
    })
    .await?;
    match command {
        InvalidCommand::List { ids } => {
            let found = admin_api::entries(&body, "applications");
            for entry in &found {
                let id = entry["id"].as_str().unwrap_or_default();
                if ids {
                    println!("{id}");
                } else {
                    println!(
                        "{id}  {}  {}  {}  {}",
                        admin_api::text(entry, "receipt"),
                        admin_api::text(entry, "service"),
                        admin_api::text(entry, "procedure"),
                        admin_api::text(entry, "last_error")
                    );
                }
            }
            eprintln!("{} invalid application(s)", found.len());
        }
        InvalidCommand::Reprocess { application_id } => {
            eprintln!(
                "application {application_id} is rendered again with the mapping in force (same message id)"
            );
        }
    }
    Ok(())
}
