//! `kopplung audit`: verify the trail, list its checkpoints, export one application's
//! Laufzettel. The store is opened read-only beside a running hub; nothing printed
//! carries personal data (ids, seqs, hashes, times only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kopplung_router::audit::checkpoint::{self, Checkpoint, CheckpointTrust};
use kopplung_router::audit::{AuditVerifier, laufzettel_json};
use kopplung_router::store::{PostgresStore, SqliteStore, Store, SystemClock};
use kopplung_transformers::Sealer;
use kopplung_transformers::laufzettel::sign_detached;
use kopplung_transformers::pki::PkiLayout;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole audit trail: the hash chain, every stored form, attachment,
    /// sealed message, receipt and document against its entry, and the signed
    /// checkpoints of the chain's head; exits non-zero naming the first problem.
    Verify {
        #[command(flatten)]
        target: AuditTarget,
        /// Checkpoints held outside the hub (saved from `audit checkpoints`, or an
        /// export): the chain must still hold each. May be given several times.
        #[arg(long)]
        checkpoints: Vec<PathBuf>,
        /// The CA certificate(s) the checkpoints' signatures are checked against
        /// (PEM); default `<pki_dir>/ca.crt`.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Print the stored checkpoints as a JSON array of {seq, hash, at, statement,
    /// signature}, to keep outside the hub.
    Checkpoints {
        #[command(flatten)]
        target: AuditTarget,
    },
    /// Print one application's Laufzettel as JSON with a detached CMS signature by the
    /// hub and the checkpoints that cover its entries: {"laufzettel": "<the signed JSON
    /// text>", "signature": "<base64 DER>", "checkpoints": [...]}.
    Export {
        /// The application id (UUID).
        id: uuid::Uuid,
        #[command(flatten)]
        target: AuditTarget,
    },
}

/// Where the audit trail is. The database is opened read-only, without the hub's lock,
/// so these commands run beside a running hub.
#[derive(Args)]
pub struct AuditTarget {
    /// The hub's data directory (holds `kopplung.db` and the PKI folder). Not needed
    /// with a `--config` whose store is PostgreSQL: then the CA comes from `--ca` (or an
    /// absolute `pki_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The hub's configuration: its store and its PKI folder (`pki_dir`: the CA for
    /// checking checkpoints, the hub's key for signing an export); without it the store
    /// is `<data-dir>/kopplung.db` and the PKI folder `<data-dir>/pki`.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    let target = match &command {
        AuditCommand::Verify { target, .. }
        | AuditCommand::Checkpoints { target }
        | AuditCommand::Export { target, .. } => target,
    };
    let data_dir = target.data_dir.as_deref();
    // Without a data directory the configuration's relative paths have no base; only
    // an absolute `pki_dir` is taken from it then.
    let config = match &target.config {
        Some(config) => Some(crate::common::load_config(
            config,
            data_dir.unwrap_or(Path::new(".")),
        )?),
        None => None,
    };
    let pki_dir = match (&config, data_dir) {
        (Some(config), Some(_)) => Some(config.pki_dir.clone()),
        (Some(config), None) => Some(config.file.pki_dir.clone()).filter(|p| p.is_absolute()),
        (None, Some(dir)) => Some(dir.join("pki")),
        (None, None) => None,
    };
    let store: Box<dyn Store> = match (
        config.as_ref().and_then(|c| c.file.store.as_ref()),
        data_dir,
    ) {
        (Some(shared), _) => Box::new(
            PostgresStore::connect(&shared.postgres_url, Arc::new(SystemClock))
                .await
                .context("opening the PostgreSQL store")?,
        ),
        (None, Some(data_dir)) => Box::new(
            SqliteStore::open_read_only(data_dir, Arc::new(SystemClock))
                .await
                .with_context(|| format!("opening the store in {}", data_dir.display()))?,
        ),
        (None, None) => bail!(
            "give --data-dir (the store is SQLite there), or --config naming a PostgreSQL store"
        ),
    };
    if let AuditCommand::Checkpoints { .. } = command {
        let checkpoints = store.audit_checkpoints().await?;
        println!(
            "{}",
            serde_json::to_string_pretty(&checkpoint::to_json_list(&checkpoints))?
        );
        return Ok(());
    }
    let (outside, ca) = match &command {
        AuditCommand::Verify {
            checkpoints, ca, ..
        } => (checkpoints.as_slice(), ca.clone()),
        _ => (&[][..], None),
    };
    let ca = ca.or_else(|| pki_dir.as_ref().map(|dir| PkiLayout::new(dir).ca_cert()));
    let trust = match &ca {
        Some(ca) => Some(CheckpointTrust::load(ca).context(
            "reading the CA certificate that checkpoint signatures are checked against (give --ca)",
        )?),
        None => {
            // The chain and the contents are still checked in full, and held against
            // every checkpoint; only who signed these cannot be, and the report counts
            // them as unchecked.
            eprintln!(
                "note: checkpoint signatures not checked: no CA certificate (give --ca FILE or --data-dir)"
            );
            None
        }
    };
    let mut verifier = AuditVerifier::new(trust);
    for file in outside {
        verifier.hold_outside(read_checkpoints(file)?, &file.display().to_string());
    }
    let report = store.verify_audit_with(verifier).await?;
    if !report.is_intact() {
        let refusal = match command {
            AuditCommand::Export { .. } => "; not signing an export of a broken trail",
            _ => "",
        };
        bail!("{}{refusal}", report.verdict());
    }
    let AuditCommand::Export { id, .. } = command else {
        println!("{}", report.verdict());
        for line in report.details() {
            println!("{line}");
        }
        return Ok(());
    };
    let entries = store.audit_entries(id).await?;
    if entries.is_empty() {
        bail!("no audit entries for application {id}");
    }
    let signer = match (&config, &pki_dir) {
        (Some(config), Some(_)) => kopplung_router::setup::load_sealer(config)?,
        (None, Some(pki_dir)) => {
            let pki = PkiLayout::new(pki_dir);
            Sealer::load(&pki.hub_cert(), &pki.hub_key())?
        }
        (_, None) => bail!("an export is signed with the hub's key: give --data-dir"),
    };
    let laufzettel = laufzettel_json(id, &entries, time::OffsetDateTime::now_utc())
        .context("encoding the Laufzettel")?;
    let signature = sign_detached(&signer, laufzettel.as_bytes())?;
    let checkpoints = covering(store.as_ref(), &entries, &signer).await?;
    let export = serde_json::json!({
        "laufzettel": laufzettel,
        "signature": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, signature),
        "checkpoints": checkpoint::to_json_list(&checkpoints),
    });
    println!("{}", serde_json::to_string_pretty(&export)?);
    Ok(())
}

/// The checkpoints an export carries for an application's `entries`: the first stored
/// one that covers them (names, for every chain they lie in, that chain's entry at or
/// after their last), the newest stored one, and one of the heads signed now (so that
/// every export carries one, also of entries newer than the last stored checkpoint).
async fn covering(
    store: &dyn Store,
    entries: &[kopplung_core::audit::AuditEntry],
    signer: &Sealer,
) -> anyhow::Result<Vec<Checkpoint>> {
    let stored = store.audit_checkpoints().await?;
    let mut chosen: Vec<Checkpoint> = Vec::new();
    let covers = |checkpoint: &Checkpoint| {
        entries.iter().all(|entry| {
            checkpoint
                .heads
                .iter()
                .any(|head| head.chain == entry.chain && head.seq >= entry.seq)
        })
    };
    // Stored in the order they were signed.
    let first = stored.iter().find(|c| covers(c));
    let newest = stored.last();
    for checkpoint in first.into_iter().chain(newest) {
        if !chosen.contains(checkpoint) {
            chosen.push(checkpoint.clone());
        }
    }
    let heads = store.audit_heads().await?;
    if !heads.is_empty() {
        let at = checkpoint::checkpoint_time(time::OffsetDateTime::now_utc());
        let statement = checkpoint::heads_statement(&heads, &at);
        let signature = sign_detached(signer, statement.as_bytes())?;
        chosen.push(Checkpoint {
            heads,
            at,
            signature,
        });
    }
    Ok(chosen)
}

fn read_checkpoints(file: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading checkpoints from {}", file.display()))?;
    checkpoint::parse_list(&text)
        .map_err(|e| anyhow::anyhow!("checkpoints in {}: {e}", file.display()))
}
