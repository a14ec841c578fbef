use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::name::FileName;
use super::sink::FileSink;
use crate::transport::{AnswerFolder, BuildContext, CheckContext, Transport};
use crate::{ConfigProblem, Error, Sink};

/// A procedure that imports files from a folder and leaves its answers in another.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The exchange folder agreed with the procedure (a local disk or a mounted share);
    /// relative to the data directory unless absolute. The hub never creates it: a
    /// missing folder is an unmounted share, and the hub waits for it.
    pub directory: PathBuf,
    /// The messages for the procedure, inside `directory`.
    #[serde(default = "default_outgoing")]
    pub outgoing: PathBuf,
    /// The procedure's signed events for the hub, inside `directory`.
    #[serde(default = "default_incoming")]
    pub incoming: PathBuf,
    /// Each message's file name: `{message_id}` (required), `{message_type}`,
    /// `{application_id}`, `{ext}` (`.p7m` or `.jwe`) and plain characters.
    #[serde(default = "default_file_name")]
    pub file_name: String,
    /// How often the hub looks into `incoming`.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

fn default_outgoing() -> PathBuf {
    PathBuf::from("outgoing")
}
fn default_incoming() -> PathBuf {
    PathBuf::from("incoming")
}
fn default_file_name() -> String {
    "{message_id}{ext}".to_owned()
}
fn default_poll_ms() -> u64 {
    1_000
}

/// A plain relative path: no `..`, no root, not empty.
fn plain_relative(path: &Path) -> bool {
    path.components().next().is_some()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

impl FileConfig {
    /// Settings with every default, for `directory`.
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
            outgoing: default_outgoing(),
            incoming: default_incoming(),
            file_name: default_file_name(),
            poll_ms: default_poll_ms(),
        }
    }

    /// The exchange folder, resolved against the data directory.
    pub fn root(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(&self.directory)
    }

    /// Where the messages go.
    pub fn outgoing_dir(&self, data_dir: &Path) -> PathBuf {
        self.root(data_dir).join(&self.outgoing)
    }

    /// Where the procedure's events come from.
    pub fn incoming_dir(&self, data_dir: &Path) -> PathBuf {
        self.root(data_dir).join(&self.incoming)
    }
}

impl Transport for FileConfig {
    fn validate(&self, _context: &CheckContext<'_>) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if self.directory.as_os_str().is_empty() {
            problems.push(ConfigProblem::new(
                "directory",
                "name the exchange folder agreed with the procedure",
            ));
        }
        for (key, path) in [("outgoing", &self.outgoing), ("incoming", &self.incoming)] {
            if !plain_relative(path) {
                problems.push(ConfigProblem::new(
                    key,
                    format!(
                        "`{}` must be a folder inside `directory` (relative, no `..`)",
                        path.display()
                    ),
                ));
            }
        }
        if self.outgoing.starts_with(&self.incoming) || self.incoming.starts_with(&self.outgoing) {
            problems.push(ConfigProblem::new(
                "incoming",
                "outgoing and incoming must be separate folders, neither inside the other",
            ));
        }
        if let Err(message) = FileName::parse(&self.file_name) {
            problems.push(ConfigProblem::new("file_name", message));
        }
        if !(100..=60_000).contains(&self.poll_ms) {
            problems.push(ConfigProblem::new(
                "poll_ms",
                "need 100 <= poll_ms <= 60000",
            ));
        }
        problems
    }

    fn build(&self, context: &BuildContext<'_>) -> Result<Arc<dyn Sink>, Error> {
        let name = FileName::parse(&self.file_name)
            .map_err(|message| Error::Invalid(ConfigProblem::new("file_name", message)))?;
        Ok(Arc::new(FileSink::new(
            context.procedure,
            self.root(context.data_dir),
            self.outgoing_dir(context.data_dir),
            name,
        )))
    }

    fn answer_folder(&self, data_dir: &Path) -> Option<AnswerFolder> {
        Some(AnswerFolder {
            path: self.incoming_dir(data_dir),
            poll: Duration::from_millis(self.poll_ms),
        })
    }

    /// Writing a file is cheap, but an importer reads them one by one: no point in
    /// hundreds at once.
    fn default_max_in_flight(&self) -> u32 {
        16
    }

    /// An importer often runs as a nightly batch.
    fn default_receipt_deadline_secs(&self) -> u64 {
        24 * 3600
    }
}
