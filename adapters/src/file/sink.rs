use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::name::{FileName, MANIFEST_SUFFIX};
use crate::{DestinationInfo, OutboundMessage, Outcome, Sink};

/// What the manifest beside each message file says: everything an importer needs
/// without opening the message, and nothing personal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The message file beside it.
    pub file: String,
    /// `nachrichtenUUID`: the same on every delivery of this message.
    pub message_id: String,
    pub application_id: String,
    pub message_type: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the message file, to check a copy over a share.
    pub sha256: String,
    /// Further routing metadata, as the other transports carry in headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

/// Writes each message into the procedure's `outgoing` folder.
#[derive(Debug)]
pub struct FileSink {
    procedure: String,
    root: PathBuf,
    outgoing: PathBuf,
    name: FileName,
}

impl FileSink {
    pub fn new(procedure: &str, root: PathBuf, outgoing: PathBuf, name: FileName) -> Self {
        Self {
            procedure: procedure.to_owned(),
            root,
            outgoing,
            name,
        }
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn deliver(&self, message: &OutboundMessage) -> Outcome {
        let Some(name) = self.name.render(message) else {
            return Outcome::Permanent {
                reason: "the message's ids do not make a safe file name with file_name".into(),
            };
        };
        let (root, outgoing, message) = (self.root.clone(), self.outgoing.clone(), message.clone());
        let written =
            tokio::task::spawn_blocking(move || write_message(&root, &outgoing, &name, &message))
                .await;
        match written {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Retry {
                reason: format!("writing stopped: {e}"),
                not_before: None,
            },
        }
    }

    fn destination(&self) -> DestinationInfo {
        DestinationInfo {
            transport: "file",
            destination: format!("{} ({})", self.outgoing.display(), self.procedure),
        }
    }
}

/// The message file, then its manifest, each whole or absent: an importer that waits for
/// the manifest never sees half a message. A retry writes the same names again, so a
/// message is never there twice, whatever the hub went through.
fn write_message(root: &Path, outgoing: &Path, name: &str, message: &OutboundMessage) -> Outcome {
    if !root.is_dir() {
        return Outcome::Unavailable {
            reason: format!(
                "the exchange folder {} is not there (a share not mounted?)",
                root.display()
            ),
            not_before: None,
        };
    }
    let manifest = Manifest {
        file: name.to_owned(),
        message_id: message.message_id.clone(),
        application_id: message.correlation_id.clone(),
        message_type: message.message_type.clone(),
        content_type: message.content_type.clone(),
        size: message.body.len() as u64,
        sha256: hex::encode(openssl::sha::sha256(&message.body)),
        headers: message.headers.clone(),
    };
    let written = (|| {
        std::fs::create_dir_all(outgoing)?;
        let manifest = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
        write_atomically(outgoing, name, &message.body)?;
        write_atomically(outgoing, &format!("{name}{MANIFEST_SUFFIX}"), &manifest)?;
        std::fs::File::open(outgoing)?.sync_all()
    })();
    match written {
        Ok(()) => Outcome::Delivered,
        // Not about this message: the folder cannot be written at all now.
        Err(e) if is_folder_problem(e.kind()) => Outcome::Unavailable {
            reason: format!("{}: {e}", outgoing.display()),
            not_before: None,
        },
        Err(e) => Outcome::Retry {
            reason: format!("{}: {e}", outgoing.display()),
            not_before: None,
        },
    }
}

fn is_folder_problem(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::NotFound
            | ErrorKind::PermissionDenied
            | ErrorKind::StorageFull
            | ErrorKind::ReadOnlyFilesystem
            | ErrorKind::QuotaExceeded
    )
}

/// `.<name>.tmp`, fsync, rename to `name`. Hidden while it is written, so importers
/// that skip dot files (most do) never pick up a part. Readable by the group: the
/// procedure's import account reads it; the content is sealed for the procedure alone.
fn write_atomically(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = folder.join(format!(".{name}.tmp"));
    // The other side may write into this folder: a leftover (or a planted link) under
    // the temporary name is removed, never written through; `create_new` does not
    // follow a link that appears meanwhile.
    match std::fs::remove_file(&temporary) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, folder.join(name))
}
