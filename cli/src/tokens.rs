//! `kopplung tokens init`: every secret file the configuration names and that does not
//! exist yet, with random content, so that a new deployment needs no hand work before
//! `kopplung check`. Existing files are never touched: they may be in use already.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use kopplung_router::config::SecretKind;

use crate::common::{ensure_secret, load_config};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create each token, password and shared-secret file the configuration names that
    /// does not exist yet (mode 0600, folders 0700, 256 random bits from OpenSSL) and
    /// print each file with the SHA-256 to give as `token_sha256` where a hash is wanted.
    Init {
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
    },
}

pub fn run(command: TokensCommand) -> anyhow::Result<()> {
    let TokensCommand::Init { config, data_dir } = command;
    let config = load_config(&config, &data_dir)?;
    kopplung_web::files::create_private_dir(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let (mut created, mut kept) = (0, 0);
    for secret in config.secret_files() {
        let path = data_dir.join(&secret.file);
        let status = if ensure_secret(&path).with_context(|| secret.key.clone())? {
            created += 1;
            "created"
        } else {
            kept += 1;
            "kept   "
        };
        let what = match secret.kind {
            SecretKind::Token => format!("token_sha256 = \"{}\"", token_sha256(&path)?),
            SecretKind::Password => "a clerk's password: hand it to the clerk".into(),
            SecretKind::Shared => "a shared secret: hand it to the procedure's vendor".into(),
            SecretKind::Key => "a key of the hub: keep it, hand it to no one".into(),
        };
        println!("{status} {}  {what}  ({})", path.display(), secret.key);
    }
    println!(
        "{created} file(s) created, {kept} kept, in {}",
        data_dir.display()
    );
    Ok(())
}

/// The hex SHA-256 of the token in `path`, as the hub compares it (white space around
/// it trimmed).
fn token_sha256(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(openssl::sha::sha256(text.trim().as_bytes())))
}
