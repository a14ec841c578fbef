//! Messages the procedure refused (it could not decrypt them, or not verify the hub's
//! signature — e.g. a hub certificate activated before the vendor trusted it) are kept
//! in `<state dir>/refused/messages/` before they are acknowledged: the raw message as
//! received (`<name>.msg`) and why (`<name>.json`). Acknowledged, the broker forgets
//! the message; this folder is then its only copy. After a reload (SIGHUP) and at
//! start, messages that came over AMQP are opened again: the ones that open now are
//! answered and their files go; the others stay.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::answer::{later_decide, send};
use crate::open::{Outcome, open};
use crate::outbox::{io_error, now_rfc3339, private_dir, sync_dir, write_bytes_atomically};
use crate::setup::{Procedure, Shared};

/// What is known about a refused message, in `<name>.json` beside it.
#[derive(Serialize, Deserialize)]
pub(crate) struct RefusedMessage {
    pub procedure: String,
    /// `amqp` or `http`: how it came.
    pub transport: String,
    /// From the (unsigned) transport properties: the message could not be read.
    pub message_id: Option<String>,
    pub message_type: String,
    pub reason: String,
    pub refused_at: String,
    /// The raw message's file name, in the same folder.
    pub file: String,
}

fn folder(refused: &Path) -> PathBuf {
    refused.join("messages")
}

/// Keeps a refused message durably; when this returns, the message may be acknowledged.
/// Named by the SHA-256 of its bytes, so a redelivered message keeps one copy.
pub(crate) fn keep(
    refused: &Path,
    procedure: &str,
    transport: &str,
    message_id: Option<&str>,
    message_type: &str,
    reason: &str,
    raw: &[u8],
) -> Result<PathBuf, Error> {
    let dir = folder(refused);
    private_dir(&dir)?;
    // The procedure id as the hub validated it; filtered anyway, it names a file.
    let prefix: String = procedure
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let name = format!("{prefix}-{}", &hex::encode(openssl::sha::sha256(raw))[..32]);
    let file = format!("{name}.msg");
    write_bytes_atomically(&dir.join(&file), raw)?;
    let meta = RefusedMessage {
        procedure: procedure.to_owned(),
        transport: transport.to_owned(),
        message_id: message_id.filter(|id| !id.is_empty()).map(str::to_owned),
        message_type: message_type.to_owned(),
        reason: reason.to_owned(),
        refused_at: now_rfc3339(),
        file,
    };
    let json = dir.join(format!("{name}.json"));
    let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Outbox {
        path: json.clone(),
        source: std::io::Error::other(e),
    })?;
    write_bytes_atomically(&json, &bytes)?;
    Ok(json)
}

/// The kept messages of `procedure`: the description's file and the description.
fn kept(dir: &Path, procedure: &str) -> Vec<(PathBuf, RefusedMessage)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let read = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<RefusedMessage>(&b).map_err(|e| e.to_string()));
        match read {
            Ok(meta) if meta.procedure == procedure => out.push((path, meta)),
            Ok(_) => {}
            Err(reason) => {
                tracing::error!(file = %path.display(), %reason, "refused message's description unreadable; left in place")
            }
        }
    }
    out
}

fn forget(dir: &Path, json: &Path, meta: &RefusedMessage) -> Result<(), Error> {
    let raw = dir.join(&meta.file);
    std::fs::remove_file(json).map_err(io_error(json))?;
    std::fs::remove_file(&raw).map_err(io_error(&raw))?;
    sync_dir(dir)
}

/// Opens every message kept aside for `procedure` that came over AMQP again (after a
/// reload of trust and keys): answered like a fresh one, over HTTP, then forgotten.
/// Over HTTP the hub keeps a refused message itself (a dead letter the operator
/// replays); over pull it stays listed.
pub(crate) async fn take_up(procedure: Arc<Procedure>, shared: Arc<Shared>) {
    let dir = folder(&shared.outbox.refused);
    for (json, meta) in kept(&dir, &procedure.id) {
        if meta.transport != "amqp" {
            continue;
        }
        let raw_file = dir.join(&meta.file);
        let raw = match std::fs::read(&raw_file) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::error!(procedure = %procedure.id, file = %raw_file.display(), error = %e, "refused message unreadable; left in place");
                continue;
            }
        };
        let answered = match open(&procedure, &shared, &raw, &meta.message_type).await {
            Ok(handled) => send(&procedure, &shared, None, &handled.receipt, 1)
                .await
                .and_then(|()| later_decide(&procedure, &shared, None, handled.accepted)),
            Err(outcome) => Err(outcome),
        };
        let message_id = meta.message_id.as_deref().unwrap_or_default();
        match answered {
            Ok(()) => match forget(&dir, &json, &meta) {
                Ok(()) => {
                    tracing::info!(procedure = %procedure.id, %message_id, "refused message opened now and answered; its files are gone")
                }
                Err(e) => {
                    tracing::warn!(procedure = %procedure.id, %message_id, error = %e, "refused message answered, but its files stay")
                }
            },
            Err(Outcome::Refused(reason) | Outcome::TryLater(reason)) => {
                tracing::warn!(procedure = %procedure.id, %message_id, %reason, file = %json.display(), "refused message still not answered; it stays kept")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_message_is_kept_once_with_its_reason_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let keep_it = || {
            keep(
                dir.path(),
                "p-1",
                "amqp",
                Some("m-1"),
                "t",
                "signer certificate not found",
                b"sealed",
            )
            .unwrap()
        };
        let json = keep_it();
        // Delivered again: the same files.
        assert_eq!(keep_it(), json);
        let messages = folder(dir.path());
        let found = kept(&messages, "p-1");
        assert_eq!(found.len(), 1);
        let (path, meta) = &found[0];
        assert_eq!(path, &json);
        assert_eq!(meta.message_id.as_deref(), Some("m-1"));
        assert_eq!(meta.reason, "signer certificate not found");
        assert_eq!(std::fs::read(messages.join(&meta.file)).unwrap(), b"sealed");
        assert!(kept(&messages, "other").is_empty());
        forget(&messages, path, meta).unwrap();
        assert!(kept(&messages, "p-1").is_empty());
        assert_eq!(std::fs::read_dir(&messages).unwrap().count(), 0);
    }
}
