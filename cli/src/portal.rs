//! `kopplung portal`: the citizens' portal, a client of a running hub's public API.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::common::shutdown_signal;

#[derive(Args)]
pub struct PortalArgs {
    /// The portal's configuration (limits, quotas, accounts, mail, payment).
    #[arg(long, default_value = "config/portal.toml")]
    config: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// The hub's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    hub: String,
    /// The file with the portal's intake-client token.
    #[arg(long, default_value = "demo-data/portal-token")]
    token_file: PathBuf,
    /// The portal's own data (accounts, sessions, drafts): `portal.sqlite` there.
    #[arg(long, default_value = "demo-data/portal")]
    data_dir: PathBuf,
    /// The `dist` folder of the npm package @kern-ux/native (`npm ci --prefix portal`).
    #[arg(long, default_value = kopplung_portal::DEFAULT_KERN_DIR)]
    kern_dir: PathBuf,
    /// The address citizens use (default: http://<listen>); https makes cookies
    /// Secure and turns on HSTS.
    #[arg(long)]
    public_url: Option<String>,
    /// Base URL of the payment provider (default: the portal's simulated one).
    #[arg(long)]
    payment_url: Option<String>,
}

pub async fn run(args: PortalArgs) -> anyhow::Result<()> {
    let settings = kopplung_portal::Settings::load(&args.config)?;
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("reading {}", args.token_file.display()))?;
    let mut portal = kopplung_portal::PortalConfig::demo(
        args.listen,
        args.hub,
        token.trim().to_owned(),
        args.data_dir,
        settings,
    );
    portal.kern_dir = args.kern_dir;
    if let Some(url) = args.public_url {
        portal.public_url = url;
    }
    portal.payment_url = args.payment_url;
    kopplung_portal::run(portal, shutdown_signal()).await?;
    Ok(())
}
