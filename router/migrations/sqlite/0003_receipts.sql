-- Signed receipts from procedures: kept as received (the signed bytes), one per id.
CREATE TABLE receipts (
    receipt_id     TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id),
    procedure_id   TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    event          TEXT NOT NULL,      -- accept | reject
    issued_at      TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    signed         BLOB NOT NULL,      -- the receipt exactly as signed by the procedure
    signed_sha256  TEXT NOT NULL
);
CREATE INDEX receipts_application ON receipts (application_id);
