//! The audit trail (Laufzettel): a tamper-evident record of every state change of every
//! application.
//!
//! Each state change the store commits (accepted, prepared, delivered, invalid,
//! dead-lettered) appends one entry to the table `audit_log`, in the same transaction as
//! the change and its history entry. The entries of all applications form one chain:
//! every entry carries the hash of the entry before it (`prev_hash`) and its own hash
//! over all its fields (`hash`). Changing, removing or re-ordering an entry breaks the
//! chain at that point, and [`ChainVerifier`] names the first broken link.
//!
//! # What an entry holds
//!
//! | field | content |
//! |---|---|
//! | `seq` | position in the chain: 1, 2, 3, … without gaps |
//! | `application_id` | the application's UUID, lowercase with hyphens |
//! | `at` | time of the change, RFC 3339 in UTC, exactly as stored |
//! | `status` | the new status (`accepted`, `prepared`, `delivered`, `invalid`, `dead_lettered`) |
//! | `detail` | the history's detail text: ids, procedure, transport, field names; never form data |
//! | `message_sha256` | lowercase hex SHA-256 of the sealed message once there is one, else none |
//! | `prev_hash` | `hash` of the entry `seq - 1`; 64 zeros (`"0" * 64`) for `seq` 1 |
//! | `hash` | lowercase hex SHA-256 of the encoding below |
//!
//! The trail keeps no personal data: the message appears only as its hash.
//!
//! # The hash of an entry
//!
//! `hash` is the lowercase hex SHA-256 of this byte string, the fields in this order:
//!
//! ```text
//! str("kopplung-audit-v1")     domain tag
//! i64(seq)
//! str(application_id)
//! str(at)
//! str(status)
//! str(detail)
//! opt(message_sha256)
//! str(prev_hash)
//!
//! i64(n)        = n as 8 bytes, big-endian two's complement
//! str(s)        = i64(number of bytes of s in UTF-8) followed by those bytes
//! opt(none)     = the single byte 0x00
//! opt(some(s))  = the single byte 0x01 followed by str(s)
//! ```
//!
//! Every field is length-prefixed, so no two different entries encode to the same bytes.
//! An auditor recomputes it, for example in Python:
//!
//! ```text
//! import hashlib, struct
//! def s(x):
//!     b = x.encode("utf-8")
//!     return struct.pack(">q", len(b)) + b
//! def entry_hash(seq, application_id, at, status, detail, message_sha256, prev_hash):
//!     m = s("kopplung-audit-v1") + struct.pack(">q", seq) + s(application_id) + s(at)
//!     m += s(status) + s(detail)
//!     m += b"\x00" if message_sha256 is None else b"\x01" + s(message_sha256)
//!     m += s(prev_hash)
//!     return hashlib.sha256(m).hexdigest()
//! ```
//!
//! # What the chain shows and what it does not
//!
//! The chain shows any change to stored entries, any entry removed from the middle and
//! any entry removed from the end as long as SQLite's `sqlite_sequence` still remembers
//! the highest `seq` issued. Someone who can write the database file can rebuild the
//! whole chain after the point they changed; against that, keep signed exports
//! (`kopplung audit export`) or note the latest `hash` outside the hub.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// The domain tag at the start of every encoded entry (version of the encoding).
pub const DOMAIN: &str = "kopplung-audit-v1";

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the audit trail, every field as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub application_id: String,
    /// RFC 3339, UTC, as stored (the hash covers this text).
    pub at: String,
    pub status: String,
    pub detail: String,
    pub message_sha256: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// The next entry after `prev` (`None`: the first), with its hash.
    pub fn next(
        prev: Option<(i64, &str)>,
        application_id: Uuid,
        at: &str,
        status: &str,
        detail: &str,
        message_sha256: Option<String>,
    ) -> Self {
        let (seq, prev_hash) = match prev {
            Some((seq, hash)) => (seq.saturating_add(1), hash.to_owned()),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let mut entry = Self {
            seq,
            application_id: application_id.to_string(),
            at: at.to_owned(),
            status: status.to_owned(),
            detail: detail.to_owned(),
            message_sha256,
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.computed_hash();
        entry
    }

    /// The canonical encoding of every field but `hash` (see the module documentation).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        fn int(out: &mut Vec<u8>, n: i64) {
            out.extend_from_slice(&n.to_be_bytes());
        }
        fn text(out: &mut Vec<u8>, s: &str) {
            int(out, i64::try_from(s.len()).unwrap_or(i64::MAX));
            out.extend_from_slice(s.as_bytes());
        }
        let mut out = Vec::with_capacity(
            128 + self.application_id.len()
                + self.at.len()
                + self.status.len()
                + self.detail.len()
                + self.prev_hash.len(),
        );
        text(&mut out, DOMAIN);
        int(&mut out, self.seq);
        text(&mut out, &self.application_id);
        text(&mut out, &self.at);
        text(&mut out, &self.status);
        text(&mut out, &self.detail);
        match &self.message_sha256 {
            None => out.push(0),
            Some(hash) => {
                out.push(1);
                text(&mut out, hash);
            }
        }
        text(&mut out, &self.prev_hash);
        out
    }

    /// The hash this entry must carry, recomputed from its fields.
    pub fn computed_hash(&self) -> String {
        sha256_hex(&self.canonical_bytes())
    }
}

/// The end of the chain the next entry links to, from the last stored entry and the
/// highest sequence number ever issued: `None` before the first entry. If entries at the
/// end were removed, the highest number issued still counts (the next entry leaves a gap
/// that verification reports) and the link goes to the last entry left, or genesis.
pub fn chain_end(
    last_seq: Option<i64>,
    last_hash: Option<String>,
    issued: Option<i64>,
) -> Option<(i64, String)> {
    let last = last_seq.zip(last_hash);
    let seq = last
        .as_ref()
        .map_or(0, |(seq, _)| *seq)
        .max(issued.unwrap_or(0));
    let hash = last.map_or_else(|| GENESIS_HASH.to_owned(), |(_, hash)| hash);
    (seq > 0).then_some((seq, hash))
}

/// Lowercase hex SHA-256 (of a sealed message, or of an encoded entry).
pub fn sha256_hex(bytes: &[u8]) -> String {
    // The digest object, not the one-shot `sha256`: with OpenSSL 3 that looks the
    // algorithm up for every call, which showed up in profiles (several per state change).
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(bytes);
    hex::encode(hasher.finish())
}

/// What is wrong at a broken link.
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
    /// The row cannot be read as an audit entry (a column of the wrong type).
    Unreadable(String),
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
        }
    }
}

/// The first broken link of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The entry at which the chain breaks (for [`Problem::Truncated`]: the first
    /// missing one).
    pub seq: i64,
    pub problem: Problem,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.problem)
    }
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries checked (all stored entries).
    pub checked: u64,
    /// Entries at which a link is broken (each counted once).
    pub broken: u64,
    pub first_break: Option<Break>,
}

impl AuditReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Checks the chain entry by entry, in `seq` order, so that the store can stream it.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    checked: u64,
    broken: u64,
    first_break: Option<Break>,
    /// The last entry seen: its seq and, if it could be read, its stored hash.
    last: Option<(i64, Option<String>)>,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
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

    /// The report. `highest_issued` is the highest `seq` the store ever handed out
    /// (SQLite: `sqlite_sequence`), to notice entries removed from the end.
    pub fn finish(mut self, highest_issued: Option<i64>) -> AuditReport {
        let last_seq = self.last.as_ref().map_or(0, |(seq, _)| *seq);
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
        }
    }

    fn record(&mut self, seq: i64, problem: Problem) {
        self.broken += 1;
        if self.first_break.is_none() {
            self.first_break = Some(Break { seq, problem });
        }
    }
}

/// Checks a complete chain held in memory.
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

/// One entry as an export shows it (the application id stands once, above the entries).
#[derive(Debug, Serialize)]
struct LaufzettelEntry<'a> {
    seq: i64,
    at: &'a str,
    status: &'a str,
    detail: &'a str,
    message_sha256: Option<&'a str>,
    prev_hash: &'a str,
    hash: &'a str,
}

#[derive(Debug, Serialize)]
struct Laufzettel<'a> {
    application_id: Uuid,
    entries: Vec<LaufzettelEntry<'a>>,
    #[serde(with = "time::serde::rfc3339")]
    exported_at: OffsetDateTime,
}

/// The Laufzettel of one application as JSON:
/// `{application_id, entries: [{seq, at, status, detail, message_sha256, prev_hash,
/// hash}], exported_at}`. These bytes are what the hub signs.
pub fn laufzettel_json(
    application_id: Uuid,
    entries: &[AuditEntry],
    exported_at: OffsetDateTime,
) -> Result<String, serde_json::Error> {
    let laufzettel = Laufzettel {
        application_id,
        entries: entries
            .iter()
            .map(|e| LaufzettelEntry {
                seq: e.seq,
                at: &e.at,
                status: &e.status,
                detail: &e.detail,
                message_sha256: e.message_sha256.as_deref(),
                prev_hash: &e.prev_hash,
                hash: &e.hash,
            })
            .collect(),
        exported_at,
    };
    serde_json::to_string_pretty(&laufzettel)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

    fn app() -> Uuid {
        Uuid::parse_str(APP).unwrap()
    }

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let prev = entries.last().map(|e| (e.seq, e.hash.as_str()));
            let (status, message) = match i % 3 {
                0 => ("accepted", None),
                1 => (
                    "prepared",
                    Some(sha256_hex(format!("sealed {i}").as_bytes())),
                ),
                _ => (
                    "delivered",
                    Some(sha256_hex(format!("sealed {}", i - 1).as_bytes())),
                ),
            };
            let entry = AuditEntry::next(
                prev,
                app(),
                &format!("2025-01-0{}T10:00:00Z", i % 9 + 1),
                status,
                &format!("step {i}"),
                message,
            );
            entries.push(entry);
        }
        entries
    }

    #[test]
    fn the_hash_of_a_known_entry() {
        let first = AuditEntry::next(
            None,
            app(),
            "2025-01-02T03:04:05Z",
            "accepted",
            "accepted from client demo",
            None,
        );
        assert_eq!(first.seq, 1);
        assert_eq!(first.prev_hash, GENESIS_HASH);
        assert_eq!(GENESIS_HASH.len(), 64);
        // The encoding spelled out byte by byte, as the module documentation defines it.
        let text = |s: &str| [&(s.len() as i64).to_be_bytes()[..], s.as_bytes()].concat();
        let expected = [
            text(DOMAIN),
            1i64.to_be_bytes().to_vec(),
            text(APP),
            text("2025-01-02T03:04:05Z"),
            text("accepted"),
            text("accepted from client demo"),
            vec![0],
            text(GENESIS_HASH),
        ]
        .concat();
        assert_eq!(first.canonical_bytes(), expected);
        // Fixed values, computed independently with the Python snippet of the module
        // documentation. A change here breaks every stored chain.
        assert_eq!(
            first.hash,
            "68175068689237d6033d1a2413cb21eb99243a8989cef90978dcf89998e6f89c"
        );
        let message = sha256_hex(b"sealed message");
        assert_eq!(
            message,
            "78a0f627ebf2e93e683321dea872f78d6cb71cd79081c875cb84e77c6e2effc6"
        );
        let second = AuditEntry::next(
            Some((first.seq, &first.hash)),
            app(),
            "2025-01-02T03:04:06Z",
            "prepared",
            "message sealed",
            Some(message),
        );
        assert_eq!(second.seq, 2);
        assert_eq!(second.prev_hash, first.hash);
        assert_eq!(
            second.hash,
            "e05e2ee3a7d8e02d858e6e18a19aed47cfacc51e0f11027e1ce972ea8cf24959"
        );
    }

    #[test]
    fn a_message_hash_and_no_message_hash_differ() {
        let without = AuditEntry::next(None, app(), "t", "prepared", "d", None);
        let empty = AuditEntry::next(None, app(), "t", "prepared", "d", Some(String::new()));
        assert_ne!(without.hash, empty.hash);
        // Moving bytes between fields changes the hash (length prefixes).
        let a = AuditEntry::next(None, app(), "t", "prepared", "ab", None);
        let b = AuditEntry::next(None, app(), "t", "prepareda", "b", None);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn an_intact_chain_verifies() {
        let entries = chain(7);
        let report = verify_chain(&entries, Some(7));
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.checked, 7);
        assert_eq!(report.broken, 0);
        assert_eq!(verify_chain(&[], None).checked, 0);
        assert!(verify_chain(&[], None).is_intact());
    }

    #[test]
    fn a_changed_detail_is_a_hash_mismatch_at_its_seq() {
        let mut entries = chain(6);
        entries[3].detail.push('!');
        let report = verify_chain(&entries, None);
        let first = report.first_break.unwrap();
        assert_eq!(first.seq, 4);
        assert!(matches!(first.problem, Problem::HashMismatch { .. }));
        assert_eq!(report.checked, 6);
        assert_eq!(report.broken, 1);
    }

    #[test]
    fn a_changed_message_hash_is_found() {
        let mut entries = chain(6);
        entries[4].message_sha256 = None;
        let first = verify_chain(&entries, None).first_break.unwrap();
        assert_eq!(first.seq, 5);
        assert!(matches!(first.problem, Problem::HashMismatch { .. }));
    }

    #[test]
    fn a_changed_prev_hash_is_named() {
        let mut entries = chain(5);
        entries[2].prev_hash = GENESIS_HASH.into();
        let first = verify_chain(&entries, None).first_break.unwrap();
        assert_eq!(first.seq, 3);
        assert!(matches!(first.problem, Problem::PrevHashMismatch { .. }));
    }

    #[test]
    fn a_rehashed_entry_breaks_the_next_link() {
        let mut entries = chain(5);
        entries[1].detail = "rewritten".into();
        entries[1].hash = entries[1].computed_hash();
        let first = verify_chain(&entries, None).first_break.unwrap();
        assert_eq!(first.seq, 3);
        assert!(matches!(first.problem, Problem::PrevHashMismatch { .. }));
    }

    #[test]
    fn a_removed_entry_is_a_gap() {
        let mut entries = chain(6);
        entries.remove(2);
        let first = verify_chain(&entries, None).first_break.unwrap();
        assert_eq!(first.seq, 4);
        assert_eq!(first.problem, Problem::Gap { expected: 3 });

        let mut entries = chain(3);
        entries.remove(0);
        let first = verify_chain(&entries, None).first_break.unwrap();
        assert_eq!(
            first,
            Break {
                seq: 2,
                problem: Problem::Gap { expected: 1 }
            }
        );
    }

    #[test]
    fn entries_removed_from_the_end_are_noticed() {
        let mut entries = chain(6);
        entries.truncate(4);
        let report = verify_chain(&entries, Some(6));
        assert_eq!(
            report.first_break,
            Some(Break {
                seq: 5,
                problem: Problem::Truncated { highest_issued: 6 }
            })
        );
        assert!(verify_chain(&entries, Some(4)).is_intact());
    }

    #[test]
    fn the_first_of_several_breaks_is_named() {
        let mut entries = chain(8);
        entries[6].status = "delivered!".into();
        entries[2].at = "2025-01-01T00:00:00Z".into();
        let report = verify_chain(&entries, None);
        assert_eq!(report.first_break.unwrap().seq, 3);
        assert_eq!(report.broken, 2);
        assert_eq!(report.checked, 8);
    }

    #[test]
    fn an_unreadable_row_breaks_the_chain() {
        let entries = chain(4);
        let mut verifier = ChainVerifier::new();
        verifier.check(&entries[0]);
        verifier.unreadable(2, "detail is not text".into());
        verifier.check(&entries[2]);
        verifier.check(&entries[3]);
        let report = verifier.finish(Some(4));
        assert_eq!(report.checked, 4);
        assert_eq!(report.broken, 1);
        let first = report.first_break.unwrap();
        assert_eq!(first.seq, 2);
        assert!(first.to_string().starts_with("seq 2: unreadable entry"));
    }

    #[test]
    fn the_laufzettel_lists_the_entries_without_the_application_id() {
        let entries = chain(3);
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&laufzettel_json(app(), &entries, at).unwrap()).unwrap();
        assert_eq!(json["application_id"], APP);
        assert_eq!(json["exported_at"], "2023-11-14T22:13:20Z");
        let listed = json["entries"].as_array().unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0]["seq"], 1);
        assert_eq!(listed[0]["message_sha256"], serde_json::Value::Null);
        assert_eq!(
            listed[1]["message_sha256"],
            entries[1].message_sha256.as_deref().unwrap()
        );
        assert_eq!(listed[2]["prev_hash"], entries[1].hash);
        assert!(listed[0].get("application_id").is_none());
    }
}
