//! What several commands share: loading the configuration and its mappings, secrets on disk, the demo
//! PKI, the shutdown signal.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kopplung_router::config::Config;
use kopplung_transformers::pki::{
    PkiLayout, init_demo_pki, issue_destination_key, issue_procedure_signer, issue_rsa_recipient,
};

pub fn load_config(path: &Path, data_dir: &Path) -> anyhow::Result<Config> {
    if !path.is_file() {
        bail!(
            "configuration {} not found (run from the workspace root, or pass --config)",
            path.display()
        );
    }
    Ok(Config::load(path, data_dir)?)
}

/// Creates what is missing of the demo PKI: EC P-256 certificates for `cms` procedures,
/// RSA-3072 ones for `jose` procedures (RSA-OAEP-256). Returns the number of files written.
pub fn init_pki(dir: &Path, config: &Config) -> anyhow::Result<usize> {
    use kopplung_router::config::Envelope;
    let layout = PkiLayout::new(dir);
    let (jose, cms): (Vec<_>, Vec<_>) = config
        .routing
        .procedures
        .iter()
        .filter(|p| p.envelope.is_some())
        .partition(|p| p.envelope == Some(Envelope::Jose));
    let cms: Vec<String> = cms.iter().map(|p| p.id.to_string()).collect();
    let mut written = init_demo_pki(&layout, &cms)?.len();
    for procedure in jose {
        written += issue_rsa_recipient(&layout, procedure.id.as_str(), 3072)?.len();
    }
    // The procedures' own signing keys, for their receipts (the reference procedure
    // and tests sign with them; a real procedure brings its own certificate).
    for procedure in config
        .routing
        .procedures
        .iter()
        .filter(|p| p.envelope.is_some())
    {
        written += issue_procedure_signer(&layout, procedure.id.as_str())?.len();
    }
    // The keys the hub holds for FIT-Connect destinations (RSA-4096: a few seconds
    // each, once). A destination with its own key files brings them.
    for procedure in &config.routing.procedures {
        if let Some(offer) = &procedure.fitconnect
            && offer.key.is_none()
        {
            written += issue_destination_key(&layout, procedure.id.as_str())?.len();
        }
    }
    Ok(written)
}

/// A new random token (256 bits, hex) in a new file of mode 0600.
pub fn write_token(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        kopplung_web::files::create_private_dir(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).context("drawing a token")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{}", hex::encode(bytes))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `path` with a new random token unless something is there already (a file, or a
/// dangling link: never replaced, it may be in use). Whether it was created.
pub fn ensure_secret(path: &Path) -> anyhow::Result<bool> {
    if path.symlink_metadata().is_ok() {
        return Ok(false);
    }
    // `write_token` opens with create_new: a file that appeared meanwhile is an error,
    // never overwritten.
    write_token(path)?;
    Ok(true)
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: intake stops, work in flight finishes");
}

/// Loads the mappings `service` selects (all if `None`). Mappings that fail to load are
/// reported and counted, so one broken service does not hide the others.
pub fn select_mappings(
    config: &Path,
    service: Option<&str>,
) -> anyhow::Result<(Vec<kopplung_transformers::Mapping>, usize)> {
    use kopplung_transformers::mapping::{Mapping, MappingEnv};
    let config = load_config(config, Path::new("."))?;
    let regions = kopplung_router::regions::Regions::load(&config.regions_file)?;
    let env = MappingEnv::load(&config.mappings_dir, regions.names())?;
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&config.mappings_dir)
        .with_context(|| format!("reading {}", config.mappings_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("service.toml").is_file())
        .collect();
    folders.sort();
    let mut mappings = Vec::new();
    let mut failures = 0;
    for folder in folders {
        let name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        match Mapping::load(&folder, &env) {
            Ok(mapping) => {
                if service.is_none_or(|s| s == name || s == mapping.info.key) {
                    mappings.push(mapping);
                }
            }
            Err(e) => {
                if service.is_none_or(|s| s == name) {
                    eprintln!("error: {e}");
                    failures += 1;
                }
            }
        }
    }
    if let Some(service) = service
        && mappings.is_empty()
        && failures == 0
    {
        bail!(
            "no service `{service}` in {}",
            config.mappings_dir.display()
        );
    }
    Ok((mappings, failures))
}

/// The portal's rendering of a form, for the hub's workbench: the hub defines the trait,
/// the portal renders, and only the binary knows both (the hub must not depend on a
/// front end).
struct PortalFormPreview(kopplung_portal::FormPreviewer);

impl kopplung_router::workbench::FormPreview for PortalFormPreview {
    fn render(&self, form: &kopplung_transformers::FormDefinition) -> Result<String, String> {
        self.0.render(form).map_err(|e| e.to_string())
    }
}

/// The hub as `load` returns it, with the portal's form preview handed to the workbench.
pub fn with_form_preview(
    mut loaded: kopplung_router::hub::Loaded,
) -> anyhow::Result<kopplung_router::hub::Loaded> {
    let previewer = kopplung_portal::FormPreviewer::new().context("the portal's form preview")?;
    loaded.form_preview = Some(std::sync::Arc::new(PortalFormPreview(previewer)));
    Ok(loaded)
}
