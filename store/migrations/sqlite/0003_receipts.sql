-- Signed receipts and events from procedures: kept as received (the signed bytes), one
-- per procedure and id. A repeated one is recognised by the hash of its verified content
-- (signatures may differ each time they are made).
CREATE TABLE receipts (
    receipt_id     TEXT NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications(id),
    procedure_id   TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    event          TEXT NOT NULL,      -- accept | reject
    issued_at      TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    signed         BLOB NOT NULL,      -- the receipt exactly as signed by the procedure
    signed_sha256  TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,      -- of the verified content
    PRIMARY KEY (procedure_id, receipt_id)
);
CREATE INDEX receipts_application ON receipts (application_id);
