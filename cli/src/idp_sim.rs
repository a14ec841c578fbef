//! `kopplung idp-sim`: the demo Servicekonto, a simulated OpenID Connect identity provider.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use kopplung_core::clock::SystemClock;

use crate::common::shutdown_signal;

#[derive(Args)]
pub struct IdpArgs {
    /// The provider's configuration (issuer, listen, clients).
    #[arg(long, default_value = "config/idp.toml")]
    config: PathBuf,
    /// Its signing key, subject secret and the clients' secret files.
    #[arg(long, default_value = "demo-data/idp")]
    data_dir: PathBuf,
}

pub async fn run(args: IdpArgs) -> anyhow::Result<()> {
    let idp = kopplung_idp_sim::Idp::load(&args.config, &args.data_dir, Arc::new(SystemClock))?;
    println!(
        "Servicekonto (Demo): {}/.well-known/openid-configuration",
        idp.config().issuer
    );
    idp.run(shutdown_signal()).await?;
    Ok(())
}

/// The provider as `kopplung demo` runs it: its data in `<data-dir>/idp`, a random secret
/// written for every client whose secret file is missing (the portal reads it from there).
pub fn for_demo(
    config: &std::path::Path,
    data_dir: &std::path::Path,
) -> anyhow::Result<kopplung_idp_sim::Idp> {
    let idp_dir = data_dir.join("idp");
    let file = kopplung_idp_sim::config::IdpFile::read(config)?;
    for client in &file.clients {
        let path = idp_dir.join(&client.secret_file);
        if !path.is_file() {
            crate::common::write_token(&path)?;
        }
    }
    Ok(kopplung_idp_sim::Idp::load(
        config,
        &idp_dir,
        Arc::new(SystemClock),
    )?)
}
