-- The audit trail (Laufzettel): one entry per state change of an application, appended
-- in the same transaction as the change and its history entry, chained by SHA-256.
-- See router/src/audit.rs for the exact hash encoding. No personal data: `detail` is
-- the history's detail text (ids, procedure, transport, field names), and the sealed
-- message appears only as its hash.
--
-- Several hub instances append to the one chain: every transaction that appends takes
-- the store's transaction-level advisory lock first (see src/store/postgres.rs), so
-- appends are serialised and the chain cannot fork.

CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,       -- 1, 2, 3, ... issued under the lock; never reused
    application_id TEXT NOT NULL,            -- UUID (no foreign key: the trail outlives deletions)
    at             TEXT NOT NULL,            -- RFC 3339, UTC, exactly as hashed
    status         TEXT NOT NULL,
    detail         TEXT NOT NULL,
    message_sha256 TEXT NULL,                -- hex SHA-256 of the sealed message, once there is one
    prev_hash      TEXT NOT NULL,            -- hash of entry seq - 1; 64 zeros for the first
    hash           TEXT NOT NULL             -- hex SHA-256 over the canonical encoding of the fields above
);
CREATE INDEX audit_log_application ON audit_log (application_id, seq);

-- The highest seq ever issued (SQLite keeps it in sqlite_sequence): if entries at the
-- end are removed, verification reports it, and the next entry leaves a gap instead of
-- hiding the removal. Updated in the appending transaction, so a rollback issues nothing
-- (a sequence would leave gaps of its own).
CREATE TABLE audit_issued (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    seq       BIGINT NOT NULL
);
INSERT INTO audit_issued (singleton, seq) VALUES (TRUE, 0);
