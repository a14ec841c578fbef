//! `kopplung keys init`: the demo PKI.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::common::{init_pki, load_config};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a demo CA, the hub's signing certificate and one certificate per
    /// configured procedure (keeps files that exist).
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
    },
}

pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Init { dir, config } => {
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
}
