//! The workbench's record of every apply, put in force or refused: who (the role), when,
//! which service, the SHA-256 of each file before and after, and how many reasons a
//! refusal had — never the files' content, so no fixture data.
//!
//! Why not the core's audit trail: its entries belong to an application (each names one,
//! with the status it moved to, and the verifier checks them against that application's
//! stored content); a mapping change belongs to none. Until the trail has entries of its
//! own for configuration changes, this file keeps them, hash-chained like the trail
//! (each line carries the hash of the line before), one JSON object per line, in the
//! data directory (`workbench-journal.jsonl`, mode 0600).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::draft::Edit;
use crate::Error;

/// The chain's start, as the audit trail's.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an apply came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    Refused,
}

/// One line of the journal, without its hash.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    at: String,
    role: &'a str,
    action: &'static str,
    outcome: Outcome,
    service: &'a str,
    folder: &'a str,
    files: Vec<FileChange<'a>>,
    /// The fixtures whose render the apply accepted as their expected XML.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    blessed: &'a [String],
    reasons: usize,
    prev: String,
}

#[derive(Debug, Serialize)]
struct FileChange<'a> {
    file: &'a str,
    before_sha256: String,
    after_sha256: String,
}

/// The journal file; one append at a time.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    lock: Mutex<()>,
}

/// What one apply recorded.
pub struct Record<'a> {
    pub role: &'a str,
    pub service: &'a str,
    pub folder: &'a str,
    pub names: [&'a str; 3],
    pub before: &'a Edit,
    pub after: &'a Edit,
    pub outcome: Outcome,
    pub reasons: usize,
    pub blessed: &'a [String],
}

impl Journal {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("workbench-journal.jsonl"),
            lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record`, chained to the line before.
    pub fn append(&self, record: &Record<'_>, at: OffsetDateTime) -> Result<(), Error> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let failed = |e: String| Error::Config {
            file: self.path.clone(),
            message: e,
        };
        let prev = match std::fs::read_to_string(&self.path) {
            Ok(text) => text
                .lines()
                .last()
                .and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .and_then(|v| v["hash"].as_str().map(str::to_owned))
                .unwrap_or_else(|| GENESIS.to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                kopplung_web::files::create_private_file(&self.path)
                    .map_err(|e| failed(e.to_string()))?;
                GENESIS.to_owned()
            }
            Err(e) => return Err(failed(e.to_string())),
        };
        let texts = |edit: &'_ Edit| {
            [
                edit.form.clone(),
                edit.template.clone(),
                edit.schema.clone(),
            ]
        };
        let (before, after) = (texts(record.before), texts(record.after));
        let files = record
            .names
            .iter()
            .zip(before.iter().zip(after.iter()))
            .map(|(file, (b, a))| FileChange {
                file,
                before_sha256: sha256(b),
                after_sha256: sha256(a),
            })
            .collect();
        let entry = Entry {
            at: at.format(&Rfc3339).map_err(|e| failed(e.to_string()))?,
            role: record.role,
            action: "apply",
            outcome: record.outcome,
            service: record.service,
            folder: record.folder,
            files,
            blessed: record.blessed,
            reasons: record.reasons,
            prev,
        };
        let mut line = serde_json::to_value(&entry).map_err(|e| failed(e.to_string()))?;
        let unhashed = line.to_string();
        line["hash"] = serde_json::Value::String(sha256(&unhashed));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| failed(e.to_string()))?;
        writeln!(file, "{line}").map_err(|e| failed(e.to_string()))
    }
}

fn sha256(text: &str) -> String {
    hex::encode(openssl::sha::sha256(text.as_bytes()))
}
