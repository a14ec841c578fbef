//! `transport = "file"`: imports the hub's files from the `outgoing` folder and leaves
//! the signed receipts in the `incoming` folder, as docs/vendors.md ("File drop")
//! describes. No network at all: the decision goes the same way.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kopplung_adapters::file::Manifest;
use tokio::sync::watch;

use crate::answer::{later_decide, sign};
use crate::open::{Outcome, open};
use crate::outbox::leave_answer;
use crate::refused;
use crate::setup::{Folders, Procedure, Shared};

/// Looks into the outgoing folder every half second until `shutdown`; imports each
/// message whose manifest is there, oldest name first.
pub(crate) async fn import(
    procedure: Arc<Procedure>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(folders) = procedure.folders.clone() else {
        return;
    };
    // The procedure's side sets up the exchange folder; the hub only writes into it.
    for dir in [&folders.outgoing, &folders.incoming] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::error!(procedure = %procedure.id, folder = %dir.display(), error = %e, "cannot create the exchange folder");
            return;
        }
    }
    tracing::info!(procedure = %procedure.id, folder = %folders.outgoing.display(), "importing files");
    // Messages that cannot be imported now: said once, not at every look.
    let mut waiting = HashSet::new();
    while !*shutdown.borrow() {
        for manifest in manifests(&folders.outgoing) {
            match import_one(&procedure, &shared, &folders, &manifest).await {
                Ok(()) => {
                    waiting.remove(&manifest);
                }
                Err(Outcome::TryLater(reason)) => {
                    if waiting.insert(manifest.clone()) {
                        tracing::warn!(procedure = %procedure.id, file = %manifest.display(), %reason, "not imported yet");
                    }
                }
                Err(Outcome::Refused(reason)) => set_aside(&procedure, &shared, &manifest, &reason),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The manifests in `folder`, sorted by name.
fn manifests(folder: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && n.ends_with(".manifest.json"))
        })
        .collect();
    found.sort();
    found
}

fn read_manifest(path: &Path) -> Result<(Manifest, PathBuf), Outcome> {
    let text = std::fs::read(path).map_err(|e| Outcome::TryLater(e.to_string()))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| Outcome::Refused(format!("not a manifest: {e}")))?;
    // The manifest names a file beside it, nothing else.
    if manifest.file.contains('/') || manifest.file.starts_with('.') {
        return Err(Outcome::Refused(format!(
            "the manifest names `{}`, not a file beside it",
            manifest.file
        )));
    }
    let file = path.with_file_name(&manifest.file);
    Ok((manifest, file))
}

/// Opens one message as any transport's, leaves the signed receipt in `incoming`
/// (the decision is stored in the outbox first), then removes the message.
async fn import_one(
    procedure: &Arc<Procedure>,
    shared: &Arc<Shared>,
    folders: &Folders,
    manifest_path: &Path,
) -> Result<(), Outcome> {
    let (manifest, file) = read_manifest(manifest_path)?;
    let sealed = std::fs::read(&file).map_err(|e| Outcome::TryLater(e.to_string()))?;
    if hex::encode(openssl::sha::sha256(&sealed)) != manifest.sha256 {
        return Err(Outcome::Refused(
            "the message file does not match the SHA-256 of its manifest".into(),
        ));
    }
    let handled = open(procedure, shared, &sealed, &manifest.message_type).await?;
    let (signed, content_type) = sign(procedure, &handled.receipt)?;
    later_decide(procedure, shared, None, handled.accepted)?;
    let answer = leave_answer(&folders.incoming, &handled.receipt, &signed, content_type)
        .map_err(|e| Outcome::TryLater(format!("incoming folder: {e}")))?;
    // Imported and answered: a crash before this line imports it once more, with the
    // same receipt id, which the hub knows again.
    for done in [&file, &manifest_path.to_path_buf()] {
        if let Err(e) = std::fs::remove_file(done) {
            tracing::warn!(procedure = %procedure.id, file = %done.display(), error = %e, "imported, but not removed");
        }
    }
    tracing::info!(procedure = %procedure.id, message_id = %handled.receipt.message_id, application_id = %handled.receipt.application_id, event = ?handled.receipt.event, file = %answer.display(), "imported; receipt left in the incoming folder");
    Ok(())
}

/// A message the procedure refuses is kept aside (`refused.rs`) and leaves the outgoing
/// folder, so it is not looked at again.
fn set_aside(procedure: &Procedure, shared: &Shared, manifest_path: &Path, reason: &str) {
    let read = read_manifest(manifest_path).ok();
    let (message_id, message_type) = read
        .as_ref()
        .map(|(m, _)| (Some(m.message_id.as_str()), m.message_type.as_str()))
        .unwrap_or((None, ""));
    let raw = read
        .as_ref()
        .and_then(|(_, file)| std::fs::read(file).ok())
        .unwrap_or_default();
    match refused::keep(
        &shared.outbox.refused,
        &procedure.id,
        "file",
        message_id,
        message_type,
        reason,
        &raw,
    ) {
        Ok(kept) => {
            tracing::error!(procedure = %procedure.id, message_id = message_id.unwrap_or_default(), %reason, file = %kept.display(), "message refused (not from the hub or not for us); kept aside");
            if let Some((_, file)) = &read {
                let _ = std::fs::remove_file(file);
            }
            let _ = std::fs::remove_file(manifest_path);
        }
        Err(e) => {
            tracing::error!(procedure = %procedure.id, %reason, error = %e, "message refused; not kept, so it stays in the outgoing folder")
        }
    }
}
