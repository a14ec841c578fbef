-- The audit trail (Laufzettel): one entry per state change of an application, appended
-- in the same transaction as the change and its history entry, chained by SHA-256.
-- See router/src/audit.rs for the exact hash encoding. No personal data: `detail` is
-- the history's detail text (ids, procedure, transport, field names), and the sealed
-- message appears only as its hash.

CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a removed entry leaves a gap
    application_id TEXT NOT NULL,                      -- UUID (no foreign key: the trail outlives deletions)
    at             TEXT NOT NULL,                      -- RFC 3339, UTC
    status         TEXT NOT NULL,
    detail         TEXT NOT NULL,
    message_sha256 TEXT NULL,                          -- hex SHA-256 of the sealed message, once there is one
    prev_hash      TEXT NOT NULL,                      -- hash of entry seq - 1; 64 zeros for the first
    hash           TEXT NOT NULL                       -- hex SHA-256 over the canonical encoding of the fields above
);
CREATE INDEX audit_log_application ON audit_log (application_id, seq);
