//! What the entries bind besides themselves, and how a verifier compares it with what is
//! stored.
//!
//! # The content hash
//!
//! An entry of format 2 binds form data and files by a content hash (`content_sha256`):
//! the lowercase hex SHA-256 of
//!
//! ```text
//! str("kopplung-content-v1")
//! opt(payload)             the form data (JSON) exactly as stored; none for a document
//! i64(number of files)
//! per file, in order:      the attachments by position, or the one decision document
//!   str(filename)
//!   str(media_type)
//!   i64(size in bytes)
//!   str(sha512)            lowercase hex SHA-512 of the file's bytes
//! only if the applicant was identified (an application's form, never a document):
//!   str("authentication")
//!   str(authentication)    the identification (JSON) exactly as stored
//! ```
//!
//! (`str`, `opt`, `i64` as for entries, see [`super`]). An anonymous application's hash
//! is what it was before identifications were stored: the trailer is simply absent, and
//! since every part before it is length-prefixed, no content without one hashes like
//! content with one. In Python:
//!
//! ```text
//! def content_hash(payload, files, authentication=None):
//!     # files: [(filename, media_type, size, sha512)]
//!     m = s("kopplung-content-v1") + o(payload) + struct.pack(">q", len(files))
//!     for name, media_type, size, sha512 in files:
//!         m += s(name) + s(media_type) + struct.pack(">q", size) + s(sha512)
//!     if authentication is not None:
//!         m += s("authentication") + s(authentication)
//!     return hashlib.sha256(m).hexdigest()
//! ```
//!
//! The `accepted` entry binds the application's form data, attachments (an upload by
//! the SHA-512 computed while it streamed in) and the applicant's identification; the entry of a retention deletion binds
//! what is left (`{}`, no files); an event's entry binds its decision document (no
//! payload, one file). The sealed message and a signed receipt are bound by
//! `message_sha256`, the SHA-256 of their bytes (also in entries of format 1).
//!
//! # What is compared
//!
//! - The stored form data and attachments against the latest entry that binds them (the
//!   `accepted` entry, or the deletion's).
//! - The stored sealed message against every entry naming a sealed message.
//! - Every event entry's receipt hash against the application's stored receipts, every
//!   event entry's document hash against its stored documents.
//!
//! Entries before an application's retention deletion are not compared: their content is
//! gone by design, and the deletion is an entry of its own. Entries of format 1 bound no
//! form data and no documents: they are counted, not compared.

use std::fmt;

use super::AuditEntry;
use super::{put_int, put_opt, put_text, sha256_hex};

/// The domain tag of a content hash.
pub const CONTENT_DOMAIN: &str = "kopplung-content-v1";

/// How the detail of a retention deletion begins (it is an entry of its own).
pub const PURGE_DETAIL_PREFIX: &str = "retention: personal data deleted";

/// The form data a retention deletion leaves.
pub const PURGED_PAYLOAD: &str = "{}";

/// The detail of a retention deletion's history and audit entry.
pub fn purge_detail(attachments: u64, documents: u64) -> String {
    format!(
        "{PURGE_DETAIL_PREFIX} (form data, {attachments} attachment(s), sealed message, {documents} document(s), mailbox texts, signed receipts); ids, states and hashes kept"
    )
}

/// Whether an entry records a retention deletion.
pub fn is_purge(entry: &AuditEntry) -> bool {
    entry.detail.starts_with(PURGE_DETAIL_PREFIX)
}

/// One file as the content hash covers it.
#[derive(Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Personal data: only hashed, never shown.
    pub filename: String,
    pub media_type: String,
    pub size: u64,
    /// Lowercase hex SHA-512 of the bytes.
    pub sha512: String,
}

impl fmt::Debug for FileDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No file name: it may name the citizen.
        f.debug_struct("FileDigest")
            .field("media_type", &self.media_type)
            .field("size", &self.size)
            .field("sha512", &self.sha512)
            .finish_non_exhaustive()
    }
}

/// Hashes a file chunk by chunk: an upload is never loaded whole.
pub struct FileHasher {
    hasher: openssl::sha::Sha512,
    size: u64,
}

impl Default for FileHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl FileHasher {
    pub fn new() -> Self {
        Self {
            hasher: openssl::sha::Sha512::new(),
            size: 0,
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.size = self.size.saturating_add(chunk.len() as u64);
    }

    pub fn finish(self, filename: &str, media_type: &str) -> FileDigest {
        FileDigest {
            filename: filename.to_owned(),
            media_type: media_type.to_owned(),
            size: self.size,
            sha512: hex::encode(self.hasher.finish()),
        }
    }
}

/// The content hash of form data (if any) and files (see the module documentation).
pub fn content_sha256(payload: Option<&str>, files: &[FileDigest]) -> String {
    sha256_hex(&content_bytes(payload, files))
}

/// What [`content_sha256`] hashes.
fn content_bytes(payload: Option<&str>, files: &[FileDigest]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + payload.map_or(0, str::len) + files.len() * 200);
    put_text(&mut out, CONTENT_DOMAIN);
    put_opt(&mut out, payload);
    put_int(&mut out, i64::try_from(files.len()).unwrap_or(i64::MAX));
    for file in files {
        put_text(&mut out, &file.filename);
        put_text(&mut out, &file.media_type);
        put_int(&mut out, i64::try_from(file.size).unwrap_or(i64::MAX));
        put_text(&mut out, &file.sha512);
    }
    out
}

/// The content hash of an application's form data, attachments and, if the applicant
/// was identified, the identification as stored (see the module documentation).
pub fn application_content_sha256(
    payload: &str,
    files: &[FileDigest],
    authentication: Option<&str>,
) -> String {
    let Some(authentication) = authentication else {
        return content_sha256(Some(payload), files);
    };
    let mut out = content_bytes(Some(payload), files);
    put_text(&mut out, AUTHENTICATION_TAG);
    put_text(&mut out, authentication);
    sha256_hex(&out)
}

/// The tag before an identification in a content hash.
const AUTHENTICATION_TAG: &str = "authentication";

/// The content hash of a decision document.
pub fn document_content_sha256(document: &FileDigest) -> String {
    content_sha256(None, std::slice::from_ref(document))
}

/// The content hash of what a retention deletion leaves: `{}` and no files.
pub fn purged_content_sha256() -> String {
    content_sha256(Some(PURGED_PAYLOAD), &[])
}

/// What an entry binds, for naming a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Form data and attachments.
    Payload,
    SealedMessage,
    Receipt,
    Document,
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Payload => "payload (form data and attachments)",
            Self::SealedMessage => "sealed message",
            Self::Receipt => "signed receipt",
            Self::Document => "decision document",
        })
    }
}

/// An application's stored content, each part hashed by the store (see [`Needs`] for
/// which parts it must load).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredContent {
    /// Whether the application's row exists.
    pub exists: bool,
    /// The form data exactly as stored.
    pub payload: String,
    /// The applicant's identification exactly as stored (none: anonymous).
    pub authentication: Option<String>,
    /// The attachments by position, hashed from their stored bytes.
    pub attachments: Vec<FileDigest>,
    /// SHA-256 (hex) of the stored sealed message, if there is one.
    pub sealed_sha256: Option<String>,
    /// SHA-256 (hex) of each stored signed receipt.
    pub receipts_sha256: Vec<String>,
    /// The stored documents, hashed from their bytes.
    pub documents: Vec<FileDigest>,
}

/// Which parts of an application's stored content its entries need compared: the store
/// loads (and hashes) only those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub payload: bool,
    pub sealed: bool,
    pub receipts: bool,
    pub documents: bool,
}

impl Needs {
    pub fn any(self) -> bool {
        self.payload || self.sealed || self.receipts || self.documents
    }
}

/// What one entry's content check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The entry binds no content.
    Nothing,
    /// Everything it binds was re-hashed and matches.
    Matched,
    /// It binds content that retention deleted.
    Purged,
    /// Format 1: it did not bind content that format 2 binds.
    BeforeContentHashes,
    /// What it binds does not match (`missing`: nothing of the kind is stored).
    Mismatch { content: Content, missing: bool },
}

/// What one entry binds, by kind.
struct Bound<'a> {
    payload: Option<&'a str>,
    sealed: Option<&'a str>,
    receipt: Option<&'a str>,
    document: Option<&'a str>,
    /// Format 1 content that was not bound (form data, a document).
    unbound: bool,
}

fn bound(entry: &AuditEntry) -> Bound<'_> {
    // A deletion keeps the final state (an event's), but binds what is left of the form.
    let event = entry.is_event() && !is_purge(entry);
    let content = (entry.version >= 2)
        .then_some(entry.content_sha256.as_deref())
        .flatten();
    let message = entry.message_sha256.as_deref();
    Bound {
        payload: content.filter(|_| !event),
        sealed: message.filter(|_| !event),
        receipt: message.filter(|_| event),
        document: content.filter(|_| event),
        // The intake's entry, and an event that (as its detail says) came with a document.
        unbound: entry.version == 1
            && (entry.status == "accepted" || (event && entry.detail.contains("; document "))),
    }
}

/// The position among the application's entries of its retention deletion, if it had
/// one. (Positions, not seqs: an application's entries may lie in several chains.)
fn purged_at(entries: &[AuditEntry]) -> Option<usize> {
    entries.iter().position(is_purge)
}

/// What the store must load to check these entries (one application's, in the order
/// they were written).
pub fn needs(entries: &[AuditEntry]) -> Needs {
    let purge = purged_at(entries);
    let mut needs = Needs::default();
    for (_, entry) in entries
        .iter()
        .enumerate()
        .filter(|(i, _)| purge.is_none_or(|p| *i >= p))
    {
        let bound = bound(entry);
        needs.payload |= bound.payload.is_some();
        needs.sealed |= bound.sealed.is_some();
        needs.receipts |= bound.receipt.is_some();
        needs.documents |= bound.document.is_some();
    }
    needs
}

/// Compares one application's entries (in the order they were written) with its stored
/// content: one outcome per entry, by its position in `entries`.
pub(super) fn check(entries: &[AuditEntry], stored: &StoredContent) -> Vec<(usize, Outcome)> {
    let purge = purged_at(entries);
    // The form data and attachments as they are now belong to the latest entry that
    // binds them; earlier ones are replaced by it (only by a deletion, so far).
    let latest_payload = entries.iter().rposition(|e| bound(e).payload.is_some());
    let payload_now = stored.exists.then(|| {
        application_content_sha256(
            &stored.payload,
            &stored.attachments,
            stored.authentication.as_deref(),
        )
    });
    let documents: Vec<String> = stored
        .documents
        .iter()
        .map(document_content_sha256)
        .collect();
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let bound = bound(entry);
            let binds = bound.payload.is_some()
                || bound.sealed.is_some()
                || bound.receipt.is_some()
                || bound.document.is_some();
            let outcome = if purge.is_some_and(|p| index < p) && (binds || bound.unbound) {
                Outcome::Purged
            } else if let Some(mismatch) = first_mismatch(
                &bound,
                Some(index) == latest_payload,
                payload_now.as_deref(),
                stored,
                &documents,
            ) {
                mismatch
            } else if bound.unbound {
                Outcome::BeforeContentHashes
            } else if binds {
                Outcome::Matched
            } else {
                Outcome::Nothing
            };
            (index, outcome)
        })
        .collect()
}

fn first_mismatch(
    bound: &Bound<'_>,
    latest_payload: bool,
    payload_now: Option<&str>,
    stored: &StoredContent,
    documents: &[String],
) -> Option<Outcome> {
    let mismatch = |content, missing| Some(Outcome::Mismatch { content, missing });
    if let Some(hash) = bound.payload.filter(|_| latest_payload) {
        match payload_now {
            None => return mismatch(Content::Payload, true),
            Some(now) if now != hash => return mismatch(Content::Payload, false),
            Some(_) => {}
        }
    }
    if let Some(hash) = bound.sealed {
        match stored.sealed_sha256.as_deref() {
            None => return mismatch(Content::SealedMessage, true),
            Some(now) if now != hash => return mismatch(Content::SealedMessage, false),
            Some(_) => {}
        }
    }
    if let Some(hash) = bound.receipt
        && !stored.receipts_sha256.iter().any(|r| r == hash)
    {
        return mismatch(Content::Receipt, stored.receipts_sha256.is_empty());
    }
    if let Some(hash) = bound.document
        && !documents.iter().any(|d| d == hash)
    {
        return mismatch(Content::Document, documents.is_empty());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Binding, GLOBAL_CHAIN, sha256_hex};

    const APP: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

    fn file(name: &str, bytes: &[u8]) -> FileDigest {
        let mut hasher = FileHasher::new();
        hasher.update(bytes);
        hasher.finish(name, "application/pdf")
    }

    /// One application's content and its entries: accepted, prepared, delivered,
    /// received, decided with a document.
    fn decided() -> (Vec<AuditEntry>, StoredContent) {
        let stored = StoredContent {
            exists: true,
            payload: r#"{"name":"Jörg"}"#.into(),
            authentication: None,
            attachments: vec![file("plan.pdf", b"plan")],
            sealed_sha256: Some(sha256_hex(b"sealed")),
            receipts_sha256: vec![sha256_hex(b"receipt"), sha256_hex(b"decision")],
            documents: vec![file("bescheid.pdf", b"bescheid")],
        };
        let app = uuid::Uuid::parse_str(APP).unwrap();
        let steps = [
            (
                "accepted",
                "accepted from client demo",
                Binding {
                    message_sha256: None,
                    content_sha256: Some(content_sha256(
                        Some(&stored.payload),
                        &stored.attachments,
                    )),
                },
            ),
            (
                "prepared",
                "sealed",
                Binding::message(Some(sha256_hex(b"sealed"))),
            ),
            (
                "delivered",
                "delivered",
                Binding::message(Some(sha256_hex(b"sealed"))),
            ),
            (
                "received",
                "receipt",
                Binding::message(Some(sha256_hex(b"receipt"))),
            ),
            (
                "decided",
                "event r-2; document d (SHA-512 …)",
                Binding {
                    message_sha256: Some(sha256_hex(b"decision")),
                    content_sha256: Some(document_content_sha256(&stored.documents[0])),
                },
            ),
        ];
        let mut entries: Vec<AuditEntry> = Vec::new();
        for (status, detail, binding) in steps {
            let prev = entries.last().map(|e| (e.seq, e.hash.as_str()));
            entries.push(AuditEntry::next_in(
                GLOBAL_CHAIN,
                prev,
                app,
                "t",
                status,
                detail,
                binding,
            ));
        }
        (entries, stored)
    }

    fn outcomes(entries: &[AuditEntry], stored: &StoredContent) -> Vec<Outcome> {
        check(entries, stored).into_iter().map(|(_, o)| o).collect()
    }

    #[test]
    fn stored_content_that_matches_its_entries_passes() {
        let (entries, stored) = decided();
        assert_eq!(outcomes(&entries, &stored), vec![Outcome::Matched; 5]);
        assert_eq!(
            needs(&entries),
            Needs {
                payload: true,
                sealed: true,
                receipts: true,
                documents: true
            }
        );
    }

    #[test]
    fn each_changed_part_is_named_at_its_entry() {
        let mismatch = |content| Outcome::Mismatch {
            content,
            missing: false,
        };
        let (entries, stored) = decided();
        type Change = fn(&mut StoredContent);
        let cases: [(Change, usize, Content); 6] = [
            (
                |s| s.payload = r#"{"name":"Jürgen"}"#.into(),
                0,
                Content::Payload,
            ),
            (
                |s| s.attachments[0].filename = "x.pdf".into(),
                0,
                Content::Payload,
            ),
            (
                |s| s.attachments[0].sha512 = "00".into(),
                0,
                Content::Payload,
            ),
            (
                |s| s.sealed_sha256 = Some("00".into()),
                1,
                Content::SealedMessage,
            ),
            (|s| s.receipts_sha256[0] = "00".into(), 3, Content::Receipt),
            (|s| s.documents[0].size += 1, 4, Content::Document),
        ];
        for (change, at, content) in cases {
            let mut changed = stored.clone();
            change(&mut changed);
            let found = outcomes(&entries, &changed);
            assert_eq!(found[at], mismatch(content), "{content}");
            let mismatches = found
                .iter()
                .filter(|o| matches!(o, Outcome::Mismatch { .. }))
                .count();
            // The sealed message is named by both entries that bind it.
            let expected = if content == Content::SealedMessage {
                2
            } else {
                1
            };
            assert_eq!(mismatches, expected, "{content}: {found:?}");
        }
        let mut gone = stored.clone();
        gone.exists = false;
        gone.sealed_sha256 = None;
        let found = outcomes(&entries, &gone);
        assert_eq!(
            found[0],
            Outcome::Mismatch {
                content: Content::Payload,
                missing: true
            }
        );
        assert_eq!(
            found[1],
            Outcome::Mismatch {
                content: Content::SealedMessage,
                missing: true
            }
        );
    }

    #[test]
    fn content_deleted_by_retention_is_not_compared_but_what_is_left_is() {
        let (mut entries, _) = decided();
        let app = uuid::Uuid::parse_str(APP).unwrap();
        let last = entries.last().map(|e| (e.seq, e.hash.clone())).unwrap();
        entries.push(AuditEntry::next_in(
            GLOBAL_CHAIN,
            Some((last.0, &last.1)),
            app,
            "t",
            "decided",
            &purge_detail(1, 1),
            Binding {
                message_sha256: None,
                content_sha256: Some(purged_content_sha256()),
            },
        ));
        let mut purged = StoredContent {
            exists: true,
            payload: PURGED_PAYLOAD.into(),
            ..StoredContent::default()
        };
        let found = outcomes(&entries, &purged);
        assert_eq!(&found[..5], &[Outcome::Purged; 5]);
        assert_eq!(found[5], Outcome::Matched);
        assert_eq!(
            needs(&entries),
            Needs {
                payload: true,
                ..Needs::default()
            }
        );
        // Form data written back after the deletion does not match it.
        purged.payload = r#"{"name":"Jörg"}"#.into();
        assert!(matches!(
            outcomes(&entries, &purged)[5],
            Outcome::Mismatch {
                content: Content::Payload,
                ..
            }
        ));
    }

    #[test]
    fn entries_of_format_1_are_counted_not_compared() {
        let (mut entries, stored) = decided();
        for entry in &mut entries {
            entry.version = 1;
            entry.content_sha256 = None;
        }
        let mut changed = stored.clone();
        changed.payload = "{}".into();
        changed.documents.clear();
        let found = outcomes(&entries, &changed);
        assert_eq!(
            found,
            vec![
                Outcome::BeforeContentHashes,
                Outcome::Matched,
                Outcome::Matched,
                Outcome::Matched,
                Outcome::BeforeContentHashes
            ]
        );
        // The sealed message and receipts were bound in format 1 too.
        changed.receipts_sha256.clear();
        assert!(matches!(
            outcomes(&entries, &changed)[3],
            Outcome::Mismatch {
                content: Content::Receipt,
                missing: true
            }
        ));
    }

    #[test]
    fn an_identification_is_bound_and_an_anonymous_application_hashes_as_before() {
        let files = [file("plan.pdf", b"plan")];
        let payload = r#"{"name":"Jörg"}"#;
        assert_eq!(
            application_content_sha256(payload, &files, None),
            content_sha256(Some(payload), &files)
        );
        let identified = r#"{"level":"substanziell"}"#;
        let bound = application_content_sha256(payload, &files, Some(identified));
        assert_ne!(bound, content_sha256(Some(payload), &files));
        assert_ne!(
            bound,
            application_content_sha256(payload, &files, Some(r#"{"level":"hoch"}"#))
        );
        // The accepted entry of an identified application, and what is stored of it.
        let (mut entries, mut stored) = decided();
        stored.authentication = Some(identified.into());
        entries.truncate(1);
        entries[0] = AuditEntry::next_in(
            GLOBAL_CHAIN,
            None,
            uuid::Uuid::parse_str(APP).unwrap(),
            "t",
            "accepted",
            "accepted from client demo",
            Binding {
                message_sha256: None,
                content_sha256: Some(bound),
            },
        );
        assert_eq!(outcomes(&entries, &stored), [Outcome::Matched]);
        for changed in [None, Some(r#"{"level":"hoch"}"#.to_owned())] {
            let mut changed_store = stored.clone();
            changed_store.authentication = changed;
            assert_eq!(
                outcomes(&entries, &changed_store),
                [Outcome::Mismatch {
                    content: Content::Payload,
                    missing: false
                }]
            );
        }
    }

    #[test]
    fn a_file_name_never_shows_in_debug_output() {
        let digest = file("Jörg Müller Ausweis.pdf", b"x");
        assert!(!format!("{digest:?}").contains("Jörg"));
    }
}
