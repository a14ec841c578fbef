//! Verification: the chain's links, the content its entries bind, and checkpoints of its
//! head. A store streams what it holds into an [`AuditVerifier`] from one consistent
//! snapshot; the verifier decides what is wrong and names the first problem by its seq.

use std::collections::BTreeMap;
use std::fmt;

use super::checkpoint::{Checkpoint, CheckpointTrust};
use super::content::{self, Content, Outcome, StoredContent};
use super::{AuditEntry, GENESIS_HASH, GLOBAL_CHAIN};

/// What is wrong at a broken link, a mismatching content or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The stored hash is not the hash of the entry's fields: the entry was changed.
    HashMismatch { stored: String, computed: String },
    /// `prev_hash` is not the hash of the entry before: that entry was changed or
    /// replaced, or this one was linked elsewhere.
    PrevHashMismatch { stored: String, expected: String },
    /// The entry has not the next `seq`: entries before it are missing.
    Gap { expected: i64 },
    /// Entries at the end are missing: `seq` numbers up to `highest_issued` were issued.
    Truncated { highest_issued: i64 },
    /// The row cannot be read as an audit entry (a column of the wrong type, an unknown
    /// format).
    Unreadable(String),
    /// What the entry binds does not match what is stored (`missing`: nothing of the kind
    /// is stored).
    Content {
        application_id: String,
        content: Content,
        missing: bool,
    },
    /// A checkpoint names this entry, but the chain has no such entry.
    CheckpointMissing {
        at: String,
        origin: Option<String>,
        /// The last entry of the chain.
        chain_ends_at: i64,
    },
    /// A checkpoint names this entry with another hash.
    CheckpointMismatch { at: String, origin: Option<String> },
    /// A checkpoint's signature does not verify.
    CheckpointSignature {
        at: String,
        origin: Option<String>,
        reason: String,
    },
}

impl Problem {
    /// A broken link of the chain itself.
    fn is_link(&self) -> bool {
        matches!(
            self,
            Self::HashMismatch { .. }
                | Self::PrevHashMismatch { .. }
                | Self::Gap { .. }
                | Self::Truncated { .. }
                | Self::Unreadable(_)
        )
    }
}

/// " (from FILE)" for a checkpoint held outside the store.
fn from(origin: &Option<String>) -> String {
    origin
        .as_ref()
        .map(|o| format!(" (from {o})"))
        .unwrap_or_default()
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HashMismatch { stored, computed } => write!(
                f,
                "hash mismatch: the entry was changed (stored hash {stored}, recomputed {computed})"
            ),
            Self::PrevHashMismatch { stored, expected } => write!(
                f,
                "prev_hash mismatch: does not match the entry before (stored {stored}, expected {expected})"
            ),
            Self::Gap { expected } => write!(
                f,
                "gap in seq: expected seq {expected}, entries before this one are missing"
            ),
            Self::Truncated { highest_issued } => write!(
                f,
                "missing at the end: seq numbers up to {highest_issued} were issued"
            ),
            Self::Unreadable(reason) => write!(f, "unreadable entry: {reason}"),
            Self::Content {
                content, missing, ..
            } => {
                if *missing {
                    write!(f, "{content} is missing")
                } else {
                    write!(f, "{content} does not match the hash")
                }
            }
            Self::CheckpointMissing { at, origin, .. } => {
                write!(
                    f,
                    "missing, named by the checkpoint of {at}{}",
                    from(origin)
                )
            }
            Self::CheckpointMismatch { at, origin } => write!(
                f,
                "does not carry the hash the checkpoint of {at}{} names",
                from(origin)
            ),
            Self::CheckpointSignature { at, origin, reason } => {
                write!(f, "checkpoint of {at}{}: {reason}", from(origin))
            }
        }
    }
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The chain of the entry concerned.
    pub chain: String,
    /// The entry concerned (for [`Problem::Truncated`]: the first missing one; for a
    /// checkpoint: the entry it names).
    pub seq: i64,
    pub problem: Problem,
}

impl Break {
    fn new(chain: &str, seq: i64, problem: Problem) -> Self {
        Self {
            chain: chain.to_owned(),
            seq,
            problem,
        }
    }

    /// Where, for ordering: by chain, then seq.
    fn position(&self) -> (&str, i64) {
        (&self.chain, self.seq)
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "seq 12" in the global chain, as always; "seq 12 of chain kopplung-…" in an
        // instance's.
        let seq = if self.chain == GLOBAL_CHAIN {
            self.seq.to_string()
        } else {
            format!("{} of chain {}", self.seq, self.chain)
        };
        match &self.problem {
            Problem::Content {
                application_id,
                content,
                missing: false,
                // The application names the entries: its own seq alone, in any chain.
            } => write!(
                f,
                "{content} does not match the hash in entry seq {} of application {application_id}",
                self.seq
            ),
            Problem::Content {
                application_id,
                content,
                missing: true,
            } => write!(
                f,
                "{content} of entry seq {} of application {application_id} is missing",
                self.seq
            ),
            Problem::CheckpointMissing {
                at,
                origin,
                chain_ends_at,
            } => write!(
                f,
                "seq {seq} named by the checkpoint of {at}{} is missing (the chain ends at seq {chain_ends_at})",
                from(origin)
            ),
            Problem::CheckpointMismatch { at, origin } => write!(
                f,
                "seq {seq} does not carry the hash named by the checkpoint of {at}{}",
                from(origin)
            ),
            Problem::CheckpointSignature { at, origin, reason } => write!(
                f,
                "the checkpoint of {at}{} for seq {seq} is not the hub's: {reason}",
                from(origin)
            ),
            problem => write!(f, "seq {seq}: {problem}"),
        }
    }
}

/// What the content check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentReport {
    /// Entries whose bound content was re-hashed and compared with what is stored.
    pub checked: u64,
    /// Of those, entries whose content does not match.
    pub mismatched: u64,
    /// Entries of format 1 that bound no form data or document: not compared.
    pub before_content_hashes: u64,
    /// Entries whose content retention deleted (by design): not compared.
    pub purged: u64,
}

/// What the checkpoint check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Checkpoints from the store.
    pub stored: u64,
    /// Checkpoints held outside (files).
    pub outside: u64,
    /// Checkpoints whose signature was not checked (no trust anchors given).
    pub signatures_unchecked: u64,
    /// Checkpoints with a problem (signature, or not in the chain).
    pub failed: u64,
    /// The highest seq a checkpoint named that the chain holds with that hash.
    pub newest_seq: Option<i64>,
}

/// The outcome of checking the whole trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries checked (all stored entries).
    pub checked: u64,
    /// Entries at which a link is broken (each counted once).
    pub broken: u64,
    /// The problem with the lowest seq, of any kind.
    pub first_break: Option<Break>,
    pub content: ContentReport,
    pub checkpoints: CheckpointReport,
}

impl AuditReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }

    /// One line for an operator: the first problem and the counts. No personal data.
    pub fn verdict(&self) -> String {
        let counts = format!(
            "{} entries checked, {} broken link(s), {} content mismatch(es), {} checkpoint problem(s)",
            self.checked, self.broken, self.content.mismatched, self.checkpoints.failed
        );
        match &self.first_break {
            None => format!("audit trail intact: {} entries", self.checked),
            Some(first) if first.problem.is_link() => {
                format!("audit trail broken at {first} ({counts})")
            }
            Some(first) => format!("audit trail broken: {first} ({counts})"),
        }
    }
}

impl AuditReport {
    /// What was checked besides the links, one line each: the content, the checkpoints.
    pub fn details(&self) -> [String; 2] {
        let c = &self.content;
        let mut content = format!(
            "content: {} entries re-hashed against the stored form data, attachments, sealed messages, receipts and documents",
            c.checked
        );
        if c.mismatched > 0 {
            content.push_str(&format!(", {} not matching", c.mismatched));
        }
        content.push_str(&format!(
            "; {} written before content hashes (form data and documents not compared); {} of applications whose personal data retention deleted (not compared)",
            c.before_content_hashes, c.purged
        ));
        let k = &self.checkpoints;
        let total = k.stored + k.outside;
        let checkpoints = if total == 0 {
            "checkpoints: none yet (the hub signs one at start, every [audit] checkpoint_secs and at shutdown)".to_owned()
        } else {
            let signatures = if k.signatures_unchecked > 0 {
                format!("{} signature(s) not checked", k.signatures_unchecked)
            } else {
                "signatures verified".to_owned()
            };
            let newest = k
                .newest_seq
                .map(|seq| format!("; the newest that holds names seq {seq}"))
                .unwrap_or_default();
            format!(
                "checkpoints: {total} checked ({} stored, {} held outside), {signatures}{newest}",
                k.stored, k.outside
            )
        };
        [content, checkpoints]
    }
}

/// Checks one chain entry by entry, in `seq` order, so that the store can stream it.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    chain: String,
    checked: u64,
    broken: u64,
    first_break: Option<Break>,
    /// The last entry seen: its seq and, if it could be read, its stored hash.
    last: Option<(i64, Option<String>)>,
}

impl ChainVerifier {
    /// A verifier of the [`GLOBAL_CHAIN`].
    pub fn new() -> Self {
        Self::of(GLOBAL_CHAIN)
    }

    /// A verifier of `chain`.
    pub fn of(chain: &str) -> Self {
        Self {
            chain: chain.to_owned(),
            ..Self::default()
        }
    }

    /// Checks the next entry (entries must come in ascending `seq`).
    pub fn check(&mut self, entry: &AuditEntry) {
        let expected_seq = self
            .last
            .as_ref()
            .map_or(1, |(seq, _)| seq.saturating_add(1));
        let expected_prev = match &self.last {
            None => Some(GENESIS_HASH),
            Some((_, hash)) => hash.as_deref(),
        };
        let problem = if entry.seq != expected_seq {
            Some(Problem::Gap {
                expected: expected_seq,
            })
        } else if let Some(expected) = expected_prev.filter(|e| *e != entry.prev_hash) {
            Some(Problem::PrevHashMismatch {
                stored: entry.prev_hash.clone(),
                expected: expected.to_owned(),
            })
        } else if let Some(reason) = malformed(entry) {
            Some(Problem::Unreadable(reason))
        } else {
            let computed = entry.computed_hash();
            (computed != entry.hash).then(|| Problem::HashMismatch {
                stored: entry.hash.clone(),
                computed,
            })
        };
        self.checked += 1;
        if let Some(problem) = problem {
            self.record(entry.seq, problem);
        }
        self.last = Some((entry.seq, Some(entry.hash.clone())));
    }

    /// Counts a row that could not be read as an entry as a broken link.
    pub fn unreadable(&mut self, seq: i64, reason: String) {
        self.checked += 1;
        self.record(seq, Problem::Unreadable(reason));
        self.last = Some((seq, None));
    }

    /// The seq of the last entry seen (0 before the first).
    fn last_seq(&self) -> i64 {
        self.last.as_ref().map_or(0, |(seq, _)| *seq)
    }

    /// The report. `highest_issued` is the highest `seq` the store ever handed out
    /// (SQLite: `sqlite_sequence`), to notice entries removed from the end.
    pub fn finish(mut self, highest_issued: Option<i64>) -> AuditReport {
        let last_seq = self.last_seq();
        if let Some(highest_issued) = highest_issued.filter(|h| *h > last_seq) {
            self.record(
                last_seq.saturating_add(1),
                Problem::Truncated { highest_issued },
            );
        }
        AuditReport {
            checked: self.checked,
            broken: self.broken,
            first_break: self.first_break,
            content: ContentReport::default(),
            checkpoints: CheckpointReport::default(),
        }
    }

    fn record(&mut self, seq: i64, problem: Problem) {
        self.broken += 1;
        if self.first_break.is_none() {
            self.first_break = Some(Break::new(&self.chain, seq, problem));
        }
    }
}

/// A format this verifier does not know, or fields the format does not have.
fn malformed(entry: &AuditEntry) -> Option<String> {
    match entry.version {
        1 if entry.content_sha256.is_some() => {
            Some("an entry of format 1 with a content hash".into())
        }
        1 | 2 => None,
        other => Some(format!("unknown format {other}")),
    }
}

/// Checks a complete chain held in memory (links only).
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    highest_issued: Option<i64>,
) -> AuditReport {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        verifier.check(entry);
    }
    verifier.finish(highest_issued)
}

/// A checkpoint a chain is held against.
#[derive(Debug)]
struct Expected {
    hash: String,
    at: String,
    origin: Option<String>,
    seen: bool,
    matched: bool,
}

/// The whole check: the chains' links, every application's content against its entries,
/// and checkpoints (stored and held outside) against the chains. A store feeds it from
/// one snapshot: [`AuditVerifier::stored_checkpoints`] first, then every entry, in seq
/// order within its chain ([`AuditVerifier::entry`]), then each application's entries
/// with its stored content ([`AuditVerifier::application`]), and
/// [`AuditVerifier::finish_chains`].
#[derive(Default)]
pub struct AuditVerifier {
    chains: BTreeMap<String, ChainVerifier>,
    trust: Option<CheckpointTrust>,
    /// By chain and seq.
    expected: BTreeMap<(String, i64), Vec<Expected>>,
    checkpoints: CheckpointReport,
    content: ContentReport,
    /// Problems other than broken links, the first by chain and seq.
    first_other: Option<Break>,
}

impl AuditVerifier {
    /// Checkpoint signatures are checked against `trust`; without it they are counted
    /// as unchecked (the chains are still held against them).
    pub fn new(trust: Option<CheckpointTrust>) -> Self {
        Self {
            trust,
            ..Self::default()
        }
    }

    /// Checkpoints held outside the store, e.g. a file named `origin` (before the
    /// entries).
    pub fn hold_outside(&mut self, checkpoints: Vec<Checkpoint>, origin: &str) {
        for checkpoint in checkpoints {
            self.checkpoints.outside += 1;
            self.add_checkpoint(checkpoint, Some(origin.to_owned()));
        }
    }

    /// The store's checkpoints, before the entries.
    pub fn stored_checkpoints(&mut self, checkpoints: Vec<Checkpoint>) {
        for checkpoint in checkpoints {
            self.checkpoints.stored += 1;
            self.add_checkpoint(checkpoint, None);
        }
    }

    fn add_checkpoint(&mut self, checkpoint: Checkpoint, origin: Option<String>) {
        match self.trust.as_ref().map(|trust| trust.verify(&checkpoint)) {
            None => self.checkpoints.signatures_unchecked += 1,
            Some(Ok(())) => {}
            Some(Err(reason)) => {
                // Not the hub's: what it names is no evidence either way.
                self.checkpoints.failed += 1;
                let (chain, seq) = checkpoint
                    .heads
                    .first()
                    .map_or((GLOBAL_CHAIN, 0), |h| (h.chain.as_str(), h.seq));
                let problem = Problem::CheckpointSignature {
                    at: checkpoint.at.clone(),
                    origin,
                    reason,
                };
                self.other(Break::new(chain, seq, problem));
                return;
            }
        }
        for head in checkpoint.heads {
            self.expected
                .entry((head.chain, head.seq))
                .or_default()
                .push(Expected {
                    hash: head.hash,
                    at: checkpoint.at.clone(),
                    origin: origin.clone(),
                    seen: false,
                    matched: false,
                });
        }
    }

    fn chain(&mut self, chain: &str) -> &mut ChainVerifier {
        self.chains
            .entry(chain.to_owned())
            .or_insert_with(|| ChainVerifier::of(chain))
    }

    /// The next entry of its chain (ascending seq within the chain).
    pub fn entry(&mut self, entry: &AuditEntry) {
        self.chain(&entry.chain).check(entry);
        let mut mismatched = Vec::new();
        if let Some(expected) = self.expected.get_mut(&(entry.chain.clone(), entry.seq)) {
            for checkpoint in expected {
                checkpoint.seen = true;
                checkpoint.matched = checkpoint.hash == entry.hash;
                if !checkpoint.matched {
                    mismatched.push(Problem::CheckpointMismatch {
                        at: checkpoint.at.clone(),
                        origin: checkpoint.origin.clone(),
                    });
                }
            }
        }
        for problem in mismatched {
            self.checkpoints.failed += 1;
            self.other(Break::new(&entry.chain, entry.seq, problem));
        }
    }

    /// A row of the global chain that could not be read as an entry (see
    /// [`AuditVerifier::unreadable_in`]).
    pub fn unreadable(&mut self, seq: i64, reason: String) {
        self.unreadable_in(GLOBAL_CHAIN, seq, reason);
    }

    /// A row of `chain` that could not be read as an entry (a broken link; checkpoints
    /// naming it are not counted again).
    pub fn unreadable_in(&mut self, chain: &str, seq: i64, reason: String) {
        self.chain(chain).unreadable(seq, reason);
        if let Some(expected) = self.expected.get_mut(&(chain.to_owned(), seq)) {
            expected.iter_mut().for_each(|e| e.seen = true);
        }
    }

    /// One application's entries (in the order they were written: by time) and its
    /// stored content, loaded as [`content::needs`] says.
    pub fn application(&mut self, entries: &[AuditEntry], stored: &StoredContent) {
        for (index, outcome) in content::check(entries, stored) {
            match outcome {
                Outcome::Nothing => {}
                Outcome::Matched => self.content.checked += 1,
                Outcome::Purged => self.content.purged += 1,
                Outcome::BeforeContentHashes => self.content.before_content_hashes += 1,
                Outcome::Mismatch { content, missing } => {
                    self.content.checked += 1;
                    self.content.mismatched += 1;
                    let Some(entry) = entries.get(index) else {
                        continue;
                    };
                    let problem = Problem::Content {
                        application_id: entry.application_id.clone(),
                        content,
                        missing,
                    };
                    self.other(Break::new(&entry.chain, entry.seq, problem));
                }
            }
        }
    }

    /// The report when the global chain is the only one; `highest_issued` as for
    /// [`ChainVerifier::finish`].
    pub fn finish(self, highest_issued: Option<i64>) -> AuditReport {
        let issued = highest_issued
            .map(|seq| (GLOBAL_CHAIN.to_owned(), seq))
            .into_iter()
            .collect();
        self.finish_chains(issued)
    }

    /// The report; `issued` is the highest `seq` the store ever handed out in each
    /// chain, to notice entries removed from a chain's end, or a chain removed whole.
    pub fn finish_chains(mut self, issued: BTreeMap<String, i64>) -> AuditReport {
        for chain in issued.keys() {
            self.chain(chain);
        }
        let mut missing = Vec::new();
        let mut newest = None;
        for ((chain, seq), expected) in &self.expected {
            for checkpoint in expected {
                if !checkpoint.seen {
                    let chain_ends_at = self.chains.get(chain).map_or(0, ChainVerifier::last_seq);
                    let problem = Problem::CheckpointMissing {
                        at: checkpoint.at.clone(),
                        origin: checkpoint.origin.clone(),
                        chain_ends_at,
                    };
                    missing.push(Break::new(chain, *seq, problem));
                }
            }
            if expected.iter().any(|e| e.matched) {
                newest = newest.max(Some(*seq));
            }
        }
        for problem in missing {
            self.checkpoints.failed += 1;
            self.other(problem);
        }
        let mut report = AuditReport {
            checked: 0,
            broken: 0,
            first_break: None,
            content: self.content,
            checkpoints: self.checkpoints,
        };
        // By chain id: the first chain's first break comes first.
        for (chain, verifier) in std::mem::take(&mut self.chains) {
            let chain_report = verifier.finish(issued.get(&chain).copied());
            report.checked += chain_report.checked;
            report.broken += chain_report.broken;
            if report.first_break.is_none() {
                report.first_break = chain_report.first_break;
            }
        }
        report.checkpoints.newest_seq = newest;
        report.first_break = match (report.first_break, self.first_other) {
            (Some(link), Some(other)) if other.position() < link.position() => Some(other),
            (Some(link), _) => Some(link),
            (None, other) => other,
        };
        report
    }

    fn other(&mut self, found: Break) {
        if self
            .first_other
            .as_ref()
            .is_none_or(|first| found.position() < first.position())
        {
            self.first_other = Some(found);
        }
    }
}
