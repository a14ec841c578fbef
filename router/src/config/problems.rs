//! What is wrong with a configuration, each problem named by file, section and key,
//! and reading the TOML files (a syntax error names its line).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// Where in the file: a key of a table (`[limits] max_head_bytes`), a key of one
    /// entry of a list (`[[procedure]] dresden-maengel: token_file`), a list as a whole
    /// (`[[route]]`), or a line (`line 12`).
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.at, self.message)
    }
}

/// Every problem of a configuration, reported at once (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// `problems` must not be empty.
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        debug_assert!(!problems.is_empty(), "no problem is no error");
        Self(problems)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never: a `Problems` holds at least one.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "has {} problems:", all.len())?;
                for problem in all {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

/// What a section's check finds; the file is added by whoever knows which file the
/// section is in.
#[derive(Debug, Default)]
pub(crate) struct Findings(Vec<(String, String)>);

impl Findings {
    /// A key of a table: `[limits] max_head_bytes`.
    pub fn key(&mut self, table: &str, key: &str, message: impl Into<String>) {
        let at = if key.is_empty() {
            format!("[{table}]")
        } else {
            format!("[{table}] {key}")
        };
        self.0.push((at, message.into()));
    }

    /// A key of one entry of a list: `[[procedure]] dresden-maengel: token_file`.
    pub fn entry(&mut self, list: &str, id: &str, key: &str, message: impl Into<String>) {
        let at = if key.is_empty() {
            format!("[[{list}]] {id}")
        } else {
            format!("[[{list}]] {id}: {key}")
        };
        self.0.push((at, message.into()));
    }

    /// A list as a whole: `[[route]]` (an entry given twice).
    pub fn list(&mut self, list: &str, message: impl Into<String>) {
        self.0.push((format!("[[{list}]]"), message.into()));
    }

    /// The ids of a list's `entries`; each id given twice is a finding of the list.
    pub fn ids<'a, T>(
        &mut self,
        list: &str,
        entries: &'a [T],
        id: impl Fn(&'a T) -> &'a str,
    ) -> BTreeSet<&'a str> {
        let mut ids = BTreeSet::new();
        for entry in entries {
            let id = id(entry);
            if !ids.insert(id) {
                self.list(list, format!("{list} `{id}` is defined twice"));
            }
        }
        ids
    }

    /// The problems, found in `file`.
    pub fn in_file(self, file: &Path) -> impl Iterator<Item = Problem> {
        let file = file.to_owned();
        self.0.into_iter().map(move |(at, message)| Problem {
            file: file.clone(),
            at,
            message,
        })
    }
}

/// Reads a TOML file into `T`; the problem names the line and, for a bad value, its key.
pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Problem> {
    let problem = |at: String, message: String| Problem {
        file: path.to_owned(),
        at,
        message,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| problem("reading".into(), e.to_string()))?;
    toml::from_str(&text).map_err(|e| {
        let Some(span) = e.span() else {
            return problem("reading".into(), e.message().to_owned());
        };
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let at = format!("line {}", text[..start].matches('\n').count() + 1);
        // A value refused (an id that is no id): name the key before the `=`.
        match text[line_start..start].split_once('=') {
            Some((key, _)) if !key.trim().is_empty() => {
                problem(at, format!("{}: {}", key.trim(), e.message()))
            }
            _ => problem(at, e.message().to_owned()),
        }
    })
}
