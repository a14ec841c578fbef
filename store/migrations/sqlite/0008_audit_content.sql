-- The audit trail binds content and its head is checkpointed (see router/src/audit/).
--
-- Entries of format 2 carry a content hash: the `accepted` entry of the form data and
-- attachments, an event's of its decision document, a retention deletion's of what is
-- left. Entries written before stay format 1 (no content hash) and verify as before.
ALTER TABLE audit_log ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN content_sha256 TEXT NULL;

-- Signed checkpoints of the chain's head (seq and hash at a time), written by the hub at
-- start, periodically and at shutdown: a truncated tail is noticed even when the
-- sequence was reset with it. The signature is a detached CMS SignedData (DER) by the
-- hub's signing certificate over the statement audit/checkpoint.rs defines.
CREATE TABLE audit_checkpoints (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    at        TEXT NOT NULL,                 -- RFC 3339, UTC, whole seconds, as signed
    signature BLOB NOT NULL
);
