//! The audit trail (Laufzettel): a tamper-evident record of every state change of every
//! application, bound to what the hub stored about it.
//!
//! Each state change the store commits (accepted, prepared, delivered, invalid,
//! dead-lettered, the procedure's events, a retention deletion, a look at personal data)
//! appends one entry to the table `audit_log`, in the same transaction as the change and
//! its history entry. The entries form chains: SQLite's single writer appends to one
//! chain ([`GLOBAL_CHAIN`]), each PostgreSQL instance to chains of its own (named by its
//! instance id: `<id>`, `<id>/1`, …), so that instances never wait for each other; entries written before
//! that (migration 0011) are the global chain. Within a chain every entry carries the
//! hash of the entry before it (`prev_hash`) and its own hash over all its fields
//! (`hash`). Changing, removing or re-ordering an entry breaks the chain at that point.
//! The signed checkpoints name the head of every chain at once, which ties the chains
//! together: a chain cut short or removed whole is noticed against them.
//!
//! The entries also bind the content they are about, by hash: the `accepted` entry the
//! stored form data and attachments ([`content`]), the entries of the sealed message and
//! of the procedure's signed receipts those bytes, and an event with a decision document
//! that document. [`AuditVerifier`] re-hashes what is stored against its entries and
//! names the first mismatch. Signed checkpoints of the chain's head ([`checkpoint`])
//! show entries removed from the end, also when the sequence was reset.
//!
//! # What an entry holds
//!
//! | field | content |
//! |---|---|
//! | `chain` | the chain: `global`, or one of a PostgreSQL instance's (`<id>`, `<id>/<n>`); not hashed (bound by the links and the checkpoints) |
//! | `seq` | position in the chain: 1, 2, 3, … without gaps |
//! | `version` | format of the entry: 1 (written before content hashes) or 2 |
//! | `application_id` | the application's UUID, lowercase with hyphens |
//! | `at` | time of the change, RFC 3339 in UTC, exactly as stored |
//! | `status` | the new status (`accepted`, `prepared`, `delivered`, `received`, …) |
//! | `detail` | the history's detail text: ids, procedure, transport, field names; never form data |
//! | `message_sha256` | lowercase hex SHA-256 of the sealed message once there is one; for a procedure's event (`received`, `rejected`, `in_progress`, `query`, `decided`) of its signed receipt; else none |
//! | `content_sha256` | format 2 only: the [content hash](content) of the form data and attachments (`accepted`, and the retention deletion: of what is left) or of an event's decision document; else none |
//! | `prev_hash` | `hash` of the entry `seq - 1`; 64 zeros (`"0" * 64`) for `seq` 1 |
//! | `hash` | lowercase hex SHA-256 of the encoding below |
//!
//! The trail keeps no personal data: messages, receipts and content appear only as hashes.
//!
//! # The hash of an entry
//!
//! `hash` is the lowercase hex SHA-256 of this byte string, the fields in this order:
//!
//! ```text
//! str("kopplung-audit-v2")     domain tag: "kopplung-audit-v1" for format 1
//! i64(seq)
//! str(application_id)
//! str(at)
//! str(status)
//! str(detail)
//! opt(message_sha256)
//! opt(content_sha256)          format 2 only: format 1 has no such field
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
//! def o(x):
//!     return b"\x00" if x is None else b"\x01" + s(x)
//! def entry_hash(version, seq, application_id, at, status, detail,
//!                message_sha256, content_sha256, prev_hash):
//!     m = s("kopplung-audit-v%d" % version) + struct.pack(">q", seq)
//!     m += s(application_id) + s(at) + s(status) + s(detail) + o(message_sha256)
//!     if version >= 2:
//!         m += o(content_sha256)
//!     m += s(prev_hash)
//!     return hashlib.sha256(m).hexdigest()
//! ```
//!
//! # What verification shows and what it does not
//!
//! The chain shows any change to stored entries, any entry removed from the middle and
//! any entry removed from the end as long as the store still remembers the highest `seq`
//! issued (SQLite's `sqlite_sequence`, PostgreSQL's `audit_chains`, per chain). The content hashes
//! show any change to stored form data, attachments, sealed messages, signed receipts and
//! decision documents, except for applications whose personal data retention deleted (by
//! design; the deletion is an entry of its own) and for what entries of format 1 did not
//! bind (form data, attachments, documents). A checkpoint shows entries removed from the
//! end even with the sequence reset — as long as the checkpoint survives: someone who can
//! write the database can remove the checkpoints stored there too, and rebuild the chain
//! after the point they changed. Against that, keep checkpoints outside the hub
//! (`kopplung audit checkpoints`, or the ones in an export) and check with them
//! (`kopplung audit verify --checkpoints FILE`).

pub mod checkpoint;
pub mod content;
mod verify;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

pub use checkpoint::{ChainHead, Checkpoint, CheckpointTrust};
pub use content::{Content, FileDigest, FileHasher, StoredContent};
pub use verify::{
    AuditReport, AuditVerifier, Break, ChainVerifier, CheckpointReport, ContentReport, Problem,
    verify_chain,
};

/// The domain tag of an entry of format 1 (before content hashes).
pub const DOMAIN_V1: &str = "kopplung-audit-v1";

/// The domain tag of an entry of format 2.
pub const DOMAIN_V2: &str = "kopplung-audit-v2";

/// The format new entries are written in.
pub const CURRENT_VERSION: i64 = 2;

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain of SQLite's single writer, and the one chain all PostgreSQL instances
/// shared before each instance got its own (migration 0011).
pub const GLOBAL_CHAIN: &str = "global";

/// One entry of the audit trail, every field as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// The chain the entry belongs to: [`GLOBAL_CHAIN`], or one of a PostgreSQL
    /// instance's (`<id>`, `<id>/<n>`).
    /// Not part of the hash (formats 1 and 2 stay as they are): the links within the
    /// chain and the checkpoints, which name every chain's head, bind it.
    pub chain: String,
    pub seq: i64,
    /// The format: 1 (before content hashes) or 2.
    pub version: i64,
    pub application_id: String,
    /// RFC 3339, UTC, as stored (the hash covers this text).
    pub at: String,
    pub status: String,
    pub detail: String,
    /// The sealed message's hash, or an event's signed receipt's (see the module
    /// documentation).
    pub message_sha256: Option<String>,
    /// The [content hash](content) the entry binds (format 2).
    pub content_sha256: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// What a new entry binds by hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    /// The sealed message's or the signed receipt's SHA-256 (hex).
    pub message_sha256: Option<String>,
    /// The [content hash](content::content_sha256).
    pub content_sha256: Option<String>,
}

impl Binding {
    /// Binds a sealed message or a signed receipt by its hash.
    pub fn message(message_sha256: Option<String>) -> Self {
        Self {
            message_sha256,
            content_sha256: None,
        }
    }
}

impl AuditEntry {
    /// The next entry of `chain` (e.g. [`GLOBAL_CHAIN`]) after `prev` (`None`: the
    /// chain's first), in the current format, with its hash.
    pub fn next_in(
        chain: &str,
        prev: Option<(i64, &str)>,
        application_id: Uuid,
        at: &str,
        status: &str,
        detail: &str,
        binding: Binding,
    ) -> Self {
        let (seq, prev_hash) = match prev {
            Some((seq, hash)) => (seq.saturating_add(1), hash.to_owned()),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let mut entry = Self {
            chain: chain.to_owned(),
            seq,
            version: CURRENT_VERSION,
            application_id: application_id.to_string(),
            at: at.to_owned(),
            status: status.to_owned(),
            detail: detail.to_owned(),
            message_sha256: binding.message_sha256,
            content_sha256: binding.content_sha256,
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.computed_hash();
        entry
    }

    /// The canonical encoding of every field but `hash` (see the module documentation),
    /// in the entry's format.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            200 + self.application_id.len()
                + self.at.len()
                + self.status.len()
                + self.detail.len()
                + self.prev_hash.len(),
        );
        if self.version == 1 {
            put_text(&mut out, DOMAIN_V1);
        } else {
            // Format 2 and (to be refused by the verifier) any unknown one.
            put_text(&mut out, &format!("kopplung-audit-v{}", self.version));
        }
        put_int(&mut out, self.seq);
        put_text(&mut out, &self.application_id);
        put_text(&mut out, &self.at);
        put_text(&mut out, &self.status);
        put_text(&mut out, &self.detail);
        put_opt(&mut out, self.message_sha256.as_deref());
        if self.version != 1 {
            put_opt(&mut out, self.content_sha256.as_deref());
        }
        put_text(&mut out, &self.prev_hash);
        out
    }

    /// The hash this entry must carry, recomputed from its fields.
    pub fn computed_hash(&self) -> String {
        sha256_hex(&self.canonical_bytes())
    }

    /// An event of the procedure (its `message_sha256` is a signed receipt's).
    pub fn is_event(&self) -> bool {
        is_event_status(&self.status)
    }
}

/// The states a procedure's signed event moves an application to: their entries carry
/// the signed receipt's hash, not the sealed message's.
pub fn is_event_status(status: &str) -> bool {
    matches!(
        status,
        "received" | "rejected" | "in_progress" | "query" | "decided"
    )
}

/// `i64(n)` of the encodings.
pub(crate) fn put_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(&n.to_be_bytes());
}

/// `str(s)` of the encodings.
pub(crate) fn put_text(out: &mut Vec<u8>, s: &str) {
    put_int(out, i64::try_from(s.len()).unwrap_or(i64::MAX));
    out.extend_from_slice(s.as_bytes());
}

/// `opt(s)` of the encodings.
pub(crate) fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_text(out, s);
        }
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

/// One entry as an export shows it (the application id stands once, above the entries).
#[derive(Debug, Serialize)]
struct LaufzettelEntry<'a> {
    /// Only for entries of an instance's chain: exports of the global chain stay as
    /// they were.
    #[serde(skip_serializing_if = "is_global")]
    chain: &'a str,
    seq: i64,
    version: i64,
    at: &'a str,
    status: &'a str,
    detail: &'a str,
    message_sha256: Option<&'a str>,
    content_sha256: Option<&'a str>,
    prev_hash: &'a str,
    hash: &'a str,
}

fn is_global(chain: &&str) -> bool {
    *chain == GLOBAL_CHAIN
}

#[derive(Debug, Serialize)]
struct Laufzettel<'a> {
    application_id: Uuid,
    entries: Vec<LaufzettelEntry<'a>>,
    #[serde(with = "time::serde::rfc3339")]
    exported_at: OffsetDateTime,
}

/// The Laufzettel of one application as JSON:
/// `{application_id, entries: [{chain (unless global), seq, version, at, status, detail, message_sha256,
/// content_sha256, prev_hash, hash}], exported_at}`. These bytes are what the hub signs.
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
                chain: &e.chain,
                seq: e.seq,
                version: e.version,
                at: &e.at,
                status: &e.status,
                detail: &e.detail,
                message_sha256: e.message_sha256.as_deref(),
                content_sha256: e.content_sha256.as_deref(),
                prev_hash: &e.prev_hash,
                hash: &e.hash,
            })
            .collect(),
        exported_at,
    };
    serde_json::to_string_pretty(&laufzettel)
}

#[cfg(test)]
mod tests;
