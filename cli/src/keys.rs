//! `kopplung keys`: the demo PKI, and the two steps of a staged rotation an operator
//! takes by command (docs/operations.md "Staged rotation"): activating the hub's next
//! signing certificate and recording a vendor's confirmation of its next certificate.
//! Both write the configuration (comments and order kept) and leave the switch to the
//! reload, so that every instance switches at the same configured moment.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    /// Activate the hub's next signing certificate: writes `[signing] activate_at`
    /// (now, or `--at`). Only after every vendor trusts it; then reload every instance.
    Activate {
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
        /// When it signs from (RFC 3339, e.g. 2026-12-10T06:00:00Z); default: now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Record that a procedure's vendor holds the key of its next encryption
    /// certificate: writes `next_confirmed = true` (and `next_activate_at` with `--at`)
    /// in its `[[procedure]]` of the routing table; then reload every instance.
    Confirm {
        #[arg(long, default_value = "config/kopplung.toml")]
        config: PathBuf,
        #[arg(long)]
        procedure: String,
        /// When the hub seals for it from (RFC 3339); default: from the reload.
        #[arg(long)]
        at: Option<String>,
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
        KeysCommand::Activate { config, at } => activate(&config, at.as_deref()),
        KeysCommand::Confirm {
            config,
            procedure,
            at,
        } => confirm(&config, &procedure, at.as_deref()),
    }
}

/// `--at`, or now; said back in RFC 3339 as it is written.
fn moment(at: Option<&str>) -> anyhow::Result<String> {
    let moment = match at {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).with_context(|| {
            format!("--at {text}: not an RFC 3339 time (e.g. 2026-12-10T06:00:00Z)")
        })?,
        None => OffsetDateTime::now_utc().replace_nanosecond(0)?,
    };
    Ok(moment.format(&Rfc3339)?)
}

fn activate(config_path: &Path, at: Option<&str>) -> anyhow::Result<()> {
    let config = load_config(config_path, Path::new("."))?;
    let Some(next) = config
        .file
        .signing
        .as_ref()
        .and_then(|s| s.next_certificate.clone())
    else {
        bail!(
            "{}: [signing] next_certificate: none is published, so there is nothing to activate (docs/operations.md, \"Staged rotation\", step 2)",
            config_path.display()
        );
    };
    let at = moment(at)?;
    edit(config_path, config_path, |doc| {
        doc["signing"]["activate_at"] = toml_edit::value(at.clone());
        Ok(())
    })?;
    println!(
        "{}: [signing] activate_at = \"{at}\": {} signs from then, after the reload",
        config_path.display(),
        next.display()
    );
    println!("next: kill -HUP <pid> on every instance; GET /api/v1/trust shows the stages");
    Ok(())
}

fn confirm(config_path: &Path, procedure: &str, at: Option<&str>) -> anyhow::Result<()> {
    let config = load_config(config_path, Path::new("."))?;
    let Some(entry) = config.procedure(procedure) else {
        bail!("--procedure {procedure}: no such procedure in the routing table");
    };
    if entry.certificate_next.is_none() {
        bail!(
            "--procedure {procedure}: certificate_next is not set, so there is nothing to confirm (docs/operations.md, \"Staged rotation\")"
        );
    }
    let at = at.map(|at| moment(Some(at))).transpose()?;
    let routing_path = config_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&config.file.routing);
    edit(config_path, &routing_path, |doc| {
        let tables = doc
            .get_mut("procedure")
            .and_then(|p| p.as_array_of_tables_mut())
            .context("no [[procedure]] tables")?;
        let table = tables
            .iter_mut()
            .find(|t| t.get("id").and_then(|id| id.as_str()) == Some(procedure))
            .with_context(|| format!("no [[procedure]] with id = \"{procedure}\""))?;
        table["next_confirmed"] = toml_edit::value(true);
        if let Some(at) = &at {
            table["next_activate_at"] = toml_edit::value(at.clone());
        }
        Ok(())
    })?;
    println!(
        "{}: [[procedure]] {procedure}: next_confirmed = true{}",
        routing_path.display(),
        at.map(|at| format!(", next_activate_at = \"{at}\""))
            .unwrap_or_default()
    );
    println!(
        "next: kill -HUP <pid> on every instance; the hub then seals for the next certificate"
    );
    Ok(())
}

/// Edits `file` (part of the configuration at `config`) in place, keeping its comments
/// and order, and loads the whole configuration again afterwards: a result that does
/// not load is put back.
fn edit(
    config: &Path,
    file: &Path,
    change: impl FnOnce(&mut toml_edit::DocumentMut) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let before =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut doc: toml_edit::DocumentMut = before
        .parse()
        .with_context(|| format!("{}: not TOML", file.display()))?;
    change(&mut doc).with_context(|| file.display().to_string())?;
    write_atomically(file, &doc.to_string())?;
    if let Err(problem) = load_config(config, Path::new(".")) {
        write_atomically(file, &before)?;
        return Err(problem.context(format!("{} left as it was", file.display())));
    }
    Ok(())
}

/// Writes beside the file and renames, so that a reload never reads half a file.
fn write_atomically(file: &Path, text: &str) -> anyhow::Result<()> {
    let temporary = file.with_extension("toml.new");
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    // The file keeps its mode (a configuration may be readable by its group only).
    let mode = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .permissions();
    std::fs::set_permissions(&temporary, mode)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, file).with_context(|| format!("replacing {}", file.display()))?;
    Ok(())
}
