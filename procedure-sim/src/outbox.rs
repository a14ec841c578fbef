//! The procedure's outbox: a decision is written to a file of its own in the procedure's
//! data directory (atomically: a temporary file, fsync, rename, fsync of the folder)
//! before it is first sent, and the file goes only when a hub took it. So a decision
//! survives a hub instance that died and a restart of the procedure itself; at start,
//! whatever is still pending is sent again. An answer a hub refuses for good (a 4xx that
//! sending again cannot change) moves to `refused/`, where an operator finds it; moving
//! it back to `pending/` and restarting sends it again. Messages the procedure refused
//! are kept in `refused/messages/` (`refused.rs`).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use kopplung_transformers::receipt::Receipt;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The longest pause between two attempts: a hub that comes back is used within a
/// minute, and a long outage costs one line per hub and minute, not a flood.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One answer waiting for a hub: the unsigned event (it is signed at each attempt) and
/// when it is due (a decision follows its receipt after the configured delay).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub event: Receipt,
    /// Seconds since the epoch; wall time, because it must mean the same after a restart.
    pub due_unix: i64,
}

/// The outbox folder of one procedure simulator (`<state dir>/pending`, `refused`).
pub(crate) struct Outbox {
    pending: PathBuf,
    pub(crate) refused: PathBuf,
    /// What a procedure that asks first keeps of an application until the answer comes:
    /// the fee its decision will set (`<application id>.json`).
    asked: PathBuf,
    /// Receipt ids with a delivery task in this process, so that a message the hub
    /// delivers twice does not start a second task for the same file.
    in_flight: Mutex<HashSet<String>>,
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Outbox {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(dir))
}

/// Writes a file that is either whole or absent after a crash: a temporary file, fsync,
/// rename, fsync of the folder.
fn write_atomically(path: &Path, pending: &Pending) -> Result<(), Error> {
    let json = serde_json::to_vec(pending).map_err(|e| Error::Outbox {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?;
    write_bytes_atomically(path, &json)
}

/// [`write_atomically`] for any bytes.
pub(crate) fn write_bytes_atomically(path: &Path, json: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        // The decision's document is about a person: readable by the procedure only.
        .mode(0o600)
        .open(&temporary)
        .map_err(io_error(&temporary))?;
    file.write_all(json)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io_error(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsync of a folder, so that a rename in it survives a crash of the machine.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// A receipt id as a file name: the procedure's own ids are UUIDs; anything else is
/// refused rather than trusted as a path.
fn file_name(receipt_id: &str) -> Option<String> {
    let safe = !receipt_id.is_empty()
        && receipt_id.len() <= 64
        && receipt_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    safe.then(|| format!("{receipt_id}.json"))
}

impl Outbox {
    /// Opens (creating) the outbox under `state_dir`.
    pub(crate) fn open(state_dir: &Path) -> Result<Self, Error> {
        let outbox = Self {
            pending: state_dir.join("pending"),
            refused: state_dir.join("refused"),
            asked: state_dir.join("asked"),
            in_flight: Mutex::default(),
        };
        private_dir(&outbox.pending)?;
        private_dir(&outbox.refused)?;
        private_dir(&outbox.asked)?;
        Ok(outbox)
    }

    /// Keeps the fee the decision on `application` will set while its question waits
    /// for the answer. The id comes from the signed message; only a UUID names a file.
    pub(crate) fn remember_fee(
        &self,
        application: &str,
        fee: Option<&kopplung_transformers::receipt::DecisionFee>,
    ) -> Result<(), Error> {
        let Ok(id) = uuid::Uuid::parse_str(application) else {
            return Ok(());
        };
        let json = serde_json::to_vec(&fee).unwrap_or_else(|_| b"null".to_vec());
        write_bytes_atomically(&self.asked.join(format!("{id}.json")), &json)
    }

    /// The fee kept by [`Outbox::remember_fee`], if any.
    pub(crate) fn remembered_fee(
        &self,
        application: &str,
    ) -> Option<kopplung_transformers::receipt::DecisionFee> {
        let id = uuid::Uuid::parse_str(application).ok()?;
        let json = std::fs::read(self.asked.join(format!("{id}.json"))).ok()?;
        serde_json::from_slice(&json).ok().flatten()
    }

    fn path(&self, receipt_id: &str) -> Result<PathBuf, Error> {
        self.path_in(&self.pending, receipt_id)
    }

    fn path_in(&self, dir: &Path, receipt_id: &str) -> Result<PathBuf, Error> {
        let name = file_name(receipt_id).ok_or_else(|| Error::Outbox {
            path: dir.to_owned(),
            source: std::io::Error::other("receipt id is no file name"),
        })?;
        Ok(dir.join(name))
    }

    /// Stores an answer durably: when this returns, it survives a crash.
    pub(crate) fn put(&self, pending: &Pending) -> Result<(), Error> {
        let path = self.path(&pending.event.receipt_id)?;
        write_atomically(&path, pending)
    }

    /// Keeps an answer the hub refused for good that never was in `pending/` (a receipt
    /// sent while taking a message) in `refused/`, where an operator finds it.
    pub(crate) fn keep_refused(&self, event: &Receipt) -> Result<PathBuf, Error> {
        let path = self.path_in(&self.refused, &event.receipt_id)?;
        let pending = Pending {
            event: event.clone(),
            due_unix: 0,
        };
        write_atomically(&path, &pending)?;
        Ok(path)
    }

    /// A hub took it: the file goes.
    pub(crate) fn done(&self, receipt_id: &str) -> Result<(), Error> {
        let path = self.path(receipt_id)?;
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.pending),
            // Another task for the same answer removed it already.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    /// Refused for good: kept aside in `refused/`.
    pub(crate) fn set_aside(&self, receipt_id: &str) -> Result<PathBuf, Error> {
        let path = self.path(receipt_id)?;
        let target = self.refused.join(path.file_name().unwrap_or_default());
        std::fs::rename(&path, &target).map_err(io_error(&target))?;
        sync_dir(&self.pending)?;
        sync_dir(&self.refused)?;
        Ok(target)
    }

    /// Every answer a previous run left pending. A file that cannot be read is named at
    /// error and left where it is.
    /// Whether this process may start sending `receipt_id`: false while a task of its
    /// own already does.
    pub(crate) fn claim(&self, receipt_id: &str) -> bool {
        match self.in_flight.lock() {
            Ok(mut in_flight) => in_flight.insert(receipt_id.to_owned()),
            Err(_) => true,
        }
    }

    /// The task sending `receipt_id` ended.
    pub(crate) fn release(&self, receipt_id: &str) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(receipt_id);
        }
    }

    pub(crate) fn load(&self) -> Result<Vec<Pending>, Error> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.pending).map_err(io_error(&self.pending))? {
            let path = entry.map_err(io_error(&self.pending))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let read = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()));
            match read {
                Ok(pending) => out.push(pending),
                Err(reason) => {
                    tracing::error!(file = %path.display(), %reason, "pending answer unreadable; left in place")
                }
            }
        }
        Ok(out)
    }
}

/// Now as RFC 3339, the form of an event's `issued_at`.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The pause after failed attempt `attempt` (1, 2, 4, … seconds, at most a minute).
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)).min(MAX_BACKOFF)
}

/// Writes a signed event into the incoming folder, whole or not at all: a temporary
/// name the hub skips, then a rename. Named by its receipt id, so writing it again
/// replaces it rather than adding a second.
pub(crate) fn leave_answer(
    incoming: &Path,
    event: &Receipt,
    signed: &[u8],
    content_type: &str,
) -> Result<PathBuf, Error> {
    let stem: String = event
        .receipt_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let extension = if content_type == "application/secevent+jwt" {
        "jwt"
    } else {
        "p7m"
    };
    let path = incoming.join(format!("{stem}.{extension}"));
    write_bytes_atomically(&path, signed)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kopplung_transformers::receipt::ReceiptEvent;

    fn pending(receipt_id: &str) -> Pending {
        Pending {
            event: Receipt {
                receipt_id: receipt_id.into(),
                procedure: "p".into(),
                message_id: "m".into(),
                application_id: "a".into(),
                event: ReceiptEvent::Decision,
                problems: Vec::new(),
                message: None,
                document: None,
                appeal: None,
                fee: None,
                issued_at: String::new(),
            },
            due_unix: 7,
        }
    }

    #[test]
    fn an_answer_stays_until_done_and_a_refused_one_moves_aside() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        outbox.put(&pending("a-1")).unwrap();
        outbox.put(&pending("b-2")).unwrap();
        // The same answer again replaces its file.
        outbox.put(&pending("b-2")).unwrap();
        // Another process (a restart) finds both.
        let reopened = Outbox::open(dir.path()).unwrap();
        let mut ids: Vec<_> = reopened
            .load()
            .unwrap()
            .into_iter()
            .map(|p| (p.event.receipt_id, p.due_unix))
            .collect();
        ids.sort();
        assert_eq!(ids, [("a-1".to_owned(), 7), ("b-2".to_owned(), 7)]);
        reopened.done("a-1").unwrap();
        reopened.done("a-1").unwrap();
        let aside = reopened.set_aside("b-2").unwrap();
        assert!(aside.starts_with(dir.path().join("refused")));
        assert!(reopened.load().unwrap().is_empty());
        assert!(outbox.put(&pending("../escape")).is_err());
        let kept = reopened.keep_refused(&pending("c-3").event).unwrap();
        assert!(kept.starts_with(dir.path().join("refused")));
        assert!(reopened.load().unwrap().is_empty());
    }

    #[test]
    fn the_pause_doubles_up_to_a_minute() {
        let pauses: Vec<_> = (1..=9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
